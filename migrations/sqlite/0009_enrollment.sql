-- Agent enrollment tokens: an admin makes one (shown once); an agent presents it to register
-- itself and receive its PAK. Only SHA-256 of the token's secret part is stored.
-- Keep in step with ../postgres/0009_enrollment.sql.

CREATE TABLE enrollment_tokens (
    id          BLOB PRIMARY KEY,
    short_token TEXT NOT NULL UNIQUE,
    token_hash  BLOB NOT NULL,
    name_prefix TEXT NOT NULL,
    labels      TEXT NOT NULL,
    annotations TEXT NOT NULL,
    uses_left   BIGINT NOT NULL,
    expires_at  TEXT NOT NULL,
    revoked_at  TEXT,
    created_at  TEXT NOT NULL
);
