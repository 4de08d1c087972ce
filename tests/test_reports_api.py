"""The reports and registry endpoints of the HTTP API: roles, formats, the import's all-or-nothing answer."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from .api_helpers import ApiEnv, api  # noqa: F401 - fixture
from .test_reporting_db import CHENGQU, PILES, VEHICLES

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _import(api: ApiEnv, data: bytes, role: str = "admin", **params):
    return await api.client.post("/api/v1/registry/import", content=data, params=params,
                                 headers={**api.auth(role), "Content-Type": "text/csv"})


async def test_import_roles_and_all_or_nothing(api: ApiEnv):
    r = await _import(api, PILES, "bureau", filename="piles.csv")
    assert r.status_code == 403
    r = await _import(api, PILES, "operator", filename="piles.csv")
    assert r.status_code == 403
    r = await api.client.post("/api/v1/registry/import", content=PILES)
    assert r.status_code == 401
    bad = PILES + f"B9,矿区,,,{CHENGQU[0]},{CHENGQU[1]},公用,公共停车场,,否,B9-1,60,直流,2024-01-01,,\n".encode()
    r = await _import(api, bad, filename="piles.csv")
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_file" and "nothing was imported" in err["message"]
    assert [d["row"] for d in err["details"]] == [10] and err["details"][0]["column"] == "lon"
    assert await api.pool.fetchval("SELECT count(*) FROM piles") == 0
    r = await _import(api, PILES, filename="piles.csv", dry_run="true")
    assert r.status_code == 200 and r.json()["dry_run"] and not r.json()["imported"]
    assert await api.pool.fetchval("SELECT count(*) FROM piles") == 0
    r = await _import(api, PILES, filename="piles.csv")
    assert r.status_code == 200 and r.json()["counts"]["piles"]["inserted"] == 8
    r = await _import(api, PILES)  # no filename: CSV by content; kind from the header
    assert r.json()["counts"]["piles"] == {"inserted": 0, "updated": 0, "unchanged": 8}
    r = await _import(api, VEHICLES, kind="vehicles")
    assert r.status_code == 200 and r.json()["counts"]["ev_counts"]["inserted"] == 3
    r = await api.get("/registry/status", role="bureau")
    assert r.status_code == 200 and r.json()["counts"]["piles"] == 8
    assert r.json()["imports"][0]["imported_by"] == "api:test-admin"
    r = await _import(api, b"x", filename="piles.pdf")
    assert r.status_code == 415


async def test_reports_formats_and_roles(api: ApiEnv):
    assert (await _import(api, PILES, filename="piles.csv")).status_code == 200
    assert (await _import(api, VEHICLES, filename="ev.csv")).status_code == 200
    r = await api.get("/reports/targets?as_of=2024-01-01", role="bureau")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    cq = next(x for x in r.json()["counties"] if x["county"] == "140302" and x["year"] == 2023)
    assert {k: cq[k] for k in ("county", "year", "public_piles", "new_public_piles", "planned_new_public_piles",
                               "ev_count", "vehicles_per_public_pile", "target_vehicles_per_pile")} == {
        "county": "140302", "year": 2023, "public_piles": 2, "new_public_piles": 2,
        "planned_new_public_piles": 200.0, "ev_count": 14.0, "vehicles_per_public_pile": 7.0,
        "target_vehicles_per_pile": 7.0}
    assert {"metric", "value", "threshold", "status"} <= set(cq["targets"][0])
    r = await api.get("/reports/targets?as_of=2024-01-01&format=csv", role="operator")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"] and "targets-2024-01-01.csv" in r.headers[
        "content-disposition"]
    r = await api.get("/reports/targets?as_of=2024-01-01&format=xlsx", role="admin")
    assert r.headers["content-type"] == XLSX
    assert load_workbook(io.BytesIO(r.content)).sheetnames[:2] == ["附件1 新增公共充电桩", "附件2 公路"]
    for path in ("/reports/coverage?format=csv", "/reports/distance?format=xlsx", "/reports/operations?month=2024-01",
                 "/reports/operations?month=2024-01&format=csv", "/reports/monthly?month=2024-01"):
        r = await api.get(path, role="bureau")
        assert r.status_code == 200, (path, r.text)
    r = await api.get("/registry/templates/piles", role="bureau")
    assert r.status_code == 200 and r.headers["content-type"] == XLSX
    r = await api.get("/registry/templates/places?format=csv", role="bureau")
    assert r.text.lstrip("\ufeff").startswith("场所类别（kind）")
    for bad in ("/reports/targets?as_of=2024-02-30", "/reports/operations?month=2024-13",
                "/reports/coverage?format=pdf"):
        r = await api.get(bad, role="bureau")
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = await api.client.get("/api/v1/reports/targets")
    assert r.status_code == 401
