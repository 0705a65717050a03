"""Providers, referrals with their history, consent tasks, the household read model.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SERVICE_TYPES = (
    "medical",
    "legal",
    "psychosocial",
    "protection",
    "counter_trafficking",
    "employment",
    "voluntary_return",
    "shelter",
)
STATUSES = (
    "created",
    "sent",
    "accepted",
    "in_progress",
    "completed",
    "declined",
    "unassigned",
    "cancelled",
    "revoked",
)
OPEN_STATUSES = ("created", "sent", "accepted", "in_progress", "declined", "unassigned")
URGENCIES = ("urgent", "high", "normal")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "provider",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("services", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("regions", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("languages", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("contact", postgresql.JSONB, nullable=False),
        sa.Column("opening_hours", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint("capacity >= 0", name="provider_capacity_not_negative"),
        sa.CheckConstraint(
            f"services <@ ARRAY[{', '.join(repr(s) for s in SERVICE_TYPES)}]::text[]",
            name="provider_services_known",
        ),
        sa.CheckConstraint("cardinality(services) > 0", name="provider_offers_a_service"),
    )
    op.create_index("provider_name_unique", "provider", [sa.text("lower(name)")], unique=True)
    op.create_index("provider_services", "provider", ["services"], postgresql_using="gin")
    op.create_index("provider_regions", "provider", ["regions"], postgresql_using="gin")

    op.create_table(
        "referral",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("household_id", sa.Uuid, nullable=False),
        sa.Column("site_id", sa.Text, nullable=False),
        sa.Column("service_type", sa.Text, nullable=False),
        sa.Column("urgency", sa.Text, nullable=False),
        sa.Column("sensitive", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("provider_id", sa.Uuid, sa.ForeignKey("provider.id"), nullable=True),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("consent_override", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("override_reason", sa.Text, nullable=True),
        sa.Column("caseworker_sub", sa.Text, nullable=True),
        sa.Column(
            "tried_provider_ids",
            postgresql.ARRAY(sa.Uuid),
            nullable=False,
            server_default=sa.text("'{}'::uuid[]"),
        ),
        _timestamp("due_at", nullable=True),
        _timestamp("sent_at", nullable=True),
        _timestamp("overdue_at", nullable=True),
        sa.Column("escalation_tier", sa.SmallInteger, nullable=False, server_default="0"),
        _timestamp("next_escalation_at", nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("closed_at", nullable=True),
        sa.CheckConstraint(_in("service_type", SERVICE_TYPES), name="referral_service_type"),
        sa.CheckConstraint(_in("status", STATUSES), name="referral_status"),
        sa.CheckConstraint(_in("urgency", URGENCIES), name="referral_urgency"),
        sa.CheckConstraint("origin IN ('automatic', 'manual')", name="referral_origin"),
        sa.CheckConstraint("escalation_tier BETWEEN 0 AND 3", name="referral_escalation_tier"),
        sa.CheckConstraint(
            "NOT consent_override OR override_reason IS NOT NULL",
            name="referral_override_has_reason",
        ),
        sa.CheckConstraint(
            "status NOT IN ('sent', 'accepted', 'in_progress') OR provider_id IS NOT NULL",
            name="referral_at_provider_has_provider",
        ),
    )
    # Never two open referrals of one household for one service type.
    op.create_index(
        "referral_one_open_per_service",
        "referral",
        ["household_id", "service_type"],
        unique=True,
        postgresql_where=sa.text(_in("status", OPEN_STATUSES)),
    )
    op.create_index("referral_by_household", "referral", ["household_id"])
    op.create_index("referral_provider_status", "referral", ["provider_id", "status"])
    op.create_index("referral_status", "referral", ["status", "id"])
    op.create_index(
        "referral_escalation_due",
        "referral",
        ["next_escalation_at"],
        postgresql_where=sa.text("next_escalation_at IS NOT NULL"),
    )

    op.create_table(
        "referral_history",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column(
            "referral_id",
            sa.Uuid,
            sa.ForeignKey("referral.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _timestamp("at"),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("from_status", sa.Text, nullable=True),
        sa.Column("to_status", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("provider_id", sa.Uuid, nullable=True),
        sa.Column("reason_code", sa.Text, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("tier", sa.SmallInteger, nullable=True),
    )
    op.create_index("referral_history_referral", "referral_history", ["referral_id", "id"])

    op.create_table(
        "consent_task",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("household_id", sa.Uuid, nullable=False),
        sa.Column("site_id", sa.Text, nullable=False),
        sa.Column("service_type", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        _timestamp("created_at"),
        _timestamp("closed_at", nullable=True),
        sa.Column("closed_reason", sa.Text, nullable=True),
        sa.CheckConstraint("status IN ('open', 'resolved', 'closed')", name="consent_task_status"),
        sa.CheckConstraint(_in("service_type", SERVICE_TYPES), name="consent_task_service_type"),
    )
    op.create_index(
        "consent_task_one_open",
        "consent_task",
        ["household_id", "service_type"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index("consent_task_site_status", "consent_task", ["site_id", "status", "id"])

    op.create_table(
        "referral_household",
        sa.Column("household_id", sa.Uuid, primary_key=True),
        sa.Column("site_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("referral_sharing", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("admin1", sa.Text, nullable=True),
        sa.Column("admin2", sa.Text, nullable=True),
        sa.Column("preferred_language", sa.Text, nullable=True),
        sa.Column("household_size", sa.Integer, nullable=True),
        sa.Column("profile", postgresql.JSONB, nullable=True),
        _timestamp("updated_at"),
    )


def downgrade() -> None:
    op.drop_table("referral_household")
    op.drop_table("consent_task")
    op.drop_table("referral_history")
    op.drop_table("referral")
    op.drop_table("provider")
