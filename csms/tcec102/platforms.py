"""Supervision platforms we exchange T/CEC 102 data with (counterparts), and their status.

A platform is configured with ``csms platform add`` (or the API): its ``OperatorID``, the
four secrets agreed with it (one set, used in both directions: for our pushes and our
``query_token`` call to it, and for its calls to our ``/evcs`` server), its base URL, the
interface version, which interfaces it takes, and our own ``OperatorID`` towards it.

Secrets are stored sealed by :mod:`csms.secretbox`; :class:`Platform` never shows them in
``repr``, and nothing here logs them.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from ..secretbox import SecretBox
from .codec import Secrets

__all__ = [
    "PUSH_INTERFACES", "PULL_INTERFACES", "ALL_INTERFACES", "Platform", "PlatformExists", "add_platform",
    "list_platforms", "remove_platform", "load_platforms", "platform_status", "resume_platform",
    "retry_rejected", "disputed_orders", "PlatformCache",
]

PUSH_INTERFACES = ("notification_stationStatus", "notification_stationInfo", "notification_charge_order_info",
                   "notification_equip_charge_status")
PULL_INTERFACES = ("query_stations_info", "query_station_status", "query_station_stats",
                   "query_equip_business_policy")
ALL_INTERFACES = PUSH_INTERFACES + PULL_INTERFACES

_OPERATOR_RE = re.compile(r"^[A-Za-z0-9]{9}$")


class PlatformExists(ValueError):
    pass


@dataclass(frozen=True)
class Platform:
    id: int
    name: str
    operator_id: str
    our_operator_id: str
    base_url: str
    version: str
    interfaces: tuple[str, ...]
    enabled: bool
    halted: bool
    service_tel: str
    secrets: Secrets = field(repr=False)

    def url(self, interface: str) -> str:
        return f"{self.base_url.rstrip('/')}/evcs/v{self.version}/{interface}"

    def takes(self, interface: str) -> bool:
        return interface in self.interfaces


def _secrets_json(secrets: Secrets) -> bytes:
    return json.dumps({"OperatorSecret": secrets.operator_secret, "DataSecret": secrets.data_secret,
                       "DataSecretIV": secrets.data_secret_iv, "SigSecret": secrets.sig_secret}).encode()


def _open_secrets(box: SecretBox, sealed: bytes) -> Secrets:
    d = json.loads(box.open(sealed))
    return Secrets(d["OperatorSecret"], d["DataSecret"], d["DataSecretIV"], d["SigSecret"])


def validate(*, operator_id: str, our_operator_id: str, base_url: str, version: str,
             interfaces: list[str]) -> None:
    if not operator_id or len(operator_id) > 32:
        raise ValueError("operator_id must be 1-32 characters (the platform's OperatorID)")
    if not _OPERATOR_RE.match(our_operator_id or ""):
        raise ValueError("our_operator_id must be 9 letters or digits (our 组织机构代码)")
    if not re.match(r"^https?://[^\s/]+", base_url or ""):
        raise ValueError("base_url must be an http:// or https:// URL")
    if not re.fullmatch(r"[0-9A-Za-z.]{1,20}", version or ""):
        raise ValueError("version must be like 20160701")
    unknown = sorted(set(interfaces) - set(ALL_INTERFACES))
    if unknown:
        raise ValueError(f"unknown interface(s): {', '.join(unknown)} (known: {', '.join(ALL_INTERFACES)})")


async def add_platform(conn, box: SecretBox, *, name: str, operator_id: str, our_operator_id: str,
                       base_url: str, secrets: Secrets, version: str = "20160701",
                       interfaces: list[str] | None = None, service_tel: str = "",
                       replace: bool = False) -> dict[str, Any]:
    """Add a platform (or with *replace* update the one with this name); return its public row.

    Updating clears a halt (an operator who fixed the secrets wants delivery to resume).
    """
    interfaces = list(dict.fromkeys(interfaces or ALL_INTERFACES))
    validate(operator_id=operator_id, our_operator_id=our_operator_id, base_url=base_url, version=version,
             interfaces=interfaces)
    if not name or len(name) > 64:
        raise ValueError("name must be 1-64 characters")
    sealed = box.seal(_secrets_json(secrets))
    conflict = ("""ON CONFLICT (name) DO UPDATE SET operator_id=EXCLUDED.operator_id,
                   our_operator_id=EXCLUDED.our_operator_id, base_url=EXCLUDED.base_url, version=EXCLUDED.version,
                   interfaces=EXCLUDED.interfaces, secrets=EXCLUDED.secrets, service_tel=EXCLUDED.service_tel,
                   halted_at=NULL, updated_at=now()""" if replace else "")
    try:
        row = await conn.fetchrow(
            f"""INSERT INTO tcec_platforms (name, operator_id, our_operator_id, base_url, version, interfaces,
                    secrets, service_tel)
                VALUES ($1,$2,$3,$4,$5,$6,$7,$8) {conflict}
                RETURNING id, (xmax = 0) AS created""",
            name, operator_id, our_operator_id, base_url, version, interfaces, sealed, service_tel)
    except asyncpg.UniqueViolationError as exc:
        raise PlatformExists(f"a platform with this name or OperatorID exists already ({exc.constraint_name})"
                             ) from None
    await conn.execute("SELECT pg_notify('tcec_platforms', $1)", str(row["id"]))
    return {"id": row["id"], "name": name, "created": row["created"]}


_PUBLIC = """id, name, operator_id, our_operator_id, base_url, version, interfaces, enabled, service_tel,
             halted_at, last_success_at, last_error, last_error_at, created_at, updated_at"""


async def list_platforms(conn) -> list[dict[str, Any]]:
    """Platforms without their secrets."""
    return [dict(r) for r in await conn.fetch(f"SELECT {_PUBLIC} FROM tcec_platforms ORDER BY name")]


async def remove_platform(conn, name: str) -> bool:
    """Remove a platform, its tokens and its outbox (undelivered notifications are dropped)."""
    status = await conn.execute("DELETE FROM tcec_platforms WHERE name=$1", name)
    return status != "DELETE 0"


async def resume_platform(conn, name: str) -> bool:
    """Clear a halt (after Ret 4001) so that delivery resumes."""
    status = await conn.execute(
        "UPDATE tcec_platforms SET halted_at=NULL, updated_at=now() WHERE name=$1", name)
    return status != "UPDATE 0"


async def retry_rejected(conn, name: str) -> int:
    """Put notifications the platform rejected (4003/4004) back into the queue; return how many."""
    status = await conn.execute(
        """UPDATE tcec_outbox o SET state='pending', next_attempt_at=now(), last_error=NULL
           FROM tcec_platforms p WHERE p.id = o.platform_id AND p.name=$1 AND o.state='rejected'""", name)
    return int(status.split()[-1])


async def load_platforms(conn, box: SecretBox, *, enabled_only: bool = True) -> list[Platform]:
    rows = await conn.fetch(
        f"SELECT {_PUBLIC}, secrets FROM tcec_platforms {'WHERE enabled' if enabled_only else ''} ORDER BY id")
    return [Platform(r["id"], r["name"], r["operator_id"], r["our_operator_id"], r["base_url"], r["version"],
                     tuple(r["interfaces"]), r["enabled"], r["halted_at"] is not None, r["service_tel"],
                     _open_secrets(box, r["secrets"])) for r in rows]


async def platform_status(conn) -> list[dict[str, Any]]:
    """Per platform: backlog, oldest undelivered age, last success, last error, rejected, disputed."""
    rows = await conn.fetch(
        """SELECT p.name, p.operator_id, p.enabled, p.halted_at, p.last_success_at, p.last_error, p.last_error_at,
                  coalesce(o.backlog, 0) AS backlog, o.oldest,
                  extract(epoch FROM now() - o.oldest) AS oldest_age_s,
                  coalesce(o.rejected, 0) AS rejected, coalesce(o.delivered, 0) AS delivered,
                  (SELECT count(*) FROM tcec_charge_orders c WHERE c.platform_id = p.id AND c.confirm_result = 1
                     AND c.resolved_at IS NULL) AS disputed
           FROM tcec_platforms p
           LEFT JOIN LATERAL (
               SELECT count(*) FILTER (WHERE state = 'pending') AS backlog,
                      min(created_at) FILTER (WHERE state = 'pending') AS oldest,
                      count(*) FILTER (WHERE state = 'rejected') AS rejected,
                      count(*) FILTER (WHERE state = 'delivered') AS delivered
               FROM tcec_outbox WHERE platform_id = p.id) o ON true
           ORDER BY p.name""")
    out = []
    for r in rows:
        d = dict(r)
        d["oldest_age_s"] = round(float(d["oldest_age_s"]), 1) if d["oldest_age_s"] is not None else None
        d["state"] = ("disabled" if not d["enabled"] else "halted" if d["halted_at"] else
                      "ok" if not d["backlog"] else "backlog")
        out.append(d)
    return out


async def disputed_orders(conn, include_resolved: bool = False) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT p.name AS platform, c.session_id, c.start_charge_seq, c.confirmed_at, c.resolved_at,
                  c.resolved_note, sc.total_power, sc.total_money
           FROM tcec_charge_orders c JOIN tcec_platforms p ON p.id = c.platform_id
           LEFT JOIN session_costs sc ON sc.session_id = c.session_id
           WHERE c.confirm_result = 1 AND ($1 OR c.resolved_at IS NULL)
           ORDER BY c.confirmed_at DESC""", include_resolved)
    return [dict(r) for r in rows]


class PlatformCache:
    """Decrypted platform configs, reloaded at most every *ttl* seconds (for the /evcs server)."""

    def __init__(self, pool, box: SecretBox, ttl: float = 5.0) -> None:
        self.pool, self.box, self.ttl = pool, box, ttl
        self._at = -1e9
        self._by_operator: dict[str, Platform] = {}

    def invalidate(self) -> None:
        self._at = -1e9

    async def by_operator(self, operator_id: str) -> Platform | None:
        age = time.monotonic() - self._at
        # Reload when stale, or on an unknown operator (a platform just added) at most once a second.
        if age > self.ttl or (operator_id not in self._by_operator and age > 1.0):
            platforms = await load_platforms(self.pool, self.box)
            self._by_operator = {p.operator_id: p for p in platforms}
            self._at = time.monotonic()
        return self._by_operator.get(operator_id)


def to_datetime(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None
