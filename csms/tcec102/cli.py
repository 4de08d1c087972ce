"""``csms platform ...`` and ``csms tariffs ...`` (registered in :mod:`csms.cli`).

The helpers of :mod:`csms.cli` (``run_db``, ``emit``, ``fail``) are imported when a command
runs, so that importing this module from ``csms.cli`` is not circular.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Optional

import typer

__all__ = ["platform_app", "tariffs_app"]

platform_app = typer.Typer(help="T/CEC 102 supervision platforms we report to.", no_args_is_help=True)
tariffs_app = typer.Typer(help="Time-of-use tariffs (electricity price and service fee per kWh).",
                          no_args_is_help=True)


def _cli():
    from .. import cli

    return cli


# --------------------------------------------------------------------------- platforms
@platform_app.command("add")
def platform_add(
    name: str = typer.Argument(..., help="A name for the platform, e.g. shanxi."),
    operator_id: str = typer.Option(..., help="The platform's OperatorID."),
    our_operator_id: str = typer.Option(..., help="Our OperatorID (9-character 组织机构代码) towards it."),
    base_url: str = typer.Option(..., help="The platform's base URL; requests go to {base}/evcs/v{version}/..."),
    version: str = typer.Option("20160701", help="Interface version in the URL."),
    interface: Optional[list[str]] = typer.Option(
        None, "--interface", help="An interface it uses (repeat; default all): notification_stationStatus, "
        "notification_stationInfo, notification_charge_order_info, notification_equip_charge_status, "
        "query_stations_info, query_station_status, query_station_stats, query_equip_business_policy."),
    service_tel: str = typer.Option("", help="Our customer service phone (StationInfo.ServiceTel)."),
    operator_secret: str = typer.Option(..., prompt=True, hide_input=True, envvar="CSMS_PLATFORM_OPERATOR_SECRET",
                                        help="OperatorSecret (prompted if not given; or env)."),
    data_secret: str = typer.Option(..., prompt=True, hide_input=True, envvar="CSMS_PLATFORM_DATA_SECRET",
                                    help="DataSecret, 16 characters."),
    data_secret_iv: str = typer.Option(..., prompt=True, hide_input=True, envvar="CSMS_PLATFORM_DATA_SECRET_IV",
                                       help="DataSecretIV, 16 characters."),
    sig_secret: str = typer.Option(..., prompt=True, hide_input=True, envvar="CSMS_PLATFORM_SIG_SECRET",
                                   help="SigSecret."),
    replace: bool = typer.Option(False, help="Update the platform of this name (clears a halt)."),
) -> None:
    """Add a platform (secrets are stored encrypted and never shown again)."""
    from ..secretbox import secret_box
    from .codec import Secrets
    from .platforms import PlatformExists, add_platform

    cli = _cli()
    try:
        secrets = Secrets(operator_secret, data_secret, data_secret_iv, sig_secret)
    except ValueError as exc:
        cli.fail(str(exc), 2)
    box = secret_box(cli._settings())

    async def fn(conn) -> dict[str, Any]:
        return await add_platform(conn, box, name=name, operator_id=operator_id, our_operator_id=our_operator_id,
                                  base_url=base_url, secrets=secrets, version=version,
                                  interfaces=list(interface) if interface else None, service_tel=service_tel,
                                  replace=replace)

    try:
        out = cli.run_db(fn)
    except PlatformExists as exc:
        cli.fail(f"{exc}; use --replace to update it")
        raise
    except ValueError as exc:
        cli.fail(str(exc), 2)
        raise
    typer.echo(f"{'added' if out['created'] else 'updated'} platform {name}")


@platform_app.command("list")
def platform_list(as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")) -> None:
    """Configured platforms (without secrets)."""
    from .platforms import list_platforms

    cli = _cli()
    rows = cli.run_db(list_platforms)
    for r in rows:
        r["interfaces"] = ",".join(r["interfaces"])
    cli.emit(rows, as_json, ["name", "operator_id", "our_operator_id", "base_url", "version", "enabled",
                             "halted_at", "interfaces"])


@platform_app.command("status")
def platform_status(as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")) -> None:
    """Per platform: backlog, age of the oldest undelivered notification, last success, last error."""
    from .platforms import platform_status as status

    cli = _cli()
    cli.emit(cli.run_db(status), as_json, ["name", "state", "backlog", "oldest_age_s", "last_success_at",
                                          "rejected", "disputed", "last_error_at", "last_error"])


@platform_app.command("remove")
def platform_remove(name: str) -> None:
    """Remove a platform with its tokens and its undelivered notifications."""
    from .platforms import remove_platform

    cli = _cli()
    if not cli.run_db(lambda conn: remove_platform(conn, name)):
        cli.fail(f"no platform {name!r}")
    typer.echo(f"removed platform {name}")


@platform_app.command("resume")
def platform_resume(name: str) -> None:
    """Resume delivery to a platform halted by Ret 4001 (after fixing its secrets)."""
    from .platforms import resume_platform

    cli = _cli()
    if not cli.run_db(lambda conn: resume_platform(conn, name)):
        cli.fail(f"no platform {name!r}")
    typer.echo(f"resumed platform {name}")


@platform_app.command("retry")
def platform_retry(name: str) -> None:
    """Requeue the notifications a platform rejected (Ret 4003/4004)."""
    from .platforms import retry_rejected

    cli = _cli()
    typer.echo(f"requeued {cli.run_db(lambda conn: retry_rejected(conn, name))} notification(s)")


@platform_app.command("disputes")
def platform_disputes(as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")) -> None:
    """Charge orders a platform disputed (ConfirmResult 1), for the operator to settle."""
    from .platforms import disputed_orders

    cli = _cli()
    cli.emit(cli.run_db(disputed_orders), as_json,
             ["platform", "session_id", "start_charge_seq", "total_power", "total_money", "confirmed_at"])


# --------------------------------------------------------------------------- tariffs
@tariffs_app.command("add")
def tariffs_add(
    name: str = typer.Argument(..., help="Tariff name; adding to an existing name adds a new version."),
    period: list[str] = typer.Option(..., "--period", help="START=ELEC/SERVICE in yuan/kWh, e.g. "
                                     "--period 00:00=0.3100/0.4000 --period 08:00=0.6200/0.6000 (repeat; the "
                                     "first starts at 00:00)."),
    valid_from: str = typer.Option(..., help="First local date it applies (YYYY-MM-DD)."),
) -> None:
    """Add a tariff, or a new version of one valid from a date (older versions are kept)."""
    from ..pricing import TariffExists, add_tariff_version, parse_periods
    from ..tariffs import TariffError

    cli = _cli()
    try:
        day = date.fromisoformat(valid_from)
        periods = parse_periods(period)
    except (ValueError, TariffError) as exc:
        cli.fail(str(exc), 2)
        raise

    async def fn(conn):
        return await add_tariff_version(conn, name, day, periods, created_by="cli")

    try:
        out = cli.run_db(fn)
    except TariffExists as exc:
        cli.fail(str(exc))
        raise
    except TariffError as exc:
        cli.fail(str(exc), 2)
        raise
    typer.echo(f"tariff {name}: version valid from {out['valid_from']} with {len(out['periods'])} period(s)")


@tariffs_app.command("list")
def tariffs_list(as_json: bool = typer.Option(False, "--json", help="One JSON object per line.")) -> None:
    """Tariffs with every version's periods and where they are assigned."""
    from ..pricing import list_tariffs

    cli = _cli()
    tariffs = cli.run_db(list_tariffs)
    if as_json:
        cli.emit(tariffs, True, [])
        return
    rows = []
    for t in tariffs:
        assigned = ", ".join((["(default)"] if t["default"] else []) + t["stations"])
        for v in t["versions"]:
            for p in v["periods"]:
                rows.append({"tariff": t["name"], "valid_from": str(v["valid_from"]), "start": p["start"],
                             "elec_price": p["elec_price"], "service_price": p["service_price"],
                             "assigned": assigned})
    cli.emit(rows, False, ["tariff", "valid_from", "start", "elec_price", "service_price", "assigned"])


@tariffs_app.command("assign")
def tariffs_assign(
    name: str = typer.Argument(..., help="Tariff name."),
    station: Optional[str] = typer.Option(None, help="Station id; without it the tariff becomes the default."),
    default: bool = typer.Option(False, "--default", help="Make it the operator's default tariff."),
    valid_from: Optional[str] = typer.Option(None, help="From when (ISO date/time; default now)."),
) -> None:
    """Use a tariff for a station (or as the default) from now or a given time on."""
    from ..pricing import UnknownTariff, assign_tariff

    cli = _cli()
    if (station is not None) == default:
        cli.fail("give either --station STATION or --default", 2)
    when: datetime | None = cli._parse_dt(valid_from, "--valid-from")

    try:
        out = cli.run_db(lambda conn: assign_tariff(conn, name, station, when, created_by="cli"))
    except UnknownTariff as exc:
        cli.fail(str(exc))
        raise
    typer.echo(f"tariff {name} assigned to {station or 'the operator default'} from "
               f"{out['valid_from'].isoformat(timespec='seconds')}")
