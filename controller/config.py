"""``machine.toml``: what one machine is, how it reaches its hardware, and what it sells.

Example::

    [machine]
    id = "vm-0001"
    currency = "VND"
    data_dir = "/var/lib/vendfleet"

    [mdb]
    url = "qibixx:///dev/ttyACM0"

    [dispenser]
    url = "serial:///dev/ttyUSB0?baudrate=19200"

    [[selection]]
    code = "A1"
    product = "Trà xanh 0 độ"
    price = 12000          # minor units of the machine's currency
    capacity = 10
    par = 8
    motor = 11

A bad file is refused with every problem listed by its key path
(``selection[2].price: ...``); the machine never starts half-configured.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from protocols.money import CURRENCIES, Money
from protocols.vend.model import Selection


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MachineSection(_Section):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    currency: str = "VND"
    data_dir: Path = Path("data")
    timezone: str = "Asia/Ho_Chi_Minh"

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value.upper() not in CURRENCIES:
            raise ValueError(f"unknown currency {value!r} (known: {', '.join(sorted(CURRENCIES))})")
        return value.upper()


class MdbSection(_Section):
    url: str
    cashless_readers: tuple[int, ...] = (0x10,)
    bill_validator: bool = True
    changer: bool = True


class DispenserSection(_Section):
    url: str
    vend_timeout: float = Field(default=15.0, gt=0)


class PanelSection(_Section):
    socket: Path = Path("panel.sock")


class PolicySection(_Section):
    credit_timeout: float = Field(default=0.0, ge=0, description="seconds; 0 keeps credit")
    card_session_timeout: float = Field(default=60.0, gt=0)


class SelectionEntry(_Section):
    code: str = Field(min_length=1, max_length=8)
    product: str = Field(min_length=1)
    price: int = Field(gt=0)
    capacity: int = Field(ge=1, le=1000)
    par: int = Field(ge=0)
    motor: int = Field(ge=0, le=255)
    item_number: int | None = Field(default=None, ge=0, le=0xFFFE)

    @model_validator(mode="after")
    def _par_fits(self) -> SelectionEntry:
        if self.par > self.capacity:
            raise ValueError(f"par {self.par} is above capacity {self.capacity}")
        return self


class MachineConfig(_Section):
    machine: MachineSection
    mdb: MdbSection
    dispenser: DispenserSection
    panel: PanelSection = PanelSection()
    policy: PolicySection = PolicySection()
    selection: tuple[SelectionEntry, ...] = Field(min_length=1)
    config_version: str = "1"
    format: Literal[1] = 1

    @model_validator(mode="after")
    def _unique(self) -> MachineConfig:
        codes = [s.code for s in self.selection]
        dup = {c for c in codes if codes.count(c) > 1}
        if dup:
            raise ValueError(f"selection codes repeat: {', '.join(sorted(dup))}")
        motors = [s.motor for s in self.selection]
        dup_m = {m for m in motors if motors.count(m) > 1}
        if dup_m:
            raise ValueError(f"motors used twice: {', '.join(map(str, sorted(dup_m)))}")
        return self

    def selections(self) -> tuple[Selection, ...]:
        cur = self.machine.currency
        return tuple(
            Selection(
                code=s.code,
                product=s.product,
                price=Money(s.price, cur),
                capacity=s.capacity,
                par=s.par,
                motor=s.motor,
                item_number=s.item_number if s.item_number is not None else n + 1,
            )
            for n, s in enumerate(self.selection)
        )

    def data_path(self, base: Path) -> Path:
        """The data folder, relative paths taken from the config file's folder."""
        d = self.machine.data_dir
        return d if d.is_absolute() else base / d


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_config(path: Path) -> MachineConfig:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return MachineConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: invalid configuration"]
        lines += [f"  {_where(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
