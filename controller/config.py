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

    # or several dispensing units (automated stores), each selection naming its unit:
    # [[dispenser]]
    # name = "tower-1"
    # url = "serial:///dev/ttyUSB0?baudrate=19200"
    # [[dispenser]]
    # name = "tower-2"
    # url = "serial:///dev/ttyUSB1?baudrate=19200"
    # vend_timeout = 20

    [telemetry]                 # optional: without it events queue in the outbox unsent
    broker = "mqtt://mqtt.example.net:1883"   # username = machine id
    password = "..."
    command_key = "hex:00112233445566778899aabbccddeeff"   # or base64:..., or bare hex/base64
    backlog_alarm = 1000        # unsent outbox rows before the outbox_backlog alarm
    retention_days = 30         # sent rows older than this are deleted; unsent never
    drain_concurrency = 20      # publishes awaiting PUBACK at once

    [receipts]                  # optional: without it the machine issues no e-receipts
    invoice_symbol = "1C26MAB"  # template digit, C, year, M, two letters; the year follows the sale
    seller_tax_code = "0312345678"
    seller_name = "Công ty TNHH Máy Bán Hàng"
    seller_address = "12 Lê Lợi, Quận 1, TP. Hồ Chí Minh"
    vat_rate = "10%"            # default; per product or selection code: [receipts.vat_rates]
    lookup_secret = "hex:..."   # HMAC key for lookup codes, shared with the fleet (>= 16 bytes)

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

import base64
import binascii
import re
import tomllib
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from controller.cabinet_config import CabinetSection
from protocols.einvoice import EinvoiceError, Seller, cash_register_symbol, check_rate
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


UNIT_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"


class DispenserSection(_Section):
    """One dispensing unit: a motor board on its own link with its own planogram section."""

    name: str = Field(default="main", pattern=UNIT_NAME)
    url: str
    vend_timeout: float = Field(default=15.0, gt=0)


class PanelSection(_Section):
    socket: Path = Path("panel.sock")


class PolicySection(_Section):
    credit_timeout: float = Field(default=0.0, ge=0, description="seconds; 0 keeps credit")
    card_session_timeout: float = Field(default=60.0, gt=0)
    basket_timeout: float = Field(
        default=120.0, gt=0, description="seconds an untouched basket waits before it is cleared"
    )


MIN_COMMAND_KEY_BYTES = 16
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2})+$")


def parse_key(text: str) -> bytes:
    """``hex:<digits>``, ``base64:<text>``, or bare: hex if it is all hex digits, else base64."""
    kind, _, rest = text.partition(":")
    if kind not in ("hex", "base64"):
        kind, rest = ("hex" if _HEX.fullmatch(text) else "base64"), text
    try:
        key = bytes.fromhex(rest) if kind == "hex" else base64.b64decode(rest, validate=True)
    except (ValueError, binascii.Error):
        raise ValueError(f"command_key is not valid {kind}") from None
    if len(key) < MIN_COMMAND_KEY_BYTES:
        raise ValueError(f"command_key must be at least {MIN_COMMAND_KEY_BYTES} bytes")
    return key


class TelemetrySection(_Section):
    broker: str = Field(description="mqtt://host:port; the username is the machine id")
    password: str = ""
    command_key: str = Field(description="HMAC key for fleet commands (hex or base64)")
    backlog_alarm: int = Field(default=1000, ge=1)
    retention_days: float = Field(default=30.0, gt=0)
    drain_concurrency: int = Field(default=20, ge=1, le=1000)
    keepalive: int = Field(default=30, ge=5, le=3600)
    max_backoff: float = Field(default=60.0, gt=0)
    # MQTT 5 by default; "3.1.1" for brokers without it (the embedded amqtt). Nothing the
    # machine guarantees depends on a v5 feature: its session simply never expires.
    protocol: Literal["5", "3.1.1"] = "5"

    @field_validator("broker")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        url = urlsplit(value)
        if url.scheme != "mqtt" or not url.hostname:
            raise ValueError(f"broker must look like mqtt://host:port, got {value!r}")
        if url.username or url.password or url.path not in ("", "/"):
            raise ValueError("broker URL takes only host and port (password is its own key)")
        try:
            _ = url.port
        except ValueError:
            raise ValueError(f"broker URL has a bad port: {value!r}") from None
        return value

    @field_validator("command_key")
    @classmethod
    def _key(cls, value: str) -> str:
        parse_key(value)
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.broker).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.broker).port or 1883

    @property
    def key(self) -> bytes:
        return parse_key(self.command_key)


class ReceiptsSection(_Section):
    """E-receipts numbered on the machine at the moment of sale (Vietnamese cash-register
    invoices): the seller, the series, VAT rates and the lookup-code secret."""

    invoice_symbol: str = Field(description="e.g. 1C26MAB; the year part follows the sale")
    seller_tax_code: str
    seller_name: str
    seller_address: str
    vat_rate: str = "10%"
    vat_rates: dict[str, str] = Field(
        default_factory=dict, description="product name or selection code -> VAT rate"
    )
    lookup_secret: str = Field(description="HMAC key for lookup codes (hex or base64)")
    lookup_url: str | None = Field(default=None, description="lookup page the QR code opens")
    unit: str | None = Field(default=None, description="unit printed on lines, e.g. cái")

    @field_validator("invoice_symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        try:
            return str(cash_register_symbol(value))
        except EinvoiceError as exc:
            raise ValueError(exc.problem) from None

    @field_validator("vat_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            return check_rate(value)
        except EinvoiceError as exc:
            raise ValueError(exc.problem) from None

    @field_validator("vat_rates")
    @classmethod
    def _rates(cls, value: dict[str, str]) -> dict[str, str]:
        for key, rate in value.items():
            try:
                check_rate(rate)
            except EinvoiceError as exc:
                raise ValueError(f"{key}: {exc.problem}") from None
        return value

    @field_validator("lookup_secret")
    @classmethod
    def _secret(cls, value: str) -> str:
        try:
            parse_key(value)
        except ValueError as exc:
            raise ValueError(str(exc).replace("command_key", "lookup_secret")) from None
        return value

    @model_validator(mode="after")
    def _seller_valid(self) -> ReceiptsSection:
        _ = self.seller
        return self

    @property
    def seller(self) -> Seller:
        try:
            return Seller(
                name=self.seller_name, tax_code=self.seller_tax_code, address=self.seller_address
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ValueError(f"seller_{first['loc'][0]}: {first['msg']}") from None

    @property
    def secret(self) -> bytes:
        return parse_key(self.lookup_secret)


class SelectionEntry(_Section):
    code: str = Field(min_length=1, max_length=8)
    product: str = Field(min_length=1)
    price: int = Field(gt=0)
    capacity: int = Field(ge=1, le=1000)
    par: int = Field(ge=0)
    motor: int = Field(ge=0, le=255)
    item_number: int | None = Field(default=None, ge=0, le=0xFFFE)
    unit: str | None = Field(default=None, description="dispensing unit; default the first")

    @model_validator(mode="after")
    def _par_fits(self) -> SelectionEntry:
        if self.par > self.capacity:
            raise ValueError(f"par {self.par} is above capacity {self.capacity}")
        return self


class MachineConfig(_Section):
    machine: MachineSection
    mdb: MdbSection
    # ``[dispenser]`` (one unit) or ``[[dispenser]]`` (several); held as a tuple either way.
    dispenser: tuple[DispenserSection, ...] = ()
    panel: PanelSection = PanelSection()
    policy: PolicySection = PolicySection()
    telemetry: TelemetrySection | None = None
    receipts: ReceiptsSection | None = None
    cabinet: CabinetSection | None = None  # a smart cabinet (controller/cabinet_config.py)
    selection: tuple[SelectionEntry, ...] = ()
    config_version: str = "1"
    format: Literal[1] = 1

    @field_validator("dispenser", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, dict | DispenserSection) else value

    @model_validator(mode="after")
    def _unique(self) -> MachineConfig:
        codes = [s.code for s in self.selection]
        dup = {c for c in codes if codes.count(c) > 1}
        if dup:
            raise ValueError(f"selection codes repeat: {', '.join(sorted(dup))}")
        names = [u.name for u in self.units]
        if self.cabinet is None and not self.selection:
            raise ValueError("selection: at least one is needed (or a [cabinet])")
        if not names and (self.selection or self.cabinet is None):
            raise ValueError("dispenser: at least one unit is needed")
        if self.cabinet is not None:
            unknown_sel = {s.selection for s in self.cabinet.shelf if s.selection} - set(codes)
            if unknown_sel:
                raise ValueError(f"cabinet shelves name unknown selections: {sorted(unknown_sel)}")
        if len(set(names)) != len(names):
            raise ValueError(f"dispenser names repeat: {', '.join(sorted(names))}")
        unknown = {s.unit for s in self.selection if s.unit is not None and s.unit not in names}
        if unknown:
            raise ValueError(f"selections name unknown dispensers: {', '.join(sorted(unknown))}")
        motors = [(self.unit_of(s), s.motor) for s in self.selection]
        dup_m = {m for m in motors if motors.count(m) > 1}
        if dup_m:
            where = ", ".join(f"{m}" if len(names) == 1 else f"{u}:{m}" for u, m in sorted(dup_m))
            raise ValueError(f"motors used twice: {where}")
        if self.receipts is not None:
            try:
                ZoneInfo(self.machine.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"receipts need a known machine.timezone, got {self.machine.timezone!r}"
                ) from None
        return self

    @property
    def units(self) -> tuple[DispenserSection, ...]:
        """Every dispensing unit, the first being the default (one for ``[dispenser]``)."""
        return self.dispenser

    def unit_of(self, entry: SelectionEntry) -> str:
        return entry.unit or self.units[0].name

    def selections(self) -> tuple[Selection, ...]:
        cur = self.machine.currency
        single = len(self.units) == 1  # one board: the journal keeps the old, unit-less form
        return tuple(
            Selection(
                code=s.code,
                product=s.product,
                price=Money(s.price, cur),
                capacity=s.capacity,
                par=s.par,
                motor=s.motor,
                item_number=s.item_number if s.item_number is not None else n + 1,
                unit="" if single else self.unit_of(s),
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
