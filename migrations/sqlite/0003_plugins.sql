-- WASM policy plugins: content-addressed modules, installed plugins with their configuration,
-- bindings to scopes with a mode, and recorded verdicts. Keep in step with ../postgres/0003_plugins.sql.

CREATE TABLE plugin_modules (
    digest     TEXT PRIMARY KEY,
    wasm       BLOB NOT NULL,
    size       BIGINT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE plugins (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT,
    digest      TEXT NOT NULL REFERENCES plugin_modules (digest),
    config      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT
);
CREATE UNIQUE INDEX plugins_live_name ON plugins (name) WHERE deleted_at IS NULL;

-- scope_id is the nil UUID for the global scope.
CREATE TABLE plugin_bindings (
    id         BLOB PRIMARY KEY,
    plugin_id  BLOB NOT NULL REFERENCES plugins (id),
    scope      TEXT NOT NULL CHECK (scope IN ('global', 'generator', 'stack')),
    scope_id   BLOB NOT NULL,
    mode       TEXT NOT NULL CHECK (mode IN ('enforce', 'warn', 'shadow')),
    created_at TEXT NOT NULL,
    UNIQUE (plugin_id, scope, scope_id)
);
CREATE INDEX plugin_bindings_scope ON plugin_bindings (scope, scope_id);

CREATE TABLE plugin_verdicts (
    id                   BLOB PRIMARY KEY,
    plugin_id            BLOB NOT NULL REFERENCES plugins (id),
    mode                 TEXT NOT NULL,
    stack_id             BLOB,
    deployment_object_id BLOB,
    outcome              TEXT NOT NULL CHECK (outcome IN ('pass', 'violations', 'error')),
    details              TEXT NOT NULL,
    created_at           TEXT NOT NULL
);
CREATE INDEX plugin_verdicts_plugin ON plugin_verdicts (plugin_id, created_at);
