"""Routing's candidates in one round trip: lock them, then count their taken slots.

Revision ID: 0003
Revises: 0002

``referral_routing_candidates`` locks the active providers that offer all of
``wanted_services`` in any of ``wanted_regions`` (in id order, so concurrent routings cannot
deadlock), then returns them with the referrals holding their slots (status in
``slot_statuses``). The count is a second statement of the function: in READ COMMITTED it
takes a fresh snapshot after the locks are held, so it sees what the locks' previous
holders committed — two referrals routed at once cannot both take a provider's last slot.
Only the providers locked are returned, in id order.

The function returns the provider's columns by name: a later migration that adds a column to
``provider`` must recreate it with that column (routing reads providers through it).
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION referral_routing_candidates(
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
                WHERE provider.services @> wanted_services
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
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION referral_routing_candidates(text[], text[], text[])")
