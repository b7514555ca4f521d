-- Staged rollouts: a stack's strategy, each release's passage through its waves, which version
-- each agent holds while a release is staged, and the lease that lets one replica drive them.
-- Keep in step with ../sqlite/0014_staged_rollouts.sql.

ALTER TABLE stacks ADD COLUMN rollout_strategy TEXT;

CREATE TABLE staged_rollouts (
    deployment_object_id UUID PRIMARY KEY REFERENCES deployment_objects (id),
    stack_id             UUID NOT NULL REFERENCES stacks (id),
    -- The version agents keep until their wave, and get back on a rollback.
    previous_object_id   UUID NOT NULL REFERENCES deployment_objects (id),
    -- The strategy as it was when the release started (JSON).
    strategy             TEXT NOT NULL,
    state                TEXT NOT NULL CHECK (state IN ('progressing', 'paused', 'succeeded', 'rolled_back', 'superseded')),
    -- The wave being gated; the number of waves once all passed.
    wave                 BIGINT NOT NULL,
    -- Per wave: when it started, began soaking, passed or failed (JSON).
    waves                TEXT NOT NULL,
    reason               TEXT,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX staged_rollouts_state ON staged_rollouts (state);
CREATE INDEX staged_rollouts_stack ON staged_rollouts (stack_id, created_at);

-- The wave of each agent of a stack under a staged release, and the version it holds instead
-- of the newest (NULL: the newest).
CREATE TABLE rollout_members (
    stack_id       UUID NOT NULL REFERENCES stacks (id),
    agent_id       UUID NOT NULL REFERENCES agents (id),
    wave           BIGINT NOT NULL,
    -- What the agent held when the release started: what a rollback gives back.
    base_object_id UUID NOT NULL REFERENCES deployment_objects (id),
    held_object_id UUID REFERENCES deployment_objects (id),
    PRIMARY KEY (stack_id, agent_id)
);
CREATE INDEX rollout_members_wave ON rollout_members (stack_id, wave);

-- Work that exactly one replica does at a time.
CREATE TABLE driver_leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
