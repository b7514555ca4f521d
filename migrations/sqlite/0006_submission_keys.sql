-- Idempotency keys of deployment-object submissions: a CI job that retries after a lost
-- response gets the first result instead of a duplicate version. Keys last 24 hours.
-- Keep in step with ../postgres/0006_submission_keys.sql.

CREATE TABLE submission_keys (
    stack_id             BLOB NOT NULL REFERENCES stacks (id),
    key                  TEXT NOT NULL,
    body_sha256          TEXT NOT NULL,
    deployment_object_id BLOB NOT NULL REFERENCES deployment_objects (id),
    created_at           TEXT NOT NULL,
    PRIMARY KEY (stack_id, key)
);
