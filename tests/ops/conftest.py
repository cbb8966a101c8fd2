"""Databases for the operations tests: every ``db_url`` test runs on SQLite and on PostgreSQL.

SQLite: a fresh file per test. PostgreSQL: a fresh, uniquely named database per test
(``fc_<uuid>``), dropped afterwards, on the server at 127.0.0.1:5432 (user ``postgres``, trust
auth) when it answers; otherwise on a throwaway cluster started from the PostgreSQL server
binaries for the test session; otherwise the PostgreSQL half is skipped with how to enable it.
Names are unique, so the tests are safe under ``pytest -n``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
NO_POSTGRES = ("PostgreSQL not reachable at 127.0.0.1:5432 and no server binaries found; "
               "start PostgreSQL or install postgresql to run these tests")


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((PG_HOST, 0))
        return s.getsockname()[1]


def start_cluster(bindir: Path) -> tuple[int, Path, list[str]]:
    """Start a throwaway PostgreSQL cluster on a free port (trust auth, user ``postgres``).

    Returns ``(port, data folder, command prefix)``; the prefix runs commands as the cluster's
    owner (``runuser -u postgres --`` when running as root, which ``initdb`` refuses).
    """
    prefix: list[str] = []
    datadir = Path(tempfile.mkdtemp(prefix="fc-pg-"))
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip(f"{NO_POSTGRES} (running as root and runuser is missing)")
        try:
            shutil.chown(datadir, user="postgres")
        except LookupError:
            pytest.skip(f"{NO_POSTGRES} (running as root and there is no user postgres)")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    run(str(bindir / "initdb"), "-D", str(datadir / "data"), "-U", PG_USER, "--auth=trust",
        "-E", "UTF8")
    run(str(bindir / "pg_ctl"), "-D", str(datadir / "data"), "-l", str(datadir / "log"), "-w",
        "-o", f"-p {port} -k {datadir} -c listen_addresses={PG_HOST}", "start")
    return port, datadir, prefix


@pytest.fixture(scope="session")
def pg_port() -> Iterator[int]:
    """Port of a PostgreSQL server on 127.0.0.1 (the local one, or a throwaway cluster)."""
    if _answers(PG_HOST, PG_PORT):
        yield PG_PORT
        return
    initdbs = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not initdbs:
        pytest.skip(NO_POSTGRES)
    bindir = Path(initdbs[-1]).parent
    port, datadir, prefix = start_cluster(bindir)
    try:
        yield port
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(datadir / "data"), "-m",
                        "immediate", "stop"], check=False, capture_output=True, timeout=60)
        shutil.rmtree(datadir, ignore_errors=True)


def _admin(port: int) -> psycopg.Connection:
    """An autocommit connection to a maintenance database (``postgres``, else ``test``)."""
    error: psycopg.Error | None = None
    for dbname in ("postgres", "test"):
        try:
            return psycopg.connect(host=PG_HOST, port=port, user=PG_USER, dbname=dbname,
                                   autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            error = exc
    raise RuntimeError(f"cannot reach a maintenance database on {PG_HOST}:{port}: {error}")


@pytest.fixture
def pg_database(pg_port: int) -> Iterator[str]:
    """URL of a fresh PostgreSQL database, dropped after the test."""
    name = f"fc_{uuid.uuid4().hex}"
    with _admin(pg_port) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{pg_port}/{name}"
    finally:
        with _admin(pg_port) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for an empty database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fleetcharge.db'}"
    return request.getfixturevalue("pg_database")
