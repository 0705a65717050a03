"""What a household is due: the policy in force today applied to what it already received.

The policy in force on the day of the distribution decides (never the one in force when
earlier items were given). Received quantities count by calendar day in the programme's time
zone: with a 30-day window, a household served on 1 March is due again on 31 March.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution.domain.errors import (
    EntitlementExceeded,
    NoPolicyInForce,
    PrescriptionOfAnotherHousehold,
    ReferenceRequired,
    UnknownPrescription,
)
from services.distribution.domain.households import HouseholdState, household_for_command
from services.distribution.domain.policy import (
    CategoryRule,
    EntitlementPolicy,
    PolicyBook,
    PolicyError,
)
from services.distribution.models import (
    CategoryEntitlementPublic,
    Distribution,
    DistributionLine,
    DistributionLineCreate,
    DistributionStatus,
    EntitlementsPublic,
    ItemCategory,
    ShelterAllocation,
    ShelterEntitlementPublic,
)
from shared import audit
from shared.auth import Principal
from shared.vocabulary import HouseholdStatus

SERVICE = "distribution"


@dataclass(frozen=True)
class Received:
    """Something a household was given (and not voided)."""

    category: str
    sku: str
    on: date
    quantity: int
    reference: str | None = None


def category_entitlement(
    category: ItemCategory,
    rule: CategoryRule | None,
    *,
    household_size: int,
    needs: Iterable[str],
    received: Sequence[Received],
    today: date,
    vulnerabilities: Iterable[str] = (),
) -> CategoryEntitlementPublic:
    """Pure rule: allowed, received in the window, due now and the next eligible date."""
    mine = [r for r in received if r.category == category]
    if rule is None:
        return CategoryEntitlementPublic(
            category=category,
            basis="none",
            allowed=0,
            window_days=None,
            received=sum(r.quantity for r in mine),
            due=0,
            next_eligible_on=None,
            requires_reference=False,
            reason="not_in_policy",
        )
    allowed = rule.allowance(household_size)
    reason = None
    if rule.requires_need is not None and rule.requires_need not in set(needs):
        allowed, reason = 0, "need_not_assessed"
    elif rule.requires_vulnerability is not None and rule.requires_vulnerability not in set(
        vulnerabilities
    ):
        allowed, reason = 0, "vulnerability_not_flagged"
    if rule.window_days is not None:
        window_start = today - timedelta(days=rule.window_days)
        mine = [r for r in mine if r.on > window_start]
    received_total = sum(r.quantity for r in mine)
    if allowed is None:  # as prescribed: each reference once
        return CategoryEntitlementPublic(
            category=category,
            basis=rule.basis,
            allowed=None,
            window_days=rule.window_days,
            received=received_total,
            due=None,
            next_eligible_on=today,
            requires_reference=rule.requires_reference,
            reason=reason,
        )
    due = max(0, allowed - received_total)
    return CategoryEntitlementPublic(
        category=category,
        basis=rule.basis,
        allowed=allowed,
        window_days=rule.window_days,
        received=received_total,
        due=due,
        next_eligible_on=_next_eligible(allowed, rule.window_days, mine, due, today),
        requires_reference=rule.requires_reference,
        reason=reason or _why_nothing_due(due, rule.window_days),
    )


def _why_nothing_due(due: int, window_days: int | None) -> str | None:
    if due:
        return None
    return "already_received" if window_days is None else "received_in_window"


def _next_eligible(
    allowed: int, window_days: int | None, in_window: Sequence[Received], due: int, today: date
) -> date | None:
    """Today when something is due; else the day enough of the window's receipts age out for
    one more unit; None when that never happens (once-only, or nothing allowed)."""
    if due > 0:
        return today
    if window_days is None or allowed == 0:
        return None
    still_counted = sum(r.quantity for r in in_window)
    for receipt in sorted(in_window, key=lambda r: r.on):
        still_counted -= receipt.quantity
        if still_counted < allowed:
            return receipt.on + timedelta(days=window_days)
    return None  # unreachable: an empty window leaves something due


def policy_in_force(policies: PolicyBook, today: date) -> EntitlementPolicy:
    try:
        return policies.in_force(today)
    except PolicyError as exc:
        raise NoPolicyInForce(str(exc)) from exc


async def received_by(session: AsyncSession, household_id: UUID) -> list[Received]:
    """Every line the household received in distributions that were not voided."""
    rows = await session.exec(
        select(DistributionLine, col(Distribution.distributed_on))
        .join(Distribution, col(Distribution.id) == col(DistributionLine.distribution_id))
        .where(
            col(Distribution.household_id) == household_id,
            col(Distribution.status) == DistributionStatus.RECORDED,
        )
    )
    return [
        Received(
            category=line.category,
            sku=line.sku,
            on=distributed_on,
            quantity=line.quantity,
            reference=line.prescription_reference,
        )
        for line, distributed_on in rows.all()
    ]


async def beds_allocated(session: AsyncSession, household_id: UUID) -> int:
    total = await session.scalar(
        select(sa.func.coalesce(sa.func.sum(col(ShelterAllocation.beds)), 0)).where(
            col(ShelterAllocation.household_id) == household_id,
            col(ShelterAllocation.released_at).is_(None),
        )
    )
    return int(total or 0)


def check_lines(
    *,
    policy: EntitlementPolicy,
    household: HouseholdState,
    lines: Sequence[DistributionLineCreate],
    categories: Mapping[str, str],
    received: Sequence[Received],
    today: date,
    prescriptions: Mapping[str, bool],
) -> None:
    """Refuse the request when a line goes over the entitlement (EntitlementExceeded, listing
    each line and what is allowed) or lacks a reference it needs (ReferenceRequired), or its
    reference is not in the prescription register (UnknownPrescription) or is another
    household's (PrescriptionOfAnotherHousehold). ``categories``: each line's SKU's item
    category; ``prescriptions``: the register's answer per reference (True: this household's)."""
    size = household.household_size or 0
    references = _ReferenceCheck(received, prescriptions)
    over: list[dict[str, Any]] = []
    lines_by_category: dict[str, list[tuple[int, DistributionLineCreate]]] = defaultdict(list)
    for index, line in enumerate(lines):
        lines_by_category[categories[line.sku]].append((index, line))
    for category, category_lines in sorted(lines_by_category.items()):
        rule = policy.categories.get(ItemCategory(category))
        due = category_entitlement(
            ItemCategory(category),
            rule,
            household_size=size,
            needs=household.needs,
            received=received,
            today=today,
            vulnerabilities=household.vulnerabilities,
        )
        if rule is not None and rule.requires_reference:
            for index, line in category_lines:
                if references.already_dispensed(index, line):
                    over.append(_over(index, line, category, due, "reference_already_dispensed"))
        if due.due is None:
            continue
        requested = sum(line.quantity for _, line in category_lines)
        if requested > due.due:
            reason = due.reason or "over_entitlement"
            over.extend(_over(index, line, category, due, reason) for index, line in category_lines)
    references.raise_problems()
    if over:
        raise EntitlementExceeded(
            "Over entitlement: "
            + "; ".join(
                f"line {o['line']} {o['sku']}: {o['requested']} requested, "
                f"{'as prescribed' if o['allowed'] is None else o['allowed']} allowed now"
                for o in over
            )
            + ".",
            policy_version=policy.version,
            lines=over,
        )


class _ReferenceCheck:
    """The references of the lines that need one: present, in the prescription register, the
    household's own, and not dispensed before for the same SKU."""

    def __init__(self, received: Sequence[Received], prescriptions: Mapping[str, bool]) -> None:
        self.prescriptions = prescriptions
        self.used = {(r.sku, r.reference) for r in received if r.reference is not None}
        self.missing: list[dict[str, Any]] = []
        self.unknown: list[dict[str, Any]] = []
        self.foreign: list[dict[str, Any]] = []

    def already_dispensed(self, index: int, line: DistributionLineCreate) -> bool:
        """Check the line's reference (noting what is wrong); True when it was dispensed
        before for this SKU."""
        reference, where = line.prescription_reference, {"line": index, "sku": line.sku}
        if reference is None:
            self.missing.append(where)
            return False
        if reference not in self.prescriptions:
            self.unknown.append(where)
        elif not self.prescriptions[reference]:
            self.foreign.append(where)
        key = (line.sku, reference)
        dispensed = key in self.used
        self.used.add(key)
        return dispensed

    def raise_problems(self) -> None:
        if self.missing:
            raise ReferenceRequired(
                "Medication is given only against a referral or prescription reference "
                "(prescription_reference on the line).",
                lines=self.missing,
            )
        if self.unknown:
            raise UnknownPrescription(
                "No prescription with this reference is recorded: record it for the "
                "household first (POST /v1/households/{household_id}/prescriptions).",
                lines=self.unknown,
            )
        if self.foreign:
            raise PrescriptionOfAnotherHousehold(
                "This prescription reference was recorded for another household: medication "
                "is given only against the household's own prescription.",
                lines=self.foreign,
            )


def _over(
    index: int,
    line: DistributionLineCreate,
    category: str,
    due: CategoryEntitlementPublic,
    reason: str,
) -> dict[str, Any]:
    return {
        "line": index,
        "sku": line.sku,
        "category": category,
        "requested": line.quantity,
        "allowed": due.due,
        "received_in_window": due.received,
        "window_days": due.window_days,
        "next_eligible_on": due.next_eligible_on,
        "reason": reason,
    }


async def household_entitlements(
    *,
    session: AsyncSession,
    principal: Principal,
    household_id: UUID,
    policies: PolicyBook,
    today: date,
    retry_after_seconds: int,
) -> EntitlementsPublic:
    """Per item category: what is due now, what was received, the next eligible date."""
    household = await household_for_command(
        session=session,
        principal=principal,
        household_id=household_id,
        retry_after_seconds=retry_after_seconds,
        lock=False,
    )
    policy = policy_in_force(policies, today)
    received = await received_by(session, household_id)
    active = household.status == HouseholdStatus.ACTIVE and household.household_size is not None
    categories = []
    for category in ItemCategory:
        entitlement = category_entitlement(
            category,
            policy.categories.get(category),
            household_size=household.household_size or 0,
            needs=household.needs,
            received=received,
            today=today,
            vulnerabilities=household.vulnerabilities,
        )
        if not active:
            entitlement = entitlement.model_copy(
                update={"due": 0, "next_eligible_on": None, "reason": "household_not_active"}
            )
        categories.append(entitlement)
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="entitlements.read",
        resource_type="household",
        resource_id=str(household_id),
    )
    return EntitlementsPublic(
        household_id=household.household_id,
        site_id=household.site_id,
        status=household.status,
        household_size=household.household_size,
        as_of=today,
        policy_version=policy.version,
        categories=categories,
        shelter=ShelterEntitlementPublic(
            beds_allowed=(
                policy.shelter.beds_allowed(household.household_size or 0, household.needs)
                if active
                else 0
            ),
            beds_allocated=await beds_allocated(session, household_id),
            requires_need=policy.shelter.requires_need,
        ),
    )
