"""The duplicate check's name blocks carry what it reads, so a block is read from its index.

At a million people a name block holds hundreds to thousands of people born within two
years; reading each from the member table (one heap page per person) was most of the
check's time. With the compared columns in the index, PostgreSQL answers from the index
alone (an index-only scan) and drops the people whose birth date cannot score before it
joins their household.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CARRIED = [
    "date_of_birth",
    "estimated_age",
    "household_id",
    "given_key",
    "family_key",
    "sex",
    "id",
]


def upgrade() -> None:
    op.create_index(
        "member_family_cover",
        "household_member",
        ["family_phonetic", "birth_year"],
        postgresql_include=CARRIED,
    )
    op.create_index(
        "member_given_cover",
        "household_member",
        ["given_phonetic", "family_initial", "birth_year"],
        postgresql_include=CARRIED,
    )
    op.drop_index("member_family_block", table_name="household_member")
    op.drop_index("member_given_block", table_name="household_member")


def downgrade() -> None:
    op.create_index("member_family_block", "household_member", ["family_phonetic", "birth_year"])
    op.create_index(
        "member_given_block",
        "household_member",
        ["given_phonetic", "family_initial", "birth_year"],
    )
    op.drop_index("member_given_cover", table_name="household_member")
    op.drop_index("member_family_cover", table_name="household_member")
