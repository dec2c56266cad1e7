-- Where a tool execution came from: `call` or `text` (an agent in a conversation); later
-- sources (an MCP client, an external MCP server, a custom HTTP tool) add their own values.
-- The principal stays in `actor` (`agent:agt_...`, an API key, an OAuth client).
ALTER TABLE tool_invocations ADD COLUMN source TEXT NOT NULL DEFAULT 'text';
UPDATE tool_invocations SET source = 'call' WHERE call_id IS NOT NULL;
CREATE INDEX tool_invocations_listing ON tool_invocations (org_id, started_at DESC, id DESC);
