"""The web dashboard in a real browser: headless Chromium driven by Playwright for Python, against
a real CSMS (API + OCPP gateway) on a small `csms demo seed` database.

Signs in as each role, watches the overview update when a simulated charger changes status,
opens the map and a station, sends a command and sees the charger's answer, checks that the
targets page shows exactly the targets report's figures, downloads an XLSX and a CSV, checks
that hostile names are shown as text, and that every page paints within a second. Screenshots of
every page (1366×768 and 390 px wide) go to ``test-output/screenshots/``.

Chromium is the Debian package at /usr/bin/chromium (``deploy/ci-browser-prereqs.sh`` installs
it; Playwright's own browser download is never used). Without it, or without the ``playwright``
package, these tests skip and say why.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from csms.simulator import Charger16, connect

from .api_helpers import ApiEnv, start_api_env, stop_api_env
from .conftest import _with_db

CHROMIUM = Path(os.environ.get("CSMS_TEST_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage"]
SHOTS = Path(__file__).resolve().parent.parent / "test-output" / "screenshots"

try:
    from playwright.async_api import Browser, Page, async_playwright
    from playwright.async_api import expect as pw_expect
except ImportError:  # pragma: no cover - depends on the machine
    async_playwright = None

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(async_playwright is None, reason=(
        "browser tests need Playwright for Python: pip install playwright==1.65.2 "
        "(do not run `playwright install`; the system Chromium is used)")),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=(
        f"browser tests need Chromium at {CHROMIUM}: apt-get install chromium chromium-driver "
        "(deploy/ci-browser-prereqs.sh), or set CSMS_TEST_CHROMIUM")),
]

HOSTILE_NAME = '<img src=x onerror="window.__xss=1">站&amp;'
HOSTILE_VENDOR = "<script>window.__xss=2</script>厂商"
CP = "WEB-CP-1"


@dataclass
class Web:
    env: ApiEnv
    browser: Any
    station: str          # the demo station WEB-CP-1 belongs to
    station_name: str
    pages: list = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.env.base_url

    async def page(self, role: str | None = "operator", width: int = 1366) -> Page:
        """A new page; signed in as *role* (the session the sign-in form would store) unless None."""
        ctx = await self.browser.new_context(viewport={"width": width, "height": 768 if width > 600 else 844},
                                             locale="zh-CN", timezone_id="Asia/Shanghai", accept_downloads=True)
        if role:
            token = self.env.tokens[role]
            await ctx.add_init_script(
                "sessionStorage.setItem('csms.session', JSON.stringify(%s))"
                % f'{{"token": "{token}", "name": "test-{role}", "role": "{role}"}}')
        page = await ctx.new_page()
        page.errors = []  # uncaught exceptions and dialogs: there must be none
        page.on("pageerror", lambda e: page.errors.append(f"pageerror: {e}"))
        page.on("dialog", lambda d: (page.errors.append(f"dialog: {d.message}"), asyncio.ensure_future(d.dismiss())))
        self.pages.append(page)
        return page

    async def open(self, page: Page, route: str) -> None:
        await page.goto(f"{self.base}/#/{route}")


async def shoot(page: Page, name: str) -> None:
    """Full-page screenshots at 1366×768 and at a phone's 390 px width."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    await page.evaluate("window.scrollTo(0, 0)")
    await page.set_viewport_size({"width": 1366, "height": 768})
    await page.screenshot(path=str(SHOTS / f"{name}-1366.png"), full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.wait_for_timeout(150)
    await page.screenshot(path=str(SHOTS / f"{name}-390.png"), full_page=True)
    await page.set_viewport_size(size)


@pytest.fixture(scope="module")
async def web(pg_server_url: str, template_db: str):
    from reporting.demo import DemoConfig, seed_database

    name = f"csms_web_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg_server_url)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    url = _with_db(pg_server_url, name)
    env = pw = browser = None
    try:
        conn = await asyncpg.connect(url)
        try:
            await seed_database(conn, DemoConfig(seed=11, sessions=2500, chargers=25, history_days=90))
            station, station_name = await conn.fetchrow(
                """SELECT station_id, name FROM stations WHERE lon IS NOT NULL AND access = 'public'
                   AND station_id NOT IN (SELECT station_id FROM piles WHERE charge_point_id IS NOT NULL)
                   ORDER BY station_id LIMIT 1""")
            await conn.execute("INSERT INTO charge_points (id, security_profile, station_id) VALUES ($1, 0, $2)",
                               CP, station)
            await conn.execute(
                """INSERT INTO stations (station_id, name, county, lon, lat, access, site_type, address)
                   VALUES ('XSS-ST', $1, '140302', 113.575, 37.857, 'public', 'public_parking', $1)""", HOSTILE_NAME)
            await conn.execute("""INSERT INTO charge_points (id, security_profile, station_id, vendor, model)
                                  VALUES ('XSS-CP', 0, 'XSS-ST', $1, $1)""", HOSTILE_VENDOR)
        finally:
            await conn.close()
        env = await start_api_env(url)
        pw = await async_playwright().start()
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        web = Web(env, browser, station, station_name)
        yield web
        errors = [e for p in web.pages for e in getattr(p, "errors", [])]
        assert errors == [], errors
    finally:
        if browser is not None:
            await browser.close()
        if pw is not None:
            await pw.stop()
        if env is not None:
            await stop_api_env(env)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


class Charger:
    """``async with Charger(web) as cp``: WEB-CP-1 connected and booted."""

    def __init__(self, web: Web):
        self.web = web

    async def __aenter__(self) -> Charger16:
        self.ws = await connect(self.web.env.ocpp_url, CP, "1.6")
        self.cp = Charger16(CP, self.ws)
        self.task = asyncio.create_task(self.cp.start())
        await self.cp.boot()
        await self.cp.status(0, "Available")
        await self.cp.status(1, "Available")
        return self.cp

    async def __aexit__(self, *exc: Any) -> None:
        self.task.cancel()
        await self.ws.close()
        # wait until the CSMS has recorded the disconnection: a reconnection racing it could be
        # recorded first and then cleared (see the report of issue 7)
        pool = self.web.env.pool
        for _ in range(100):
            if await pool.fetchval("SELECT lease_expires_at IS NULL FROM charge_points WHERE id=$1", CP):
                break
            await asyncio.sleep(0.05)


async def text_of(page: Page, selector: str) -> str:
    return (await page.locator(selector).first.text_content() or "").strip()


# ----------------------------------------------------------------------------- sign-in and roles
async def test_sign_in_as_each_role(web: Web):
    page = await web.page(role=None)
    await web.open(page, "overview")
    await page.wait_for_url(re.compile(r"#/signin$"))
    await pw_expect(page.locator("label[for=token]")).to_have_text("API 令牌")
    await page.fill("#token", "csms_not-a-real-token")
    await page.click("form.signin button[type=submit]")
    await pw_expect(page.locator("form.signin .error")).to_contain_text("令牌无效")
    await shoot(page, "signin")
    expected = {"admin": ["overview", "map", "sessions", "faults", "targets", "operations"],
                "operator": ["overview", "map", "sessions", "faults", "targets", "operations"],
                "bureau": ["targets", "operations"]}
    for role, pages in expected.items():
        await page.fill("#token", web.env.tokens[role])
        await page.click("form.signin button[type=submit]")
        home = "targets" if role == "bureau" else "overview"
        await page.wait_for_url(re.compile(f"#/{home}$"))
        assert await page.locator("#nav a").evaluate_all("as => as.map(a => a.dataset.page)") == pages
        await pw_expect(page.locator("#who")).to_contain_text(f"test-{role}")
        if role == "bureau":  # the operator pages are not reachable, even by URL
            await web.open(page, "charger/" + CP)
            await page.wait_for_url(re.compile("#/targets$"))
            await pw_expect(page.locator("#live")).to_have_text("")  # no event stream for the bureau
        await page.click("#signout")
        await page.wait_for_url(re.compile(r"#/signin$"))
    assert await page.evaluate("sessionStorage.length") == 0


# ----------------------------------------------------------------------------- overview: live
async def test_overview_updates_live_without_a_reload(web: Web):
    page = await web.page("operator")
    await web.open(page, "overview")
    online = page.locator("[data-key=chargers-online]")
    await pw_expect(online).to_have_text("0")
    await pw_expect(page.locator("#live")).to_have_text("实时")
    await page.evaluate("window.__sameDocument = true")
    async with Charger(web) as cp:
        await pw_expect(online).to_have_text("1")
        await pw_expect(page.locator("[data-key=available]")).to_have_text("1")
        await cp.status(1, "Charging")
        await pw_expect(page.locator("[data-key=connectors-charging]")).to_have_text("1")
        await pw_expect(page.locator(".events li", has_text=CP).first).to_be_visible()
        await pw_expect(page.locator(".events .ev-status").first).to_contain_text("充电中")
        await cp.status(1, "Faulted", "GroundFailure")
        await pw_expect(page.locator("[data-key=faulted]")).to_have_text("1")
        assert await page.evaluate("window.__sameDocument") is True  # updated in place, never reloaded
        await shoot(page, "overview")
        await cp.status(1, "Available")
    await pw_expect(online).to_have_text("0")


# ----------------------------------------------------------------------------- map
async def test_map_shows_counties_and_stations_and_opens_a_station(web: Web):
    data = (await web.env.get("/dashboard/map")).json()
    async with Charger(web):
        page = await web.page("operator")
        await web.open(page, "map")
        await pw_expect(page.locator("svg.map path.county")).to_have_count(5)
        await pw_expect(page.locator("svg.map text.county-label", has_text="盂县")).to_have_count(1)
        await pw_expect(page.locator("svg.map circle.station")).to_have_count(len(data["stations"]))
        dot = page.locator(f'circle.station[data-station="{web.station}"]')
        await pw_expect(dot).to_have_attribute("data-status", "available")
        await dot.focus()
        await page.keyboard.press("Enter")  # keyboard-usable
        panel = page.locator("aside.station-panel")
        await pw_expect(panel.locator("h2")).to_have_text(web.station_name)
        row = panel.locator("tr", has=page.locator(f'a[href="#/charger/{CP}"]'))
        await pw_expect(row.locator("[data-status=Available]")).to_have_count(1)
        # the legend filters
        await page.uncheck("#lg-none")
        await pw_expect(page.locator("circle.station.st-none").first).to_be_hidden()
        await page.check("#lg-none")
        await page.click("button[aria-label=放大]")
        await shoot(page, "map")
        # a hostile station name is shown as text, never run
        await page.click("button:has-text('复位')")
        await page.locator('circle.station[data-station="XSS-ST"]').dispatch_event("click")
        await pw_expect(panel.locator("h2")).to_have_text(HOSTILE_NAME)
        assert await page.locator("img").count() == 0
        assert await page.evaluate("window.__xss") is None
        await panel.locator("a", has_text="XSS-CP").click()
        await page.wait_for_url(re.compile("#/charger/XSS-CP$"))
        await pw_expect(page.locator("dl.pairs dd", has_text=HOSTILE_VENDOR).first).to_be_visible()
        assert await page.evaluate("window.__xss") is None and await page.locator("main script").count() == 0


# ----------------------------------------------------------------------------- charger and commands
async def test_charger_page_sends_a_command_and_shows_the_answer(web: Web):
    async with Charger(web) as cp:
        page = await web.page("admin")
        await web.open(page, "charger/" + CP)
        await pw_expect(page.locator("#charger-online .chip")).to_have_text("在线")
        await pw_expect(page.locator("dl.pairs dd", has_text="CSMS-Sim")).to_have_count(1)
        await page.select_option("#cmd-name", "reset")
        await page.select_option("#cmd-f-type", "hard")
        await page.click("#cmd-send")
        await pw_expect(page.locator("#cmd-result .answer")).to_have_text("Accepted")
        assert ("Reset", {"type": "Hard"}) in cp.received
        await pw_expect(page.locator("section", has_text="命令记录").locator("tbody tr").first).to_contain_text("reset")
        # a parametrised command through the keyboard
        await page.select_option("#cmd-name", "unlock-connector")
        await page.fill("#cmd-f-connector_id", "1")
        await page.press("#cmd-f-connector_id", "Enter")
        await pw_expect(page.locator("#cmd-result .answer")).to_have_text("Unlocked")
        # connectors follow the charger live
        await cp.status(1, "Faulted", "HighTemperature")
        await pw_expect(page.locator("tr[data-connector='1'] [data-status]")).to_have_attribute("data-status", "Faulted")
        await pw_expect(page.locator("tr[data-connector='1']")).to_contain_text("HighTemperature")
        await cp.status(1, "Available")
        await pw_expect(page.locator("tr[data-connector='1'] [data-status]")).to_have_attribute("data-status", "Available")
        await shoot(page, "charger")
    # offline: the API's answer (409) is shown, not a crash
    await page.reload()
    await pw_expect(page.locator("#charger-online .chip")).to_have_text("离线")
    await page.select_option("#cmd-name", "clear-cache")
    await page.click("#cmd-send")
    await pw_expect(page.locator("#cmd-result .answer")).to_have_attribute("data-outcome", "offline")


# ----------------------------------------------------------------------------- targets = report JSON
def _fmt_int(v: float) -> str:
    return f"{round(v):,}"


async def test_targets_page_shows_the_targets_report_figures(web: Web):
    as_of, year = "2025-06-30", 2025  # mid-year: projections, so at-risk targets exist
    report = (await web.env.get("/reports/targets", role="bureau", params={"as_of": as_of})).json()
    coverage = (await web.env.get("/reports/coverage", role="bureau", params={"as_of": as_of})).json()
    distance = (await web.env.get("/reports/distance", role="bureau", params={"as_of": as_of})).json()
    page = await web.page("bureau")
    await web.open(page, f"targets?as_of={as_of}&year={year}")
    rows = [r for r in report["counties"] if r["year"] == year]
    await pw_expect(page.locator("#new-piles tbody tr")).to_have_count(len(rows))
    await pw_expect(page.locator("#plan-line")).to_contain_text("2025年6月30日")
    for r in rows:
        sel = f'#new-piles tr[data-county="{r["county"]}"][data-year="{year}"]'
        tr = page.locator(sel)
        await pw_expect(tr.locator("th")).to_have_text(r["county_name"])
        for fld in ("new_public_piles", "planned_new_public_piles"):
            cell = tr.locator(f'[data-field="{fld}"]')
            assert float(await cell.get_attribute("data-value")) == r[fld]
            assert (await cell.text_content()) == _fmt_int(r[fld])
        status = next(t["status"] for t in r["targets"] if t["metric"] == "new_public_piles")
        await pw_expect(tr.locator("[data-status]")).to_have_attribute("data-status", status)
        tr = page.locator(f'#vpp tr[data-county="{r["county"]}"]')
        cell = tr.locator('[data-field="vehicles_per_public_pile"]')
        assert float(await cell.get_attribute("data-value")) == pytest.approx(r["vehicles_per_public_pile"])
        assert (await cell.text_content()) == f'{r["vehicles_per_public_pile"]:.2f}'
        assert (await tr.locator('[data-field="public_piles"]').text_content()) == _fmt_int(r["public_piles"])
        assert (await tr.locator('[data-field="ev_count"]').text_content()) == _fmt_int(r["ev_count"])
        assert (await tr.locator('[data-field="target_vehicles_per_pile"]').text_content()) == \
            f'≤ {r["target_vehicles_per_pile"]:.1f}'
    # the status counts and every target needing attention, at-risk ones highlighted
    year_targets = [t for t in report["targets"] if t["year"] == year]
    for status in {t["status"] for t in year_targets}:
        n = sum(t["status"] == status for t in year_targets)
        await pw_expect(page.locator(f'.status-counts li[data-status="{status}"] strong')).to_have_text(str(n))
    attention = {t["target_id"] for t in year_targets if t["status"] in ("not_met", "at_risk")}
    assert any(t["status"] == "at_risk" for t in year_targets)
    shown = await page.locator("#attention tbody tr").evaluate_all("rs => rs.map(r => r.dataset.target)")
    assert set(shown) == attention
    assert await page.locator("#attention tbody tr.at_risk").count() == sum(
        t["status"] == "at_risk" for t in year_targets)
    # coverage and distance of the city
    city = report["plan"]["city_code"]
    await pw_expect(page.locator("#coverage [role=progressbar]").first).to_be_visible()
    for kind in ("township", "village"):
        s = next(x for x in coverage["summary"] if x["county"] == city and x["kind"] == kind)
        label = {"township": "乡镇（街道）", "village": "行政村"}[kind]
        bar = page.locator("#coverage .progress-row", has_text=label).first.locator("[role=progressbar]")
        assert await bar.get_attribute("aria-valuenow") == str(round(s["share"] * 100))
        await pw_expect(bar).to_have_attribute("aria-valuetext", re.compile(f"^{s['covered']:,} / {s['places']:,}"))
    for d in (x for x in distance["rows"] if x["county"] == city):
        cell = page.locator(f'#distance tr[data-place="{d["place"]}"] td[data-value]')
        assert float(await cell.get_attribute("data-value")) == pytest.approx(d["max_km"])
    worst = next(x for x in distance["rows"] if x["county"] == city and x["place"] == "village")["worst"]
    await pw_expect(page.locator("#worst-places li")).to_have_count(len(worst))
    await pw_expect(page.locator("#worst-places li").first).to_contain_text(worst[0]["name"])
    await shoot(page, "targets")
    # the as-of date picker
    await page.fill("#as-of", "2024-12-31")
    await page.click("form.inline button[type=submit]")
    await page.wait_for_url(re.compile(r"as_of=2024-12-31"))
    await pw_expect(page.locator("#plan-line")).to_contain_text("2024年12月31日")


async def test_reports_download_as_xlsx_and_csv(web: Web):
    import openpyxl

    page = await web.page("bureau")
    await web.open(page, "targets?as_of=2025-12-31")
    await pw_expect(page.locator("#new-piles tbody tr").first).to_be_visible()
    async with page.expect_download() as info:
        await page.click("#dl-targets-xlsx")
    download = await info.value
    assert download.suggested_filename == "targets-2025-12-31.xlsx"
    path = Path(await download.path())
    wb = openpyxl.load_workbook(io.BytesIO(path.read_bytes()), read_only=True)
    assert "附件1 新增公共充电桩" in wb.sheetnames and "全部指标 targets" in wb.sheetnames
    async with page.expect_download() as info:
        await page.click("#dl-coverage-csv")
    download = await info.value
    assert download.suggested_filename == "coverage-2025-12-31.csv"
    assert Path(await download.path()).read_bytes().startswith("\ufeffcounty,".encode())
    await pw_expect(page.locator("#download-status")).to_contain_text("coverage-2025-12-31.csv")


# ----------------------------------------------------------------------------- tables
async def test_sessions_and_faults_tables_paginate_filter_and_export(web: Web):
    total = (await web.env.get("/sessions", params={"limit": 1})).json()["total"]
    page = await web.page("operator")
    await web.open(page, "sessions")
    rng = page.locator(".pager .range").first
    await pw_expect(rng).to_have_text(f"第 1–25 条，共 {total:,} 条")
    await pw_expect(page.locator("table.data tbody tr")).to_have_count(25)
    await page.locator(".pager button", has_text="下一页").first.click()
    await page.wait_for_url(re.compile(r"offset=25"))
    await pw_expect(rng).to_have_text(f"第 26–50 条，共 {total:,} 条")
    await shoot(page, "sessions")
    one = (await web.env.get("/sessions", params={"charger": "DEMO-CP-0001", "limit": 1})).json()["total"]
    await page.fill("#flt-charger", "DEMO-CP-0001")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_url(re.compile(r"charger=DEMO-CP-0001"))
    await pw_expect(rng).to_have_text(f"第 1–{min(25, one)} 条，共 {one:,} 条")
    async with page.expect_download() as info:
        await page.click("#export-csv")
    data = Path(await (await info.value).path()).read_text(encoding="utf-8-sig").splitlines()
    assert len(data) == 1 + one and data[0].startswith("id,charge_point_id,")
    # faults: repaired ones
    n = (await web.env.get("/faults", params={"status": "closed", "limit": 1})).json()["total"]
    assert n > 0
    await web.open(page, "faults?status=closed")
    await pw_expect(page.locator("#flt-status")).to_have_value("closed")
    await pw_expect(page.locator(".pager .range").first).to_contain_text(f"共 {n:,} 条")
    await shoot(page, "faults")


async def test_operations_page_and_english(web: Web):
    page = await web.page("bureau")
    await web.open(page, "operations?months=3")
    await pw_expect(page.locator("#ops-table tbody tr").first).to_be_visible()
    assert await page.locator("svg.chart").count() == 3
    ops = (await web.env.get("/dashboard/operations", role="bureau", params={"months": 3})).json()
    await pw_expect(page.locator("#ops-table tbody tr")).to_have_count(len(ops["rows"]))
    await shoot(page, "operations")
    await page.click("#lang")
    await pw_expect(page.locator("#nav a[data-page=targets]")).to_have_text("Targets")
    assert await page.evaluate("document.documentElement.lang") == "en"
    await pw_expect(page.locator("main h1")).to_have_text("Operations")
    await page.click("#lang")
    await pw_expect(page.locator("main h1")).to_have_text("运营分析")


# ----------------------------------------------------------------------------- speed
async def test_every_page_paints_within_a_second(web: Web):
    checks = {"overview": "[data-key=chargers-online]", "map": "svg.map circle.station",
              "sessions": "table.data tbody tr", "faults": "table.data tbody tr",
              "charger/DEMO-CP-0001": "dl.pairs dd", "targets": "#new-piles tbody tr",
              "operations": "#ops-table tbody tr"}
    timings = {}
    for route, ready in checks.items():
        page = await web.page("admin")
        started = time.perf_counter()
        await web.open(page, route)
        await page.locator(ready).first.wait_for(timeout=15000)
        loaded = time.perf_counter() - started
        fcp = await page.evaluate(
            "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null")
        timings[route] = (fcp, round(loaded, 2))
        assert fcp is not None and fcp < 1000, (route, fcp)
        await page.context.close()
    print("first paint (ms) and data shown (s):", timings)
