-- Lockstep store, schema version 2 (SQLite). Keep in step with ../postgres/0002_open_work_and_workers.sql.
--
-- A pass of the runtime reads only open work, through indexes, so its cost grows with what is
-- open, not with history:
-- open cases (the GitHub sync, webhooks), oldest first;
CREATE INDEX cases_open ON cases (opened_at, case_id) WHERE status <> 'closed';
-- embargo deadlines that can still fire (the next wake, the deadline tick);
CREATE INDEX cases_deadline ON cases (embargo_until) WHERE embargo_state IN ('active', 'revise');
-- and every case, oldest first, for listing a page at a time.
CREATE INDEX cases_by_opened ON cases (opened_at, case_id);

-- Worker liveness. Each runtime registers a row and holds a lock the database or the kernel
-- releases when it dies (SQLite: an exclusive flock on `<database>.worker-<id>.lock`), so its
-- claims return to pending at once instead of when their lease lapses. AUTOINCREMENT: an id is
-- never reused.
CREATE TABLE workers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    started_at INTEGER NOT NULL
);
-- The registered worker holding a claim (NULL: a claim guarded by its lease alone).
ALTER TABLE outbox ADD COLUMN lease_worker INTEGER;
