"""docs/deploy.md states each topic's retention as the catalog has it."""

from __future__ import annotations

import re

from shared.events.catalog import CATALOG, DAY_MS, Topic
from tests.deploy.manifests import ROOT


def _retention(topic: Topic) -> str:
    if topic.compacted:
        return "compacted"
    retention_ms = int(topic.topic_config().get("retention.ms", -1))
    return "forever" if retention_ms < 0 else f"{retention_ms // DAY_MS} days"


def test_the_retention_table_matches_the_catalog() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z0-9.<>]+)` \| ([^|]+) \|", text, re.M))
    for topic in CATALOG.topics:
        assert topic.name in rows, f"docs/deploy.md has no retention row for {topic.name}"
        assert rows[topic.name].strip().startswith(_retention(topic)), topic.name
