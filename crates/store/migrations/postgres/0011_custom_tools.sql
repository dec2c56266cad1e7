-- Custom HTTP tools: functions an organization hosts itself, offered to its agents by name
-- (an agent's `tools` lists built-in and custom names alike). Header values and the signing
-- secrets are secrets: the API never shows them.
CREATE TABLE custom_tools (
    id                   TEXT PRIMARY KEY,
    org_id               TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    description          TEXT NOT NULL,
    -- JSON Schema of the arguments.
    parameters           TEXT NOT NULL,
    url                  TEXT NOT NULL,
    method               TEXT NOT NULL,
    -- JSON array of [name, value] pairs.
    headers              TEXT NOT NULL,
    timeout_ms           BIGINT NOT NULL,
    speak_while_waiting  INTEGER NOT NULL,
    waiting_message      TEXT,
    -- Standard Webhooks secrets: the current one, and the previous one until it expires.
    signing_secret       TEXT NOT NULL,
    previous_secret      TEXT,
    previous_secret_expires_at BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    UNIQUE (org_id, name)
);

ALTER TABLE custom_tools ENABLE ROW LEVEL SECURITY;
ALTER TABLE custom_tools FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON custom_tools
    USING (org_id = current_setting('switchboard.org_id', true))
    WITH CHECK (org_id = current_setting('switchboard.org_id', true));
