"""Write an imported registry file to the database: all-or-nothing, idempotent, with a dry run.

:func:`import_file` parses and validates a CSV/XLSX file (:mod:`reporting.registry_import`),
checks what only the database can tell (an OCPP id already used by another pile), and upserts
the records by id in one transaction:

* piles files → ``stations`` (by ``station_id``) and ``piles`` (by ``pile_id``);
* vehicles files → ``ev_counts`` (by county and year) and ``fleet_counts`` (by county, year and
  fleet type);
* places files → ``places`` (by ``code``).

A row whose values are already stored is left untouched (``updated_at`` does not move), so
re-importing the same file reports every row *unchanged*. Any problem — in any row, or from the
database — means nothing is written. ``dry_run`` does all of it and rolls back, so its counts
are exactly what an import would do. Imported rows are real data: an import over a demo row
clears its ``synthetic`` mark.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pandas as pd

from .geography import Geography, normalise_name
from .registry_import import COLUMNS, KINDS, ImportResult, Problem, parse_rows, read_table

__all__ = ["ImportOutcome", "detect_kind", "import_file", "write_records"]

#: table → (key columns, value columns), in the order of the tables' definitions.
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "stations": (("station_id",), ("name", "operator", "county", "township_code", "village_code", "address", "lon",
                                   "lat", "access", "site_type", "parking_spaces", "centralized", "place_code")),
    "piles": (("pile_id",), ("station_id", "power_kw", "current_type", "connector_count", "commissioned_on",
                             "decommissioned_on", "charge_point_id")),
    "places": (("code",), ("kind", "name", "county", "township_code", "lon", "lat", "a_level", "provincial_resort",
                           "parking_spaces")),
    "ev_counts": (("county", "year"), ("ev_count",)),
    "fleet_counts": (("county", "year", "fleet_type"), ("vehicle_count",)),
}
#: record frame (ImportResult.records key) → table.
FRAME_TABLE = {"stations": "stations", "piles": "piles", "places": "places", "vehicles": "ev_counts",
               "fleets": "fleet_counts"}
_INT_COLS = {"parking_spaces", "connector_count", "a_level", "year", "ev_count", "vehicle_count"}


@dataclass
class ImportOutcome:
    """What an import did (or, with ``dry_run``, would do). ``counts``: table → inserted/updated/unchanged."""

    kind: str
    filename: str | None
    dry_run: bool
    result: ImportResult
    db_errors: list[Problem] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    import_id: int | None = None

    @property
    def errors(self) -> list[Problem]:
        return sorted([*self.result.errors, *self.db_errors], key=lambda p: (p.row or 0))

    @property
    def ok(self) -> bool:
        return not self.errors

    def report(self) -> str:
        """Every problem with its row number, then what was (or would be) written."""
        ok = self.ok
        state = ("试运行 dry run, nothing written" if self.dry_run else "已导入 imported") if ok else \
            "失败，未导入任何数据 FAILED, nothing imported"
        lines = [f"{self.filename or '(upload)'}: {self.kind}, {self.result.rows} 行 rows — {state}; "
                 f"{len(self.errors)} 个错误 errors, {len(self.result.warnings)} 个警告 warnings"]
        lines += [f"  错误 error   {p}" for p in self.errors]
        lines += [f"  警告 warning {p}" for p in self.result.warnings]
        for table, c in self.counts.items():
            lines.append(f"  {table}: {c['inserted']} 新增 inserted, {c['updated']} 更新 updated, "
                         f"{c['unchanged']} 未变 unchanged")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        def prob(p: Problem) -> dict[str, Any]:
            return {"row": p.row, "column": p.column, "message": p.message}

        return {"kind": self.kind, "filename": self.filename, "rows": self.result.rows, "ok": self.ok,
                "dry_run": self.dry_run, "imported": self.ok and not self.dry_run, "import_id": self.import_id,
                "errors": [prob(p) for p in self.errors], "warnings": [prob(p) for p in self.result.warnings],
                "counts": self.counts}


def detect_kind(headers: list[str]) -> str | None:
    """The import kind whose required columns all appear among *headers* (None when not exactly one)."""
    from .registry_import import _header_index  # the parser's own header matching

    keys = [normalise_name(h) for h in headers if h]
    keys += [k[k.rfind("(") + 1:-1] for k in keys if k.endswith(")") and "(" in k]
    found = []
    for kind in KINDS:
        index = _header_index(kind)
        ids = {index.get(k) for k in keys} | set(keys)
        if all(c.id in ids for c in COLUMNS[kind] if c.required):
            found.append(kind)
    if len(found) > 1 and "piles" in found:  # a piles file also carries a county column etc.
        found = ["piles"]
    return found[0] if len(found) == 1 else None


def _py(v: Any, col: str) -> Any:
    if v is None or v is pd.NaT:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if v is pd.NA:
        return None
    if isinstance(v, pd.Timestamp):
        return v.date()
    if hasattr(v, "item"):  # numpy scalars
        v = v.item()
    if isinstance(v, float) and col in _INT_COLS:
        return int(v)
    if isinstance(v, dt.datetime):
        return v.date()
    return v


def _records(df: pd.DataFrame, cols: tuple[str, ...]) -> list[tuple]:
    return [tuple(_py(v, c) for v, c in zip(row, cols)) for row in df[list(cols)].itertuples(index=False)]


async def _upsert(conn: asyncpg.Connection, table: str, df: pd.DataFrame, synthetic: bool = False) -> dict[str, int]:
    keys, values = TABLES[table]
    cols = keys + values
    if df.empty:
        return {"inserted": 0, "updated": 0, "unchanged": 0}
    tmp = f"_import_{table}"
    await conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {tmp} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
    await conn.execute(f"TRUNCATE {tmp}")
    await conn.copy_records_to_table(tmp, records=_records(df, cols), columns=list(cols))
    all_cols = (*cols, "synthetic")
    set_list = ", ".join(f"{c} = EXCLUDED.{c}" for c in (*values, "synthetic"))
    cur = ", ".join(f"{table}.{c}" for c in (*values, "synthetic"))
    new = ", ".join(f"EXCLUDED.{c}" for c in (*values, "synthetic"))
    rows = await conn.fetch(
        f"""INSERT INTO {table} ({', '.join(all_cols)})
            SELECT {', '.join(cols)}, {'true' if synthetic else 'false'} FROM {tmp}
            ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {set_list}
            WHERE ({cur}) IS DISTINCT FROM ({new})
            RETURNING (xmax = 0) AS inserted""")
    inserted = sum(1 for r in rows if r["inserted"])
    return {"inserted": inserted, "updated": len(rows) - inserted, "unchanged": len(df) - len(rows)}


async def _check_piles(conn: asyncpg.Connection, piles: pd.DataFrame) -> list[Problem]:
    """Database-level problems of a piles file: OCPP ids held by other piles."""
    problems = []
    cp = piles[piles["charge_point_id"].notna()]
    if cp.empty:
        return problems
    rows = await conn.fetch(
        """SELECT pile_id, charge_point_id FROM piles
           WHERE charge_point_id = ANY($1::text[]) AND NOT (pile_id = ANY($2::text[]))""",
        list(cp["charge_point_id"]), list(piles["pile_id"]))
    held = {r["charge_point_id"]: r["pile_id"] for r in rows}
    for i, row in cp.iterrows():
        other = held.get(row["charge_point_id"])
        if other is not None:
            problems.append(Problem(int(i) + 2, "charge_point_id",
                                    f"OCPP编号 {row['charge_point_id']} 已属于充电桩 {other} OCPP id already belongs to "
                                    f"pile {other} in the registry"))
    return problems


async def write_records(conn: asyncpg.Connection, kind: str, records: dict[str, pd.DataFrame], *,
                        synthetic: bool = False) -> dict[str, dict[str, int]]:
    """Upsert validated records (inside the caller's transaction); return counts per table."""
    counts: dict[str, dict[str, int]] = {}
    if kind == "piles":
        piles = records["piles"]
        # Free OCPP ids that move between piles of this file before the upsert (the column is UNIQUE).
        await conn.execute(
            """UPDATE piles p SET charge_point_id = NULL
               FROM unnest($1::text[], $2::text[]) AS f(pile_id, cp)
               WHERE p.pile_id = f.pile_id AND p.charge_point_id IS DISTINCT FROM f.cp
                 AND p.charge_point_id IS NOT NULL""",
            list(piles["pile_id"]), [None if pd.isna(v) else v for v in piles["charge_point_id"]])
        counts["stations"] = await _upsert(conn, "stations", records["stations"], synthetic)
        counts["piles"] = await _upsert(conn, "piles", piles, synthetic)
    elif kind == "vehicles":
        counts["ev_counts"] = await _upsert(conn, "ev_counts", records["vehicles"], synthetic)
        counts["fleet_counts"] = await _upsert(conn, "fleet_counts", records["fleets"], synthetic)
    else:
        counts["places"] = await _upsert(conn, "places", records["places"], synthetic)
    return counts


async def import_file(conn: asyncpg.Connection, source: str | Path | bytes, geography: Geography, *,
                      kind: str | None = None, filename: str | None = None, dry_run: bool = False,
                      imported_by: str = "cli", today: dt.date | None = None,
                      tolerance_m: float = 0.0) -> ImportOutcome:
    """Parse, validate and (unless *dry_run* or invalid) upsert a registry file in one transaction."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        data, filename = path.read_bytes(), filename or path.name
    else:
        data = source
    try:
        headers, rows = read_table(data, filename)
    except Exception as exc:  # noqa: BLE001 - any unreadable upload (bad zip, bad encoding …) is a file problem
        res = ImportResult(kind=kind or "?", errors=[Problem(None, None, f"无法读取文件 cannot read the file: {exc}")])
        return ImportOutcome(kind or "?", filename, dry_run, res)
    if kind is None:
        kind = detect_kind(headers)
        if kind is None:
            res = ImportResult(kind="?", rows=len(rows), errors=[Problem(
                1, None, "无法从表头判断文件类型，请指定 --kind cannot tell the kind of file from its header; give "
                         f"--kind ({' | '.join(KINDS)})")])
            return ImportOutcome("?", filename, dry_run, res)
    if not headers:
        res = ImportResult(kind=kind, errors=[Problem(None, None, "文件为空 the file is empty")])
        return ImportOutcome(kind, filename, dry_run, res)
    result = parse_rows(kind, headers, rows, geography, today=today, tolerance_m=tolerance_m)
    out = ImportOutcome(result.kind, filename, dry_run, result)
    if not result.ok:
        return out
    tr = conn.transaction()
    await tr.start()
    try:
        if result.kind == "piles":
            out.db_errors = await _check_piles(conn, result.records["piles"])
        if out.db_errors:
            await tr.rollback()
            return out
        out.counts = await write_records(conn, result.kind, result.records)
        if not dry_run:
            totals = {k: sum(c[k] for c in out.counts.values()) for k in ("inserted", "updated", "unchanged")}
            out.import_id = await conn.fetchval(
                """INSERT INTO registry_imports (kind, filename, sha256, rows, inserted, updated, unchanged, warnings,
                                                 imported_by)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id""",
                result.kind, filename, hashlib.sha256(data).hexdigest(), result.rows, totals["inserted"],
                totals["updated"], totals["unchanged"], len(result.warnings), imported_by)
    except asyncpg.PostgresError as exc:
        await tr.rollback()
        out.db_errors = [Problem(None, None, f"数据库拒绝写入，未导入任何数据 the database refused the data: {exc}")]
        out.counts = {}
        return out
    except BaseException:
        await tr.rollback()
        raise
    if dry_run:
        await tr.rollback()
    else:
        await tr.commit()
    return out
