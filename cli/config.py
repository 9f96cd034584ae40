"""Operator settings for ``vend fleet``: command line > environment > config file > defaults.

The file is TOML, by default ``$XDG_CONFIG_HOME/vendfleet/config.toml`` (that is
``~/.config/vendfleet/config.toml``), or the one named by ``--config`` / ``$VEND_CONFIG``::

    [fleet]
    db = "postgresql+psycopg://fleet@db.example.net/fleet"
    broker = "mqtt://mqtt.example.net:1883"
    user = "fleet"                 # broker username, when the URL carries none
    password = "..."               # broker password
    timezone = "Asia/Ho_Chi_Minh"  # how times are shown; storage is always UTC
    command_ttl = 600              # seconds a command stays valid

A missing default file is no error; a file named explicitly must exist. Unknown keys are
refused by name, so a typo does not silently fall back to a default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fleet.store.db import DEFAULT_DB_URL

DEFAULT_BROKER_URL = "mqtt://127.0.0.1:1883"
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
DEFAULT_COMMAND_TTL = 600
MAX_COMMAND_TTL = 7 * 24 * 3600  # the machine refuses longer-lived commands
CONFIG_ENV = "VEND_CONFIG"

# setting -> environment variable
ENV_VARS: dict[str, str] = {
    "db": "VEND_DB",
    "broker": "VEND_BROKER",
    "user": "VEND_FLEET_USER",
    "password": "VEND_FLEET_PASSWORD",
    "timezone": "VEND_TIMEZONE",
    "command_ttl": "VEND_COMMAND_TTL",
}
DEFAULTS: dict[str, str | int | None] = {
    "db": DEFAULT_DB_URL,
    "broker": DEFAULT_BROKER_URL,
    "user": None,
    "password": None,
    "timezone": DEFAULT_TIMEZONE,
    "command_ttl": DEFAULT_COMMAND_TTL,
}


class ConfigError(Exception):
    """The configuration file or a setting is unusable; the message names which."""


@dataclass(frozen=True, slots=True)
class FleetSettings:
    db: str
    broker: str
    user: str | None
    password: str | None
    timezone: str
    command_ttl: int
    # setting -> where its value came from: "option", "env VEND_DB", "file <path>", "default"
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def broker_url(self) -> str:
        """The broker URL with ``user`` / ``password`` put in when it carries none."""
        parts = urlsplit(self.broker)
        if parts.username or not self.user:
            return self.broker
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, f"{auth}@{host}", parts.path, "", ""))


def default_config_path(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "vendfleet" / "config.toml"


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML: {exc}") from None
    unknown_tables = sorted(set(raw) - {"fleet"})
    if unknown_tables:
        raise ConfigError(f"config file {path}: unknown table(s) {', '.join(unknown_tables)}")
    section = raw.get("fleet", {})
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [fleet] must be a table")
    unknown = sorted(set(section) - set(DEFAULTS))
    if unknown:
        raise ConfigError(
            f"config file {path}: unknown key(s) {', '.join(unknown)} in [fleet] "
            f"(known: {', '.join(DEFAULTS)})"
        )
    return section


def load_settings(
    overrides: Mapping[str, str | int | None] | None = None,
    *,
    config: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> FleetSettings:
    """Settings from the command line (``overrides``; None means not given), the
    environment, the config file and the defaults, in that order."""
    env = os.environ if env is None else env
    overrides = overrides or {}
    path = config
    explicit = path is not None
    if path is None and env.get(CONFIG_ENV):
        path, explicit = Path(env[CONFIG_ENV]), True
    if path is None:
        path = default_config_path(env)
    file: dict[str, Any] = {}
    if explicit or path.exists():
        file = read_config_file(path)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, default in DEFAULTS.items():
        variable = ENV_VARS[name]
        if overrides.get(name) is not None:
            values[name], sources[name] = overrides[name], "option"
        elif env.get(variable):
            values[name], sources[name] = env[variable], f"env {variable}"
        elif file.get(name) is not None:
            values[name], sources[name] = file[name], f"file {path}"
        else:
            values[name], sources[name] = default, "default"
    return FleetSettings(
        db=_text(values, sources, "db"),
        broker=_text(values, sources, "broker"),
        user=_optional_text(values, sources, "user"),
        password=_optional_text(values, sources, "password"),
        timezone=_timezone(values, sources),
        command_ttl=_ttl(values, sources),
        sources=sources,
    )


def _text(values: dict[str, Any], sources: dict[str, str], name: str) -> str:
    value = values[name]
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} ({sources[name]}) must be a non-empty string, got {value!r}")
    return value


def _optional_text(values: dict[str, Any], sources: dict[str, str], name: str) -> str | None:
    return None if values[name] is None else _text(values, sources, name)


def _timezone(values: dict[str, Any], sources: dict[str, str]) -> str:
    name = _text(values, sources, "timezone")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"timezone ({sources['timezone']}): unknown time zone {name!r}") from None
    return name


def _ttl(values: dict[str, Any], sources: dict[str, str]) -> int:
    value = values["command_ttl"]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_COMMAND_TTL:
        raise ConfigError(
            f"command_ttl ({sources['command_ttl']}) must be whole seconds from 1 to "
            f"{MAX_COMMAND_TTL}, got {value!r}"
        )
    return value
