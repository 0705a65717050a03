"""Catalogue, stock ledger and balances, household read model, distributions, shelter.

Revision ID: 0002
Revises: 0001
"""

import re

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE item (
    sku         text PRIMARY KEY CHECK (sku ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    category    text NOT NULL CHECK (category IN
                    ('food', 'hygiene', 'non_food_item', 'shelter_material', 'medication')),
    unit        text NOT NULL CHECK (length(unit) BETWEEN 1 AND 40),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE warehouse (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    site_id     text NOT NULL,
    admin1      text NOT NULL,
    admin2      text,
    latitude    double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision CHECK (longitude BETWEEN -180 AND 180),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT warehouse_site_name_key UNIQUE (site_id, name)
);

CREATE INDEX warehouse_site ON warehouse (site_id);

CREATE TABLE reorder_level (
    warehouse_id uuid NOT NULL REFERENCES warehouse (id),
    sku          text NOT NULL REFERENCES item (sku),
    level        integer NOT NULL CHECK (level >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (warehouse_id, sku)
);

-- Derived from the ledger in the same transactions; the CHECK is the last line of defence
-- against overselling (the commands lock these rows first).
CREATE TABLE stock_balance (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    warehouse_id uuid NOT NULL REFERENCES warehouse (id),
    sku          text NOT NULL REFERENCES item (sku),
    batch        text,
    expires_on   date,
    quantity     integer NOT NULL CONSTRAINT stock_balance_not_negative CHECK (quantity >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT stock_balance_key UNIQUE NULLS NOT DISTINCT (warehouse_id, sku, batch)
);

CREATE TABLE stock_ledger (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    warehouse_id    uuid NOT NULL REFERENCES warehouse (id),
    sku             text NOT NULL REFERENCES item (sku),
    batch           text,
    expires_on      date,
    kind            text NOT NULL CHECK (kind IN ('receipt', 'transfer_out', 'transfer_in',
                        'adjustment', 'issue', 'void_reversal', 'expiry_write_off')),
    quantity        integer NOT NULL CHECK (quantity <> 0),
    balance_after   integer NOT NULL CHECK (balance_after >= 0),
    reason          text,
    reference       text,
    distribution_id uuid,
    line_no         integer,
    transfer_id     uuid,
    recorded_by     text NOT NULL,
    recorded_at     timestamptz NOT NULL,
    CONSTRAINT stock_ledger_sign CHECK (
        (kind IN ('receipt', 'transfer_in', 'void_reversal') AND quantity > 0)
        OR (kind IN ('transfer_out', 'issue', 'expiry_write_off') AND quantity < 0)
        OR kind = 'adjustment'),
    CONSTRAINT stock_ledger_adjustment_reason CHECK ((kind = 'adjustment') = (reason IS NOT NULL)),
    CONSTRAINT stock_ledger_distribution CHECK (
        (kind IN ('issue', 'void_reversal')) = (distribution_id IS NOT NULL))
);

CREATE INDEX stock_ledger_warehouse ON stock_ledger (warehouse_id, id);

CREATE INDEX stock_ledger_issues ON stock_ledger (warehouse_id, sku, recorded_at)
    WHERE kind IN ('issue', 'void_reversal');

CREATE INDEX stock_ledger_distribution ON stock_ledger (distribution_id)
    WHERE distribution_id IS NOT NULL;

-- The ledger is append-only: corrections are new entries, never edits.
CREATE FUNCTION stock_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'stock_ledger is append-only (% refused)', TG_OP
            USING ERRCODE = 'restrict_violation';
    END $$;

CREATE TRIGGER stock_ledger_append_only BEFORE UPDATE OR DELETE ON stock_ledger
    FOR EACH ROW EXECUTE FUNCTION stock_ledger_append_only();

CREATE TABLE household_view (
    household_id    uuid PRIMARY KEY,
    site_id         text NOT NULL,
    household_size  integer CHECK (household_size >= 1),  -- NULL: only a deactivation known
    members         jsonb NOT NULL DEFAULT '[]',
    needs           text[] NOT NULL DEFAULT '{}',
    vulnerabilities text[] NOT NULL DEFAULT '{}',
    status          text NOT NULL CHECK (status IN
                        ('active', 'pending_review', 'deactivated', 'merged', 'erased')),
    version         integer NOT NULL,
    merged_into     uuid,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE household_erased (
    household_id uuid PRIMARY KEY,
    erased_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE distribution (
    id                  uuid PRIMARY KEY,
    household_id        uuid,  -- NULL once the household is erased
    warehouse_id        uuid NOT NULL REFERENCES warehouse (id),
    site_id             text NOT NULL,
    client_ref          text NOT NULL CONSTRAINT distribution_client_ref_key UNIQUE,
    request_fingerprint text,
    response            json,  -- json, not jsonb: a replay returns the very same bytes
    status              text NOT NULL CHECK (status IN ('recorded', 'voided')),
    policy_version      text NOT NULL,
    distributed_at      timestamptz NOT NULL,
    distributed_on      date NOT NULL,
    recorded_by         text NOT NULL,
    voided_at           timestamptz,
    voided_by           text,
    void_reason         text,
    CONSTRAINT distribution_void_complete CHECK (
        (status = 'voided') = (voided_at IS NOT NULL AND void_reason IS NOT NULL))
);

CREATE INDEX distribution_household ON distribution (household_id, distributed_on)
    WHERE household_id IS NOT NULL;

CREATE INDEX distribution_listing ON distribution (distributed_at DESC, id DESC);

CREATE INDEX distribution_site_day ON distribution (site_id, distributed_on);

CREATE TABLE distribution_line (
    distribution_id        uuid NOT NULL REFERENCES distribution (id),
    line_no                integer NOT NULL CHECK (line_no >= 0),
    sku                    text NOT NULL REFERENCES item (sku),
    category               text NOT NULL,
    quantity               integer NOT NULL CHECK (quantity > 0),
    requested_batch        text,
    prescription_reference text,
    PRIMARY KEY (distribution_id, line_no)
);

CREATE TABLE shelter (
    id             uuid PRIMARY KEY,
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    site_id        text NOT NULL,
    capacity_beds  integer NOT NULL CHECK (capacity_beds > 0),
    floor_area_m2  numeric(12, 2) NOT NULL CHECK (floor_area_m2 > 0),
    beds_occupied  integer NOT NULL DEFAULT 0,
    persons        integer NOT NULL DEFAULT 0 CHECK (persons >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT shelter_site_name_key UNIQUE (site_id, name),
    CONSTRAINT shelter_within_capacity CHECK (beds_occupied BETWEEN 0 AND capacity_beds)
);

CREATE TABLE shelter_allocation (
    id                 uuid PRIMARY KEY,
    shelter_id         uuid NOT NULL REFERENCES shelter (id),
    household_id       uuid,  -- NULL once the household is erased
    beds               integer NOT NULL CHECK (beds > 0),
    persons            integer NOT NULL CHECK (persons > 0),
    check_in           date NOT NULL,
    expected_check_out date CHECK (expected_check_out >= check_in),
    allocated_by       text NOT NULL,
    allocated_at       timestamptz NOT NULL,
    released_at        timestamptz,
    released_by        text,
    release_reason     text
);

CREATE INDEX shelter_allocation_active ON shelter_allocation (shelter_id)
    WHERE released_at IS NULL;

CREATE INDEX shelter_allocation_household ON shelter_allocation (household_id)
    WHERE household_id IS NOT NULL;

CREATE TABLE expiry_run (
    run_on               date PRIMARY KEY,
    started_at           timestamptz NOT NULL,
    batches_written_off  integer NOT NULL DEFAULT 0,
    quantity_written_off integer NOT NULL DEFAULT 0
);
"""

DOWNGRADE = (
    "DROP TABLE expiry_run",
    "DROP TABLE shelter_allocation",
    "DROP TABLE shelter",
    "DROP TABLE distribution_line",
    "DROP TABLE distribution",
    "DROP TABLE household_erased",
    "DROP TABLE household_view",
    "DROP TABLE stock_ledger",
    "DROP FUNCTION stock_ledger_append_only()",
    "DROP TABLE stock_balance",
    "DROP TABLE reorder_level",
    "DROP TABLE warehouse",
    "DROP TABLE item",
)


def _statements(script: str) -> list[str]:
    """One command per string: statements are separated by a blank line."""
    return [part.strip() for part in re.split(r"\n\s*\n", script) if part.strip()]


def upgrade() -> None:
    # asyncpg prepares every statement, and a prepared statement holds one command only
    for statement in _statements(UPGRADE):
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
