"""Registry import: parse and validate CSV/XLSX files of piles, vehicles and places.

Three kinds of file (templates: :func:`write_template`):

* ``piles`` — one row per pile, carrying its station's fields (stations are de-duplicated by
  ``station_id``; every row of one station must agree on the station's fields);
* ``vehicles`` — EVs per unit and year end (``county, year, ev_count``, optional fleet counts);
* ``places`` — places the plan counts (``kind, code, name, county, lon, lat, a_level,
  parking_spaces``; optional ``provincial_resort``, ``township_code``). Township/village rows
  give coordinates to the reference divisions.

All-or-nothing: :func:`parse_file` validates every row and collects *every* problem with its
row number (the spreadsheet row: the header is row 1, the first data row is row 2). When any
error exists the result holds no records. Warnings (e.g. missing coordinates) do not block.
The records are frames of :mod:`reporting.contracts`, ready for an upsert by id; parsing the
same file twice yields equal frames, so re-importing changes nothing.

Headers may be English ids, Chinese labels, known aliases, or ``中文（english_id）``.
CSV files may be UTF-8 (with or without BOM) or GB18030/GBK.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

from .contracts import conform
from .geography import Geography, normalise_name
from .vocabulary import ACCESS, CURRENT_TYPES, DIVISION_PLACE_KINDS, FLEET_TYPES, PLACE_KINDS, SITE_TYPES

__all__ = ["COLUMNS", "KINDS", "ImportResult", "Problem", "parse_file", "parse_rows", "read_table", "write_template"]

KINDS = ("piles", "vehicles", "places")
_KIND_ALIASES = {"stations": "piles", "stations_piles": "piles", "pile": "piles", "vehicle": "vehicles",
                 "place": "places"}
MAX_PLAUSIBLE_KW = 1000.0


@dataclass(frozen=True)
class Column:
    """A file column: id, Chinese label, extra accepted headers, whether required, help text."""

    id: str
    label_zh: str
    aliases: tuple[str, ...] = ()
    required: bool = False
    help_zh: str = ""
    help_en: str = ""
    example: str = ""


def _c(id_, zh, aliases=(), required=False, help_zh="", help_en="", example=""):
    return Column(id_, zh, tuple(aliases), required, help_zh, help_en, example)


#: Columns per kind, in template order. The issue's columns come first, optional ones after.
COLUMNS: dict[str, tuple[Column, ...]] = {
    "piles": (
        _c("station_id", "充电站编号", ["站点编号", "电站编号", "充电站id", "站编号"], True, "充电站唯一编号", "station id", "ST-0001"),
        _c("station_name", "充电站名称", ["站点名称", "电站名称", "站名", "name"], False, "", "station name", "某某公共停车场充电站"),
        _c("county", "县（区）", ["县区", "区县", "所属县区", "所属区县", "县", "county_code"], True,
           "计划中的县（区）名称或代码", "planning unit name or code", ""),
        _c("township_code", "乡镇（街道）代码", ["乡镇代码", "街道代码", "乡镇街道代码", "township"], False,
           "9位统计用区划代码", "9-digit township code", ""),
        _c("village_code", "村（社区）代码", ["村代码", "行政村代码", "社区代码", "村居代码", "village"], False,
           "12位统计用区划代码，可空", "12-digit village code, optional", ""),
        _c("lon", "经度", ["经度(wgs84)", "经度(wgs-84)", "longitude", "lng"], False, "WGS-84 十进制度", "WGS-84 degrees", ""),
        _c("lat", "纬度", ["纬度(wgs84)", "纬度(wgs-84)", "latitude"], False, "WGS-84 十进制度", "WGS-84 degrees", ""),
        _c("access", "类型（公用/专用/自用）", ["类型", "使用类型", "开放类型", "设施类型", "公用专用自用", "access_type"], True,
           "公用 / 专用 / 自用（运营管理办法第三条）", "public / dedicated / private", "公用"),
        _c("site_type", "场所类型", ["场所", "建设场所", "站点类型", "场景"], True, "见“取值”表", "see the values sheet", "公共停车场"),
        _c("parking_spaces", "车位数", ["停车位数", "车位", "停车位"], False, "场所停车位数", "parking spaces at the site", "120"),
        _c("centralized", "集中式经营性充电站", ["集中式", "是否集中式", "集中式充电站"], False, "是 / 否", "yes / no", "是"),
        _c("pile_id", "充电桩编号", ["桩编号", "充电桩id", "设备编号", "桩号"], True, "充电桩唯一编号", "pile id", "ST-0001-01"),
        _c("power_kw", "额定功率（kW）", ["额定功率", "功率", "功率(kw)", "功率kw", "power"], True, "千瓦，大于0", "kW, > 0", "120"),
        _c("current_type", "交直流", ["交流/直流", "电流类型", "类型(交流/直流)", "桩类型", "current"], True, "交流 / 直流（AC / DC）", "AC / DC", "直流"),
        _c("commissioned_on", "投运日期", ["投运时间", "投入运营日期", "建成日期", "commissioned"], True, "YYYY-MM-DD", "ISO date", "2023-12-31"),
        _c("decommissioned_on", "退役日期", ["停运日期", "拆除日期", "退出日期", "decommissioned"], False, "YYYY-MM-DD，在运为空", "ISO date, empty while in service", ""),
        _c("operator", "运营企业", ["运营商", "运营单位"], False, "", "operator", ""),
        _c("address", "地址", ["详细地址", "站点地址"], False, "", "address", ""),
        _c("connector_count", "枪数", ["充电枪数", "接口数", "connectors"], False, "默认1", "default 1", "2"),
        _c("charge_point_id", "OCPP桩编号", ["ocpp_id", "chargepointid", "charge_point", "ocpp编号"], False,
           "本平台接入的OCPP ChargePoint id", "OCPP charge point id when connected", ""),
        _c("place_code", "关联场所代码", ["场所代码", "place"], False, "所服务的景区/服务区等场所代码", "code of the place served", ""),
    ),
    "vehicles": (
        _c("county", "县（区）", ["县区", "区县", "所属县区", "county_code"], True, "县（区）名称或代码，或“全市”", "planning unit or the city", ""),
        _c("year", "年份", ["年度", "年末"], True, "年末保有量所属年份", "year-end of the stock", "2023"),
        _c("ev_count", "电动汽车保有量", ["电动汽车数", "电动汽车", "新能源汽车保有量", "ev", "evs"], True, "辆", "vehicles", "5200"),
        _c("bus_count", "电动公交车", ["公交车", "公交"], False, "辆，可空", "optional", ""),
        _c("sanitation_count", "电动环卫车", ["环卫车", "环卫"], False, "辆，可空", "optional", ""),
        _c("taxi_count", "电动出租车", ["出租车", "出租"], False, "辆，可空", "optional", ""),
        _c("logistics_count", "电动物流车", ["物流车", "物流"], False, "辆，可空", "optional", ""),
        _c("commuter_count", "电动通勤车", ["通勤车", "通勤"], False, "辆，可空", "optional", ""),
    ),
    "places": (
        _c("kind", "场所类别", ["类别", "类型", "场所类型"], True, "见“取值”表", "see the values sheet", "景区"),
        _c("code", "场所代码", ["代码", "编号", "区划代码"], True, "乡镇/村用统计代码；其他自编且唯一", "statistical code or own unique code", "SCENIC-001"),
        _c("name", "名称", ["场所名称"], False, "", "name", "某某景区"),
        _c("county", "县（区）", ["县区", "区县", "所属县区", "county_code"], False, "乡镇/村可空（由代码确定）", "may be empty for townships/villages", ""),
        _c("lon", "经度", ["经度(wgs84)", "longitude", "lng"], False, "WGS-84", "WGS-84 degrees", ""),
        _c("lat", "纬度", ["纬度(wgs84)", "latitude"], False, "WGS-84", "WGS-84 degrees", ""),
        _c("a_level", "A级", ["景区等级", "a级景区", "等级"], False, "0（无）、1-5 或 1A-5A，仅景区", "0 = none, 1-5 or 1A-5A", "5A"),
        _c("parking_spaces", "车位数", ["停车位数", "小客车车位数", "车位"], False, "高速服务区填小客车车位", "small-car spaces for highway areas", "300"),
        _c("provincial_resort", "省级以上旅游度假区", ["省级旅游度假区", "旅游度假区", "resort"], False, "是 / 否", "yes / no", "否"),
        _c("township_code", "乡镇（街道）代码", ["乡镇代码"], False, "可空", "optional", ""),
    ),
}

FLEET_COLUMNS = {f"{t}_count": t for t in FLEET_TYPES}
_TRUE = {"1", "true", "t", "yes", "y", "是", "有", "√", "✓"}
_FALSE = {"0", "false", "f", "no", "n", "否", "无", "×", ""}


# --- results -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One problem: spreadsheet ``row`` (None = whole file), ``column`` id, message."""

    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = "文件 file" if self.row is None else f"第{self.row}行 row {self.row}"
        return f"{where}" + (f" [{self.column}]" if self.column else "") + f": {self.message}"


@dataclass
class ImportResult:
    """Outcome of a parse. ``records`` is empty whenever ``errors`` is not (all-or-nothing).

    ``records`` keys: piles → ``stations``, ``piles``; vehicles → ``vehicles``, ``fleets``;
    places → ``places`` (contract frames of :mod:`reporting.contracts`).
    """

    kind: str
    rows: int = 0
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    records: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def report(self) -> str:
        """Human-readable summary with every error and warning (Chinese and English)."""
        head = (f"导入{'成功' if self.ok else '失败，未导入任何数据'} import "
                f"{'ok' if self.ok else 'FAILED, nothing imported'}: {self.kind}, {self.rows} 行 rows, "
                f"{len(self.errors)} 个错误 errors, {len(self.warnings)} 个警告 warnings")
        lines = [head]
        lines += [f"  错误 error   {p}" for p in self.errors]
        lines += [f"  警告 warning {p}" for p in self.warnings]
        return "\n".join(lines)


# --- reading -----------------------------------------------------------------------------

def _decode(data: bytes) -> str:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ValueError("CSV is neither UTF-8 nor GB18030/GBK")


def read_table(source: str | Path | bytes, filename: str | None = None) -> tuple[list[str], list[list[Any]]]:
    """Read a CSV or XLSX file into ``(headers, rows)`` of raw cell values.

    *source* is a path or the file's bytes (then *filename* tells the format by its suffix).
    Fully empty rows are dropped; XLSX reads the first sheet.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        data, name = path.read_bytes(), path.name
    else:
        data, name = source, filename or "upload.csv"
    suffix = Path(name).suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        table = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
        wb.close()
    elif suffix in (".csv", ".txt", ""):
        table = [list(r) for r in csv.reader(io.StringIO(_decode(data)))]
    else:
        raise ValueError(f"unsupported file type {suffix!r}: use .csv or .xlsx")
    if not table:
        return [], []
    headers = ["" if h is None else str(h) for h in table[0]]
    rows = [_Line(r, number) for number, r in enumerate(table[1:], start=2)
            if any(_blank(v) is not None for v in r)]
    return headers, rows


class _Line(list):
    """A row's cells that remember their row number in the file (blank rows are dropped, not renumbered)."""

    def __init__(self, cells: list[Any], number: int) -> None:
        super().__init__(cells)
        self.number = number


def _blank(v: Any) -> Any:
    """None for empty cells, stripped text otherwise, other values unchanged."""
    if v is None:
        return None
    if isinstance(v, str):
        v = v.strip()
        return v or None
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


# --- headers -----------------------------------------------------------------------------

def _header_index(kind: str) -> dict[str, str]:
    index: dict[str, str] = {}
    for col in COLUMNS[kind]:
        for key in (col.id, col.label_zh, *col.aliases):
            index.setdefault(normalise_name(key), col.id)
    return index


_PAREN_ID = re.compile(r"\(([a-z_]+)\)$")


def _map_headers(kind: str, headers: list[str], result: ImportResult) -> dict[int, str]:
    index = _header_index(kind)
    ids = {c.id for c in COLUMNS[kind]}
    mapping: dict[int, str] = {}
    for i, h in enumerate(headers):
        key = normalise_name(h)
        if not key:
            continue
        col = index.get(key)
        if col is None and (m := _PAREN_ID.search(key)) and m.group(1) in ids:
            col = m.group(1)
        if col is None:
            col = index.get(_PAREN_ID.sub("", key)) if _PAREN_ID.search(key) else None
        if col is None:
            result.warnings.append(Problem(1, None, f"未知列“{h}”已忽略 unknown column {h!r} ignored"))
            continue
        if col in mapping.values():
            result.errors.append(Problem(1, col, f"列重复 column given twice (“{h}”)"))
            continue
        mapping[i] = col
    for c in COLUMNS[kind]:
        if c.required and c.id not in mapping.values():
            result.errors.append(Problem(1, c.id, f"缺少必填列“{c.label_zh}” missing required column {c.id}"))
    return mapping


# --- cell parsers: return (value, error message or None) ----------------------------------

def _text(v: Any) -> tuple[str | None, str | None]:
    if v is None:
        return None, None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip(), None


def _code(v: Any) -> tuple[str | None, str | None]:
    s, _ = _text(v)
    if s is not None and not re.fullmatch(r"\d+", s):
        return None, f"代码应为数字 code must be digits: {s!r}"
    return s, None


def _number(v: Any) -> tuple[float | None, str | None]:
    if v is None:
        return None, None
    if isinstance(v, bool):
        return None, f"不是数字 not a number: {v!r}"
    try:
        x = float(str(v).replace(",", "")) if isinstance(v, str) else float(v)
    except (TypeError, ValueError):
        return None, f"不是数字 not a number: {v!r}"
    if not math.isfinite(x):
        return None, f"不是有限数字 not a finite number: {v!r}"
    return x, None


def _integer(v: Any) -> tuple[int | None, str | None]:
    x, err = _number(v)
    if err or x is None:
        return None, err
    if not x.is_integer():
        return None, f"应为整数 must be an integer: {v!r}"
    return int(x), None


def _date(v: Any) -> tuple[dt.date | None, str | None]:
    if v is None:
        return None, None
    if isinstance(v, dt.datetime):
        return v.date(), None
    if isinstance(v, dt.date):
        return v, None
    s = str(v).strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        try:
            return dt.date.fromisoformat(s), None
        except ValueError:
            pass
    return None, f"日期应为 YYYY-MM-DD date must be ISO YYYY-MM-DD: {s!r}"


def _boolean(v: Any) -> tuple[bool | None, str | None]:
    if isinstance(v, bool):
        return v, None
    key = normalise_name("" if v is None else (int(v) if isinstance(v, float) and v.is_integer() else v))
    if key in _TRUE:
        return True, None
    if key in _FALSE:
        return False, None
    return None, f"应为 是/否 must be yes/no: {v!r}"


def _vocab_parser(vocab: dict[str, tuple[str, str]], extra: dict[str, str] | None = None):
    index = {}
    for key, (zh, en) in vocab.items():
        for alias in (key, zh, en):
            index[normalise_name(alias)] = key
    for alias, key in (extra or {}).items():
        index[normalise_name(alias)] = key

    def parse(v: Any) -> tuple[str | None, str | None]:
        if v is None:
            return None, None
        key = index.get(normalise_name(v))
        if key is None:
            allowed = "、".join(zh for zh, _ in vocab.values())
            return None, f"取值“{v}”无效 invalid value; allowed: {allowed} ({', '.join(vocab)})"
        return key, None

    return parse


_access = _vocab_parser(ACCESS, {"公共": "public", "公共充电": "public", "公用桩": "public", "专用桩": "dedicated",
                                 "私人": "private", "个人": "private", "自用桩": "private"})
_current = _vocab_parser(CURRENT_TYPES, {"交流桩": "AC", "直流桩": "DC", "快充": "DC", "慢充": "AC", "ac": "AC", "dc": "DC"})
_site_type = _vocab_parser(SITE_TYPES, {"p+r": "park_and_ride", "换乘停车场": "park_and_ride", "驿站": "taihang_station",
                                        "居民小区": "residential", "小区": "residential", "单位": "institution",
                                        "公交场站": "depot_bus", "服务区": "highway_service_area"})
_place_kind = _vocab_parser(PLACE_KINDS, {"乡镇": "township", "街道": "township", "村": "village", "行政村": "village",
                                          "社区": "community", "景区": "scenic_spot", "驿站": "taihang_station",
                                          "房车营地": "taihang_rv_camp", "停车区": "road_parking_area",
                                          "服务区": "highway_service_area", "居住小区": "residential_community"})


def _a_level(v: Any) -> tuple[int | None, str | None]:
    if v is None:
        return None, None
    s = normalise_name(v if not isinstance(v, float) else int(v)).upper().replace("级", "")
    if s in {"0", "无", "NONE", "-"}:
        return 0, None
    if re.fullmatch(r"[1-5]", s):
        return int(s), None
    if re.fullmatch(r"[1-5]A", s):
        return int(s[0]), None
    if re.fullmatch(r"A{1,5}", s):
        return len(s), None
    return None, f"A级应为 0-5、1A-5A 或 A-AAAAA invalid A-level: {v!r}"


# --- row validation ----------------------------------------------------------------------

class _Rows:
    """Per-row access to cells by column id, recording problems with row numbers."""

    def __init__(self, result: ImportResult, mapping: dict[int, str], rows: list[list[Any]]):
        self.result = result
        self.mapping = mapping
        self.rows = rows

    def records(self) -> Iterable[tuple[int, dict[str, Any]]]:
        for i, raw in enumerate(self.rows):
            cells = {col: _blank(raw[j]) if j < len(raw) else None for j, col in self.mapping.items()}
            yield getattr(raw, "number", i + 2), cells

    def error(self, row: int | None, column: str | None, msg: str) -> None:
        self.result.errors.append(Problem(row, column, msg))

    def warn(self, row: int | None, column: str | None, msg: str) -> None:
        self.result.warnings.append(Problem(row, column, msg))

    def get(self, row: int, cells: dict, column: str, parser: Callable, required: bool = False) -> Any:
        value, err = parser(cells.get(column))
        if err:
            self.error(row, column, err)
            return None
        if value is None and required:
            label = next((c.label_zh for cols in COLUMNS.values() for c in cols if c.id == column), column)
            self.error(row, column, f"必填项为空 required value missing ({label})")
        return value


def _unit_names(geo: Geography) -> str:
    return "、".join(u.name for u in geo.units.values())


def _check_location(rows: _Rows, row: int, geo: Geography, unit: str | None, township: str | None,
                    village: str | None, lon: float | None, lat: float | None, tolerance_m: float,
                    ) -> tuple[str | None, bool]:
    """Validate township/village codes and coordinates against *unit*; return (township, ok)."""
    ok = True
    if village is not None:
        info = geo.village_info(village)
        if info is None:
            rows.error(row, "village_code", f"未知村（社区）代码 unknown village code {village}")
            ok = False
        else:
            v_township, v_unit = info
            if township is None:
                township = v_township
            elif township != v_township:
                rows.error(row, "village_code", f"村 {village} 不属于乡镇 {township} village is in township {v_township}")
                ok = False
            if unit is not None and v_unit != unit:
                rows.error(row, "village_code", f"村 {village} 属于{geo.unit_name(v_unit)}，不属于{geo.unit_name(unit)} "
                                                f"village belongs to {v_unit}, not {unit}")
                ok = False
    if township is not None and village is None:
        t_unit = geo.township_unit(township)
        if t_unit is None:
            rows.error(row, "township_code", f"未知乡镇（街道）代码 unknown township code {township}")
            ok = False
        elif unit is not None and t_unit != unit:
            rows.error(row, "township_code", f"乡镇 {township} 属于{geo.unit_name(t_unit)}，不属于{geo.unit_name(unit)} "
                                             f"township belongs to {t_unit}, not {unit}")
            ok = False
    if (lon is None) != (lat is None):
        rows.error(row, "lon" if lon is None else "lat", "经纬度须同时填写或同时为空 give both lon and lat, or neither")
        return township, False
    if lon is not None:
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            rows.error(row, "lon", f"经纬度超出范围 coordinates out of range: {lon}, {lat}")
            return township, False
        if unit is not None:
            if not geo.contains(unit, lon, lat, tolerance_m):
                d = geo.distance_outside_m(unit, lon, lat)
                hint = ""
                if geo.units_containing(lat, lon):
                    hint = "（经纬度可能填反 lon/lat look swapped）"
                rows.error(row, "lon", f"坐标 ({lon}, {lat}) 在{geo.unit_name(unit)}范围外 {d / 1000:.2f} km "
                                       f"coordinates outside the unit's polygon by {d:.0f} m{hint}")
                ok = False
    return township, ok


def _parse_piles(rows: _Rows, geo: Geography, today: dt.date, tolerance_m: float) -> dict[str, pd.DataFrame]:
    station_fields = ("name", "county", "township_code", "village_code", "lon", "lat", "access", "site_type",
                      "parking_spaces", "centralized", "operator", "address", "place_code")
    stations: dict[str, tuple[int, dict]] = {}
    piles: list[dict] = []
    pile_rows: dict[str, int] = {}
    cp_rows: dict[str, int] = {}
    for r, cells in rows.records():
        n_err = len(rows.result.errors)
        station_id = rows.get(r, cells, "station_id", _text, required=True)
        pile_id = rows.get(r, cells, "pile_id", _text, required=True)
        county_raw = cells.get("county")
        unit = geo.resolve_unit(county_raw) if county_raw is not None else None
        if county_raw is None:
            rows.error(r, "county", "必填项为空 required value missing (县（区）)")
        elif unit is None:
            rows.error(r, "county", f"未知县（区）“{county_raw}” unknown county; allowed: {_unit_names(geo)}")
        township = rows.get(r, cells, "township_code", _code)
        village = rows.get(r, cells, "village_code", _code)
        lon = rows.get(r, cells, "lon", _number)
        lat = rows.get(r, cells, "lat", _number)
        township, _ = _check_location(rows, r, geo, unit, township, village, lon, lat, tolerance_m)
        if township is None:
            rows.warn(r, "township_code", "无乡镇（街道）代码，不计入乡镇覆盖 no township code: counts for no township")
        if lon is None and lat is None:
            rows.warn(r, "lon", "无坐标，不参与充电距离计算 no coordinates: excluded from charging distances")
        access = rows.get(r, cells, "access", _access, required=True)
        site_type = rows.get(r, cells, "site_type", _site_type, required=True)
        spaces = rows.get(r, cells, "parking_spaces", _integer)
        if spaces is not None and spaces < 0:
            rows.error(r, "parking_spaces", f"车位数不能为负 parking spaces must be >= 0: {spaces}")
        centralized = rows.get(r, cells, "centralized", _boolean)
        power = rows.get(r, cells, "power_kw", _number, required=True)
        if power is not None:
            if power < 0:
                rows.error(r, "power_kw", f"功率不能为负 negative power: {power}")
            elif power == 0:
                rows.error(r, "power_kw", "功率须大于0 power must be > 0")
            elif power > MAX_PLAUSIBLE_KW:
                rows.warn(r, "power_kw", f"功率异常大 unusually high power: {power} kW")
        current = rows.get(r, cells, "current_type", _current, required=True)
        commissioned = rows.get(r, cells, "commissioned_on", _date, required=True)
        decommissioned = rows.get(r, cells, "decommissioned_on", _date)
        if commissioned and decommissioned and decommissioned < commissioned:
            rows.error(r, "decommissioned_on", f"退役日期 {decommissioned} 早于投运日期 {commissioned} "
                                               "decommissioned before commissioned")
        if commissioned and commissioned > today:
            rows.warn(r, "commissioned_on", f"投运日期在未来 commissioning date in the future: {commissioned}")
        connectors = rows.get(r, cells, "connector_count", _integer)
        if connectors is not None and connectors < 1:
            rows.error(r, "connector_count", f"枪数须至少为1 connector count must be >= 1: {connectors}")
        cp_id = rows.get(r, cells, "charge_point_id", _text)
        place_code = rows.get(r, cells, "place_code", _text)
        if pile_id is not None:
            if pile_id in pile_rows:
                rows.error(r, "pile_id", f"充电桩编号重复（同第{pile_rows[pile_id]}行） duplicate pile id {pile_id} "
                                         f"(also row {pile_rows[pile_id]})")
            else:
                pile_rows[pile_id] = r
        if cp_id is not None:
            if cp_id in cp_rows:
                rows.error(r, "charge_point_id", f"OCPP编号重复（同第{cp_rows[cp_id]}行） duplicate OCPP id {cp_id} "
                                                 f"(also row {cp_rows[cp_id]})")
            else:
                cp_rows[cp_id] = r
        if len(rows.result.errors) > n_err or station_id is None:
            continue
        station = {
            "station_id": station_id, "name": rows.get(r, cells, "station_name", _text), "county": unit,
            "township_code": township, "village_code": village, "lon": lon, "lat": lat, "access": access,
            "site_type": site_type, "parking_spaces": spaces, "centralized": bool(centralized),
            "operator": rows.get(r, cells, "operator", _text), "address": rows.get(r, cells, "address", _text),
            "place_code": place_code,
        }
        if station_id in stations:
            first_row, first = stations[station_id]
            for f in station_fields:
                if first[f] != station[f]:
                    rows.error(r, f, f"充电站 {station_id} 的“{f}”与第{first_row}行不一致 station field differs from "
                                     f"row {first_row}: {station[f]!r} vs {first[f]!r}")
        else:
            stations[station_id] = (r, station)
        piles.append({
            "pile_id": pile_id, "station_id": station_id, "power_kw": power, "current_type": current,
            "connector_count": 1 if connectors is None else connectors, "commissioned_on": commissioned,
            "decommissioned_on": decommissioned, "charge_point_id": cp_id,
        })
    st = pd.DataFrame([s for _, s in stations.values()]) if stations else None
    return {"stations": conform("stations", st), "piles": conform("piles", pd.DataFrame(piles) if piles else None)}


def _resolve_vehicle_unit(geo: Geography, raw: Any) -> str | None:
    if raw is None:
        return None
    if normalise_name(raw) in {"全市", "市", "city", "合计", "总计", normalise_name(geo.city_code)}:
        return geo.city_code
    return geo.resolve_unit(raw)


def _parse_vehicles(rows: _Rows, geo: Geography) -> dict[str, pd.DataFrame]:
    vehicles, fleets = [], []
    seen: dict[tuple[str, int], int] = {}
    for r, cells in rows.records():
        n_err = len(rows.result.errors)
        raw = cells.get("county")
        unit = _resolve_vehicle_unit(geo, raw)
        if raw is None:
            rows.error(r, "county", "必填项为空 required value missing (县（区）)")
        elif unit is None:
            rows.error(r, "county", f"未知县（区）“{raw}” unknown county; allowed: {_unit_names(geo)}、全市")
        year = rows.get(r, cells, "year", _integer, required=True)
        if year is not None and not 1990 <= year <= 2100:
            rows.error(r, "year", f"年份不合理 implausible year: {year}")
        ev = rows.get(r, cells, "ev_count", _integer, required=True)
        if ev is not None and ev < 0:
            rows.error(r, "ev_count", f"数量不能为负 count must be >= 0: {ev}")
        counts = {}
        for col, fleet in FLEET_COLUMNS.items():
            n = rows.get(r, cells, col, _integer)
            if n is not None and n < 0:
                rows.error(r, col, f"数量不能为负 count must be >= 0: {n}")
            elif n is not None:
                counts[fleet] = n
        if unit is not None and year is not None:
            if (unit, year) in seen:
                rows.error(r, "county", f"{geo.unit_name(unit)} {year} 年重复（同第{seen[(unit, year)]}行） "
                                        f"duplicate county and year (also row {seen[(unit, year)]})")
            else:
                seen[(unit, year)] = r
        if len(rows.result.errors) > n_err:
            continue
        vehicles.append({"county": unit, "year": year, "ev_count": ev})
        fleets += [{"county": unit, "year": year, "fleet_type": t, "vehicle_count": n} for t, n in counts.items()]
    return {"vehicles": conform("vehicles", pd.DataFrame(vehicles) if vehicles else None),
            "fleets": conform("fleets", pd.DataFrame(fleets) if fleets else None)}


def _parse_places(rows: _Rows, geo: Geography, tolerance_m: float) -> dict[str, pd.DataFrame]:
    places = []
    seen: dict[str, int] = {}
    t_names = dict(zip(geo.townships["code"], geo.townships["name"]))
    v_rows = {c: (n, k) for c, n, k in zip(geo.villages["code"], geo.villages["name"], geo.villages["kind"])}
    for r, cells in rows.records():
        n_err = len(rows.result.errors)
        kind = rows.get(r, cells, "kind", _place_kind, required=True)
        code = rows.get(r, cells, "code", _text, required=True)
        name = rows.get(r, cells, "name", _text)
        raw_county = cells.get("county")
        unit = geo.resolve_unit(raw_county) if raw_county is not None else None
        if raw_county is not None and unit is None:
            rows.error(r, "county", f"未知县（区）“{raw_county}” unknown county; allowed: {_unit_names(geo)}")
        township = rows.get(r, cells, "township_code", _code)
        village = None
        if kind in DIVISION_PLACE_KINDS and code is not None:
            if kind == "township":
                ref_name, ref_unit = t_names.get(code), geo.township_unit(code)
                if ref_unit is None:
                    rows.error(r, "code", f"未知乡镇（街道）代码 unknown township code {code}")
                township = code
            else:
                info = geo.village_info(code)
                ref_name, ref_kind = v_rows.get(code, (None, None))
                ref_unit = info[1] if info else None
                if info is None:
                    rows.error(r, "code", f"未知村（社区）代码 unknown village code {code}")
                elif ref_kind != kind:
                    rows.error(r, "kind", f"{code} {ref_name} 是{PLACE_KINDS[ref_kind][0]}，不是{PLACE_KINDS[kind][0]} "
                                          f"code is a {ref_kind}, not a {kind}")
                else:
                    village = code
                    township = None
            if ref_unit is not None:
                if unit is not None and unit != ref_unit:
                    rows.error(r, "county", f"{code} 属于{geo.unit_name(ref_unit)}，不属于{geo.unit_name(unit)} "
                                            f"code belongs to {ref_unit}, not {unit}")
                unit = ref_unit
                if name is not None and ref_name is not None and normalise_name(name) != normalise_name(ref_name):
                    rows.warn(r, "name", f"名称“{name}”与区划名称“{ref_name}”不同，以区划为准 name differs from the "
                                         f"reference; the reference name is kept")
                name = ref_name
        elif kind is not None:
            if raw_county is None:
                rows.error(r, "county", "必填项为空 required value missing (县（区）)")
            if name is None:
                rows.error(r, "name", "必填项为空 required value missing (名称)")
        lon = rows.get(r, cells, "lon", _number)
        lat = rows.get(r, cells, "lat", _number)
        township, _ = _check_location(rows, r, geo, unit, township, village, lon, lat, tolerance_m)
        if lon is None and lat is None:
            rows.warn(r, "lon", "无坐标 no coordinates")
        a_level = rows.get(r, cells, "a_level", _a_level)
        if a_level is not None and kind not in (None, "scenic_spot"):
            rows.warn(r, "a_level", "A级仅适用于景区，已忽略 A-level applies to scenic spots only; ignored")
            a_level = None
        spaces = rows.get(r, cells, "parking_spaces", _integer)
        if spaces is not None and spaces < 0:
            rows.error(r, "parking_spaces", f"车位数不能为负 parking spaces must be >= 0: {spaces}")
        resort = rows.get(r, cells, "provincial_resort", _boolean)
        if code is not None:
            if code in seen:
                rows.error(r, "code", f"场所代码重复（同第{seen[code]}行） duplicate place code {code} (also row {seen[code]})")
            else:
                seen[code] = r
        if len(rows.result.errors) > n_err:
            continue
        places.append({"code": code, "kind": kind, "name": name, "county": unit, "township_code": township,
                       "lon": lon, "lat": lat, "a_level": a_level, "provincial_resort": bool(resort),
                       "parking_spaces": spaces})
    return {"places": conform("places", pd.DataFrame(places) if places else None)}


# --- entry points ------------------------------------------------------------------------

def _kind(kind: str) -> str:
    k = _KIND_ALIASES.get(kind, kind)
    if k not in KINDS:
        raise ValueError(f"unknown import kind {kind!r}; use one of {KINDS}")
    return k


def parse_rows(kind: str, headers: list[str], rows: list[list[Any]], geography: Geography, *,
               today: dt.date | None = None, tolerance_m: float = 0.0) -> ImportResult:
    """Validate already read rows (see :func:`parse_file`)."""
    kind = _kind(kind)
    result = ImportResult(kind=kind, rows=len(rows))
    mapping = _map_headers(kind, headers, result)
    if result.errors:
        return result
    if not rows:
        result.warnings.append(Problem(None, None, "文件无数据行 the file has no data rows"))
    r = _Rows(result, mapping, rows)
    if kind == "piles":
        records = _parse_piles(r, geography, today or dt.date.today(), tolerance_m)
    elif kind == "vehicles":
        records = _parse_vehicles(r, geography)
    else:
        records = _parse_places(r, geography, tolerance_m)
    result.errors.sort(key=lambda p: (p.row or 0))
    result.warnings.sort(key=lambda p: (p.row or 0))
    if not result.errors:
        result.records = records
    return result


def parse_file(kind: str, source: str | Path | bytes, geography: Geography, *, filename: str | None = None,
               today: dt.date | None = None, tolerance_m: float = 0.0) -> ImportResult:
    """Parse and validate a CSV/XLSX file of *kind* (``piles``, ``vehicles`` or ``places``).

    ``tolerance_m`` accepts points up to that far outside a unit's (simplified) polygon.
    Returns an :class:`ImportResult`; its ``records`` are empty unless every row is valid.
    """
    kind = _kind(kind)
    try:
        headers, rows = read_table(source, filename)
    except (ValueError, OSError, KeyError) as exc:
        return ImportResult(kind=kind, errors=[Problem(None, None, f"无法读取文件 cannot read the file: {exc}")])
    if not headers:
        return ImportResult(kind=kind, errors=[Problem(None, None, "文件为空 the file is empty")])
    return parse_rows(kind, headers, rows, geography, today=today, tolerance_m=tolerance_m)


# --- templates ---------------------------------------------------------------------------

def _header(col: Column, lang: str) -> str:
    if lang == "en":
        return col.id
    if lang == "zh":
        return col.label_zh
    return f"{col.label_zh}（{col.id}）"


def _values_table() -> list[tuple[str, str, str, str]]:
    out = []
    for title, vocab in (("access", ACCESS), ("current_type", CURRENT_TYPES), ("site_type", SITE_TYPES),
                         ("kind", PLACE_KINDS)):
        out += [(title, key, zh, en) for key, (zh, en) in vocab.items()]
    return out


def write_template(kind: str, path: str | Path, lang: str = "bilingual", geography: Geography | None = None) -> Path:
    """Write an empty import template for *kind* as CSV or XLSX (by the path's suffix).

    ``lang``: "bilingual" (``中文（id）`` headers, default), "zh" or "en". CSV is UTF-8 with BOM
    so that Excel shows Chinese. XLSX adds a 说明 (instructions) sheet and a 取值 (values)
    sheet, with drop-down lists for access and current type; with *geography* also a 区划
    (divisions) sheet listing the units, townships and villages with their codes.
    """
    kind = _kind(kind)
    path = Path(path)
    cols = COLUMNS[kind]
    headers = [_header(c, lang) for c in cols]
    if path.suffix.lower() == ".csv":
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            csv.writer(fh).writerow(headers)
        return path
    if path.suffix.lower() != ".xlsx":
        raise ValueError("template path must end in .csv or .xlsx")
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    ws = wb.active
    ws.title = "数据 data"
    ws.append(headers)
    for i, c in enumerate(cols, start=1):
        cell = ws.cell(row=1, column=i)
        cell.font = Font(bold=c.required)
        ws.column_dimensions[cell.column_letter].width = max(12, len(headers[i - 1]) + 4)
        if c.id in ("township_code", "village_code", "code", "station_id", "pile_id"):
            for row in range(2, 1002):
                ws.cell(row=row, column=i).number_format = "@"
    info = wb.create_sheet("说明 instructions")
    info.append(["列名 header", "字段 column", "必填 required", "说明", "description", "示例 example"])
    for c in cols:
        info.append([c.label_zh, c.id, "是 yes" if c.required else "否 no", c.help_zh, c.help_en, c.example])
    info.append([])
    info.append(["第1行为表头，数据从第2行开始；任何一行有错误则整个文件不导入。",
                 "Row 1 is the header; data start on row 2. Any invalid row means nothing is imported."])
    values = wb.create_sheet("取值 values")
    values.append(["字段 column", "id", "中文", "English"])
    for row in _values_table():
        values.append(list(row))
    if geography is not None:
        div = wb.create_sheet("区划 divisions")
        div.append(["层级 level", "代码 code", "名称 name", "上级代码 parent", "县（区） unit"])
        for u in geography.units.values():
            div.append(["县（区） unit", u.code, u.name, "", u.name])
        for r in geography.townships.itertuples():
            div.append(["乡镇（街道） township", r.code, r.name, r.county_code, geography.unit_name(r.unit_code)])
        for r in geography.villages.itertuples():
            div.append(["村（社区） village", r.code, r.name, r.township_code, geography.unit_name(r.unit_code)])
    lists = {"access": '"公用,专用,自用"', "current_type": '"交流,直流"', "centralized": '"是,否"',
             "provincial_resort": '"是,否"'}
    for i, c in enumerate(cols, start=1):
        if c.id in lists:
            letter = ws.cell(row=1, column=i).column_letter
            dv = DataValidation(type="list", formula1=lists[c.id], allow_blank=True)
            dv.add(f"{letter}2:{letter}1001")
            ws.add_data_validation(dv)
    wb.save(path)
    return path
