"""Alembic's environment: runs on the connection `aggregator.store.migrations` hands over.

Never run with an alembic.ini: `aggregator.store.migrations.alembic_config()` builds
the configuration in code and passes an open connection (already locked
against a second process) in `config.attributes["connection"]`.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import TypeDecorator

from aggregator.store.migrations import include_object
from aggregator.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "aggregator's migrations run through aggregator.store.migrations, with a connection"
    )


def render_item(type_: str, obj: Any, autogen: AutogenContext) -> str | Literal[False]:
    """Render the schema's own column types (UTCDateTime) as what they store, so a
    revision never imports the store: it must keep working when the store changes."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"
    return False


context.configure(
    connection=connection,
    target_metadata=metadata,
    include_object=include_object,
    # SQLite cannot ALTER most things: batch operations copy the table there,
    # and are plain ALTERs on PostgreSQL.
    render_as_batch=True,
    compare_type=True,
    render_item=render_item,
)


def _run(**_kw: Any) -> None:
    with context.begin_transaction():
        context.run_migrations()


_run()
