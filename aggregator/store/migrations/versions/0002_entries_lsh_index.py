"""entries.lsh: each entry"s dedupe index (fingerprint weight, LSH keys), computed
at normalize time so dedupe need not re-read texts. NULL for older rows: dedupe
falls back to the text.

Revision ID: 0002
Revises: 0001
Created: 2026-11-22 05:37:58.815606
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lsh", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_column("lsh")
