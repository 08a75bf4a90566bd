-- Lockstep store, schema version 4 (PostgreSQL). Keep in step with ../sqlite/0004_audit_by_case.sql.
--
-- The dashboard's activity reads one case's audit entries (who acted, under which authority)
-- through this index, whatever the history of the other cases.
CREATE INDEX audit_by_case ON audit (case_id, id);
