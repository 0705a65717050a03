"""Every hand-tuned SQL statement of the referral service, with named parameters.

Ordinary reads and writes stay SQLModel/ORM in the domain modules; these are the statements
written by hand for speed or for what the ORM cannot say. Each is compiled once by
SQLAlchemy and prepared once per connection by asyncpg.
"""

from __future__ import annotations

from shared.db import Query

# The rows travel as one JSON array and PostgreSQL turns them into table rows, so the
# statement is the same whatever the number of households: prepared once per connection,
# never compiled again. Per row it is the rule of one profile event: lock the household's
# row and read what it held, then insert or replace it unless it already holds this version
# or a newer one. Every part reads the snapshot from before the statement, so the previous
# values are the old ones. A row that appeared after that snapshot (a concurrent first
# insert) is left alone: not taken, with no previous version, and the caller fails the event
# so it is retried. The held rows are locked in household id order, then the new ones
# inserted in that order (no deadlock with another transaction doing the same); the answer
# comes back in the events' order.
TAKE_PROFILES = Query(
    "take_profiles",
    """
WITH incoming AS (
    SELECT * FROM jsonb_populate_recordset(NULL::referral_household, CAST(:rows AS jsonb))
        WITH ORDINALITY AS i
),
previous AS (
    SELECT h.household_id, h.version, h.referral_sharing, h.profile
    FROM referral_household h
    WHERE h.household_id = ANY(ARRAY(SELECT household_id FROM incoming))
    ORDER BY h.household_id
    FOR UPDATE OF h
),
taken AS (
    INSERT INTO referral_household AS h (
        household_id, site_id, status, version, referral_sharing, admin1, admin2,
        preferred_language, household_size, profile, updated_at
    )
    SELECT household_id, site_id, status, version, referral_sharing, admin1, admin2,
        preferred_language, household_size, profile, updated_at
    FROM incoming
    WHERE (SELECT count(*) FROM previous) >= 0  -- every held row locked before any insert
    ORDER BY household_id
    ON CONFLICT (household_id) DO UPDATE SET
        site_id = excluded.site_id,
        status = excluded.status,
        version = excluded.version,
        referral_sharing = excluded.referral_sharing,
        admin1 = excluded.admin1,
        admin2 = excluded.admin2,
        preferred_language = excluded.preferred_language,
        household_size = excluded.household_size,
        profile = excluded.profile,
        updated_at = excluded.updated_at
    WHERE h.version < excluded.version
        AND EXISTS (SELECT FROM previous p WHERE p.household_id = excluded.household_id)
    RETURNING h.household_id
)
SELECT t.household_id IS NOT NULL, p.version, p.referral_sharing, p.profile
FROM incoming i
LEFT JOIN previous p ON p.household_id = i.household_id
LEFT JOIN taken t ON t.household_id = i.household_id
ORDER BY i.ordinality
""",
)

# A new referral in one statement: its row, then its creation step and first routing step
# (the branches of a UNION ALL are inserted in order, so their ids sort the same way). Run
# once per referral, or as one executemany for a batch of them.
INSERT_CREATED = Query(
    "insert_created",
    """
WITH new_referral AS (
    INSERT INTO referral (
        id, household_id, site_id, service_type, urgency, sensitive, status, provider_id,
        origin, reason, consent_override, override_reason, caseworker_sub, tried_provider_ids,
        due_at, sent_at, overdue_at, escalation_tier, next_escalation_at, created_at,
        updated_at, closed_at
    ) VALUES (
        CAST(:id AS UUID),
        CAST(:household_id AS UUID),
        CAST(:site_id AS VARCHAR),
        CAST(:service_type AS VARCHAR),
        CAST(:urgency AS VARCHAR),
        CAST(:sensitive AS BOOLEAN),
        CAST(:status AS VARCHAR),
        CAST(:provider_id AS UUID),
        CAST(:origin AS VARCHAR),
        CAST(:reason AS VARCHAR),
        CAST(:consent_override AS BOOLEAN),
        CAST(:override_reason AS VARCHAR),
        CAST(:caseworker_sub AS VARCHAR),
        CAST(:tried_provider_ids AS UUID[]),
        CAST(:due_at AS TIMESTAMP WITH TIME ZONE),
        CAST(:sent_at AS TIMESTAMP WITH TIME ZONE),
        CAST(:overdue_at AS TIMESTAMP WITH TIME ZONE),
        CAST(:escalation_tier AS INTEGER),
        CAST(:next_escalation_at AS TIMESTAMP WITH TIME ZONE),
        CAST(:created_at AS TIMESTAMP WITH TIME ZONE),
        CAST(:updated_at AS TIMESTAMP WITH TIME ZONE),
        CAST(:closed_at AS TIMESTAMP WITH TIME ZONE)
    )
)
INSERT INTO referral_history (
    referral_id, at, action, from_status, to_status, actor, provider_id, reason_code, note, tier
)
SELECT
    CAST(:referral_id_created AS UUID) AS referral_id,
    CAST(:at_created AS TIMESTAMP WITH TIME ZONE) AS at,
    CAST(:action_created AS VARCHAR) AS action,
    CAST(:from_status_created AS VARCHAR) AS from_status,
    CAST(:to_status_created AS VARCHAR) AS to_status,
    CAST(:actor_created AS VARCHAR) AS actor,
    CAST(:provider_id_created AS UUID) AS provider_id,
    CAST(:reason_code_created AS VARCHAR) AS reason_code,
    CAST(:note_created AS VARCHAR) AS note,
    CAST(:tier_created AS INTEGER) AS tier
UNION ALL
SELECT
    CAST(:referral_id_routed AS UUID) AS referral_id,
    CAST(:at_routed AS TIMESTAMP WITH TIME ZONE) AS at,
    CAST(:action_routed AS VARCHAR) AS action,
    CAST(:from_status_routed AS VARCHAR) AS from_status,
    CAST(:to_status_routed AS VARCHAR) AS to_status,
    CAST(:actor_routed AS VARCHAR) AS actor,
    CAST(:provider_id_routed AS UUID) AS provider_id,
    CAST(:reason_code_routed AS VARCHAR) AS reason_code,
    CAST(:note_routed AS VARCHAR) AS note,
    CAST(:tier_routed AS INTEGER) AS tier
""",
)

# Lock the candidates (in id order), then count their slots: one round trip (migration 0003).
ROUTING_CANDIDATES = Query(
    "routing_candidates",
    "SELECT * FROM referral_routing_candidates("
    "CAST(:service_types AS TEXT[]), CAST(:regions AS TEXT[]), CAST(:slot_statuses AS TEXT[]))",
)

# Open referrals per service type, and how many of them are overdue: the deadline scheduler
# marked them (overdue_at) and they have not moved on since.
OPEN_AND_OVERDUE = Query(
    "open_and_overdue",
    "SELECT service_type, count(*), count(*) FILTER (WHERE overdue_at IS NOT NULL) "
    "FROM referral WHERE status = ANY(CAST(:open AS TEXT[])) GROUP BY 1",
)
