"""``fleetcharge chargers add/list`` driven as a user drives them (typer's CliRunner keeps stdout
and stderr apart), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from fleetcharge.ops import cli_chargers
from fleetcharge.ops.cli_chargers import DEFAULT_DB_URL, chargers_app
from fleetcharge.ops.store import Store

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
PASSWORD = "0123456789abcdefXYZ"


def invoke(*args: Any, stdin: str | None = None):
    return CliRunner().invoke(chargers_app, [str(a) for a in args], input=stdin)


def plain(text: str) -> str:
    return " ".join(ANSI.sub("", text).split())


def table_rows(text: str) -> list[list[str]]:
    """The cells of each row of a rich table (header first)."""
    return [[cell.strip() for cell in line.strip("│┃ ").split("│" if "│" in line else "┃")]
            for line in ANSI.sub("", text).splitlines() if line.startswith(("│", "┃"))]


def handled(result, code: int) -> None:
    """Exit code ``code`` and no traceback (a handled outcome, not a crash)."""
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stderr + result.stdout


def test_add_from_stdin_then_list_json(db_url: str, monkeypatch: pytest.MonkeyPatch):
    handled(result := invoke("add", "C01", "--password-stdin", "--db", db_url,
                             stdin=PASSWORD + "\n"), 0)
    assert "charge point C01: password stored" in plain(result.stderr)
    assert PASSWORD not in result.stdout + result.stderr
    handled(invoke("add", "C02", "--password-stdin", "--db", db_url, stdin=PASSWORD + "2"), 0)

    store = Store.open(db_url)
    try:
        assert store.verify_password("C01", PASSWORD)  # the line end is not part of it
        assert store.verify_password("C02", PASSWORD + "2")
        store.record_boot("C01", ocpp_version="1.6", vendor="Acme", model="AC-22",
                          at=pd.Timestamp("2025-03-03 17:30", tz="UTC"))
        store.set_capabilities("C01", rate_units="A,W", max_periods=24)
    finally:
        store.close()

    handled(result := invoke("list", "--db", db_url, "--json"), 0)
    rows = json.loads(result.stdout)
    assert [r["id"] for r in rows] == ["C01", "C02"]
    assert rows[0] | {"registered_at": None} == {
        "id": "C01", "ocpp_version": "1.6", "vendor": "Acme", "model": "AC-22",
        "firmware": None, "registered_at": None, "last_seen_at": "2025-03-03T17:30:00+00:00",
        "boot_at": "2025-03-03T17:30:00+00:00", "rate_units": "A,W", "max_periods": 24}
    assert pd.Timestamp(rows[1]["registered_at"]).tzinfo is not None
    assert rows[1]["ocpp_version"] is None and rows[1]["last_seen_at"] is None

    # a wide terminal, so no cell wraps (rich reads the width when the console is made)
    monkeypatch.setattr(cli_chargers, "out", Console(width=200))
    handled(result := invoke("list", "--db", db_url), 0)
    header, c01, c02 = table_rows(result.stdout)
    assert header == ["id", "OCPP version", "vendor/model", "last seen", "boot time",
                      "rate unit", "max periods", "registered"]
    assert c01[:7] == ["C01", "1.6", "Acme / AC-22", "2025-03-03 17:30:00 UTC",
                       "2025-03-03 17:30:00 UTC", "A,W", "24"]
    assert c02[:7] == ["C02"] + ["—"] * 6
    assert c01[7].endswith(" UTC") and c02[7].endswith(" UTC")


def test_duplicate_add_exits_2_until_replace(db_url: str):
    handled(invoke("add", "C01", "--password-stdin", "--db", db_url, stdin=PASSWORD), 0)
    handled(result := invoke("add", "C01", "--password-stdin", "--db", db_url,
                             stdin="another password 123"), 2)
    message = plain(result.stderr)
    assert "error: charge point id: charge point 'C01' is already registered" in message
    assert "--replace" in message and result.stdout == ""
    handled(invoke("add", "C01", "--password-stdin", "--replace", "--db", db_url,
                   stdin="another password 123"), 0)
    store = Store.open(db_url)
    try:
        assert store.verify_password("C01", "another password 123")
        assert not store.verify_password("C01", PASSWORD)
    finally:
        store.close()


def test_passwords_come_from_stdin_and_are_not_empty(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'depot.db'}"
    for stdin in ("", "\n", "\r\n"):
        handled(result := invoke("add", "C01", "--password-stdin", "--db", db, stdin=stdin), 2)
        assert "the password on stdin is empty" in plain(result.stderr)
    handled(result := invoke("add", "C01", "--password-stdin", "--db", db, stdin="a\nb\n"), 2)
    assert "give the password as one line on stdin" in plain(result.stderr)
    handled(result := invoke("add", "C01", "--db", db), 2)
    assert "pass the password on stdin with --password-stdin" in plain(result.stderr)
    assert not (tmp_path / "depot.db").exists()  # refused before touching the database

    handled(result := invoke("add", "C01", "--password-stdin", "--db", db, stdin="short"), 0)
    assert "warning: the password has 5 characters; OCPP security profile 1 asks for 16 to 40" \
        in plain(result.stderr)
    handled(result := invoke("add", "C:1", "--password-stdin", "--db", db, stdin=PASSWORD), 2)
    assert "'C:1' is not a valid OCPP identity" in plain(result.stderr)


def test_default_database_and_list_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    assert DEFAULT_DB_URL == "sqlite:///fleetcharge.db"
    monkeypatch.chdir(tmp_path)
    handled(result := invoke("list"), 2)
    assert "no database at fleetcharge.db; register a charge point first" in plain(result.stderr)
    assert not (tmp_path / "fleetcharge.db").exists()

    Store.open(DEFAULT_DB_URL).close()  # an empty database
    handled(result := invoke("list"), 0)
    assert "no charge points registered in sqlite:///fleetcharge.db" in plain(result.stderr)
    handled(result := invoke("list", "--json"), 0)
    assert json.loads(result.stdout) == []

    handled(invoke("add", "C01", "--password-stdin", stdin=PASSWORD), 0)
    handled(result := invoke("list", "--json"), 0)
    assert [r["id"] for r in json.loads(result.stdout)] == ["C01"]

    handled(result := invoke("list", "--db", "depot.db"), 2)
    assert "'depot.db' is not a database URL; use sqlite:///" in plain(result.stderr)
