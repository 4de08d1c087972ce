"""Time-of-use tariff pricing of charging sessions. Pure: no I/O, no clock.

A :class:`Tariff` divides every local day into periods, each with an
electricity price and a service fee in yuan per kWh (``Decimal``, 4 decimal
places, as in T/CEC 102 ``PolicyInfos``). :func:`price_session` splits a
session at every period boundary it crosses -- including midnight, where the
first period of the next day begins -- and prices each piece.

Energy
    The meter's energy register (Wh) is known at the sample times. At any
    other instant it is interpolated linearly between the nearest samples
    before and after; a sample exactly at an instant is used as is. The
    register is never extrapolated: the samples must cover the session.

Rounding (all ``ROUND_HALF_UP``)
    1. The register is rounded to ``energy_places`` decimals of kWh
       (default 3, i.e. 1 Wh) at every split point (session start, each
       boundary, session stop). ``DetailPower`` is the difference of two
       rounded registers, so the details add up exactly to ``TotalPower``,
       which equals the rounded stop register minus the rounded start register
       (the plain meter difference when the readings are whole Wh).
    2. ``DetailElecMoney = round_fen(DetailPower × ElecPrice)`` and
       ``DetailSeviceMoney = round_fen(DetailPower × SevicePrice)``, computed
       from the *reported* ``DetailPower``, so anyone can recompute each detail
       from the published numbers.
    3. Totals are sums of the rounded details and are never rounded again:
       ``TotalElecMoney = Σ DetailElecMoney``,
       ``TotalSeviceMoney = Σ DetailSeviceMoney``,
       ``TotalMoney = TotalElecMoney + TotalSeviceMoney``. Every total is thus a
       whole number of fen and equals the sum of its details. It may differ by
       up to 0.005 yuan per detail from rounding the unrounded total once;
       that is the price of details that add up.

Tariff changes
    :func:`tariff_for` picks the tariff in force on the local date of the
    session start; that one tariff prices the whole session, even if a new
    tariff becomes valid while it runs.

Time zones
    Period start times are wall-clock times in ``tz`` (``Asia/Shanghai`` by
    default). All arithmetic is done in UTC, so zones with DST also work
    (a boundary falling into a DST gap is taken with ``fold=0``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from zoneinfo import ZoneInfo

__all__ = [
    "FEN",
    "SHANGHAI",
    "ChargeDetail",
    "SessionCost",
    "Tariff",
    "TariffError",
    "TariffPeriod",
    "price_session",
    "round_fen",
    "tariff_for",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: 0.01 yuan.
FEN = Decimal("0.01")
_PRICE_QUANTUM = Decimal("0.0001")

PriceLike = Decimal | int | str
TimeLike = time | str


class TariffError(ValueError):
    """Invalid tariff definition or invalid pricing input."""


def round_fen(amount: Decimal) -> Decimal:
    """Round a yuan amount to the fen (0.01), half up."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def _parse_start(value: TimeLike, index: int) -> time:
    if isinstance(value, time):
        t = value
    elif isinstance(value, str):
        t = None
        for fmt in ("%H:%M", "%H:%M:%S", "%H%M%S"):
            try:
                t = datetime.strptime(value, fmt).time()
                break
            except ValueError:
                continue
        if t is None:
            raise TariffError(
                f"period {index}: start {value!r} is not HH:MM, HH:MM:SS or HHmmss"
            )
    else:
        raise TariffError(f"period {index}: start must be a datetime.time or str")
    if t.tzinfo is not None:
        raise TariffError(f"period {index}: start must be a naive (local) time")
    if t.microsecond:
        raise TariffError(f"period {index}: start must be whole seconds")
    return t


def _parse_price(value: PriceLike, what: str) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        raise TariffError(f"{what} must be a Decimal, int or str, not {type(value).__name__}")
    if isinstance(value, (int, str)):
        try:
            value = Decimal(value)
        except InvalidOperation:
            raise TariffError(f"{what} {value!r} is not a number") from None
    if not isinstance(value, Decimal):
        raise TariffError(f"{what} must be a Decimal, int or str")
    if not value.is_finite():
        raise TariffError(f"{what} must be finite")
    if value < 0:
        raise TariffError(f"{what} must not be negative")
    quantized = value.quantize(_PRICE_QUANTUM)
    if quantized != value:
        raise TariffError(f"{what} {value} has more than 4 decimal places")
    return quantized


@dataclass(frozen=True, slots=True)
class TariffPeriod:
    """One period of the day: prices apply from ``start`` until the next period.

    :ivar start: local wall-clock start time (whole seconds).
    :ivar elec_price: electricity price, yuan/kWh, 4 decimals.
    :ivar service_price: service fee, yuan/kWh, 4 decimals.
    """

    start: time
    elec_price: Decimal
    service_price: Decimal


@dataclass(frozen=True, init=False)
class Tariff:
    """A time-of-use tariff valid from a date on.

    :param periods: iterable of :class:`TariffPeriod` or
        ``(start, elec_price, service_price)`` tuples. ``start`` is a naive
        :class:`~datetime.time` or ``"HH:MM"``, ``"HH:MM:SS"``, ``"HHmmss"``.
        Prices are ``Decimal``, ``int`` or ``str`` with at most 4 decimal
        places (floats are refused: they are not exact); they are stored
        quantized to 4 places.
    :param valid_from: first local date on which the tariff applies.
    :raises TariffError: if there are no periods, the first does not start at
        00:00:00, the starts are not strictly increasing, or a price is
        invalid.
    """

    periods: tuple[TariffPeriod, ...]
    valid_from: date

    def __init__(self, periods: Iterable[TariffPeriod | tuple[TimeLike, PriceLike, PriceLike]], valid_from: date) -> None:
        if isinstance(valid_from, datetime) or not isinstance(valid_from, date):
            raise TariffError("valid_from must be a datetime.date")
        parsed: list[TariffPeriod] = []
        for i, p in enumerate(periods):
            if isinstance(p, TariffPeriod):
                start, elec, service = p.start, p.elec_price, p.service_price
            else:
                try:
                    start, elec, service = p
                except (TypeError, ValueError):
                    raise TariffError(
                        f"period {i}: expected (start, elec_price, service_price)"
                    ) from None
            parsed.append(
                TariffPeriod(
                    _parse_start(start, i),
                    _parse_price(elec, f"period {i}: elec_price"),
                    _parse_price(service, f"period {i}: service_price"),
                )
            )
        if not parsed:
            raise TariffError("a tariff needs at least one period")
        if parsed[0].start != time(0, 0):
            raise TariffError(f"the first period must start at 00:00, not {parsed[0].start}")
        for i in range(1, len(parsed)):
            if parsed[i].start <= parsed[i - 1].start:
                raise TariffError(
                    f"period {i}: start {parsed[i].start} is not after {parsed[i - 1].start}"
                )
        object.__setattr__(self, "periods", tuple(parsed))
        object.__setattr__(self, "valid_from", valid_from)

    def period_at(self, t: time) -> TariffPeriod:
        """The period in force at local time-of-day *t*."""
        starts = [p.start for p in self.periods]
        return self.periods[bisect.bisect_right(starts, t.replace(tzinfo=None)) - 1]


def tariff_for(tariffs: Sequence[Tariff], at: datetime, tz: tzinfo = SHANGHAI) -> Tariff | None:
    """The tariff in force at *at*: the latest ``valid_from`` ≤ *at*'s local date.

    :param at: tz-aware instant, normally the session start.
    :param tz: the tariffs' local time zone.
    :returns: the tariff, or None if none is valid yet.
    :raises TariffError: if *at* is naive, or two tariffs share a
        ``valid_from`` (the choice would be ambiguous).
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise TariffError("at must be timezone-aware")
    seen: set[date] = set()
    for t in tariffs:
        if t.valid_from in seen:
            raise TariffError(f"two tariffs are valid from {t.valid_from}")
        seen.add(t.valid_from)
    local_date = at.astimezone(tz).date()
    candidates = [t for t in tariffs if t.valid_from <= local_date]
    return max(candidates, key=lambda t: t.valid_from, default=None)


@dataclass(frozen=True, slots=True)
class ChargeDetail:
    """The part of a session inside one tariff period (a T/CEC ``ChargeDetail``).

    :ivar start: ``DetailStartTime``, aware, in the tariff's zone.
    :ivar end: ``DetailEndTime``, aware, in the tariff's zone.
    :ivar elec_price: ``ElecPrice``, yuan/kWh (4 dp).
    :ivar service_price: ``SevicePrice``, yuan/kWh (4 dp).
    :ivar power: ``DetailPower``, kWh (``energy_places`` dp).
    :ivar elec_money: ``DetailElecMoney``, yuan (2 dp).
    :ivar service_money: ``DetailSeviceMoney``, yuan (2 dp).
    """

    start: datetime
    end: datetime
    elec_price: Decimal
    service_price: Decimal
    power: Decimal
    elec_money: Decimal
    service_money: Decimal


@dataclass(frozen=True, slots=True)
class SessionCost:
    """Priced session: details in time order and their totals.

    ``total_power == sum(d.power)``, ``total_elec_money == sum(d.elec_money)``,
    ``total_service_money == sum(d.service_money)`` and ``total_money ==
    total_elec_money + total_service_money`` hold exactly.
    """

    started_at: datetime
    stopped_at: datetime
    details: tuple[ChargeDetail, ...]
    total_power: Decimal
    total_elec_money: Decimal
    total_service_money: Decimal
    total_money: Decimal


def _to_decimal_wh(value: object, index: int) -> Decimal:
    if isinstance(value, bool):
        raise TariffError(f"sample {index}: register must be a number")
    if isinstance(value, float):
        value = Decimal(repr(value))
    elif isinstance(value, (int, str)):
        try:
            value = Decimal(value)
        except InvalidOperation:
            raise TariffError(f"sample {index}: register {value!r} is not a number") from None
    if not isinstance(value, Decimal):
        raise TariffError(f"sample {index}: register must be a number")
    if not value.is_finite() or value < 0:
        raise TariffError(f"sample {index}: register must be finite and not negative")
    return value


def _require_aware(dt: object, what: str) -> datetime:
    if not isinstance(dt, datetime):
        raise TariffError(f"{what} must be a datetime")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise TariffError(f"{what} must be timezone-aware")
    return dt.astimezone(UTC)


class _Register:
    """Piecewise-linear energy register over sorted UTC samples."""

    def __init__(self, samples: Sequence[tuple[datetime, object]]) -> None:
        points: list[tuple[datetime, Decimal]] = []
        for i, sample in enumerate(samples):
            try:
                ts, wh = sample
            except (TypeError, ValueError):
                raise TariffError(f"sample {i}: expected (timestamp, register_wh)") from None
            points.append((_require_aware(ts, f"sample {i} timestamp"), _to_decimal_wh(wh, i)))
        if not points:
            raise TariffError("at least one sample is required")
        points.sort(key=lambda p: p[0])
        for (t0, r0), (t1, r1) in zip(points, points[1:]):
            if t0 == t1 and r0 != r1:
                raise TariffError(f"two different readings at {t0.isoformat()}")
            if r1 < r0:
                raise TariffError(
                    f"energy register decreased between {t0.isoformat()} and {t1.isoformat()}"
                )
        self.times = [p[0] for p in points]
        self.values = [p[1] for p in points]

    def wh_at(self, t: datetime) -> Decimal:
        i = bisect.bisect_left(self.times, t)
        if i < len(self.times) and self.times[i] == t:
            return self.values[i]
        if i == 0 or i == len(self.times):
            raise TariffError(f"no readings on both sides of {t.isoformat()}")
        t0, t1 = self.times[i - 1], self.times[i]
        r0, r1 = self.values[i - 1], self.values[i]
        us = timedelta(microseconds=1)
        with localcontext() as ctx:
            ctx.prec = 50
            return r0 + (r1 - r0) * Decimal((t - t0) // us) / Decimal((t1 - t0) // us)


def price_session(
    tariff: Tariff,
    samples: Sequence[tuple[datetime, Decimal | int | float | str]],
    started_at: datetime,
    stopped_at: datetime,
    tz: tzinfo = SHANGHAI,
    *,
    energy_places: int = 3,
) -> SessionCost:
    """Price a charging session under a time-of-use tariff.

    :param tariff: the tariff (see :func:`tariff_for`).
    :param samples: ``(timestamp, register_wh)`` readings of the meter's
        cumulative energy register, timestamps tz-aware, any order. They must
        cover the session: one at or before *started_at* and one at or after
        *stopped_at* (normally meterStart and meterStop). Readings may be int,
        Decimal, str or float (a float is taken by its shortest repr).
    :param started_at: session start, tz-aware.
    :param stopped_at: session stop, tz-aware, not before *started_at*.
    :param tz: time zone of the tariff's wall-clock periods.
    :param energy_places: decimals of kWh kept (0–3, default 3).
    :returns: a :class:`SessionCost` with one :class:`ChargeDetail` per
        period instance the session overlaps (a zero-length session gets one
        detail), detail times expressed in *tz*.
    :raises TariffError: for naive datetimes, stop before start, samples that
        do not cover the session, a decreasing register, or bad readings.

    See the module docstring for the interpolation and rounding rules.
    """
    if not isinstance(energy_places, int) or isinstance(energy_places, bool) or not 0 <= energy_places <= 3:
        raise TariffError("energy_places must be an int from 0 to 3")
    start = _require_aware(started_at, "started_at")
    stop = _require_aware(stopped_at, "stopped_at")
    if stop < start:
        raise TariffError("stopped_at is before started_at")
    register = _Register(samples)
    if register.times[0] > start or register.times[-1] < stop:
        raise TariffError(
            "samples must cover the session: a reading at or before started_at "
            "and one at or after stopped_at"
        )

    # Split points: start, every local period start strictly inside, stop.
    # Each boundary remembers its period, so that a boundary moved by a DST
    # gap still starts the right period.
    boundaries: dict[datetime, TariffPeriod] = {}
    day = start.astimezone(tz).date() - timedelta(days=1)
    last_day = stop.astimezone(tz).date() + timedelta(days=1)
    while day <= last_day:
        for period in tariff.periods:
            b = datetime.combine(day, period.start, tzinfo=tz).astimezone(UTC)
            if start < b < stop:
                boundaries[b] = period
        day += timedelta(days=1)
    points = [start, *sorted(boundaries), stop]
    periods = [tariff.period_at(start.astimezone(tz).time()), *(boundaries[b] for b in points[1:-1])]

    kwh_quantum = Decimal(1).scaleb(-energy_places)

    def kwh_at(t: datetime) -> Decimal:
        with localcontext() as ctx:
            ctx.prec = 50
            return (register.wh_at(t) / 1000).quantize(kwh_quantum, rounding=ROUND_HALF_UP)

    registers = [kwh_at(t) for t in points]
    details: list[ChargeDetail] = []
    for i in range(len(points) - 1):
        seg_start = points[i].astimezone(tz)
        seg_end = points[i + 1].astimezone(tz)
        period = periods[i]
        power = registers[i + 1] - registers[i]
        details.append(
            ChargeDetail(
                start=seg_start,
                end=seg_end,
                elec_price=period.elec_price,
                service_price=period.service_price,
                power=power,
                elec_money=round_fen(power * period.elec_price),
                service_money=round_fen(power * period.service_price),
            )
        )

    total_power = sum((d.power for d in details), Decimal(0).quantize(kwh_quantum))
    total_elec = sum((d.elec_money for d in details), Decimal("0.00"))
    total_service = sum((d.service_money for d in details), Decimal("0.00"))
    return SessionCost(
        started_at=start.astimezone(tz),
        stopped_at=stop.astimezone(tz),
        details=tuple(details),
        total_power=total_power,
        total_elec_money=total_elec,
        total_service_money=total_service,
        total_money=total_elec + total_service,
    )
