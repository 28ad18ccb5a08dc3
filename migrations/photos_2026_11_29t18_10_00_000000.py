"""Immich account state: whether a user finished the app's onboarding, and their profile image."""

from app.db.migrate import sql_migration

ID = "2026-11-29T18:10:00:000000"
VERSION = "1.44.0"
DESCRIPTION = "user onboarding and profile image"

SQL = """
-- The Immich clients ask whether a user has been through their first-run screens (GET/PUT
-- /api/users/me/onboarding); a new account has not.
ALTER TABLE users ADD COLUMN is_onboarded boolean NOT NULL DEFAULT false;
-- The profile image's blob-store key; NULL: the account has none.
ALTER TABLE users ADD COLUMN profile_image_key text;
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
