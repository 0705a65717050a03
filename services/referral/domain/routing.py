"""Routing: which provider a referral goes to. A pure function over a snapshot of providers.

A provider is *eligible* when it is active, offers the service type, has not been tried for
this referral yet, has a free slot (open referrals < capacity) and serves the household's
region: its regions list the household's admin2 or admin1 p-code.

Eligible providers are ranked by, in order:

1. region precision: an admin2 (district) match before an admin1 (province) match;
2. language: speaks the household's preferred language before does not;
3. load: open referrals / capacity, lowest first;
4. fewer open referrals (at equal load);
5. provider id, so the choice never depends on query order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from uuid import UUID


@dataclass(frozen=True)
class Candidate:
    """What routing needs to know about one provider."""

    provider_id: UUID
    services: frozenset[str]
    regions: frozenset[str]
    languages: frozenset[str]
    capacity: int
    open_referrals: int
    active: bool = True

    @property
    def load(self) -> Fraction:
        return Fraction(self.open_referrals, self.capacity) if self.capacity else Fraction(1)

    @property
    def has_free_slot(self) -> bool:
        return self.open_referrals < self.capacity


@dataclass(frozen=True)
class RoutingRequest:
    """The referral being routed and the household's whereabouts."""

    service_type: str
    admin1: str | None
    admin2: str | None
    language: str | None
    tried: frozenset[UUID] = field(default_factory=frozenset)


def region_match(candidate: Candidate, request: RoutingRequest) -> int:
    """2: serves the household's admin2; 1: its admin1; 0: neither."""
    if request.admin2 and request.admin2 in candidate.regions:
        return 2
    if request.admin1 and request.admin1 in candidate.regions:
        return 1
    return 0


def is_eligible(candidate: Candidate, request: RoutingRequest) -> bool:
    return (
        candidate.active
        and request.service_type in candidate.services
        and candidate.provider_id not in request.tried
        and candidate.has_free_slot
        and region_match(candidate, request) > 0
    )


def rank(request: RoutingRequest, candidates: Iterable[Candidate]) -> list[Candidate]:
    """The eligible providers, best first."""

    def key(candidate: Candidate) -> tuple[int, int, Fraction, int, str]:
        speaks = request.language is not None and request.language in candidate.languages
        return (
            -region_match(candidate, request),
            0 if speaks else 1,
            candidate.load,
            candidate.open_referrals,
            str(candidate.provider_id),
        )

    return sorted((c for c in candidates if is_eligible(c, request)), key=key)


def choose(request: RoutingRequest, candidates: Iterable[Candidate]) -> Candidate | None:
    """The provider the referral goes to, or None: the managers' queue."""
    ranked = rank(request, candidates)
    return ranked[0] if ranked else None
