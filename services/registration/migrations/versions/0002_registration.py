"""Sites, households, members, documents, duplicate review, idempotency records.

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

HOUSEHOLD_STATUSES = "('active', 'pending_review', 'deactivated', 'merged', 'erased')"
SEXES = "('female', 'male', 'other', 'unknown')"
RELATIONSHIPS = (
    "('head', 'spouse_or_partner', 'child', 'parent', 'sibling', 'grandchild', 'grandparent', "
    "'other_relative', 'non_relative')"
)
DOCUMENT_TYPES = (
    "('passport', 'national_id', 'birth_certificate', 'residence_permit', 'refugee_certificate', "
    "'temporary_protection_certificate', 'driving_licence', 'other')"
)
PERSONAL_HOUSEHOLD_FIELDS = (
    "admin1", "admin2", "settlement", "displacement_status", "arrival_date", "preferred_language",
    "phone", "consent_data_processing", "consent_referral_sharing", "consent_contact",
    "consent_given_at", "deactivation_reason",
)  # fmt: skip


def _now() -> sa.TextClause:
    return sa.text("now()")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")

    op.create_table(
        "registration_site",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("country", sa.Text, nullable=False),
        sa.Column("admin1", sa.Text, nullable=False),
        sa.Column("admin2", sa.Text, nullable=True),
        sa.Column("timezone", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        # The id names the site's case-number sequence, so it must stay a plain code.
        sa.CheckConstraint("id ~ '^[A-Z]{3}-[A-Z0-9]{2,10}$'", name="site_id_format"),
    )

    erased_has_nothing = " AND ".join(f"{name} IS NULL" for name in PERSONAL_HOUSEHOLD_FIELDS)
    op.create_table(
        "household",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("case_number", sa.Text, nullable=False, unique=True),
        sa.Column("site_id", sa.Text, sa.ForeignKey("registration_site.id"), nullable=False),
        sa.Column("admin1", sa.Text),
        sa.Column("admin2", sa.Text),
        sa.Column("settlement", sa.Text),
        sa.Column("displacement_status", sa.Text),
        sa.Column("arrival_date", sa.Date),
        sa.Column("preferred_language", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("consent_data_processing", sa.Boolean),
        sa.Column("consent_referral_sharing", sa.Boolean),
        sa.Column("consent_contact", sa.Boolean),
        sa.Column("consent_given_at", sa.DateTime(timezone=True)),
        sa.Column("needs", postgresql.JSONB, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("merged_into_id", sa.Uuid, sa.ForeignKey("household.id")),
        sa.Column("deactivation_reason", sa.Text),
        sa.Column("erased_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(f"status IN {HOUSEHOLD_STATUSES}", name="household_status"),
        sa.CheckConstraint("version >= 1", name="household_version"),
        sa.CheckConstraint(
            "phone IS NULL OR phone ~ '^\\+[1-9][0-9]{6,14}$'", name="household_phone_e164"
        ),
        sa.CheckConstraint(
            "status = 'erased' OR (admin1 IS NOT NULL AND displacement_status IS NOT NULL "
            "AND preferred_language IS NOT NULL AND consent_data_processing "
            "AND consent_referral_sharing IS NOT NULL AND consent_contact IS NOT NULL "
            "AND consent_given_at IS NOT NULL)",
            name="household_complete_unless_erased",
        ),
        # An erased household is a tombstone: the database itself refuses personal fields.
        sa.CheckConstraint(
            f"status <> 'erased' OR (erased_at IS NOT NULL AND needs = '[]'::jsonb "
            f"AND {erased_has_nothing})",
            name="household_erased_is_empty",
        ),
        sa.CheckConstraint(
            "status <> 'merged' OR merged_into_id IS NOT NULL", name="household_merged_into"
        ),
    )
    op.create_index("household_site_status", "household", ["site_id", "status"])
    op.create_index(
        "household_phone", "household", ["phone"], postgresql_where=sa.text("phone IS NOT NULL")
    )

    op.create_table(
        "household_member",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "household_id",
            sa.Uuid,
            sa.ForeignKey("household.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("given_name", sa.Text, nullable=False),
        sa.Column("family_name", sa.Text),
        sa.Column("sex", sa.Text, nullable=False),
        sa.Column("date_of_birth", sa.Date),
        sa.Column("estimated_age", sa.SmallInteger),
        sa.Column("estimated_on", sa.Date),
        sa.Column("relationship", sa.Text, nullable=False),
        sa.Column("nationality", sa.Text, nullable=False),
        sa.Column(
            "vulnerabilities",
            postgresql.ARRAY(sa.Text),
            nullable=False,
            server_default=sa.text("'{}'"),
        ),
        sa.Column("given_key", sa.Text, nullable=False),
        sa.Column("family_key", sa.Text, nullable=False),
        sa.Column("given_phonetic", sa.Text, nullable=False),
        sa.Column("family_phonetic", sa.Text, nullable=False),
        sa.Column("family_initial", sa.Text, nullable=False),
        sa.Column("birth_year", sa.Integer, nullable=False),
        sa.Column("name_key", sa.Text, nullable=False),
        sa.CheckConstraint(f"sex IN {SEXES}", name="member_sex"),
        sa.CheckConstraint(f"relationship IN {RELATIONSHIPS}", name="member_relationship"),
        sa.CheckConstraint(
            "(date_of_birth IS NULL) <> (estimated_age IS NULL)", name="member_one_age"
        ),
        sa.CheckConstraint(
            "(estimated_age IS NULL) = (estimated_on IS NULL)", name="member_estimated_on"
        ),
        sa.CheckConstraint(
            "estimated_age IS NULL OR estimated_age BETWEEN 0 AND 120", name="member_age_range"
        ),
        sa.UniqueConstraint("household_id", "position", name="member_position"),
    )
    # Never two heads, whatever the code does; "exactly one" is checked by the domain.
    op.create_index(
        "household_one_head",
        "household_member",
        ["household_id"],
        unique=True,
        postgresql_where=sa.text("relationship = 'head'"),
    )
    # Blocking keys of the duplicate check (see services/registration/README.md).
    op.create_index("member_family_block", "household_member", ["family_phonetic", "birth_year"])
    op.create_index(
        "member_given_block",
        "household_member",
        ["given_phonetic", "family_initial", "birth_year"],
    )
    op.create_index(
        "member_name_trgm",
        "household_member",
        ["name_key"],
        postgresql_using="gin",
        postgresql_ops={"name_key": "gin_trgm_ops"},
    )

    op.create_table(
        "member_document",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column(
            "member_id",
            sa.Uuid,
            sa.ForeignKey("household_member.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "household_id",
            sa.Uuid,
            sa.ForeignKey("household.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("doc_type", sa.Text, nullable=False),
        sa.Column("number", sa.Text, nullable=False),
        sa.Column("number_key", sa.Text, nullable=False),
        sa.Column("issuing_country", sa.Text, nullable=False),
        sa.CheckConstraint(f"doc_type IN {DOCUMENT_TYPES}", name="document_type"),
        sa.UniqueConstraint(
            "member_id", "doc_type", "issuing_country", "number_key", name="document_once"
        ),
    )
    op.create_index(
        "document_lookup", "member_document", ["number_key", "doc_type", "issuing_country"]
    )
    op.create_index("document_household", "member_document", ["household_id"])

    op.create_table(
        "duplicate_review",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("household_id", sa.Uuid, sa.ForeignKey("household.id"), nullable=False),
        sa.Column("site_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("reasons", postgresql.ARRAY(sa.Text), nullable=False),
        sa.Column("candidates", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_by", sa.Text),
        sa.Column("resolution", sa.Text),
        sa.Column("merge_into_id", sa.Uuid),
        sa.CheckConstraint("status IN ('open', 'resolved', 'closed')", name="review_status"),
        sa.CheckConstraint("score >= 0 AND score <= 1", name="review_score"),
        sa.CheckConstraint(
            "resolution IS NULL OR resolution IN "
            "('merge', 'not_duplicate', 'household_deactivated', 'household_erased')",
            name="review_resolution",
        ),
        sa.CheckConstraint("(status = 'open') = (resolved_at IS NULL)", name="review_resolved"),
    )
    op.create_index(
        "review_open_per_household",
        "duplicate_review",
        ["household_id"],
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index("review_queue", "duplicate_review", ["status", "site_id", "id"])

    op.create_table(
        "registration_idempotency",
        sa.Column("principal_sub", sa.Text, primary_key=True),
        sa.Column("idempotency_key", sa.Text, primary_key=True),
        sa.Column("request_hash", sa.Text),
        sa.Column("status_code", sa.Integer),
        sa.Column("response_body", postgresql.JSONB),
        sa.Column("household_id", sa.Uuid),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("idempotency_expiry", "registration_idempotency", ["expires_at"])
    op.create_index("idempotency_household", "registration_idempotency", ["household_id"])


def downgrade() -> None:
    op.drop_table("registration_idempotency")
    op.drop_table("duplicate_review")
    op.drop_table("member_document")
    op.drop_table("household_member")
    op.drop_table("household")
    op.execute(
        "DO $$ DECLARE s record; BEGIN FOR s IN SELECT sequencename FROM pg_sequences "
        "WHERE sequencename LIKE 'case_number_%' LOOP "
        "EXECUTE format('DROP SEQUENCE %I', s.sequencename); END LOOP; END $$"
    )
    op.drop_table("registration_site")
