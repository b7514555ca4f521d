-- Brokkr core schema (SQLite). Keep in step with ../postgres/0001_core.sql.

CREATE TABLE generators (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT
);
CREATE UNIQUE INDEX generators_live_name ON generators (name) WHERE deleted_at IS NULL;

CREATE TABLE agents (
    id                   BLOB PRIMARY KEY,
    name                 TEXT NOT NULL,
    cluster_name         TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('active', 'inactive')),
    last_heartbeat_at    TEXT,
    kubernetes_reachable BOOLEAN,
    agent_version        TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    deleted_at           TEXT
);
CREATE UNIQUE INDEX agents_live_name ON agents (name) WHERE deleted_at IS NULL;

CREATE TABLE agent_labels (
    agent_id BLOB NOT NULL REFERENCES agents (id),
    label    TEXT NOT NULL,
    PRIMARY KEY (agent_id, label)
);
CREATE INDEX agent_labels_label ON agent_labels (label);

CREATE TABLE agent_annotations (
    agent_id BLOB NOT NULL REFERENCES agents (id),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (agent_id, key)
);
CREATE INDEX agent_annotations_pair ON agent_annotations (key, value);

CREATE TABLE stacks (
    id            BLOB PRIMARY KEY,
    generator_id  BLOB NOT NULL REFERENCES generators (id),
    name          TEXT NOT NULL,
    description   TEXT,
    last_sequence BIGINT NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    deleted_at    TEXT
);
CREATE UNIQUE INDEX stacks_live_name ON stacks (generator_id, name) WHERE deleted_at IS NULL;

CREATE TABLE stack_labels (
    stack_id BLOB NOT NULL REFERENCES stacks (id),
    label    TEXT NOT NULL,
    PRIMARY KEY (stack_id, label)
);
CREATE INDEX stack_labels_label ON stack_labels (label);

CREATE TABLE stack_annotations (
    stack_id BLOB NOT NULL REFERENCES stacks (id),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (stack_id, key)
);
CREATE INDEX stack_annotations_pair ON stack_annotations (key, value);

CREATE TABLE deployment_objects (
    id                 BLOB PRIMARY KEY,
    stack_id           BLOB NOT NULL REFERENCES stacks (id),
    sequence_id        BIGINT NOT NULL,
    yaml_content       TEXT NOT NULL,
    yaml_checksum      TEXT NOT NULL,
    is_deletion_marker BOOLEAN NOT NULL,
    created_at         TEXT NOT NULL,
    deleted_at         TEXT,
    UNIQUE (stack_id, sequence_id)
);

CREATE TABLE agent_targets (
    agent_id   BLOB NOT NULL REFERENCES agents (id),
    stack_id   BLOB NOT NULL REFERENCES stacks (id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (agent_id, stack_id)
);
CREATE INDEX agent_targets_stack ON agent_targets (stack_id);

CREATE TABLE agent_events (
    id                   BLOB PRIMARY KEY,
    agent_id             BLOB NOT NULL REFERENCES agents (id),
    deployment_object_id BLOB REFERENCES deployment_objects (id),
    stack_id             BLOB REFERENCES stacks (id),
    idempotency_key      TEXT NOT NULL,
    event_type           TEXT NOT NULL,
    status               TEXT NOT NULL,
    message              TEXT,
    created_at           TEXT NOT NULL,
    UNIQUE (agent_id, idempotency_key)
);
CREATE INDEX agent_events_agent ON agent_events (agent_id, created_at);
CREATE INDEX agent_events_stack ON agent_events (stack_id, created_at);

-- One credential per principal. Only SHA-256 of the long token is stored.
CREATE TABLE pak_credentials (
    short_token    TEXT PRIMARY KEY,
    long_hash      BLOB NOT NULL,
    principal_type TEXT NOT NULL CHECK (principal_type IN ('admin', 'generator', 'agent')),
    principal_id   BLOB NOT NULL,
    created_at     TEXT NOT NULL,
    UNIQUE (principal_type, principal_id)
);

CREATE TABLE audit_logs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at    TEXT NOT NULL,
    actor_type    TEXT NOT NULL,
    actor_id      BLOB,
    action        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT,
    details       TEXT NOT NULL
);
CREATE INDEX audit_logs_action ON audit_logs (action);
CREATE INDEX audit_logs_actor ON audit_logs (actor_type, actor_id);

CREATE TRIGGER audit_logs_no_update BEFORE UPDATE ON audit_logs
BEGIN
    SELECT RAISE(ABORT, 'audit_logs is append-only');
END;

CREATE TRIGGER audit_logs_no_delete BEFORE DELETE ON audit_logs
BEGIN
    SELECT RAISE(ABORT, 'audit_logs is append-only');
END;
