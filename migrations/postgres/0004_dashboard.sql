-- Lockstep store, schema version 4 (PostgreSQL). Keep in step with ../sqlite/0004_dashboard.sql.
--
-- The dashboard's activity reads one case's audit entries (who acted, under which authority)
-- through this index, whatever the history of the other cases.
CREATE INDEX audit_by_case ON audit (case_id, id);

-- Dashboard sessions signed out before they expire. The session cookie is stateless (encrypted,
-- with its own expiry); signing out records the SHA-256 of its session id here, so that a copy
-- of the cookie stops working too. Rows past the session's expiry (milliseconds) are pruned.
CREATE TABLE signed_out (
    session_hash TEXT    PRIMARY KEY,
    expires_at   BIGINT  NOT NULL
);
