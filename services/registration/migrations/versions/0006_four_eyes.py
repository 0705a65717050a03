"""Four eyes on duplicate reviews: who registered a household, and whose change opened a review.

A review may not be decided by the person who registered either of its households (or whose
new member sent it to review): ``household.registered_by`` and ``duplicate_review.requested_by``
hold that person's token subject. Existing rows keep NULL (unknown: nobody is refused).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("household", sa.Column("registered_by", sa.Text(), nullable=True))
    op.add_column("duplicate_review", sa.Column("requested_by", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("duplicate_review", "requested_by")
    op.drop_column("household", "registered_by")
