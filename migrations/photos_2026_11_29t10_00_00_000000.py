"""Crash recovery of jobs: which worker runs a task, how often it was started, and worker liveness."""

from app.db.migrate import sql_migration

ID = "2026-11-29T10:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "task claims and worker heartbeats"

SQL = """
-- The worker process that claimed a started task, and how many times it was started
-- (retries and restarts after a crash both count), so a task that kills its worker
-- every time ends as failed instead of looping.
ALTER TABLE tasks ADD COLUMN worker_id text, ADD COLUMN attempts integer NOT NULL DEFAULT 0;
CREATE INDEX tasks_started_idx ON tasks (worker_id) WHERE status = 'started';
CREATE INDEX tasks_pending_idx ON tasks (created_at) WHERE status = 'pending';
-- One row per running worker process, its seen_at refreshed every few seconds. A worker
-- whose row is stale is gone, and the tasks it had started are run again.
CREATE TABLE workers (
    id text PRIMARY KEY,
    hostname text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at timestamptz NOT NULL DEFAULT now()
);
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
