-- Lockstep store, schema version 1 (SQLite). Keep in step with ../postgres/0001_initial.sql.
-- Times are milliseconds since the Unix epoch (UTC), read from the database clock.
-- Hashes are lowercase hex SHA-256. JSON columns hold the exact bytes that were hashed.

-- One row per case: the optimistic-concurrency version and a summary derived from the folded
-- case at each commit. A cache: the events are the truth.
CREATE TABLE cases (
    case_id       TEXT    NOT NULL PRIMARY KEY,
    version       INTEGER NOT NULL,
    opened_at     INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    title         TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    embargo_state TEXT    NOT NULL,
    embargo_until INTEGER,
    repos         INTEGER NOT NULL
);

-- The event log. `body` is the core's `Event` as JSON; `audit_id` is the audit entry that
-- committed it (and whose `events_hash` covers it).
CREATE TABLE events (
    case_id  TEXT    NOT NULL,
    seq      INTEGER NOT NULL,
    body     TEXT    NOT NULL,
    audit_id INTEGER NOT NULL,
    PRIMARY KEY (case_id, seq)
) WITHOUT ROWID;
CREATE INDEX events_by_audit ON events (audit_id, case_id, seq);

-- The transactional outbox. state: pending | held | claimed | done | failed.
-- For a claimed row, next_attempt_at is its lease's end (= lease_until).
CREATE TABLE outbox (
    id              INTEGER NOT NULL PRIMARY KEY,
    key             TEXT    NOT NULL UNIQUE,
    case_id         TEXT    NOT NULL,
    repo            TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    is_publish      INTEGER NOT NULL,
    effect          TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    epoch           INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     INTEGER,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    held_reason     TEXT,
    held_version    INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
-- Due work: pending rows (next_attempt_at = when they may run), claimed rows (= their lease's
-- end) and held rows (= their next re-check). Partial, so finished rows leave it.
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state IN ('pending', 'held', 'claimed');
-- Held publications, released early when their case moves on.
CREATE INDEX outbox_held ON outbox (case_id) WHERE state = 'held';

-- The inbox: webhook deliveries already processed, by X-GitHub-Delivery.
CREATE TABLE inbox (
    delivery_id TEXT    NOT NULL PRIMARY KEY,
    received_at INTEGER NOT NULL,
    case_id     TEXT
);

-- The audit chain: one entry per committed input, numbered from 1, hash-chained. Appends are
-- serialised by the single writer (SQLite) or a transaction-level advisory lock (PostgreSQL).
CREATE TABLE audit (
    id          INTEGER NOT NULL PRIMARY KEY,
    at          INTEGER NOT NULL,
    case_id     TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    authority   TEXT    NOT NULL,
    input       TEXT    NOT NULL,
    seq_from    INTEGER NOT NULL,
    seq_to      INTEGER NOT NULL,
    events_hash TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    hash        TEXT    NOT NULL
);

-- Events and audit entries are append-only. This stops accidents; the verifier and the
-- signed checkpoints kept outside the database are what catch a deliberate rewrite.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'lockstep: events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'lockstep: events are append-only'); END;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'lockstep: the audit trail is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'lockstep: the audit trail is append-only'); END;
