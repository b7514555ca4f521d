-- Tenancy: every generator has a reach (a CEL expression over agent facts, set by an admin)
-- materialized as the agents it admits; direct assignments remember who made them (an admin's
-- are not confined to the reach); and every (agent, stack) pair that was ever assigned is kept,
-- so an agent may report on a stack after it was untargeted. Keep in step with
-- ../sqlite/0005_tenancy.sql.

-- Generators created before tenancy existed keep reaching every agent, as they did; an admin
-- narrows them with PATCH /api/v1/generators/{id} {"reach": ...}.
ALTER TABLE generators ADD COLUMN reach TEXT NOT NULL DEFAULT 'true';

ALTER TABLE agent_targets ADD COLUMN assigned_by TEXT NOT NULL DEFAULT 'generator'
    CHECK (assigned_by IN ('admin', 'generator'));

CREATE TABLE reach (
    generator_id UUID NOT NULL REFERENCES generators (id),
    agent_id     UUID NOT NULL REFERENCES agents (id),
    PRIMARY KEY (generator_id, agent_id)
);
CREATE INDEX reach_agent ON reach (agent_id);

INSERT INTO reach (generator_id, agent_id)
SELECT g.id, a.id FROM generators g CROSS JOIN agents a
WHERE g.deleted_at IS NULL AND a.deleted_at IS NULL;

CREATE TABLE assignment_history (
    agent_id         UUID NOT NULL REFERENCES agents (id),
    stack_id         UUID NOT NULL REFERENCES stacks (id),
    first_assigned_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (agent_id, stack_id)
);

INSERT INTO assignment_history (agent_id, stack_id, first_assigned_at)
SELECT agent_id, stack_id, updated_at FROM assignments;

INSERT INTO assignment_history (agent_id, stack_id, first_assigned_at)
SELECT agent_id, stack_id, MIN(created_at) FROM agent_events WHERE stack_id IS NOT NULL
GROUP BY agent_id, stack_id
ON CONFLICT (agent_id, stack_id) DO NOTHING;
