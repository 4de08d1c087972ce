"""``csms db backup FILE`` / ``csms db restore FILE``: pg_dump and pg_restore, custom format.

The client programs must match the server: pg_dump refuses servers newer than
itself, and pg_restore cannot read archives written by a newer pg_dump. So
:func:`find_tool` looks for the one whose major version equals the server's
(else the oldest newer one) in, in order: ``CSMS_PG_BIN_DIR``, ``PATH``,
``/usr/lib/postgresql/*/bin`` (Debian's packages) and the bundle of the
embedded PostgreSQL. The password of the database URL is passed through the
environment (``PGPASSWORD``), never on the command line.

A restore goes into an empty database (create it first, or pass ``clean`` to
drop and recreate the objects of an existing one) in a single transaction:
it either completes or leaves the target as it was.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

__all__ = ["BackupError", "Tool", "find_tool", "server_major", "backup", "restore", "archive_info"]

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


class BackupError(RuntimeError):
    """A backup or restore that could not be done, with a message for the operator."""


@dataclass(frozen=True)
class Tool:
    path: Path
    major: int
    version: str


def _candidate_dirs(bin_dir: Path | None) -> list[Path]:
    dirs: list[Path] = []
    if bin_dir is not None:
        dirs.append(Path(bin_dir))
        return dirs  # an explicit directory is the only place looked at
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry:
            dirs.append(Path(entry))
    dirs.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    try:
        from .embedded_pg import bundled_bin_dir

        dirs.append(bundled_bin_dir())
    except Exception:  # noqa: BLE001 - the embedded bundle is optional here
        pass
    return dirs


def _version_of(path: Path) -> Tool | None:
    try:
        out = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = _VERSION.search(out)
    if not m:
        return None
    return Tool(path, int(m.group(1)), out.strip())


def find_tool(name: str, server_major_version: int, bin_dir: Path | None = None) -> Tool:
    """The *name* program (pg_dump, pg_restore) best matching a server of *server_major_version*."""
    seen: set[Path] = set()
    tools: list[Tool] = []
    for d in _candidate_dirs(bin_dir):
        exe = d / name
        try:
            real = exe.resolve()
        except OSError:
            continue
        if real in seen or not exe.is_file() or not os.access(exe, os.X_OK):
            continue
        seen.add(real)
        tool = _version_of(exe)
        if tool is not None:
            tools.append(tool)
    exact = [t for t in tools if t.major == server_major_version]
    if exact:
        return exact[0]
    newer = sorted((t for t in tools if t.major > server_major_version), key=lambda t: t.major)
    if newer:
        return newer[0]
    found = ", ".join(f"{t.path} ({t.major})" for t in tools) or "none"
    where = f"CSMS_PG_BIN_DIR={bin_dir}" if bin_dir else "PATH, /usr/lib/postgresql/*/bin or the embedded bundle"
    raise BackupError(
        f"no {name} for PostgreSQL {server_major_version} (or newer) in {where}; found: {found}. "
        f"Install the PostgreSQL {server_major_version} client programs (Debian: postgresql-client-"
        f"{server_major_version}) or set CSMS_PG_BIN_DIR")


async def server_major(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SHOW server_version_num")) // 10000
    finally:
        await conn.close()


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    """(URL without password, environment with PGPASSWORD)."""
    parts = urlsplit(url)
    env = dict(os.environ)
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        userinfo, host = parts.netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}@{host}"
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url, env


def _run(argv: list[str], env: dict[str, str], timeout: float | None) -> None:
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BackupError(f"{Path(argv[0]).name} did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise BackupError(f"cannot run {argv[0]}: {exc}") from None
    if proc.returncode != 0:
        raise BackupError(f"{Path(argv[0]).name} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


async def backup(url: str, file: Path, *, bin_dir: Path | None = None, timeout: float | None = None) -> Tool:
    """Dump the database at *url* to *file* (custom format, compressed). Written atomically."""
    major = await server_major(url)
    tool = find_tool("pg_dump", major, bin_dir)
    file = Path(file)
    if file.parent and not file.parent.is_dir():
        raise BackupError(f"directory does not exist: {file.parent}")
    tmp = file.with_name(f".{file.name}.partial")
    clean_url, env = _split_url(url)
    try:
        _run([str(tool.path), "--format=custom", "--no-owner", "--no-privileges", f"--file={tmp}",
              f"--dbname={clean_url}"], env, timeout)
        os.replace(tmp, file)
    finally:
        tmp.unlink(missing_ok=True)
    return tool


async def _has_tables(url: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        return bool(await conn.fetchval(
            """SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                 AND n.nspname NOT LIKE 'pg_toast%'"""))
    finally:
        await conn.close()


def archive_info(file: Path, tool: Tool) -> str:
    """pg_restore's table of contents header (raises BackupError when *file* is not an archive)."""
    try:
        proc = subprocess.run([str(tool.path), "--list", str(file)], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BackupError(f"cannot read {file}: {exc}") from None
    if proc.returncode != 0:
        raise BackupError(f"{file} is not a readable pg_dump custom-format archive: {proc.stderr.strip()}")
    return proc.stdout


async def restore(url: str, file: Path, *, clean: bool = False, bin_dir: Path | None = None,
                  timeout: float | None = None) -> Tool:
    """Restore *file* into the database at *url* in one transaction.

    Refuses a database that already has tables unless *clean* (then the
    archive's objects are dropped first).
    """
    file = Path(file)
    if not file.is_file():
        raise BackupError(f"no such file: {file}")
    major = await server_major(url)
    tool = find_tool("pg_restore", major, bin_dir)
    archive_info(file, tool)
    if not clean and await _has_tables(url):
        raise BackupError("the target database is not empty; restore into a new database, or pass --clean to "
                          "replace its contents")
    clean_url, env = _split_url(url)
    argv = [str(tool.path), "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
            f"--dbname={clean_url}"]
    if clean:
        argv += ["--clean", "--if-exists"]
    _run(argv + [str(file)], env, timeout)
    return tool
