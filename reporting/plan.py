"""The plan as data: a typed, validating loader for plan files (TOML).

A plan file (``reporting/plans/*.toml``) holds a city's quantitative targets; the code knows
only the *metric catalogue* (:data:`METRICS`), never a city's names or numbers, so another
city's plan loads from its own file with no code change. File layout (see the Yangquan file
for a full example)::

    schema_version = 1
    id = "…"; title = "…"; document = "…"; issued_on = 2023-11-14; version = "1.0.0"
    city_code = "140300"; city_name = "…"; years = [2023, 2024, 2025]; baseline_year = 2022

    [settings]                  # optional evaluation defaults
    coverage_radius_m = 500

    [[units]]                   # the plan's county-level units, in report order
    code = "140302"; name = "城区"; name_en = "…"

    [township_sets]             # optional named lists of township codes
    core = ["…"]

    [[place_groups]]            # optional named selections of places (union of rules)
    id = "urban_core"; name = "核心区"; name_en = "core area"; description = "…"
    include = [{ kinds = ["community"], townships = "core" }]

    [[targets]]
    id = "…"                    # unique in the file
    year = 2025                 # or years = [2023, 2024] (one target per year; id gets ".YEAR")
    scope = "city"              # or "county" with county = "CODE" | "*" | ["CODE", …]
    metric = "public_piles"     # a key of METRICS
    comparator = ">="           # >= > <= < ==
    threshold = 5738
    unit = "piles"
    place_kind = "village"      # or place_group = "…", when the metric needs places
    params = { … }              # metric parameters (see METRICS)
    strength = "binding"        # binding | aspirational | reference | encouraged
    label_zh = "…"; label_en = "…"
    source = "三、发展目标"; quote = "原文句子"
    interpretation = "…"        # required when the reading is a choice

    [[assumptions]]             # numbers the plan states that are not targets
    id = "…"; value = 32000; unit = "vehicles"; quote = "…"; note = "…"

:func:`load_plan` checks every field and raises :class:`PlanError` listing every problem.
Targets with ``county = "*"`` or a list are expanded to one target per unit (id gets
``@CODE``).
"""

from __future__ import annotations

import datetime as dt
import math
import operator
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

from .vocabulary import ACCESS, CURRENT_TYPES, FLEET_TYPES, PLACE_KINDS, SCENIC_TIERS, SITE_TYPES

__all__ = [
    "COMPARATORS",
    "DEFAULT_PLAN",
    "METRICS",
    "MetricSpec",
    "Assumption",
    "Plan",
    "PlanError",
    "PlaceGroup",
    "PlanUnit",
    "Target",
    "check_plan_geography",
    "load_plan",
]

PLANS_DIR = Path(__file__).resolve().parent / "plans"
DEFAULT_PLAN = PLANS_DIR / "yangquan-2023-2025.toml"
SCHEMA_VERSION = 1

COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}
STRENGTHS = {
    "binding": ("约束性", "binding"),
    "aspirational": ("力争", "aspirational"),
    "reference": ("参考", "reference"),
    "encouraged": ("鼓励", "encouraged"),
}
SCOPES = ("city", "county")


# --- metric catalogue ------------------------------------------------------------------------

def _int_ge(lo: int) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if isinstance(v, int) and not isinstance(v, bool) and v >= lo else f"must be an integer >= {lo}"
    return check


def _number_ge0(v: Any) -> str | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
    return None if ok else "must be a number >= 0"


def _one_of(vocab: Mapping[str, Any]) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if v in vocab else f"must be one of {sorted(vocab)}"
    return check


def _list_of(vocab: Mapping[str, Any]) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if not isinstance(v, list) or not v:
            return "must be a non-empty list"
        bad = [x for x in v if x not in vocab]
        return f"unknown values {bad}; allowed {sorted(vocab)}" if bad else None
    return check


def _text(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else "must be a non-empty string"


_COVERAGE_PARAMS = {
    "min_piles": _int_ge(1),
    "current_type": _one_of(CURRENT_TYPES),
    "min_power_kw": _number_ge0,
    "access": _list_of(ACCESS),
}


@dataclass(frozen=True)
class MetricSpec:
    """What a metric id means.

    ``places``: "none" (no place selection), "required" (``place_kind`` or ``place_group``),
    "optional". ``projection``: how the current year is extrapolated — "flow" (count so far
    scaled to the full year), "stock" (linear from the value at the start of the year), or
    None (no projection; status from the current value).
    """

    label_zh: str
    label_en: str
    unit: str
    scopes: tuple[str, ...] = SCOPES
    places: str = "none"
    params: Mapping[str, Callable[[Any], str | None]] = field(default_factory=dict)
    projection: str | None = "stock"


METRICS: dict[str, MetricSpec] = {
    "public_piles": MetricSpec("公共充电桩数量", "public piles in service", "piles"),
    "new_public_piles": MetricSpec(
        "新增公共充电桩", "new public piles", "piles", params={"since_year": _int_ge(1900)}, projection="flow"
    ),
    "vehicles_per_public_pile": MetricSpec("车桩比（辆/桩）", "EVs per public pile", "vehicles/pile", projection="stock"),
    "places_covered": MetricSpec(
        "已覆盖场所数", "places covered", "places", places="required", params=_COVERAGE_PARAMS
    ),
    "places_covered_share": MetricSpec(
        "场所覆盖率", "share of places covered", "ratio", places="required", params=_COVERAGE_PARAMS
    ),
    "mean_public_piles_per_place": MetricSpec(
        "平均每场所公共充电桩", "mean public piles per place", "piles/place", places="required"
    ),
    "charging_distance_max_km": MetricSpec(
        "最大充电距离", "maximum charging distance", "km", places="required", projection=None
    ),
    "centralized_stations": MetricSpec("集中式经营性充电站数", "centralized operating stations", "stations"),
    "centralized_station_public_piles": MetricSpec(
        "集中式充电站公共充电桩数", "public piles at centralized stations", "piles"
    ),
    "units_with_centralized_station": MetricSpec(
        "有集中式充电站的县（区）数", "units with a centralized station", "units", scopes=("city",)
    ),
    "new_stations": MetricSpec(
        "新增充电站", "new stations", "stations",
        params={"site_types": _list_of(SITE_TYPES), "access": _list_of(ACCESS)}, projection="flow",
    ),
    "installation_ratio": MetricSpec(
        "充电桩安装比例（桩/车位）", "installation ratio (piles per parking space)", "ratio", places="optional",
        params={
            "basis": _one_of({"stations": 1, "places": 1}),
            "site_types": _list_of(SITE_TYPES),
            "access": _list_of(ACCESS),
            "scenic_tier": _one_of(SCENIC_TIERS),
        },
    ),
    "fleet_piles_per_vehicle": MetricSpec(
        "公共服务领域桩车比（桩/车）", "public-service fleet piles per vehicle", "piles/vehicle",
        params={"site_types": _list_of(SITE_TYPES), "fleet_types": _list_of(FLEET_TYPES), "access": _list_of(ACCESS)},
    ),
    "manual": MetricSpec(
        "人工填报", "reported manually (not tracked in the registry)", "count", params={"measure": _text},
        projection=None,
    ),
}


# --- typed plan ----------------------------------------------------------------------------

class PlanError(ValueError):
    """A plan file is invalid. ``problems`` lists every problem found (location: message)."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = str(path)
        self.problems = list(problems)
        super().__init__(f"{self.path}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class PlanUnit:
    code: str
    name: str
    name_en: str = ""


@dataclass(frozen=True)
class PlaceRule:
    """Places of ``kinds`` in ``townships`` (all when empty) and not in ``exclude_townships``."""

    kinds: tuple[str, ...]
    townships: tuple[str, ...] = ()
    exclude_townships: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlaceGroup:
    id: str
    name: str
    name_en: str
    description: str
    rules: tuple[PlaceRule, ...]

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k for r in self.rules for k in r.kinds))


@dataclass(frozen=True)
class Target:
    """One evaluable target (after expansion: one year, one scope unit).

    ``county`` is None for city scope. ``template_id`` is the id in the file.
    """

    id: str
    template_id: str
    year: int
    scope: str
    county: str | None
    metric: str
    comparator: str
    threshold: float
    unit: str
    place_kind: str | None
    place_group: str | None
    params: Mapping[str, Any]
    strength: str
    label_zh: str
    label_en: str
    source: str
    quote: str
    interpretation: str

    def compare(self, value: float | None) -> bool | None:
        """Whether *value* satisfies the target; None when the value is unknown."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return bool(COMPARATORS[self.comparator](value, self.threshold))

    @property
    def place_label(self) -> str | None:
        return self.place_group or self.place_kind


@dataclass(frozen=True)
class Assumption:
    id: str
    value: float
    unit: str
    quote: str
    note: str = ""


@dataclass(frozen=True)
class Plan:
    id: str
    title: str
    document: str
    issued_on: dt.date | None
    version: str
    city_code: str
    city_name: str
    years: tuple[int, ...]
    baseline_year: int | None
    units: tuple[PlanUnit, ...]
    township_sets: Mapping[str, tuple[str, ...]]
    place_groups: Mapping[str, PlaceGroup]
    targets: tuple[Target, ...]
    assumptions: tuple[Assumption, ...]
    settings: Mapping[str, Any]
    path: str = ""

    def unit(self, code: str) -> PlanUnit | None:
        return next((u for u in self.units if u.code == code), None)

    @property
    def unit_codes(self) -> tuple[str, ...]:
        return tuple(u.code for u in self.units)

    def targets_for(self, *, year: int | None = None, metric: str | None = None,
                    county: Any = ...) -> list[Target]:
        """Targets filtered by year, metric and county.

        ``county`` omitted: any scope; ``None``: city scope only; a code: that unit only.
        """
        out = []
        for t in self.targets:
            if year is not None and t.year != year:
                continue
            if metric is not None and t.metric != metric:
                continue
            if county is not ... and t.county != county:
                continue
            out.append(t)
        return out


# --- loading & validation ------------------------------------------------------------------

_TARGET_KEYS = {
    "id", "year", "years", "scope", "county", "metric", "comparator", "threshold", "unit", "place_kind",
    "place_group", "params", "strength", "label_zh", "label_en", "source", "quote", "interpretation",
}
_REQUIRED_TARGET_TEXT = ("id", "unit", "label_zh", "label_en", "source", "quote")


class _Problems(list):
    def add(self, where: str, msg: str) -> None:
        self.append(f"{where}: {msg}")


def _str_list(value: Any) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(x, (str, int)) for x in value):
        return [str(x) for x in value]
    return None


def _load_units(doc: dict, p: _Problems) -> tuple[PlanUnit, ...]:
    units = []
    raw = doc.get("units")
    if not isinstance(raw, list) or not raw:
        p.add("units", "at least one [[units]] entry is required")
        return ()
    seen = set()
    for i, u in enumerate(raw):
        where = f"units[{i}]"
        if not isinstance(u, dict) or not u.get("code") or not u.get("name"):
            p.add(where, "needs 'code' and 'name'")
            continue
        code = str(u["code"])
        if code in seen or code == "*":
            p.add(where, f"duplicate or reserved code {code!r}")
        seen.add(code)
        units.append(PlanUnit(code, str(u["name"]), str(u.get("name_en", ""))))
    return tuple(units)


def _load_township_sets(doc: dict, p: _Problems) -> dict[str, tuple[str, ...]]:
    out = {}
    raw = doc.get("township_sets", {})
    if not isinstance(raw, dict):
        p.add("township_sets", "must be a table of name = [codes]")
        return {}
    for name, codes in raw.items():
        lst = _str_list(codes)
        if lst is None:
            p.add(f"township_sets.{name}", "must be a list of township codes")
            continue
        out[name] = tuple(lst)
    return out


def _resolve_townships(value: Any, sets: Mapping[str, tuple[str, ...]], where: str, p: _Problems) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        if value not in sets:
            p.add(where, f"unknown township set {value!r}")
            return ()
        return sets[value]
    lst = _str_list(value)
    if lst is None:
        p.add(where, "must be a list of township codes or a township_sets name")
        return ()
    return tuple(lst)


def _load_place_groups(doc: dict, sets: Mapping[str, tuple[str, ...]], p: _Problems) -> dict[str, PlaceGroup]:
    groups: dict[str, PlaceGroup] = {}
    for i, g in enumerate(doc.get("place_groups", [])):
        where = f"place_groups[{i}]"
        if not isinstance(g, dict) or not g.get("id") or not g.get("name"):
            p.add(where, "needs 'id' and 'name'")
            continue
        gid = str(g["id"])
        if gid in groups or gid in PLACE_KINDS:
            p.add(where, f"duplicate id {gid!r} (ids must also differ from place kinds)")
        rules = []
        raw_rules = g.get("include")
        if not isinstance(raw_rules, list) or not raw_rules:
            p.add(where, "needs a non-empty 'include' list of rules")
            raw_rules = []
        for j, r in enumerate(raw_rules):
            rwhere = f"{where}.include[{j}]"
            if not isinstance(r, dict):
                p.add(rwhere, "must be a table")
                continue
            unknown = set(r) - {"kinds", "townships", "exclude_townships"}
            if unknown:
                p.add(rwhere, f"unknown keys {sorted(unknown)}")
            kinds = _str_list(r.get("kinds"))
            if not kinds:
                p.add(rwhere, "needs 'kinds' (a list of place kinds)")
                kinds = []
            bad = [k for k in kinds if k not in PLACE_KINDS]
            if bad:
                p.add(rwhere, f"unknown place kinds {bad}; allowed {sorted(PLACE_KINDS)}")
            rules.append(
                PlaceRule(
                    tuple(kinds),
                    _resolve_townships(r.get("townships"), sets, f"{rwhere}.townships", p),
                    _resolve_townships(r.get("exclude_townships"), sets, f"{rwhere}.exclude_townships", p),
                )
            )
        groups[gid] = PlaceGroup(gid, str(g["name"]), str(g.get("name_en", "")), str(g.get("description", "")),
                                 tuple(rules))
    return groups


def _target_counties(raw: dict, unit_codes: tuple[str, ...], where: str, p: _Problems) -> list[str | None]:
    scope = raw.get("scope")
    county = raw.get("county")
    if scope == "city":
        if county is not None:
            p.add(where, "city-scope targets take no 'county'")
        return [None]
    if county == "*":
        return list(unit_codes)
    codes = [str(county)] if isinstance(county, (str, int)) else _str_list(county)
    if not codes:
        p.add(where, "county-scope targets need county = \"CODE\", \"*\" or a list of codes")
        return []
    bad = [c for c in codes if c not in unit_codes]
    if bad:
        p.add(where, f"unknown unit codes {bad}; declared units {list(unit_codes)}")
        return []
    return codes


def _check_target(raw: dict, where: str, groups: Mapping[str, PlaceGroup], years: tuple[int, ...],
                  p: _Problems) -> bool:
    ok = True

    def bad(msg: str) -> None:
        nonlocal ok
        ok = False
        p.add(where, msg)

    unknown = set(raw) - _TARGET_KEYS
    if unknown:
        bad(f"unknown keys {sorted(unknown)}")
    for key in _REQUIRED_TARGET_TEXT:
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            bad(f"'{key}' is required (non-empty text)")
    if ("year" in raw) == ("years" in raw):
        bad("give exactly one of 'year' or 'years'")
    ys = raw.get("years", [raw.get("year")])
    if not isinstance(ys, list) or not all(isinstance(y, int) and not isinstance(y, bool) for y in ys):
        bad("'year' must be an integer ('years' a list of integers)")
    elif years and any(y not in years for y in ys):
        bad(f"year(s) {ys} outside the plan's years {list(years)}")
    if raw.get("scope") not in SCOPES:
        bad(f"'scope' must be one of {list(SCOPES)}")
    spec = METRICS.get(raw.get("metric"))
    if spec is None:
        bad(f"unknown metric {raw.get('metric')!r}; known: {sorted(METRICS)}")
    elif raw.get("scope") in SCOPES and raw["scope"] not in spec.scopes:
        bad(f"metric {raw['metric']} allows scopes {list(spec.scopes)}")
    if raw.get("comparator") not in COMPARATORS:
        bad(f"'comparator' must be one of {list(COMPARATORS)}")
    thr = raw.get("threshold")
    if not isinstance(thr, (int, float)) or isinstance(thr, bool) or not math.isfinite(thr):
        bad("'threshold' must be a finite number")
    if raw.get("strength", "binding") not in STRENGTHS:
        bad(f"'strength' must be one of {list(STRENGTHS)}")
    kind, group = raw.get("place_kind"), raw.get("place_group")
    if kind is not None and group is not None:
        bad("give 'place_kind' or 'place_group', not both")
    if kind is not None and kind not in PLACE_KINDS:
        bad(f"unknown place_kind {kind!r}; allowed {sorted(PLACE_KINDS)}")
    if group is not None and group not in groups:
        bad(f"unknown place_group {group!r}; declared {sorted(groups)}")
    params = raw.get("params", {})
    if not isinstance(params, dict):
        bad("'params' must be a table")
        params = {}
    if spec is not None:
        has_place = kind is not None or group is not None
        if spec.places == "required" and not has_place:
            bad(f"metric {raw['metric']} needs 'place_kind' or 'place_group'")
        if spec.places == "none" and has_place:
            bad(f"metric {raw['metric']} takes no place selection")
        for name, value in params.items():
            check = spec.params.get(name)
            if check is None:
                bad(f"metric {raw['metric']} has no parameter {name!r}; allowed {sorted(spec.params)}")
            elif (msg := check(value)) is not None:
                bad(f"params.{name} {msg}")
        if raw.get("metric") == "installation_ratio":
            basis = params.get("basis", "stations")
            if basis == "places" and not has_place:
                bad("installation_ratio with basis = \"places\" needs 'place_kind' or 'place_group'")
            if basis == "stations" and "site_types" not in params:
                bad("installation_ratio with basis = \"stations\" needs params.site_types")
        if raw.get("metric") == "fleet_piles_per_vehicle":
            for need in ("site_types", "fleet_types"):
                if need not in params:
                    bad(f"fleet_piles_per_vehicle needs params.{need}")
    return ok


def load_plan(path: Path | str = DEFAULT_PLAN) -> Plan:
    """Read and validate a plan file; raise :class:`PlanError` listing every problem."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise PlanError(path, ["file not found"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(path, [f"not valid TOML: {exc}"]) from None
    return plan_from_dict(doc, path)


def plan_from_dict(doc: dict, path: Path | str = "<memory>") -> Plan:
    """Validate an already parsed plan document (see :func:`load_plan`)."""
    p = _Problems()
    if doc.get("schema_version") != SCHEMA_VERSION:
        p.add("schema_version", f"must be {SCHEMA_VERSION}")
    for key in ("id", "title", "city_code", "city_name", "version"):
        if not isinstance(doc.get(key), str) or not doc[key].strip():
            p.add(key, "is required (non-empty text)")
    years_raw = doc.get("years")
    if not isinstance(years_raw, list) or not years_raw or not all(isinstance(y, int) for y in years_raw):
        p.add("years", "must be a non-empty list of integers")
        years: tuple[int, ...] = ()
    else:
        years = tuple(sorted(years_raw))
    issued = doc.get("issued_on")
    if issued is not None and not isinstance(issued, dt.date):
        p.add("issued_on", "must be a TOML date (YYYY-MM-DD)")
        issued = None
    settings = doc.get("settings", {})
    if not isinstance(settings, dict):
        p.add("settings", "must be a table")
        settings = {}
    radius = settings.get("coverage_radius_m", 500)
    if not isinstance(radius, (int, float)) or radius < 0:
        p.add("settings.coverage_radius_m", "must be a number >= 0")

    units = _load_units(doc, p)
    unit_codes = tuple(u.code for u in units)
    sets = _load_township_sets(doc, p)
    groups = _load_place_groups(doc, sets, p)

    targets: list[Target] = []
    seen_ids: set[str] = set()
    raw_targets = doc.get("targets")
    if not isinstance(raw_targets, list) or not raw_targets:
        p.add("targets", "at least one [[targets]] entry is required")
        raw_targets = []
    for i, raw in enumerate(raw_targets):
        where = f"targets[{i}]" + (f" ({raw.get('id')})" if isinstance(raw, dict) and raw.get("id") else "")
        if not isinstance(raw, dict):
            p.add(where, "must be a table")
            continue
        if raw.get("id") in seen_ids:
            p.add(where, f"duplicate id {raw.get('id')!r}")
        seen_ids.add(raw.get("id"))
        if not _check_target(raw, where, groups, years, p):
            continue
        counties = _target_counties(raw, unit_codes, where, p)
        multi_year = "years" in raw
        multi_county = raw["scope"] == "county" and (raw.get("county") == "*" or isinstance(raw.get("county"), list))
        for year in raw.get("years", [raw.get("year")]):
            for county in counties:
                tid = raw["id"] + (f".{year}" if multi_year else "") + (f"@{county}" if multi_county else "")
                targets.append(
                    Target(
                        id=tid, template_id=raw["id"], year=year, scope=raw["scope"], county=county,
                        metric=raw["metric"], comparator=raw["comparator"], threshold=float(raw["threshold"]),
                        unit=raw["unit"], place_kind=raw.get("place_kind"), place_group=raw.get("place_group"),
                        params=MappingProxyType(dict(raw.get("params", {}))),
                        strength=raw.get("strength", "binding"), label_zh=raw["label_zh"], label_en=raw["label_en"],
                        source=raw["source"], quote=raw["quote"].strip(),
                        interpretation=str(raw.get("interpretation", "")).strip(),
                    )
                )
    expanded_ids = [t.id for t in targets]
    dups = sorted({x for x in expanded_ids if expanded_ids.count(x) > 1})
    if dups:
        p.add("targets", f"expanded ids collide: {dups[:5]}")

    assumptions = []
    for i, a in enumerate(doc.get("assumptions", [])):
        where = f"assumptions[{i}]"
        if not isinstance(a, dict) or not a.get("id") or not isinstance(a.get("value"), (int, float)) \
                or not a.get("quote"):
            p.add(where, "needs 'id', numeric 'value' and 'quote'")
            continue
        assumptions.append(Assumption(str(a["id"]), float(a["value"]), str(a.get("unit", "")), str(a["quote"]),
                                      str(a.get("note", ""))))
    if p:
        raise PlanError(path, p)
    return Plan(
        id=doc["id"], title=doc["title"], document=str(doc.get("document", "")), issued_on=issued,
        version=doc["version"], city_code=str(doc["city_code"]), city_name=doc["city_name"], years=years,
        baseline_year=doc.get("baseline_year"), units=units, township_sets=MappingProxyType(sets),
        place_groups=MappingProxyType(groups), targets=tuple(targets), assumptions=tuple(assumptions),
        settings=MappingProxyType({"coverage_radius_m": 500, **settings}), path=str(path),
    )


def check_plan_geography(plan: Plan, geography) -> list[str]:
    """Problems between a plan and a :class:`reporting.geography.Geography` (empty when consistent).

    Checks that every plan unit is a planning unit of the geography, the city codes agree and
    every township code used by township sets and place groups exists.
    """
    problems = []
    if geography.city_code and plan.city_code != geography.city_code:
        problems.append(f"plan city_code {plan.city_code} differs from the geography's {geography.city_code}")
    for u in plan.units:
        if u.code not in geography.units:
            problems.append(f"plan unit {u.code} ({u.name}) is not a planning unit of the geography")
    known = set(geography.townships["code"])
    used = {c for s in plan.township_sets.values() for c in s}
    for g in plan.place_groups.values():
        for r in g.rules:
            used.update(r.townships, r.exclude_townships)
    for c in sorted(used - known):
        problems.append(f"township code {c} used by the plan is not in the geography")
    return problems
