"""The household read model keeps only what entitlements use (issue #15 item 10).

No entitlement rule reads members (sex, age band, head of household), so the column goes. Of
the vulnerabilities only those a policy rule names (``requires_vulnerability``) are kept; before
this revision no policy file could name one, so every stored vulnerability (sensitive ones such
as survivor of trafficking or of GBV included) is stripped. A policy that names one later gets
it from each household's next profile event.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE household_view SET vulnerabilities = '{}' WHERE vulnerabilities <> '{}'")
    op.drop_column("household_view", "members")


def downgrade() -> None:
    # What was stripped is not brought back: the next profile events fill members again.
    op.add_column(
        "household_view",
        sa.Column(
            "members", postgresql.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")
        ),
    )
