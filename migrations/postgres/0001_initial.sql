-- Lockstep store, schema version 1 (PostgreSQL). Keep in step with ../sqlite/0001_initial.sql.
-- Times are milliseconds since the Unix epoch (UTC), read from the database clock.
-- Hashes are lowercase hex SHA-256. JSON columns are TEXT, not JSONB, because they hold the
-- exact bytes that were hashed.

CREATE TABLE cases (
    case_id       TEXT    NOT NULL PRIMARY KEY,
    version       BIGINT  NOT NULL,
    opened_at     BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    title         TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    embargo_state TEXT    NOT NULL,
    embargo_until BIGINT,
    repos         BIGINT  NOT NULL
);

CREATE TABLE events (
    case_id  TEXT   NOT NULL,
    seq      BIGINT NOT NULL,
    body     TEXT   NOT NULL,
    audit_id BIGINT NOT NULL,
    PRIMARY KEY (case_id, seq)
);
CREATE INDEX events_by_audit ON events (audit_id, case_id, seq);

CREATE TABLE outbox (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key             TEXT    NOT NULL UNIQUE,
    case_id         TEXT    NOT NULL,
    repo            TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    is_publish      BOOLEAN NOT NULL,
    effect          TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    epoch           BIGINT  NOT NULL DEFAULT 0,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     BIGINT,
    next_attempt_at BIGINT  NOT NULL DEFAULT 0,
    held_reason     TEXT,
    held_version    BIGINT,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);
-- Due work: pending rows (next_attempt_at = when they may run), claimed rows (= their lease's
-- end) and held rows (= their next re-check). Partial, so finished rows leave it.
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state IN ('pending', 'held', 'claimed');
-- Held publications, released early when their case moves on.
CREATE INDEX outbox_held ON outbox (case_id) WHERE state = 'held';

CREATE TABLE inbox (
    delivery_id TEXT   NOT NULL PRIMARY KEY,
    received_at BIGINT NOT NULL,
    case_id     TEXT
);

CREATE TABLE audit (
    id          BIGINT NOT NULL PRIMARY KEY,
    at          BIGINT NOT NULL,
    case_id     TEXT   NOT NULL,
    actor       TEXT   NOT NULL,
    authority   TEXT   NOT NULL,
    input       TEXT   NOT NULL,
    seq_from    BIGINT NOT NULL,
    seq_to      BIGINT NOT NULL,
    events_hash TEXT   NOT NULL,
    prev_hash   TEXT   NOT NULL,
    hash        TEXT   NOT NULL
);

CREATE FUNCTION lockstep_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'lockstep: % on % is not allowed: the table is append-only', TG_OP, TG_TABLE_NAME;
END
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION lockstep_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION lockstep_append_only();
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION lockstep_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION lockstep_append_only();
