"""Reports on the plan's targets: ``/reports/targets|coverage|distance|operations|monthly``.

Roles bureau, operator and admin.

Each report is available as ``format=json`` (default), ``csv`` (UTF-8 with BOM, English column
ids) or ``xlsx`` (Chinese headers; the targets workbook starts with sheets laid out like 附件1
and 附件2 of the plan). See :mod:`reporting.reports` for the contents and definitions. The
pandas work runs in a worker thread, so chargers keep being served while a report is built.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from .auth import ApiRoute, require
from .common import app_of
from .errors import ERROR_RESPONSES, ApiError

router = APIRouter(tags=["reports"], route_class=ApiRoute, dependencies=[Depends(require("bureau", "operator"))],
                   responses=ERROR_RESPONSES)

Format = Literal["json", "csv", "xlsx"]
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
_AS_OF = Query(None, description="Evaluation date (default: today in Asia/Shanghai)")
_FORMAT = Query("json", description="json, csv or xlsx")
_FILE = {200: {"description": "The report", "content": {
    "application/json": {}, "text/csv": {},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}}


async def _report(request: Request, name: str, fmt: str, as_of: dt.date | None = None,
                  month: str | None = None) -> Response:
    from reporting.reports import ReportError, produce

    async with app_of(request).pool.acquire() as conn:
        try:
            out = await produce(conn, name, fmt, as_of=as_of, month=month, offload=True)
        except ReportError as exc:
            raise ApiError(422, str(exc)) from None
    headers = {}
    if fmt != "json":
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(out.filename)}"
    return Response(out.content, media_type=out.media_type, headers=headers)


@router.get("/reports/targets", responses=_FILE, summary="Every target of the plan as of a date")
async def report_targets(request: Request, as_of: dt.date | None = _AS_OF, format: Format = _FORMAT) -> Response:
    """Per county and for the city and each plan year: public piles, new public piles vs 附件1, EV count,
    vehicles per public pile vs target, and the status of every target (``counties``); every target
    with value, threshold, status and notes (``targets``); data-quality ``notes``."""
    return await _report(request, "targets", format, as_of)


@router.get("/reports/coverage", responses=_FILE, summary="Coverage of places by public piles")
async def report_coverage(request: Request, as_of: dt.date | None = _AS_OF, format: Format = _FORMAT) -> Response:
    return await _report(request, "coverage", format, as_of)


@router.get("/reports/distance", responses=_FILE, summary="Charging distance per county and place selection")
async def report_distance(request: Request, as_of: dt.date | None = _AS_OF, format: Format = _FORMAT) -> Response:
    return await _report(request, "distance", format, as_of)


@router.get("/reports/operations", responses=_FILE, summary="OCPP operations per county for a month")
async def report_operations(
    request: Request,
    month: str | None = Query(None, pattern=MONTH, description="YYYY-MM (default: the current month)"),
    as_of: dt.date | None = Query(None, description="Cut the month at the end of this day"),
    format: Format = _FORMAT,
) -> Response:
    """Sessions, energy, utilisation, availability, faults and MTTR per county (and city) and per pile."""
    return await _report(request, "operations", format, as_of, month)


@router.get("/reports/monthly", responses={200: {"description": "XLSX workbook", "content": {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}},
    summary="The bureau's monthly report (XLSX)")
async def report_monthly(
    request: Request,
    month: str | None = Query(None, pattern=MONTH, description="YYYY-MM (default: the previous month)"),
) -> Response:
    """附件1, 附件2, coverage, distance, operations, every target and the data-quality notes as of the month's end."""
    return await _report(request, "monthly", "xlsx", None, month)
