"""dedupe_queue: the entries dedupe must look at, a narrow table of their own
instead of the flag entries.dedupe_dirty (setting or clearing the flag rewrote
every wide entry row). Entries flagged dirty are queued, then the flag and its
index go.

Revision ID: 0003
Revises: 0002
Created: 2026-11-22 07:05:41.281245
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The tables as this revision sees them (never the store's schema, which moves on).
_entries = sa.table("entries", sa.column("id", sa.Integer), sa.column("dedupe_dirty", sa.Boolean))
_queue = sa.table("dedupe_queue", sa.column("entry_id", sa.Integer))


def upgrade() -> None:
    op.create_table(
        "dedupe_queue",
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["entries.id"]),
        sa.PrimaryKeyConstraint("entry_id"),
    )
    op.execute(
        _queue.insert().from_select(
            ["entry_id"], sa.select(_entries.c.id).where(_entries.c.dedupe_dirty.is_(sa.true()))
        )
    )
    # SQLite: batch mode copies the table without the column (aggregator.store.migrations
    # turns foreign keys off meanwhile); PostgreSQL: plain DROP INDEX / DROP COLUMN.
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index("ix_entries_dedupe_dirty")
        batch_op.drop_column("dedupe_dirty")


def downgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dedupe_dirty", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute(
        _entries.update()
        .where(_entries.c.id.in_(sa.select(_queue.c.entry_id)))
        .values(dedupe_dirty=True)
    )
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.alter_column("dedupe_dirty", existing_type=sa.Boolean(), server_default=None)
        batch_op.create_index("ix_entries_dedupe_dirty", ["dedupe_dirty"], unique=False)
    op.drop_table("dedupe_queue")
