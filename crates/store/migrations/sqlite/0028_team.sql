-- The team: invitations and password resets are single-use links that expire (only the
-- token's SHA-256 is stored), and every change to who can sign in, and how, is in the
-- organization's audit trail with who made it.
CREATE TABLE user_tokens (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('invite', 'reset')),
    email       TEXT NOT NULL,
    role        TEXT CHECK (role IN ('operator', 'admin', 'member')),
    user_id     TEXT REFERENCES users(id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX user_tokens_org ON user_tokens (org_id, kind, created_at DESC);

CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    detail      TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX audit_log_org ON audit_log (org_id, created_at DESC, id DESC);
