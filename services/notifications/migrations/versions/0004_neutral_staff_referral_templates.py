"""Staff referral alerts name the service through a translation table, so a sensitive
referral (given to templates as "protection") reads as any protection referral: the seeded
ReferralOverdue and ReferralEscalated templates nobody edited take the new defaults.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from services.notifications.domain.default_templates import DEFAULT_TEMPLATES

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEEDED_BY, UPDATED_BY = "migration:0003", "migration:0004"
EVENT_TYPES = ("ReferralOverdue", "ReferralEscalated")

templates = sa.table(
    "notification_template",
    sa.column("event_type", sa.Text),
    sa.column("language", sa.Text),
    sa.column("subject", sa.Text),
    sa.column("body", sa.Text),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    sa.column("updated_by", sa.Text),
)


def upgrade() -> None:
    now = datetime.now(UTC)
    for (event_type, language), template in DEFAULT_TEMPLATES.items():
        if event_type not in EVENT_TYPES:
            continue
        op.execute(
            templates.update()
            .where(
                templates.c.event_type == event_type,
                templates.c.language == language,
                templates.c.updated_by == SEEDED_BY,  # an admin's own text stays
            )
            .values(
                subject=template.subject,
                body=template.body,
                updated_at=now,
                updated_by=UPDATED_BY,
            )
        )


def downgrade() -> None:
    # The texts stay (they are valid under 0003 too); they count as seeded again, so that
    # 0003's downgrade removes them with the others.
    op.execute(
        templates.update().where(templates.c.updated_by == UPDATED_BY).values(updated_by=SEEDED_BY)
    )
