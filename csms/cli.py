"""The ``csms`` command line.

Every command reads the same settings as the server (``CSMS_*`` environment
variables). With no ``CSMS_DATABASE_URL`` the embedded PostgreSQL in
``$CSMS_DATA_DIR`` is used (started if needed, stopped again afterwards if
this command started it).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Optional, TypeVar

import asyncpg
import orjson
import typer

from . import db
from .config import Settings, load_settings
from .configtools import describe_error
from .logs import setup_logging
from .tcec102.cli import platform_app, tariffs_app
from reporting.cli import demo_app, registry_app, report_app

app = typer.Typer(help="OCPP charging-station management system with regulator reporting.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema and maintenance.", no_args_is_help=True)
chargers_app = typer.Typer(help="Registered charge points.", no_args_is_help=True)
idtags_app = typer.Typer(help="Id tags (RFID cards, tokens) and their authorization status.", no_args_is_help=True)
sessions_app = typer.Typer(help="Charging sessions.", no_args_is_help=True)
faults_app = typer.Typer(help="Connector and charger faults.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(chargers_app, name="chargers")
app.add_typer(idtags_app, name="idtags")
app.add_typer(sessions_app, name="sessions")
app.add_typer(faults_app, name="faults")
app.add_typer(platform_app, name="platform")
app.add_typer(tariffs_app, name="tariffs")
app.add_typer(registry_app, name="registry")  # reporting (issue 5): reporting/cli.py
app.add_typer(report_app, name="report")
app.add_typer(demo_app, name="demo")

T = TypeVar("T")


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return load_settings()
    except Exception as exc:  # pydantic.ValidationError names the bad setting
        fail(f"invalid configuration: {describe_error(exc)}", 2)
        raise


@contextlib.contextmanager
def database_url() -> Iterator[str]:
    """The database URL, starting (and afterwards stopping) the embedded server when needed."""
    from .app import resolve_database_url

    settings = _settings()
    try:
        url, server = resolve_database_url(settings)
    except Exception as exc:  # noqa: BLE001 - a message the operator can act on
        fail(str(exc))
        raise
    try:
        yield url
    finally:
        if server is not None and getattr(server, "started_here", False):
            server.stop()


def run_db(fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run *fn* with a connection to an up-to-date database."""

    async def main() -> T:
        conn = await asyncpg.connect(url)
        try:
            await db.upgrade(conn)
            return await fn(conn)
        finally:
            await conn.close()

    with database_url() as url:
        try:
            return asyncio.run(main())
        except (OSError, asyncpg.PostgresConnectionError) as exc:
            fail(f"cannot reach the database: {exc}")
            raise


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def emit(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        out = sys.stdout.buffer
        for row in rows:
            out.write(orjson.dumps(row, default=_json_default) + b"\n")
        out.flush()
        return
    if not rows:
        typer.echo("(none)")
        return
    text = [[("" if r.get(c) is None else (r[c].isoformat(timespec="seconds") if isinstance(r[c], datetime)
                                          else str(r[c]))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in text)) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    for t in text:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(t, widths)).rstrip())


def _parse_dt(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    from .events import parse_time

    try:
        return parse_time(value if "T" in value or " " in value else value + "T00:00:00Z")
    except ValueError:
        fail(f"{name}: not a date or timestamp: {value!r}", 2)
        raise


# ------------------------------------------------------------------------- serve
@app.command()
def serve(
    ocpp_port: Optional[int] = typer.Option(None, help="OCPP websocket port (default 9000)."),
    api_port: Optional[int] = typer.Option(None, help="HTTP API port (default 8000)."),
    tls_port: Optional[int] = typer.Option(None, help="Also serve wss:// on this port (security profiles 2, 3)."),
    tls_cert: Optional[Path] = typer.Option(None, help="PEM server certificate (chain) for wss://."),
    tls_key: Optional[Path] = typer.Option(None, help="PEM private key of the server certificate."),
    tls_client_ca: Optional[Path] = typer.Option(None, help="PEM CA bundle of charger certificates (profile 3)."),
) -> None:
    """Run the CSMS: OCPP gateway (ws:// and optionally wss://, and HTTP API) until SIGINT/SIGTERM."""
    from .app import resolve_database_url, run_forever

    try:
        settings = load_settings(ocpp_port=ocpp_port, api_port=api_port, tls_port=tls_port, tls_cert=tls_cert,
                                 tls_key=tls_key, tls_client_ca=tls_client_ca)
    except Exception as exc:  # noqa: BLE001
        fail(f"invalid configuration: {describe_error(exc)}", 2)
        raise
    setup_logging(settings.log_level)
    try:
        url, server = resolve_database_url(settings)
    except Exception as exc:  # noqa: BLE001
        fail(str(exc))
        raise

    def started(running) -> None:  # both ports on stdout, e.g. for scripts and load balancer setup
        host = "127.0.0.1" if settings.ocpp_host in ("0.0.0.0", "::") else settings.ocpp_host
        api_host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host
        ports = ", ".join([f"ws://{host}:{p}/ocpp" for p in running.gateway.ports]
                          + [f"wss://{host}:{p}/ocpp" for p in getattr(running.gateway, "tls_ports", [])])
        typer.echo(f"node {settings.node_id}: OCPP {ports}", err=False)
        if running.api_port is not None:
            typer.echo(f"node {settings.node_id}: HTTP API http://{api_host}:{running.api_port}/api/v1 "
                       f"(docs /docs)")
        sys.stdout.flush()

    try:
        asyncio.run(run_forever(settings, url, on_started=started))
    except OSError as exc:
        fail(f"cannot start: {exc}")
    finally:
        if server is not None:
            server.stop()


# ------------------------------------------------------------------------- db
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations (idempotent; safe with several nodes)."""
    with database_url() as url:
        applied = asyncio.run(db.upgrade(url))
    typer.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")



@db_app.command("maintain")
def db_maintain(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only report what would be created, dropped, deleted."),
    as_json: bool = typer.Option(False, "--json", help="The report as one JSON object."),
) -> None:
    """Create monthly partitions ahead and enforce the retention period (CSMS_RETENTION_YEARS, default 5)."""
    from .maintenance import maintain

    settings = _settings()

    async def fn(conn: asyncpg.Connection) -> Any:
        return await maintain(conn, retention_years=settings.retention_years,
                              retention_override=settings.retention_override,
                              months_ahead=settings.partitions_ahead_months, dry_run=dry_run, wait_for_lock=True)

    report = run_db(fn)
    if as_json:
        typer.echo(orjson.dumps(report.as_dict()).decode())
    else:
        verb = "would " if dry_run else ""
        typer.echo(f"retention: {settings.retention_years} years, keeping data from {report.cutoff:%Y-%m-%d}")
        typer.echo(f"partitions {verb}create: {', '.join(report.created) or 'none'}")
        typer.echo(f"partitions {verb}drop: {', '.join(report.dropped) or 'none'}")
        rows = ", ".join(f"{t} {n}" for t, n in report.deleted.items()) or "none"
        typer.echo(f"rows {verb}delete: {rows}")
    if report.errors:
        fail("; ".join(report.errors))


@db_app.command("backup")
def db_backup(file: Path = typer.Argument(..., help="The archive to write (pg_dump custom format).")) -> None:
    """Back up the database with pg_dump (custom format); see deploy/README.md for the procedure."""
    from .backup import BackupError, backup

    settings = _settings()
    with database_url() as url:
        try:
            tool = asyncio.run(backup(url, file, bin_dir=settings.pg_bin_dir))
        except (BackupError, OSError, asyncpg.PostgresError) as exc:
            fail(str(exc))
            raise
    typer.echo(f"backup written to {file} ({file.stat().st_size} bytes, {tool.path.name} {tool.major})")


@db_app.command("restore")
def db_restore(
    file: Path = typer.Argument(..., help="An archive written by `csms db backup`."),
    clean: bool = typer.Option(False, "--clean", help="Replace the contents of a database that is not empty."),
) -> None:
    """Restore a backup into the configured database (empty, or --clean), in one transaction."""
    from .backup import BackupError, restore

    settings = _settings()
    with database_url() as url:
        try:
            asyncio.run(restore(url, file, clean=clean, bin_dir=settings.pg_bin_dir))
            applied = asyncio.run(db.upgrade(url))
        except (BackupError, OSError, asyncpg.PostgresError) as exc:
            fail(str(exc))
            raise
    typer.echo(f"restored {file}" + (f"; then applied {', '.join(applied)}" if applied else ""))


# ------------------------------------------------------------------------- config
config_app = typer.Typer(help="The effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(as_json: bool = typer.Option(False, "--json", help="One JSON object per setting.")) -> None:
    """Every setting with its effective value (environment, CSMS_CONFIG_FILE, default); secrets redacted."""
    from .configtools import effective_config

    rows = effective_config(_settings())
    if as_json:
        for row in rows:
            typer.echo(orjson.dumps(row, default=str).decode())
        return
    width = max(len(r["variable"]) for r in rows)
    for r in rows:
        value = r["value"]
        value = ("" if value is None else ",".join(value) if isinstance(value, list)
                 else str(value).lower() if isinstance(value, bool) else value)
        note = "" if r["source"] == "set" else "  (default)"
        typer.echo(f"{r['variable'].ljust(width)}  {value}{note}")


# ------------------------------------------------------------------------- chargers
@chargers_app.command("add")
def chargers_add(
    charge_point_id: str = typer.Argument(..., help="The id the charger uses in its URL."),
    password: Optional[str] = typer.Option(None, help="HTTP Basic password (security profile 1)."),
    security_profile: Optional[int] = typer.Option(None, min=0, max=3,
                                                   help="0 none, 1 Basic, 2 TLS+Basic, 3 mutual TLS."),
) -> None:
    """Register a charge point (or update its password / security profile)."""
    from .passwords import hash_password

    if not charge_point_id or len(charge_point_id) > 64 or "/" in charge_point_id:
        fail("charge point id must be 1-64 characters without '/'", 2)
    profile = security_profile if security_profile is not None else (1 if password else 0)
    hashed = hash_password(password) if password else None

    async def fn(conn: asyncpg.Connection) -> bool:
        return await conn.fetchval(
            """INSERT INTO charge_points (id, password_hash, security_profile) VALUES ($1, $2, $3)
               ON CONFLICT (id) DO UPDATE SET password_hash = COALESCE($2, charge_points.password_hash),
                   security_profile = $3, updated_at = now()
               RETURNING (xmax = 0)""", charge_point_id, hashed, profile)

    created = run_db(fn)
    typer.echo(f"{'registered' if created else 'updated'} {charge_point_id}")


@chargers_app.command("remove")
def chargers_remove(charge_point_id: str) -> None:
    """Unregister a charge point (its sessions and history are kept)."""

    async def fn(conn: asyncpg.Connection) -> str:
        return await conn.execute("DELETE FROM charge_points WHERE id=$1", charge_point_id)

    if run_db(fn) == "DELETE 0":
        fail(f"no charge point {charge_point_id!r}")
    typer.echo(f"removed {charge_point_id}")


@chargers_app.command("list")
def chargers_list(as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")) -> None:
    """Registered charge points with their live state."""

    async def fn(conn: asyncpg.Connection) -> list[dict[str, Any]]:
        rows = await conn.fetch(
            """SELECT id, ocpp_version, security_profile, vendor, model, firmware_version,
                      (lease_expires_at IS NOT NULL AND lease_expires_at > now()) AS online, node_id,
                      connected_since, last_seen, registered_at
               FROM charge_points ORDER BY id""")
        return [dict(r) for r in rows]

    emit(run_db(fn), as_json, ["id", "online", "ocpp_version", "security_profile", "vendor", "model",
                               "last_seen"])


# ------------------------------------------------------------------------- id tags
@idtags_app.command("add")
def idtags_add(
    id_tag: str = typer.Argument(..., help="The tag as the charger reports it (≤ 20 chars in 1.6)."),
    expires: Optional[str] = typer.Option(None, help="Expiry date or timestamp (ISO 8601)."),
    blocked: bool = typer.Option(False, help="Register the tag as Blocked."),
    parent: Optional[str] = typer.Option(None, help="Parent id tag (group)."),
) -> None:
    """Add an id tag, or update it."""
    if not id_tag or len(id_tag) > 36:
        fail("id tag must be 1-36 characters", 2)
    expiry = _parse_dt(expires, "--expires")

    async def fn(conn: asyncpg.Connection) -> bool:
        return await conn.fetchval(
            """INSERT INTO id_tags (id_tag, status, expiry_date, parent_id_tag) VALUES ($1,$2,$3,$4)
               ON CONFLICT (id_tag) DO UPDATE SET status=$2, expiry_date=$3, parent_id_tag=$4, updated_at=now()
               RETURNING (xmax = 0)""", id_tag, "Blocked" if blocked else "Accepted", expiry, parent)

    typer.echo(f"{'added' if run_db(fn) else 'updated'} {id_tag}")


@idtags_app.command("list")
def idtags_list(as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")) -> None:
    """Id tags and their status."""

    async def fn(conn: asyncpg.Connection) -> list[dict[str, Any]]:
        return [dict(r) for r in await conn.fetch(
            "SELECT id_tag, status, expiry_date, parent_id_tag, created_at FROM id_tags ORDER BY id_tag")]

    emit(run_db(fn), as_json, ["id_tag", "status", "expiry_date", "parent_id_tag"])


# ------------------------------------------------------------------------- sessions
SESSION_COLUMNS = ["id", "charge_point_id", "connector_id", "transaction_id", "id_tag", "started_at",
                   "stopped_at", "meter_start_wh", "meter_stop_wh", "energy_wh", "stop_reason",
                   "kwh", "elec_yuan", "service_yuan", "total_yuan"]  # cost columns: session_costs (issue 6)


@sessions_app.command("list")
def sessions_list(
    charger: Optional[str] = typer.Option(None, help="Only this charge point."),
    since: Optional[str] = typer.Option(None, help="Started at or after (ISO date/time)."),
    until: Optional[str] = typer.Option(None, help="Started before (ISO date/time)."),
    open_only: bool = typer.Option(False, "--open", help="Only sessions still running."),
    limit: int = typer.Option(100, min=1, max=100000, help="At most this many (newest first)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Charging sessions, newest first."""
    lo, hi = _parse_dt(since, "--since"), _parse_dt(until, "--until")

    async def fn(conn: asyncpg.Connection) -> list[dict[str, Any]]:
        rows = await conn.fetch(
            """SELECT id, charge_point_id, connector_id, evse_id, transaction_id, ocpp_version, id_tag,
                      id_tag_status, started_at, stopped_at, meter_start_wh, meter_stop_wh, energy_wh,
                      stop_reason, anomaly, c.total_power AS kwh, c.total_elec_money AS elec_yuan,
                      c.total_service_money AS service_yuan, c.total_money AS total_yuan, c.error AS cost_error
               FROM sessions LEFT JOIN session_costs c ON c.session_id = sessions.id
               WHERE ($1::text IS NULL OR charge_point_id = $1)
                 AND ($2::timestamptz IS NULL OR started_at >= $2)
                 AND ($3::timestamptz IS NULL OR started_at < $3)
                 AND (NOT $4 OR stopped_at IS NULL)
               ORDER BY coalesce(started_at, stopped_at) DESC, id DESC LIMIT $5""",
            charger, lo, hi, open_only, limit)
        return [dict(r) for r in rows]

    emit(run_db(fn), as_json, SESSION_COLUMNS)


# ------------------------------------------------------------------------- faults
@faults_app.command("list")
def faults_list(
    open_only: bool = typer.Option(False, "--open", help="Only faults not yet recovered."),
    charger: Optional[str] = typer.Option(None, help="Only this charge point."),
    limit: int = typer.Option(100, min=1, max=100000, help="At most this many (newest first)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Faults opened by error codes, Faulted statuses and charger problem events."""

    async def fn(conn: asyncpg.Connection) -> list[dict[str, Any]]:
        rows = await conn.fetch(
            """SELECT id, charge_point_id, connector_id, source, error_code, vendor_id, vendor_error_code,
                      info, opened_at, closed_at
               FROM faults WHERE (NOT $1 OR closed_at IS NULL) AND ($2::text IS NULL OR charge_point_id=$2)
               ORDER BY opened_at DESC, id DESC LIMIT $3""", open_only, charger, limit)
        return [dict(r) for r in rows]

    emit(run_db(fn), as_json, ["id", "charge_point_id", "connector_id", "error_code", "vendor_error_code",
                               "opened_at", "closed_at"])


# ------------------------------------------------------------------------- simulate
@app.command()
def simulate(
    url: str = typer.Option("ws://127.0.0.1:9000/ocpp", help="The CSMS's OCPP base URL."),
    chargers: int = typer.Option(1, min=1, max=10000, help="How many simulated chargers."),
    ocpp: str = typer.Option("1.6", help="OCPP version: 1.6, 2.0.1 or 2.1."),
    prefix: str = typer.Option("SIM", help="Charger ids are PREFIX-0001, PREFIX-0002, ..."),
    sessions: int = typer.Option(1, min=0, help="Sessions per charger (0 = run until interrupted)."),
    meter_interval: float = typer.Option(1.0, min=0.01, help="Seconds between MeterValues."),
    samples: int = typer.Option(5, min=1, help="MeterValues per session."),
    id_tag: str = typer.Option("SIMTAG", help="Id tag the chargers present."),
    password: Optional[str] = typer.Option(None, help="Basic-auth password of every charger."),
    ca_file: Optional[Path] = typer.Option(None, exists=True, dir_okay=False,
                                           help="wss://: CA bundle to trust (default: the system's)."),
    cert_file: Optional[Path] = typer.Option(None, exists=True, dir_okay=False,
                                             help="wss:// profile 3: the chargers' client certificate (PEM)."),
    key_file: Optional[Path] = typer.Option(None, exists=True, dir_okay=False,
                                            help="Private key of --cert-file, if not in the same file."),
    fault_rate: float = typer.Option(0.05, min=0, max=1, help="Chance of a fault after a session."),
    register: bool = typer.Option(False, help="Register the chargers and id tag in the database first."),
) -> None:
    """Run simulated chargers (built on the ocpp library) that boot, authorize, charge and report."""
    from .simulator import SimulatorConfig, run_simulation

    if ocpp not in ("1.6", "2.0.1", "2.1"):
        fail(f"--ocpp must be 1.6, 2.0.1 or 2.1, not {ocpp!r}", 2)
    tls = url.startswith("wss://")
    if not tls and (ca_file or cert_file or key_file):
        fail("--ca-file, --cert-file and --key-file are for a wss:// URL", 2)
    if key_file and not cert_file:
        fail("--key-file needs --cert-file", 2)
    ssl_context = None
    if tls:
        from .simulator import client_tls

        try:
            ssl_context = client_tls(str(ca_file) if ca_file else None, str(cert_file) if cert_file else None,
                                     str(key_file) if key_file else None)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            fail(f"cannot use the TLS files: {exc}", 2)
    ids = [f"{prefix}-{i:04d}" for i in range(1, chargers + 1)]
    if register:
        from .passwords import hash_password

        hashed = hash_password(password) if password else None
        profile = 3 if cert_file else 2 if tls and password else 1 if password else 0

        async def fn(conn: asyncpg.Connection) -> None:
            await conn.executemany(
                """INSERT INTO charge_points (id, password_hash, security_profile) VALUES ($1,$2,$3)
                   ON CONFLICT (id) DO NOTHING""", [(i, hashed, profile) for i in ids])
            await conn.execute("INSERT INTO id_tags (id_tag) VALUES ($1) ON CONFLICT DO NOTHING", id_tag)

        run_db(fn)
    setup_logging("INFO")
    config = SimulatorConfig(url=url.rstrip("/"), ids=ids, version=ocpp, sessions=sessions,
                             meter_interval=meter_interval, samples=samples, id_tag=id_tag,
                             password=password, fault_rate=fault_rate, ssl=ssl_context)
    try:
        report = asyncio.run(run_simulation(config))
    except KeyboardInterrupt:
        return
    typer.echo(orjson.dumps(report).decode())
    if report["failed_chargers"]:
        raise typer.Exit(1)


# ------------------------------------------------------------------------- tokens
tokens_app = typer.Typer(help="HTTP API bearer tokens (roles admin, operator, bureau).", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def tokens_create(
    role: str = typer.Option(..., help="admin, operator or bureau."),
    name: str = typer.Option(..., help="Who or what uses the token (recorded with every command)."),
) -> None:
    """Create a token. It is printed once, as the last line; only its hash is stored."""
    from .api.auth import ROLES, TokenExists, create_token

    if role not in ROLES:
        fail(f"--role must be one of {', '.join(ROLES)}", 2)
    if not name or len(name) > 100 or any(ord(ch) < 32 for ch in name):
        fail("--name must be 1-100 printable characters", 2)

    async def fn(conn: asyncpg.Connection) -> tuple[dict[str, Any], str]:
        try:
            return await create_token(conn, name, role, created_by="cli")
        except TokenExists:
            fail(f"an active token named {name!r} exists already (revoke it first)")
            raise

    row, token = run_db(fn)
    typer.echo(f"created token {row['id']} {row['name']!r} with role {row['role']}; "
               "store it now, it is not shown again:")
    typer.echo(token)


@tokens_app.command("list")
def tokens_list(
    include_revoked: bool = typer.Option(False, "--all", help="Include revoked tokens."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Tokens (never the tokens themselves: their first characters)."""
    from .api.auth import list_tokens

    async def fn(conn: asyncpg.Connection) -> list[dict[str, Any]]:
        rows, _ = await list_tokens(conn, include_revoked, limit=100_000)
        return rows

    emit(run_db(fn), as_json, ["id", "name", "role", "prefix", "created_at", "last_used_at", "revoked_at"])


@tokens_app.command("revoke")
def tokens_revoke(token: str = typer.Argument(..., help="The token's id or name.")) -> None:
    """Revoke a token; requests with it are refused (401) from then on, on every node."""
    from .api.auth import revoke_token

    async def fn(conn: asyncpg.Connection) -> dict[str, Any] | None:
        return await revoke_token(conn, token)

    row = run_db(fn)
    if row is None:
        fail(f"no active token {token!r}")
    typer.echo(f"revoked token {row['id']} {row['name']!r}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
