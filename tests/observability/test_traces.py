"""One trace follows a registration from its HTTP request through the outbox and Kafka into the
consumers of the three other services, and on from referral into notifications."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from tests.observability.scenario import ObservedRun
from tests.support import eventually

HOUSEHOLDS_TOPIC = "haven.registration.households.v1"
REFERRALS_TOPIC = "haven.referral.referrals.v1"


def _attribute(span: ReadableSpan, name: str) -> str:
    return str((span.attributes or {}).get(name, ""))


async def test_one_trace_spans_the_request_and_the_downstream_consumers(
    observed: ObservedRun,
) -> None:
    household_id = observed.facts["household"]["id"]
    registrations = [
        s
        for s in observed.spans.get_finished_spans()
        if s.kind == SpanKind.SERVER
        and s.name == "POST /v1/households"
        and _attribute(s, "http.response.status_code") == "201"
    ]
    assert registrations, "the registration request made a server span"
    request = registrations[0]  # the scenario's first registration
    assert request.context is not None
    trace_id = request.context.trace_id

    def consumed_in_trace() -> set[tuple[str, str]]:
        return {
            (
                _attribute(s, "messaging.consumer.group.name").rsplit("-", 1)[-1],
                _attribute(s, "messaging.destination.name"),
            )
            for s in observed.spans.get_finished_spans()
            if s.kind == SpanKind.CONSUMER and s.context and s.context.trace_id == trace_id
        }

    expected = {
        ("distribution", HOUSEHOLDS_TOPIC),
        ("referral", HOUSEHOLDS_TOPIC),
        ("notifications", HOUSEHOLDS_TOPIC),
        ("notifications", REFERRALS_TOPIC),  # the referral made from the registration
    }

    async def all_there() -> bool:
        return expected <= consumed_in_trace()

    await eventually(all_there, timeout=30, what=f"consumer spans of trace {trace_id:032x}")
    # Every consumer span of the trace descends from the request, none starts a new trace.
    assert household_id
    consumers = [
        s
        for s in observed.spans.get_finished_spans()
        if s.kind == SpanKind.CONSUMER and s.context and s.context.trace_id == trace_id
    ]
    assert all(s.parent is not None for s in consumers)
