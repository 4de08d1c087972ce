"""``csms registry``, ``csms report`` and ``csms demo``: the command line of the regulator reporting.

Registered on the main ``csms`` app by :mod:`csms.cli`; database access goes through its
``run_db`` (same settings, embedded server when no URL is configured).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

registry_app = typer.Typer(help="The charging-infrastructure registry (stations, piles, places, EV counts).",
                           no_args_is_help=True)
report_app = typer.Typer(help="Reports on the plan's targets (JSON, CSV, XLSX with Chinese headers).",
                         no_args_is_help=True)
demo_app = typer.Typer(help="Synthetic demo data: a realistic Yangquan registry with OCPP history.",
                       no_args_is_help=True)

__all__ = ["registry_app", "report_app", "demo_app"]


def _cli():
    from csms import cli

    return cli


# ------------------------------------------------------------------------- registry
@registry_app.command("import")
def registry_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A CSV or XLSX file (see `registry template`)."),
    kind: Optional[str] = typer.Option(None, help="piles, vehicles or places (default: told by the header)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and count, write nothing."),
    tolerance_m: float = typer.Option(0.0, min=0, help="Accept coordinates up to this far outside the unit."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Import a registry file: all-or-nothing, upsert by id (re-importing the same file changes nothing).

    Any invalid row means nothing is imported; every problem is printed with its row number.
    """
    import orjson

    from .registry_db import import_file
    from .registry_import import KINDS
    from .reports import default_inputs

    cli = _cli()
    if kind is not None and kind not in KINDS:
        cli.fail(f"--kind must be one of {', '.join(KINDS)}", 2)
    _, geo = default_inputs()

    async def fn(conn):
        return await import_file(conn, file, geo, kind=kind, dry_run=dry_run, imported_by="cli",
                                 tolerance_m=tolerance_m)

    outcome = cli.run_db(fn)
    if as_json:
        typer.echo(orjson.dumps(outcome.as_dict()).decode())
    else:
        typer.echo(outcome.report())
    if not outcome.ok:
        raise typer.Exit(1)


@registry_app.command("template")
def registry_template(
    kind: str = typer.Argument(..., help="piles, vehicles or places."),
    output: Optional[Path] = typer.Option(None, "-o", "--output",
                                          help="File to write, .xlsx or .csv (default registry-KIND.xlsx)."),
    lang: str = typer.Option("bilingual", help="Headers: bilingual, zh or en."),
) -> None:
    """Write an empty import template (XLSX with instructions, allowed values and the division codes)."""
    from .registry_import import KINDS, write_template
    from .reports import default_inputs

    if kind not in KINDS:
        _cli().fail(f"kind must be one of {', '.join(KINDS)}", 2)
    if lang not in ("bilingual", "zh", "en"):
        _cli().fail("--lang must be bilingual, zh or en", 2)
    path = output or Path(f"registry-{kind}.xlsx")
    _, geo = default_inputs()
    try:
        write_template(kind, path, lang=lang, geography=geo)
    except ValueError as exc:
        _cli().fail(str(exc), 2)
    typer.echo(f"template written to {path}")


@registry_app.command("status")
def registry_status(as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
    """Row counts of the registry and the latest imports."""
    import orjson

    from .store import registry_counts

    async def fn(conn) -> dict[str, Any]:
        counts = await registry_counts(conn)
        imports = [dict(r) for r in await conn.fetch(
            """SELECT id, kind, filename, rows, inserted, updated, unchanged, imported_by, imported_at
               FROM registry_imports ORDER BY id DESC LIMIT 5""")]
        return {"counts": counts, "imports": imports}

    out = _cli().run_db(fn)
    if as_json:
        typer.echo(orjson.dumps(out, default=str).decode())
        return
    for k, v in out["counts"].items():
        typer.echo(f"{k:20} {v}")
    for r in out["imports"]:
        typer.echo(f"import {r['id']}: {r['imported_at']:%Y-%m-%d %H:%M} {r['kind']} {r['filename']} "
                   f"{r['rows']} rows (+{r['inserted']} ~{r['updated']} ={r['unchanged']}) by {r['imported_by']}")


# ------------------------------------------------------------------------- report
def _write(content: bytes, output: Optional[Path], default_name: str, binary: bool) -> None:
    if output is None and binary:
        output = Path(default_name)
    if output is None or str(output) == "-":
        sys.stdout.buffer.write(content)
        if not content.endswith(b"\n"):
            sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
        return
    output.write_bytes(content)
    typer.echo(f"written to {output} ({len(content)} bytes)", err=True)


def _report(name: str, as_of: Optional[str], month: Optional[str], fmt: str, output: Optional[Path]) -> None:
    from .reports import FORMATS, ReportError, produce

    cli = _cli()
    if fmt not in FORMATS:
        cli.fail(f"--format must be one of {', '.join(FORMATS)}", 2)

    async def fn(conn):
        try:
            return await produce(conn, name, fmt, as_of=as_of, month=month)
        except ReportError as exc:
            cli.fail(str(exc), 2)
            raise

    out = cli.run_db(fn)
    _write(out.content, output, out.filename, fmt == "xlsx")


_AS_OF = typer.Option(None, "--as-of", help="Evaluation date YYYY-MM-DD (default: today, Asia/Shanghai).")
_FORMAT = typer.Option("json", "--format", "-f", help="json, csv or xlsx.")
_OUTPUT = typer.Option(None, "-o", "--output", help="File to write (default: stdout; xlsx: NAME-DATE.xlsx).")


@report_app.command("targets")
def report_targets(as_of: Optional[str] = _AS_OF, fmt: str = _FORMAT, output: Optional[Path] = _OUTPUT) -> None:
    """Every target of the plan measured as of a date, per county and for the city."""
    _report("targets", as_of, None, fmt, output)


@report_app.command("coverage")
def report_coverage(as_of: Optional[str] = _AS_OF, fmt: str = _FORMAT, output: Optional[Path] = _OUTPUT) -> None:
    """Coverage of townships, villages, scenic spots and road facilities by public piles."""
    _report("coverage", as_of, None, fmt, output)


@report_app.command("distance")
def report_distance(as_of: Optional[str] = _AS_OF, fmt: str = _FORMAT, output: Optional[Path] = _OUTPUT) -> None:
    """Charging distance (max, p95, farthest places) per county and place selection."""
    _report("distance", as_of, None, fmt, output)


@report_app.command("operations")
def report_operations(
    as_of: Optional[str] = _AS_OF,
    month: Optional[str] = typer.Option(None, help="YYYY-MM (default: the month of --as-of, cut at that day)."),
    fmt: str = _FORMAT, output: Optional[Path] = _OUTPUT,
) -> None:
    """OCPP operations per county and month: sessions, energy, utilisation, availability, faults, MTTR."""
    _report("operations", as_of, month, fmt, output)


@report_app.command("monthly")
def report_monthly(
    month: Optional[str] = typer.Option(None, help="YYYY-MM (default: the previous month)."),
    output: Optional[Path] = _OUTPUT,
) -> None:
    """The bureau's monthly report (due by the 3rd): one XLSX with 附件1, 附件2, coverage, distance, operations."""
    _report("monthly", None, month, "xlsx", output)


# ------------------------------------------------------------------------- demo
@demo_app.command("seed")
def demo_seed(
    seed: int = typer.Option(2023, help="Random seed: the same seed gives the same data."),
    sessions: int = typer.Option(None, min=0, help="Charging sessions to generate (default 60000)."),
    chargers: int = typer.Option(None, min=0, help="Piles connected over OCPP (default 240)."),
    force: bool = typer.Option(False, "--force", help="Seed even though the registry holds real (non-demo) rows."),
    if_empty: bool = typer.Option(False, "--if-empty", help="Do nothing when the registry has any station."),
) -> None:
    """Fill the database with a synthetic Yangquan (marked synthetic; replaces earlier demo data)."""
    from .demo import DemoConfig, DemoError, seed_database

    cli = _cli()
    cfg = DemoConfig(seed=seed)
    if sessions is not None:
        cfg.sessions = sessions
    if chargers is not None:
        cfg.chargers = chargers

    async def fn(conn):
        if if_empty and await conn.fetchval("SELECT EXISTS (SELECT 1 FROM stations)"):
            return None
        try:
            return await seed_database(conn, cfg, force=force, progress=lambda m: typer.echo(m, err=True))
        except DemoError as exc:
            cli.fail(str(exc))
            raise

    summary = cli.run_db(fn)
    if summary is None:
        typer.echo("registry not empty: demo data not seeded")
        return
    typer.echo("demo data seeded (synthetic): " + ", ".join(f"{k} {v}" for k, v in summary.items()))


@demo_app.command("clear")
def demo_clear() -> None:
    """Remove every demo row (registry rows marked synthetic, DEMO- chargers and their history)."""
    from .demo import clear_demo

    counts = _cli().run_db(clear_demo)
    typer.echo("removed: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@demo_app.command("offer")
def demo_offer() -> None:
    """On an empty registry, offer to seed demo data (asks on a terminal; used by `make run`)."""
    cli = _cli()

    async def empty(conn) -> bool:
        return not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM stations)")

    if not cli.run_db(empty):
        return
    if not sys.stdin.isatty():
        typer.echo("The registry is empty. `csms demo seed` (or `make demo`) fills it with a synthetic Yangquan.")
        return
    if typer.confirm("The registry is empty. Seed a synthetic Yangquan (demo data, marked synthetic)?",
                     default=True):
        demo_seed(seed=2023, sessions=None, chargers=None, force=False, if_empty=True)
