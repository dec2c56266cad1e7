-- External MCP servers an organization registers for its agents (an agent lists one in its
-- `tools` as `mcp:<name>`). `auth` is JSON; a header value in it is a secret the API never
-- shows.
CREATE TABLE mcp_servers (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    url            TEXT NOT NULL,
    transport      TEXT NOT NULL,
    auth           TEXT NOT NULL,
    allowed_tools  TEXT NOT NULL,
    -- The last time a conversation could not reach it, and why (shown in the dashboard and
    -- the API until a later attempt succeeds).
    last_error     TEXT,
    last_error_at  BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

ALTER TABLE mcp_servers ENABLE ROW LEVEL SECURITY;
ALTER TABLE mcp_servers FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON mcp_servers
    USING (org_id = current_setting('switchboard.org_id', true))
    WITH CHECK (org_id = current_setting('switchboard.org_id', true));
