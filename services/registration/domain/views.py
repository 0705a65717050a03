"""Households as callers see them: loaded with members and documents, sensitive data filtered."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.registration.models import (
    ConsentPublic,
    DocumentPublic,
    Household,
    HouseholdPublic,
    LocationPublic,
    Member,
    MemberDocument,
    MemberPublic,
    NeedPublic,
)
from shared.auth import ALL_SITES, Principal, Role
from shared.vocabulary import SENSITIVE_VULNERABILITIES, Vulnerability

SiteScope = frozenset[str] | None
"""The sites a caller may see; None means every site."""


@dataclass(frozen=True)
class Actor:
    """Who is acting, and what that lets them see."""

    principal: Principal

    @property
    def scope(self) -> SiteScope:
        if Role.ADMIN in self.principal.roles or ALL_SITES in self.principal.sites:
            return None
        return self.principal.sites

    @property
    def sees_sensitive(self) -> bool:
        """Sensitive vulnerabilities are shown to caseworkers and administrators only."""
        return self.principal.has_any(Role.CASEWORKER, Role.ADMIN)

    def can_access(self, site_id: str) -> bool:
        return self.principal.can_access_site(site_id)

    @property
    def is_supervisor(self) -> bool:
        return Role.SUPERVISOR in self.principal.roles

    def sees_candidate_at(self, site_id: str) -> bool:
        """Whether a duplicate candidate at ``site_id`` is shown in full (id, case number,
        site, score): at the caller's own sites, and to supervisors, who review cross-site
        pairs. Anyone else learns only that there is a possible duplicate at another site."""
        return self.can_access(site_id) or self.is_supervisor


@dataclass
class HouseholdView:
    household: Household
    members: list[Member]
    documents: dict[UUID, list[MemberDocument]]


async def load_members(session: AsyncSession, household_ids: Sequence[UUID]) -> list[Member]:
    if not household_ids:
        return []
    result = await session.exec(
        select(Member)
        .where(col(Member.household_id).in_(household_ids))
        .order_by(col(Member.household_id), col(Member.position))
    )
    return list(result.all())


async def load_documents(
    session: AsyncSession, household_ids: Sequence[UUID]
) -> dict[UUID, list[MemberDocument]]:
    documents: dict[UUID, list[MemberDocument]] = defaultdict(list)
    if household_ids:
        result = await session.exec(
            select(MemberDocument)
            .where(col(MemberDocument.household_id).in_(household_ids))
            .order_by(col(MemberDocument.id))
        )
        for document in result.all():
            documents[document.member_id].append(document)
    return documents


async def load_views(session: AsyncSession, households: Sequence[Household]) -> list[HouseholdView]:
    ids = [h.id for h in households]
    members = await load_members(session, ids)
    documents = await load_documents(session, ids)
    by_household: dict[UUID, list[Member]] = defaultdict(list)
    for member in members:
        by_household[member.household_id].append(member)
    return [HouseholdView(h, by_household[h.id], documents) for h in households]


def member_public(
    member: Member, documents: Sequence[MemberDocument], *, sees_sensitive: bool
) -> MemberPublic:
    vulnerabilities = [Vulnerability(v) for v in sorted(member.vulnerabilities)]
    if not sees_sensitive:
        vulnerabilities = [v for v in vulnerabilities if v not in SENSITIVE_VULNERABILITIES]
    return MemberPublic(
        id=member.id,
        given_name=member.given_name,
        family_name=member.family_name,
        sex=member.sex,
        date_of_birth=member.date_of_birth,
        estimated_age=member.estimated_age,
        relationship=member.relationship,
        nationality=member.nationality,
        documents=[
            DocumentPublic(
                type=d.doc_type,
                number=d.number,
                issuing_country=d.issuing_country,
            )
            for d in documents
        ],
        vulnerabilities=vulnerabilities,
    )


def household_public(view: HouseholdView, *, sees_sensitive: bool) -> HouseholdPublic:
    h = view.household
    assert h.admin1 is not None and h.consent_given_at is not None
    return HouseholdPublic.model_validate(
        {
            "id": h.id,
            "case_number": h.case_number,
            "site_id": h.site_id,
            "location": LocationPublic(admin1=h.admin1, admin2=h.admin2, settlement=h.settlement),
            "displacement_status": h.displacement_status,
            "arrival_date": h.arrival_date,
            "preferred_language": h.preferred_language,
            "phone": h.phone,
            "consent": ConsentPublic(
                data_processing=bool(h.consent_data_processing),
                referral_sharing=bool(h.consent_referral_sharing),
                contact=bool(h.consent_contact),
                given_at=h.consent_given_at,
            ),
            "status": h.status,
            "version": h.version,
            "members": [
                member_public(m, view.documents.get(m.id, []), sees_sensitive=sees_sensitive)
                for m in view.members
            ],
            "needs": [NeedPublic.model_validate(n) for n in h.needs],
            "registered_at": h.registered_at,
            "updated_at": h.updated_at,
            "merged_into": h.merged_into_id,
            "deactivation_reason": h.deactivation_reason,
        }
    )


async def load_view(session: AsyncSession, household: Household) -> HouseholdView:
    """One household as callers see it."""
    return (await load_views(session, [household]))[0]
