"""Benchmark: our CSMS (durable persistence on) against the reference central system.

Starts PostgreSQL-backed ``csms serve`` and ``bench/reference_csms.py`` (the
``ocpp`` library's README server: default validation, no persistence), drives
the same load against each from separate processes (``bench/load.py``), and
prints msgs/s, p50/p99 round-trip latency, server RSS and the ratios.

Phases:
1. throughput — 200 connections sending MeterValues back to back;
2. rate — 200 connections at 1,000 msgs/s in total (latency under a fixed load);
3. idle — 5,000 connected, idle chargers (server RSS).

Usage: ``python bench/run.py [--ocpp 1.6|2.0.1] [--duration 10] [--idle 5000] [--quick]``.
``--compare-versions 1.6,2.0.1`` instead measures saturated throughput per OCPP version on one
server, in alternating rounds, and prints each version's ratio to the first.
Every load phase also prints CPU microseconds per message: server, database, load generator.
The database is ``CSMS_BENCH_DATABASE_URL``, else PostgreSQL on 127.0.0.1:5432, else the embedded server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from csms import db  # noqa: E402

PY = sys.executable
CSMS = str(Path(PY).parent / "csms")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on {port} did not start")


def server_url() -> tuple[str, object | None]:
    url = os.environ.get("CSMS_BENCH_DATABASE_URL")
    if url:
        return url, None
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return "postgresql://postgres@127.0.0.1:5432/postgres", None
    except OSError:
        from csms.embedded_pg import EmbeddedPostgres

        d = Path(tempfile.mkdtemp(prefix="csms-bench-", dir="/tmp"))
        d.chmod(0o755)
        server = EmbeddedPostgres(d / "pg")
        return server.start(), server


async def create_db(admin_url: str, chargers: int) -> str:
    name = f"csms_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    await db.upgrade(url)
    conn = await asyncpg.connect(url)
    await conn.copy_records_to_table("charge_points", records=[(f"B{i:05d}",) for i in range(chargers)],
                                     columns=["id"])
    await conn.execute("INSERT INTO id_tags (id_tag, max_active_transactions) VALUES ('BENCH', 1000000)")
    await conn.close()
    return url


async def drop_db(admin_url: str, url: str) -> None:
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    await admin.close()


def postgres_cpu_s() -> float | None:
    """CPU seconds used so far by this machine's PostgreSQL processes (None if there are none)."""
    total, found = 0.0, False
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if proc.info["name"] in ("postgres", "postmaster") and proc.info["cpu_times"] is not None:
            total += proc.info["cpu_times"].user + proc.info["cpu_times"].system
            found = True
    return total if found else None


def process_cpu_s(pid: int | None) -> float | None:
    if pid is None:
        return None
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def run_load(url: str, mode: str, connections: int, processes: int, duration: float, version: str,
             interval: float = 0.2, first: int = 0, server_pid: int | None = None) -> dict:
    """Drive *connections* chargers for *duration* seconds; latency, throughput and CPU per message.

    CPU is counted over the measured phase only: the server process (*server_pid*), all local
    PostgreSQL processes (the database a durable server writes to) and the load processes.
    """
    per = connections // processes
    procs = [subprocess.Popen([PY, str(ROOT / "bench" / "load.py"), "--url", url, "--first", str(first + i * per),
                               "--count", str(per), "--mode", mode, "--duration", str(duration),
                               "--interval", str(interval), "--ocpp", version],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for i in range(processes)]
    ready = sum(json.loads(p.stdout.readline())["ready"] for p in procs)
    server0, db0 = process_cpu_s(server_pid), postgres_cpu_s()
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [json.loads(p.stdout.readline()) for p in procs]
    server1, db1 = process_cpu_s(server_pid), postgres_cpu_s()
    for p in procs:
        p.wait(timeout=60)
    latencies = sorted(x for r in results for x in r["latencies"])
    count = len(latencies)
    elapsed = max(r["elapsed"] for r in results)
    errors = sum(r["error_count"] for r in results)
    q = statistics.quantiles(latencies, n=100) if count > 100 else [float("nan")] * 99
    per_msg = 1e6 / count if count else float("nan")
    cpu = {"load_us": sum(r["cpu_s"] for r in results) * per_msg}
    if server0 is not None and server1 is not None:
        cpu["server_us"] = (server1 - server0) * per_msg
    if db0 is not None and db1 is not None:
        cpu["database_us"] = (db1 - db0) * per_msg
    return {"ready": ready, "count": count, "msgs_per_s": count / elapsed if elapsed else 0.0,
            "p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "errors": errors, "cpu_per_msg": cpu,
            "error_sample": [e for r in results for e in r["errors"]][:3]}


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def idle_rss(url: str, pid: int, connections: int, version: str) -> dict:
    processes = max(1, connections // 1000)
    per = connections // processes
    procs = [subprocess.Popen([PY, str(ROOT / "bench" / "load.py"), "--url", url, "--first", str(i * per),
                               "--count", str(per), "--mode", "idle", "--duration", "3", "--ocpp", version],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for i in range(processes)]
    ready = sum(json.loads(p.stdout.readline())["ready"] for p in procs)
    time.sleep(1.0)
    rss = rss_mb(pid)
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        p.stdout.readline()
        p.wait(timeout=60)
    return {"connected": ready, "rss_mb": rss}


def fmt(r: dict) -> str:
    return f"{r['msgs_per_s']:8.0f} msgs/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:7.1f} ms  errors {r['errors']}"


def fmt_cpu(r: dict) -> str:
    c = r["cpu_per_msg"]
    parts = [f"{name} {c[key]:5.1f}" for name, key in (("server", "server_us"), ("database", "database_us"),
                                                        ("load", "load_us")) if key in c]
    return "CPU us/msg: " + ", ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ocpp", default="1.6", choices=["1.6", "2.0.1", "2.1"], help="version our CSMS is driven with")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--rate", type=float, default=1000.0, help="msgs/s in the rate phase")
    ap.add_argument("--idle", type=int, default=5000, help="idle chargers in the RSS phase")
    ap.add_argument("--processes", type=int, default=2, help="load processes")
    ap.add_argument("--compare-versions", metavar="V,V,...",
                    help="instead of the phases: saturated throughput of our CSMS for each of these versions, "
                         "in alternating rounds, as ratios to the first (e.g. 1.6,2.0.1,2.1)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per version with --compare-versions")
    ap.add_argument("--quick", action="store_true", help="short smoke run")
    args = ap.parse_args()
    if args.quick:
        args.duration, args.connections, args.idle = 3.0, 50, 500
    versions = args.compare_versions.split(",") if args.compare_versions else None
    if versions and not set(versions) <= {"1.6", "2.0.1", "2.1"}:
        ap.error(f"--compare-versions: unknown version in {args.compare_versions!r}")

    admin_url, embedded = server_url()
    db_url = asyncio.run(create_db(admin_url, max(args.idle, args.connections)))
    ours_port, ref_port, api_port = free_port(), free_port(), free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("CSMS_")},
           "CSMS_DATABASE_URL": db_url, "CSMS_OCPP_PORT": str(ours_port), "CSMS_API_PORT": str(api_port),
           "CSMS_LOG_LEVEL": "WARNING", "CSMS_OCPP_HOST": "127.0.0.1", "CSMS_API_HOST": "127.0.0.1"}
    ours = subprocess.Popen([CSMS, "serve"], env=env)
    ref = None if versions else subprocess.Popen([PY, str(ROOT / "bench" / "reference_csms.py"), str(ref_port)])
    try:
        wait_port(ours_port)
        ours_url = f"ws://127.0.0.1:{ours_port}/ocpp"
        if versions:
            results = compare_versions(args, versions, ours_url, ours.pid)
            name = "versions-" + "-".join(versions)
        else:
            assert ref is not None
            wait_port(ref_port)
            results = phases(args, ours_url, ours.pid, f"ws://127.0.0.1:{ref_port}/ocpp", ref.pid)
            results["stored_meter_values"] = stored = asyncio.run(_count(db_url))
            print(f"meter values stored by csms: {stored}")
            name = args.ocpp
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / f"bench-{name}-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=1))
    finally:
        for p in (ours, ref):
            if p is None:
                continue
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        asyncio.run(drop_db(admin_url, db_url))
        if embedded is not None:
            embedded.stop()


def phases(args, ours_url: str, ours_pid: int, ref_url: str, ref_pid: int) -> dict:
    """Throughput, rate and idle phases, each against the reference and then against our CSMS."""
    results: dict = {"ocpp": args.ocpp, "duration_s": args.duration, "connections": args.connections}
    interval = args.connections / args.rate
    print(f"== throughput: {args.connections} connections, MeterValues back to back, {args.duration:g} s")
    results["ref_throughput"] = run_load(ref_url, "throughput", args.connections, args.processes,
                                         args.duration, "1.6", server_pid=ref_pid)
    print(f"reference (ocpp README, 1.6, no persistence): {fmt(results['ref_throughput'])}")
    results["throughput"] = run_load(ours_url, "throughput", args.connections, args.processes,
                                     args.duration, args.ocpp, server_pid=ours_pid)
    print(f"csms ({args.ocpp}, durable group commit):         {fmt(results['throughput'])}")
    ratio = results["throughput"]["msgs_per_s"] / results["ref_throughput"]["msgs_per_s"]
    results["throughput_ratio"] = ratio
    print(f"ratio csms/reference: {ratio:.2f}x")
    print(f"reference {fmt_cpu(results['ref_throughput'])}")
    print(f"csms      {fmt_cpu(results['throughput'])}")

    print(f"== rate: {args.rate:g} msgs/s over {args.connections} connections, {args.duration:g} s")
    results["ref_rate"] = run_load(ref_url, "rate", args.connections, args.processes, args.duration, "1.6",
                                   interval, first=0)
    print(f"reference: {fmt(results['ref_rate'])}")
    results["rate"] = run_load(ours_url, "rate", args.connections, args.processes, args.duration, args.ocpp,
                               interval, first=0)
    print(f"csms:      {fmt(results['rate'])}")

    print(f"== idle: {args.idle} connected chargers")
    results["ref_idle"] = idle_rss(ref_url, ref_pid, args.idle, "1.6")
    print(f"reference: {results['ref_idle']['connected']} connected, RSS {results['ref_idle']['rss_mb']:.0f} MB")
    results["idle"] = idle_rss(ours_url, ours_pid, args.idle, args.ocpp)
    print(f"csms:      {results['idle']['connected']} connected, RSS {results['idle']['rss_mb']:.0f} MB")
    return results


def compare_versions(args, versions: list[str], ours_url: str, ours_pid: int) -> dict:
    """Saturated throughput of one server for each version, rounds alternating, ratios to the first.

    The unit of work is what a charger sends while charging: MeterValues in 1.6,
    TransactionEvent(Updated) with the same sample in 2.x. Alternating rounds on one server
    keep a noisy machine from favouring whichever version happens to run in a quiet moment;
    the median of each version's rounds is compared.
    """
    print(f"== versions: {args.connections} connections, back to back, {args.duration:g} s x {args.rounds} rounds")
    runs: dict[str, list[dict]] = {v: [] for v in versions}
    for n in range(args.rounds):
        for v in versions:
            r = run_load(ours_url, "throughput", args.connections, args.processes, args.duration, v,
                         server_pid=ours_pid)
            runs[v].append(r)
            print(f"round {n + 1} csms {v:5}: {fmt(r)}  {fmt_cpu(r)}")
    base = statistics.median(r["msgs_per_s"] for r in runs[versions[0]])
    summary = {}
    for v in versions:
        med = statistics.median(r["msgs_per_s"] for r in runs[v])
        server = statistics.median(r["cpu_per_msg"].get("server_us", float("nan")) for r in runs[v])
        summary[v] = {"median_msgs_per_s": med, "ratio": med / base, "median_server_cpu_us": server}
        print(f"median {v:5}: {med:8.0f} msgs/s  ratio to {versions[0]}: {med / base:.2f}  "
              f"server CPU {server:.1f} us/msg")
    return {"versions": versions, "duration_s": args.duration, "connections": args.connections,
            "rounds": runs, "summary": summary}


async def _count(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("SELECT count(*) FROM meter_values")
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
