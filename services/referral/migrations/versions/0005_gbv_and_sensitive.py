"""GBV as a service type, and a referral's ``sensitive`` flag bound to its service type.

Revision ID: 0005
Revises: 0004

The lists below are this revision's snapshot of ``domain/vocabulary.py`` (a migration never
follows later code). ``referral_sensitive_by_type`` makes the flag the visibility rules read
impossible to get wrong: a counter-trafficking or GBV referral is sensitive, others are not.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BEFORE = (
    "medical",
    "legal",
    "psychosocial",
    "protection",
    "counter_trafficking",
    "employment",
    "voluntary_return",
    "shelter",
)
SERVICE_TYPES = (*_BEFORE, "gbv")
SENSITIVE = ("counter_trafficking", "gbv")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


_SENSITIVE_TYPE = _in("service_type", SENSITIVE)


def _array(values: tuple[str, ...]) -> str:
    return f"ARRAY[{', '.join(repr(v) for v in values)}]::text[]"


def _service_type_checks(service_types: tuple[str, ...]) -> None:
    for table, name in (
        ("referral", "referral_service_type"),
        ("consent_task", "consent_task_service_type"),
    ):
        op.drop_constraint(name, table, type_="check")
        op.create_check_constraint(name, table, _in("service_type", service_types))
    op.drop_constraint("provider_services_known", "provider", type_="check")
    op.create_check_constraint(
        "provider_services_known", "provider", f"services <@ {_array(service_types)}"
    )


def upgrade() -> None:
    _service_type_checks(SERVICE_TYPES)
    op.execute(f"UPDATE referral SET sensitive = ({_SENSITIVE_TYPE})")  # noqa: S608 (constants)
    op.create_check_constraint(
        "referral_sensitive_by_type", "referral", f"sensitive = ({_SENSITIVE_TYPE})"
    )


def downgrade() -> None:
    op.drop_constraint("referral_sensitive_by_type", "referral", type_="check")
    _service_type_checks(_BEFORE)
