"""Shared pieces of the API: pagination, filters, time parameters, SQL building."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import asyncpg
from fastapi import Query, Request
from pydantic import BaseModel

from ..commands import Timestamp

__all__ = ["Page", "Paging", "paging", "Where", "fetch_page", "app_of", "Timestamp", "ID_MAX", "CP_ID_MAX"]

T = TypeVar("T")

ID_MAX = 2 ** 63 - 1
CP_ID_MAX = 64


class Page(BaseModel, Generic[T]):
    """One page of a list: ``items``, the ``total`` matching the filters, and the paging used."""

    items: list[T]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class Paging:
    limit: int
    offset: int


def paging(limit: int = Query(100, ge=1, le=1000, description="Items per page"),
           offset: int = Query(0, ge=0, le=10_000_000, description="Items to skip")) -> Paging:
    return Paging(limit, offset)


def app_of(request: Request):
    """The running :class:`csms.app.CsmsApp` (pool, router, bus, settings)."""
    return request.app.state.csms


@dataclass
class Where:
    """WHERE clauses with positional parameters: ``w.add("status = {}", value)``."""

    clauses: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, clause: str, *values: Any) -> Where:
        self.clauses.append(clause.format(*(self.arg(v) for v in values)))
        return self

    def add_if(self, value: Any, clause: str) -> Where:
        if value is not None:
            self.add(clause, value)
        return self

    def add_station(self, station: str | None, column: str = "charge_point_id") -> Where:
        """Only rows of chargers assigned to *station* (when given)."""
        return self.add_if(station, f"{column} IN (SELECT id FROM charge_points WHERE station_id = {{}})")

    def sql(self) -> str:
        return ("WHERE " + " AND ".join(f"({c})" for c in self.clauses)) if self.clauses else ""


async def fetch_page(db: asyncpg.Pool | asyncpg.Connection, select: str, where: Where, order: str,
                     page: Paging) -> dict[str, Any]:
    """One :class:`Page` of ``select`` (a query without WHERE/ORDER/LIMIT): items and the total count."""
    w = where.sql()
    args = list(where.args)
    sql = (f"SELECT *, count(*) OVER () AS _total FROM ({select} {w}) AS q ORDER BY {order} "
           f"LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}")
    rows = await db.fetch(sql, *args, page.limit, page.offset)
    if rows:
        total = rows[0]["_total"]
    else:
        total = await db.fetchval(f"SELECT count(*) FROM ({select} {w}) AS q", *args)
    return {"items": [{k: v for k, v in r.items() if k != "_total"} for r in rows], "total": total,
            "limit": page.limit, "offset": page.offset}
