"""The operations store on SQLite and PostgreSQL (``db_url``): every write durable and
idempotent, times tz-aware UTC, safe from worker threads; plus the password hashes."""

from __future__ import annotations

import base64
import hashlib
import itertools
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import select, text

from fleetcharge.errors import InputError
from fleetcharge.ops import passwords
from fleetcharge.ops.store import METER_COLUMNS, MeterSample, PeakRow, Store

T0 = pd.Timestamp("2025-03-03 17:30", tz="America/Los_Angeles")
PASSWORD = "correct-horse-battery-staple"
ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"


@pytest.fixture
def store(db_url: str):
    s = Store.open(db_url)
    yield s
    s.close()


@pytest.fixture
def cp(store: Store) -> str:
    store.add_charge_point("C01", PASSWORD)
    return "C01"


def minutes(m: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=m)


# -- passwords ---------------------------------------------------------------------------------


def test_password_hash_round_trip_matches_scrypt_reference():
    encoded = passwords.hash_password(PASSWORD)
    scheme, n, r, p, salt_b64, hash_b64 = encoded.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**14, 8, 1)
    salt, digest = base64.b64decode(salt_b64), base64.b64decode(hash_b64)
    assert len(salt) == 16 and len(digest) == 32
    # independent reference: the digest is scrypt(password, salt) as RFC 7914 defines it
    assert digest == hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    assert PASSWORD not in encoded
    assert passwords.verify_password(PASSWORD, encoded)
    assert not passwords.verify_password(PASSWORD + "x", encoded)
    assert not passwords.verify_password("", encoded)
    assert passwords.hash_password(PASSWORD) != encoded  # a fresh salt every time


def test_password_hash_refuses_empty_and_corrupt_hashes():
    with pytest.raises(ValueError, match="empty"):
        passwords.hash_password("")
    with pytest.raises(ValueError, match="not an scrypt password hash"):
        passwords.verify_password(PASSWORD, "md5$abc")
    with pytest.raises(ValueError, match="corrupt scrypt password hash"):
        passwords.verify_password(PASSWORD, "scrypt$16384$8$1$not base64!$AAAA")


# -- charge points -----------------------------------------------------------------------------


def test_add_verify_and_replace_charge_points_and_refuse_bad_input(store: Store):
    store.add_charge_point("C01", PASSWORD)
    assert store.verify_password("C01", PASSWORD)
    assert not store.verify_password("C01", "wrong password")
    assert not store.verify_password("C99", PASSWORD)  # unknown identity
    first = store.charge_point("C01")
    assert first is not None and first.registered_at.tzinfo is not None
    with pytest.raises(InputError, match="'C01' is already registered.*--replace"):
        store.add_charge_point("C01", "another password")
    assert store.verify_password("C01", PASSWORD)  # the refused add changed nothing

    store.add_charge_point("C01", "a new password", replace=True)
    assert store.verify_password("C01", "a new password")
    assert not store.verify_password("C01", PASSWORD)
    assert store.charge_point("C01") == first  # same registration, only the hash changed
    store.add_charge_point("C02", PASSWORD, replace=True)  # replace also registers a new id
    assert [c.id for c in store.charge_points()] == ["C01", "C02"]
    assert store.charge_point("nope") is None

    with store._sessions() as s:  # only salted hashes are stored
        hashes = s.execute(text("SELECT password_hash FROM charge_points")).scalars().all()
    assert len(hashes) == 2 and all(h.startswith("scrypt$") for h in hashes)
    assert not any(PASSWORD in h or "a new password" in h for h in hashes)

    for bad_id, pattern in [("", "not a valid OCPP identity"),
                            ("C:01", "not a valid OCPP identity"),  # ':' ends a Basic user-id
                            ("C 01", "not a valid OCPP identity"),
                            ("x" * 49, "1 to 48 characters")]:
        with pytest.raises(InputError, match=pattern):
            store.add_charge_point(bad_id, PASSWORD)
    with pytest.raises(InputError, match="password is empty"):
        store.add_charge_point("C03", "")
    assert [c.id for c in store.charge_points()] == ["C01", "C02"]


def test_boot_seen_capabilities_and_connector_statuses(store: Store, cp: str):
    store.record_boot(cp, ocpp_version="2.0.1", vendor="Acme", model="DC-50", firmware="1.2",
                      at=minutes(0))
    store.record_seen(cp, minutes(10))
    store.record_seen(cp, minutes(5))  # a late report never moves last-seen back
    store.set_capabilities(cp, rate_units="W,A", max_periods=24)
    rec = store.charge_point(cp)
    assert rec is not None
    assert (rec.ocpp_version, rec.vendor, rec.model, rec.firmware) == ("2.0.1", "Acme", "DC-50",
                                                                        "1.2")
    assert rec.boot_at == minutes(0) and rec.last_seen_at == minutes(10)
    assert (rec.rate_units, rec.max_periods) == ("A,W", 24)
    store.set_capabilities(cp, rate_units="A", max_periods=None)
    assert store.charge_point(cp).rate_units == "A"  # type: ignore[union-attr]

    with pytest.raises(ValueError, match="rate_units 'kW'"):
        store.set_capabilities(cp, rate_units="kW", max_periods=24)
    with pytest.raises(ValueError, match="max_periods 0"):
        store.set_capabilities(cp, rate_units="W", max_periods=0)
    for call in (lambda: store.record_seen("ghost", minutes(1)),
                 lambda: store.record_boot("ghost", ocpp_version="1.6", vendor="v", model="m",
                                           at=minutes(1)),
                 lambda: store.set_capabilities("ghost", rate_units="W", max_periods=5)):
        with pytest.raises(LookupError, match="'ghost' is not registered"):
            call()

    # connectors keep their latest status
    store.set_connector_status(cp, 1, 1, "Available", at=minutes(0))
    store.set_connector_status(cp, 1, 1, "Faulted", "GroundFailure", at=minutes(3))
    store.set_connector_status(cp, 2, 1, "Occupied", at=minutes(4))
    assert store.connector_statuses() == [
        {"cp": cp, "evse": 1, "connector": 1, "status": "Faulted", "error_code": "GroundFailure",
         "updated_at": minutes(3)},
        {"cp": cp, "evse": 2, "connector": 1, "status": "Occupied", "error_code": None,
         "updated_at": minutes(4)},
    ]
    with pytest.raises(LookupError, match="'ghost' is not registered"):
        store.set_connector_status("ghost", 1, 1, "Available", at=minutes(0))


# -- transactions ------------------------------------------------------------------------------


def test_ocpp16_transactions_get_integer_ids_and_retries_are_idempotent(store: Store, cp: str):
    a = store.start_transaction(cp, evse_id=1, connector_id=1, ocpp_tx_id=None, id_tag="V01",
                                meter_start_wh=1000, started_at=minutes(0))
    b = store.start_transaction(cp, evse_id=2, connector_id=2, ocpp_tx_id=None, id_tag="V02",
                                meter_start_wh=0, started_at=minutes(0))
    assert a.ocpp_tx_id == str(a.id) and b.ocpp_tx_id == str(b.id) and a.id != b.id
    # a StartTransaction retried after a crash: same transaction, nothing new
    again = store.start_transaction(cp, evse_id=1, connector_id=1, ocpp_tx_id=None,
                                    id_tag="V01", meter_start_wh=1000, started_at=minutes(0))
    assert again == a
    assert [t.id for t in store.open_transactions()] == [a.id, b.id]
    assert store.transaction(cp, a.ocpp_tx_id) == a

    stopped = store.stop_transaction(cp, a.ocpp_tx_id, meter_stop_wh=31000,
                                     stopped_at=minutes(90), reason="EVDisconnected")
    assert stopped is not None
    assert (stopped.stopped_at, stopped.meter_stop_wh, stopped.stop_reason) == (
        minutes(90), 31000.0, "EVDisconnected")
    # a retried stop keeps the first one
    assert store.stop_transaction(cp, a.ocpp_tx_id, meter_stop_wh=99999,
                                  stopped_at=minutes(95)) == stopped
    assert store.stop_transaction(cp, "424242", meter_stop_wh=1, stopped_at=minutes(1)) is None
    assert [t.id for t in store.open_transactions()] == [b.id]
    with pytest.raises(LookupError, match="'ghost' is not registered"):
        store.start_transaction("ghost", evse_id=1, connector_id=1, ocpp_tx_id=None,
                                id_tag=None, meter_start_wh=0, started_at=minutes(0))


def test_ocpp2_transactions_keep_the_station_ids(store: Store, cp: str):
    tx_id = "0b5e2a4e-6c1b-4bd4-9d9a-3c1f1d0d3a11"
    t = store.start_transaction(cp, evse_id=1, connector_id=1, ocpp_tx_id=tx_id, id_tag="V01",
                                meter_start_wh=500.5, started_at=minutes(0), vehicle_id="V01")
    assert (t.ocpp_tx_id, t.vehicle_id, t.meter_start_wh) == (tx_id, "V01", 500.5)
    # TransactionEvent Started sent again: the stored transaction, unchanged
    assert store.start_transaction(cp, evse_id=1, connector_id=1, ocpp_tx_id=tx_id,
                                   id_tag="V01", meter_start_wh=777, started_at=minutes(1)) == t
    with pytest.raises(ValueError, match="a transaction other than 'other' already started"):
        store.start_transaction(cp, evse_id=1, connector_id=1, ocpp_tx_id="other", id_tag=None,
                                meter_start_wh=0, started_at=minutes(0))

    store.set_needs(cp, tx_id, departure_at=minutes(600), energy_needed_kwh=42.5,
                    source="NotifyEVChargingNeeds")
    store.set_needs(cp, tx_id, target_soc=0.9, source="dispatcher")  # others left unchanged
    t2 = store.transaction(cp, tx_id)
    assert t2 is not None
    assert (t2.vehicle_id, t2.departure_at, t2.energy_needed_kwh, t2.target_soc,
            t2.needs_source) == ("V01", minutes(600), 42.5, 0.9, "dispatcher")
    with pytest.raises(ValueError, match="target_soc 90 must be a fraction"):
        store.set_needs(cp, tx_id, target_soc=90, source="dispatcher")
    with pytest.raises(ValueError, match="energy_needed_kwh -1"):
        store.set_needs(cp, tx_id, energy_needed_kwh=-1, source="dispatcher")
    with pytest.raises(LookupError, match="no transaction 'nope'"):
        store.set_needs(cp, "nope", target_soc=0.5, source="dispatcher")
    assert store.stop_transaction(cp, tx_id, meter_stop_wh=43000.5,
                                  stopped_at=minutes(300)).meter_stop_wh == 43000.5
    assert store.open_transactions() == []


def _start_from_8_threads(store: Store, cp: str, *, evse_id: int, ocpp_tx_id: str | None):
    barrier = threading.Barrier(8)

    def start(_: int):
        barrier.wait()
        return store.start_transaction(cp, evse_id=evse_id, connector_id=1, ocpp_tx_id=ocpp_tx_id,
                                       id_tag="V01", meter_start_wh=0, started_at=minutes(0))

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(start, range(8)))


def test_concurrent_retries_of_one_start_store_one_transaction(store: Store, cp: str):
    ocpp16 = _start_from_8_threads(store, cp, evse_id=1, ocpp_tx_id=None)
    ocpp2 = _start_from_8_threads(store, cp, evse_id=2, ocpp_tx_id="tx-2")
    assert len({r.id for r in ocpp16}) == 1
    assert len({r.id for r in ocpp2}) == 1
    assert len(store.open_transactions()) == 2


# -- meter values ------------------------------------------------------------------------------


def test_meter_values_count_inserts_and_ignore_duplicates(store: Store, cp: str):
    store.add_charge_point("C02", PASSWORD)
    samples = [MeterSample(minutes(m), 1, "7", ENERGY, 1000.0 * m, "Wh", context="Sample.Periodic")
               for m in range(0, 60, 5)]
    samples += [MeterSample(minutes(m), 1, "7", POWER, 7200.0, "W") for m in range(0, 60, 5)]
    samples += [MeterSample(minutes(0), 1, "7", POWER, 2400.0, "W", phase="L1")]  # other phase
    assert store.add_meter_values(cp, samples) == 25
    assert store.add_meter_values(cp, samples) == 0  # a retried MeterValues message
    assert store.add_meter_values(cp, samples[:3] + samples[:3]) == 0
    late = MeterSample(minutes(60), 1, "7", ENERGY, 60000.0, "Wh")
    assert store.add_meter_values(cp, [late, late]) == 1  # a duplicate inside one message
    assert store.add_meter_values("C02", samples[:2]) == 2  # other station, same times
    assert store.add_meter_values(cp, []) == 0

    df = store.meter_values()
    assert list(df.columns) == list(METER_COLUMNS) and len(df) == 28
    assert str(df["timestamp"].dt.tz) == "UTC"
    assert df["timestamp"].is_monotonic_increasing
    energy = store.meter_values(cp, measurand=ENERGY)
    assert energy["value"].tolist() == [1000.0 * m for m in range(0, 65, 5)]
    assert (energy["timestamp"] == [minutes(m) for m in range(0, 65, 5)]).all()
    assert energy["context"].fillna("-").tolist() == ["Sample.Periodic"] * 12 + ["-"]
    power = store.meter_values(cp, since=minutes(50), measurand=POWER)
    assert power["timestamp"].tolist() == [minutes(50), minutes(55)]
    phases = store.meter_values(cp, measurand=POWER).query("timestamp == @T0")["phase"]
    assert phases.isna().sum() == 1 and phases.dropna().tolist() == ["L1"]
    with pytest.raises(LookupError, match="'ghost' is not registered"):
        store.add_meter_values("ghost", samples[:1])
    empty = store.meter_values("C99")
    assert list(empty.columns) == list(METER_COLUMNS) and empty.empty
    assert str(empty["timestamp"].dt.tz) == "UTC"


def test_meter_values_in_large_batches(store: Store, cp: str):
    samples = [MeterSample(minutes(s / 60), 1, None, POWER, float(s), "W") for s in range(1234)]
    assert store.add_meter_values(cp, samples) == 1234
    assert store.add_meter_values(cp, samples[::-1]) == 0
    assert store.meter_values(cp)["value"].sum() == sum(range(1234))


def test_eight_threads_insert_1600_meter_values(store: Store, cp: str):
    def insert(thread: int) -> int:
        return sum(store.add_meter_values(cp, [MeterSample(
            minutes(i), thread, None, POWER, float(thread * 1000 + i), "W")]) for i in range(200))

    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(insert, range(8)))
    assert counts == [200] * 8
    df = store.meter_values(cp)
    assert len(df) == 1600
    assert df["value"].sum() == sum(t * 1000 + i for t in range(8) for i in range(200))


# -- profiles, peaks, security log -------------------------------------------------------------


def test_profiles_sent_and_answered(store: Store, cp: str):
    profile = {"id": 101, "stackLevel": 1, "chargingProfilePurpose": "TxProfile",
               "chargingProfileKind": "Absolute", "transactionId": "tx-1",
               "chargingSchedule": [{"id": 1, "startSchedule": minutes(0), "chargingRateUnit": "W",
                                     "chargingSchedulePeriod": [
                                         {"startPeriod": 0, "limit": Decimal("7200.0")},
                                         {"startPeriod": 900, "limit": Decimal("3600.5")}]}]}
    row = store.record_profile_sent(cp, evse_id=1, ocpp_tx_id="tx-1", purpose="TxProfile",
                                    profile=profile, sent_at=minutes(1))
    other = store.record_profile_sent(cp, evse_id=0, ocpp_tx_id=None, purpose="TxDefaultProfile",
                                      profile={"id": 1}, sent_at=minutes(0))
    composite = {"evseId": 1, "duration": 3600, "chargingRateUnit": "W",
                 "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7200.0}]}
    store.record_profile_answer(row, status="Accepted", answered_at=minutes(1.01),
                                composite=composite)
    store.record_profile_answer(other, status="Rejected", answered_at=minutes(0.5))

    first, second = store.profiles(cp)
    assert (first["id"], second["id"]) == (row, other)
    assert first["status"] == "Accepted" and first["composite"] == composite
    assert first["answered_at"] == minutes(1.01) and first["sent_at"] == minutes(1)
    periods = first["profile"]["chargingSchedule"][0]["chargingSchedulePeriod"]
    assert [p["limit"] for p in periods] == [7200.0, 3600.5]  # Decimal stored as a number
    start = first["profile"]["chargingSchedule"][0]["startSchedule"]
    assert pd.Timestamp(start) == minutes(0)  # timestamps stored as ISO 8601
    assert (second["status"], second["composite"], second["ocpp_tx_id"]) == ("Rejected", None,
                                                                               None)
    assert store.profiles("C99") == []
    with pytest.raises(LookupError, match="no profile row 999"):
        store.record_profile_answer(999, status="Accepted", answered_at=minutes(2))
    with pytest.raises(LookupError, match="'ghost' is not registered"):
        store.record_profile_sent("ghost", evse_id=0, ocpp_tx_id=None, purpose="TxProfile",
                                  profile={}, sent_at=minutes(0))


def test_peaks_only_rise(store: Store):
    rng = random.Random(5)
    metered = [round(rng.uniform(50, 400), 3) for _ in range(40)]
    returned = [store.update_peak("2025-03", kw, at=minutes(15 * i))
                for i, kw in enumerate(metered)]
    assert returned == list(itertools.accumulate(metered, max))
    store.update_peak("2025-03/on-peak", 120.0, at=minutes(0))
    assert store.peaks() == {"2025-03": max(metered), "2025-03/on-peak": 120.0}
    with store._sessions() as s:  # the time kept is when the peak was reached
        set_at = s.scalar(select(PeakRow.set_at).where(PeakRow.label == "2025-03"))
    assert set_at == minutes(15 * metered.index(max(metered)))
    with pytest.raises(ValueError, match="kw is NaN"):
        store.update_peak("2025-03", float("nan"), at=minutes(0))


def test_security_log(store: Store):
    store.log_security_event(cp_id="C01", remote="127.0.0.1:5000", kind="bad_password",
                             detail="HTTP Basic password did not match", at=minutes(0))
    store.log_security_event(cp_id=None, remote="10.0.0.9:1", kind="bad_subprotocol",
                             detail="offered ['ocpp9']", at=minutes(2))
    store.log_security_event(cp_id="A" * 500, remote=None, kind="unknown_identity",
                             detail="x" * 5000, at=minutes(3))
    events = store.security_events()
    assert [e["kind"] for e in events] == ["bad_password", "bad_subprotocol", "unknown_identity"]
    assert events[0] | {"id": None} == {
        "id": None, "at": minutes(0), "cp_id": "C01", "remote": "127.0.0.1:5000",
        "kind": "bad_password", "detail": "HTTP Basic password did not match"}
    assert len(events[2]["cp_id"]) == 200 and events[2]["cp_id"].endswith("…")
    assert len(events[2]["detail"]) == 2000
    assert [e["kind"] for e in store.security_events(since=minutes(2))] == [
        "bad_subprotocol", "unknown_identity"]


# -- time zones ----------------------------------------------------------------------------------


def test_times_read_back_tz_aware_utc(store: Store, cp: str):
    local = pd.Timestamp("2025-03-09 01:59:59.123456", tz="America/Los_Angeles")  # DST eve
    store.record_boot(cp, ocpp_version="1.6", vendor="v", model="m", at=local)
    t = store.start_transaction(cp, evse_id=1, connector_id=1, ocpp_tx_id=None, id_tag=None,
                                meter_start_wh=0, started_at=local.tz_convert("Asia/Tokyo"))
    store.set_needs(cp, t.ocpp_tx_id, departure_at=local + pd.Timedelta(hours=8),
                    source="scenario")
    rec, tx = store.charge_point(cp), store.transaction(cp, t.ocpp_tx_id)
    for value in (rec.boot_at, rec.last_seen_at, rec.registered_at, tx.started_at,
                  tx.departure_at):
        assert str(value.tz) == "UTC"
    assert rec.boot_at == local and tx.started_at == local  # the same instants, to the µs
    assert tx.departure_at.isoformat() == "2025-03-09T17:59:59.123456+00:00"  # PST→PDT: 8 h
    # the 1.6 retry key matches whatever zone the same instant comes in
    assert store.start_transaction(cp, evse_id=1, connector_id=1, ocpp_tx_id=None, id_tag=None,
                                   meter_start_wh=0, started_at=local.tz_convert("UTC")).id == t.id
    with pytest.raises(ValueError, match="naive; pass a tz-aware timestamp"):
        store.record_seen(cp, pd.Timestamp("2025-03-03 12:00"))


# -- URLs ----------------------------------------------------------------------------------------


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(("url", "pattern"), [
    ("fleetcharge.db", "'fleetcharge.db' is not a database URL; use sqlite:///"),
    ("mysql://u:hunter2@db/fleet", r"mysql://u:\*\*\*@db/fleet: unsupported database 'mysql'"),
    ("postgresql+psycopg2://u@db/fleet", "driver 'psycopg2' is not supported.*psycopg 3"),
    ("sqlite+aiosqlite:///x.db", "driver 'aiosqlite' is not supported"),
    ("sqlite://", "in-memory SQLite database"),
    ("sqlite:///:memory:", "in-memory SQLite database"),
])
def test_bad_urls_say_what_to_use(url, pattern):
    with pytest.raises(InputError, match=pattern):
        Store.open(url)


def test_unreachable_databases_are_named_with_the_password_masked(tmp_path):
    url = f"postgresql://fleet:s3cret-pw@127.0.0.1:{_closed_port()}/depot"
    with pytest.raises(InputError, match=r"cannot connect to the database "
                       r"postgresql\+psycopg://fleet:\*\*\*@127\.0\.0\.1:\d+/depot: .*"
                       "check the URL, that the server is running") as info:
        Store.open(url)
    assert "s3cret-pw" not in str(info.value)
    with pytest.raises(InputError, match="cannot connect.*folder exists and is writable"):
        Store.open(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
