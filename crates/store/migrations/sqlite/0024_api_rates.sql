-- Request rates per API key (a token bucket). On SQLite (one instance) the buckets live in
-- memory; the table exists so both engines have the same schema.
CREATE TABLE api_rate_buckets (
    key_id      TEXT PRIMARY KEY REFERENCES api_keys(id) ON DELETE CASCADE,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    tokens      DOUBLE PRECISION NOT NULL,
    updated_at  INTEGER NOT NULL
);
