"""Initial schema: charge points, connectors, transactions with needs, meter values, profiles,
peaks, security events.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Hand-written to match ``fleetcharge.ops.store``'s models exactly (a test compares them with
Alembic's ``compare_metadata`` on SQLite and PostgreSQL). Timestamps are ``timestamptz`` holding
UTC; SQLite stores the UTC wall time.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_CP_ID = sa.String(48)


def _cp_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["charge_point_id"], ["charge_points.id"],
                                   name=f"fk_{table}_charge_point_id_charge_points")


def upgrade() -> None:
    op.create_table(
        "charge_points",
        sa.Column("id", _CP_ID, nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("registered_at", _TS, nullable=False),
        sa.Column("ocpp_version", sa.String(8), nullable=True),
        sa.Column("vendor", sa.String(50), nullable=True),
        sa.Column("model", sa.String(50), nullable=True),
        sa.Column("firmware", sa.String(50), nullable=True),
        sa.Column("boot_at", _TS, nullable=True),
        sa.Column("last_seen_at", _TS, nullable=True),
        sa.Column("rate_units", sa.String(8), nullable=True),
        sa.Column("max_periods", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_charge_points"),
    )
    op.create_table(
        "connectors",
        sa.Column("charge_point_id", _CP_ID, nullable=False),
        sa.Column("evse_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("connector_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error_code", sa.String(50), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        _cp_fk("connectors"),
        sa.PrimaryKeyConstraint("charge_point_id", "evse_id", "connector_id",
                                name="pk_connectors"),
    )
    op.create_table(
        "transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charge_point_id", _CP_ID, nullable=False),
        sa.Column("ocpp_tx_id", sa.String(36), nullable=True),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("id_tag", sa.String(255), nullable=True),
        sa.Column("vehicle_id", sa.String(64), nullable=True),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("stopped_at", _TS, nullable=True),
        sa.Column("meter_start_wh", sa.Double(), nullable=False),
        sa.Column("meter_stop_wh", sa.Double(), nullable=True),
        sa.Column("stop_reason", sa.String(32), nullable=True),
        sa.Column("departure_at", _TS, nullable=True),
        sa.Column("target_soc", sa.Double(), nullable=True),
        sa.Column("energy_needed_kwh", sa.Double(), nullable=True),
        sa.Column("needs_source", sa.String(40), nullable=True),
        _cp_fk("transactions"),
        sa.PrimaryKeyConstraint("id", name="pk_transactions"),
        sa.UniqueConstraint("charge_point_id", "ocpp_tx_id", name="uq_transactions_ocpp_tx_id"),
        sa.UniqueConstraint("charge_point_id", "evse_id", "connector_id", "started_at",
                            name="uq_transactions_start"),
    )
    op.create_table(
        "meter_values",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("charge_point_id", _CP_ID, nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("ocpp_tx_id", sa.String(36), nullable=True),
        sa.Column("timestamp", _TS, nullable=False),
        sa.Column("measurand", sa.String(64), nullable=False),
        sa.Column("phase", sa.String(8), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("unit", sa.String(20), nullable=False),
        sa.Column("context", sa.String(32), nullable=True),
        _cp_fk("meter_values"),
        sa.PrimaryKeyConstraint("id", name="pk_meter_values"),
        sa.UniqueConstraint("charge_point_id", "evse_id", "timestamp", "measurand", "phase",
                            name="uq_meter_values_sample"),
    )
    op.create_index("ix_meter_values_timestamp", "meter_values", ["timestamp"])
    op.create_table(
        "profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charge_point_id", _CP_ID, nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("ocpp_tx_id", sa.String(36), nullable=True),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("sent_at", _TS, nullable=False),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("answered_at", _TS, nullable=True),
        sa.Column("composite", sa.JSON(none_as_null=True), nullable=True),
        _cp_fk("profiles"),
        sa.PrimaryKeyConstraint("id", name="pk_profiles"),
    )
    op.create_table(
        "peaks",
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("kw", sa.Double(), nullable=False),
        sa.Column("set_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("label", name="pk_peaks"),
    )
    op.create_table(
        "security_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", _TS, nullable=False),
        sa.Column("charge_point_id", sa.String(200), nullable=True),
        sa.Column("remote", sa.String(100), nullable=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_security_events"),
    )
    op.create_index("ix_security_events_occurred_at", "security_events", ["occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_security_events_occurred_at", table_name="security_events")
    op.drop_table("security_events")
    op.drop_table("peaks")
    op.drop_table("profiles")
    op.drop_index("ix_meter_values_timestamp", table_name="meter_values")
    op.drop_table("meter_values")
    op.drop_table("transactions")
    op.drop_table("connectors")
    op.drop_table("charge_points")
