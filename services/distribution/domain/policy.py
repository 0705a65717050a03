"""The entitlement policy: versioned YAML files with effective dates, validated on load.

Each file under ``services/distribution/policy/`` is one version of the policy. The version in
force on a date is the one with the latest ``effective_from`` not after that date, so a new
file changes what is due from its effective date on and never touches what was given before.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.distribution.models import ItemCategory
from shared.vocabulary import NeedType, Vulnerability

POLICY_FILE_PATTERN = "*.yaml"


class PolicyError(RuntimeError):
    """A policy file is missing, unreadable or invalid; the service refuses to start."""


class Basis(StrEnum):
    HOUSEHOLD = "household"
    PERSON = "person"


class _PolicyPart(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LargerHouseholds(_PolicyPart):
    """A larger allowance for households with more than ``more_than_members`` members."""

    more_than_members: int = Field(ge=1)
    quantity: int = Field(ge=1)


class CategoryRule(_PolicyPart):
    """What one household may receive of one item category."""

    basis: Basis = Basis.HOUSEHOLD
    quantity: int | None = Field(
        default=None, ge=1, description="Units per basis; none: as prescribed (medication)."
    )
    window_days: int | None = Field(
        default=None, ge=1, description="Rolling window in days; none: once per household."
    )
    larger_households: LargerHouseholds | None = None
    requires_need: NeedType | None = None
    requires_vulnerability: Vulnerability | None = Field(
        default=None,
        description="Nothing is due unless a member of the household has this vulnerability. "
        "Only the vulnerabilities a rule names are kept by this service.",
    )
    requires_reference: bool = Field(
        default=False, description="Each line needs a referral or prescription reference."
    )

    @model_validator(mode="after")
    def _coherent(self) -> CategoryRule:
        if self.quantity is None and not self.requires_reference:
            raise ValueError("quantity is required unless requires_reference is true")
        if self.larger_households is not None and self.basis != Basis.HOUSEHOLD:
            raise ValueError("larger_households only applies to basis: household")
        if self.quantity is None and self.window_days is not None:
            raise ValueError("window_days needs a quantity")
        return self

    def allowance(self, household_size: int) -> int | None:
        """Units allowed per window (or once); None when only a reference limits it."""
        if self.quantity is None:
            return None
        if self.basis == Basis.PERSON:
            return self.quantity * household_size
        larger = self.larger_households
        if larger is not None and household_size > larger.more_than_members:
            return larger.quantity
        return self.quantity


class ShelterRule(_PolicyPart):
    beds_per_person: int = Field(default=1, ge=1)
    requires_need: NeedType | None = NeedType.SHELTER

    def beds_allowed(self, household_size: int, needs: Iterable[str]) -> int:
        if self.requires_need is not None and self.requires_need not in set(needs):
            return 0
        return self.beds_per_person * household_size


class EntitlementPolicy(_PolicyPart):
    """One version of the policy. Categories not listed cannot be distributed."""

    version: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    effective_from: date
    description: str | None = Field(default=None, max_length=2000)
    categories: dict[ItemCategory, CategoryRule]
    shelter: ShelterRule = ShelterRule()


@dataclass(frozen=True)
class PolicyBook:
    """Every version of the policy, oldest first."""

    policies: tuple[EntitlementPolicy, ...]

    def vulnerabilities_named(self) -> frozenset[str]:
        """Every vulnerability a rule of any version names: all that the household read model
        keeps of a profile's vulnerabilities (the others, sensitive ones included, are never
        stored here)."""
        return frozenset(
            rule.requires_vulnerability.value
            for policy in self.policies
            for rule in policy.categories.values()
            if rule.requires_vulnerability is not None
        )

    def in_force(self, on: date) -> EntitlementPolicy:
        """The version in force on ``on``: the latest whose effective date is not after it."""
        current = None
        for policy in self.policies:
            if policy.effective_from <= on:
                current = policy
        if current is None:
            raise PolicyError(f"no entitlement policy is in force on {on.isoformat()}")
        return current


def load_policy_file(path: Path) -> EntitlementPolicy:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"entitlement policy {path}: cannot read it: {exc}") from exc
    try:
        return EntitlementPolicy.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '<file>'}: {error['msg']}"
            for error in exc.errors()
        )
        raise PolicyError(f"entitlement policy {path} is invalid: {problems}") from exc


def load_policies(directory: Path) -> PolicyBook:
    """Read and validate every policy file of ``directory``; PolicyError says what is wrong."""
    if not directory.is_dir():
        raise PolicyError(f"entitlement policy directory {directory} does not exist")
    paths = sorted(directory.glob(POLICY_FILE_PATTERN))
    if not paths:
        raise PolicyError(f"no entitlement policy file ({POLICY_FILE_PATTERN}) in {directory}")
    policies = sorted((load_policy_file(p) for p in paths), key=lambda p: p.effective_from)
    for first, second in itertools.pairwise(policies):
        if first.effective_from == second.effective_from:
            raise PolicyError(
                f"entitlement policies {first.version} and {second.version} take effect on the "
                f"same day ({first.effective_from.isoformat()})"
            )
    versions = [p.version for p in policies]
    if len(set(versions)) != len(versions):
        raise PolicyError(f"entitlement policy versions must be unique, got {versions}")
    return PolicyBook(tuple(policies))
