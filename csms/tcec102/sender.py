"""Background delivery of the outbox to the platforms, and the periodic T/CEC jobs.

:class:`TcecLink` is started by :class:`csms.app.CsmsApp` on every node. It runs:

* one :class:`PlatformSender` per enabled platform. A sender delivers only while it holds
  the platform's PostgreSQL advisory lock (``pg_try_advisory_lock(0x7463, platform id)``
  on a connection of its own), so exactly one node delivers a given platform at a time; if
  that node dies its connection closes, the lock is released and another node takes over.
* a scheduler (one node at a time, by a transaction-level advisory lock) that every
  ``tcec_reconcile_interval`` seconds queues status 0 for chargers that went offline (and
  the current status for connectors a new platform has not seen), station information for
  registry changes, and ``notification_equip_charge_status`` for sessions running longer
  than ``tcec_charge_status_interval`` since their last one.

Delivery rules
    * Per ordering key (a connector, a station) in ``seq`` order: only the oldest pending
      notification of a key is ever in flight; keys are delivered concurrently.
    * Before the first attempt the envelope's ``TimeStamp``/``Seq`` are fixed and committed;
      every resend (after a failure or a crash) reuses them and the same ``StartChargeSeq``,
      so a platform that did receive a message before we could record its answer can
      recognise the resend.
    * ``Ret 0``: the row is marked delivered in the same transaction that records the
      answer (and a charge order's ``ConfirmResult``; 1 = disputed, flagged for the operator).
    * Network errors, HTTP errors, ``Ret -1`` and ``Ret 500``: retried with exponential
      backoff (``tcec_retry_base`` doubling up to ``tcec_retry_cap``) per notification; when
      a whole round fails the platform is paused with the same backoff.
    * ``Ret 4002``: a new token is fetched with ``query_token`` and the message resent.
    * ``Ret 4001`` (or a response whose signature does not verify; or ``query_token``
      refused): the platform is *halted* -- nothing is lost, nothing is sent until an operator
      fixes the secrets (``csms platform add --replace``) or runs ``csms platform resume``.
    * ``Ret 4003`` / ``4004``: that notification is *rejected* (a bug on one side, not a
      blip): flagged, counted in ``csms platform status``, not retried until ``csms platform
      retry``; later notifications of its key go on.

Nothing here depends on wall-clock durations other than the backoff delays: an outage of
ten minutes or ten hours leaves the same rows pending and is drained the same way, which is
why the tests can simulate long outages with a short ``tcec_retry_cap``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx

from ..secretbox import secret_box
from . import outbox
from .codec import CONTENT_TYPE, PlatformError, Ret, SeqGenerator, decode_response, dumps_envelope, encode_request
from .platforms import Platform, load_platforms

__all__ = ["TcecLink", "PlatformSender", "LOCK_CLASS", "start_link", "stop_link"]

log = logging.getLogger("csms.tcec102.sender")

LOCK_CLASS = 0x7463            # "tc": pg_advisory_lock(LOCK_CLASS, platform id)
_SCHEDULER_LOCK = 0x7463_0001  # one scheduler at a time (transaction-level)
_MAX_CONCURRENT_KEYS = 8
_HEADS_PER_ROUND = 500

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class _Outcome:
    kind: str                 # ok | transient | token | halt | reject
    error: str | None = None
    payload: dict[str, Any] | None = None


class _Halt(Exception):
    pass


class PlatformSender:
    """Delivers one platform's outbox while holding its advisory lock."""

    def __init__(self, link: "TcecLink", platform_id: int) -> None:
        self.link = link
        self.platform_id = platform_id
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self._token: str | None = None
        self._token_expires: datetime | None = None
        self._failed_rounds = 0
        self._pause_until: datetime | None = None
        self.platform: Platform | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"tcec-sender-{self.platform_id}")

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _run(self) -> None:
        link = self.link
        while True:
            lock_conn: asyncpg.Connection | None = None
            try:
                lock_conn = await asyncpg.connect(link.database_url)
                while not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS,
                                                   self.platform_id):
                    await self._sleep(link.poll_interval * 2)
                log.info("delivering platform", extra={"platform_id": self.platform_id})
                while True:
                    delay = await self._round()
                    if lock_conn.is_closed():
                        raise ConnectionError("lock connection lost")
                    if delay is None:
                        continue
                    await self._sleep(delay)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - database trouble: retry after a pause
                log.warning("platform sender error: %r", exc, extra={"platform_id": self.platform_id})
                await asyncio.sleep(min(5.0, link.poll_interval * 5))
            finally:
                if lock_conn is not None:
                    with contextlib.suppress(Exception):
                        await lock_conn.close(timeout=2)

    async def _sleep(self, seconds: float) -> None:
        self.wake.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=max(0.01, seconds))

    # ------------------------------------------------------------------ rounds
    async def _load(self) -> Platform | None:
        platforms = await load_platforms(self.link.pool, self.link.box, enabled_only=False)
        for p in platforms:
            if p.id == self.platform_id:
                if self.platform is not None and p.secrets != self.platform.secrets:
                    self._token = None
                self.platform = p
                return p
        return None

    async def _round(self) -> float | None:
        """Deliver what is due; return seconds to wait, or None to go on at once."""
        link = self.link
        platform = await self._load()
        if platform is None or not platform.enabled or platform.halted:
            return link.poll_interval * 4
        now = link.clock()
        if self._pause_until and now < self._pause_until:
            return (self._pause_until - now).total_seconds()
        heads = await link.pool.fetch(
            """SELECT DISTINCT ON (order_key) id, interface, order_key, seq, payload, session_id, start_charge_seq,
                      attempts, next_attempt_at, stamp_ts, stamp_seq
               FROM tcec_outbox WHERE platform_id=$1 AND state='pending' ORDER BY order_key, seq LIMIT $2""",
            self.platform_id, _HEADS_PER_ROUND)
        if not heads:
            return link.poll_interval
        due = [h for h in heads if h["next_attempt_at"] <= now]
        if not due:
            wait = min((h["next_attempt_at"] - now).total_seconds() for h in heads)
            return min(max(wait, 0.01), link.poll_interval)
        sem = asyncio.Semaphore(_MAX_CONCURRENT_KEYS)
        stats = {"ok": 0, "transient": 0}

        async def drain(head) -> None:
            async with sem:
                await self._drain_key(platform, head, stats)

        results = await asyncio.gather(*(drain(h) for h in due), return_exceptions=True)
        for r in results:
            if isinstance(r, _Halt):
                return link.poll_interval
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError):
                raise r
        if stats["transient"] and not stats["ok"]:
            self._failed_rounds += 1
            pause = link.backoff(self._failed_rounds)
            self._pause_until = link.clock() + timedelta(seconds=pause)
            return pause
        self._failed_rounds = 0
        self._pause_until = None
        return None if stats["ok"] else link.poll_interval

    async def _drain_key(self, platform: Platform, item, stats: dict[str, int]) -> None:
        """Send the key's head and, while that works, the following items of the same key."""
        link = self.link
        while item is not None:
            outcome = await self._deliver(platform, item)
            if outcome.kind == "ok":
                stats["ok"] += 1
            elif outcome.kind == "halt":
                await self._halt(outcome.error or "halted")
                raise _Halt()
            else:
                if outcome.kind == "transient":
                    stats["transient"] += 1
                return
            item = await link.pool.fetchrow(
                """SELECT id, interface, order_key, seq, payload, session_id, start_charge_seq, attempts,
                          next_attempt_at, stamp_ts, stamp_seq
                   FROM tcec_outbox WHERE platform_id=$1 AND order_key=$2 AND state='pending'
                   ORDER BY seq LIMIT 1""", self.platform_id, item["order_key"])
            if item is not None and item["next_attempt_at"] > link.clock():
                return

    # ------------------------------------------------------------------ one message
    async def _deliver(self, platform: Platform, item) -> _Outcome:
        link = self.link
        stamp_ts, stamp_seq = item["stamp_ts"], item["stamp_seq"]
        if stamp_ts is None:
            stamp_ts, stamp_seq = link.seq()
        # Fix the stamp (first attempt) and count the attempt before anything leaves.
        await link.pool.execute(
            """UPDATE tcec_outbox SET stamp_ts = coalesce(stamp_ts, $2), stamp_seq = coalesce(stamp_seq, $3),
                   attempts = attempts + 1, last_attempt_at = now() WHERE id = $1""",
            item["id"], stamp_ts, stamp_seq)
        stamp_ts, stamp_seq = await link.pool.fetchval(
            "SELECT ARRAY[stamp_ts, stamp_seq] FROM tcec_outbox WHERE id=$1", item["id"])
        body = dumps_envelope(encode_request(platform.our_operator_id, json.loads(item["payload"]),
                                             platform.secrets, now=lambda: (stamp_ts, stamp_seq)))
        outcome = await self._post(platform, item["interface"], body)
        if outcome.kind == "token":
            self._token = None
            outcome = await self._post(platform, item["interface"], body)
            if outcome.kind == "token":
                outcome = _Outcome("transient", "Ret 4002 with a fresh token")
        await self._record(platform, item, outcome)
        return outcome

    async def _post(self, platform: Platform, interface: str, body: bytes) -> _Outcome:
        try:
            token = await self._get_token(platform)
        except _Halt as exc:
            return _Outcome("halt", str(exc))
        except _Transient as exc:
            return _Outcome("transient", str(exc))
        return await self._call(platform, interface, body, token)

    async def _call(self, platform: Platform, interface: str, body: bytes, token: str | None) -> _Outcome:
        headers = {"Content-Type": CONTENT_TYPE}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            resp = await self.link.http.post(platform.url(interface), content=body, headers=headers)
        except httpx.HTTPError as exc:
            return _Outcome("transient", f"network: {exc.__class__.__name__}")
        try:
            decoded = decode_response(resp.content, platform.secrets)
        except PlatformError as exc:
            if exc.ret == Ret.SIG_ERROR and resp.status_code == 200:
                return _Outcome("halt", "the platform's response signature does not verify (check the secrets)")
            return _Outcome("transient", f"HTTP {resp.status_code}: unreadable response ({exc.ret})")
        ret = int(decoded.ret)
        if ret == Ret.OK:
            return _Outcome("ok", payload=decoded.payload or {})
        msg = f"Ret {ret} {decoded.msg}".strip()
        if ret == Ret.TOKEN_ERROR:
            return _Outcome("token", msg)
        if ret == Ret.SIG_ERROR:
            return _Outcome("halt", msg)
        if ret in (Ret.PARAM_ERROR, Ret.BUSINESS_ERROR):
            return _Outcome("reject", msg)
        return _Outcome("transient", msg)

    async def _get_token(self, platform: Platform) -> str:
        now = self.link.clock()
        if self._token and self._token_expires and now < self._token_expires:
            return self._token
        body = dumps_envelope(encode_request(
            platform.our_operator_id,
            {"OperatorID": platform.our_operator_id, "OperatorSecret": platform.secrets.operator_secret},
            platform.secrets, now=self.link.seq))
        out = await self._call(platform, "query_token", body, None)
        if out.kind == "halt":
            raise _Halt(f"query_token: {out.error}")
        if out.kind != "ok":
            raise _Transient(f"query_token: {out.error}")
        data = out.payload or {}
        if data.get("SuccStat") != 0 or not data.get("AccessToken"):
            raise _Halt(f"query_token refused (FailReason {data.get('FailReason')})")
        ttl = data.get("TokenAvailableTime")
        ttl = float(ttl) if isinstance(ttl, (int, float)) and ttl > 0 else 3600.0
        self._token = str(data["AccessToken"])
        self._token_expires = now + timedelta(seconds=max(1.0, ttl * 0.9 - 5))
        return self._token

    async def _record(self, platform: Platform, item, outcome: _Outcome) -> None:
        link = self.link
        async with link.pool.acquire() as conn, conn.transaction():
            if outcome.kind == "ok":
                payload = outcome.payload or {}
                await conn.execute(
                    """UPDATE tcec_outbox SET state='delivered', delivered_at=now(), response=$2, last_error=NULL
                       WHERE id=$1 AND state='pending'""", item["id"], json.dumps(payload, ensure_ascii=False))
                if item["interface"] == "notification_charge_order_info" and item["session_id"] is not None:
                    confirm = payload.get("ConfirmResult")
                    confirm = confirm if isinstance(confirm, int) and not isinstance(confirm, bool) else None
                    await conn.execute(
                        """UPDATE tcec_charge_orders SET confirm_result=$3, confirmed_at=now()
                           WHERE platform_id=$1 AND session_id=$2""", self.platform_id, item["session_id"], confirm)
                    if confirm == 1:
                        log.warning("charge order disputed by the platform",
                                    extra={"platform": platform.name, "start_charge_seq": item["start_charge_seq"]})
                await conn.execute("UPDATE tcec_platforms SET last_success_at=now() WHERE id=$1", self.platform_id)
            elif outcome.kind == "reject":
                await conn.execute(
                    "UPDATE tcec_outbox SET state='rejected', last_error=$2 WHERE id=$1", item["id"], outcome.error)
                await self._note_error(conn, f"{item['interface']} #{item['id']} rejected: {outcome.error}")
                log.error("notification rejected by the platform", extra={
                    "platform": platform.name, "interface": item["interface"], "error": outcome.error})
            elif outcome.kind == "transient":
                delay = link.backoff(item["attempts"] + 1)
                await conn.execute(
                    "UPDATE tcec_outbox SET next_attempt_at=$2, last_error=$3 WHERE id=$1",
                    item["id"], link.clock() + timedelta(seconds=delay), outcome.error)
                await self._note_error(conn, f"{item['interface']}: {outcome.error}")
                log.info("delivery failed; will retry", extra={
                    "platform": platform.name, "interface": item["interface"], "error": outcome.error,
                    "retry_in_s": round(delay, 2)})

    async def _note_error(self, conn, error: str) -> None:
        await conn.execute("UPDATE tcec_platforms SET last_error=$2, last_error_at=now() WHERE id=$1",
                           self.platform_id, error[:500])

    async def _halt(self, error: str) -> None:
        async with self.link.pool.acquire() as conn:
            await conn.execute(
                "UPDATE tcec_platforms SET halted_at=now(), last_error=$2, last_error_at=now() WHERE id=$1",
                self.platform_id, f"halted: {error}"[:500])
        self._token = None
        log.error("platform halted: delivery stopped until an operator resumes it",
                  extra={"platform_id": self.platform_id, "error": error})


class _Transient(Exception):
    pass


class TcecLink:
    """The node's T/CEC 102 machinery: senders for every platform and the scheduler."""

    def __init__(self, settings, pool: asyncpg.Pool, database_url: str, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.pool = pool
        self.database_url = database_url
        self.clock: Clock = clock or _utcnow
        self.box = secret_box(settings)
        self.seq = SeqGenerator()
        self.poll_interval = min(1.0, settings.tcec_reconcile_interval)
        self.http: httpx.AsyncClient | None = None
        self.senders: dict[int, PlatformSender] = {}
        self._tasks: list[asyncio.Task] = []
        self._listener: asyncpg.Connection | None = None
        self._platforms_changed = asyncio.Event()

    def backoff(self, attempt: int) -> float:
        base, cap = self.settings.tcec_retry_base, self.settings.tcec_retry_cap
        delay = min(cap, base * (2 ** max(0, min(attempt - 1, 30))))
        return delay * random.uniform(0.8, 1.0)

    async def start(self) -> None:
        self.http = httpx.AsyncClient(timeout=self.settings.tcec_request_timeout, trust_env=False)
        self._tasks = [asyncio.create_task(self._supervise(), name="tcec-supervisor"),
                       asyncio.create_task(self._schedule(), name="tcec-scheduler")]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(s.stop() for s in self.senders.values()), return_exceptions=True)
        self.senders.clear()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close(timeout=2)
        if self.http is not None:
            await self.http.aclose()

    def _on_notify(self, connection, pid, channel: str, payload: str) -> None:
        if channel == "tcec_platforms":
            self._platforms_changed.set()
            for s in self.senders.values():
                s.wake.set()
            return
        with contextlib.suppress(ValueError):
            sender = self.senders.get(int(payload))
            if sender is not None:
                sender.wake.set()

    async def _listen(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        self._listener = await asyncpg.connect(self.database_url)
        await self._listener.add_listener(outbox.CHANNEL, self._on_notify)
        await self._listener.add_listener("tcec_platforms", self._on_notify)

    async def _supervise(self) -> None:
        while True:
            try:
                await self._listen()
                ids = {r["id"] for r in await self.pool.fetch("SELECT id FROM tcec_platforms WHERE enabled")}
                for pid in ids - self.senders.keys():
                    sender = PlatformSender(self, pid)
                    self.senders[pid] = sender
                    sender.start()
                for pid in set(self.senders) - ids:
                    await self.senders.pop(pid).stop()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.warning("T/CEC supervisor: %r", exc)
                self._listener = None
            self._platforms_changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._platforms_changed.wait(), timeout=self.settings.tcec_reconcile_interval)

    async def _schedule(self) -> None:
        while True:
            try:
                await self.run_jobs()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.warning("T/CEC scheduler: %r", exc)
            await asyncio.sleep(self.settings.tcec_reconcile_interval)

    async def run_jobs(self) -> dict[str, int]:
        """One pass of the periodic jobs (if no other node is running them right now)."""
        done = {"status": 0, "stations": 0, "charge_status": 0}
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _SCHEDULER_LOCK):
                return done
            if not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM tcec_platforms WHERE enabled)"):
                return done
            done["status"] = await outbox.reconcile_status(conn)
            done["stations"] = await outbox.reconcile_stations(conn)
            await conn.execute("DELETE FROM tcec_tokens WHERE expires_at < now() - interval '1 day'")
            if await conn.fetchval("""SELECT EXISTS (SELECT 1 FROM tcec_platforms WHERE enabled
                                      AND 'notification_equip_charge_status' = ANY(interfaces))"""):
                due = await conn.fetch(
                    """SELECT s.id FROM sessions s LEFT JOIN tcec_session_pushes t ON t.session_id = s.id
                       WHERE s.stopped_at IS NULL AND s.started_at IS NOT NULL
                         AND s.started_at > now() - interval '7 days'
                         AND coalesce(t.last_at, s.started_at) <= now() - make_interval(secs => $1)
                       ORDER BY s.id LIMIT 500""", float(self.settings.tcec_charge_status_interval))
                now = self.clock()
                for r in due:
                    if await outbox.enqueue_equip_charge_status(conn, r["id"], now):
                        done["charge_status"] += 1
                    await conn.execute(
                        """INSERT INTO tcec_session_pushes (session_id, last_at) VALUES ($1, now())
                           ON CONFLICT (session_id) DO UPDATE SET last_at = now()""", r["id"])
        return done


async def start_link(app) -> TcecLink | None:
    """Start the T/CEC machinery for a running :class:`csms.app.CsmsApp` (unless ``tcec_enabled`` is off)."""
    if not getattr(app.settings, "tcec_enabled", True):
        return None
    link = TcecLink(app.settings, app.pool, app.database_url)
    await link.start()
    return link


async def stop_link(link: TcecLink | None) -> None:
    if link is not None:
        await link.stop()
