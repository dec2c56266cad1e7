-- The operator assistant: chat sessions of one person (a signed-in user or an API key) with
-- the organization's assistant, their messages as the chat model reads them, and the
-- actions it proposed. A change is only ever an action: previewed, then done once when the
-- same person confirms it before it expires, if what it changes has not changed since.
CREATE TABLE assistant_sessions (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    principal   TEXT NOT NULL,
    session_key TEXT NOT NULL,
    title       TEXT NOT NULL,
    turns       BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (org_id, principal, session_key)
);
CREATE INDEX assistant_sessions_recent ON assistant_sessions (org_id, principal, updated_at DESC);

CREATE TABLE assistant_messages (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    session_id  TEXT NOT NULL REFERENCES assistant_sessions(id) ON DELETE CASCADE,
    turn        BIGINT NOT NULL,
    message     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX assistant_messages_session ON assistant_messages (session_id, id);

CREATE TABLE assistant_actions (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    session_id  TEXT NOT NULL REFERENCES assistant_sessions(id) ON DELETE CASCADE,
    principal   TEXT NOT NULL,
    tool        TEXT NOT NULL,
    arguments   TEXT NOT NULL,
    summary     TEXT NOT NULL,
    preview     TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'canceled', 'stale')),
    turn        BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    decided_at  BIGINT,
    result      TEXT
);
CREATE INDEX assistant_actions_session ON assistant_actions (session_id, created_at);

ALTER TABLE assistant_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE assistant_sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON assistant_sessions
    USING (org_id = current_setting('switchboard.org_id', true))
    WITH CHECK (org_id = current_setting('switchboard.org_id', true));
ALTER TABLE assistant_messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE assistant_messages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON assistant_messages
    USING (org_id = current_setting('switchboard.org_id', true))
    WITH CHECK (org_id = current_setting('switchboard.org_id', true));
ALTER TABLE assistant_actions ENABLE ROW LEVEL SECURITY;
ALTER TABLE assistant_actions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON assistant_actions
    USING (org_id = current_setting('switchboard.org_id', true))
    WITH CHECK (org_id = current_setting('switchboard.org_id', true));
