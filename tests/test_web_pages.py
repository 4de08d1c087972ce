"""The web dashboard without a browser: page and static routes, security headers, the dashboard
API views (roles, counters, map, station, operations, CSV export) and static checks of the JS
(no HTML parsing of data, both languages complete)."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from csms.web import SECURITY_HEADERS, STATIC_DIR

from .api_helpers import ApiEnv, Online16, api  # noqa: F401 - fixture
from .conftest import wait_for

JS_FILES = sorted((STATIC_DIR / "js").rglob("*.js"))


# ----------------------------------------------------------------------------- routes
async def test_page_and_static_files_are_served_with_security_headers(api: ApiEnv):
    c = api.client
    r = await c.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/web/js/app.js">' in r.text and 'lang="zh-CN"' in r.text
    for name, value in SECURITY_HEADERS.items():
        assert r.headers[name.lower()] == value
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert (await c.head("/")).status_code == 200
    js = await c.get("/web/js/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert js.headers["x-content-type-options"] == "nosniff" and js.headers["cache-control"] == "no-cache"
    again = await c.get("/web/js/app.js", headers={"If-None-Match": js.headers["etag"]})
    assert again.status_code == 304
    css = await c.get("/web/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    geo = (await c.get("/web/yangquan_counties.geojson")).json()
    assert sorted(f["properties"]["code"] for f in geo["features"]) == ["140302", "140303", "140311", "140321",
                                                                         "140322"]
    for bad in ("/web/../__init__.py", "/web/%2e%2e/__init__.py", "/web/js/nope.js", "/web/"):
        assert (await c.get(bad)).status_code == 404, bad
    # the API itself is unchanged: still JSON errors, still a token needed
    r = await c.get("/api/v1/dashboard/overview")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_every_static_file_is_packaged_and_no_cdn_is_used():
    files = [p for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} <= {".js", ".css", ".geojson", ".txt", ".html"}  # pyproject package-data
    for p in files:
        text = p.read_text(encoding="utf-8")
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), f"{p.name} loads something remote"


# ----------------------------------------------------------------------------- the JS, statically
@pytest.mark.parametrize("path", JS_FILES, ids=lambda p: p.name)
def test_js_never_parses_data_as_html(path):
    """Escaping by construction: text goes in with textContent / text nodes, never as markup."""
    text = path.read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "setAttribute('on", 'setAttribute("on', "javascript:"):
        assert sink not in text, f"{path.name} uses {sink}"


def test_both_languages_have_every_label():
    text = (STATIC_DIR / "js" / "i18n.js").read_text(encoding="utf-8")
    zh = text[text.index("const ZH = {"):text.index("const EN = {")]
    en = text[text.index("const EN = {"):text.index("const DICTS")]
    key = re.compile(r"'([a-z_]+(?:\.[A-Za-z0-9_-]+)*)':")
    zh_keys, en_keys = set(key.findall(zh)), set(key.findall(en))
    assert zh_keys == en_keys, (zh_keys ^ en_keys)
    # every t('...') key used by the pages exists
    used = set()
    for path in JS_FILES:
        used |= set(re.findall(r"\bt\('([a-z_]+\.[A-Za-z0-9_.-]*[A-Za-z0-9_-])'", path.read_text(encoding="utf-8")))
    assert used - zh_keys == set()


# ----------------------------------------------------------------------------- dashboard API
async def test_dashboard_views_need_their_roles(api: ApiEnv):
    for path in ("/dashboard/overview", "/dashboard/map", "/dashboard/stations/X", "/dashboard/export/sessions.csv",
                 "/dashboard/export/faults.csv"):
        assert (await api.get(path, role="bureau")).status_code == 403, path
        assert (await api.client.get("/api/v1" + path)).status_code == 401, path
    for role in ("bureau", "operator", "admin"):
        r = await api.get("/dashboard/operations?months=2", role=role)
        assert r.status_code == 200, r.text
    assert (await api.get("/dashboard/stations/NOPE")).status_code == 404
    assert (await api.get("/dashboard/operations?months=2&end=2099-01")).status_code == 422
    assert (await api.get("/dashboard/operations?months=99")).status_code == 422


async def _station(api: ApiEnv, sid: str, name: str, lon=113.58, lat=37.86) -> None:
    await api.pool.execute(
        """INSERT INTO stations (station_id, name, county, lon, lat, access, site_type)
           VALUES ($1, $2, '140302', $3, $4, 'public', 'public_parking')""", sid, name, lon, lat)


async def test_overview_map_and_station_follow_a_live_charger(api: ApiEnv):
    await _station(api, "ST-1", "<b>站</b>")
    await _station(api, "ST-2", "registry only")
    await api.register("CP-W1", station_id="ST-1")
    await api.pool.execute("""INSERT INTO piles (pile_id, station_id, power_kw, current_type, commissioned_on,
                                                 charge_point_id) VALUES ('P-1', 'ST-1', 60, 'DC', '2024-01-01', 'CP-W1')""")
    o = (await api.get("/dashboard/overview")).json()
    assert o["chargers"] == {"total": 1, "online": 0, "offline": 1} and o["stations"] == 2
    m = (await api.get("/dashboard/map")).json()
    st = {s["station_id"]: s for s in m["stations"]}
    assert st["ST-1"]["status"] == "offline" and st["ST-2"]["status"] == "none" and st["ST-1"]["piles"] == 1
    assert st["ST-1"]["name"] == "<b>站</b>"  # raw in JSON: the page renders it as text
    assert {"code": "140302", "name": "城区"} in m["counties"]
    async with Online16(api, "CP-W1") as cp:
        await cp.status(0, "Available")
        await cp.status(1, "Available")
        await cp.status(2, "Charging")

        async def counted():
            o = (await api.get("/dashboard/overview")).json()
            return o if o["connectors"]["charging"] == 1 else None

        o = await wait_for(counted)
        assert o["chargers"]["online"] == 1 and o["connectors"]["available"] == 1
        assert o["connectors"]["total"] == 2  # connector 0 (the whole charger) is not a connector
        assert (await api.get("/dashboard/map")).json()["counts"] == {"charging": 1, "none": 1}
        await cp.status(1, "Faulted", "GroundFailure")
        d = await wait_for(lambda: _detail_if(api, "faulted"))
        assert d["name"] == "<b>站</b>" and d["county_name"] == "城区"
        assert d["piles"][0]["charge_point_id"] == "CP-W1" and d["chargers"][0]["online"] is True
        assert {c["connector_id"]: c["status"] for c in d["chargers"][0]["connectors"]} == {
            0: "Available", 1: "Faulted", 2: "Charging"}


async def _detail_if(api: ApiEnv, status: str):
    d = (await api.get("/dashboard/stations/ST-1")).json()
    return d if d["status"] == status else None


async def test_csv_exports_filter_and_defuse_formulas(api: ApiEnv):
    await api.register("=1+2")  # a legal OCPP id that a spreadsheet would run as a formula
    await api.register("CP-B")
    await api.pool.execute(
        """INSERT INTO sessions (charge_point_id, transaction_id, ocpp_version, connector_id, id_tag, started_at,
                                 stopped_at, energy_wh)
           SELECT cp, n::text, '1.6', 1, '@tag', now() - n * interval '1 hour', now() - n * interval '1 hour'
                  + interval '30 minutes', 1000 * n FROM (VALUES ('=1+2'), ('CP-B')) v(cp), generate_series(1, 3) n""")
    await api.pool.execute("""INSERT INTO faults (charge_point_id, connector_id, source, error_code, opened_at)
                              VALUES ('=1+2', 1, 'status', 'GroundFailure', now())""")
    r = await api.get("/dashboard/export/sessions.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith('attachment; filename="sessions-')
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 6 and {x["charge_point_id"] for x in rows} == {"'=1+2", "CP-B"}
    assert all(x["id_tag"] == "'@tag" and x["started_at"].endswith("+08:00") for x in rows)
    r = await api.get("/dashboard/export/sessions.csv", params={"charger": "CP-B", "status": "closed"})
    assert len(list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))) == 3
    r = await api.get("/dashboard/export/faults.csv", params={"status": "open"})
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [(x["charge_point_id"], x["error_code"], x["status"]) for x in rows] == [("'=1+2", "GroundFailure", "open")]
    # a bad filter is an error status, not a cut-off file
    r = await api.get("/dashboard/export/sessions.csv", params={"charger": "a\x00b"})
    assert r.status_code == 422
    assert (await api.get("/dashboard/export/sessions.csv", params={"since": "yesterday"})).status_code == 422
    # the pool got its connections back
    assert await api.pool.fetchval("SELECT 1") == 1


async def test_operations_view_is_per_county_and_month(api: ApiEnv):
    await _station(api, "ST-1", "a station")
    await api.pool.execute("""INSERT INTO piles (pile_id, station_id, power_kw, current_type, commissioned_on)
                              VALUES ('P-1', 'ST-1', 60, 'DC', '2024-01-01')""")
    r = (await api.get("/dashboard/operations", params={"months": 3, "end": "2025-11"}, role="bureau")).json()
    assert (r["first"], r["last"], r["months"]) == ("2025-09", "2025-11", ["2025-09", "2025-10", "2025-11"])
    codes = {c["code"] for c in r["counties"]}
    assert {"140300", "140302", "gaoxin"} <= codes
    assert {(x["county"], x["month"]) for x in r["rows"] if x["county"] == "140300"} == {
        ("140300", m) for m in r["months"]}
    city = [x for x in r["rows"] if x["county"] == "140300"]
    assert all(x["piles_in_service"] == 1 and x["county_name"] == "阳泉市" for x in city)
    json.dumps(r)  # JSON-able
    empty = (await api.get("/dashboard/operations", params={"months": 1, "end": "2020-01"}, role="bureau")).json()
    assert empty["months"] == ["2020-01"]
