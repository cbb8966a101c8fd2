"""Alembic environment of the fleetcharge store.

Migrations run online only, on the connection that :func:`fleetcharge.ops.store.alembic_config`
puts into ``config.attributes`` (:meth:`Store.open` / :meth:`Store.upgrade`); there is no
``alembic.ini``. SQLite gets batch mode (copy-and-move) so later migrations can alter tables.
"""

from __future__ import annotations

from alembic import context

from fleetcharge.ops.store import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the fleetcharge migrations run through fleetcharge.ops.store "
                       "(Store.open(url), or alembic_config(connection) for Alembic commands)")

context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
