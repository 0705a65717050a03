"""Every hand-tuned SQL statement of the registration service, with named parameters.

Each is a fixed statement: compiled once by SQLAlchemy and prepared once per connection by
asyncpg, whatever the number of members, documents or look-ups it carries (those travel as
arrays or JSON). Domain code runs them with ``shared.db.run``.
"""

from __future__ import annotations

from shared.db import Query

# --- intake --------------------------------------------------------------------------------

CLAIM_KEY = Query(
    "claim_idempotency_key",
    """
INSERT INTO registration_idempotency
    (principal_sub, idempotency_key, request_hash, created_at, expires_at)
VALUES (:principal_sub, :idempotency_key, :request_hash, :created_at, :expires_at)
ON CONFLICT (principal_sub, idempotency_key) DO UPDATE SET
    request_hash = EXCLUDED.request_hash, outcome = NULL, response_body = NULL,
    household_id = NULL, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at
WHERE registration_idempotency.expires_at <= EXCLUDED.created_at  -- an expired record is taken over
RETURNING idempotency_key
""",
)
"""Claim (caller, key) for this transaction; no row back when the key is already in use."""

INSERT_NEW_HOUSEHOLD = Query(
    "insert_new_household",
    """
WITH new_household AS (
    INSERT INTO household
    SELECT * FROM jsonb_populate_record(NULL::household, CAST(:household AS jsonb))
), new_members AS (
    INSERT INTO household_member
    SELECT * FROM jsonb_populate_recordset(NULL::household_member, CAST(:members AS jsonb))
), stored_response AS (
    UPDATE registration_idempotency
    SET outcome = :outcome, response_body = CAST(:response AS jsonb),
        household_id = (CAST(:household AS jsonb) ->> 'id')::uuid
    WHERE principal_sub = :principal_sub AND idempotency_key = :idempotency_key
), new_review AS (
    INSERT INTO duplicate_review
    SELECT * FROM jsonb_populate_recordset(NULL::duplicate_review, CAST(:reviews AS jsonb))
)
INSERT INTO member_document
SELECT * FROM jsonb_populate_recordset(NULL::member_document, CAST(:documents AS jsonb))
""",
)
"""A new household, its members, documents and review (0 or 1), and the response stored
under the request's Idempotency-Key (with no key, ``principal_sub`` and ``idempotency_key``
are NULL and it updates nothing), in ONE statement: data-modifying CTEs, the foreign keys
checked at its end. The rows travel as JSON, so the statement is the same whatever the
number of members and documents."""

NEXT_CASE_NUMBER = Query(
    "next_case_number",
    "SELECT nextval(to_regclass(:sequence)) FROM registration_site WHERE id = :site_id",
)
"""The site's existence and its next number in one round trip (``to_regclass`` takes the
sequence's name as a bind parameter, so one prepared statement serves every site)."""

# --- duplicate look-ups ----------------------------------------------------------------------
#
# Every look-up of all the new members in ONE statement (one round trip): two name blocks
# per member (one arm per blocking index: family-name code, or given-name code with the
# family initial, each an index-only scan of its covering index, migration 0003), one per
# document, and the phone; each a LATERAL sub-query with its own LIMIT.
# tests/registration/test_dedup_indexes.py checks the plan.
#
# The name blocks leave out people whose birth date cannot bring the pair to the threshold
# even with the same name and sex (see domain/dedup.py and the README); that filter is on the
# member row, so PostgreSQL applies it in the index scan, before it joins each household.
# The second line of it ("close or same year") is implied by the third; it lets PostgreSQL
# drop the rest of the year while reading the member rows.

DUPLICATE_LOOKUP = Query(
    "duplicate_lookup",
    """
SELECT 'family', p.idx, c.* FROM unnest(
    CAST(:block_index AS int[]), CAST(:code_a AS text[]), CAST(:code_b AS text[]),
    CAST(:initial_a AS text[]), CAST(:initial_b AS text[]), CAST(:birth_year AS int[]),
    CAST(:born AS date[])
) AS p(idx, code_a, code_b, initial_a, initial_b, birth_year, born)
CROSS JOIN LATERAL (
    SELECT m.id, m.household_id, h.case_number, h.site_id, m.given_key,
        m.family_key, m.sex, m.date_of_birth, m.birth_year, m.estimated_age IS NOT NULL, h.phone
    FROM household_member m JOIN household h ON h.id = m.household_id
    WHERE m.family_phonetic IN (p.code_a, p.code_b)
    AND m.birth_year BETWEEN p.birth_year - :year_tolerance AND p.birth_year + :year_tolerance
    AND ((p.born IS NULL OR m.date_of_birth IS NULL OR m.estimated_age IS NOT NULL
        OR m.date_of_birth BETWEEN p.born - CAST(:close_days AS int)
            AND p.born + CAST(:close_days AS int)
        OR (to_char(m.date_of_birth, 'MM-DD') = to_char(p.born, 'MM-DD')
            AND abs(m.birth_year - p.birth_year) = 1)) OR m.birth_year = p.birth_year)
    AND ((p.born IS NULL OR m.date_of_birth IS NULL OR m.estimated_age IS NOT NULL
        OR m.date_of_birth BETWEEN p.born - CAST(:close_days AS int)
            AND p.born + CAST(:close_days AS int)
        OR (to_char(m.date_of_birth, 'MM-DD') = to_char(p.born, 'MM-DD')
            AND abs(m.birth_year - p.birth_year) = 1)) OR CAST(:same_year_can_match AS bool)
        OR m.household_id = ANY(ARRAY(
            SELECT ph.id FROM household ph WHERE ph.phone = CAST(:phone AS text)))
        OR to_char(m.date_of_birth, 'DD-MM') = to_char(p.born, 'MM-DD'))
    AND h.status = ANY(CAST(:statuses AS text[]))
        AND (CAST(:exclude AS uuid) IS NULL OR m.household_id <> CAST(:exclude AS uuid))
    LIMIT :limit
) AS c
UNION ALL
SELECT 'given', p.idx, c.* FROM unnest(
    CAST(:block_index AS int[]), CAST(:code_a AS text[]), CAST(:code_b AS text[]),
    CAST(:initial_a AS text[]), CAST(:initial_b AS text[]), CAST(:birth_year AS int[]),
    CAST(:born AS date[])
) AS p(idx, code_a, code_b, initial_a, initial_b, birth_year, born)
CROSS JOIN LATERAL (
    SELECT m.id, m.household_id, h.case_number, h.site_id, m.given_key,
        m.family_key, m.sex, m.date_of_birth, m.birth_year, m.estimated_age IS NOT NULL, h.phone
    FROM household_member m JOIN household h ON h.id = m.household_id
    WHERE m.given_phonetic IN (p.code_a, p.code_b)
    AND m.family_initial IN (p.initial_a, p.initial_b, '')
    AND m.birth_year BETWEEN p.birth_year - :year_tolerance AND p.birth_year + :year_tolerance
    AND ((p.born IS NULL OR m.date_of_birth IS NULL OR m.estimated_age IS NOT NULL
        OR m.date_of_birth BETWEEN p.born - CAST(:close_days AS int)
            AND p.born + CAST(:close_days AS int)
        OR (to_char(m.date_of_birth, 'MM-DD') = to_char(p.born, 'MM-DD')
            AND abs(m.birth_year - p.birth_year) = 1)) OR m.birth_year = p.birth_year)
    AND ((p.born IS NULL OR m.date_of_birth IS NULL OR m.estimated_age IS NOT NULL
        OR m.date_of_birth BETWEEN p.born - CAST(:close_days AS int)
            AND p.born + CAST(:close_days AS int)
        OR (to_char(m.date_of_birth, 'MM-DD') = to_char(p.born, 'MM-DD')
            AND abs(m.birth_year - p.birth_year) = 1)) OR CAST(:same_year_can_match AS bool)
        OR m.household_id = ANY(ARRAY(
            SELECT ph.id FROM household ph WHERE ph.phone = CAST(:phone AS text)))
        OR to_char(m.date_of_birth, 'DD-MM') = to_char(p.born, 'MM-DD'))
    AND h.status = ANY(CAST(:statuses AS text[]))
        AND (CAST(:exclude AS uuid) IS NULL OR m.household_id <> CAST(:exclude AS uuid))
    LIMIT :limit
) AS c
UNION ALL
SELECT 'document', d.idx, c.* FROM unnest(
    CAST(:document_index AS int[]), CAST(:doc_type AS text[]),
    CAST(:issuing_country AS text[]), CAST(:number_key AS text[])
) AS d(idx, doc_type, issuing_country, number_key)
CROSS JOIN LATERAL (
    SELECT m.id, m.household_id, h.case_number, h.site_id, m.given_key,
        m.family_key, m.sex, m.date_of_birth, m.birth_year, m.estimated_age IS NOT NULL, h.phone
    FROM member_document md
    JOIN household_member m ON m.id = md.member_id
    JOIN household h ON h.id = m.household_id
    WHERE md.number_key = d.number_key AND md.doc_type = d.doc_type
        AND md.issuing_country = d.issuing_country AND h.status = ANY(CAST(:statuses AS text[]))
        AND (CAST(:exclude AS uuid) IS NULL OR m.household_id <> CAST(:exclude AS uuid))
    LIMIT :limit
) AS c
UNION ALL
(
    SELECT 'phone', -1, m.id, m.household_id, h.case_number, h.site_id, m.given_key,
        m.family_key, m.sex, m.date_of_birth, m.birth_year, m.estimated_age IS NOT NULL, h.phone
    FROM household h JOIN household_member m ON m.household_id = h.id
    WHERE h.phone = CAST(:phone AS text) AND h.status = ANY(CAST(:statuses AS text[]))
        AND (CAST(:exclude AS uuid) IS NULL OR m.household_id <> CAST(:exclude AS uuid))
    LIMIT :limit
)
""",
)
"""Rows ``(arm, index, <the columns of dedup.Registered>)``: arm ``family``/``given`` with the
member's index, ``document`` with the document's, ``phone`` with -1."""

# --- erasure ------------------------------------------------------------------------------

MERGED_INTO = Query(
    "households_merged_into",
    """
WITH RECURSIVE merged(id) AS (
    SELECT id FROM household WHERE merged_into_id = :household_id
    UNION
    SELECT h.id FROM household h JOIN merged m ON h.merged_into_id = m.id
)
SELECT id FROM merged
""",
)
"""The households merged into ``household_id``, directly or through others (A <- B <- C); each
step an index look-up (``household_merged_into``, migration 0007). UNION: a cycle, which
merging cannot make, would still end."""

# --- the aggregated report ---------------------------------------------------------------------
# Both statements take the same filters: counted statuses, an optional site, the caller's
# sites (NULL: all), and an optional date range in the site's time zone.

REPORT_HOUSEHOLDS = Query(
    "report_households",
    """
SELECT h.site_id, s.name, s.country, s.admin1, s.admin2, h.displacement_status, count(*)
FROM household h JOIN registration_site s ON s.id = h.site_id
WHERE h.status = ANY(:statuses)
    AND (CAST(:site_id AS text) IS NULL OR h.site_id = :site_id)
    AND (CAST(:sites AS text[]) IS NULL OR h.site_id = ANY(:sites))
    AND (CAST(:from_date AS date) IS NULL
         OR (h.registered_at AT TIME ZONE s.timezone)::date >= :from_date)
    AND (CAST(:to_date AS date) IS NULL
         OR (h.registered_at AT TIME ZONE s.timezone)::date <= :to_date)
GROUP BY h.site_id, s.name, s.country, s.admin1, s.admin2, h.displacement_status
ORDER BY h.site_id, h.displacement_status
""",
)

REPORT_PERSONS = Query(
    "report_persons",
    """
SELECT site_id, displacement_status, sex,
       CASE WHEN age < 5 THEN '0-4' WHEN age < 18 THEN '5-17'
            WHEN age < 60 THEN '18-59' ELSE '60+' END AS band,
       count(*)
FROM (
    SELECT h.site_id, h.displacement_status, m.sex,
           CASE WHEN m.date_of_birth IS NOT NULL
                THEN date_part('year', age(:today, m.date_of_birth))
                ELSE m.estimated_age + date_part('year', age(:today, m.estimated_on))
           END AS age
    FROM household h
    JOIN registration_site s ON s.id = h.site_id
    JOIN household_member m ON m.household_id = h.id
    WHERE h.status = ANY(:statuses)
        AND (CAST(:site_id AS text) IS NULL OR h.site_id = :site_id)
        AND (CAST(:sites AS text[]) IS NULL OR h.site_id = ANY(:sites))
        AND (CAST(:from_date AS date) IS NULL
             OR (h.registered_at AT TIME ZONE s.timezone)::date >= :from_date)
        AND (CAST(:to_date AS date) IS NULL
             OR (h.registered_at AT TIME ZONE s.timezone)::date <= :to_date)
) AS people
GROUP BY 1, 2, 3, 4
""",
)

# --- gauges --------------------------------------------------------------------------------

GAUGE_HOUSEHOLDS = Query(
    "gauge_households",
    "SELECT site_id, coalesce(displacement_status, :unknown), status, count(*) "
    "FROM household GROUP BY 1, 2, 3",
)
GAUGE_VULNERABLE = Query(
    "gauge_vulnerable_households",
    "SELECT h.site_id, count(*) FROM household h WHERE h.status = :active AND EXISTS ("
    "SELECT 1 FROM household_member m WHERE m.household_id = h.id "
    "AND cardinality(m.vulnerabilities) > 0) GROUP BY 1",
)
GAUGE_REVIEWS = Query(
    "gauge_open_reviews",
    "SELECT site_id, count(*) FROM duplicate_review WHERE status = :open GROUP BY 1",
)
GAUGE_SITES = Query("gauge_sites", "SELECT id FROM registration_site")
