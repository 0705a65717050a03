"""Every hand-tuned SQL statement of the distribution service, with named parameters.

Domain code runs them with :func:`shared.db.run`. Each is compiled once and cached by
SQLAlchemy, so a call only binds values; array and JSON parameters are cast in SQL, so one
statement serves any number of rows.
"""

from shared.db import Query

# --- the household read model (domain/households.py) ----------------------------------------

UPSERT_PROFILES = Query(
    "upsert-profiles",
    # The rows travel as one JSON array and PostgreSQL turns them into table rows: the same
    # statement whatever the number of households. Per row, the rule of one profile event:
    # insert or update unless erased or the model holds a newer version; once merged, a
    # household stays merged. ORDER BY takes the rows' locks in id order (no deadlock).
    """
INSERT INTO household_view AS h (
    household_id, site_id, household_size, needs, vulnerabilities, status, version, updated_at
)
SELECT p.household_id, p.site_id, p.household_size, p.needs, p.vulnerabilities, p.status,
    p.version, p.updated_at
FROM jsonb_populate_recordset(NULL::household_view, CAST(:rows AS jsonb)) AS p
WHERE NOT EXISTS (SELECT FROM household_erased e WHERE e.household_id = p.household_id)
ORDER BY p.household_id
ON CONFLICT (household_id) DO UPDATE SET
    site_id = excluded.site_id,
    household_size = excluded.household_size,
    needs = excluded.needs,
    vulnerabilities = excluded.vulnerabilities,
    status = CASE WHEN h.status = 'merged' THEN h.status ELSE excluded.status END,
    version = excluded.version,
    updated_at = excluded.updated_at
WHERE h.version < excluded.version
""",
)

# --- recording a distribution (domain/distributions/record.py) ------------------------------

LOCK_HOUSEHOLD = Query(
    "lock-household",
    # The household lock: two desks serving the same household queue here.
    """
SELECT site_id, household_size, needs, vulnerabilities, status, merged_into
FROM household_view WHERE household_id = :household_id
FOR UPDATE
""",
)

REQUEST_FACTS = Query(
    "distribution-request-facts",
    # Everything else a distribution is decided on, sent once the household is locked (so it
    # sees what an earlier desk serving this household committed): the warehouse's site,
    # whether the client_ref is taken, the items' categories, the warehouse's reorder levels of
    # those items, the request's prescription references in the register (and whether each is
    # this household's), and one row per line the household received (none: one row of NULLs).
    """
SELECT w.site_id AS warehouse_site_id,
    EXISTS (SELECT FROM distribution WHERE client_ref = :client_ref) AS client_ref_taken,
    i.skus AS item_skus, i.categories AS item_categories,
    r.skus AS level_skus, r.levels AS levels,
    rx.refs AS prescribed_refs, rx.here AS prescribed_here,
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
CROSS JOIN LATERAL (
    SELECT array_agg(reference) AS refs, array_agg(household_id = :household_id) AS here
    FROM prescription WHERE reference = ANY (CAST(:references AS text[]))
) AS rx
LEFT JOIN LATERAL (
    SELECT l.category, l.sku, d.distributed_on, l.quantity, l.prescription_reference
    FROM distribution AS d JOIN distribution_line AS l ON l.distribution_id = d.id
    WHERE d.household_id = :household_id AND d.status = :recorded
) AS got ON true
""",
)

WRITE_DISTRIBUTION = Query(
    "write-distribution",
    # One statement while the warehouse's balance rows are locked (every operator queues on
    # them): the distribution with its stored answer (``response``: JSON text, kept as sent),
    # its lines, each balance row changed once by its picks' total, and each pick a ledger
    # entry (balance_after computed from the locked quantity), in order. When the client_ref
    # was taken meanwhile nothing is written: one row comes back with ``inserted`` false.
    """
WITH inserted AS (
    INSERT INTO distribution (id, household_id, warehouse_id, site_id, client_ref,
        request_fingerprint, response, status, policy_version, distributed_at, distributed_on,
        recorded_by)
    VALUES (:id, :household_id, :warehouse_id, :site_id, :client_ref, :request_fingerprint,
        CAST(:response AS json), :status, :policy_version, :now, :distributed_on, :recorded_by)
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
""",
)

# --- the stock ledger (domain/stock/ledger.py) ---------------------------------------------

LOCK_BALANCES = Query(
    "lock-balances",
    # Joined to the wanted (warehouse, SKU) pairs as two arrays, in the service-wide lock
    # order (warehouse, SKU, batch).
    """
SELECT b.id, b.warehouse_id, b.sku, b.batch, b.expires_on, b.quantity
FROM stock_balance AS b
JOIN unnest(CAST(:warehouse_ids AS uuid[]), CAST(:skus AS text[])) AS wanted (warehouse_id, sku)
    ON b.warehouse_id = wanted.warehouse_id AND b.sku = wanted.sku
ORDER BY b.warehouse_id, b.sku, b.batch NULLS FIRST
FOR UPDATE OF b
""",
)

MOVE = Query(
    "move-stock",
    # A movement in one round trip: the balance row changes and its ledger entry records the
    # balance after it (every statement here is time the locked row stays locked).
    """
WITH moved AS (
    UPDATE stock_balance SET quantity = quantity + :quantity, updated_at = :now
    WHERE id = :balance_id RETURNING quantity
)
INSERT INTO stock_ledger (warehouse_id, sku, batch, expires_on, kind, quantity, balance_after,
    reason, reference, distribution_id, line_no, transfer_id, recorded_by, recorded_at)
SELECT CAST(:warehouse_id AS uuid), CAST(:sku AS text), CAST(:batch AS text),
    CAST(:expires_on AS date), CAST(:kind AS text), CAST(:quantity AS integer), moved.quantity,
    CAST(:reason AS text), CAST(:reference AS text), CAST(:distribution_id AS uuid),
    CAST(:line_no AS integer), CAST(:transfer_id AS uuid), CAST(:recorded_by AS text),
    CAST(:now AS timestamptz)
FROM moved
RETURNING id, balance_after
""",
)

# --- gauges (domain/metrics.py) ------------------------------------------------------------

STOCK_BALANCE = Query(
    "gauge-stock-balance",
    # Stock available today in the programme's time zone (expired batches are never issued).
    "SELECT w.name, i.category, sum(b.quantity) FILTER ("
    "  WHERE b.expires_on IS NULL OR b.expires_on > (now() AT TIME ZONE :tz)::date) "
    "FROM stock_balance b JOIN warehouse w ON w.id = b.warehouse_id JOIN item i ON i.sku = b.sku "
    "GROUP BY 1, 2",
)

NET_ISSUED = Query(
    "gauge-net-issued",
    # Net units issued per warehouse and category in the window (the partial index
    # stock_ledger_issues serves the kind and time filter).
    "SELECT w.name, i.category, -sum(l.quantity) "
    "FROM stock_ledger l JOIN warehouse w ON w.id = l.warehouse_id JOIN item i ON i.sku = l.sku "
    "WHERE l.kind IN ('issue', 'void_reversal') AND l.recorded_at > now() - make_interval("
    "days => :days) GROUP BY 1, 2",
)

BELOW_REORDER_LEVEL = Query(
    "gauge-below-reorder-level",
    "SELECT w.name, i.category, count(*) FILTER (WHERE coalesce(b.on_hand, 0) < r.level) "
    "FROM reorder_level r JOIN warehouse w ON w.id = r.warehouse_id JOIN item i ON i.sku = r.sku "
    "LEFT JOIN (SELECT warehouse_id, sku, sum(quantity) AS on_hand FROM stock_balance "
    "           GROUP BY 1, 2) b ON b.warehouse_id = r.warehouse_id AND b.sku = r.sku "
    "GROUP BY 1, 2",
)

BEDS = Query(
    "gauge-beds",
    "SELECT site_id, sum(beds_occupied), sum(capacity_beds) FROM shelter GROUP BY 1",
)
