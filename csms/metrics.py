"""Prometheus metrics: one registry, and the small hooks the rest of the code calls.

Counters and histograms live in :data:`REGISTRY` and are updated where things
happen:

* :func:`ocpp_reply` — the gateway passes every reply it sends to a
  charger-initiated message through it (messages per action and result,
  CALLERRORs sent);
* :func:`observe_batch` — the group committer's ``on_batch`` callback (batch
  size and commit latency);
* :func:`timed_command` — decorates ``Gateway.call`` (CSMS→charger command
  latency, outcomes and timeouts).

Values that are a state rather than an event (connected chargers, database
pool, commit queue, reporting outbox) are read when scraped by an
:class:`AppMetrics` bound to one running :class:`~csms.app.CsmsApp`;
:meth:`AppMetrics.render` returns the whole text exposition.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter as _Tally
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import validation

if TYPE_CHECKING:
    import asyncpg

    from .app import CsmsApp

__all__ = ["REGISTRY", "CONTENT_TYPE", "ocpp_reply", "observe_batch", "timed_command", "AppMetrics",
           "register_outbox_source", "OutboxRow", "MAINTENANCE_LAST_SUCCESS"]

log = logging.getLogger("csms.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE = CONTENT_TYPE_LATEST
VERSIONS = ("1.6", "2.0.1", "2.1")

OCPP_MESSAGES = Counter(
    "csms_ocpp_messages", "Charger-initiated OCPP calls answered, by action and result "
    "(CallResult or the CALLERROR code)", ["version", "action", "result"], registry=REGISTRY)
CALLERRORS_SENT = Counter(
    "csms_ocpp_callerrors_sent", "CALLERRORs sent to chargers, by error code", ["version", "code"],
    registry=REGISTRY)
COMMIT_BATCH_SIZE = Histogram(
    "csms_group_commit_batch_size", "Messages per group commit",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000), registry=REGISTRY)
COMMIT_SECONDS = Histogram(
    "csms_group_commit_seconds", "Latency of one group commit (transaction incl. COPY)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY)
COMMAND_SECONDS = Histogram(
    "csms_command_seconds", "CSMS-to-charger command latency, by action and outcome "
    "(answered, call_error, timeout, offline, failed)", ["action", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120), registry=REGISTRY)
COMMAND_TIMEOUTS = Counter(
    "csms_command_timeouts", "CSMS-to-charger commands the charger did not answer in time", ["action"],
    registry=REGISTRY)
MAINTENANCE_LAST_SUCCESS = Gauge(
    "csms_maintenance_last_success_timestamp_seconds",
    "Unix time of this node's last successful database maintenance run (0 = never)", registry=REGISTRY)


# ----------------------------------------------------------------------------- event hooks
def _action_label(version: str, action: str) -> str:
    # Actions come from chargers: only names with a schema for the version become labels, so that a
    # misbehaving charger cannot create unbounded label values.
    try:
        return action if validation.has_schema(version, action) else "other"
    except Exception:  # noqa: BLE001 - metrics never break message handling
        return "other"


def _version_label(version: str) -> str:
    return version if version in VERSIONS else "other"


def ocpp_reply(version: str, action: str | None, reply: str | None) -> str | None:
    """Count a reply to a charger's message and return it unchanged.

    *action* is None when the frame could not be parsed far enough to know it
    (the reply is then a CALLERROR about the frame itself).
    """
    if reply is None:
        return reply
    try:
        v = _version_label(version)
        result = "CallResult"
        if reply.startswith("[4"):
            result = str(orjson.loads(reply)[2])
            CALLERRORS_SENT.labels(v, result).inc()
        if action is not None:
            OCPP_MESSAGES.labels(v, _action_label(version, action), result).inc()
    except Exception:  # noqa: BLE001
        log.debug("could not count a reply", exc_info=True)
    return reply


def observe_batch(size: int, seconds: float) -> None:
    """``GroupCommitter(on_batch=...)``: one committed batch of *size* items that took *seconds*."""
    COMMIT_BATCH_SIZE.observe(size)
    COMMIT_SECONDS.observe(seconds)


_OUTCOMES = {"CommandTimeout": "timeout", "ChargerOffline": "offline", "CommandRejected": "call_error",
             "TimeoutError": "timeout"}


def timed_command(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Decorator for ``Gateway.call(self, cp_id, action, payload, timeout)``."""

    @functools.wraps(fn)
    async def wrapper(self: Any, cp_id: str, action: str, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        outcome = "answered"
        try:
            return await fn(self, cp_id, action, *args, **kwargs)
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception as exc:
            outcome = _OUTCOMES.get(type(exc).__name__, "failed")
            if outcome == "timeout":
                COMMAND_TIMEOUTS.labels(str(action)).inc()
            raise
        finally:
            if outcome != "cancelled":
                COMMAND_SECONDS.labels(str(action), outcome).observe(time.perf_counter() - started)

    return wrapper


# ----------------------------------------------------------------------------- reporting outbox
OutboxRow = tuple[str, int, float | None]  # (platform, backlog, oldest pending age in seconds)
OutboxSource = Callable[["asyncpg.Connection"], Awaitable[Iterable[OutboxRow]]]
_outbox_sources: list[OutboxSource] = []


def register_outbox_source(source: OutboxSource) -> OutboxSource:
    """Register ``async def source(conn) -> [(platform, backlog, oldest_age_seconds), ...]``.

    Built in: the T/CEC 102 outbox (``tcec_outbox``), and any other
    ``*outbox`` table with ``platform`` and ``created_at`` columns and a
    ``delivered_at``, ``sent_at`` or ``acked_at`` column (NULL = pending).
    """
    _outbox_sources.append(source)
    return source


async def _tcec_outbox(conn: "asyncpg.Connection") -> list[OutboxRow]:
    """The T/CEC 102 outbox (migration 0005): pending notifications per platform, 0 for idle platforms."""
    if not await conn.fetchval("SELECT to_regclass('tcec_outbox') IS NOT NULL AND "
                               "to_regclass('tcec_platforms') IS NOT NULL"):
        return []
    rows = await conn.fetch(
        """SELECT p.name AS platform, count(o.id) AS n,
                  extract(epoch FROM now() - min(o.created_at))::float8 AS age
           FROM tcec_platforms p LEFT JOIN tcec_outbox o ON o.platform_id = p.id AND o.state = 'pending'
           GROUP BY p.name""")
    return [(r["platform"], r["n"], r["age"]) for r in rows]


async def _discover_outbox(conn: "asyncpg.Connection") -> list[OutboxRow]:
    rows = await conn.fetch(
        """SELECT c.table_schema, c.table_name,
                  array_agg(c.column_name::text) AS columns
           FROM information_schema.columns c
           WHERE c.table_name LIKE '%outbox' AND c.table_schema = ANY(current_schemas(false))
           GROUP BY 1, 2""")
    out: list[OutboxRow] = []
    for row in rows:
        cols = set(row["columns"])
        done = next((c for c in ("delivered_at", "sent_at", "acked_at") if c in cols), None)
        if not {"platform", "created_at"} <= cols or done is None:
            continue
        table = f'"{row["table_schema"]}"."{row["table_name"]}"'
        for r in await conn.fetch(
                f"""SELECT platform::text AS platform, count(*) AS n,
                           extract(epoch FROM now() - min(created_at))::float8 AS age
                    FROM {table} WHERE {done} IS NULL GROUP BY 1"""):
            out.append((r["platform"], r["n"], r["age"]))
    return out


# ----------------------------------------------------------------------------- per-process state
class AppMetrics:
    """State metrics of one running CSMS, plus the shared registry, as Prometheus text."""

    def __init__(self, app: "CsmsApp") -> None:
        self.app = app
        self._outbox: list[OutboxRow] = []
        self._outbox_ok = True
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)  # type: ignore[arg-type]

    def describe(self) -> list:
        return []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        app = self.app
        chargers = GaugeMetricFamily("csms_connected_chargers", "Chargers connected to this node, by OCPP version",
                                     labels=["version"])
        gateway = getattr(app, "gateway", None)
        tally = _Tally(_version_label(c.version) for c in (gateway.connections.values() if gateway else ()))
        for version in (*VERSIONS, *(v for v in tally if v not in VERSIONS)):
            chargers.add_metric([version], tally.get(version, 0))
        yield chargers

        pool = getattr(app, "pool", None)
        if pool is not None:
            size, idle = pool.get_size(), pool.get_idle_size()
            conns = GaugeMetricFamily("csms_db_pool_connections", "Database pool connections, by state",
                                      labels=["state"])
            conns.add_metric(["in_use"], size - idle)
            conns.add_metric(["idle"], idle)
            yield conns
            yield GaugeMetricFamily("csms_db_pool_max_connections", "Database pool size limit",
                                    value=pool.get_max_size())

        committer = getattr(app, "committer", None)
        if committer is not None:
            yield GaugeMetricFamily("csms_group_commit_queue", "Messages waiting for a group commit",
                                    value=committer.backlog)

        backlog = GaugeMetricFamily("csms_outbox_backlog", "Reports waiting for delivery, by platform",
                                    labels=["platform"])
        oldest = GaugeMetricFamily("csms_outbox_oldest_age_seconds",
                                   "Age of the oldest undelivered report, by platform", labels=["platform"])
        for platform, n, age in self._outbox:
            backlog.add_metric([platform], n)
            oldest.add_metric([platform], age or 0.0)
        yield backlog
        yield oldest
        yield GaugeMetricFamily("csms_outbox_scrape_ok", "1 if the outbox could be read at this scrape",
                                value=1 if self._outbox_ok else 0)
        yield GaugeMetricFamily("csms_ready", "1 when this node is accepting chargers",
                                value=0 if getattr(app, "stopping", False) else 1)

    async def refresh(self, timeout: float = 2.0) -> None:
        """Read the values that need the database (the outbox); keeps the last ones on failure."""
        pool = getattr(self.app, "pool", None)
        if pool is None:
            return
        try:
            async with asyncio.timeout(timeout):
                async with pool.acquire() as conn:
                    rows: list[OutboxRow] = []
                    for source in (_tcec_outbox, _discover_outbox, *_outbox_sources):
                        rows.extend(await source(conn))
            merged: dict[str, list] = {}
            for platform, n, age in rows:
                cur = merged.setdefault(str(platform), [0, None])
                cur[0] += int(n)
                if age is not None:
                    cur[1] = age if cur[1] is None else max(cur[1], age)
            self._outbox = [(p, n, a) for p, (n, a) in sorted(merged.items())]
            self._outbox_ok = True
        except Exception as exc:  # noqa: BLE001 - a scrape never fails because the database does
            log.debug("outbox metrics unavailable: %s", exc)
            self._outbox_ok = False

    async def render(self) -> bytes:
        await self.refresh()
        return generate_latest(REGISTRY) + generate_latest(self.registry)
