"""The alert rules are valid and each one is unit-tested in promtool's rule-test format."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "deploy" / "prometheus").glob("*.rules.yml"))
RULE_TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.yml"))
PROMTOOL = shutil.which("promtool") or (
    "/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None
)
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)"
)

ISSUE_ALERTS = {
    "HavenServiceDown",
    "HavenOutboxStuck",
    "HavenConsumerLagGrowing",
    "HavenDeadLetters",
    "HavenStockBelowReorderLevel",
    "HavenReferralDeadlinesBreached",
}


def alert_names() -> set[str]:
    return {
        rule["alert"]
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def alerts_seen_firing_in_tests() -> set[str]:
    return {
        case["alertname"]
        for path in RULE_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=ROOT, check=False
    )


def test_the_alerts_the_issue_asks_for_exist() -> None:
    assert alert_names() >= ISSUE_ALERTS


def test_every_alert_has_a_unit_test_that_sees_it_fire() -> None:
    assert RULE_TESTS
    assert alert_names() == alerts_seen_firing_in_tests()


@needs_promtool
def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", *map(str, RULES))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
