"""``fleetcharge chargers``: register charge point identities and list them.

A charge point connects to ``fleetcharge serve`` as ``ws://HOST:PORT/<id>`` with HTTP Basic auth
(OCPP security profile 1): user name = its id, password = the one registered here, read from
stdin so it never shows up in the shell history or the process list. Bad input prints one
clear message and exits with code 2; ``--json`` output goes to stdout, messages to stderr.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fleetcharge.errors import InputError

if TYPE_CHECKING:
    from fleetcharge.ops.store import ChargePointRecord, Store

DEFAULT_DB_URL = "sqlite:///fleetcharge.db"
"""The database ``fleetcharge chargers`` and ``fleetcharge serve`` use without ``--db``: a SQLite
file in the working directory."""
RECOMMENDED_PASSWORD_CHARS = (16, 40)
"""Basic auth password length asked for by OCPP security profile 1 (OCPP 1.6 Security
Whitepaper, AuthorizationKey; 2.0.1 ``BasicAuthPassword``)."""
EXIT_INPUT = 2

chargers_app = typer.Typer(no_args_is_help=True,
                           help="Charge point identities the central system accepts.")

err = Console(stderr=True)
out = Console()

DbOption = Annotated[str, typer.Option(
    "--db", help="Database URL: sqlite:///file.db or postgresql+psycopg://user@host/db.")]


def _fail(exc: Exception) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(EXIT_INPUT)


def _read_password() -> str:
    """One line from stdin, without its line terminator."""
    text = typer.get_text_stream("stdin").read()
    password = text.removesuffix("\n").removesuffix("\r")
    if "\n" in password or "\r" in password:
        raise InputError("give the password as one line on stdin (it has several lines)",
                         location="--password-stdin")
    return password


def _refuse_missing_sqlite(db: str) -> None:
    """``chargers list`` on a SQLite file that does not exist: say so instead of creating it."""
    from sqlalchemy.engine import make_url  # here: the CLI starts without SQLAlchemy
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(db)
    except ArgumentError:  # reported by Store, with the fix
        return
    if (url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
            and not Path(url.database).exists()):
        raise InputError(
            f"no database at {url.database}; register a charge point first with "
            "`fleetcharge chargers add ID --password-stdin`, or pass --db", location="--db")


@chargers_app.command("add")
def add(
    cp_id: Annotated[str, typer.Argument(
        metavar="ID", help="The charge point's OCPP identity (a charger id of the scenario).")],
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from stdin (one line).")] = False,
    db: DbOption = DEFAULT_DB_URL,
    replace: Annotated[bool, typer.Option(
        "--replace", help="Set a new password for an id already registered.")] = False,
) -> None:
    """Register a charge point: its id and Basic auth password (stored as a salted hash)."""
    try:
        if not password_stdin:
            raise InputError("pass the password on stdin with --password-stdin, e.g. "
                             f"`fleetcharge chargers add {cp_id} --password-stdin < secret.txt` "
                             "(a password in the command line leaks into shell history)",
                             location="--password-stdin")
        password = _read_password()
        if not password:
            raise InputError("the password on stdin is empty", location="--password-stdin")
        store = _open_store(db)
        try:
            store.add_charge_point(cp_id, password, replace=replace)
        finally:
            store.close()
    except InputError as exc:
        _fail(exc)
    low, high = RECOMMENDED_PASSWORD_CHARS
    if not low <= len(password) <= high:
        err.print(f"[yellow]warning:[/] the password has {len(password)} characters; OCPP "
                  f"security profile 1 asks for {low} to {high}", highlight=False, soft_wrap=True)
    err.print(escape(f"charge point {cp_id}: password stored in {store.url}"), highlight=False,
              soft_wrap=True)


def _when(ts: datetime | None) -> str:
    return "—" if ts is None else ts.strftime("%Y-%m-%d %H:%M:%S UTC")


def _open_store(db: str) -> Store:
    """The store (imported here, so that every other ``fleetcharge`` command starts without
    SQLAlchemy and Alembic)."""
    from fleetcharge.ops.store import Store

    return Store.open(db)


def _json_record(record: ChargePointRecord) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v)
            for k, v in dataclasses.asdict(record).items()}


@chargers_app.command("list")
def list_(
    db: DbOption = DEFAULT_DB_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List registered charge points with what they reported and when they were last seen."""
    try:
        _refuse_missing_sqlite(db)
        store = _open_store(db)
        try:
            records = store.charge_points()
        finally:
            store.close()
    except InputError as exc:
        _fail(exc)
    if as_json:
        print(json.dumps([_json_record(r) for r in records], indent=2))
        return
    if not records:
        err.print(escape(f"no charge points registered in {store.url}; add one with "
                         "`fleetcharge chargers add ID --password-stdin`"), soft_wrap=True)
        return
    table = Table(title=f"{len(records)} charge points")
    for name in ("id", "OCPP version", "vendor/model", "last seen", "boot time", "rate unit",
                 "max periods", "registered"):
        table.add_column(name)
    for r in records:
        vendor_model = " / ".join(x for x in (r.vendor, r.model) if x) or "—"
        table.add_row(r.id, r.ocpp_version or "—", vendor_model, _when(r.last_seen_at),
                      _when(r.boot_at), r.rate_units or "—",
                      "—" if r.max_periods is None else str(r.max_periods),
                      _when(r.registered_at))
    out.print(table)
