"""The household read models of the downstream services speak one vocabulary
(docs/architecture.md, "Household read models"): the same verbs, the event in, ``at=`` the
time recorded for the change."""

from __future__ import annotations

import importlib
import inspect

import pytest

from shared.events.catalog import HOUSEHOLDS

VERBS_TAKING_THE_EVENT = ("deactivate", "merge", "erase")


@pytest.mark.parametrize("service", sorted(HOUSEHOLDS.consumers))
def test_a_downstream_service_keeps_its_household_read_model_in_the_common_verbs(
    service: str,
) -> None:
    module = importlib.import_module(f"services.{service}.domain.households")
    assert callable(getattr(module, "apply_profiles", None)), service
    for verb in VERBS_TAKING_THE_EVENT:
        function = getattr(module, verb, None)
        if function is None:
            assert verb == "deactivate", f"{service} has no households.{verb}"
            continue  # a service may ignore deactivation (notifications keeps no profile)
        parameters = inspect.signature(function).parameters
        assert {"session", "event", "at"} <= set(parameters), (service, verb, list(parameters))
    for name, function in inspect.getmembers(module, inspect.iscoroutinefunction):
        if name.startswith("_"):
            continue
        assert "now" not in inspect.signature(function).parameters, (service, name)
    for old in ("anonymise", "remember_sites", "forget_household"):
        assert not hasattr(module, old), (service, old)
