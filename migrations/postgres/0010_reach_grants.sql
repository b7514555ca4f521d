-- Reach granted by enrollment: an agent enrolled with a token naming generators is inside their
-- reach whatever their reach expressions say (the token's reach_generators, as a JSON array).
-- Keep in step with ../sqlite/0010_reach_grants.sql.

ALTER TABLE enrollment_tokens ADD COLUMN reach_generators TEXT NOT NULL DEFAULT '[]';

CREATE TABLE reach_grants (
    generator_id UUID NOT NULL REFERENCES generators (id),
    agent_id     UUID NOT NULL REFERENCES agents (id),
    PRIMARY KEY (generator_id, agent_id)
);
CREATE INDEX reach_grants_agent ON reach_grants (agent_id);
