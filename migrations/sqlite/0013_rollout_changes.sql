-- When each progress row last changed (the broker's clock), so a release's figures are kept up
-- to date from the rows changed since they were last read instead of re-read whole.
-- Keep in step with ../postgres/0013_rollout_changes.sql.

ALTER TABLE rollout_agents ADD COLUMN changed_at TEXT;
CREATE INDEX rollout_agents_changes ON rollout_agents (deployment_object_id, changed_at);
