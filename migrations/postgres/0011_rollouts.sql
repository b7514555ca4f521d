-- What each agent made of each deployment object it was sent, maintained as its reports arrive
-- (apply events and health reports), so a release's convergence is read from one indexed set of
-- rows instead of recomputed from the event history.
-- Keep in step with ../sqlite/0011_rollouts.sql.

CREATE TABLE rollout_agents (
    deployment_object_id UUID NOT NULL REFERENCES deployment_objects (id),
    agent_id             UUID NOT NULL REFERENCES agents (id),
    -- First successful apply.
    applied_at           TIMESTAMPTZ,
    -- Latest failed apply and why (a later success clears it).
    failed_at            TIMESTAMPTZ,
    failure              TEXT,
    -- Latest health report.
    health               TEXT CHECK (health IN ('healthy', 'unknown', 'progressing', 'degraded', 'failing')),
    health_message       TEXT,
    health_at            TIMESTAMPTZ,
    -- First report of 'healthy'.
    healthy_at           TIMESTAMPTZ,
    PRIMARY KEY (deployment_object_id, agent_id)
);
CREATE INDEX rollout_agents_agent ON rollout_agents (agent_id);
