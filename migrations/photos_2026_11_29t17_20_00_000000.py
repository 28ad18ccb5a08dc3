"""Partnerships in the change log: the events of partnerships made before they recorded any."""

from app.db.migrate import sql_migration

ID = "2026-11-29T17:20:00:000000"
VERSION = "1.42.0"
DESCRIPTION = "partner events"

SQL = """
-- Partnerships now record partner_created / partner_updated / partner_deleted (app.domain.partners),
-- which the Immich sync stream reads. Those made earlier get their partner_created now, so a client
-- syncing from the start sees every partnership. No library: the native feed never shows them.
-- entity_id is partners.partnership_id(): the md5 of "<shared_by_id>:<shared_with_id>" as a uuid.
INSERT INTO events (library_id, owner_id, entity_type, entity_id, event_type, payload)
SELECT NULL, p.shared_by_id, 'partner', md5(p.shared_by_id::text || ':' || p.shared_with_id::text)::uuid,
       'partner_created',
       jsonb_build_object('shared_by_id', p.shared_by_id::text, 'shared_with_id', p.shared_with_id::text,
                          'in_timeline', p.in_timeline)
FROM partners p
ORDER BY p.created_at, p.shared_by_id, p.shared_with_id;
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
