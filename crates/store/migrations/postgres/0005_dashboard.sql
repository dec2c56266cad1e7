-- The dashboard: sign-in sessions, and the indexes its list filters and overview need.

-- A signed-in browser. The cookie carries a random token; only its SHA-256 is stored, so a
-- database dump cannot be replayed as a session. `org_id` is the organization the session
-- acts in: the user's own, or for an operator the one chosen in the switcher.
CREATE TABLE dashboard_sessions (
    token_hash    TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    org_id        TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    csrf_token    TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX dashboard_sessions_user ON dashboard_sessions (user_id);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);

-- The conversations list filters by channel and status, newest first.
CREATE INDEX conversations_org_channel ON conversations (org_id, channel, started_at DESC, id DESC);
CREATE INDEX conversations_org_status ON conversations (org_id, status, started_at DESC, id DESC);
-- The calls list filters by status (live calls) and by either number.
CREATE INDEX calls_org_status ON calls (org_id, status, started_at DESC);
CREATE INDEX calls_org_from ON calls (org_id, from_number, started_at DESC);
CREATE INDEX calls_org_to ON calls (org_id, to_number, started_at DESC);
-- "Messages today" on the overview.
CREATE INDEX messages_org_created ON messages (org_id, created_at);
