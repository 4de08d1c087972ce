"""Controlled vocabularies of the registry, with Chinese and English labels.

One place for the ids used by the import, the metrics, the plan files and the SQL checks of
``schemas/migrations/0003_registry.sql`` (keep that file's CHECK lists in step with these).
Each vocabulary maps an English id to ``(label_zh, label_en)``.
"""

from __future__ import annotations

__all__ = ["ACCESS", "CURRENT_TYPES", "DIVISION_PLACE_KINDS", "FLEET_TYPES", "PLACE_KINDS", "SITE_TYPES", "SCENIC_TIERS", "label"]

#: Access class per 《运营管理办法》第三条: 公用 / 专用 / 自用.
ACCESS: dict[str, tuple[str, str]] = {
    "public": ("公用", "public"),
    "dedicated": ("专用", "dedicated"),
    "private": ("自用", "private"),
}

CURRENT_TYPES: dict[str, tuple[str, str]] = {
    "AC": ("交流", "AC"),
    "DC": ("直流", "DC"),
}

#: Station site types (where the station is), from the plan's 重点任务 and 办法 第五条.
SITE_TYPES: dict[str, tuple[str, str]] = {
    "public_parking": ("公共停车场", "public parking lot"),
    "commercial_parking": ("商业区停车场", "commercial parking"),
    "transport_hub": ("交通枢纽", "transport hub"),
    "park_and_ride": ("换乘停车场（P+R）", "park and ride (P+R)"),
    "residential": ("居住小区", "residential community"),
    "institution": ("党政机关及企事业单位", "institution / enterprise"),
    "depot_bus": ("公交场站", "bus depot"),
    "depot_taxi": ("出租车场站", "taxi depot"),
    "depot_sanitation": ("环卫场站", "sanitation depot"),
    "depot_logistics": ("物流场站", "logistics depot"),
    "scenic_spot": ("旅游景区", "scenic spot"),
    "highway_service_area": ("高速公路服务区", "highway service area"),
    "road_service_area": ("国省干线公路服务区/停车区", "national/provincial road service or parking area"),
    "taihang_station": ("太行一号旅游公路驿站", "Taihang No.1 road station"),
    "rv_camp": ("房车营地", "RV camp"),
    "taihang_parking": ("太行一号旅游公路停车场", "Taihang No.1 road parking lot"),
    "road_parking": ("城市道路路外公共泊位", "road parking lot"),
    "township_office": ("乡镇办公场所", "township office"),
    "village_square": ("村群众广场", "village square"),
    "fuel_station": ("加油站", "fuel station"),
    "other": ("其他", "other"),
}

#: Kinds of places the plan counts (coverage, distance, installation ratio).
PLACE_KINDS: dict[str, tuple[str, str]] = {
    "township": ("乡镇（街道）", "township-level unit"),
    "village": ("行政村", "administrative village"),
    "community": ("社区（居委会）", "urban community"),
    "scenic_spot": ("旅游景区", "scenic spot"),
    "highway_service_area": ("高速公路服务区", "highway service area"),
    "road_service_area": ("国省干线公路服务区", "national/provincial road service area"),
    "road_parking_area": ("国省干线公路停车区", "national/provincial road parking area"),
    "taihang_station": ("太行一号旅游公路驿站", "Taihang No.1 road station"),
    "taihang_rv_camp": ("太行一号旅游公路房车营地", "Taihang No.1 road RV camp"),
    "taihang_parking": ("太行一号旅游公路停车场", "Taihang No.1 road parking lot"),
    "residential_community": ("城镇居住小区", "urban residential community"),
}

#: Place kinds that come from the reference divisions (matched by code, not by radius).
DIVISION_PLACE_KINDS = ("township", "village", "community")

#: Public-service fleets (for the piles : vehicles target).
FLEET_TYPES: dict[str, tuple[str, str]] = {
    "bus": ("公交", "bus"),
    "sanitation": ("环卫", "sanitation"),
    "taxi": ("出租", "taxi"),
    "logistics": ("物流", "logistics"),
    "commuter": ("通勤", "commuter"),
}

#: Scenic-spot tiers of the plan's installation ratios (重点任务 5).
SCENIC_TIERS: dict[str, tuple[str, str]] = {
    "4a_or_resort": ("国家4A级以上景区、省级以上旅游度假区", "4A+ or provincial resort"),
    "a_1_3": ("其他A级景区", "other A-level"),
    "below_a": ("A级（不含）以下景区", "below A-level"),
}


def label(vocabulary: dict[str, tuple[str, str]], key: str, lang: str = "zh") -> str:
    """Label of *key* in *vocabulary* (``lang`` "zh" or "en"); the key itself when unknown."""
    pair = vocabulary.get(key)
    return key if pair is None else pair[0 if lang == "zh" else 1]
