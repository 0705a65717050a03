"""Distributions: give a household items from a warehouse, within its entitlement and the stock.

One transaction per distribution, in the service-wide lock order: the household's row
(``SELECT ... FOR UPDATE``: two desks serving the same household queue here, and the second
sees what the first gave), then the warehouse's balance rows of the SKUs involved (ordered by
warehouse, SKU, batch). Entitlement and stock are checked against the locked state, so
concurrent requests can neither oversell nor exceed an entitlement.

Idempotency: ``client_ref`` is unique across the service. A re-send of the same request
returns the stored original response (same status and body); the same ``client_ref`` with a
different body is refused with 409 ``client-ref-reused``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.distribution.domain import entitlements
from services.distribution.domain.catalogue import SERVICE, items_by_sku
from services.distribution.domain.errors import (
    AlreadyVoided,
    ClientRefReused,
    DistributionAnonymised,
    DistributionNotFound,
    DistributionOutOfScope,
    InsufficientStock,
    UnknownItems,
    WarehouseNotFound,
    WarehouseOutOfScope,
)
from services.distribution.domain.households import (
    lock_households,
    require_active,
    visible_household,
)
from services.distribution.domain.policy import PolicyBook
from services.distribution.domain.stock import (
    EVENT_SOURCE,
    Ledger,
    Pick,
    Withdrawal,
    is_expired,
    lock_balances,
    plan_withdrawals,
)
from services.distribution.models import (
    Distribution,
    DistributionCreate,
    DistributionLine,
    DistributionLinePublic,
    DistributionPublic,
    DistributionStatus,
    IssuedBatchPublic,
    ItemCategory,
    LedgerKind,
    Page,
    StockLedgerEntry,
    VoidReason,
)
from shared import audit
from shared.auth import ALL_SITES, Principal, Role
from shared.events.distribution import (
    DistributedLine,
    DistributionRecorded,
    DistributionVoided,
    StockExpired,
)
from shared.outbox import add_event
from shared.pagination import InvalidCursor, decode_cursor, encode_cursor

CREATED = 201
CHECK_VIOLATION = "23514"
MAX_HOUSEHOLD_LOCK_ATTEMPTS = 5


@dataclass(frozen=True)
class Outcome:
    """The HTTP status and JSON body of a distribution request: stored, so a re-send gets the
    very same answer."""

    status: int
    body: dict[str, Any]
    issued: tuple[tuple[str, int], ...] = ()
    """A new distribution's units by item category, to count once it committed; a replay
    counts nothing."""
    site_id: str | None = None


def fingerprint(data: DistributionCreate) -> str:
    return hashlib.sha256(data.model_dump_json().encode()).hexdigest()


# Built once (a distribution runs them all): calls only bind values.
_BY_CLIENT_REF = (
    select(Distribution)
    .where(col(Distribution.client_ref) == sa.bindparam("client_ref"))
    .execution_options(populate_existing=True)
)

# The household lock: two desks serving the same household queue here.
_LOCK_HOUSEHOLD = sa.text("""
SELECT site_id, household_size, needs, status, merged_into
FROM household_view WHERE household_id = :household_id
FOR UPDATE
""").columns(
    sa.column("site_id", sa.Text),
    sa.column("household_size", sa.Integer),
    sa.column("needs", postgresql.ARRAY(sa.Text)),
    sa.column("status", sa.Text),
    sa.column("merged_into", sa.Uuid),
)

# Everything else a distribution is decided on, in one statement sent once the household is
# locked (so it sees what an earlier desk serving this household committed): the warehouse's
# site, whether the client_ref is taken, the items' categories, the warehouse's reorder levels
# of those items, and one row per line the household received (none: one row of NULLs).
_REQUEST_FACTS = sa.text("""
SELECT w.site_id AS warehouse_site_id,
    EXISTS (SELECT FROM distribution WHERE client_ref = :client_ref) AS client_ref_taken,
    i.skus AS item_skus, i.categories AS item_categories,
    r.skus AS level_skus, r.levels AS levels,
    got.category, got.sku, got.distributed_on, got.quantity, got.prescription_reference
FROM (SELECT) AS one
LEFT JOIN warehouse AS w ON w.id = :warehouse_id
CROSS JOIN LATERAL (
    SELECT array_agg(sku) AS skus, array_agg(category) AS categories
    FROM item WHERE sku = ANY (CAST(:skus AS text[]))
) AS i
CROSS JOIN LATERAL (
    SELECT array_agg(sku) AS skus, array_agg(level) AS levels
    FROM reorder_level WHERE warehouse_id = :warehouse_id AND sku = ANY (CAST(:skus AS text[]))
) AS r
LEFT JOIN LATERAL (
    SELECT l.category, l.sku, d.distributed_on, l.quantity, l.prescription_reference
    FROM distribution AS d JOIN distribution_line AS l ON l.distribution_id = d.id
    WHERE d.household_id = :household_id AND d.status = :recorded
) AS got ON true
""").columns(
    sa.column("warehouse_site_id", sa.Text),
    sa.column("client_ref_taken", sa.Boolean),
    sa.column("item_skus", postgresql.ARRAY(sa.Text)),
    sa.column("item_categories", postgresql.ARRAY(sa.Text)),
    sa.column("level_skus", postgresql.ARRAY(sa.Text)),
    sa.column("levels", postgresql.ARRAY(sa.Integer)),
    sa.column("category", sa.Text),
    sa.column("sku", sa.Text),
    sa.column("distributed_on", sa.Date),
    sa.column("quantity", sa.Integer),
    sa.column("prescription_reference", sa.Text),
)

# The distribution is written in one statement while the warehouse's balance rows are locked
# (every operator queues on them, so it is the only statement between that lock and the
# commit besides the outbox's): the distribution with its stored answer, its lines, each
# balance row changed once by its picks' total, and each pick a ledger entry (its
# balance_after computed from the locked quantity), in order. When the client_ref was taken
# meanwhile nothing is written: one row comes back with ``inserted`` false.
_WRITE_DISTRIBUTION = sa.text("""
WITH inserted AS (
    INSERT INTO distribution (id, household_id, warehouse_id, site_id, client_ref,
        request_fingerprint, response, status, policy_version, distributed_at, distributed_on,
        recorded_by)
    VALUES (:id, :household_id, :warehouse_id, :site_id, :client_ref, :request_fingerprint,
        :response, :status, :policy_version, :now, :distributed_on, :recorded_by)
    ON CONFLICT ON CONSTRAINT distribution_client_ref_key DO NOTHING
    RETURNING id
), lines AS (
    INSERT INTO distribution_line (distribution_id, line_no, sku, category, quantity,
        requested_batch, prescription_reference)
    SELECT inserted.id, line.line_no, line.sku, line.category, line.quantity, line.batch,
        line.reference
    FROM inserted, unnest(CAST(:line_nos AS integer[]), CAST(:line_skus AS text[]),
        CAST(:line_categories AS text[]), CAST(:line_quantities AS integer[]),
        CAST(:line_batches AS text[]), CAST(:line_references AS text[]))
        AS line (line_no, sku, category, quantity, batch, reference)
), moved AS (
    UPDATE stock_balance AS b SET quantity = b.quantity + m.change, updated_at = :now
    FROM unnest(CAST(:balance_ids AS bigint[]), CAST(:changes AS integer[])) AS m (id, change)
    WHERE b.id = m.id AND EXISTS (SELECT FROM inserted)
    RETURNING b.id, b.quantity
), entries AS (
    INSERT INTO stock_ledger (warehouse_id, sku, batch, expires_on, kind, quantity,
        balance_after, distribution_id, line_no, recorded_by, recorded_at)
    SELECT e.warehouse_id, e.sku, e.batch, e.expires_on, CAST(:kind AS text), e.quantity,
        e.balance_after, inserted.id, e.line_no, CAST(:recorded_by AS text),
        CAST(:now AS timestamptz)
    FROM inserted, unnest(CAST(:pick_warehouse_ids AS uuid[]), CAST(:pick_skus AS text[]),
        CAST(:pick_batches AS text[]), CAST(:pick_expiries AS date[]),
        CAST(:pick_quantities AS integer[]), CAST(:pick_balances_after AS integer[]),
        CAST(:pick_line_nos AS integer[]))
        WITH ORDINALITY AS e (warehouse_id, sku, batch, expires_on, quantity, balance_after,
            line_no, n)
    ORDER BY e.n
)
SELECT EXISTS (SELECT FROM inserted) AS inserted, moved.id, moved.quantity
FROM (SELECT) AS one LEFT JOIN moved ON true
""").bindparams(sa.bindparam("response", type_=postgresql.JSON))


@dataclass(frozen=True)
class LockedHousehold:
    """The household row as a distribution reads it, locked."""

    household_id: UUID
    site_id: str
    household_size: int | None
    needs: list[str]
    status: str
    merged_into: UUID | None


@dataclass(frozen=True)
class WarehouseSite:
    id: UUID
    site_id: str


@dataclass(frozen=True)
class ItemCategoryOf:
    category: str


@dataclass(frozen=True)
class RequestFacts:
    """What ``_REQUEST_FACTS`` returns, decoded."""

    warehouse_site_id: str | None
    client_ref_taken: bool
    categories: dict[str, str]
    levels: dict[str, int]
    received: list[entitlements.Received]


async def _request_facts(
    connection: AsyncConnection, data: DistributionCreate, skus: list[str]
) -> RequestFacts:
    rows = (
        await connection.execute(
            _REQUEST_FACTS,
            {
                "client_ref": data.client_ref,
                "warehouse_id": data.warehouse_id,
                "household_id": data.household_id,
                "skus": skus,
                "recorded": str(DistributionStatus.RECORDED),
            },
        )
    ).all()
    first = rows[0]
    return RequestFacts(
        warehouse_site_id=first.warehouse_site_id,
        client_ref_taken=first.client_ref_taken,
        categories=dict(zip(first.item_skus or (), first.item_categories or (), strict=True)),
        levels=dict(zip(first.level_skus or (), first.levels or (), strict=True)),
        received=[
            entitlements.Received(
                category=row.category,
                sku=row.sku,
                on=row.distributed_on,
                quantity=row.quantity,
                reference=row.prescription_reference,
            )
            for row in rows
            if row.sku is not None
        ],
    )


async def _by_client_ref(session: AsyncSession, client_ref: str) -> Distribution | None:
    result = await session.exec(_BY_CLIENT_REF, params={"client_ref": client_ref})
    return result.one_or_none()


async def _replay_existing(
    session: AsyncSession, client_ref: str, principal: Principal, request_fingerprint: str
) -> Outcome:
    existing = await _by_client_ref(session, client_ref)
    assert existing is not None  # client_refs are never deleted
    return _replay(existing, principal, request_fingerprint)


CLIENT_REF_REUSED = (
    "This client_ref was already used for a different request; use a new client_ref "
    "for a new distribution."
)


def _replay(existing: Distribution, principal: Principal, request_fingerprint: str) -> Outcome:
    if (
        existing.request_fingerprint != request_fingerprint
        or existing.response is None
        or not principal.can_access_site(existing.site_id)
    ):
        raise ClientRefReused(CLIENT_REF_REUSED, client_ref=existing.client_ref)
    return Outcome(CREATED, existing.response)


async def record(
    *,
    session: AsyncSession,
    principal: Principal,
    data: DistributionCreate,
    policies: PolicyBook,
    now: datetime,
    today: date,
    retry_after_seconds: int,
    window_days: int,
) -> Outcome:
    """Record a distribution (or replay the original answer to a re-sent request).

    Four statements, each built once: lock the household; read everything else the decision
    needs; lock the balance rows; write the distribution, its lines, the stock movements and
    the stored answer. The audit record and the event go through the outbox.
    """
    connection = await session.connection()
    request_fingerprint = fingerprint(data)
    skus = sorted({line.sku for line in data.lines})
    locked = (
        await connection.execute(_LOCK_HOUSEHOLD, {"household_id": data.household_id})
    ).one_or_none()
    facts = await _request_facts(connection, data, skus)
    # The same answers, in the same order, as reading each fact on its own would give.
    if facts.warehouse_site_id is None:
        raise WarehouseNotFound(data.warehouse_id)
    if not principal.can_access_site(facts.warehouse_site_id):
        raise WarehouseOutOfScope(data.warehouse_id)
    warehouse = WarehouseSite(data.warehouse_id, facts.warehouse_site_id)
    if facts.client_ref_taken:  # a re-send, possibly committed while we waited for the lock
        return await _replay_existing(session, data.client_ref, principal, request_fingerprint)
    household = visible_household(
        LockedHousehold(household_id=data.household_id, **locked._mapping) if locked else None,
        principal=principal,
        household_id=data.household_id,
        retry_after_seconds=retry_after_seconds,
    )
    require_active(household)
    missing = [sku for sku in skus if sku not in facts.categories]
    if missing:
        raise UnknownItems(missing)
    categories = facts.categories
    policy = entitlements.policy_in_force(policies, today)
    entitlements.check_lines(
        policy=policy,
        household=household,
        lines=data.lines,
        categories=categories,
        received=facts.received,
        today=today,
    )
    distribution_id = uuid.uuid4()
    # Before the warehouse's balance rows are locked: every operator queues on them, so each
    # statement after that lock is time the whole warehouse waits. A refusal below (the
    # stock, or the client_ref taken meanwhile) rolls the audit record back with the rest.
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="distribution.record",
        resource_type="distribution",
        resource_id=str(distribution_id),
    )
    ledger = Ledger(
        session,
        await lock_balances(session, [(warehouse.id, sku) for sku in skus]),
        recorded_by=principal.sub,
        now=now,
    )
    plan = plan_withdrawals(
        list(ledger.rows.values()),
        [
            Withdrawal(line_no=i, sku=line.sku, quantity=line.quantity, batch=line.batch)
            for i, line in enumerate(data.lines)
        ],
        today=today,
    )
    body = DistributionPublic(
        id=distribution_id,
        household_id=household.household_id,
        warehouse_id=warehouse.id,
        site_id=warehouse.site_id,
        client_ref=data.client_ref,
        status=DistributionStatus.RECORDED,
        policy_version=policy.version,
        distributed_at=now,
        distributed_on=today,
        recorded_by=principal.sub,
        lines=[
            DistributionLinePublic(
                sku=line.sku,
                category=ItemCategory(categories[line.sku]),
                quantity=line.quantity,
                batch=line.batch,
                prescription_reference=line.prescription_reference,
                issued=[
                    IssuedBatchPublic(
                        batch=p.row.batch, expires_on=p.row.expires_on, quantity=p.quantity
                    )
                    for p in plan[i]
                ],
            )
            for i, line in enumerate(data.lines)
        ],
    ).model_dump(mode="json")
    written = await _write(
        connection,
        ledger,
        plan,
        {
            "id": distribution_id,
            "household_id": household.household_id,
            "warehouse_id": warehouse.id,
            "site_id": warehouse.site_id,
            "client_ref": data.client_ref,
            "request_fingerprint": request_fingerprint,
            "response": body,
            "status": str(DistributionStatus.RECORDED),
            "policy_version": policy.version,
            "distributed_on": today,
            "line_nos": list(range(len(data.lines))),
            "line_skus": [line.sku for line in data.lines],
            "line_categories": [categories[line.sku] for line in data.lines],
            "line_quantities": [line.quantity for line in data.lines],
            "line_batches": [line.batch for line in data.lines],
            "line_references": [line.prescription_reference for line in data.lines],
        },
    )
    if not written:
        # The same client_ref was committed meanwhile by a request for another household (a
        # re-send of this very request queues on the household lock and is answered from the
        # facts above): refused, and the transaction (with its audit record) rolls back.
        raise ClientRefReused(CLIENT_REF_REUSED, client_ref=data.client_ref)
    await add_event(
        session,
        DistributionRecorded(
            distribution_id=distribution_id,
            household_id=household.household_id,
            warehouse_id=warehouse.id,
            site_id=warehouse.site_id,
            lines=tuple(
                DistributedLine(
                    sku=data.lines[line_no].sku,
                    category=categories[data.lines[line_no].sku],
                    quantity=pick.quantity,
                    batch=pick.row.batch,
                )
                for line_no in sorted(plan)
                for pick in plan[line_no]
            ),
        ),
        key=str(household.household_id),
        source=EVENT_SOURCE,
        actor=principal.sub,
    )
    await ledger.announce_low_stock(
        warehouse,
        {sku: ItemCategoryOf(category) for sku, category in categories.items()},
        today=today,
        window_days=window_days,
        levels=facts.levels,
    )
    return Outcome(
        CREATED,
        body,
        issued=tuple((categories[line.sku], line.quantity) for line in data.lines),
        site_id=warehouse.site_id,
    )


async def _write(
    connection: AsyncConnection,
    ledger: Ledger,
    plan: dict[int, list[Pick]],
    distribution: dict[str, Any],
) -> bool:
    """Write the distribution and the plan's picks (``_WRITE_DISTRIBUTION``) and keep the
    ledger's locked rows up to date; False (nothing written) when the client_ref was taken."""
    picks = [(line_no, pick) for line_no in sorted(plan) for pick in plan[line_no]]
    before = {pick.row.id: pick.row.quantity for _, pick in picks}
    after: dict[int, int] = {}
    balances_after = []
    for _, pick in picks:
        after[pick.row.id] = after.get(pick.row.id, pick.row.quantity) - pick.quantity
        balances_after.append(after[pick.row.id])
    try:
        rows = (
            await connection.execute(
                _WRITE_DISTRIBUTION,
                {
                    **distribution,
                    "now": ledger.now,
                    "recorded_by": ledger.recorded_by,
                    "balance_ids": list(after),
                    "changes": [after[row_id] - before[row_id] for row_id in after],
                    "kind": str(LedgerKind.ISSUE),
                    "pick_warehouse_ids": [pick.row.warehouse_id for _, pick in picks],
                    "pick_skus": [pick.row.sku for _, pick in picks],
                    "pick_batches": [pick.row.batch for _, pick in picks],
                    "pick_expiries": [pick.row.expires_on for _, pick in picks],
                    "pick_quantities": [-pick.quantity for _, pick in picks],
                    "pick_balances_after": balances_after,
                    "pick_line_nos": [line_no for line_no, _ in picks],
                },
            )
        ).all()
    except sa_exc.IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) != CHECK_VIOLATION:
            raise
        # the balance's CHECK: only reachable through a bug
        raise InsufficientStock(
            "The stock would go below zero in this warehouse.",
            shortfalls=[{"sku": pick.row.sku, "batch": pick.row.batch} for _, pick in picks],
        ) from exc
    if not rows[0].inserted:
        return False
    moved = {row.id: row.quantity for row in rows}
    if moved != after:  # the rows are locked: only a bug could make them differ
        raise RuntimeError(f"stock balances moved under the lock: {moved} != {after}")
    for _, pick in picks:
        pick.row.quantity = after[pick.row.id]
    return True


async def void(
    *,
    session: AsyncSession,
    principal: Principal,
    distribution_id: UUID,
    reason: VoidReason,
    now: datetime,
    today: date,
) -> DistributionPublic:
    """Reverse a distribution: its stock goes back to the batches it came from (and is written
    off at once if that batch has expired since) and its entitlement use is freed."""
    distribution = await _lock_with_household(session, principal, distribution_id)
    if distribution.status == DistributionStatus.VOIDED:
        raise AlreadyVoided(
            f"Distribution {distribution_id} was already voided.",
            voided_at=distribution.voided_at.isoformat() if distribution.voided_at else None,
        )
    issues = (
        await session.exec(
            select(StockLedgerEntry)
            .where(
                col(StockLedgerEntry.distribution_id) == distribution_id,
                col(StockLedgerEntry.kind) == LedgerKind.ISSUE,
            )
            .order_by(col(StockLedgerEntry.id))
        )
    ).all()
    warehouse_id = distribution.warehouse_id
    ledger = Ledger(
        session,
        await lock_balances(session, [(warehouse_id, e.sku) for e in issues]),
        recorded_by=principal.sub,
        now=now,
    )
    expired = []
    for entry in issues:
        row = ledger.row(warehouse_id, entry.sku, entry.batch)
        assert row is not None  # balance rows are never deleted
        await ledger.move(
            row,
            -entry.quantity,
            LedgerKind.VOID_REVERSAL,
            distribution_id=distribution_id,
            line_no=entry.line_no,
            reference=reason,
        )
        if is_expired(row.expires_on, today):
            await ledger.move(row, entry.quantity, LedgerKind.EXPIRY_WRITE_OFF)
            expired.append((entry, row))
    distribution.status = DistributionStatus.VOIDED
    distribution.voided_at = now
    distribution.voided_by = principal.sub
    distribution.void_reason = reason
    await session.flush()
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="distribution.void",
        resource_type="distribution",
        resource_id=str(distribution_id),
        reason=reason,
    )
    assert distribution.household_id is not None
    await add_event(
        session,
        DistributionVoided(
            distribution_id=distribution_id,
            household_id=distribution.household_id,
            warehouse_id=warehouse_id,
            site_id=distribution.site_id,
            reason_code=reason,
        ),
        key=str(distribution.household_id),
        source=EVENT_SOURCE,
        actor=principal.sub,
    )
    categories = await _categories(session, [e.sku for e, _ in expired])
    for entry, row in expired:
        assert row.batch is not None and row.expires_on is not None
        await add_event(
            session,
            StockExpired(
                warehouse_id=warehouse_id,
                site_id=distribution.site_id,
                sku=entry.sku,
                category=categories[entry.sku],
                batch=row.batch,
                quantity=-entry.quantity,
                expired_on=row.expires_on,
            ),
            key=str(warehouse_id),
            source=EVENT_SOURCE,
            actor=principal.sub,
        )
    return (await render(session, [distribution]))[0]


async def _categories(session: AsyncSession, skus: list[str]) -> dict[str, str]:
    if not skus:
        return {}
    items = await items_by_sku(session=session, skus=skus)
    return {sku: item.category for sku, item in items.items()}


async def _lock_with_household(
    session: AsyncSession, principal: Principal, distribution_id: UUID
) -> Distribution:
    """Lock the distribution's household, then the distribution (the service's lock order).
    A merge may move the distribution to another household meanwhile: then try again."""
    for _ in range(MAX_HOUSEHOLD_LOCK_ATTEMPTS):
        distribution = await session.get(Distribution, distribution_id)
        if distribution is None:
            raise DistributionNotFound(distribution_id)
        if not principal.can_access_site(distribution.site_id):
            raise DistributionOutOfScope(distribution_id)
        household_id = distribution.household_id
        if household_id is None:
            raise DistributionAnonymised(
                "The household of this distribution was erased; it can no longer be voided. "
                "Correct the stock with an adjustment."
            )
        await lock_households(session, household_id)
        distribution = (
            await session.exec(
                select(Distribution)
                .where(col(Distribution.id) == distribution_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).one()
        if distribution.household_id == household_id:
            return distribution
    raise RuntimeError("the distribution kept moving between households")


async def render(
    session: AsyncSession, distributions: list[Distribution]
) -> list[DistributionPublic]:
    """Distributions as they stand now, with their lines and the batches issued."""
    ids = [d.id for d in distributions]
    if not ids:
        return []
    lines = (
        await session.exec(
            select(DistributionLine)
            .where(col(DistributionLine.distribution_id).in_(ids))
            .order_by(col(DistributionLine.distribution_id), col(DistributionLine.line_no))
        )
    ).all()
    issues = (
        await session.exec(
            select(StockLedgerEntry)
            .where(
                col(StockLedgerEntry.distribution_id).in_(ids),
                col(StockLedgerEntry.kind) == LedgerKind.ISSUE,
            )
            .order_by(col(StockLedgerEntry.id))
        )
    ).all()
    lines_of: dict[UUID, list[DistributionLine]] = defaultdict(list)
    for line in lines:
        lines_of[line.distribution_id].append(line)
    issued: dict[tuple[UUID, int | None], list[IssuedBatchPublic]] = defaultdict(list)
    for entry in issues:
        assert entry.distribution_id is not None
        issued[(entry.distribution_id, entry.line_no)].append(
            IssuedBatchPublic(
                batch=entry.batch, expires_on=entry.expires_on, quantity=-entry.quantity
            )
        )
    return [
        DistributionPublic(
            id=d.id,
            household_id=d.household_id,
            warehouse_id=d.warehouse_id,
            site_id=d.site_id,
            client_ref=d.client_ref,
            status=DistributionStatus(d.status),
            policy_version=d.policy_version,
            distributed_at=d.distributed_at,
            distributed_on=d.distributed_on,
            recorded_by=d.recorded_by,
            lines=[
                DistributionLinePublic(
                    sku=line.sku,
                    category=ItemCategory(line.category),
                    quantity=line.quantity,
                    batch=line.requested_batch,
                    prescription_reference=line.prescription_reference,
                    issued=issued[(d.id, line.line_no)],
                )
                for line in lines_of[d.id]
            ],
            voided_at=d.voided_at,
            void_reason=VoidReason(d.void_reason) if d.void_reason else None,
        )
        for d in distributions
    ]


def site_scope(principal: Principal) -> list[str] | None:
    """The sites a principal may read, or None for every site."""
    if Role.ADMIN in principal.roles or ALL_SITES in principal.sites:
        return None
    return sorted(principal.sites)


async def get_distribution(
    *, session: AsyncSession, principal: Principal, distribution_id: UUID
) -> DistributionPublic:
    distribution = await session.get(Distribution, distribution_id)
    if distribution is None:
        raise DistributionNotFound(distribution_id)
    if not principal.can_access_site(distribution.site_id):
        raise DistributionOutOfScope(distribution_id)
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="distribution.read",
        resource_type="distribution",
        resource_id=str(distribution_id),
    )
    return (await render(session, [distribution]))[0]


async def list_distributions(
    *,
    session: AsyncSession,
    principal: Principal,
    household_id: UUID | None,
    warehouse_id: UUID | None,
    from_date: date | None,
    to_date: date | None,
    cursor: str | None,
    limit: int,
) -> Page[DistributionPublic]:
    """Newest first, within the caller's sites; an audited read (household ids)."""
    query = select(Distribution)
    sites = site_scope(principal)
    if sites is not None:
        query = query.where(col(Distribution.site_id).in_(sites))
    if household_id is not None:
        query = query.where(col(Distribution.household_id) == household_id)
    if warehouse_id is not None:
        query = query.where(col(Distribution.warehouse_id) == warehouse_id)
    if from_date is not None:
        query = query.where(col(Distribution.distributed_on) >= from_date)
    if to_date is not None:
        query = query.where(col(Distribution.distributed_on) <= to_date)
    if cursor:
        last_at, last_id = decode_cursor(cursor, types=(str, str))
        try:
            after = (datetime.fromisoformat(last_at), UUID(last_id))
        except ValueError as exc:
            raise InvalidCursor("The cursor is not one this service returned.") from exc
        query = query.where(
            sa.tuple_(col(Distribution.distributed_at), col(Distribution.id)) < sa.tuple_(*after)
        )
    rows = (
        await session.exec(
            query.order_by(
                col(Distribution.distributed_at).desc(),
                col(Distribution.id).desc(),
            ).limit(limit + 1)
        )
    ).all()
    page = list(rows[:limit])
    await audit.record(
        session,
        service=SERVICE,
        principal=principal,
        action="distributions.read",
        resource_type="household" if household_id else "distribution",
        resource_id=str(household_id) if household_id else None,
    )
    next_cursor = (
        encode_cursor([page[-1].distributed_at.isoformat(), str(page[-1].id)])
        if len(rows) > limit
        else None
    )
    return Page[DistributionPublic](items=await render(session, page), next_cursor=next_cursor)
