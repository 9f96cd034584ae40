"""`vend fleet broker-config`: the files a real Mosquitto runs on, and refusals that name the
line and write nothing."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.support.servers import free_port, mosquitto_process, server_folder

runner = CliRunner()
GOOD_CSV = "machine_id,password,cert_cn\nvm-0001,s3cret one,\nvm-0002,pw-2,vm-0002.example\n"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def pub(port: int, user: str, password: str, topic: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-u", user, "-P", password,
         "-t", topic, "-m", "x", "-q", "1", "-V", "mqttv5"],
        capture_output=True, timeout=10, check=False,
    )  # fmt: skip


@pytest.mark.broker
def test_generated_files_run_a_broker_that_checks_passwords() -> None:
    with server_folder("cli-broker") as folder:
        csv_file = folder / "machines.csv"
        csv_file.write_text(GOOD_CSV)
        out, port = folder / "broker", free_port()
        result = runner.invoke(
            app,
            ["fleet", "broker-config", "--machines", str(csv_file), "--out", str(out),
             "--port", str(port), "--bind", "127.0.0.1", "--data-dir", str(folder / "data"),
             "--log-file", str(folder / "mosquitto.log")],
            env={"VEND_FLEET_PASSWORD": "fleet-pw"},
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "2 machine(s)" in result.output
        assert not (out / "fleet.password").exists()  # given, so not generated
        (folder / "data").mkdir()
        with mosquitto_process(folder, out / "mosquitto.conf", [port]):
            assert pub(port, "vm-0001", "s3cret one", "vend/v1/vm-0001/sale").returncode == 0
            assert pub(port, "fleet", "fleet-pw", "vend/v1/vm-0001/cmd/reboot").returncode == 0
            wrong = pub(port, "vm-0001", "s3cret on", "vend/v1/vm-0001/sale")
            assert wrong.returncode != 0
            assert b"not authori" in wrong.stderr.lower()
            forged = pub(port, "vm-0001", "s3cret one", "vend/v1/vm-0002/sale")
            assert b"not authori" in forged.stderr.lower()


def test_secrets_are_private_and_a_fleet_password_is_generated(tmp_path: Path) -> None:
    csv_file = tmp_path / "machines.csv"
    csv_file.write_text(GOOD_CSV)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["fleet", "broker-config", "--machines", str(csv_file), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert mode(out / "passwd") == 0o600
    assert mode(out / "fleet.password") == 0o600
    assert mode(out / "mosquitto.conf") == 0o644
    generated = (out / "fleet.password").read_text().strip()
    assert len(generated) >= 24
    passwd = (out / "passwd").read_text()
    assert generated not in passwd
    assert "s3cret one" not in passwd
    assert [line.split(":")[0] for line in passwd.splitlines()] == ["fleet", "vm-0001", "vm-0002"]
    conf = (out / "mosquitto.conf").read_text()
    assert f"password_file {out.resolve() / 'passwd'}" in conf
    assert "allow_anonymous false" in conf
    assert "require_certificate" not in conf


def test_tls_options_add_a_certificate_listener(tmp_path: Path) -> None:
    csv_file = tmp_path / "machines.csv"
    csv_file.write_text(GOOD_CSV)
    out = tmp_path / "out"
    args = ["fleet", "broker-config", "--machines", str(csv_file), "--out", str(out),
            "--tls-ca", "/etc/vend/ca.crt", "--tls-cert", "/etc/vend/broker.crt",
            "--tls-key", "/etc/vend/broker.key", "--tls-port", "9883",
            "--fleet-user", "ops"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    conf = (out / "mosquitto.conf").read_text().splitlines()
    tls_part = conf[conf.index("listener 9883") :]
    for line in ("cafile /etc/vend/ca.crt", "certfile /etc/vend/broker.crt",
                 "keyfile /etc/vend/broker.key", "require_certificate true",
                 "use_identity_as_username true"):  # fmt: skip
        assert line in tls_part
    acl = (out / "acl").read_text()
    assert "user ops" in acl
    assert "user vm-0002.example" in acl  # the CN gets vm-0002's rules


def test_tls_needs_all_three_files(tmp_path: Path) -> None:
    csv_file = tmp_path / "machines.csv"
    csv_file.write_text(GOOD_CSV)
    result = runner.invoke(
        app,
        ["fleet", "broker-config", "--machines", str(csv_file), "--out", str(tmp_path / "o"),
         "--tls-ca", "/etc/vend/ca.crt"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "--tls-cert" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("csv_text", "expected"),
    [
        ("machine_id,cert_cn\nvm-1,cn\n", "line 1 (header): missing column 'password'"),
        ("machine_id,password,pasword\nvm-1,a,b\n", "unknown column 'pasword'"),
        ("machine_id,password\nvm-1,a\nvm-2,b\nvm-1,c\n", "line 4: duplicate machine_id 'vm-1'"),
        ("machine_id,password\nvm-1,a\nvm/2,b\n", "line 3: invalid machine_id 'vm/2'"),
        ("machine_id,password\nvm 1,a\n", "line 2: invalid machine_id 'vm 1'"),
        ("machine_id,password\nvm+1,a\n", "line 2: invalid machine_id 'vm+1'"),
        ("machine_id,password\n,a\n", "line 2: machine_id is empty"),
        ("machine_id,password\nvm-1,\n", "line 2: machine 'vm-1' has neither a password"),
        ("machine_id,password\nvm-1,a,extra\n", "line 2: more fields than the header"),
        ("machine_id,password\nvm-1,$7$101$abc$def\n", "line 2: password of 'vm-1' looks like"),
        ("machine_id,password,cert_cn\nvm-1,a,vm-2\nvm-2,b,\n", "line 3: duplicate machine_id"),
        ("machine_id,password\nfleet,a\n", "'fleet' is the fleet user"),
        ("machine_id,password\nvm-1,a\x00b\n", "line 2: password of 'vm-1' contains a NUL"),
        ("machine_id,password\nvm-1," + "x" * 200_000 + "\n", "not readable as CSV"),
        ("", "empty file"),
        ("machine_id,password\n", "no machines listed"),
    ],
    ids=["missing-column", "unknown-column", "duplicate-id", "slash", "space", "plus", "empty-id",
         "no-credentials", "extra-field", "bad-hash", "cn-clashes-with-id", "fleet-user", "nul",
         "huge-field", "empty",
         "header-only"],
)  # fmt: skip
def test_bad_csv_names_the_line_and_writes_nothing(
    tmp_path: Path, csv_text: str, expected: str
) -> None:
    csv_file = tmp_path / "machines.csv"
    csv_file.write_text(csv_text)
    out = tmp_path / "out"
    out.mkdir()
    (out / "passwd").write_text("kept\n")
    result = runner.invoke(
        app, ["fleet", "broker-config", "--machines", str(csv_file), "--out", str(out)]
    )
    assert result.exit_code == 1
    assert expected in result.output
    assert "nothing written" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["passwd"]
    assert (out / "passwd").read_text() == "kept\n"


def test_every_bad_line_is_reported_at_once(tmp_path: Path) -> None:
    csv_file = tmp_path / "machines.csv"
    csv_file.write_text("machine_id,password\nvm#1,a\nok-1,b\nvm/2,c\n")
    result = runner.invoke(
        app, ["fleet", "broker-config", "--machines", str(csv_file), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "line 2: invalid machine_id 'vm#1'" in result.output
    assert "line 4: invalid machine_id 'vm/2'" in result.output


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    csv_file = tmp_path / "machines.csv"
    csv_file.write_bytes(b"machine_id,password\nvm-1,\xff\xfe\n")
    result = runner.invoke(
        app, ["fleet", "broker-config", "--machines", str(csv_file), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "not UTF-8" in result.output
    assert not (tmp_path / "o").exists()
