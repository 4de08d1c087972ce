"""``csms registry`` and ``csms report``, run as real processes against a real database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from openpyxl import load_workbook

from .test_cli import run
from .test_reporting_db import CHENGQU, PILES, VEHICLES


async def test_templates(tmp_path: Path):
    (c1, out1, err1), (c2, out2, err2) = await asyncio.gather(
        run(None, "registry", "template", "piles", "-o", str(tmp_path / "piles.xlsx")),
        run(None, "registry", "template", "vehicles", "-o", str(tmp_path / "vehicles.csv"), "--lang", "zh"))
    assert c1 == 0 and c2 == 0, err1 + err2
    wb = load_workbook(tmp_path / "piles.xlsx")
    assert wb.sheetnames[0] == "数据 data" and "区划 divisions" in wb.sheetnames
    assert wb.worksheets[0]["A1"].value == "充电站编号（station_id）"
    assert (tmp_path / "vehicles.csv").read_text(encoding="utf-8-sig").startswith("县（区）,年份,电动汽车保有量")
    code, _, err = await run(None, "registry", "template", "stations2", "-o", str(tmp_path / "x.xlsx"))
    assert code == 2 and "kind must be one of" in err


async def test_import_all_or_nothing_then_reports(db_url, conn, tmp_path: Path):
    bad = PILES.decode() + f"B4,城区,140302001,,{CHENGQU[0]},{CHENGQU[1]},公用,公共停车场,,否,P1,-60,直流,2024-01-01,,\n"
    (tmp_path / "mixed.csv").write_text(bad, encoding="utf-8")
    code, out, err = await run(db_url, "registry", "import", str(tmp_path / "mixed.csv"))
    assert code == 1
    assert "第10行 row 10 [pile_id]" in out and "第10行 row 10 [power_kw]" in out and "nothing imported" in out
    assert await conn.fetchval("SELECT count(*) FROM piles") == 0

    (tmp_path / "piles.csv").write_bytes(PILES)
    code, out, _ = await run(db_url, "registry", "import", str(tmp_path / "piles.csv"), "--dry-run")
    assert code == 0 and "dry run" in out and "piles: 8 新增 inserted" in out
    assert await conn.fetchval("SELECT count(*) FROM piles") == 0
    code, out, _ = await run(db_url, "registry", "import", str(tmp_path / "piles.csv"))
    assert code == 0 and "piles: 8 新增 inserted" in out
    code, out, _ = await run(db_url, "registry", "import", str(tmp_path / "piles.csv"), "--json")
    res = json.loads(out)
    assert res["imported"] and res["counts"]["piles"] == {"inserted": 0, "updated": 0, "unchanged": 8}
    (tmp_path / "ev.csv").write_bytes(VEHICLES)
    code, out, _ = await run(db_url, "registry", "import", str(tmp_path / "ev.csv"), "--kind", "vehicles")
    assert code == 0 and "ev_counts: 3 新增 inserted" in out

    xlsx, monthly = tmp_path / "t.xlsx", tmp_path / "m.xlsx"
    results = await asyncio.gather(
        run(db_url, "report", "targets", "--as-of", "2024-01-01"),
        run(db_url, "report", "coverage", "--as-of", "2024-01-01", "--format", "csv"),
        run(db_url, "report", "targets", "--as-of", "2024-01-01", "-f", "xlsx", "-o", str(xlsx)),
        run(db_url, "report", "monthly", "--month", "2024-01", "-o", str(monthly)),
        run(db_url, "report", "targets", "--as-of", "2024-13-01"),
        run(db_url, "registry", "status"),
    )
    (c, out, err) = results[0]
    assert c == 0, err
    rep = json.loads(out)
    cq = next(r for r in rep["counties"] if r["county"] == "140302" and r["year"] == 2023)
    assert (cq["public_piles"], cq["new_public_piles"], cq["ev_count"]) == (2, 2, 14)
    c, out, _ = results[1]
    assert c == 0 and out.startswith("\ufeffcounty,county_name,kind,code")
    assert results[2][0] == 0 and load_workbook(xlsx).sheetnames[0] == "附件1 新增公共充电桩"
    assert results[3][0] == 0 and "运营 2024-01" in load_workbook(monthly).sheetnames
    assert results[4][0] == 2 and "as_of must be a date" in results[4][2]
    assert results[5][0] == 0 and "piles                8" in results[5][1]


async def test_demo_seed_and_clear(db_url, conn):
    code, out, err = await run(db_url, "demo", "seed", "--sessions", "300", "--chargers", "5")
    assert code == 0, err
    assert "demo data seeded (synthetic)" in out and "sessions 300" in out
    assert await conn.fetchval("SELECT count(*) FROM stations WHERE NOT synthetic") == 0
    assert await conn.fetchval("SELECT count(*) FROM charge_points") == 5
    code, out, _ = await run(db_url, "demo", "seed", "--if-empty")
    assert code == 0 and "not seeded" in out
    code, out, _ = await run(db_url, "demo", "offer")  # not a terminal, registry not empty: nothing
    assert code == 0 and out == ""
    code, out, _ = await run(db_url, "demo", "clear")
    assert code == 0 and "stations" in out
    assert await conn.fetchval("SELECT count(*) FROM stations") == 0
    code, out, _ = await run(db_url, "demo", "offer")
    assert code == 0 and "csms demo seed" in out
