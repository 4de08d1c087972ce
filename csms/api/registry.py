"""The charging-infrastructure registry: import files (admin), templates and status.

``POST /registry/import`` takes the file itself as the request body (CSV or XLSX; the
``filename`` parameter or the content type tells which) — all-or-nothing: a file with any
invalid row imports nothing and the answer (422) lists every problem with its row number.
Re-importing the same file changes nothing (upsert by id). ``dry_run=true`` validates and
counts without writing. Bodies are limited by ``CSMS_API_MAX_BODY_BYTES``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from .auth import ApiRoute, require
from .common import app_of
from .errors import ERROR_RESPONSES, ApiError, ErrorBody

router = APIRouter(tags=["registry"], route_class=ApiRoute, responses=ERROR_RESPONSES)
admin = [Depends(require("admin"))]
anyone = [Depends(require("operator", "bureau"))]

Kind = Literal["piles", "vehicles", "places"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _filename(filename: str | None, content_type: str, body: bytes) -> str:
    if filename:
        suffix = Path(filename).suffix.lower()
        if suffix not in (".csv", ".xlsx", ".xlsm", ".txt"):
            raise ApiError(415, f"unsupported file type {suffix or filename!r}: use .csv or .xlsx")
        return Path(filename).name
    if "spreadsheetml" in content_type or body[:4] == b"PK\x03\x04":
        return "upload.xlsx"
    return "upload.csv"


@router.post("/registry/import", dependencies=admin, summary="Import a registry file (all-or-nothing)",
             responses={400: {"model": ErrorBody, "description": "No file in the body"},
                        415: {"model": ErrorBody, "description": "Not a .csv or .xlsx file"}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "text/csv": {"schema": {"type": "string", "format": "binary"}},
                 XLSX: {"schema": {"type": "string", "format": "binary"}}}}})
async def registry_import(
    request: Request,
    kind: Kind | None = Query(None, description="piles, vehicles or places (default: told by the header)"),
    dry_run: bool = Query(False, description="Validate and count, write nothing"),
    filename: str | None = Query(None, max_length=255, description="The file's name (.csv or .xlsx)"),
    tolerance_m: float = Query(0.0, ge=0, le=10_000, description="Accept points this far outside the county"),
) -> Any:
    from reporting.registry_db import import_file
    from reporting.reports import default_inputs

    body = await request.body()
    if not body:
        raise ApiError(400, "the request body must be the CSV or XLSX file")
    name = _filename(filename, request.headers.get("content-type", ""), body)
    _, geo = default_inputs()
    principal = request.state.principal
    async with app_of(request).pool.acquire() as conn:
        outcome = await import_file(conn, body, geo, kind=kind, filename=name, dry_run=dry_run,
                                    imported_by=f"api:{principal.name}", tolerance_m=tolerance_m)
    result = outcome.as_dict()
    if not outcome.ok:
        raise ApiError(422, f"{len(outcome.errors)} problem(s) in {name}; nothing was imported", "invalid_file",
                       details=result["errors"])
    return result


@router.get("/registry/templates/{kind}", dependencies=anyone, summary="An empty import template",
            responses={200: {"content": {XLSX: {}, "text/csv": {}}}})
async def registry_template(kind: Kind, format: Literal["xlsx", "csv"] = Query("xlsx"),
                            lang: Literal["bilingual", "zh", "en"] = Query("bilingual")) -> Response:
    """XLSX with instructions, allowed values and the division codes, or a CSV header line (UTF-8 with BOM)."""
    from reporting.registry_import import write_template
    from reporting.reports import default_inputs

    _, geo = default_inputs()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"registry-{kind}.{format}"
        write_template(kind, path, lang=lang, geography=geo)
        content = path.read_bytes()
    return Response(content, media_type=XLSX if format == "xlsx" else "text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(path.name)}"})


@router.get("/registry/status", dependencies=anyone, summary="Registry row counts and the latest imports")
async def registry_status(request: Request, limit: int = Query(20, ge=1, le=1000)) -> Any:
    from reporting.store import registry_counts

    async with app_of(request).pool.acquire() as conn:
        counts = await registry_counts(conn)
        imports = [dict(r) for r in await conn.fetch(
            """SELECT id, kind, filename, sha256, rows, inserted, updated, unchanged, warnings, imported_by,
                      imported_at FROM registry_imports ORDER BY id DESC LIMIT $1""", limit)]
    return {"counts": counts, "imports": imports}
