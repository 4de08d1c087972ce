"""Benchmark: the targets report over 6,000+ piles and 10 million sessions (issue 5: < 2 s).

Builds a bench database (default ``csms_bench_reports`` on the PostgreSQL of
``CSMS_BENCH_DATABASE_URL`` or 127.0.0.1:5432): the demo registry (``csms demo seed`` generator:
~7,000 piles, the real townships and villages), 1,000 of its piles connected over OCPP, then
``--sessions`` sessions generated server-side with generate_series (evenly over 2023-01 → today,
non-overlapping per charger). Then times, end to end from the database to the rendered bytes:

* the targets report (JSON and XLSX) as of today;
* the operations report of the previous month (per-pile aggregates in SQL over that month);
* the monthly XLSX workbook.

Prints one line per figure (median of ``--runs``, and the first run) and writes
``bench/results/reports-<time>.json``. ``--reuse`` keeps a bench database that already has the
sessions. Usage: ``.venv/bin/python bench/report_targets.py [--sessions N] [--runs N] [--reuse]``
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from csms import db  # noqa: E402
from reporting.demo import DemoConfig, seed_database  # noqa: E402
from reporting.reports import previous_month, produce  # noqa: E402


def _with_db(url: str, name: str) -> str:
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


SESSIONS_SQL = """
INSERT INTO sessions (charge_point_id, transaction_id, ocpp_version, connector_id, id_tag, id_tag_status,
                      started_at, stopped_at, meter_start_wh, meter_stop_wh, energy_wh, stop_reason)
SELECT cp.id, 'B' || g, '1.6', 1, 'BENCH-TAG-' || (g % 5000), 'Accepted',
       $3::timestamptz + ((g / $4) * $5 + (g % 97) * 60) * interval '1 second',
       $3::timestamptz + ((g / $4) * $5 + (g % 97) * 60 + 1200 + (g * 7919 % 4200)) * interval '1 second',
       (g / $4) * 30000.0, (g / $4) * 30000.0 + 5000 + (g * 104729 % 25000),
       5000 + (g * 104729 % 25000), 'EVDisconnected'
FROM generate_series($1::bigint, $2::bigint) AS g
JOIN cps cp ON cp.n = g % $4
"""


async def build(url: str, sessions: int, chargers: int) -> dict:
    conn = await asyncpg.connect(url)
    try:
        t0 = time.perf_counter()
        today = dt.date.today()
        await seed_database(conn, DemoConfig(seed=2023, sessions=0, chargers=chargers, history_days=30, today=today),
                            force=True, progress=print)
        ncp = await conn.fetchval("SELECT count(*) FROM charge_points")
        await conn.execute("CREATE TEMP TABLE cps AS SELECT id, (row_number() OVER (ORDER BY id) - 1) AS n "
                           "FROM charge_points")
        start = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
        span = (dt.datetime.now(dt.timezone.utc) - start).total_seconds() - 86400
        per_cp = -(-sessions // ncp)
        step = int(span // per_cp)
        if step < 11_200:  # the longest offset + duration below
            raise SystemExit(f"{sessions} sessions over {ncp} chargers do not fit without overlap")
        chunk = 1_000_000
        for lo in range(0, sessions, chunk):
            hi = min(sessions, lo + chunk) - 1
            t = time.perf_counter()
            await conn.execute(SESSIONS_SQL, lo, hi, start, ncp, step)
            print(f"  sessions {hi + 1:>10,}/{sessions:,} ({time.perf_counter() - t:.1f} s)", flush=True)
        await conn.execute("VACUUM ANALYZE sessions")
        return {"chargers": ncp, "build_seconds": round(time.perf_counter() - t0, 1)}
    finally:
        await conn.close()


async def timed(url: str, runs: int, fn) -> dict:
    conn = await asyncpg.connect(url)
    try:
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            size = await fn(conn)
            times.append(time.perf_counter() - t)
        return {"first_s": round(times[0], 3), "median_s": round(statistics.median(times), 3),
                "min_s": round(min(times), 3), "bytes": size}
    finally:
        await conn.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=10_000_000)
    ap.add_argument("--chargers", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--database", default="csms_bench_reports")
    ap.add_argument("--reuse", action="store_true", help="keep the bench database if it has the sessions")
    args = ap.parse_args()
    server = os.environ.get("CSMS_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    url = _with_db(server, args.database)

    admin = await asyncpg.connect(server)
    exists = await admin.fetchval("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname=$1)", args.database)
    have = 0
    if exists and args.reuse:
        c = await asyncpg.connect(url)
        have = await c.fetchval("SELECT count(*) FROM sessions")
        await c.close()
    built = {}
    if have < args.sessions:
        await admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{args.database}"')
        await db.upgrade(url)
        print(f"building {args.database}: demo registry + {args.sessions:,} sessions …", flush=True)
        built = await build(url, args.sessions, args.chargers)
    await admin.close()

    conn = await asyncpg.connect(url)
    counts = dict(await conn.fetchrow(
        "SELECT (SELECT count(*) FROM piles) AS piles, (SELECT count(*) FROM stations) AS stations, "
        "(SELECT count(*) FROM sessions) AS sessions, (SELECT count(*) FROM charge_points) AS chargers"))
    await conn.close()
    month = previous_month()
    as_of = dt.date.today().isoformat()

    async def report(name, fmt, **kw):
        async def fn(conn):
            return len((await produce(conn, name, fmt, **kw)).content)
        return fn

    results = {}
    for label, name, fmt, kw in (
        ("targets json", "targets", "json", {"as_of": as_of}),
        ("targets xlsx", "targets", "xlsx", {"as_of": as_of}),
        (f"operations {month:%Y-%m} json", "operations", "json", {"month": f"{month:%Y-%m}"}),
        (f"monthly {month:%Y-%m} xlsx", "monthly", "xlsx", {"month": f"{month:%Y-%m}"}),
    ):
        results[label] = await timed(url, args.runs, await report(name, fmt, **kw))
        r = results[label]
        print(f"{label:28} median {r['median_s']:.3f} s  (first {r['first_s']:.3f} s, min {r['min_s']:.3f} s, "
              f"{r['bytes']:,} bytes)", flush=True)
    out = {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "counts": counts, **built,
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "results": results}
    path = ROOT / "bench" / "results" / f"reports-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"{counts['piles']:,} piles, {counts['sessions']:,} sessions: targets report "
          f"{results['targets json']['median_s']:.2f} s (JSON, median of {args.runs}); results in {path.name}")


if __name__ == "__main__":
    asyncio.run(main())
