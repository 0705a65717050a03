"""Controlled vocabularies shared by every service and carried in events."""

from enum import StrEnum


class DisplacementStatus(StrEnum):
    REFUGEE = "refugee"
    ASYLUM_SEEKER = "asylum_seeker"
    IDP = "idp"
    RETURNEE = "returnee"
    THIRD_COUNTRY_NATIONAL = "third_country_national"
    STRANDED_MIGRANT = "stranded_migrant"
    HOST_COMMUNITY = "host_community"


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class AgeBand(StrEnum):
    """The age bands of humanitarian reporting (HXL/OCHA disaggregation)."""

    AGE_0_4 = "0-4"
    AGE_5_17 = "5-17"
    AGE_18_59 = "18-59"
    AGE_60_PLUS = "60+"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, age_years: int | None) -> "AgeBand":
        if age_years is None:
            return cls.UNKNOWN
        if age_years < 5:
            return cls.AGE_0_4
        if age_years < 18:
            return cls.AGE_5_17
        if age_years < 60:
            return cls.AGE_18_59
        return cls.AGE_60_PLUS


class Vulnerability(StrEnum):
    DISABILITY_SEEING = "disability_seeing"
    DISABILITY_HEARING = "disability_hearing"
    DISABILITY_MOBILITY = "disability_mobility"
    DISABILITY_COGNITION = "disability_cognition"
    DISABILITY_SELFCARE = "disability_selfcare"
    DISABILITY_COMMUNICATION = "disability_communication"
    SERIOUS_MEDICAL_CONDITION = "serious_medical_condition"
    PREGNANT_OR_LACTATING = "pregnant_or_lactating"
    UNACCOMPANIED_OR_SEPARATED_CHILD = "unaccompanied_or_separated_child"
    OLDER_PERSON_AT_RISK = "older_person_at_risk"
    SINGLE_CAREGIVER = "single_caregiver"
    SURVIVOR_OF_TRAFFICKING = "survivor_of_trafficking"
    SURVIVOR_OF_GBV = "survivor_of_gbv"

    @property
    def sensitive(self) -> bool:
        return self in SENSITIVE_VULNERABILITIES


SENSITIVE_VULNERABILITIES = frozenset(
    {Vulnerability.SURVIVOR_OF_TRAFFICKING, Vulnerability.SURVIVOR_OF_GBV}
)


class NeedType(StrEnum):
    SHELTER = "shelter"
    FOOD = "food"
    HYGIENE = "hygiene"
    NON_FOOD_ITEMS = "non_food_items"
    MEDICATION = "medication"
    MEDICAL_CARE = "medical_care"
    LEGAL_AID = "legal_aid"
    PSYCHOSOCIAL_SUPPORT = "psychosocial_support"
    TRANSPORT = "transport"
    EMPLOYMENT = "employment"
    VOLUNTARY_RETURN = "voluntary_return"


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"


class HouseholdStatus(StrEnum):
    ACTIVE = "active"
    PENDING_REVIEW = "pending_review"
    DEACTIVATED = "deactivated"
    MERGED = "merged"
    ERASED = "erased"
