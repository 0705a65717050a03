"""Routing: region (admin2 before admin1), service type, capacity, language, load, tie-break."""

from __future__ import annotations

import random
import uuid

from hypothesis import given
from hypothesis import strategies as st

from services.referral.domain.routing import Candidate, RoutingRequest, choose, is_eligible, rank

MEDICAL = "medical"


def provider(
    n: int,
    *,
    services: tuple[str, ...] = (MEDICAL,),
    regions: tuple[str, ...] = ("MD01",),
    languages: tuple[str, ...] = ("ro",),
    capacity: int = 10,
    open_referrals: int = 0,
    active: bool = True,
) -> Candidate:
    return Candidate(
        provider_id=uuid.UUID(int=n),
        services=frozenset(services),
        regions=frozenset(regions),
        languages=frozenset(languages),
        capacity=capacity,
        open_referrals=open_referrals,
        active=active,
    )


def request(**overrides: object) -> RoutingRequest:
    fields: dict[str, object] = {
        "service_type": MEDICAL,
        "admin1": "MD01",
        "admin2": "MD0101",
        "language": "uk",
    }
    fields.update(overrides)
    return RoutingRequest(**fields)  # type: ignore[arg-type]


def chosen(req: RoutingRequest, *candidates: Candidate) -> int | None:
    result = choose(req, candidates)
    return result.provider_id.int if result else None


def test_region_admin2_match_beats_admin1_match() -> None:
    province = provider(1, regions=("MD01",))
    district = provider(2, regions=("MD0101",), open_referrals=5)  # busier, still preferred
    assert chosen(request(), province, district) == 2


def test_providers_outside_the_region_are_never_chosen() -> None:
    elsewhere = provider(1, regions=("MD02", "MD0201"))
    assert chosen(request(), elsewhere) is None
    assert chosen(request(admin2=None), provider(2, regions=("MD0101",))) is None
    assert chosen(request(admin2=None), provider(3, regions=("MD01",))) == 3


def test_only_providers_of_the_service_type() -> None:
    lawyers = provider(1, services=("legal",))
    clinic = provider(2, services=("legal", MEDICAL), open_referrals=9)
    assert chosen(request(), lawyers, clinic) == 2
    assert chosen(request(service_type="shelter"), lawyers, clinic) is None


def test_full_providers_are_skipped_and_zero_capacity_never_chosen() -> None:
    full = provider(1, capacity=3, open_referrals=3)
    closed = provider(2, capacity=0)
    spare = provider(3, capacity=3, open_referrals=2)
    assert chosen(request(), full, closed, spare) == 3
    assert chosen(request(), full, closed) is None


def test_language_preferred_where_possible() -> None:
    romanian = provider(1, languages=("ro",))
    ukrainian = provider(2, languages=("ro", "uk"), open_referrals=8)
    assert chosen(request(), romanian, ukrainian) == 2
    # nobody speaks it: still routed
    assert chosen(request(language="ar"), romanian, ukrainian) == 1


def test_region_precision_comes_before_language() -> None:
    district_no_uk = provider(1, regions=("MD0101",), languages=("ro",))
    province_uk = provider(2, regions=("MD01",), languages=("uk",))
    assert chosen(request(), district_no_uk, province_uk) == 1


def test_least_loaded_by_ratio_then_fewer_open_then_id() -> None:
    big_busy = provider(1, capacity=100, open_referrals=40)  # 0.40
    small_quiet = provider(2, capacity=10, open_referrals=3)  # 0.30
    assert chosen(request(), big_busy, small_quiet) == 2
    same_ratio_more = provider(3, capacity=20, open_referrals=6)  # 0.30, 6 open
    assert chosen(request(), same_ratio_more, small_quiet) == 2
    twin_a, twin_b = provider(7, open_referrals=1), provider(5, open_referrals=1)
    assert chosen(request(), twin_a, twin_b) == 5


def test_tried_and_inactive_providers_are_excluded() -> None:
    first = provider(1)
    second = provider(2, open_referrals=4)
    paused = provider(3, active=False)
    assert chosen(request(tried=frozenset({first.provider_id})), first, second, paused) == 2
    assert (
        chosen(
            request(tried=frozenset({first.provider_id, second.provider_id})), first, second, paused
        )
        is None
    )


def test_rank_gives_the_whole_order_for_rerouting() -> None:
    candidates = [
        provider(1, regions=("MD01",), languages=("uk",), open_referrals=0),
        provider(2, regions=("MD0101",), languages=("ro",), open_referrals=1),
        provider(3, regions=("MD0101",), languages=("uk",), open_referrals=5),
        provider(4, regions=("MD0101",), languages=("uk",), open_referrals=2),
        provider(5, regions=("MD02",), languages=("uk",)),
    ]
    assert [c.provider_id.int for c in rank(request(), candidates)] == [4, 3, 2, 1]


candidates_strategy = st.lists(
    st.builds(
        provider,
        st.integers(1, 50),
        services=st.sets(st.sampled_from([MEDICAL, "legal", "shelter"]), min_size=1).map(tuple),
        regions=st.sets(st.sampled_from(["MD01", "MD0101", "MD0102", "MD02"]), min_size=1).map(
            tuple
        ),
        languages=st.sets(st.sampled_from(["ro", "ru", "uk"])).map(tuple),
        capacity=st.integers(0, 5),
        open_referrals=st.integers(0, 6),
        active=st.booleans(),
    ),
    max_size=12,
    unique_by=lambda c: c.provider_id,
)


@given(candidates_strategy, st.sets(st.integers(1, 50)), st.randoms())
def test_choice_is_eligible_best_and_independent_of_order(
    candidates: list[Candidate], tried: set[int], rnd: random.Random
) -> None:
    req = request(tried=frozenset(uuid.UUID(int=n) for n in tried))
    best = choose(req, candidates)
    eligible = [c for c in candidates if is_eligible(c, req)]
    if not eligible:
        assert best is None
        return
    assert best is not None and is_eligible(best, req)
    assert best.provider_id.int not in tried
    assert best.open_referrals < best.capacity
    shuffled = list(candidates)
    rnd.shuffle(shuffled)
    assert choose(req, shuffled) == best

    # nobody eligible is strictly better on region precision
    def precision(c: Candidate) -> int:
        return 2 if "MD0101" in c.regions else 1

    assert precision(best) == max(precision(c) for c in eligible)
