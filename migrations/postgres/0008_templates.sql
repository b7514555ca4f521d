-- Stack templates: named per owner (a generator, or no one for an admin's shared templates),
-- with immutable numbered versions; deployment objects remember the template they came from.
-- Keep in step with ../sqlite/0008_templates.sql.

CREATE TABLE templates (
    id             UUID PRIMARY KEY,
    generator_id   UUID REFERENCES generators (id),
    name           TEXT NOT NULL,
    description    TEXT,
    latest_version BIGINT NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    deleted_at     TIMESTAMPTZ
);
CREATE UNIQUE INDEX templates_live_name
    ON templates (COALESCE(generator_id, '00000000-0000-0000-0000-000000000000'::uuid), name) WHERE deleted_at IS NULL;

CREATE TABLE template_versions (
    template_id   UUID NOT NULL REFERENCES templates (id),
    version       BIGINT NOT NULL,
    description   TEXT,
    template_yaml TEXT NOT NULL,
    schema_json   TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (template_id, version)
);

ALTER TABLE deployment_objects ADD COLUMN template_id UUID;
ALTER TABLE deployment_objects ADD COLUMN template_version BIGINT;
ALTER TABLE deployment_objects ADD COLUMN template_parameters TEXT;
