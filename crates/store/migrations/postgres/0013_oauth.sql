-- OAuth 2.1 for the MCP server: clients that registered themselves (RFC 7591), authorization
-- codes an admin's consent produced (PKCE-bound, single use), and access and refresh tokens
-- scoped to one organization. Codes, secrets and tokens are stored as SHA-256 hashes only.
-- Platform tables: a token is looked up before its organization is known.
CREATE TABLE oauth_clients (
    id                          TEXT PRIMARY KEY,
    name                        TEXT NOT NULL,
    redirect_uris               TEXT NOT NULL,
    token_endpoint_auth_method  TEXT NOT NULL,
    secret_hash                 TEXT,
    created_at                  BIGINT NOT NULL
);

CREATE TABLE oauth_codes (
    code_hash       TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES oauth_clients(id) ON DELETE CASCADE,
    org_id          TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    code_challenge  TEXT NOT NULL,
    scope           TEXT NOT NULL,
    resource        TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);

-- `kind` is `access` or `refresh`; every token of one consent shares a `family_id`, so a
-- replayed refresh token revokes the whole family.
CREATE TABLE oauth_tokens (
    token_hash  TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    client_id   TEXT NOT NULL REFERENCES oauth_clients(id) ON DELETE CASCADE,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    family_id   TEXT NOT NULL,
    scope       TEXT NOT NULL,
    resource    TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX oauth_tokens_family ON oauth_tokens (family_id);
