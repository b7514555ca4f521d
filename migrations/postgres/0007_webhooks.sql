-- Domain events and webhooks: the transactional outbox, subscriptions with encrypted secrets,
-- and deliveries. Keep in step with ../sqlite/0007_webhooks.sql.

-- What a plugin is: a validator (judges deployment objects) or a notifier (shapes webhooks).
ALTER TABLE plugins ADD COLUMN kind TEXT NOT NULL DEFAULT 'validator'
    CHECK (kind IN ('validator', 'notifier'));

-- Written in the transaction of the change it reports; fanned out to deliveries once
-- (dispatched_at), then kept for webhooks.retention_days.
CREATE TABLE outbox_events (
    seq           BIGSERIAL PRIMARY KEY,
    id            UUID NOT NULL UNIQUE,
    event_type    TEXT NOT NULL,
    occurred_at   TIMESTAMPTZ NOT NULL,
    data          TEXT NOT NULL,
    -- Who may hear of it: the generator whose stack (or PAK, or subscription) it is about, the
    -- agent it is about, and for webhook.test the one subscription it is for.
    generator_id  UUID,
    agent_id      UUID,
    webhook_id    UUID,
    dispatched_at TIMESTAMPTZ
);
CREATE INDEX outbox_events_pending ON outbox_events (seq) WHERE dispatched_at IS NULL;
CREATE INDEX outbox_events_dispatched ON outbox_events (dispatched_at);

-- url holds the URL without its query string; url_query and headers are sealed with the key
-- named by key_id (webhooks.encryption_keys).
CREATE TABLE webhooks (
    id                 UUID PRIMARY KEY,
    generator_id       UUID REFERENCES generators (id),
    name               TEXT NOT NULL,
    url                TEXT NOT NULL,
    url_query          TEXT,
    event_types        TEXT NOT NULL,
    filter             TEXT,
    header_names       TEXT NOT NULL,
    headers            TEXT,
    key_id             TEXT,
    notifier_plugin_id UUID REFERENCES plugins (id),
    max_attempts       BIGINT NOT NULL,
    timeout_seconds    BIGINT NOT NULL,
    enabled            BOOLEAN NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    deleted_at         TIMESTAMPTZ
);
CREATE UNIQUE INDEX webhooks_live_name
    ON webhooks (COALESCE(generator_id, '00000000-0000-0000-0000-000000000000'::uuid), name) WHERE deleted_at IS NULL;

-- Signing secrets, sealed. A rotated-out secret keeps signing until expires_at.
CREATE TABLE webhook_secrets (
    id         UUID PRIMARY KEY,
    webhook_id UUID NOT NULL REFERENCES webhooks (id),
    secret     TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ
);
CREATE INDEX webhook_secrets_webhook ON webhook_secrets (webhook_id);

-- One event for one subscription. Claimable while status is pending, retrying or delivering
-- and next_attempt_at has passed (a claim moves next_attempt_at to the end of its lease).
CREATE TABLE webhook_deliveries (
    id               UUID PRIMARY KEY,
    webhook_id       UUID NOT NULL REFERENCES webhooks (id),
    event_id         UUID NOT NULL REFERENCES outbox_events (id),
    event_type       TEXT NOT NULL,
    status           TEXT NOT NULL
        CHECK (status IN ('pending', 'delivering', 'retrying', 'delivered', 'dropped', 'dead')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    last_status_code BIGINT,
    last_error       TEXT,
    last_latency_ms  BIGINT,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status IN ('pending', 'retrying', 'delivering');
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (updated_at)
    WHERE status IN ('delivered', 'dropped', 'dead');
