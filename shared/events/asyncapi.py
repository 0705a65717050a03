"""AsyncAPI 3.0 documents generated from the topic catalog (the single source of truth)."""

from __future__ import annotations

from typing import Any

from shared.events.catalog import CATALOG, Catalog

CLOUDEVENTS_HEADERS: dict[str, Any] = {
    "type": "object",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_dataschema"],
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string", "description": "UUIDv7"},
        "ce_source": {"type": "string"},
        "ce_type": {"type": "string"},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string"},
        "ce_dataschema": {"type": "string"},
        "ce_correlationid": {"type": "string"},
        "ce_causationid": {"type": "string"},
        "ce_actor": {"type": "string"},
        "content-type": {"type": "string", "const": "application/json"},
        "traceparent": {"type": "string"},
    },
}


def asyncapi_document(service: str, *, version: str, catalog: Catalog = CATALOG) -> dict[str, Any]:
    """The AsyncAPI document of one service: the channels it sends to and receives from."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for topic in catalog.topics:
        sends = service in topic.producers
        receives = service in topic.consumers
        if not (sends or receives):
            continue
        channel_id = topic.name.replace(".", "_")
        messages: dict[str, Any] = {}
        for event in topic.events:
            schema = event.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[event.event_type] = schema
            messages[event.event_type] = {
                "name": event.event_type,
                "title": event.event_type,
                "summary": (event.__doc__ or "").strip().split("\n")[0],
                "contentType": "application/json",
                "headers": CLOUDEVENTS_HEADERS,
                "payload": {"$ref": f"#/components/schemas/{event.event_type}"},
                "bindings": {"kafka": {"key": {"type": "string", "description": topic.key}}},
            }
        channels[channel_id] = {
            "address": topic.name,
            "description": topic.description,
            "messages": messages,
            "bindings": {
                "kafka": {
                    "topic": topic.name,
                    "partitions": topic.partitions,
                    "topicConfiguration": {
                        "cleanup.policy": ["compact" if topic.compacted else "delete"]
                    },
                }
            },
        }
        refs = [{"$ref": f"#/channels/{channel_id}/messages/{m}"} for m in messages]
        if sends:
            operations[f"send_{channel_id}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "messages": refs,
            }
        if receives:
            operations[f"receive_{channel_id}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "messages": refs,
            }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": f"Haven {service} events", "version": version},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas},
    }
