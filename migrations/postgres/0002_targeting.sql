-- Targeting: CEL expressions on stacks and the materialized assignment set (which stacks reach
-- which agents, and by which rules). Keep in step with ../sqlite/0002_targeting.sql.

ALTER TABLE stacks ADD COLUMN target_expression TEXT;

CREATE TABLE assignments (
    agent_id   UUID NOT NULL REFERENCES agents (id),
    stack_id   UUID NOT NULL REFERENCES stacks (id),
    rules      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (agent_id, stack_id)
);
CREATE INDEX assignments_stack ON assignments (stack_id);

INSERT INTO assignments (agent_id, stack_id, rules, updated_at)
SELECT agent_id, stack_id, 'direct', created_at FROM agent_targets;
