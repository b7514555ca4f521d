-- Web console sessions: a PAK is exchanged once for a random session id kept in an HttpOnly
-- cookie; the broker stores only the id's SHA-256, so a copy of the database signs no one in.
-- Keep in step with ../sqlite/0015_ui_sessions.sql.

CREATE TABLE ui_sessions (
    id_hash        BYTEA PRIMARY KEY,
    principal_kind TEXT NOT NULL CHECK (principal_kind IN ('admin', 'generator')),
    principal_id   UUID,
    -- Shown in the page header: `admin` or the generator's name at sign-in.
    principal_name TEXT NOT NULL,
    -- Sent back with every form; a write without it is refused.
    csrf_token     TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    last_seen_at   TIMESTAMPTZ NOT NULL,
    -- The absolute end, whatever the activity.
    expires_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX ui_sessions_expiry ON ui_sessions (expires_at);
CREATE INDEX ui_sessions_principal ON ui_sessions (principal_kind, principal_id);
