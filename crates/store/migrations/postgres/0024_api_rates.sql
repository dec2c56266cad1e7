-- Request rates per API key: a token bucket every instance shares, so a key's rate holds
-- whichever instance its requests reach.
CREATE TABLE api_rate_buckets (
    key_id      TEXT PRIMARY KEY REFERENCES api_keys(id) ON DELETE CASCADE,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    tokens      DOUBLE PRECISION NOT NULL,
    updated_at  BIGINT NOT NULL
);
ALTER TABLE api_rate_buckets ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_rate_buckets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_rate_buckets
    USING (org_id = current_setting('switchboard.org_id', true))
    WITH CHECK (org_id = current_setting('switchboard.org_id', true));
