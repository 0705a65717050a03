"""Default templates: every message in en, uk, ru and ro (existing ones are kept).

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import insert

from services.notifications.domain.default_templates import DEFAULT_TEMPLATES

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEEDED_BY = "migration:0003"

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
    rows = [
        {
            "event_type": event_type,
            "language": language,
            "subject": template.subject,
            "body": template.body,
            "updated_at": now,
            "updated_by": SEEDED_BY,
        }
        for (event_type, language), template in DEFAULT_TEMPLATES.items()
    ]
    op.execute(insert(templates).values(rows).on_conflict_do_nothing())


def downgrade() -> None:
    op.execute(templates.delete().where(templates.c.updated_by == SEEDED_BY))
