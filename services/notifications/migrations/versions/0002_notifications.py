"""Contacts, notifications, templates, staff directory and rate buckets.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
STATUSES = "('queued', 'sending', 'delivered', 'failed', 'skipped', 'dead')"
CHANNELS = "('sms', 'email', 'webhook')"


def upgrade() -> None:
    op.create_table(
        "notification_contact",
        sa.Column("household_id", sa.Uuid, primary_key=True),
        sa.Column("case_number", sa.Text, nullable=False),
        sa.Column("site_id", sa.Text, nullable=False),
        sa.Column("phone", sa.Text, nullable=True),
        sa.Column("language", sa.Text, nullable=False),
        sa.Column("contact_consent", sa.Boolean, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "notification_household",
        sa.Column("household_id", sa.Uuid, primary_key=True),
        sa.Column("site_id", sa.Text, nullable=False),
        sa.Column("case_number", sa.Text, nullable=False),
        sa.Column("contact_consent", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "notification_erasure",
        sa.Column("household_id", sa.Uuid, primary_key=True),
        sa.Column("erased_at", TZ, nullable=False),
    )
    op.create_table(
        "notification",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("household_id", sa.Uuid, nullable=True),
        sa.Column("site_id", sa.Text, nullable=True),
        sa.Column("audience", sa.Text, nullable=False),
        sa.Column("recipient_key", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=True),
        sa.Column("recipient_masked", sa.Text, nullable=True),
        sa.Column("language", sa.Text, nullable=True),
        sa.Column("context", postgresql.JSONB, nullable=False),
        sa.Column("subject", sa.Text, nullable=True),
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("encoding", sa.Text, nullable=True),
        sa.Column("segments", sa.Integer, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("skip_reason", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("contact_deadline", TZ, nullable=True),
        sa.Column("lease_until", TZ, nullable=True),
        sa.Column("lease_token", sa.Uuid, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.UniqueConstraint("event_id", "recipient_key", "channel", name="notification_once"),
        sa.CheckConstraint(f"status IN {STATUSES}", name="notification_status_known"),
        sa.CheckConstraint(f"channel IN {CHANNELS}", name="notification_channel_known"),
        sa.CheckConstraint(
            "audience IN ('beneficiary', 'staff')", name="notification_audience_known"
        ),
        sa.CheckConstraint(
            "(status = 'skipped') = (skip_reason IS NOT NULL)", name="notification_skip_reason"
        ),
        sa.CheckConstraint(
            "status <> 'sending' OR (lease_until IS NOT NULL AND lease_token IS NOT NULL)",
            name="notification_sending_has_lease",
        ),
        sa.CheckConstraint(
            "audience = 'beneficiary' OR address IS NOT NULL", name="notification_staff_address"
        ),
        sa.CheckConstraint("attempts >= 0", name="notification_attempts_positive"),
        sa.CheckConstraint("segments IS NULL OR segments >= 1", name="notification_segments"),
    )
    # What the sender scans: due rows, and sending rows whose lease may have run out.
    op.create_index(
        "notification_due",
        "notification",
        ["channel", "next_attempt_at"],
        postgresql_where=sa.text("status IN ('queued', 'failed')"),
    )
    op.create_index(
        "notification_leased",
        "notification",
        ["channel", "lease_until"],
        postgresql_where=sa.text("status = 'sending'"),
    )
    op.create_index("notification_household_id", "notification", ["household_id", "id"])
    op.create_index("notification_status_id", "notification", ["status", "id"])

    op.create_table(
        "notification_template",
        sa.Column("event_type", sa.Text, primary_key=True),
        sa.Column("language", sa.Text, primary_key=True),
        sa.Column("subject", sa.Text, nullable=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.CheckConstraint("language ~ '^[a-z]{2}$'", name="notification_template_language"),
    )
    op.create_table(
        "notification_staff_recipient",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("site_id", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("language", sa.Text, nullable=False),
        sa.Column("provider_id", sa.Uuid, nullable=True),
        sa.Column("staff_sub", sa.Text, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.CheckConstraint(
            "channel IN ('email', 'webhook')", name="notification_staff_recipient_channel"
        ),
    )
    op.execute(
        "ALTER TABLE notification_staff_recipient ADD CONSTRAINT notification_staff_recipient_once "
        "UNIQUE NULLS NOT DISTINCT (role, site_id, channel, address, provider_id, staff_sub)"
    )
    op.create_index(
        "notification_staff_recipient_lookup", "notification_staff_recipient", ["role", "site_id"]
    )
    op.create_table(
        "notification_rate_bucket",
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("refilled_at", TZ, nullable=False),
        sa.CheckConstraint(f"channel IN {CHANNELS}", name="notification_rate_bucket_channel"),
    )


def downgrade() -> None:
    for table in (
        "notification_rate_bucket",
        "notification_staff_recipient",
        "notification_template",
        "notification",
        "notification_erasure",
        "notification_household",
        "notification_contact",
    ):
        op.drop_table(table)
