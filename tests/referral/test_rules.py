"""Automatic referral rules: what a profile calls for, and only what is new in it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.referral.domain.rules import AskConsent, Refer, automatic_actions, required_services
from services.referral.domain.vocabulary import ServiceType, Urgency
from shared.vocabulary import NeedType, Priority, Vulnerability
from tests.referral.factories import profile


def test_each_rule_of_the_issue() -> None:
    assert required_services(profile(needs=[(NeedType.MEDICAL_CARE, Priority.URGENT)])) == {
        ServiceType.MEDICAL: Urgency.URGENT
    }
    assert required_services(
        profile(vulnerabilities=[Vulnerability.SERIOUS_MEDICAL_CONDITION])
    ) == {ServiceType.MEDICAL: Urgency.NORMAL}
    assert required_services(profile(needs=[NeedType.LEGAL_AID])) == {
        ServiceType.LEGAL: Urgency.NORMAL
    }
    assert required_services(profile(vulnerabilities=[Vulnerability.SURVIVOR_OF_TRAFFICKING])) == {
        ServiceType.COUNTER_TRAFFICKING: Urgency.HIGH
    }
    assert required_services(profile(needs=[NeedType.PSYCHOSOCIAL_SUPPORT])) == {
        ServiceType.PSYCHOSOCIAL: Urgency.NORMAL
    }
    assert required_services(profile(needs=[NeedType.VOLUNTARY_RETURN])) == {
        ServiceType.VOLUNTARY_RETURN: Urgency.NORMAL
    }
    assert ServiceType.COUNTER_TRAFFICKING.sensitive and not ServiceType.MEDICAL.sensitive


def test_other_needs_and_vulnerabilities_refer_nowhere() -> None:
    calm = profile(
        needs=[NeedType.FOOD, NeedType.SHELTER, NeedType.EMPLOYMENT],
        vulnerabilities=[Vulnerability.DISABILITY_SEEING, Vulnerability.SURVIVOR_OF_GBV],
    )
    assert required_services(calm) == {}


def test_medical_need_and_condition_give_one_medical_referral_at_the_higher_urgency() -> None:
    both = profile(
        needs=[(NeedType.MEDICAL_CARE, Priority.HIGH)],
        vulnerabilities=[Vulnerability.SERIOUS_MEDICAL_CONDITION],
    )
    assert required_services(both) == {ServiceType.MEDICAL: Urgency.HIGH}


def test_with_consent_refer_without_ask() -> None:
    needs = [NeedType.LEGAL_AID, NeedType.MEDICAL_CARE]
    assert automatic_actions(None, profile(needs=needs)) == [
        Refer(ServiceType.LEGAL, Urgency.NORMAL),
        Refer(ServiceType.MEDICAL, Urgency.NORMAL),
    ]
    assert automatic_actions(None, profile(needs=needs, referral_sharing=False)) == [
        AskConsent(ServiceType.LEGAL),
        AskConsent(ServiceType.MEDICAL),
    ]


def test_only_what_is_new_acts() -> None:
    household = profile(needs=[NeedType.LEGAL_AID]).household_id
    before = profile(household, needs=[NeedType.LEGAL_AID])
    same = profile(household, needs=[NeedType.LEGAL_AID], version=2, admin2="MD0102")
    more = profile(household, needs=[NeedType.LEGAL_AID, NeedType.VOLUNTARY_RETURN], version=2)
    assert automatic_actions(before, same) == []
    assert automatic_actions(before, more) == [Refer(ServiceType.VOLUNTARY_RETURN, Urgency.NORMAL)]


def test_consent_given_later_refers_what_was_waiting() -> None:
    household = profile().household_id
    without = profile(household, needs=[NeedType.LEGAL_AID], referral_sharing=False)
    still_without = profile(
        household, needs=[NeedType.LEGAL_AID], referral_sharing=False, version=2
    )
    given_now = profile(household, needs=[NeedType.LEGAL_AID], version=3)
    assert automatic_actions(without, still_without) == []  # the task is already open
    assert automatic_actions(still_without, given_now) == [Refer(ServiceType.LEGAL, Urgency.NORMAL)]


needs = st.lists(
    st.tuples(st.sampled_from(list(NeedType)), st.sampled_from(list(Priority))), max_size=5
)
vulnerabilities = st.lists(st.sampled_from(list(Vulnerability)), max_size=4)


@given(needs, vulnerabilities, st.booleans(), needs, vulnerabilities, st.booleans())
def test_never_refers_without_consent_and_never_twice_for_one_type(
    needs_a, vulns_a, consent_a, needs_b, vulns_b, consent_b
) -> None:  # type: ignore[no-untyped-def]
    household = profile().household_id
    before = profile(household, needs=needs_a, vulnerabilities=vulns_a, referral_sharing=consent_a)
    after = profile(
        household, needs=needs_b, vulnerabilities=vulns_b, referral_sharing=consent_b, version=2
    )
    actions = automatic_actions(before, after)
    types = [a.service_type for a in actions]
    assert len(types) == len(set(types))
    assert set(types) <= set(required_services(after))
    if not consent_b:
        assert not any(isinstance(a, Refer) for a in actions)
    else:
        assert not any(isinstance(a, AskConsent) for a in actions)
    assert automatic_actions(after, after) == []
