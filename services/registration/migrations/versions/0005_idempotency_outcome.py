"""The Idempotency-Key store keeps what became of a request, not an HTTP status.

A stored outcome is an outcome kind (``created``, ``erased``; shared/idempotency.py), so domain
code never deals in HTTP statuses: the route maps a kind to its status. Existing records are
converted (201 -> created, 410 -> erased).

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
    op.add_column("registration_idempotency", sa.Column("outcome", sa.Text(), nullable=True))
    op.execute(
        "UPDATE registration_idempotency SET outcome = CASE status_code"
        " WHEN 201 THEN 'created' WHEN 410 THEN 'erased' END"
    )
    op.drop_column("registration_idempotency", "status_code")


def downgrade() -> None:
    op.add_column("registration_idempotency", sa.Column("status_code", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE registration_idempotency SET status_code = CASE outcome"
        " WHEN 'created' THEN 201 WHEN 'erased' THEN 410 END"
    )
    op.drop_column("registration_idempotency", "outcome")
