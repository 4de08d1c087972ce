"""Tariffs in the database, and pricing of stored sessions (issue 6).

Model (``schemas/migrations/0005_tcec102.sql``)
    * ``tariffs``: named time-of-use schedules. Each has versions (``tariff_versions``),
      each valid from a local (Beijing) date, with periods (``tariff_periods``: start time,
      electricity price, service fee, yuan/kWh with 4 decimals). Versions are never edited:
      adding a version with a later date changes prices from that date on.
    * ``tariff_assignments``: which tariff a station uses, from when on; ``station_id`` NULL
      is the operator default. Only added to, so history is kept.

Which tariff prices a session
    The session's station is ``charge_points.station_id``, else the station of the registry
    pile whose ``charge_point_id`` is the charger. The assignment in force at the session
    start (latest ``valid_from`` ≤ start) for that station, else the default assignment in
    force then, names the tariff; of its versions, the one valid on the local date of the
    session start prices the whole session (:func:`csms.tariffs.tariff_for`).

Energy
    The samples are the session's ``Energy.Active.Import.Register`` readings (phase NULL,
    Wh; kWh converted), plus meterStart at the session start and meterStop at the stop.
    Readings outside the session, decreasing readings and readings above meterStop are
    ignored; where no reading exists at a period boundary the register is interpolated
    between the nearest readings (:func:`csms.tariffs.price_session`, whose rounding rules
    apply: totals are sums of details rounded to the fen).

A session is priced once, at its end, inside the transaction that ends it
(:func:`on_session_stopped`, called from :mod:`csms.service`), and the result is kept in
``session_costs``. The same transaction enqueues its ``notification_charge_order_info``
for every platform that takes it (:mod:`csms.tcec102.outbox`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

from .tariffs import SHANGHAI, SessionCost, Tariff, TariffError, TariffPeriod, price_session, tariff_for

__all__ = [
    "TariffRef", "add_tariff_version", "assign_tariff", "list_tariffs", "station_of", "tariff_in_force",
    "session_samples", "price_stored_session", "on_session_stopped", "running_cost", "cost_row",
    "TariffExists", "UnknownTariff", "after_transaction_events", "parse_periods",
]

log = logging.getLogger("csms.pricing")

ENERGY_REGISTER = "Energy.Active.Import.Register"


class TariffExists(ValueError):
    """A version of this tariff already starts on that date (versions are immutable)."""


class UnknownTariff(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class TariffRef:
    tariff_id: int
    version_id: int
    name: str
    tariff: Tariff


# --------------------------------------------------------------------------- tariff admin
async def add_tariff_version(conn: asyncpg.Connection, name: str, valid_from: date,
                             periods: Iterable[TariffPeriod | tuple[Any, Any, Any]],
                             created_by: str | None = None) -> dict[str, Any]:
    """Create tariff *name* (if new) with a version valid from *valid_from*; return it.

    :raises TariffError: invalid periods (see :class:`csms.tariffs.Tariff`).
    :raises TariffExists: the tariff already has a version starting that date.
    """
    tariff = Tariff(periods, valid_from)  # validates
    if not name or len(name) > 100:
        raise TariffError("tariff name must be 1-100 characters")
    async with conn.transaction():
        tid = await conn.fetchval(
            """INSERT INTO tariffs (name) VALUES ($1)
               ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id""", name)
        try:
            async with conn.transaction():
                vid = await conn.fetchval(
                    "INSERT INTO tariff_versions (tariff_id, valid_from, created_by) VALUES ($1,$2,$3) RETURNING id",
                    tid, valid_from, created_by)
        except asyncpg.UniqueViolationError:
            raise TariffExists(f"tariff {name!r} already has a version valid from {valid_from}") from None
        await conn.executemany(
            "INSERT INTO tariff_periods (version_id, start_time, elec_price, service_price) VALUES ($1,$2,$3,$4)",
            [(vid, p.start, p.elec_price, p.service_price) for p in tariff.periods])
    return {"id": tid, "name": name, "version_id": vid, "valid_from": valid_from,
            "periods": [_period_dict(p) for p in tariff.periods]}


def _period_dict(p: TariffPeriod) -> dict[str, Any]:
    return {"start": p.start.strftime("%H:%M:%S"), "elec_price": str(p.elec_price),
            "service_price": str(p.service_price)}


async def assign_tariff(conn: asyncpg.Connection, name: str, station_id: str | None,
                        valid_from: datetime | None = None, created_by: str | None = None) -> dict[str, Any]:
    """Assign tariff *name* to *station_id* (None = operator default) from *valid_from* (default now)."""
    tid = await conn.fetchval("SELECT id FROM tariffs WHERE name=$1", name)
    if tid is None:
        raise UnknownTariff(f"no tariff {name!r}")
    row = await conn.fetchrow(
        """INSERT INTO tariff_assignments (station_id, tariff_id, valid_from, created_by)
           VALUES ($1, $2, coalesce($3, now()), $4) RETURNING id, station_id, valid_from""",
        station_id, tid, valid_from, created_by)
    return {"id": row["id"], "station_id": row["station_id"], "tariff": name, "valid_from": row["valid_from"]}


async def list_tariffs(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    """Every tariff with its versions (oldest first), periods and current assignments."""
    rows = await conn.fetch(
        """SELECT t.id, t.name, v.id AS version_id, v.valid_from, p.start_time, p.elec_price, p.service_price
           FROM tariffs t JOIN tariff_versions v ON v.tariff_id = t.id
           JOIN tariff_periods p ON p.version_id = v.id
           ORDER BY t.name, v.valid_from, p.start_time""")
    assigned = await conn.fetch(
        """SELECT DISTINCT ON (coalesce(a.station_id, '')) a.station_id, t.name, a.valid_from
           FROM tariff_assignments a JOIN tariffs t ON t.id = a.tariff_id
           WHERE a.valid_from <= now()
           ORDER BY coalesce(a.station_id, ''), a.valid_from DESC, a.id DESC""")
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        t = out.setdefault(r["name"], {"id": r["id"], "name": r["name"], "versions": [], "stations": [],
                                       "default": False})
        if not t["versions"] or t["versions"][-1]["version_id"] != r["version_id"]:
            t["versions"].append({"version_id": r["version_id"], "valid_from": r["valid_from"], "periods": []})
        t["versions"][-1]["periods"].append({
            "start": r["start_time"].strftime("%H:%M:%S"), "elec_price": str(r["elec_price"]),
            "service_price": str(r["service_price"])})
    for a in assigned:
        t = out.get(a["name"])
        if t is None:
            continue
        if a["station_id"] is None:
            t["default"] = True
        else:
            t["stations"].append(a["station_id"])
    return list(out.values())


# --------------------------------------------------------------------------- lookup
async def station_of(conn: asyncpg.Connection | asyncpg.Pool, cp_id: str) -> str | None:
    """The station of charger *cp_id*: its ``station_id``, else its registry pile's station."""
    return await conn.fetchval(
        """SELECT coalesce((SELECT station_id FROM charge_points WHERE id = $1),
                           (SELECT station_id FROM piles WHERE charge_point_id = $1 LIMIT 1))""", cp_id)


async def _versions(conn, tariff_id: int) -> list[tuple[int, Tariff]]:
    rows = await conn.fetch(
        """SELECT v.id, v.valid_from, p.start_time, p.elec_price, p.service_price
           FROM tariff_versions v JOIN tariff_periods p ON p.version_id = v.id
           WHERE v.tariff_id = $1 ORDER BY v.valid_from, p.start_time""", tariff_id)
    grouped: dict[int, tuple[date, list]] = {}
    for r in rows:
        grouped.setdefault(r["id"], (r["valid_from"], []))[1].append(
            (r["start_time"], r["elec_price"], r["service_price"]))
    return [(vid, Tariff(periods, valid_from)) for vid, (valid_from, periods) in grouped.items()]


async def tariff_in_force(conn: asyncpg.Connection | asyncpg.Pool, station_id: str | None,
                          at: datetime) -> TariffRef | None:
    """The tariff (version) pricing a session of *station_id* that started at *at*."""
    row = await conn.fetchrow(
        """SELECT a.tariff_id, t.name FROM tariff_assignments a JOIN tariffs t ON t.id = a.tariff_id
           WHERE (a.station_id = $1 OR a.station_id IS NULL) AND a.valid_from <= $2
           ORDER BY (a.station_id IS NULL), a.valid_from DESC, a.id DESC LIMIT 1""", station_id, at)
    if row is None:
        return None
    versions = await _versions(conn, row["tariff_id"])
    chosen = tariff_for([t for _, t in versions], at, SHANGHAI)
    if chosen is None:
        return None
    vid = next(v for v, t in versions if t is chosen)
    return TariffRef(row["tariff_id"], vid, row["name"], chosen)


# --------------------------------------------------------------------------- samples
def _wh(value: float, unit: str | None) -> float:
    return value * 1000.0 if (unit or "Wh").lower() == "kwh" else value


async def session_samples(conn: asyncpg.Connection, session: asyncpg.Record | dict,
                          until: datetime) -> list[tuple[datetime, float]]:
    """Clean, non-decreasing register readings covering [session start, *until*].

    Uses meterStart/meterStop and the stored readings in between (see the module docstring).
    Where the first reading is later than the start (or the last earlier than *until*), the
    register is taken as flat there: no energy is invented.
    """
    start: datetime = session["started_at"]
    rows = await conn.fetch(
        """SELECT sampled_at, value, unit FROM meter_values
           WHERE session_id = $1 AND measurand = $2 AND phase IS NULL AND value IS NOT NULL
             AND sampled_at > $3 AND sampled_at < $4
             AND (location IS NULL OR location = 'Outlet')
           ORDER BY sampled_at""", session["id"], ENERGY_REGISTER, start, until)
    start_wh = session["meter_start_wh"]
    stop_wh = session["meter_stop_wh"] if session["stopped_at"] is not None else None
    points: list[tuple[datetime, float]] = []
    if start_wh is not None:
        points.append((start, float(start_wh)))
    for r in rows:
        v = _wh(float(r["value"]), r["unit"])
        if points and (r["sampled_at"] <= points[-1][0] or v < points[-1][1]):
            continue
        if stop_wh is not None and v > stop_wh:
            continue
        if not points and start_wh is None:
            points.append((start, v))  # no meterStart: flat from the start to the first reading
            if r["sampled_at"] == start:
                continue
        points.append((r["sampled_at"], v))
    if stop_wh is not None and (not points or stop_wh >= points[-1][1]):
        if points and points[-1][0] >= until:
            points.pop()
        points.append((until, float(stop_wh)))
    if not points:
        return []
    if points[-1][0] < until:
        points.append((until, points[-1][1]))
    if points[0][0] > start:
        points.insert(0, (start, points[0][1]))
    return points


def _zero_tariff(at: datetime) -> Tariff:
    return Tariff([("00:00", 0, 0)], at.astimezone(SHANGHAI).date())


def cost_row(cost: SessionCost) -> dict[str, Any]:
    from .tcec102.objects import charge_detail

    return {"total_power": cost.total_power, "total_elec_money": cost.total_elec_money,
            "total_service_money": cost.total_service_money, "total_money": cost.total_money,
            "details": [charge_detail(d) for d in cost.details]}


_SESSION_SQL = """SELECT id, charge_point_id, connector_id, transaction_id, started_at, stopped_at, meter_start_wh,
                         meter_stop_wh, energy_wh, stop_reason, anomaly FROM sessions WHERE id = $1"""


async def _price(conn: asyncpg.Connection, session, until: datetime
                 ) -> tuple[SessionCost | None, TariffRef | None, str | None, str | None]:
    """(cost, tariff ref, station id, error) of *session* up to *until*."""
    station = await station_of(conn, session["charge_point_id"])
    if session["started_at"] is None:
        return None, None, station, "session start unknown"
    if session["anomaly"] == "meter_decreased":
        return None, None, station, "meter register decreased"
    ref = await tariff_in_force(conn, station, session["started_at"])
    samples = await session_samples(conn, session, until)
    if not samples:
        return None, ref, station, "no meter readings"
    error = None
    tariff = ref.tariff if ref else None
    if tariff is None:
        tariff = _zero_tariff(session["started_at"])
        error = "no tariff in force: priced at 0"
    try:
        cost = price_session(tariff, samples, session["started_at"], max(until, session["started_at"]), SHANGHAI)
    except TariffError as exc:
        return None, ref, station, f"cannot price: {exc}"
    return cost, ref, station, error


async def price_stored_session(conn: asyncpg.Connection, session_id: int) -> tuple[SessionCost | None, Any]:
    """Price an ended session and store the result in ``session_costs``; return (cost, session row)."""
    session = await conn.fetchrow(_SESSION_SQL, session_id)
    if session is None or session["stopped_at"] is None:
        return None, session
    cost, ref, station, error = await _price(conn, session, session["stopped_at"])
    values = cost_row(cost) if cost else {"total_power": None, "total_elec_money": None,
                                           "total_service_money": None, "total_money": None, "details": []}
    await conn.execute(
        """INSERT INTO session_costs (session_id, tariff_id, tariff_version_id, station_id, total_power,
               total_elec_money, total_service_money, total_money, details, error, priced_at)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9::text::jsonb,$10, now())
           ON CONFLICT (session_id) DO UPDATE SET tariff_id=EXCLUDED.tariff_id,
               tariff_version_id=EXCLUDED.tariff_version_id, station_id=EXCLUDED.station_id,
               total_power=EXCLUDED.total_power, total_elec_money=EXCLUDED.total_elec_money,
               total_service_money=EXCLUDED.total_service_money, total_money=EXCLUDED.total_money,
               details=EXCLUDED.details, error=EXCLUDED.error, priced_at=now()""",
        session_id, ref.tariff_id if ref else None, ref.version_id if ref else None, station,
        values["total_power"], values["total_elec_money"], values["total_service_money"], values["total_money"],
        orjson.dumps(values["details"]).decode(), error)
    if error:
        log.warning("session priced with a problem", extra={"session_id": session_id, "problem": error})
    return cost, session


async def on_session_stopped(conn: asyncpg.Connection, session_id: int | None) -> None:
    """Hook run in the transaction that ends a session: price it, enqueue its charge order."""
    if session_id is None:
        return
    from .tcec102 import outbox

    try:
        async with conn.transaction():  # a savepoint: a failure here never fails the session's stop
            cost, session = await price_stored_session(conn, session_id)
            if cost is not None and session is not None:
                await outbox.enqueue_charge_order(conn, session_id, cost=cost, session=session)
    except Exception:  # noqa: BLE001 - logged; the session end itself must be recorded
        log.exception("pricing / charge order of a session failed", extra={"session_id": session_id})


async def after_transaction_events(conn: asyncpg.Connection, results: Sequence[Any]) -> None:
    """Hook for the 2.x bulk TransactionEvent handler: run :func:`on_session_stopped` for every
    event that ended its session."""
    for r in results:
        if r is not None and getattr(r, "stopped", False) and not getattr(r, "duplicate", False):
            await on_session_stopped(conn, r.session_id)


async def running_cost(conn: asyncpg.Connection, session_id: int, until: datetime
                       ) -> tuple[SessionCost | None, Any]:
    """The cost of a running session so far (for notification_equip_charge_status)."""
    session = await conn.fetchrow(_SESSION_SQL, session_id)
    if session is None:
        return None, None
    cost, _, _, _ = await _price(conn, session, until)
    return cost, session


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def parse_periods(specs: Sequence[str]) -> list[tuple[time, Decimal, Decimal]]:
    """``["00:00=0.31/0.40", "08:00=0.62/0.60"]`` → periods (start=elec/service, yuan/kWh)."""
    out = []
    for spec in specs:
        try:
            start, prices = spec.split("=", 1)
            elec, service = prices.split("/", 1)
        except ValueError:
            raise TariffError(f"period {spec!r} is not START=ELEC/SERVICE (e.g. 08:00=0.6200/0.6000)") from None
        out.append((start.strip(), elec.strip(), service.strip()))
    return out
