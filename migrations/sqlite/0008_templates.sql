-- Stack templates: named per owner (a generator, or no one for an admin's shared templates),
-- with immutable numbered versions; deployment objects remember the template they came from.
-- Keep in step with ../postgres/0008_templates.sql.

CREATE TABLE templates (
    id             BLOB PRIMARY KEY,
    generator_id   BLOB REFERENCES generators (id),
    name           TEXT NOT NULL,
    description    TEXT,
    latest_version BIGINT NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    deleted_at     TEXT
);
CREATE UNIQUE INDEX templates_live_name
    ON templates (COALESCE(generator_id, X'00'), name) WHERE deleted_at IS NULL;

CREATE TABLE template_versions (
    template_id   BLOB NOT NULL REFERENCES templates (id),
    version       BIGINT NOT NULL,
    description   TEXT,
    template_yaml TEXT NOT NULL,
    schema_json   TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (template_id, version)
);

ALTER TABLE deployment_objects ADD COLUMN template_id BLOB;
ALTER TABLE deployment_objects ADD COLUMN template_version BIGINT;
ALTER TABLE deployment_objects ADD COLUMN template_parameters TEXT;
