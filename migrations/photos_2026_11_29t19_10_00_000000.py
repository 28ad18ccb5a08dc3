"""Failed tasks by type: Immich's job queues report how many failed since the last clear-failed."""

from app.db.migrate import sql_migration

ID = "2026-11-29T19:10:00:000000"
VERSION = "1.49.0"
DESCRIPTION = "failed tasks by type"

SQL = """
-- GET /api/jobs is polled every few seconds by Immich's web client: its failed counts must not scan
-- every task ever run.
CREATE INDEX tasks_failed_idx ON tasks (task_type, completed_at) WHERE status = 'failure';
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
