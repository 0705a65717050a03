"""Households merged into one are found by an index, so an erasure reaches them cheaply.

Erasing a household also erases every household merged into it (recursively); each step of
that look-up is ``merged_into_id = ?``.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "household_merged_into",
        "household",
        ["merged_into_id"],
        postgresql_where=sa.text("merged_into_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("household_merged_into", table_name="household")
