"""Smart search embeddings stored in their rows, not in TOAST."""

from app.db.migrate import sql_migration

ID = "2026-11-30T13:00:00:000000"
VERSION = "1.55.0"
DESCRIPTION = "smart search embeddings kept inline"

SQL = """
-- A 512-d embedding is 2,048 bytes, just over the 2 kB at which PostgreSQL moves a row's largest
-- value out to the TOAST table: every embedding read (an index build, duplicate detection, a
-- candidate's re-scoring) then took a TOAST index lookup and two chunk reads, and reading 200,000
-- of them was several times slower than the rows alone (bench/smart_search.py). Rows up to a page
-- stay whole; a 768-d or 1,024-d model's 3 or 4 kB still fits.
ALTER TABLE smart_search SET (toast_tuple_target = 8160);
-- Rows stored before: a new value (not the same TOAST pointer) makes PostgreSQL store it again,
-- inline. The seq stays: the bytes are the same, so the indexes' copies stay right.
UPDATE smart_search SET embedding = embedding || ''::bytea;
"""

forwards = sql_migration(ID, DESCRIPTION, SQL)
