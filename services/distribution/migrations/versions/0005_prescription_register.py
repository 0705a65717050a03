"""The prescription register: references a clinic recorded for a household (issue #15 item 16).

A medication line's ``prescription_reference`` must be one of the household's own.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prescription",
        sa.Column("reference", sa.Text, primary_key=True),
        sa.Column("household_id", sa.Uuid, nullable=False),
        sa.Column("site_id", sa.Text, nullable=False),
        sa.Column("recorded_by", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("prescription_household", "prescription", ["household_id"])


def downgrade() -> None:
    op.drop_table("prescription")
