"""`vend fleet broker-config`: Mosquitto's conf, password file and ACL from machines.csv.

Exit codes: 0 written, 1 bad machines.csv or options (nothing written), 2 usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleet.broker_config import (
    FLEET_PASSWORD_FILE,
    BrokerConfigError,
    BrokerOptions,
    TlsFiles,
    read_machines_csv,
    render,
    write_files,
)

EXIT_ERROR = 1
_SHOWN_PROBLEMS = 20


def register(app: typer.Typer) -> None:
    app.command("broker-config")(broker_config)


def broker_config(
    *,
    machines: Annotated[
        Path,
        typer.Option(
            "--machines",
            exists=True,
            dir_okay=False,
            readable=True,
            help="CSV with columns machine_id, password (clear text or a $7$ hash), "
            "optional cert_cn.",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", file_okay=False, help="Folder to write the files into.")
    ],
    fleet_user: Annotated[
        str, typer.Option("--fleet-user", help="Username of the fleet service.")
    ] = "fleet",
    fleet_password: Annotated[
        str | None,
        typer.Option(
            "--fleet-password",
            envvar="VEND_FLEET_PASSWORD",
            help="The fleet user's password (prefer the environment variable). "
            f"Default: a random one, written to {FLEET_PASSWORD_FILE} (mode 0600).",
            show_default=False,
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="Port of the password listener.")] = 1883,
    bind: Annotated[
        str | None, typer.Option(help="Address to listen on (default: every interface).")
    ] = None,
    config_dir: Annotated[
        str | None,
        typer.Option(
            "--config-dir",
            help="Where the files will live on the broker host (default: --out, absolute).",
        ),
    ] = None,
    data_dir: Annotated[
        str, typer.Option("--data-dir", help="Mosquitto's persistence folder.")
    ] = "/var/lib/mosquitto/",
    log_file: Annotated[
        str | None, typer.Option("--log-file", help="Log to this file (default: stderr).")
    ] = None,
    tls_ca: Annotated[
        str | None, typer.Option("--tls-ca", help="CA certificate (PEM) that signs machines.")
    ] = None,
    tls_cert: Annotated[
        str | None, typer.Option("--tls-cert", help="The broker's certificate (PEM).")
    ] = None,
    tls_key: Annotated[
        str | None, typer.Option("--tls-key", help="The broker's private key (PEM).")
    ] = None,
    tls_port: Annotated[int, typer.Option(help="Port of the certificate listener.")] = 8883,
    fleet_republish: Annotated[
        bool,
        typer.Option(
            "--fleet-republish",
            help="Also let the fleet user publish machine telemetry (re-injecting quarantined "
            "messages, clearing a retired machine's retained status).",
        ),
    ] = False,
) -> None:
    """Write mosquitto.conf, passwd and acl for the machines in a CSV file."""
    tls_parts = (tls_ca, tls_cert, tls_key)
    if any(tls_parts) and not all(tls_parts):
        raise _fail("TLS needs all three of --tls-ca, --tls-cert and --tls-key")
    tls = TlsFiles(tls_ca, tls_cert, tls_key) if tls_ca and tls_cert and tls_key else None
    options = BrokerOptions(
        fleet_user=fleet_user,
        config_dir=config_dir or str(out.resolve()),
        data_dir=data_dir,
        port=port,
        bind=bind,
        tls=tls,
        tls_port=tls_port,
        log_file=log_file,
        fleet_publishes_telemetry=fleet_republish,
    )
    try:
        text = machines.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _fail(f"{machines}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        accounts = read_machines_csv(text, source=machines.name)
        files = render(accounts, options, fleet_password=fleet_password)
    except BrokerConfigError as exc:
        raise _problems(exc.problems) from None
    written = write_files(out, files)
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo(f"{len(accounts)} machine(s), fleet user {fleet_user!r}")
    if files.generated_fleet_password is not None:
        typer.echo(f"generated the fleet password: see {out / FLEET_PASSWORD_FILE}")


def _problems(problems: tuple[str, ...]) -> typer.Exit:
    for problem in problems[:_SHOWN_PROBLEMS]:
        typer.echo(f"vend fleet broker-config: {problem}", err=True)
    if len(problems) > _SHOWN_PROBLEMS:
        typer.echo(f"... and {len(problems) - _SHOWN_PROBLEMS} more problems", err=True)
    typer.echo("nothing written", err=True)
    return typer.Exit(code=EXIT_ERROR)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"vend fleet broker-config: {message}", err=True)
    return typer.Exit(code=EXIT_ERROR)
