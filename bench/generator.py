"""Synthetic households for the benchmark: realistic sizes, names, ages, documents and needs.

The mix follows the Moldova refugee response Haven's demo programme models: mostly women with
children and older relatives from Ukraine (names in Ukrainian or Russian Cyrillic, or as typed
from a passport in Latin), and Moldovans/Romanians (Latin with diacritics). Household sizes
average 3.5 people. Everything is drawn from a seeded ``random.Random``, so a seed always gives
the same households.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, TypeVar

from anyascii import anyascii

from bench.names import Culture, NameLists, name_lists
from shared.events.registration import (
    ConsentFlags,
    HouseholdRegistered,
    Location,
    MemberProfile,
    Need,
)
from shared.vocabulary import (
    AgeBand,
    DisplacementStatus,
    HouseholdStatus,
    NeedType,
    Priority,
    Sex,
    Vulnerability,
)

K = TypeVar("K")

# Size of a household -> weight; the mean is 3.5 people.
HOUSEHOLD_SIZE_WEIGHTS = {1: 12, 2: 18, 3: 21, 4: 22, 5: 14, 6: 7, 7: 4, 8: 2}
CULTURE_WEIGHTS = {Culture.UKRAINIAN: 62, Culture.RUSSIAN: 13, Culture.ROMANIAN: 25}
LATIN_UKRAINIAN_SHARE = 0.15  # names typed from a passport's Latin line
FEMALE_HEAD_SHARE = 0.75
SPOUSE_SHARE = 0.30
OLDER_RELATIVE_SHARE = 0.15
ADULT_RELATIVE_SHARE = 0.25  # of the further members; the rest are children (about 45 %)
ESTIMATED_AGE_SHARE = 0.05
ADULT_DOCUMENT_SHARE = 0.65
CHILD_DOCUMENT_SHARE = 0.25
PHONE_SHARE = 0.72
CONTACT_CONSENT_SHARE = 0.85
REFERRAL_CONSENT_SHARE = 0.70
NEED_SHARES = {
    NeedType.FOOD: 0.60,
    NeedType.HYGIENE: 0.40,
    NeedType.SHELTER: 0.25,
    NeedType.NON_FOOD_ITEMS: 0.20,
    NeedType.MEDICAL_CARE: 0.15,
    NeedType.TRANSPORT: 0.10,
    NeedType.MEDICATION: 0.08,
    NeedType.LEGAL_AID: 0.08,
    NeedType.EMPLOYMENT: 0.08,
    NeedType.PSYCHOSOCIAL_SUPPORT: 0.06,
    NeedType.VOLUNTARY_RETURN: 0.02,
}
URGENT_SHARE = 0.15
DISPLACEMENT_WEIGHTS = {
    DisplacementStatus.REFUGEE: 85,
    DisplacementStatus.RETURNEE: 5,
    DisplacementStatus.HOST_COMMUNITY: 5,
    DisplacementStatus.ASYLUM_SEEKER: 3,
    DisplacementStatus.THIRD_COUNTRY_NATIONAL: 2,
}
DAYS_PER_YEAR = 365.25
MAX_ARRIVAL_DAYS_AGO = 600
ADULT_AGE = 18
OLDER_AGE = 60
UKRAINIAN_MOBILE_PREFIXES = ("50", "63", "66", "67", "68", "73", "93", "95", "96", "97", "98")
MOLDOVAN_MOBILE_PREFIXES = ("60", "67", "68", "69", "78", "79")


@dataclass(frozen=True)
class Site:
    """A registration site of the demo programme, with where its people are housed."""

    id: str
    name: str
    admin1: str
    admin2: str
    settlement: str
    weight: float


SITES = (
    Site("MDA-CHI", "Chișinău collective centre", "MD01", "MD0101", "Chișinău", 40),
    Site("MDA-PAL", "Palanca border crossing", "MD34", "MD3401", "Palanca", 30),
    Site("MDA-OCN", "Ocnița border crossing", "MD26", "MD2601", "Ocnița", 15),
    Site("MDA-BAL", "Bălți reception centre", "MD03", "MD0301", "Bălți", 15),
)


@dataclass(frozen=True)
class SyntheticDocument:
    type: str
    number: str
    issuing_country: str


@dataclass(frozen=True)
class SyntheticMember:
    given_name: str
    family_name: str | None
    sex: str
    date_of_birth: date | None
    estimated_age: int | None
    relationship: str
    nationality: str
    documents: tuple[SyntheticDocument, ...] = ()
    vulnerabilities: tuple[str, ...] = ()

    def age_on(self, today: date) -> int:
        if self.date_of_birth is None:
            return self.estimated_age or 0
        born = self.date_of_birth
        return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


@dataclass(frozen=True)
class SyntheticHousehold:
    site: Site
    displacement_status: str
    arrival_date: date
    preferred_language: str
    phone: str | None
    referral_sharing: bool
    contact: bool
    members: tuple[SyntheticMember, ...]
    needs: tuple[tuple[str, str], ...]  # (need type, priority)


def _weighted(rng: random.Random, weights: Mapping[K, float]) -> K:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


class HouseholdGenerator:
    """Seeded source of households; ``today`` fixes ages and dates."""

    def __init__(self, seed: int, *, today: date, sites: tuple[Site, ...] = SITES) -> None:
        self.rng = random.Random(seed)
        self.today = today
        self.sites = sites
        self._site_weights = [site.weight for site in sites]

    # --- people ---------------------------------------------------------------------------

    def _birth(self, age: int) -> tuple[date | None, int | None]:
        if self.rng.random() < ESTIMATED_AGE_SHARE:
            return None, age
        days = int(age * DAYS_PER_YEAR) + self.rng.randrange(365)
        return self.today - timedelta(days=days), None

    def _documents(self, nationality: str, age: int) -> tuple[SyntheticDocument, ...]:
        rng = self.rng
        if age >= ADULT_AGE and rng.random() < ADULT_DOCUMENT_SHARE:
            if nationality == "MDA":
                number = "2" + "".join(rng.choices("0123456789", k=12))  # IDNP
                return (SyntheticDocument("national_id", number, "MDA"),)
            letters = "".join(rng.choices("ABCEFHKMNOPTX", k=2))
            return (SyntheticDocument("passport", f"{letters}{rng.randrange(10**6):06d}", "UKR"),)
        if age < ADULT_AGE and rng.random() < CHILD_DOCUMENT_SHARE:
            number = f"I-{rng.choice('ABCDEFGHKMNPT')}{rng.choice('ABCDEFGHKMNPT')} "
            number += f"{rng.randrange(10**6):06d}"
            return (SyntheticDocument("birth_certificate", number, nationality),)
        return ()

    def _vulnerabilities(self, sex: str, age: int) -> tuple[str, ...]:
        rng = self.rng
        found: list[str] = []
        if sex == "female" and ADULT_AGE <= age < 45 and rng.random() < 0.06:
            found.append(Vulnerability.PREGNANT_OR_LACTATING)
        if age >= OLDER_AGE and rng.random() < 0.20:
            found.append(Vulnerability.OLDER_PERSON_AT_RISK)
        if rng.random() < 0.03:
            found.append(Vulnerability.DISABILITY_MOBILITY)
        if rng.random() < 0.04:
            found.append(Vulnerability.SERIOUS_MEDICAL_CONDITION)
        return tuple(sorted(found))

    def _member(
        self,
        lists: NameLists,
        *,
        family: tuple[str, str],
        latin: bool,
        sex: str,
        age: int,
        relationship: str,
        nationality: str,
    ) -> SyntheticMember:
        female = sex == "female"
        given = (lists.female if female else lists.male).pick(self.rng)
        family_name = family[1] if female else family[0]
        if latin:
            given, family_name = anyascii(given), anyascii(family_name)
        born, estimated = self._birth(age)
        return SyntheticMember(
            given_name=given,
            family_name=family_name,
            sex=sex,
            date_of_birth=born,
            estimated_age=estimated,
            relationship=relationship,
            nationality=nationality,
            documents=self._documents(nationality, age),
            vulnerabilities=self._vulnerabilities(sex, age),
        )

    def _people(self, culture: Culture, nationality: str, size: int) -> list[SyntheticMember]:
        rng = self.rng
        lists = name_lists(culture)
        latin = culture is Culture.UKRAINIAN and rng.random() < LATIN_UKRAINIAN_SHARE
        family = lists.family.pick(rng)
        head_sex = "female" if rng.random() < FEMALE_HEAD_SHARE else "male"
        head_age = min(85, max(19, int(rng.gauss(41, 12))))

        def person(sex: str, age: int, relationship: str) -> SyntheticMember:
            return self._member(
                lists,
                family=family,
                latin=latin,
                sex=sex,
                age=max(0, age),
                relationship=relationship,
                nationality=nationality,
            )

        members = [person(head_sex, head_age, "head")]
        if size > 1 and head_age < 65 and rng.random() < SPOUSE_SHARE:
            spouse_sex = "male" if head_sex == "female" else "female"
            members.append(person(spouse_sex, head_age + rng.randint(-5, 5), "spouse_or_partner"))
        if len(members) < size and head_age < 60 and rng.random() < OLDER_RELATIVE_SHARE:
            members.append(person(rng.choice(("female", "male")), head_age + 25, "parent"))
        while len(members) < size:
            sex = rng.choice(("female", "male"))
            if rng.random() < ADULT_RELATIVE_SHARE:
                age = max(18, head_age + rng.randint(-12, 12))
                members.append(person(sex, age, rng.choice(("sibling", "other_relative"))))
            elif head_age < 55:
                child_age = rng.randint(0, min(17, max(0, head_age - 18)))
                members.append(person(sex, child_age, "child"))
            else:
                members.append(person(sex, rng.randint(0, 16), "grandchild"))
        return members

    # --- households -----------------------------------------------------------------------

    def _phone(self, culture: Culture) -> str:
        rng = self.rng
        if culture is Culture.ROMANIAN and rng.random() < 0.7:
            return f"+373{rng.choice(MOLDOVAN_MOBILE_PREFIXES)}{rng.randrange(10**6):06d}"
        return f"+380{rng.choice(UKRAINIAN_MOBILE_PREFIXES)}{rng.randrange(10**7):07d}"

    def _needs(self, *, referable: bool) -> tuple[tuple[str, str], ...]:
        rng = self.rng
        needs: list[tuple[str, str]] = []
        for need, share in NEED_SHARES.items():
            wanted = rng.random() < share or (referable and need is NeedType.MEDICAL_CARE)
            if wanted:
                priority = Priority.URGENT if rng.random() < URGENT_SHARE else Priority.NORMAL
                needs.append((need.value, priority.value))
        return tuple(needs)

    def household(self, *, reachable: bool = False, referable: bool = False) -> SyntheticHousehold:
        """A new household; ``reachable`` gives it a phone and contact consent, ``referable`` a
        medical need and referral-sharing consent (so both downstream flows fire)."""
        rng = self.rng
        culture: Culture = _weighted(rng, CULTURE_WEIGHTS)
        nationality = "MDA" if culture is Culture.ROMANIAN and rng.random() < 0.6 else "UKR"
        language = {
            Culture.UKRAINIAN: "uk" if rng.random() < 0.8 else "ru",
            Culture.RUSSIAN: "ru",
            Culture.ROMANIAN: "ro" if rng.random() < 0.7 else "ru",
        }[culture]
        size: int = _weighted(rng, HOUSEHOLD_SIZE_WEIGHTS)
        has_phone = reachable or rng.random() < PHONE_SHARE
        status = (
            DisplacementStatus.RETURNEE
            if nationality == "MDA" and rng.random() < 0.5
            else _weighted(rng, DISPLACEMENT_WEIGHTS)
        )
        return SyntheticHousehold(
            site=rng.choices(self.sites, weights=self._site_weights)[0],
            displacement_status=str(status),
            arrival_date=self.today - timedelta(days=rng.randrange(MAX_ARRIVAL_DAYS_AGO)),
            preferred_language=language,
            phone=self._phone(culture) if has_phone else None,
            referral_sharing=referable or rng.random() < REFERRAL_CONSENT_SHARE,
            contact=has_phone and (reachable or rng.random() < CONTACT_CONSENT_SHARE),
            members=tuple(self._people(culture, nationality, size)),
            needs=self._needs(referable=referable),
        )

    def re_registration(self, household: SyntheticHousehold) -> SyntheticHousehold:
        """The same people registered again elsewhere: names retyped (Latin for Cyrillic, a
        typo, or given and family swapped), most birth dates the same, a new phone maybe."""
        rng = self.rng
        members = tuple(self._retyped(member) for member in household.members)
        phone = household.phone if rng.random() < 0.5 else None
        return replace(
            household,
            site=rng.choices(self.sites, weights=self._site_weights)[0],
            members=members,
            phone=phone,
            contact=household.contact and phone is not None,
        )

    def _retyped(self, member: SyntheticMember) -> SyntheticMember:
        rng = self.rng
        given, family = member.given_name, member.family_name or ""
        roll = rng.random()
        if roll < 0.45:
            given, family = anyascii(given), anyascii(family)
        elif roll < 0.75 and len(family) > 4:
            cut = rng.randrange(1, len(family) - 1)
            family = family[:cut] + family[cut + 1 :]  # a letter dropped
        elif roll < 0.80:
            given, family = family, given
        born = member.date_of_birth
        if born is not None and rng.random() < 0.1 and born.day <= 12:
            born = born.replace(month=born.day, day=born.month)  # day and month swapped
        return replace(member, given_name=given, family_name=family or None, date_of_birth=born)


# --- shapes ---------------------------------------------------------------------------------


def request_body(household: SyntheticHousehold) -> dict[str, Any]:
    """The ``POST /v1/households`` body (registration's HouseholdCreate)."""
    body: dict[str, Any] = {
        "site_id": household.site.id,
        "location": {
            "admin1": household.site.admin1,
            "admin2": household.site.admin2,
            "settlement": household.site.settlement,
        },
        "displacement_status": household.displacement_status,
        "arrival_date": household.arrival_date.isoformat(),
        "preferred_language": household.preferred_language,
        "consent": {
            "data_processing": True,
            "referral_sharing": household.referral_sharing,
            "contact": household.contact,
        },
        "members": [_member_body(member) for member in household.members],
        "needs": [{"type": need, "priority": priority} for need, priority in household.needs],
    }
    if household.phone is not None:
        body["phone"] = household.phone
    return body


def _member_body(member: SyntheticMember) -> dict[str, Any]:
    body: dict[str, Any] = {
        "given_name": member.given_name,
        "sex": member.sex,
        "relationship": member.relationship,
        "nationality": member.nationality,
        "documents": [
            {"type": d.type, "number": d.number, "issuing_country": d.issuing_country}
            for d in member.documents
        ],
        "vulnerabilities": list(member.vulnerabilities),
    }
    if member.family_name is not None:
        body["family_name"] = member.family_name
    if member.date_of_birth is not None:
        body["date_of_birth"] = member.date_of_birth.isoformat()
    else:
        body["estimated_age"] = member.estimated_age
    return body


def registered_event(
    household: SyntheticHousehold, *, household_id: uuid.UUID, case_number: str, today: date
) -> HouseholdRegistered:
    """The HouseholdRegistered registration would publish for this household."""
    return HouseholdRegistered(
        household_id=household_id,
        case_number=case_number,
        site_id=household.site.id,
        location=Location(admin1=household.site.admin1, admin2=household.site.admin2),
        displacement_status=DisplacementStatus(household.displacement_status),
        arrival_date=household.arrival_date,
        status=HouseholdStatus.ACTIVE,
        household_size=len(household.members),
        members=tuple(
            MemberProfile(
                member_id=uuid.uuid4(),
                sex=Sex(member.sex),
                age_band=AgeBand.of(member.age_on(today)),
                is_head=member.relationship == "head",
                vulnerabilities=tuple(Vulnerability(v) for v in member.vulnerabilities),
            )
            for member in household.members
        ),
        needs=tuple(
            Need(type=NeedType(need), priority=Priority(priority))
            for need, priority in household.needs
        ),
        preferred_language=household.preferred_language,
        consent=ConsentFlags(
            data_processing=True,
            referral_sharing=household.referral_sharing,
            contact=household.contact,
        ),
        version=1,
    )
