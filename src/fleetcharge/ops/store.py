"""Persistence of the live depot: charge points, connectors, transactions, meter values, the
vehicle ↔ session association, every profile sent and its answer, peaks and the security log.

One :class:`Store` wraps one SQLAlchemy engine: a SQLite file by default
(``sqlite:///fleetcharge.db``), PostgreSQL by URL (``postgresql+psycopg://user@host:5432/db``).
The schema is created and upgraded by the Alembic migrations in ``ops/migrations`` (run by
:meth:`Store.open`, no ``alembic.ini`` needed).

Rules every method keeps:

- each call is one database transaction in its own session, committed before the method returns,
  so the central system can reply to a charger only once its message is durable; one engine is
  shared, so the store may be called from worker threads (``asyncio.to_thread``);
- retried OCPP messages are idempotent: a transaction start is keyed by the station's
  transactionId (2.x) or by (station, EVSE, connector, start time) (1.6), meter samples by
  (station, EVSE, time, measurand, phase); read-modify-write steps are single SQL statements
  (``INSERT … ON CONFLICT``, conditional ``UPDATE``), so concurrent callers cannot interleave;
- timestamps go in as tz-aware values (any zone), are stored as UTC and come back as tz-aware
  UTC :class:`pandas.Timestamp` on both backends (SQLite keeps no zone: UTC is attached on read).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    case,
    create_engine,
    event,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from fleetcharge.errors import InputError
from fleetcharge.ops import passwords

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite writer waits for another writer's lock before failing [ms]."""
PG_CONNECT_TIMEOUT_S = 10
"""Default PostgreSQL connect timeout when the URL sets none [s]."""
RATE_UNITS = ("A", "W")
"""Units of smart-charging schedules (OCPP 1.6 §7.12, 2.x ChargingRateUnitEnumType)."""
MAX_IDENTITY_CHARS = 48
"""OCPP-J charge point identities are at most 48 characters (OCPP 2.0.1 identifierString[48])."""
_IDENTITY = re.compile(r"[A-Za-z0-9*\-_=+|@.]+")
"""OCPP 2.0.1 identifierString characters (Part 2 §2.1: a-z A-Z 0-9 * - _ = : + | @ .) without
':', which an HTTP Basic user-id cannot contain (RFC 7617 §2)."""
_LOG_LIMITS = {"cp_id": 200, "remote": 100, "kind": 40, "detail": 2000}
"""Security-log field lengths: the values come from unauthenticated peers, so they are cut."""
_SUPPORTED_DIALECTS = ("sqlite", "postgresql")
_SUPPORTED_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
_URL_HELP = ("use sqlite:///path/to/fleetcharge.db (a file, created if missing) or "
             "postgresql+psycopg://user:password@host:5432/dbname")

NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}
"""Constraint names, so migrations can address every constraint by name on every backend."""


# --------------------------------------------------------------------------------------------
# column types


def _utc(value: datetime, name: str = "timestamp") -> datetime:
    """``value`` as a tz-aware UTC ``datetime`` with microsecond precision (what both backends
    keep; a ``pandas.Timestamp``'s nanoseconds are dropped).

    Raises
    ------
    ValueError
        If ``value`` is naive: inside fleetcharge every timestamp carries its zone.
    """
    if value.tzinfo is None:
        raise ValueError(f"{name} {value!r} is naive; pass a tz-aware timestamp (e.g. Clock.now())")
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime(warn=False)
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` that stores UTC and reads back tz-aware UTC ``pd.Timestamp``.

    PostgreSQL ``timestamptz`` keeps the instant (read back in the session's zone: converted);
    SQLite has no zone, so the UTC wall time is stored and UTC attached on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = _utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> pd.Timestamp | None:
        if value is None:
            return None
        ts = pd.Timestamp(value)
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _json_default(obj: Any) -> Any:
    """JSON for what OCPP payloads hold besides plain types: ``Decimal`` limits (the ``ocpp``
    library's 1.6 one-decimal convention) and timestamps (ISO 8601)."""
    if isinstance(obj, Decimal):
        return float(obj)
    if isinstance(obj, datetime):
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


_json_dumps = functools.partial(json.dumps, default=_json_default)


# --------------------------------------------------------------------------------------------
# models


class Base(DeclarativeBase):
    """Declarative base: named constraints, UTC timestamps for every ``datetime`` column."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class ChargePointRow(Base):
    """A registered charge point (OCPP identity) and what it told us at boot."""

    __tablename__ = "charge_points"

    id: Mapped[str] = mapped_column(String(MAX_IDENTITY_CHARS), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    registered_at: Mapped[datetime]
    ocpp_version: Mapped[str | None] = mapped_column(String(8))
    vendor: Mapped[str | None] = mapped_column(String(50))
    model: Mapped[str | None] = mapped_column(String(50))
    firmware: Mapped[str | None] = mapped_column(String(50))
    boot_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    rate_units: Mapped[str | None] = mapped_column(String(8))
    max_periods: Mapped[int | None] = mapped_column(Integer)


class ConnectorRow(Base):
    """Latest status of one connector of one EVSE (StatusNotification)."""

    __tablename__ = "connectors"

    charge_point_id: Mapped[str] = mapped_column(
        String(MAX_IDENTITY_CHARS), ForeignKey("charge_points.id"), primary_key=True)
    evse_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    connector_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(50))
    updated_at: Mapped[datetime]


class TransactionRow(Base):
    """A charging transaction and the vehicle ↔ session association (needs) attached to it.

    ``ocpp_tx_id`` is the station's transactionId (2.x) or ``str(id)`` (1.6, where the central
    system assigns the integer); it is NULL only inside the inserting database transaction.
    """

    __tablename__ = "transactions"
    __table_args__ = (
        UniqueConstraint("charge_point_id", "ocpp_tx_id", name="uq_transactions_ocpp_tx_id"),
        UniqueConstraint("charge_point_id", "evse_id", "connector_id", "started_at",
                         name="uq_transactions_start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    charge_point_id: Mapped[str] = mapped_column(
        String(MAX_IDENTITY_CHARS), ForeignKey("charge_points.id"))
    ocpp_tx_id: Mapped[str | None] = mapped_column(String(36))
    evse_id: Mapped[int] = mapped_column(Integer)
    connector_id: Mapped[int] = mapped_column(Integer)
    id_tag: Mapped[str | None] = mapped_column(String(255))
    vehicle_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]
    meter_start_wh: Mapped[float] = mapped_column(Double)
    meter_stop_wh: Mapped[float | None] = mapped_column(Double)
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    departure_at: Mapped[datetime | None]
    target_soc: Mapped[float | None] = mapped_column(Double)
    energy_needed_kwh: Mapped[float | None] = mapped_column(Double)
    needs_source: Mapped[str | None] = mapped_column(String(40))


class MeterValueRow(Base):
    """One sampled value. ``phase`` is ``''`` when the sample has none, so the uniqueness key
    also suppresses duplicates of phase-less samples (NULLs never collide in a unique key)."""

    __tablename__ = "meter_values"
    __table_args__ = (
        UniqueConstraint("charge_point_id", "evse_id", "timestamp", "measurand", "phase",
                         name="uq_meter_values_sample"),
        Index("ix_meter_values_timestamp", "timestamp"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    charge_point_id: Mapped[str] = mapped_column(
        String(MAX_IDENTITY_CHARS), ForeignKey("charge_points.id"))
    evse_id: Mapped[int] = mapped_column(Integer)
    ocpp_tx_id: Mapped[str | None] = mapped_column(String(36))
    timestamp: Mapped[datetime]
    measurand: Mapped[str] = mapped_column(String(64))
    phase: Mapped[str] = mapped_column(String(8))
    value: Mapped[float] = mapped_column(Double)
    unit: Mapped[str] = mapped_column(String(20))
    context: Mapped[str | None] = mapped_column(String(32))


class ProfileRow(Base):
    """A charging profile sent to a station, and the station's answer."""

    __tablename__ = "profiles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    charge_point_id: Mapped[str] = mapped_column(
        String(MAX_IDENTITY_CHARS), ForeignKey("charge_points.id"))
    evse_id: Mapped[int] = mapped_column(Integer)
    ocpp_tx_id: Mapped[str | None] = mapped_column(String(36))
    purpose: Mapped[str] = mapped_column(String(40))
    profile: Mapped[dict[str, Any]] = mapped_column(JSON)
    sent_at: Mapped[datetime]
    status: Mapped[str | None] = mapped_column(String(32))
    answered_at: Mapped[datetime | None]
    composite: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class PeakRow(Base):
    """The highest interval-average site load seen under a label (e.g. ``"2025-03"``) [kW]."""

    __tablename__ = "peaks"

    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    kw: Mapped[float] = mapped_column(Double)
    set_at: Mapped[datetime]


class SecurityEventRow(Base):
    """A rejected or suspicious connection attempt (no passwords, ever)."""

    __tablename__ = "security_events"
    __table_args__ = (Index("ix_security_events_occurred_at", "occurred_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurred_at: Mapped[datetime]
    charge_point_id: Mapped[str | None] = mapped_column(String(_LOG_LIMITS["cp_id"]))
    remote: Mapped[str | None] = mapped_column(String(_LOG_LIMITS["remote"]))
    kind: Mapped[str] = mapped_column(String(_LOG_LIMITS["kind"]))
    detail: Mapped[str] = mapped_column(Text)


# --------------------------------------------------------------------------------------------
# records handed to callers


@dataclass(frozen=True)
class ChargePointRecord:
    """A registered charge point (never its password hash)."""

    id: str
    ocpp_version: str | None
    vendor: str | None
    model: str | None
    firmware: str | None
    registered_at: pd.Timestamp
    last_seen_at: pd.Timestamp | None
    boot_at: pd.Timestamp | None
    rate_units: str | None
    """``"A"``, ``"W"`` or ``"A,W"``; ``None`` until read from the station."""
    max_periods: int | None
    """ChargingScheduleMaxPeriods (1.6) / PeriodsPerSchedule (2.x)."""


@dataclass(frozen=True)
class TransactionRecord:
    """A transaction with its needs (energy in kWh, SOC as a fraction 0–1)."""

    id: int
    ocpp_tx_id: str
    charge_point_id: str
    evse_id: int
    connector_id: int
    id_tag: str | None
    vehicle_id: str | None
    started_at: pd.Timestamp
    stopped_at: pd.Timestamp | None
    meter_start_wh: float
    meter_stop_wh: float | None
    stop_reason: str | None
    departure_at: pd.Timestamp | None
    target_soc: float | None
    energy_needed_kwh: float | None
    needs_source: str | None


@dataclass(frozen=True)
class MeterSample:
    """One sampled value of a MeterValues / TransactionEvent message (``value`` in ``unit``)."""

    timestamp: datetime
    evse_id: int
    ocpp_tx_id: str | None
    measurand: str
    value: float
    unit: str
    phase: str | None = None
    context: str | None = None


METER_COLUMNS = ("timestamp", "charge_point_id", "evse_id", "ocpp_tx_id", "measurand", "phase",
                 "value", "unit", "context")
"""Columns of :meth:`Store.meter_values`."""


def _cp_record(row: ChargePointRow) -> ChargePointRecord:
    return ChargePointRecord(
        id=row.id, ocpp_version=row.ocpp_version, vendor=row.vendor, model=row.model,
        firmware=row.firmware, registered_at=row.registered_at, last_seen_at=row.last_seen_at,
        boot_at=row.boot_at, rate_units=row.rate_units, max_periods=row.max_periods)


def _tx_record(row: TransactionRow) -> TransactionRecord:
    assert row.ocpp_tx_id is not None  # set before every commit (see TransactionRow)
    return TransactionRecord(
        id=row.id, ocpp_tx_id=row.ocpp_tx_id, charge_point_id=row.charge_point_id,
        evse_id=row.evse_id, connector_id=row.connector_id, id_tag=row.id_tag,
        vehicle_id=row.vehicle_id, started_at=row.started_at, stopped_at=row.stopped_at,
        meter_start_wh=row.meter_start_wh, meter_stop_wh=row.meter_stop_wh,
        stop_reason=row.stop_reason, departure_at=row.departure_at, target_soc=row.target_soc,
        energy_needed_kwh=row.energy_needed_kwh, needs_source=row.needs_source)


def _profile_dict(row: ProfileRow) -> dict[str, Any]:
    return {"id": row.id, "cp_id": row.charge_point_id, "evse_id": row.evse_id,
            "ocpp_tx_id": row.ocpp_tx_id, "purpose": row.purpose, "profile": row.profile,
            "sent_at": row.sent_at, "status": row.status, "answered_at": row.answered_at,
            "composite": row.composite}


def _unknown_cp(cp_id: str) -> LookupError:
    return LookupError(f"charge point {cp_id!r} is not registered "
                       f"(register it with `fleetcharge chargers add {cp_id} --password-stdin`)")


def _check_identity(cp_id: str) -> None:
    if not (len(cp_id) <= MAX_IDENTITY_CHARS and _IDENTITY.fullmatch(cp_id)):
        raise InputError(
            f"charge point id {cp_id!r} is not a valid OCPP identity: use 1 to "
            f"{MAX_IDENTITY_CHARS} characters from a-z A-Z 0-9 * - _ = + | @ . (the id is the "
            "last part of the charger's websocket URL and its HTTP Basic user name)",
            location="charge point id")


def _clip(value: str, field: str) -> str:
    limit = _LOG_LIMITS[field]
    return value if len(value) <= limit else value[: limit - 1] + "…"


@functools.cache
def _dummy_hash() -> str:
    """A hash to check unknown identities against, so they cost as much as a wrong password."""
    return passwords.hash_password("no such charge point")


# --------------------------------------------------------------------------------------------
# engine, migrations


def masked_url(url: str | URL) -> str:
    """``url`` as text with its password replaced by ``***`` (for messages and logs)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _parse_url(url: str | URL) -> URL:
    """The SQLAlchemy URL of a supported backend (``postgresql://`` means psycopg 3)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InputError(f"{str(url)!r} is not a database URL; {_URL_HELP}",
                         location="database URL") from None
    if parsed.get_backend_name() not in _SUPPORTED_DIALECTS:
        raise InputError(
            f"{masked_url(parsed)}: unsupported database {parsed.get_backend_name()!r}; "
            f"{_URL_HELP}", location="database URL")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # the installed driver
    if parsed.drivername not in _SUPPORTED_DRIVERS:
        raise InputError(
            f"{masked_url(parsed)}: driver {parsed.get_driver_name()!r} is not supported "
            f"(fleetcharge uses psycopg 3 and Python's sqlite3); {_URL_HELP}",
            location="database URL")
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise InputError(
            f"{masked_url(parsed)}: an in-memory SQLite database lives in one connection and "
            f"vanishes with the process; {_URL_HELP}", location="database URL")
    return parsed


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Per-connection SQLite settings: wait for writers, WAL (readers never block the writer),
    enforce foreign keys."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def alembic_config(connection: Connection) -> Config:
    """The Alembic configuration of the store's migrations, bound to ``connection``.

    No ``alembic.ini`` is needed. Developers write the next migration with
    ``command.revision(alembic_config(conn), message, autogenerate=True)`` against a database at
    head, then check the generated file by hand.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


# --------------------------------------------------------------------------------------------
# the store


class Store:
    """The central system's database.

    Parameters
    ----------
    url : str
        SQLAlchemy URL: ``sqlite:///path.db`` or ``postgresql+psycopg://user:pw@host:5432/db``
        (``postgresql://`` is taken to mean psycopg 3).

    Raises
    ------
    InputError
        If the URL cannot be parsed or names an unsupported or in-memory database.

    Attributes
    ----------
    url : str
        The database URL with its password masked (for messages and logs).

    Notes
    -----
    The constructor builds the engine only; :meth:`open` also creates or upgrades the schema.
    One engine serves all threads, with a session per call. SQLite connections use WAL (readers
    never wait for the writer), a 10 s busy timeout (other processes, e.g. ``fleetcharge
    chargers add`` next to a running server) and foreign keys; writers of one process take
    turns on a lock. PostgreSQL connections are checked before use (server restarts) and time
    out after 10 s unless the URL sets ``connect_timeout``.
    """

    def __init__(self, url: str) -> None:
        parsed = _parse_url(url)
        self.url = masked_url(parsed)
        is_sqlite = parsed.get_backend_name() == "sqlite"
        connect_args: dict[str, Any] = {}
        if is_sqlite:
            connect_args["check_same_thread"] = False
        elif "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
        self._password = parsed.password
        # pre-ping: a server restart must not leave dead connections in the pool
        self._engine = create_engine(parsed, connect_args=connect_args,
                                     pool_pre_ping=not is_sqlite, json_serializer=_json_dumps)
        if is_sqlite:
            event.listen(self._engine, "connect", _sqlite_pragmas)
        self._dialect = sqlite if is_sqlite else postgresql
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        # SQLite has one writer at a time and its busy handler polls with growing sleeps:
        # writers of this process queue on a lock instead
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if is_sqlite else contextlib.nullcontext())

    @classmethod
    def open(cls, url: str) -> Store:
        """A store whose schema is created or upgraded to the current version.

        Raises
        ------
        InputError
            Bad URL, unreachable server, or a database written by a newer fleetcharge.
        """
        store = cls(url)
        try:
            store.upgrade()
        except BaseException:
            store.close()
            raise
        return store

    def upgrade(self) -> None:
        """Run the migrations up to the current schema (``alembic upgrade head``); a no-op on an
        up-to-date database.

        Raises
        ------
        InputError
            If the database cannot be reached or carries a revision this version does not know.
        """
        try:
            conn = self._engine.connect()
        except (OperationalError, InterfaceError) as exc:
            reason = " ".join(str(exc.orig).split())  # one line
            if self._password:
                reason = reason.replace(self._password, "***")
            raise InputError(
                f"cannot connect to the database {self.url}: {reason}; check the URL, that the "
                "server is running and accepts this user (for SQLite: that the folder exists "
                "and is writable)", location="database URL") from None
        with conn, conn.begin():
            try:
                command.upgrade(alembic_config(conn), "head")
            except CommandError as exc:
                raise InputError(
                    f"the database {self.url} has a schema this fleetcharge does not know ({exc}); "
                    "it was probably written by a newer fleetcharge: upgrade fleetcharge, or use "
                    "another database", location="database URL") from None

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    @contextlib.contextmanager
    def _write(self) -> Iterator[Session]:
        """A session in a transaction, committed on exit (rolled back on an exception)."""
        with self._write_lock, self._sessions.begin() as session:
            yield session

    def _insert(self, model: Any) -> Any:
        """The dialect's INSERT (it has ``on_conflict_do_nothing`` / ``_do_update``)."""
        return self._dialect.insert(model)

    # -- charge points -------------------------------------------------------------------------

    def add_charge_point(self, cp_id: str, password: str, *, replace: bool = False) -> None:
        """Register a charge point identity with its password (stored as a salted scrypt hash).

        Parameters
        ----------
        cp_id : str
            OCPP identity: the last path segment of the charger's websocket URL and its HTTP
            Basic user name (security profile 1, OCPP 1.6 Security Whitepaper / 2.0.1 A00).
        password : str
            The Basic auth password (non-empty; OCPP recommends 16–40 characters).
        replace : bool
            Set a new password for an identity already registered.

        Raises
        ------
        InputError
            Invalid identity, empty password, or identity already registered and not ``replace``.
        """
        _check_identity(cp_id)
        if not password:
            raise InputError("the password is empty; give the charge point's Basic auth password",
                             location="password")
        values = {"id": cp_id, "password_hash": passwords.hash_password(password),
                  "registered_at": datetime.now(UTC)}
        stmt = self._insert(ChargePointRow).values(**values)
        if replace:
            stmt = stmt.on_conflict_do_update(index_elements=[ChargePointRow.id],
                                              set_={"password_hash": stmt.excluded.password_hash})
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=[ChargePointRow.id])
        with self._write() as s:
            inserted = s.execute(stmt.returning(ChargePointRow.id)).first()
        if inserted is None:
            raise InputError(f"charge point {cp_id!r} is already registered in {self.url}; "
                             "pass --replace (replace=True) to set a new password",
                             location="charge point id")

    def verify_password(self, cp_id: str, password: str) -> bool:
        """Whether ``password`` is the registered password of ``cp_id`` (``False`` for an unknown
        id, after the same scrypt work, so timing does not reveal which ids exist)."""
        with self._sessions() as s:
            stored = s.scalar(select(ChargePointRow.password_hash)
                              .where(ChargePointRow.id == cp_id))
        if stored is None:
            passwords.verify_password(password, _dummy_hash())
            return False
        return passwords.verify_password(password, stored)

    def charge_point(self, cp_id: str) -> ChargePointRecord | None:
        """The charge point ``cp_id``, or ``None`` if it is not registered."""
        with self._sessions() as s:
            row = s.get(ChargePointRow, cp_id)
            return None if row is None else _cp_record(row)

    def charge_points(self) -> list[ChargePointRecord]:
        """Every registered charge point, by id."""
        with self._sessions() as s:
            rows = s.scalars(select(ChargePointRow).order_by(ChargePointRow.id))
            return [_cp_record(r) for r in rows]

    def _update_cp(self, cp_id: str, **values: Any) -> None:
        with self._write() as s:
            done = s.execute(update(ChargePointRow).where(ChargePointRow.id == cp_id)
                             .values(**values).returning(ChargePointRow.id)).first()
        if done is None:
            raise _unknown_cp(cp_id)

    def record_boot(self, cp_id: str, *, ocpp_version: str, vendor: str, model: str,
                    firmware: str | None = None, at: datetime) -> None:
        """Store a BootNotification: OCPP version negotiated, vendor, model, firmware, time.

        Raises
        ------
        LookupError
            If ``cp_id`` is not registered.
        """
        at = _utc(at, "at")
        self._update_cp(cp_id, ocpp_version=ocpp_version, vendor=vendor, model=model,
                        firmware=firmware, boot_at=at, last_seen_at=at)

    def record_seen(self, cp_id: str, at: datetime) -> None:
        """Note that ``cp_id`` was heard from at ``at`` (never moves the last-seen time back)."""
        seen, last = literal(_utc(at, "at"), UTCDateTime()), ChargePointRow.last_seen_at
        self._update_cp(cp_id, last_seen_at=case((last.is_(None), seen), (last < seen, seen),
                                                 else_=last))

    def set_capabilities(self, cp_id: str, *, rate_units: str, max_periods: int | None) -> None:
        """Store the smart-charging limits read at boot.

        Parameters
        ----------
        rate_units : str
            Allowed schedule units, ``"A"``, ``"W"`` or both (``"A,W"``, any order): from 1.6
            ``ChargingScheduleAllowedChargingRateUnit`` (``Current``/``Power``, mapped by the
            caller) or 2.x ``SmartChargingCtrlr.RateUnit``.
        max_periods : int or None
            ``ChargingScheduleMaxPeriods`` (1.6 §9.4) / ``PeriodsPerSchedule`` (2.x), ≥ 1.

        Raises
        ------
        ValueError
            On a unit other than A/W or a period count below 1.
        LookupError
            If ``cp_id`` is not registered.
        """
        units = {u.strip() for u in rate_units.split(",")}
        if not units or not units <= set(RATE_UNITS):
            raise ValueError(f"rate_units {rate_units!r} must be 'A', 'W' or 'A,W'")
        if max_periods is not None and max_periods < 1:
            raise ValueError(f"max_periods {max_periods!r} must be at least 1")
        self._update_cp(cp_id, rate_units=",".join(u for u in RATE_UNITS if u in units),
                        max_periods=max_periods)

    def set_connector_status(self, cp_id: str, evse_id: int, connector_id: int, status: str,
                             error_code: str | None = None, *, at: datetime) -> None:
        """Store the latest status of a connector (StatusNotification / 2.x connectorStatus).

        Raises
        ------
        LookupError
            If ``cp_id`` is not registered.
        """
        stmt = self._insert(ConnectorRow).values(
            charge_point_id=cp_id, evse_id=evse_id, connector_id=connector_id, status=status,
            error_code=error_code, updated_at=_utc(at, "at"))
        stmt = stmt.on_conflict_do_update(
            index_elements=[ConnectorRow.charge_point_id, ConnectorRow.evse_id,
                            ConnectorRow.connector_id],
            set_={"status": stmt.excluded.status, "error_code": stmt.excluded.error_code,
                  "updated_at": stmt.excluded.updated_at})
        try:
            with self._write() as s:
                s.execute(stmt)
        except IntegrityError:
            raise _unknown_cp(cp_id) from None

    def connector_statuses(self) -> list[dict[str, Any]]:
        """Every connector's latest status: dicts with ``cp, evse, connector, status,
        error_code, updated_at``, by station, EVSE and connector."""
        with self._sessions() as s:
            rows = s.scalars(select(ConnectorRow).order_by(
                ConnectorRow.charge_point_id, ConnectorRow.evse_id, ConnectorRow.connector_id))
            return [{"cp": r.charge_point_id, "evse": r.evse_id, "connector": r.connector_id,
                     "status": r.status, "error_code": r.error_code, "updated_at": r.updated_at}
                    for r in rows]

    # -- transactions --------------------------------------------------------------------------

    def start_transaction(self, cp_id: str, *, evse_id: int, connector_id: int,
                          ocpp_tx_id: str | None, id_tag: str | None, meter_start_wh: float,
                          started_at: datetime, vehicle_id: str | None = None,
                          ) -> TransactionRecord:
        """Record a transaction start; a retried start returns the transaction already stored.

        Parameters
        ----------
        cp_id : str
            The station.
        evse_id, connector_id : int
            Where (1.6: pass the connectorId as both).
        ocpp_tx_id : str or None
            2.x: the station's transactionId (TransactionEvent Started, E01); idempotent on
            (station, id). 1.6: ``None``: the central system assigns the transactionId (1.6
            §6.46 StartTransaction.conf): the row's integer id, stored as ``str(id)``; idempotent
            on (station, EVSE, connector, start time), so a StartTransaction retried after a
            crash gets the same id.
        id_tag : str or None
            1.6 idTag / 2.x idToken.
        meter_start_wh : float
            Energy register at start [Wh].
        started_at : datetime
            Start time (tz-aware).
        vehicle_id : str, optional
            The scenario vehicle, if known already.

        Returns
        -------
        TransactionRecord
            The stored transaction (the first one, for a retry).

        Raises
        ------
        LookupError
            If ``cp_id`` is not registered.
        ValueError
            If another transaction with a different 2.x id started on the same connector at the
            same instant.
        """
        started_at = _utc(started_at, "started_at")
        stmt = self._insert(TransactionRow).values(
            charge_point_id=cp_id, ocpp_tx_id=ocpp_tx_id, evse_id=evse_id,
            connector_id=connector_id, id_tag=id_tag, vehicle_id=vehicle_id,
            started_at=started_at, meter_start_wh=float(meter_start_wh),
        ).on_conflict_do_nothing().returning(TransactionRow.id)
        if ocpp_tx_id is None:
            key = (TransactionRow.evse_id == evse_id) & (
                TransactionRow.connector_id == connector_id) & (
                TransactionRow.started_at == started_at)
        else:
            key = TransactionRow.ocpp_tx_id == ocpp_tx_id
        try:
            with self._write() as s:
                new_id = s.scalar(stmt)
                if new_id is not None and ocpp_tx_id is None:
                    s.execute(update(TransactionRow).where(TransactionRow.id == new_id)
                              .values(ocpp_tx_id=str(new_id)))
                row = s.scalar(select(TransactionRow)
                               .where(TransactionRow.charge_point_id == cp_id, key))
        except IntegrityError:
            raise _unknown_cp(cp_id) from None
        if row is None:
            raise ValueError(
                f"{cp_id} EVSE {evse_id} connector {connector_id}: a transaction other than "
                f"{ocpp_tx_id!r} already started at {started_at.isoformat()}")
        return _tx_record(row)

    def transaction(self, cp_id: str, ocpp_tx_id: str) -> TransactionRecord | None:
        """The transaction ``ocpp_tx_id`` of ``cp_id``, or ``None``."""
        with self._sessions() as s:
            row = s.scalar(select(TransactionRow).where(
                TransactionRow.charge_point_id == cp_id, TransactionRow.ocpp_tx_id == ocpp_tx_id))
            return None if row is None else _tx_record(row)

    def open_transactions(self) -> list[TransactionRecord]:
        """Transactions not stopped yet, oldest first."""
        with self._sessions() as s:
            rows = s.scalars(select(TransactionRow).where(TransactionRow.stopped_at.is_(None))
                             .order_by(TransactionRow.started_at, TransactionRow.id))
            return [_tx_record(r) for r in rows]

    def stop_transaction(self, cp_id: str, ocpp_tx_id: str, *, meter_stop_wh: float,
                         stopped_at: datetime, reason: str | None = None,
                         ) -> TransactionRecord | None:
        """Record a transaction stop (1.6 StopTransaction / 2.x TransactionEvent Ended).

        Idempotent: the first stop is kept, a repeated stop returns the stored transaction
        unchanged. ``None`` when the transaction is unknown.
        """
        stopped_at = _utc(stopped_at, "stopped_at")
        where = ((TransactionRow.charge_point_id == cp_id)
                 & (TransactionRow.ocpp_tx_id == ocpp_tx_id))
        with self._write() as s:
            s.execute(update(TransactionRow).where(where, TransactionRow.stopped_at.is_(None))
                      .values(stopped_at=stopped_at, meter_stop_wh=float(meter_stop_wh),
                              stop_reason=reason))
            row = s.scalar(select(TransactionRow).where(where))
            return None if row is None else _tx_record(row)

    def set_needs(self, cp_id: str, ocpp_tx_id: str, *, vehicle_id: str | None = None,
                  departure_at: datetime | None = None, target_soc: float | None = None,
                  energy_needed_kwh: float | None = None, source: str) -> None:
        """Associate a transaction with a vehicle and its needs; ``None`` fields stay unchanged.

        Parameters
        ----------
        vehicle_id : str, optional
            Scenario vehicle id.
        departure_at : datetime, optional
            Expected departure (tz-aware).
        target_soc : float, optional
            SOC wanted at departure [0–1].
        energy_needed_kwh : float, optional
            Energy still needed [kWh] (2.x NotifyEVChargingNeeds energyAmount is in Wh: ÷ 1000).
        source : str
            Who said so: ``"scenario"``, ``"NotifyEVChargingNeeds"``, ``"dispatcher"``, …

        Raises
        ------
        ValueError
            On ``target_soc`` outside [0, 1] or negative energy.
        LookupError
            If the transaction is unknown.
        """
        if target_soc is not None and not 0.0 <= target_soc <= 1.0:
            raise ValueError(f"target_soc {target_soc!r} must be a fraction in [0, 1]")
        if energy_needed_kwh is not None and not energy_needed_kwh >= 0.0:
            raise ValueError(f"energy_needed_kwh {energy_needed_kwh!r} must be ≥ 0 kWh")
        values: dict[str, Any] = {"needs_source": source}
        for name, value in (("vehicle_id", vehicle_id), ("target_soc", target_soc),
                            ("energy_needed_kwh", energy_needed_kwh)):
            if value is not None:
                values[name] = value
        if departure_at is not None:
            values["departure_at"] = _utc(departure_at, "departure_at")
        with self._write() as s:
            done = s.execute(update(TransactionRow).where(
                TransactionRow.charge_point_id == cp_id, TransactionRow.ocpp_tx_id == ocpp_tx_id,
            ).values(**values).returning(TransactionRow.id)).first()
        if done is None:
            raise LookupError(f"no transaction {ocpp_tx_id!r} on charge point {cp_id!r}")

    # -- meter values --------------------------------------------------------------------------

    def add_meter_values(self, cp_id: str, samples: Sequence[MeterSample]) -> int:
        """Store sampled values; samples already stored (same station, EVSE, time, measurand,
        phase) are skipped, so a retried MeterValues message adds nothing.

        Returns
        -------
        int
            Rows inserted.

        Raises
        ------
        LookupError
            If ``cp_id`` is not registered.
        """
        rows = [{"charge_point_id": cp_id, "evse_id": m.evse_id, "ocpp_tx_id": m.ocpp_tx_id,
                 "timestamp": _utc(m.timestamp), "measurand": m.measurand,
                 "phase": m.phase or "", "value": float(m.value), "unit": m.unit,
                 "context": m.context} for m in samples]
        if not rows:
            return 0
        # one compiled statement, sent by SQLAlchemy's "insertmanyvalues" in multi-row batches;
        # RETURNING yields only the rows actually inserted
        stmt = (self._insert(MeterValueRow.__table__).on_conflict_do_nothing()
                .returning(MeterValueRow.id))
        try:
            with self._write() as s:
                return len(s.connection().execute(stmt, rows).all())
        except IntegrityError:
            raise _unknown_cp(cp_id) from None

    def meter_values(self, cp_id: str | None = None, *, since: datetime | None = None,
                     measurand: str | None = None) -> pd.DataFrame:
        """Stored samples, oldest first, optionally for one station, from ``since`` (inclusive),
        for one measurand.

        Returns
        -------
        pandas.DataFrame
            Columns :data:`METER_COLUMNS`; ``timestamp`` is tz-aware UTC, ``phase`` is missing
            (``None``/NaN) for phase-less samples.
        """
        m = MeterValueRow
        query = select(m.timestamp, m.charge_point_id, m.evse_id, m.ocpp_tx_id, m.measurand,
                       m.phase, m.value, m.unit, m.context)
        if cp_id is not None:
            query = query.where(m.charge_point_id == cp_id)
        if since is not None:
            query = query.where(m.timestamp >= _utc(since, "since"))
        if measurand is not None:
            query = query.where(m.measurand == measurand)
        query = query.order_by(m.timestamp, m.charge_point_id, m.evse_id, m.measurand, m.phase)
        with self._sessions() as s:
            rows = s.execute(query).all()
        df = pd.DataFrame.from_records([tuple(r) for r in rows], columns=list(METER_COLUMNS))
        df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
        df["evse_id"] = df["evse_id"].astype("int64")
        df["value"] = df["value"].astype("float64")
        df["phase"] = df["phase"].where(df["phase"] != "", None)
        return df

    # -- profiles ------------------------------------------------------------------------------

    def record_profile_sent(self, cp_id: str, *, evse_id: int, ocpp_tx_id: str | None,
                            purpose: str, profile: dict[str, Any], sent_at: datetime) -> int:
        """Store a charging profile as sent (wire-format dict); returns its row id for
        :meth:`record_profile_answer`.

        Raises
        ------
        LookupError
            If ``cp_id`` is not registered.
        """
        row = ProfileRow(charge_point_id=cp_id, evse_id=evse_id, ocpp_tx_id=ocpp_tx_id,
                         purpose=purpose, profile=profile, sent_at=_utc(sent_at, "sent_at"))
        try:
            with self._write() as s:
                s.add(row)
                s.flush()
                return row.id
        except IntegrityError:
            raise _unknown_cp(cp_id) from None

    def record_profile_answer(self, row_id: int, *, status: str, answered_at: datetime,
                              composite: dict[str, Any] | None = None) -> None:
        """Store the station's answer to profile ``row_id`` (``Accepted``, ``Rejected``, …,
        or e.g. ``"Timeout"``) and, if asked for, its composite schedule.

        Raises
        ------
        LookupError
            If there is no profile ``row_id``.
        """
        values: dict[str, Any] = {"status": status, "answered_at": _utc(answered_at, "answered_at")}
        if composite is not None:
            values["composite"] = composite
        with self._write() as s:
            done = s.execute(update(ProfileRow).where(ProfileRow.id == row_id)
                             .values(**values).returning(ProfileRow.id)).first()
        if done is None:
            raise LookupError(f"no profile row {row_id}")

    def profiles(self, cp_id: str | None = None) -> list[dict[str, Any]]:
        """Profiles sent (optionally to one station), oldest first: dicts with ``id, cp_id,
        evse_id, ocpp_tx_id, purpose, profile, sent_at, status, answered_at, composite``."""
        query = select(ProfileRow).order_by(ProfileRow.id)
        if cp_id is not None:
            query = query.where(ProfileRow.charge_point_id == cp_id)
        with self._sessions() as s:
            return [_profile_dict(r) for r in s.scalars(query)]

    # -- peaks ---------------------------------------------------------------------------------

    def update_peak(self, label: str, kw: float, *, at: datetime) -> float:
        """Raise the peak stored under ``label`` to ``kw`` if higher; peaks never fall.

        Parameters
        ----------
        label : str
            What the peak is of, e.g. a billing month ``"2025-03"`` or ``"2025-03/on-peak"``.
        kw : float
            A metered interval-average site load [kW].
        at : datetime
            When it was metered (kept with the peak when it rises).

        Returns
        -------
        float
            The stored peak, ``max(previous, kw)`` [kW].
        """
        kw = float(kw)
        if math.isnan(kw):
            raise ValueError(f"peak {label!r}: kw is NaN")
        stmt = self._insert(PeakRow).values(label=label, kw=kw, set_at=_utc(at, "at"))
        rises = stmt.excluded.kw > PeakRow.kw
        stmt = stmt.on_conflict_do_update(
            index_elements=[PeakRow.label],
            set_={"kw": case((rises, stmt.excluded.kw), else_=PeakRow.kw),
                  "set_at": case((rises, stmt.excluded.set_at), else_=PeakRow.set_at)},
        ).returning(PeakRow.kw)
        with self._write() as s:
            return float(s.execute(stmt).scalar_one())

    def peaks(self) -> dict[str, float]:
        """Every stored peak by label [kW]."""
        with self._sessions() as s:
            return {label: kw for label, kw in s.execute(
                select(PeakRow.label, PeakRow.kw).order_by(PeakRow.label))}

    # -- security log --------------------------------------------------------------------------

    def log_security_event(self, *, cp_id: str | None, remote: str | None, kind: str,
                           detail: str, at: datetime) -> None:
        """Log a rejected or suspicious event (``kind`` e.g. ``"unknown_identity"``,
        ``"bad_password"``, ``"throttled"``, ``"bad_subprotocol"``, ``"invalid_message"``).

        The identity and remote address come from unauthenticated peers: they are stored cut
        to a bounded length. Never pass a password in ``detail``.
        """
        with self._write() as s:
            s.add(SecurityEventRow(
                occurred_at=_utc(at, "at"),
                charge_point_id=None if cp_id is None else _clip(cp_id, "cp_id"),
                remote=None if remote is None else _clip(remote, "remote"),
                kind=_clip(kind, "kind"), detail=_clip(detail, "detail")))

    def security_events(self, *, since: datetime | None = None) -> list[dict[str, Any]]:
        """Security events, oldest first, from ``since`` (inclusive): dicts with ``id, at,
        cp_id, remote, kind, detail``."""
        query = select(SecurityEventRow).order_by(SecurityEventRow.occurred_at,
                                                  SecurityEventRow.id)
        if since is not None:
            query = query.where(SecurityEventRow.occurred_at >= _utc(since, "since"))
        with self._sessions() as s:
            return [{"id": r.id, "at": r.occurred_at, "cp_id": r.charge_point_id,
                     "remote": r.remote, "kind": r.kind, "detail": r.detail}
                    for r in s.scalars(query)]
