-- Lockstep store, schema version 3 (PostgreSQL). Keep in step with ../sqlite/0003_reports.sql.
--
-- Private vulnerability reports, recorded once by (repo, ghsa_id) whichever path saw them
-- first (the `reported` webhook, whose delivery id goes into the inbox in the same
-- transaction, or a poll of `?state=triage`). `body` is the core's `Report` as JSON; the
-- other columns are what listing and the runtime need. state: new | accepted | merged |
-- rejected. close_state: NULL (nothing to do on GitHub) | pending | done | failed: a rejected
-- report's advisory is closed on GitHub by the runtime.
CREATE TABLE reports (
    repo        TEXT    NOT NULL,
    ghsa_id     TEXT    NOT NULL,
    received_at BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    state       TEXT    NOT NULL,
    case_id     TEXT,
    body        TEXT    NOT NULL,
    close_state TEXT,
    close_error TEXT,
    PRIMARY KEY (repo, ghsa_id)
);
-- Reports awaiting triage, oldest first.
CREATE INDEX reports_new ON reports (received_at) WHERE state = 'new';
-- Closes the runtime still has to make.
CREATE INDEX reports_closing ON reports (updated_at) WHERE close_state = 'pending';
