"""The store's Alembic migrations on SQLite and PostgreSQL: they build exactly the models'
schema, run once, walk down and up again, and refuse a database from a newer fleetcharge."""

from __future__ import annotations

import itertools
import re

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Integer, MetaData, event, inspect, text

from fleetcharge.errors import InputError
from fleetcharge.ops.store import MIGRATIONS_DIR, Base, Store, alembic_config

TABLES = {"charge_points", "connectors", "transactions", "meter_values", "profiles", "peaks",
          "security_events"}


def head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


def schema_diffs(store: Store, metadata: MetaData = Base.metadata) -> list:
    with store._engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, metadata)


def version(store: Store) -> list[str]:
    with store._engine.connect() as conn:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()


@pytest.fixture
def store(db_url: str):
    s = Store.open(db_url)
    yield s
    s.close()


def test_revisions_form_one_chain_from_base_to_head():
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    assert script.get_heads() == [head_revision()]
    chain = list(script.walk_revisions())  # head → base
    assert chain[-1].down_revision is None and chain[-1].revision == "0001"
    assert all(a.down_revision == b.revision for a, b in itertools.pairwise(chain))


def test_open_creates_everything_and_upgrade_again_is_a_no_op(store: Store, db_url: str):
    assert set(inspect(store._engine).get_table_names()) == TABLES | {"alembic_version"}
    assert version(store) == [head_revision()]
    store.add_charge_point("C01", "a long enough password")

    statements: list[str] = []
    event.listen(store._engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *args: statements.append(statement))
    store.upgrade()
    store.upgrade()
    assert statements, "the upgrade did not look at the database"
    assert [s for s in statements if re.match(r"\s*(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE)",
                                              s, re.IGNORECASE)] == []
    assert version(store) == [head_revision()]

    reopened = Store.open(db_url)  # a restart of fleetcharge on the same database
    try:
        assert reopened.verify_password("C01", "a long enough password")
    finally:
        reopened.close()


def test_migration_schema_equals_the_models(store: Store):
    assert schema_diffs(store) == []
    # the comparison does look at the database: a model change shows up as a diff
    changed = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["peaks"].c.kw.type = Integer()
    assert [d[0][0] if isinstance(d, list) else d[0] for d in schema_diffs(store, changed)] == [
        "modify_type"]
    assert {d[0] for d in schema_diffs(store, MetaData())} == {"remove_table", "remove_index"}


def test_an_older_database_upgrades(store: Store):
    with store._engine.begin() as conn:  # the database as the first fleetcharge found it
        command.downgrade(alembic_config(conn), "base")
    assert set(inspect(store._engine).get_table_names()) == {"alembic_version"}
    assert version(store) == []
    store.upgrade()
    assert set(inspect(store._engine).get_table_names()) == TABLES | {"alembic_version"}
    assert version(store) == [head_revision()] and schema_diffs(store) == []


def test_a_database_from_a_newer_fleetcharge_is_refused(store: Store, db_url: str):
    with store._engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(InputError, match=r"has a schema this fleetcharge does not know .*"
                       "9999_future.*upgrade fleetcharge"):
        Store.open(db_url)


def test_migrations_run_only_through_the_store():
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with pytest.raises(RuntimeError, match=r"run through fleetcharge.ops.store \(Store.open"):
        command.upgrade(cfg, "head")
