-- Sessions of clients connected to the MCP server at `/mcp` (Streamable HTTP). The SDK keeps
-- a live session in the memory of the instance that opened it; this table lets any instance
-- restore it (the client's `initialize` parameters in `state`), and binds the session to the
-- organization and principal that opened it, so a session id presented with another
-- organization's credentials is unknown. A platform table: it is read before the request's
-- organization is trusted with the session.
CREATE TABLE mcp_sessions (
    id          TEXT PRIMARY KEY,
    org_id      TEXT REFERENCES organizations(id) ON DELETE CASCADE,
    actor       TEXT,
    state       TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX mcp_sessions_updated ON mcp_sessions (updated_at);
