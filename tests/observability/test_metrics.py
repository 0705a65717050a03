"""The business metrics: DB-derived gauges read the real schema, counters count only commits."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from shared import metrics
from shared.db import create_engine, session_factory
from shared.settings import ServiceSettings
from tests.support import migrated_database

GAUGES = {
    "registration": "services.registration.domain.metrics",
    "distribution": "services.distribution.domain.metrics",
    "referral": "services.referral.domain.metrics",
}


@pytest.mark.parametrize("service", sorted(GAUGES))
async def test_every_gauge_query_runs_on_the_migrated_schema(infra: Any, service: str) -> None:
    module = __import__(GAUGES[service], fromlist=["GAUGES"])
    url = await migrated_database(infra, service)
    engine = create_engine(url)
    try:
        # the service's own typed settings, as its runtime carries them
        definition = __import__(f"services.{service}.service", fromlist=["DEFINITION"]).DEFINITION
        runtime: Any = SimpleNamespace(
            sessions=session_factory(engine), settings=definition.settings_class(service=service)
        )
        await metrics.refresh(runtime, module.GAUGES)
    finally:
        await engine.dispose()


async def test_referrals_show_zero_for_every_service_type_when_none_are_open(infra: Any) -> None:
    from services.referral.domain import metrics as referral_metrics

    url = await migrated_database(infra, "referral")
    engine = create_engine(url)
    try:
        runtime: Any = SimpleNamespace(sessions=session_factory(engine), settings=ServiceSettings())
        await metrics.refresh(runtime, referral_metrics.GAUGES)
    finally:
        await engine.dispose()
    assert REGISTRY.get_sample_value("haven_referrals_open", {"service_type": "medical"}) == 0
    assert REGISTRY.get_sample_value("haven_referrals_open_overdue", {"service_type": "legal"}) == 0


def test_a_database_gauge_drops_label_sets_that_disappeared() -> None:
    gauge = metrics.DatabaseGauge(metrics.SHELTER_BEDS_CAPACITY, query=None)  # type: ignore[arg-type]
    gauge.show({("TST-A",): 10.0, ("TST-B",): 4.0})
    gauge.show({("TST-B",): 5.0})
    assert REGISTRY.get_sample_value("haven_shelter_beds_capacity", {"site": "TST-A"}) is None
    assert REGISTRY.get_sample_value("haven_shelter_beds_capacity", {"site": "TST-B"}) == 5.0


async def test_after_commit_counts_a_committed_transaction_once_and_a_rolled_back_never(
    infra: Any,
) -> None:
    engine = create_engine(infra.postgres_url("haven_obs_after_commit"))
    counted: list[str] = []
    try:
        sessions = session_factory(engine)
        async with sessions() as session:
            with pytest.raises(RuntimeError):
                async with session.begin():
                    metrics.after_commit(session, lambda: counted.append("rolled back"))
                    await metrics.rows(session, sa.text("SELECT 1"))
                    raise RuntimeError("abort")
            async with session.begin():
                metrics.after_commit(session, lambda: counted.append("committed"))
                await metrics.rows(session, sa.text("SELECT 1"))
            async with session.begin():
                await metrics.rows(session, sa.text("SELECT 1"))
    finally:
        await engine.dispose()
    assert counted == ["committed"]
