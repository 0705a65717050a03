"""A caller cannot force sampling through ``traceparent``; services agree on one trace."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from shared.telemetry import extract_trace_context, sampler


def provider(ratio: float) -> TracerProvider:
    return TracerProvider(resource=Resource.create({}), sampler=sampler(ratio))


def test_a_sampled_traceparent_from_a_caller_does_not_force_sampling() -> None:
    tracer = provider(0.0).get_tracer("t")
    forced = extract_trace_context(
        {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    )
    span = tracer.start_span("request", context=forced)
    assert not span.get_span_context().trace_flags.sampled


def test_the_decision_for_one_trace_is_the_same_in_every_service() -> None:
    producer, consumer = provider(0.5).get_tracer("p"), provider(0.5).get_tracer("c")
    decisions = []
    for _ in range(200):
        root = producer.start_span("publish")
        carrier = {
            "traceparent": f"00-{root.get_span_context().trace_id:032x}-"
            f"{root.get_span_context().span_id:016x}-"
            f"{'01' if root.get_span_context().trace_flags.sampled else '00'}"
        }
        child = consumer.start_span("consume", context=extract_trace_context(carrier))
        decisions.append(
            (
                root.get_span_context().trace_flags.sampled,
                child.get_span_context().trace_flags.sampled,
            )
        )
    assert all(a == b for a, b in decisions)
    assert {a for a, _ in decisions} == {True, False}  # the ratio really decides


def test_a_span_of_this_process_follows_its_parent() -> None:
    tracer = provider(1.0).get_tracer("t")
    with tracer.start_as_current_span("parent"):
        child = tracer.start_span("child")
    assert child.get_span_context().trace_flags.sampled
