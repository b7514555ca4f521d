-- Work orders: one-shot jobs sent to agents, one run per targeted agent, claimed under a lease.
-- A validator plugin can be bound to the 'work-orders' scope.
-- Keep in step with ../postgres/0012_work_orders.sql.

CREATE TABLE work_orders (
    id                    BLOB PRIMARY KEY,
    work_type             TEXT NOT NULL CHECK (work_type IN ('restart', 'job', 'diagnostics')),
    -- JSON: the validated spec, and the target as it was asked for.
    spec                  TEXT NOT NULL,
    target                TEXT NOT NULL,
    -- The generator that created it; NULL for an admin.
    generator_id          BLOB REFERENCES generators (id),
    max_attempts          INTEGER NOT NULL,
    claim_timeout_seconds INTEGER NOT NULL,
    created_at            TEXT NOT NULL,
    -- When the order and its results are deleted; set for diagnostics at creation and for any
    -- order when its last run finishes.
    expires_at            TEXT
);
CREATE INDEX work_orders_created ON work_orders (created_at, id);
CREATE INDEX work_orders_generator ON work_orders (generator_id, created_at);
CREATE INDEX work_orders_expires ON work_orders (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE work_runs (
    work_order_id    BLOB NOT NULL REFERENCES work_orders (id) ON DELETE CASCADE,
    agent_id         BLOB NOT NULL REFERENCES agents (id),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'claimed', 'succeeded', 'failed', 'expired', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    -- The holder's proof of its claim; renewals and the completion must present it.
    lease_id         BLOB,
    claimed_at       TEXT,
    lease_expires_at TEXT,
    completed_at     TEXT,
    message          TEXT,
    result           TEXT,
    PRIMARY KEY (work_order_id, agent_id)
);
CREATE INDEX work_runs_agent_pending ON work_runs (agent_id) WHERE status = 'pending';
CREATE INDEX work_runs_leases ON work_runs (lease_expires_at) WHERE status = 'claimed';

-- SQLite cannot change a CHECK constraint: the bindings table is rebuilt (nothing refers to it).
CREATE TABLE plugin_bindings_new (
    id         BLOB PRIMARY KEY,
    plugin_id  BLOB NOT NULL REFERENCES plugins (id),
    scope      TEXT NOT NULL CHECK (scope IN ('global', 'generator', 'stack', 'work-orders')),
    scope_id   BLOB NOT NULL,
    mode       TEXT NOT NULL CHECK (mode IN ('enforce', 'warn', 'shadow')),
    created_at TEXT NOT NULL,
    UNIQUE (plugin_id, scope, scope_id)
);
INSERT INTO plugin_bindings_new SELECT id, plugin_id, scope, scope_id, mode, created_at FROM plugin_bindings;
DROP TABLE plugin_bindings;
ALTER TABLE plugin_bindings_new RENAME TO plugin_bindings;
CREATE INDEX plugin_bindings_scope ON plugin_bindings (scope, scope_id);
