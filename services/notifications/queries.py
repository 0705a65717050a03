"""Every hand-tuned SQL statement of the notifications service, with named parameters.

The domain runs them with :func:`shared.db.run`; each is compiled once and only binds values
per call. The batch statements are set-based (``unnest`` of array parameters): one statement
per batch whatever its size (tests/notifications/test_intake_costs.py counts them).
"""

from __future__ import annotations

from shared.db import Query

# --- households: locks, contacts, sites ---------------------------------------------------

# Tells sender loops (on commit) that something may be due now.
WAKE_SENDERS = Query(
    "wake_senders",
    "SELECT pg_notify(CAST(:channel AS text), '')",
)

# One household's transaction-scoped lock (households.lock_household).
LOCK_HOUSEHOLD = Query(
    "lock_household",
    "SELECT pg_advisory_xact_lock(hashtextextended(CAST(:key AS text), 0))",
)

# Several households' locks (the same lock as LOCK_HOUSEHOLD) in one statement, taken in
# the order of their ids so that two transactions locking overlapping sets cannot deadlock.
# PostgreSQL evaluates a volatile function of the select list after the sort.
LOCK_HOUSEHOLDS = Query(
    "lock_households",
    """
    SELECT pg_advisory_xact_lock(hashtextextended(CAST(household_id AS text), 0))
    FROM unnest(CAST(:household_ids AS uuid[])) AS k(household_id)
    ORDER BY household_id
    """,
)

# The contact saved (unless the household was erased) and the household's confirmations
# waiting for it made due, in one statement. It runs after LOCK_HOUSEHOLD, in its own
# statement, so its snapshot sees whatever the lock's previous holder committed.
SAVE_CONTACT = Query(
    "save_contact",
    """
    WITH saved AS (
        INSERT INTO notification_contact
            (household_id, case_number, site_id, phone, language, contact_consent, updated_at)
        SELECT CAST(:household_id AS uuid), CAST(:case_number AS text), CAST(:site_id AS text),
               CAST(:phone AS text), CAST(:language AS text), CAST(:contact_consent AS boolean),
               CAST(:now AS timestamptz)
        WHERE NOT EXISTS (
            SELECT 1 FROM notification_erasure
            WHERE household_id = CAST(:household_id AS uuid)
        )
        ON CONFLICT (household_id) DO UPDATE SET
            case_number = excluded.case_number, site_id = excluded.site_id,
            phone = excluded.phone, language = excluded.language,
            contact_consent = excluded.contact_consent, updated_at = excluded.updated_at
        RETURNING household_id
    )
    UPDATE notification
    SET next_attempt_at = CAST(:now AS timestamptz), updated_at = CAST(:now AS timestamptz)
    WHERE household_id IN (SELECT household_id FROM saved)
      AND audience = 'beneficiary' AND status = 'queued' AND attempts = 0
      AND next_attempt_at > CAST(:now AS timestamptz)
    """,
)

# The households' site rows inserted or updated (unless a household was erased or a newer
# version is held) and their locks taken (the same lock as LOCK_HOUSEHOLD), in one statement
# whatever the number of households, rows and locks in the order of the ids (no deadlock with
# another transaction doing the same). The households must be distinct (one row cannot be
# changed twice by one statement). The upsert does not depend on the locks (only this topic
# writes the rows, in order per household); what reads after it, in statements of their own,
# sees whatever the locks' previous holders committed.
UPSERT_SITES_AND_LOCK = Query(
    "upsert_sites_and_lock",
    """
    WITH profile AS (
        SELECT * FROM unnest(
            CAST(:household_ids AS uuid[]), CAST(:site_ids AS text[]),
            CAST(:case_numbers AS text[]), CAST(:contact_consents AS boolean[]),
            CAST(:versions AS integer[])
        ) AS p(household_id, site_id, case_number, contact_consent, version)
    ),
    site AS (
        INSERT INTO notification_household
            (household_id, site_id, case_number, contact_consent, version)
        SELECT household_id, site_id, case_number, contact_consent, version
        FROM profile p
        WHERE NOT EXISTS (
            SELECT 1 FROM notification_erasure e WHERE e.household_id = p.household_id
        )
        ORDER BY household_id
        ON CONFLICT (household_id) DO UPDATE SET
            site_id = excluded.site_id, case_number = excluded.case_number,
            contact_consent = excluded.contact_consent, version = excluded.version
        WHERE notification_household.version <= excluded.version
    )
    SELECT pg_advisory_xact_lock(hashtextextended(CAST(household_id AS text), 0))
    FROM profile
    ORDER BY household_id
    """,
)


# --- intake: queueing beneficiaries' SMS --------------------------------------------------

# The households' SMS for some events, decided and queued in one statement whatever their
# number, from what this service knows about each household (nothing when it was erased). It
# runs after LOCK_HOUSEHOLDS, in a statement of its own, so its snapshot sees the contacts that
# the locks' previous holders committed. The decision is recipients.unreachable_because and
# the masking masking.mask_phone, in SQL (tests/notifications/test_intake_costs.py checks they
# agree); the senders are woken when a message is due now.
QUEUE_FOR_BENEFICIARIES = Query(
    "queue_for_beneficiaries",
    r"""
    WITH event AS (
        SELECT * FROM unnest(
            CAST(:ids AS uuid[]), CAST(:event_ids AS uuid[]), CAST(:event_types AS text[]),
            CAST(:household_ids AS uuid[]), CAST(:site_ids AS text[]),
            CAST(:recipient_keys AS text[]), CAST(:contexts AS text[])
        ) AS e(id, event_id, event_type, household_id, site_id, recipient_key, context)
    ),
    known AS (
        SELECT e.*,
               c.household_id IS NOT NULL AS has_contact, c.phone, c.contact_consent,
               c.site_id AS contact_site, h.site_id AS household_site,
               h.household_id IS NOT NULL AND NOT h.contact_consent AS refused_at_registration
        FROM event e
        LEFT JOIN notification_contact c ON c.household_id = e.household_id
        LEFT JOIN notification_household h ON h.household_id = e.household_id
        WHERE NOT EXISTS (
            SELECT 1 FROM notification_erasure x WHERE x.household_id = e.household_id
        )
    ),
    decided AS (
        SELECT known.*,
               CASE
                   WHEN NOT has_contact AND refused_at_registration THEN 'no_consent'
                   WHEN NOT has_contact THEN 'no_contact'
                   WHEN NOT contact_consent THEN 'no_consent'
                   WHEN phone IS NULL OR phone !~ '^\+[1-9][0-9]{6,14}$' THEN 'no_phone'
               END AS reason
        FROM known
    ),
    queued AS (
        INSERT INTO notification
            (id, event_id, event_type, household_id, site_id, audience, recipient_key,
             channel, recipient_masked, context, status, skip_reason, attempts,
             next_attempt_at, contact_deadline, created_at, updated_at)
        SELECT id, event_id, event_type, household_id,
               COALESCE(site_id, household_site, contact_site),
               'beneficiary', recipient_key, 'sms',
               CASE
                   WHEN phone = '' THEN NULL
                   WHEN char_length(phone) <= 7
                       THEN repeat('*', greatest(char_length(phone) - 2, 0)) || right(phone, 2)
                   ELSE left(phone, 5) || repeat('*', char_length(phone) - 7) || right(phone, 2)
               END,
               CAST(context AS jsonb),
               CASE WHEN reason IS NULL OR reason = 'no_contact' THEN 'queued' ELSE 'skipped' END,
               NULLIF(reason, 'no_contact'), 0,
               CASE WHEN reason = 'no_contact' THEN CAST(:deadline AS timestamptz)
                    ELSE CAST(:now AS timestamptz) END,
               CASE WHEN reason = 'no_contact' THEN CAST(:deadline AS timestamptz) END,
               CAST(:now AS timestamptz), CAST(:now AS timestamptz)
        FROM decided
        ON CONFLICT ON CONSTRAINT notification_once DO NOTHING
        RETURNING status, contact_deadline
    )
    SELECT pg_notify(CAST(:wake_channel AS text), '')
    WHERE EXISTS (SELECT 1 FROM queued WHERE status = 'queued' AND contact_deadline IS NULL)
    """,
)


# --- templates ----------------------------------------------------------------------------

# Every template a sender round needs, in one statement.
TEMPLATES = Query(
    "templates",
    "SELECT event_type, language, subject, body FROM notification_template "
    "WHERE (event_type, language) IN "
    "(SELECT * FROM unnest(CAST(:event_types AS text[]), CAST(:languages AS text[])))",
)


# A template created or replaced; xmax = 0 only for a row this statement inserted (not one it
# updated), which tells the API 201 from 200.
PUT_TEMPLATE = Query(
    "put_template",
    """
    INSERT INTO notification_template (event_type, language, subject, body, updated_at, updated_by)
    VALUES (:event_type, :language, :subject, :body, :now, :actor)
    ON CONFLICT (event_type, language) DO UPDATE SET
        subject = :subject, body = :body, updated_at = :now, updated_by = :actor
    RETURNING xmax = 0
    """,
)


# --- delivery: rate limits, claims, outcomes ----------------------------------------------

# A channel's bucket, full, the first time the channel is rate limited.
CREATE_RATE_BUCKET = Query(
    "create_rate_bucket",
    "INSERT INTO notification_rate_bucket (channel, tokens, refilled_at) "
    "VALUES (:channel, :tokens, :now) ON CONFLICT DO NOTHING",
)

# A channel's bucket, locked until the claim's transaction ends (so it holds across replicas).
LOCK_RATE_BUCKET = Query(
    "lock_rate_bucket",
    "SELECT tokens, refilled_at FROM notification_rate_bucket WHERE channel = :channel FOR UPDATE",
)

# What is left in a channel's bucket after a claim.
TAKE_RATE_TOKENS = Query(
    "take_rate_tokens",
    "UPDATE notification_rate_bucket SET tokens = :tokens, refilled_at = :now "
    "WHERE channel = :channel",
)

# A round's claimed rows moved to ``sending`` together, each with its own attempt, lease token
# and rendering.
MARK_SENDING = Query(
    "mark_sending",
    """
    UPDATE notification AS n
    SET status = 'sending', attempts = c.attempts, lease_until = :lease_until,
        lease_token = c.lease_token, recipient_masked = c.recipient_masked,
        language = c.language, subject = c.subject, body = c.body,
        encoding = c.encoding, segments = c.segments, updated_at = :now
    FROM unnest(
        CAST(:ids AS uuid[]), CAST(:attempts AS integer[]), CAST(:lease_tokens AS uuid[]),
        CAST(:recipients_masked AS text[]), CAST(:languages AS text[]),
        CAST(:subjects AS text[]), CAST(:bodies AS text[]), CAST(:encodings AS text[]),
        CAST(:segments AS integer[])
    ) AS c(id, attempts, lease_token, recipient_masked, language, subject, body, encoding,
           segments)
    WHERE n.id = c.id
    """,
)

# A round's deliveries recorded together, each only by its lease holder.
MARK_DELIVERED = Query(
    "mark_delivered",
    """
    UPDATE notification AS n
    SET status = 'delivered', delivered_at = :now, lease_until = NULL, lease_token = NULL,
        last_error = NULL, updated_at = :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:lease_tokens AS uuid[])) AS c(id, lease_token)
    WHERE n.id = c.id AND n.lease_token = c.lease_token AND n.status = 'sending'
    RETURNING n.id, n.event_id, n.event_type, n.channel, n.household_id
    """,
)
