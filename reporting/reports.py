"""The four reports (targets, coverage, distance, operations) and the monthly report, as JSON, CSV and XLSX.

Each report is built from the registry frames loaded by :mod:`reporting.store` (aggregated in
SQL) and shaped with pandas by :mod:`reporting.metrics` / :mod:`reporting.operations`:

* :func:`targets_report` — every target of the plan as of a date, plus per unit (and the city)
  and plan year the figures of 附件1 (JSON ``counties``: county, year, public_piles,
  new_public_piles, planned_new_public_piles, ev_count, vehicles_per_public_pile,
  target_vehicles_per_pile and a ``targets`` list of metric, value, threshold, status).
* :func:`coverage_report` — coverage per place and per unit × place kind.
* :func:`distance_report` — charging distance (max, p95, worst places) per unit and place
  selection (every selection the plan's distance targets use, plus villages and townships).
* :func:`operations_report` — OCPP operations per unit and month.
* :func:`monthly_workbook` — the bureau's monthly report (due by the 3rd for the previous
  month): one XLSX with 附件1, 附件2, coverage, distance, operations, every target and the notes.

A :class:`Report` holds ``data`` (JSON-able dict), ``table`` (the CSV table) and ``sheets``
(XLSX sheets with Chinese headers). Every report carries the data-quality notes.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import orjson
import pandas as pd

from .geography import Geography, load_geography
from .metrics import STATUS_LABELS, TARGET_HEADERS, Evaluator, Note, TargetReport, coverage_table, distance_table, \
    evaluate_targets, unit_year_summary
from .operations import OPERATIONS_HEADERS
from .operations import operations_report as _operations
from .plan import STRENGTHS, Plan, check_plan_geography, load_plan
from .store import Loaded, today_local
from .vocabulary import PLACE_KINDS

__all__ = ["FORMATS", "REPORTS", "Report", "ReportError", "default_inputs", "targets_report", "coverage_report",
           "distance_report", "operations_report", "monthly_workbook", "previous_month", "parse_month", "render",
           "month_range"]

FORMATS = ("json", "csv", "xlsx")
REPORTS = ("targets", "coverage", "distance", "operations")
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
ROAD_KINDS = ("taihang_station", "taihang_rv_camp", "taihang_parking", "road_service_area", "road_parking_area",
              "highway_service_area")


class ReportError(ValueError):
    """Invalid report parameters (bad date or month, unknown format)."""


@functools.lru_cache(maxsize=4)
def default_inputs(plan_path: str | None = None) -> tuple[Plan, Geography]:
    """The plan (default: the Yangquan plan) and the reference geography, loaded once and checked."""
    plan = load_plan(plan_path) if plan_path else load_plan()
    geo = load_geography()
    problems = check_plan_geography(plan, geo)
    if problems:
        raise ReportError("plan and geography disagree: " + "; ".join(problems))
    return plan, geo


# --- dates --------------------------------------------------------------------------------------

#: Years a report may be asked for (registry dates are checked against 1990–2100 too).
YEARS = (1990, 2100)


def _in_range(d: dt.date, what: str) -> dt.date:
    if not YEARS[0] <= d.year <= YEARS[1]:
        raise ReportError(f"{what} must be between {YEARS[0]} and {YEARS[1]}, not {d.isoformat()}")
    return d


def parse_date(value: str | dt.date | None, name: str = "as_of") -> dt.date:
    if value is None:
        return today_local()
    if isinstance(value, dt.date):
        return _in_range(value, name)
    try:
        return _in_range(dt.date.fromisoformat(str(value)), name)
    except ValueError as exc:
        if isinstance(exc, ReportError):
            raise
        raise ReportError(f"{name} must be a date YYYY-MM-DD, not {value!r}") from None


def parse_month(value: str | dt.date | None) -> dt.date:
    """First day of a month given as YYYY-MM (or a date); None = the current month."""
    if value is None:
        return today_local().replace(day=1)
    if isinstance(value, dt.date):
        return _in_range(value.replace(day=1), "month")
    try:
        d = dt.date.fromisoformat(f"{value}-01") if len(str(value)) == 7 else \
            dt.date.fromisoformat(str(value)).replace(day=1)
    except ValueError:
        raise ReportError(f"month must be YYYY-MM, not {value!r}") from None
    return _in_range(d, "month")


def month_end(month: dt.date) -> dt.date:
    return (month.replace(day=1) + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)


def previous_month(today: dt.date | None = None) -> dt.date:
    """First day of the month before *today*'s (the monthly report's month)."""
    today = today or today_local()
    return (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def month_range(month: dt.date, as_of: dt.date | None = None) -> tuple[dt.date, dt.date, dt.date]:
    """(start, end, as_of) of an operations month: as_of defaults to the month's end or today."""
    end = month_end(month)
    if as_of is None:
        as_of = min(end, today_local())
    return month, end, min(as_of, end)


# --- JSON helpers ---------------------------------------------------------------------------------

def clean(v: Any) -> Any:
    """JSON-able Python values: NaN/NaT/NA → None, timestamps → ISO dates, numpy → Python."""
    if v is None or v is pd.NaT or v is pd.NA:
        return None
    if isinstance(v, dict):
        return {str(k): clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    if isinstance(v, np.ndarray):
        return [clean(x) for x in v.tolist()]
    if isinstance(v, pd.Timestamp):
        return v.date().isoformat() if v == v.normalize() else v.isoformat()
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: clean(v) for k, v in r.items()} for r in df.to_dict("records")]


# --- the report object ----------------------------------------------------------------------------

@dataclass
class Sheet:
    """An XLSX sheet: a table with Chinese headers, or a custom writer (``write(ws)``)."""

    title: str
    frame: pd.DataFrame | None = None
    headers: dict[str, str] | None = None
    write: Callable[[Any], None] | None = None
    percent: tuple[str, ...] = ()


@dataclass
class Report:
    name: str
    data: dict[str, Any]
    table: pd.DataFrame
    sheets: list[Sheet] = field(default_factory=list)

    def filename(self, fmt: str) -> str:
        stamp = self.data.get("month") or self.data.get("as_of") or ""
        return f"{self.name}-{stamp}.{fmt}"


def _notes_frame(notes: Iterable[Note]) -> pd.DataFrame:
    return pd.DataFrame([n.as_dict() | {"examples": ", ".join(n.examples)} for n in notes],
                        columns=["code", "severity", "message_zh", "message_en", "count", "examples"])


NOTE_HEADERS = {"code": "代码 code", "severity": "级别 severity", "message_zh": "说明", "message_en": "note",
                "count": "条数 count", "examples": "示例 examples"}


def _plan_info(plan: Plan) -> dict[str, Any]:
    return {"id": plan.id, "title": plan.title, "document": plan.document, "version": plan.version,
            "city_code": plan.city_code, "city_name": plan.city_name}


def _unit_name(plan: Plan, code: str) -> str:
    u = plan.unit(code)
    return u.name if u else (plan.city_name if code == plan.city_code else code)


# --- targets ----------------------------------------------------------------------------------

TARGET_COLUMNS = ["target_id", "year", "county", "county_name", "metric", "label_zh", "label_en", "place", "value",
                  "comparator", "threshold", "unit", "projection", "status", "status_zh", "strength",
                  "evaluated_on", "notes"]


def _targets(plan: Plan, loaded: Loaded, as_of: dt.date) -> tuple[TargetReport, Evaluator, list[Note]]:
    ev = Evaluator(plan, loaded.data)
    rep = evaluate_targets(plan, loaded.data, as_of, evaluator=ev)
    return rep, ev, [*loaded.notes, *rep.notes]


def _target_rows(rep: TargetReport) -> pd.DataFrame:
    r = rep.results.copy()
    r["notes"] = r["notes"].map(lambda n: "; ".join(n))
    return r


def targets_report(plan: Plan, loaded: Loaded, as_of: dt.date) -> Report:
    rep, ev, notes = _targets(plan, loaded, as_of)
    summary = unit_year_summary(rep, ev)
    results = rep.results
    targets = [{k: clean(row[k]) for k in (*TARGET_COLUMNS[:-1], "source", "interpretation", "detail", "notes")}
               for row in results.to_dict("records")]
    data = {"report": "targets", "plan": _plan_info(plan), "as_of": as_of.isoformat(),
            "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "counties": clean(summary), "targets": targets, "notes": [n.as_dict() for n in notes],
            "interpretations": records(rep.interpretations())}
    table = _target_rows(rep)[TARGET_COLUMNS]
    sheets = _target_sheets(plan, rep, summary, notes)
    return Report("targets", data, table, sheets)


def _target_sheets(plan: Plan, rep: TargetReport, summary: list[dict], notes: list[Note]) -> list[Sheet]:
    detail = _target_rows(rep)
    detail["strength"] = detail["strength"].map(lambda s: STRENGTHS.get(s, (s, s))[0])
    headers = {**{k: v for k, v in TARGET_HEADERS.items() if k not in ("quote", "interpretation")},
               "notes": "说明 notes"}
    return [
        Sheet("附件1 新增公共充电桩", write=lambda ws: _write_annex1(ws, plan, rep, summary)),
        Sheet("附件2 公路", write=lambda ws: _write_annex2(ws, plan, rep)),
        Sheet("全部指标 targets", detail, headers),
        Sheet("数据质量 notes", _notes_frame(notes), NOTE_HEADERS),
        Sheet("口径说明 interpretation", rep.interpretations(),
              {"template_id": "指标 target", "label_zh": "指标", "label_en": "target", "quote": "原文 source",
               "interpretation": "口径说明 interpretation"}),
    ]


# --- coverage ---------------------------------------------------------------------------------

COVERAGE_SUMMARY_HEADERS = {"county_name": "县（区） unit", "kind_zh": "场所类别 kind", "places": "场所数 places",
                            "covered": "已覆盖 covered", "share": "覆盖率 share"}
COVERAGE_PLACE_HEADERS = {"county_name": "县（区） unit", "kind_zh": "场所类别 kind", "code": "代码 code",
                          "name": "名称 name", "public_piles": "公共充电桩 public piles",
                          "dc_public_piles": "直流公共充电桩 DC public piles", "covered_zh": "是否覆盖 covered",
                          "distance_km": "最近公共充电桩（公里） nearest public pile (km)"}


def coverage_report(plan: Plan, loaded: Loaded, as_of: dt.date) -> Report:
    ev = Evaluator(plan, loaded.data)
    per_place, summary = coverage_table(ev, as_of)
    notes = [*loaded.notes, *ev.notes]
    kind_zh = {k: v[0] for k, v in PLACE_KINDS.items()}
    order = {c: i for i, c in enumerate([plan.city_code, *plan.unit_codes])}
    summary = summary.assign(county_name=summary["county"].map(lambda c: _unit_name(plan, c)),
                             kind_zh=summary["kind"].map(kind_zh))
    summary = summary.sort_values(["county", "kind"], key=lambda s: s.map(order) if s.name == "county" else s,
                                  kind="stable").reset_index(drop=True)
    per_place = per_place.assign(county_name=per_place["county"].map(lambda c: _unit_name(plan, c)),
                                 kind_zh=per_place["kind"].map(kind_zh),
                                 covered_zh=per_place["covered"].map({True: "是", False: "否"}))
    data = {"report": "coverage", "plan": _plan_info(plan), "as_of": as_of.isoformat(),
            "summary": records(summary[["county", "county_name", "kind", "places", "covered", "share"]]),
            "places": records(per_place[["code", "kind", "name", "county", "public_piles", "dc_public_piles",
                                         "covered", "distance_km"]]),
            "notes": [n.as_dict() for n in notes]}
    table = per_place[["county", "county_name", "kind", "code", "name", "public_piles", "dc_public_piles", "covered",
                       "distance_km"]]
    sheets = [Sheet("覆盖汇总 coverage", summary, COVERAGE_SUMMARY_HEADERS, percent=("share",)),
              Sheet("覆盖明细 places", per_place, COVERAGE_PLACE_HEADERS),
              Sheet("数据质量 notes", _notes_frame(notes), NOTE_HEADERS)]
    return Report("coverage", data, table, sheets)


# --- distance ----------------------------------------------------------------------------------

DISTANCE_HEADERS = {"county_name": "县（区） unit", "place_zh": "场所 places", "places": "场所数 count",
                    "places_with_coordinates": "有坐标 with coordinates",
                    "places_without_coordinates": "无坐标 without coordinates", "max_km": "最大充电距离（公里） max km",
                    "p95_km": "95%分位（公里） p95 km", "worst_text": "最远场所 farthest places"}


def distance_selections(plan: Plan) -> list[tuple[str | None, str | None]]:
    """(place_kind, place_group) of every distance target of the plan, after villages and townships."""
    out: list[tuple[str | None, str | None]] = [("village", None), ("township", None)]
    for t in plan.targets:
        if t.metric == "charging_distance_max_km":
            sel = (None if t.place_group else t.place_kind, t.place_group)
            if sel not in out:
                out.append(sel)
    return out


def _place_label(plan: Plan, place: str) -> str:
    if place in plan.place_groups:
        return plan.place_groups[place].name
    return PLACE_KINDS.get(place, (place,))[0]


def distance_report(plan: Plan, loaded: Loaded, as_of: dt.date) -> Report:
    ev = Evaluator(plan, loaded.data)
    table = distance_table(ev, as_of, distance_selections(plan))
    notes = [*loaded.notes, *ev.notes]
    table = table.assign(county_name=table["county"].map(lambda c: _unit_name(plan, c)),
                         place_zh=table["place"].map(lambda p: _place_label(plan, p)),
                         worst_text=table["worst"].map(lambda w: "; ".join(f"{x['name']} {x['km']:.1f}km" for x in w)))
    data = {"report": "distance", "plan": _plan_info(plan), "as_of": as_of.isoformat(),
            "rows": records(table[["county", "county_name", "place", "places", "places_with_coordinates",
                                   "places_without_coordinates", "max_km", "p95_km", "worst"]]),
            "notes": [n.as_dict() for n in notes]}
    csv = table[["county", "county_name", "place", "places", "places_with_coordinates", "places_without_coordinates",
                 "max_km", "p95_km", "worst_text"]].rename(columns={"worst_text": "worst"})
    sheets = [Sheet("充电距离 distance", table, DISTANCE_HEADERS), Sheet("数据质量 notes", _notes_frame(notes),
                                                                      NOTE_HEADERS)]
    return Report("distance", data, csv, sheets)


# --- operations --------------------------------------------------------------------------------

PILE_OPS_HEADERS = {"county_name": "县（区） unit", "station_id": "充电站 station", "pile_id": "充电桩 pile",
                    "month": "月份 month", "sessions": "充电次数 sessions", "energy_kwh": "充电量（kWh） energy",
                    "utilisation": "时间利用率 utilisation", "availability": "可用率 availability",
                    "faults": "故障次数 faults", "repaired_faults": "修复次数 repaired"}


def operations_report(plan: Plan, loaded: Loaded, month: dt.date, as_of: dt.date | None = None) -> Report:
    """Operations of *month* (cut at *as_of*); *loaded* must hold that month's ``pile_months``."""
    start, end, as_of = month_range(month, as_of)
    table, by_pile, ops_notes = _operations(loaded.data, start, end, city_code=plan.city_code,
                                            unit_codes=plan.unit_codes, as_of=as_of)
    notes = [*loaded.notes, *ops_notes]
    table = table.assign(county_name=table["county"].map(lambda c: _unit_name(plan, c)))
    by_pile = by_pile.assign(county_name=by_pile["county"].map(lambda c: _unit_name(plan, c)))
    data = {"report": "operations", "plan": _plan_info(plan), "month": start.strftime("%Y-%m"),
            "as_of": as_of.isoformat(),
            "counties": records(table[["county", "county_name", *list(table.columns[1:-1])]]),
            "piles": records(by_pile.drop(columns=["county_name"])), "notes": [n.as_dict() for n in notes],
            "definitions": {
                "utilisation": "charging_seconds ÷ in-service seconds (share of time charging)",
                "availability": "1 − (unavailable + offline seconds) ÷ in-service seconds",
                "mttr_hours": "open→close time of the faults closed in the month ÷ their number"}}
    headers = {"county_name": OPERATIONS_HEADERS["county"], **{k: v for k, v in OPERATIONS_HEADERS.items()
                                                                 if k != "county"}}
    sheets = [Sheet(f"运营 {start:%Y-%m}", table, headers, percent=("utilisation", "availability",
                                                                    "availability_mean_pile")),
              Sheet("单桩运营 piles", by_pile, PILE_OPS_HEADERS, percent=("utilisation", "availability")),
              Sheet("数据质量 notes", _notes_frame(notes), NOTE_HEADERS)]
    return Report("operations", data, table.drop(columns=["county_name"]), sheets)


# --- 附件1 / 附件2 layouts ---------------------------------------------------------------------------

def _fmt(v: Any, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if unit == "ratio":
        return f"{float(v) * 100:.0f}%"
    if unit == "km":
        return f"{float(v):.1f}公里"
    if float(v).is_integer():
        return str(int(v))
    return f"{float(v):.2f}"


def _style():
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side

    thin = Side(style="thin", color="999999")
    return {"bold": Font(bold=True), "title": Font(bold=True, size=14), "center": Alignment(
        horizontal="center", vertical="center", wrap_text=True), "wrap": Alignment(vertical="top", wrap_text=True),
            "border": Border(left=thin, right=thin, top=thin, bottom=thin),
            "head": PatternFill("solid", fgColor="DDEBF7"),
            "status": {"met": "C6EFCE", "on_track": "C6EFCE", "not_met": "FFC7CE", "at_risk": "FFEB9C"}}


def _status_fill(status: str | None):
    from openpyxl.styles import PatternFill

    color = _style()["status"].get(status or "")
    return PatternFill("solid", fgColor=color) if color else None


def _write_annex1(ws, plan: Plan, rep: TargetReport, summary: list[dict]) -> None:
    s = _style()
    years = list(plan.years)
    rows = {(r["county"], r["year"]): r for r in summary}
    res = rep.results
    plan_targets = res[(res["metric"] == "new_public_piles") & res["params"].map(lambda p: "since_year" not in p)]
    status = {(r.county, r.year): r.status for r in plan_targets.itertuples()}
    ncols = 1 + 4 * len(years) + 3
    ws.cell(1, 1, f"{plan.city_name}各县（区）新增公共充（换）电基础设施建设工作计划完成情况"
                  f"（{years[0]}-{years[-1]}年）").font = s["title"]
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=ncols)
    ws.cell(2, 1, f"统计截至 {rep.as_of.isoformat()}    单位：台    依据：{plan.document} 附件1")
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=ncols)
    head = [(3, 1, "县（区）")]
    for i, y in enumerate(years):
        c = 2 + 4 * i
        head.append((3, c, str(y)))
        ws.merge_cells(start_row=3, start_column=c, end_row=3, end_column=c + 3)
        for j, label in enumerate(("计划", "实际", "完成率", "状态")):
            head.append((4, c + j, label))
    c = 2 + 4 * len(years)
    head.append((3, c, "合计"))
    ws.merge_cells(start_row=3, start_column=c, end_row=3, end_column=c + 2)
    for j, label in enumerate(("计划", "实际", "完成率")):
        head.append((4, c + j, label))
    ws.merge_cells(start_row=3, start_column=1, end_row=4, end_column=1)
    for r, col, text in head:
        cell = ws.cell(r, col, text)
        cell.font, cell.alignment, cell.fill = s["bold"], s["center"], s["head"]
    r = 5
    for code in [*plan.unit_codes, plan.city_code]:
        name = "总计" if code == plan.city_code else _unit_name(plan, code)
        name_cell = ws.cell(r, 1, name)
        if code == plan.city_code:
            name_cell.font = s["bold"]
        tot_plan, tot_actual = 0.0, 0.0
        for i, y in enumerate(years):
            row = rows.get((code, y), {})
            planned, actual = row.get("planned_new_public_piles"), row.get("new_public_piles")
            c = 2 + 4 * i
            ws.cell(r, c, planned)
            ws.cell(r, c + 1, actual)
            if planned and actual is not None:
                ws.cell(r, c + 2, actual / planned).number_format = "0%"
            st = status.get((code, y))
            cell = ws.cell(r, c + 3, STATUS_LABELS[st][0] if st else None)
            if (fill := _status_fill(st)) is not None:
                cell.fill = fill
            tot_plan += planned or 0
            tot_actual += actual or 0
        c = 2 + 4 * len(years)
        ws.cell(r, c, tot_plan or None)
        ws.cell(r, c + 1, tot_actual)
        if tot_plan:
            ws.cell(r, c + 2, tot_actual / tot_plan).number_format = "0%"
        r += 1
    _border(ws, 3, 1, r - 1, ncols)
    # block 2: public piles in service and vehicles per public pile (三、发展目标 桩车比)
    r += 1
    ws.cell(r, 1, "公共充电桩总数与车桩比（辆/桩，不高于目标为达标）").font = s["bold"]
    r += 1
    top = r
    ws.cell(r, 1, "县（区）")
    ws.merge_cells(start_row=r, start_column=1, end_row=r + 1, end_column=1)
    for i, y in enumerate(years):
        c = 2 + 4 * i
        ws.cell(r, c, str(y))
        ws.merge_cells(start_row=r, start_column=c, end_row=r, end_column=c + 3)
        for j, label in enumerate(("公共充电桩", "电动汽车", "车桩比", "目标")):
            ws.cell(r + 1, c + j, label)
    for rr in (r, r + 1):
        for cc in range(1, 2 + 4 * len(years)):
            cell = ws.cell(rr, cc)
            cell.font, cell.alignment, cell.fill = s["bold"], s["center"], s["head"]
    r += 2
    vpp = res[res["metric"] == "vehicles_per_public_pile"]
    vstatus = {(x.county, x.year): x.status for x in vpp.itertuples()}
    for code in [*plan.unit_codes, plan.city_code]:
        ws.cell(r, 1, "全市" if code == plan.city_code else _unit_name(plan, code))
        for i, y in enumerate(years):
            row = rows.get((code, y), {})
            c = 2 + 4 * i
            ws.cell(r, c, row.get("public_piles"))
            ws.cell(r, c + 1, row.get("ev_count"))
            v = row.get("vehicles_per_public_pile")
            cell = ws.cell(r, c + 2, None if v is None else round(v, 2))
            if (fill := _status_fill(vstatus.get((code, y)))) is not None:
                cell.fill = fill
            tgt = row.get("target_vehicles_per_pile")
            ws.cell(r, c + 3, None if tgt is None else f"≤{_fmt(tgt)}")
        r += 1
    _border(ws, top, 1, r - 1, 1 + 4 * len(years))
    r += 1
    for line in (
        "备注：附件1原表注明“以上数据仅供各单位参考”；计划数取自附件1，实际数为当年投运的公共充电桩（截至统计日期，其后退役的仍计入当年）。",
        "当年未结束时，状态按当年进度外推至年底判断（进度正常/存在风险）；年度结束后为达标/未达标；未到年份为未到期。",
        "车桩比 = 年末电动汽车保有量 ÷ 统计日在运公共充电桩；缺少当年车辆数时使用最近年份并在数据质量页注明。",
    ):
        ws.cell(r, 1, line)
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=ncols)
        r += 1
    ws.column_dimensions["A"].width = 12
    ws.freeze_panes = "B5"


def _border(ws, r1: int, c1: int, r2: int, c2: int) -> None:
    b = _style()["border"]
    for row in ws.iter_rows(min_row=r1, max_row=r2, min_col=c1, max_col=c2):
        for cell in row:
            cell.border = b


def annex2_cells(plan: Plan, rep: TargetReport) -> tuple[list[str], dict[tuple[str, int], list[dict]]]:
    """附件2: (categories, {(category, year): [target rows]}) for city targets on road places."""
    res = rep.results
    groups = plan.place_groups

    def category(row) -> str | None:
        if row["place"] is None:
            return None
        if row["place"] in groups:
            kinds = groups[row["place"]].kinds
            return groups[row["place"]].name if set(kinds) <= set(ROAD_KINDS) else None
        if row["place"] not in ROAD_KINDS:
            return None
        for g in groups.values():
            if row["place"] in g.kinds and set(g.kinds) <= set(ROAD_KINDS):
                return g.name
        return PLACE_KINDS[row["place"]][0]

    cells: dict[tuple[str, int], list[dict]] = {}
    cats: list[str] = []
    for row in res[res["scope"] == "city"].to_dict("records"):
        cat = category(row)
        if cat is None:
            continue
        if cat not in cats:
            cats.append(cat)
        cells.setdefault((cat, row["year"]), []).append(row)
    return cats, cells


_CMP = {">=": "≥", "<=": "≤", ">": ">", "<": "<", "==": "="}


def _write_annex2(ws, plan: Plan, rep: TargetReport) -> None:
    s = _style()
    years = list(plan.years)
    cats, cells = annex2_cells(plan, rep)
    ws.cell(1, 1, f"{plan.city_name}市内公路充（换）电基础设施建设工作计划完成情况（{years[0]}-{years[-1]}年）"
            ).font = s["title"]
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=1 + len(years))
    ws.cell(2, 1, f"统计截至 {rep.as_of.isoformat()}    依据：{plan.document} 附件2；每项为 指标：实际 / 目标（状态）")
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=1 + len(years))
    for j, label in enumerate(["分类", *[f"{y}年底" for y in years]], start=1):
        cell = ws.cell(3, j, label)
        cell.font, cell.alignment, cell.fill = s["bold"], s["center"], s["head"]
    r = 4
    for cat in cats:
        ws.cell(r, 1, cat).alignment = s["wrap"]
        for j, y in enumerate(years, start=2):
            items = cells.get((cat, y), [])
            lines = [f"{x['label_zh']}：{_fmt(x['value'], x['unit'])} / {_CMP.get(x['comparator'], x['comparator'])}"
                     f"{_fmt(x['threshold'], x['unit'])}（{x['status_zh']}）" for x in items]
            cell = ws.cell(r, j, "\n".join(lines) if lines else "—")
            cell.alignment = s["wrap"]
            statuses = {x["status"] for x in items}
            worst = next((st for st in ("not_met", "at_risk", "on_track", "met") if st in statuses), None)
            if (fill := _status_fill(worst)) is not None:
                cell.fill = fill
        ws.row_dimensions[r].height = max(30, 16 * max((len(cells.get((cat, y), [])) for y in years), default=1))
        r += 1
    _border(ws, 3, 1, r - 1, 1 + len(years))
    ws.cell(r + 1, 1, "备注：后期公路改扩建工程建设的驿站、房车营地、停车区、服务区等也需实现全覆盖（附件2备注）；"
                      "覆盖 = 关联或500米内的充电站有在运公共充电桩。")
    ws.column_dimensions["A"].width = 24
    for j in range(2, 2 + len(years)):
        ws.column_dimensions[ws.cell(3, j).column_letter].width = 60


# --- writers ---------------------------------------------------------------------------------

def _write_frame(ws, sheet: Sheet) -> None:
    s = _style()
    df = sheet.frame
    headers = sheet.headers or {c: c for c in df.columns}
    cols = [c for c in headers if c in df.columns]
    for j, c in enumerate(cols, start=1):
        cell = ws.cell(1, j, headers[c])
        cell.font, cell.alignment, cell.fill = s["bold"], s["center"], s["head"]
        ws.column_dimensions[cell.column_letter].width = max(10, min(40, len(headers[c]) + 2))
    for i, row in enumerate(df[cols].itertuples(index=False), start=2):
        for j, (c, v) in enumerate(zip(cols, row), start=1):
            v = clean(v)
            if isinstance(v, (list, dict)):
                v = orjson.dumps(v).decode()
            cell = ws.cell(i, j, v)
            if c in sheet.percent and isinstance(v, float):
                cell.number_format = "0.0%"
            elif isinstance(v, float):
                cell.number_format = "0.###"
            if c in ("status_zh", "status") and isinstance(v, str):
                key = v if v in STATUS_LABELS else next((k for k, (zh, _) in STATUS_LABELS.items() if zh == v), None)
                if (fill := _status_fill(key)) is not None:
                    cell.fill = fill
    ws.freeze_panes = "A2"
    if len(df):
        ws.auto_filter.ref = ws.dimensions


def xlsx_bytes(sheets: list[Sheet]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for sheet in sheets:
        ws = wb.create_sheet(sheet.title[:31])
        if sheet.write is not None:
            sheet.write(ws)
        else:
            _write_frame(ws, sheet)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_bytes(df: pd.DataFrame) -> bytes:
    """UTF-8 with BOM (Excel shows the Chinese names), English column ids, ISO dates."""
    out = df.copy()
    for c in out.columns:
        if out[c].map(lambda v: isinstance(v, (list, dict, tuple))).any():
            out[c] = out[c].map(lambda v: orjson.dumps(clean(v)).decode() if isinstance(v, (list, dict, tuple)) else v)
        elif pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%d")
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8-sig")


def json_bytes(data: dict) -> bytes:
    return orjson.dumps(clean(data), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)


def render(report: Report, fmt: str) -> bytes:
    """The report as bytes in *fmt* (json, csv or xlsx)."""
    if fmt == "json":
        return json_bytes(report.data)
    if fmt == "csv":
        return csv_bytes(report.table)
    if fmt == "xlsx":
        return xlsx_bytes(report.sheets)
    raise ReportError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")


def monthly_workbook(plan: Plan, loaded: Loaded, month: dt.date) -> bytes:
    """The monthly report for *month* (as of its last day): 附件1, 附件2, coverage, distance, operations, targets."""
    as_of = month_end(month)
    t = targets_report(plan, loaded, as_of)
    c = coverage_report(plan, loaded, as_of)
    d = distance_report(plan, loaded, as_of)
    o = operations_report(plan, loaded, month, as_of)
    annex1, annex2, all_targets, notes, interp = t.sheets
    notes_all = pd.concat([notes.frame, o.sheets[-1].frame]).drop_duplicates(
        subset=["code", "message_en"]).reset_index(drop=True)
    sheets = [annex1, annex2, c.sheets[0], d.sheets[0], o.sheets[0], all_targets, c.sheets[1], o.sheets[1],
              Sheet("数据质量 notes", notes_all, NOTE_HEADERS), interp]
    return xlsx_bytes(sheets)


# --- loading + building (CLI and API) ------------------------------------------------------------

@dataclass
class Output:
    content: bytes
    media_type: str
    filename: str
    report: Report | None = None


async def produce(conn, name: str, fmt: str = "json", *, as_of: str | dt.date | None = None,
                  month: str | dt.date | None = None, offload: bool = False) -> Output:
    """Load what report *name* needs from the database behind *conn* and render it.

    ``name``: targets, coverage, distance, operations or monthly. Operations use *month*
    (YYYY-MM), else the month of *as_of* (cut at *as_of*), else the current month; monthly
    uses *month*, else the previous month, and is always XLSX. With ``offload`` the pandas work
    runs in a worker thread (the API's event loop keeps serving chargers).
    """
    import asyncio

    from .store import load_registry

    if name not in (*REPORTS, "monthly"):
        raise ReportError(f"unknown report {name!r}; use one of {', '.join((*REPORTS, 'monthly'))}")
    if fmt not in FORMATS:
        raise ReportError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    plan, geo = default_inputs()
    if name == "monthly":
        m = parse_month(month) if month is not None else previous_month(
            parse_date(as_of) if as_of is not None else None)
        loaded = await load_registry(conn, geo, ops=(m, m), as_of=month_end(m))

        def build_monthly() -> Output:
            return Output(monthly_workbook(plan, loaded, m), MEDIA_TYPES["xlsx"],
                          f"monthly-report-{m:%Y-%m}.xlsx")

        return await asyncio.to_thread(build_monthly) if offload else build_monthly()
    if name == "operations":
        if month is not None:
            m = parse_month(month)
            start, end, cut = month_range(m, parse_date(as_of) if as_of is not None else None)
        else:
            d = parse_date(as_of)
            start, end, cut = month_range(d.replace(day=1), d)
        loaded = await load_registry(conn, geo, ops=(start, end), as_of=cut)

        def build() -> Report:
            return operations_report(plan, loaded, start, cut)
    else:
        day = parse_date(as_of)
        loaded = await load_registry(conn, geo)
        fn = {"targets": targets_report, "coverage": coverage_report, "distance": distance_report}[name]

        def build() -> Report:
            return fn(plan, loaded, day)

    def build_and_render() -> Output:
        rep = build()
        return Output(render(rep, fmt), MEDIA_TYPES[fmt], rep.filename(fmt), rep)

    return await asyncio.to_thread(build_and_render) if offload else build_and_render()
