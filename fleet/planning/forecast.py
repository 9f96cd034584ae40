"""Demand per selection: a rate for each day of the week and a shape over the hours.

Kept explainable on purpose. The rate is sales divided by *exposure*: the time the
selection actually had stock, so days it stood sold out do not count as days of zero
demand (they are censored, not zero). Recent days weigh more (exponential decay), and
each weekday's rate is shrunk toward the overall rate by a prior worth a few days of
data, so a weekday seen once or twice does not swing the forecast. The hour shape is
used only when there are enough sales to show one; otherwise demand is spread evenly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from fleet.planning.model import PlanningError, SaleRecord
from fleet.planning.stock_estimate import Interval

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class ForecastSettings:
    half_life_days: float = 28.0  # a sale this many days old counts half
    prior_days: float = 1.0  # weekday rates are pulled toward the overall rate by this many days
    min_sales_for_hours: int = 60  # below this the hour shape is flat
    hour_prior_sales: float = 24.0  # pulls a thin hour shape toward flat
    horizon_days: int = 60  # days_until gives up after this

    def __post_init__(self) -> None:
        if self.half_life_days <= 0 or self.prior_days < 0 or self.horizon_days < 1:
            raise PlanningError("forecast settings: half life, prior and horizon must be positive")


@dataclass(frozen=True, slots=True)
class DemandForecast:
    machine_id: str
    selection: str
    daily_rate: float  # overall units per in-stock day
    dow_rates: tuple[float, ...]  # Mon..Sun, units per day
    hour_profile: tuple[float, ...]  # 24 shares summing to 1 (local hours)
    exposure_days: float  # in-stock days seen (unweighted)
    censored_days: float  # days excluded because the selection stood empty
    sales: int
    tz: tzinfo

    def explain(self) -> str:
        rates = ", ".join(f"{d} {r:.1f}" for d, r in zip(DAYS, self.dow_rates, strict=True))
        return (
            f"{self.daily_rate:.2f}/day overall from {self.sales} sales over "
            f"{self.exposure_days:.1f} in-stock days ({self.censored_days:.1f} sold-out days "
            f"excluded); by weekday: {rates}"
        )

    def _day_rate(self, day: date) -> float:
        return self.dow_rates[day.weekday()]

    def expected_demand(self, start: datetime, end: datetime) -> float:
        """Expected units asked for between two instants (sold or not)."""
        if end <= start:
            return 0.0
        total = 0.0
        local = start.astimezone(self.tz)
        stop = end.astimezone(self.tz)
        while local < stop:
            midnight = _next_midnight(local, self.tz)
            if local.hour == 0 and local.minute == 0 and local.second == 0 and midnight <= stop:
                total += self._day_rate(local.date())  # a whole local day
                local = midnight
                continue
            slot_end = min(_next_hour(local), stop)
            frac = (slot_end - local).total_seconds() / 3600.0
            total += self._day_rate(local.date()) * self.hour_profile[local.hour] * frac
            local = slot_end.astimezone(self.tz)
        return total

    def days_until(self, level: float, start: datetime, horizon_days: int = 60) -> float | None:
        """Days from `start` until demand has used up `level` units; None past the horizon."""
        if level <= 0:
            return 0.0
        if max(self.dow_rates) <= 0:
            return None
        used = 0.0
        local = start.astimezone(self.tz)
        limit = local + timedelta(days=horizon_days)
        while local < limit:
            midnight = _next_midnight(local, self.tz)
            whole_day = local.hour == 0 and local.minute == 0 and local.second == 0
            rate = self._day_rate(local.date())
            if whole_day and used + rate < level:
                used += rate
                local = midnight
                continue
            slot_end = _next_hour(local)
            frac = (slot_end - local).total_seconds() / 3600.0
            step = rate * self.hour_profile[local.hour] * frac
            if used + step >= level:
                part = (level - used) / step if step > 0 else 0.0
                when = local + (slot_end - local) * part
                return (when - start).total_seconds() / 86400.0
            used += step
            local = slot_end.astimezone(self.tz)
        return None

    def days_until_below(
        self, level: float, threshold: float, start: datetime, horizon_days: int = 60
    ) -> float | None:
        """Days until stock falls below `threshold` units (a re-order point)."""
        return self.days_until(level - threshold, start, horizon_days)


def _next_hour(local: datetime) -> datetime:
    floor = local.replace(minute=0, second=0, microsecond=0)
    return (floor.astimezone(UTC) + HOUR).astimezone(local.tzinfo)


def _next_midnight(local: datetime, tz: tzinfo) -> datetime:
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz)


def _hour_cells(start: datetime, end: datetime, tz: tzinfo) -> list[tuple[date, int, float]]:
    """(local date, local hour, hours covered) for every hour slot overlapping [start, end)."""
    cells: list[tuple[date, int, float]] = []
    local = start.astimezone(tz)
    stop = end.astimezone(tz)
    while local < stop:
        slot_end = min(_next_hour(local), stop)
        cells.append((local.date(), local.hour, (slot_end - local).total_seconds() / 3600.0))
        local = slot_end.astimezone(tz)
    return cells


def forecast_selection(
    machine_id: str,
    selection: str,
    sales: Sequence[SaleRecord],
    stockouts: Sequence[Interval],
    *,
    history_start: datetime,
    history_end: datetime,
    tz: tzinfo,
    settings: ForecastSettings | None = None,
) -> DemandForecast:
    """Forecast one selection from its sales in [history_start, history_end).

    `sales` and `stockouts` should be this selection's only (plan.py groups them).
    """
    cfg = settings or ForecastSettings()
    if history_end <= history_start:
        raise PlanningError(f"forecast {machine_id}/{selection}: empty history window")
    first_day = history_start.astimezone(tz).date()
    last_day = (history_end - timedelta(microseconds=1)).astimezone(tz).date()
    n_days = (last_day - first_day).days + 1

    # Availability per (day, hour) in hours; starts full, minus the sold-out time.
    avail = [[1.0] * 24 for _ in range(n_days)]
    _trim_edges(avail, history_start, history_end, tz, first_day)
    censored = 0.0
    for iv in stockouts:
        lo, hi = max(iv.start, history_start), min(iv.end, history_end)
        if hi <= lo:
            continue
        for day, hour, hours in _hour_cells(lo, hi, tz):
            d = (day - first_day).days
            if 0 <= d < n_days:
                taken = min(hours, avail[d][hour])
                avail[d][hour] -= taken
                censored += taken / 24.0

    day_sales = [0.0] * n_days
    hour_sales = [0.0] * 24
    total = 0
    for sale in sales:
        if not history_start <= sale.at < history_end or sale.quantity == 0:
            continue
        local = sale.at.astimezone(tz)
        d = (local.date() - first_day).days
        day_sales[d] += sale.quantity
        hour_sales[local.hour] += sale.quantity
        total += sale.quantity

    profile = _hour_profile(hour_sales, avail, total, cfg)
    exposure = [sum(a * p for a, p in zip(row, profile, strict=True)) for row in avail]
    end_day_index = n_days - 1
    s_w = [0.0] * 7
    e_w = [0.0] * 7
    for d in range(n_days):
        weight = 0.5 ** ((end_day_index - d) / cfg.half_life_days)
        wd = (first_day + timedelta(days=d)).weekday()
        s_w[wd] += weight * day_sales[d]
        e_w[wd] += weight * exposure[d]
    s_all, e_all = sum(s_w), sum(e_w)
    overall = s_all / e_all if e_all > 0 else 0.0
    dow = tuple(
        (s_w[w] + cfg.prior_days * overall) / (e_w[w] + cfg.prior_days)
        if e_w[w] + cfg.prior_days > 0
        else overall
        for w in range(7)
    )
    return DemandForecast(
        machine_id=machine_id,
        selection=selection,
        daily_rate=overall,
        dow_rates=dow,
        hour_profile=profile,
        exposure_days=sum(exposure),
        censored_days=censored,
        sales=total,
        tz=tz,
    )


def _trim_edges(
    avail: list[list[float]], start: datetime, end: datetime, tz: tzinfo, first_day: date
) -> None:
    """Hours of the first and last local day that fall outside the window are not exposure."""
    day_start = datetime.combine(first_day, time(0), tzinfo=tz)
    for day, hour, hours in _hour_cells(day_start, start, tz):
        avail[(day - first_day).days][hour] -= hours
    last = len(avail) - 1
    day_end = datetime.combine(first_day + timedelta(days=last + 1), time(0), tzinfo=tz)
    for day, hour, hours in _hour_cells(end, day_end, tz):
        d = (day - first_day).days
        if 0 <= d <= last:
            avail[d][hour] -= hours
    for row in avail:
        for h in range(24):
            row[h] = max(0.0, row[h])


def _hour_profile(
    hour_sales: list[float], avail: list[list[float]], total: int, cfg: ForecastSettings
) -> tuple[float, ...]:
    flat = tuple([1.0 / 24] * 24)
    if total < cfg.min_sales_for_hours:
        return flat
    hours_open = [sum(row[h] for row in avail) for h in range(24)]
    rates = [hour_sales[h] / hours_open[h] if hours_open[h] > 0 else 0.0 for h in range(24)]
    mass = sum(rates)
    if mass <= 0 or not math.isfinite(mass):
        return flat
    shape = [r / mass for r in rates]
    # Blend toward flat by how thin the data is.
    k = cfg.hour_prior_sales / (cfg.hour_prior_sales + total)
    return tuple((1 - k) * s + k / 24 for s in shape)
