-- Work orders: one-shot jobs sent to agents, one run per targeted agent, claimed under a lease.
-- A validator plugin can be bound to the 'work-orders' scope.
-- Keep in step with ../sqlite/0012_work_orders.sql.

CREATE TABLE work_orders (
    id                    UUID PRIMARY KEY,
    work_type             TEXT NOT NULL CHECK (work_type IN ('restart', 'job', 'diagnostics')),
    -- JSON: the validated spec, and the target as it was asked for.
    spec                  TEXT NOT NULL,
    target                TEXT NOT NULL,
    -- The generator that created it; NULL for an admin.
    generator_id          UUID REFERENCES generators (id),
    max_attempts          BIGINT NOT NULL,
    claim_timeout_seconds BIGINT NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL,
    -- When the order and its results are deleted; set for diagnostics at creation and for any
    -- order when its last run finishes.
    expires_at            TIMESTAMPTZ
);
CREATE INDEX work_orders_created ON work_orders (created_at, id);
CREATE INDEX work_orders_generator ON work_orders (generator_id, created_at);
CREATE INDEX work_orders_expires ON work_orders (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE work_runs (
    work_order_id    UUID NOT NULL REFERENCES work_orders (id) ON DELETE CASCADE,
    agent_id         UUID NOT NULL REFERENCES agents (id),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'claimed', 'succeeded', 'failed', 'expired', 'cancelled')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    -- The holder's proof of its claim; renewals and the completion must present it.
    lease_id         UUID,
    claimed_at       TIMESTAMPTZ,
    lease_expires_at TIMESTAMPTZ,
    completed_at     TIMESTAMPTZ,
    message          TEXT,
    result           TEXT,
    PRIMARY KEY (work_order_id, agent_id)
);
CREATE INDEX work_runs_agent_pending ON work_runs (agent_id) WHERE status = 'pending';
CREATE INDEX work_runs_leases ON work_runs (lease_expires_at) WHERE status = 'claimed';

ALTER TABLE plugin_bindings DROP CONSTRAINT plugin_bindings_scope_check;
ALTER TABLE plugin_bindings ADD CONSTRAINT plugin_bindings_scope_check
    CHECK (scope IN ('global', 'generator', 'stack', 'work-orders'));
