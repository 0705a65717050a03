"""Routing's candidates for several service types at once: providers offering any of them.

Revision ID: 0004
Revises: 0003

``referral_routing_candidates`` now locks the active providers offering *any* of
``wanted_services`` (it was all of them) in any of ``wanted_regions``: a batch of new
households routes the referrals of all its service types with one call, its candidates locked
in id order. A call with one service type locks and returns exactly what it did.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_FUNCTION = """
        CREATE OR REPLACE FUNCTION referral_routing_candidates(
            wanted_services text[], wanted_regions text[], slot_statuses text[]
        )
        RETURNS TABLE (
            id uuid,
            name text,
            services text[],
            regions text[],
            languages text[],
            capacity integer,
            contact jsonb,
            opening_hours text,
            active boolean,
            created_at timestamptz,
            updated_at timestamptz,
            open_referrals bigint
        )
        LANGUAGE plpgsql VOLATILE
        AS $$
        #variable_conflict use_column
        DECLARE
            locked uuid[];
        BEGIN
            SELECT coalesce(array_agg(candidate.id), '{}') INTO locked
            FROM (
                SELECT provider.id FROM provider
                WHERE provider.services && wanted_services
                  AND provider.regions && wanted_regions
                  AND provider.active
                ORDER BY provider.id
                FOR UPDATE
            ) AS candidate;
            RETURN QUERY
            SELECT p.id, p.name, p.services, p.regions, p.languages, p.capacity, p.contact,
                   p.opening_hours, p.active, p.created_at, p.updated_at,
                   (SELECT count(*) FROM referral AS r
                    WHERE r.provider_id = p.id AND r.status = ANY (slot_statuses))
            FROM provider AS p
            WHERE p.id = ANY (locked)
            ORDER BY p.id;
        END;
        $$
        """


def upgrade() -> None:
    op.execute(_FUNCTION)


def downgrade() -> None:
    op.execute(_FUNCTION.replace("services && wanted_services", "services @> wanted_services"))
