"""Delivery notes received per warehouse, so a receipt is never recorded twice.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock_receipt",
        sa.Column("warehouse_id", sa.Uuid, sa.ForeignKey("warehouse.id"), primary_key=True),
        sa.Column("reference", sa.Text, primary_key=True),
        sa.Column("recorded_by", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stock_receipt")
