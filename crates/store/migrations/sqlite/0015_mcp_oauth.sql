-- OAuth to external MCP servers (the MCP authorization flow, run from the dashboard).
-- `oauth_client` is what the flow settled on and later token requests reuse: the client
-- registration (id, and secret when the authorization server issued one), the authorization
-- server's metadata and the resource the tokens are for. `oauth_tokens` holds the access and
-- refresh tokens (secrets: never shown by any API or page). Changing a server's URL or
-- credentials clears both.
ALTER TABLE mcp_servers ADD COLUMN oauth_client TEXT;
ALTER TABLE mcp_servers ADD COLUMN oauth_tokens TEXT;
ALTER TABLE mcp_servers ADD COLUMN oauth_connected_at INTEGER;
ALTER TABLE mcp_servers ADD COLUMN oauth_expires_at INTEGER;

-- Authorization flows under way: one row per redirect to the authorization server, found by
-- the hash of its `state`, consumed by the callback, valid ten minutes. `data` holds the
-- PKCE verifier and the client configuration the flow started with.
CREATE TABLE mcp_oauth_flows (
    state_hash  TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    server_id   TEXT NOT NULL REFERENCES mcp_servers(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX mcp_oauth_flows_server ON mcp_oauth_flows (org_id, server_id);
