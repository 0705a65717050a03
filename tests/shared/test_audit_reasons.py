"""The permanent audit trail takes reason codes, never free text that may name people."""

from __future__ import annotations

import pytest

from shared import audit
from shared.auth import Principal, Role


class NoSession:
    """Refusal comes before anything is staged: no session is touched."""


@pytest.mark.parametrize(
    "reason",
    [
        "Court hearing tomorrow; verbal consent, form to follow",
        "Olena Kovalenko asked",
        "x" * 65,
        "line\nbreak",
    ],
)
async def test_free_text_is_refused_as_an_audit_reason(reason: str) -> None:
    principal = Principal(sub="u", roles=frozenset({Role.CASEWORKER}), sites=frozenset())
    with pytest.raises(audit.FreeTextInAudit):
        await audit.record(
            NoSession(),  # type: ignore[arg-type]
            service="referral",
            principal=principal,
            action="referral.create_with_consent_override",
            resource_type="referral",
            resource_id="r1",
            reason=reason,
        )


@pytest.mark.parametrize(
    "reason", ["consent_override", "not-in-your-sites", "KIT-HYG-01", "tier_2"]
)
def test_codes_are_reasons(reason: str) -> None:
    assert audit.REASON_CODE.fullmatch(reason)
