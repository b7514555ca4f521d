-- Hash-chain the audit log: every entry carries the hash of the one before it.
-- Keep in step with ../sqlite/0004_audit_chain.sql.
ALTER TABLE audit_logs ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_logs ADD COLUMN hash TEXT;
