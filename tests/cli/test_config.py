"""Operator settings: command line > environment > config file > defaults, and clear
errors for a bad file or value."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.config import (
    DEFAULT_BROKER_URL,
    ConfigError,
    FleetSettings,
    default_config_path,
    load_settings,
)
from fleet.store.db import DEFAULT_DB_URL


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_when_nothing_is_set(tmp_path: Path) -> None:
    s = load_settings(env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert (s.db, s.broker, s.user, s.timezone, s.command_ttl) == (
        DEFAULT_DB_URL,
        DEFAULT_BROKER_URL,
        None,
        "Asia/Ho_Chi_Minh",
        600,
    )
    assert set(s.sources.values()) == {"default"}


def test_the_default_file_is_read_from_xdg_config_home(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    path = default_config_path(env)
    assert path == tmp_path / "vendfleet" / "config.toml"
    path.parent.mkdir()
    write(path, '[fleet]\ndb = "sqlite:///x.sqlite"\ncommand_ttl = 60\n')
    s = load_settings(env=env)
    assert (s.db, s.command_ttl) == ("sqlite:///x.sqlite", 60)
    assert s.sources["db"] == f"file {path}"
    assert default_config_path({"HOME": "/home/op"}) == Path(
        "/home/op/.config/vendfleet/config.toml"
    )


def test_option_beats_env_beats_file(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", '[fleet]\ndb = "sqlite:///file"\nbroker = "mqtt://file"\n')
    env = {"VEND_DB": "sqlite:///env", "VEND_BROKER": "mqtt://env"}
    s = load_settings({"db": "sqlite:///cli", "broker": None}, config=config, env=env)
    assert (s.db, s.broker) == ("sqlite:///cli", "mqtt://env")
    assert (s.sources["db"], s.sources["broker"]) == ("option", "env VEND_BROKER")


def test_vend_config_names_the_file(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", '[fleet]\ntimezone = "Europe/Berlin"\n')
    assert load_settings(env={"VEND_CONFIG": str(config)}).timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[fleet]\ndatabase = 'x'\n", ["unknown key(s) database", "known: db"]),
        ("[fleets]\n", ["unknown table(s) fleets"]),
        ("fleet = 3\n", ["[fleet] must be a table"]),
        ("[fleet\n", ["not valid TOML"]),
        ("[fleet]\ntimezone = 'Mars/Olympus'\n", ["unknown time zone 'Mars/Olympus'"]),
        ("[fleet]\ncommand_ttl = 0\n", ["command_ttl", "1 to 604800"]),
        ("[fleet]\ncommand_ttl = 1.5\n", ["command_ttl"]),
        ("[fleet]\ndb = 5\n", ["db (file", "non-empty string"]),
    ],
)
def test_a_bad_file_is_refused_by_name(tmp_path: Path, text: str, words: list[str]) -> None:
    config = write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config=config, env={})
    for word in words:
        assert word in str(caught.value)


def test_a_named_file_must_exist_but_the_default_may_not(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(config=tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(env={"VEND_CONFIG": str(tmp_path / "missing.toml")})
    assert load_settings(env={"XDG_CONFIG_HOME": str(tmp_path)}).sources["db"] == "default"


def test_bad_env_values_name_their_variable(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "VEND_COMMAND_TTL": "ten"}
    with pytest.raises(ConfigError, match="VEND_COMMAND_TTL"):
        load_settings(env=env)
    assert load_settings(env={**env, "VEND_COMMAND_TTL": "90"}).command_ttl == 90


def settings_with(broker: str, user: str | None, password: str | None) -> FleetSettings:
    return FleetSettings(
        db="sqlite://", broker=broker, user=user, password=password, timezone="UTC", command_ttl=1
    )


def test_broker_credentials_join_a_url_without_them() -> None:
    assert settings_with("mqtt://h:1883", "fleet", "p@ss:w/rd").broker_url == (
        "mqtt://fleet:p%40ss%3Aw%2Frd@h:1883"
    )
    assert settings_with("mqtt://h", "fleet", None).broker_url == "mqtt://fleet@h"
    assert settings_with("mqtt://a:b@h", "fleet", "x").broker_url == "mqtt://a:b@h"
    assert settings_with("mqtt://h", None, "x").broker_url == "mqtt://h"


LAYERS = st.fixed_dictionaries(
    {"option": st.booleans(), "env": st.booleans(), "file": st.booleans()}
)


@settings(max_examples=60, deadline=None)
@given(present=LAYERS)
def test_the_highest_layer_given_wins(
    tmp_path_factory: pytest.TempPathFactory, present: dict[str, bool]
) -> None:
    folder = tmp_path_factory.mktemp("cfg")
    config = write(
        folder / "c.toml", '[fleet]\nbroker = "mqtt://file"\n' if present["file"] else ""
    )
    env = {"VEND_BROKER": "mqtt://env"} if present["env"] else {}
    option = "mqtt://option" if present["option"] else None
    s = load_settings({"broker": option}, config=config, env=env)
    expected = next(
        (f"mqtt://{layer}" for layer in ("option", "env", "file") if present[layer]),
        DEFAULT_BROKER_URL,
    )
    assert s.broker == expected
