-- The team: invitations and password resets are single-use links that expire (only the
-- token's SHA-256 is stored), and every change to who can sign in, and how, is in the
-- organization's audit trail with who made it. A link is opened before any organization is
-- known: `sb_user_token` returns exactly the one token its hash names.
CREATE TABLE user_tokens (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('invite', 'reset')),
    email       TEXT NOT NULL,
    role        TEXT CHECK (role IN ('operator', 'admin', 'member')),
    user_id     TEXT REFERENCES users(id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX user_tokens_org ON user_tokens (org_id, kind, created_at DESC);

CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    detail      TEXT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX audit_log_org ON audit_log (org_id, created_at DESC, id DESC);

ALTER TABLE user_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON user_tokens
    USING (org_id = current_setting('switchboard.org_id', true))
    WITH CHECK (org_id = current_setting('switchboard.org_id', true));
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_log
    USING (org_id = current_setting('switchboard.org_id', true))
    WITH CHECK (org_id = current_setting('switchboard.org_id', true));

DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'switchboard_lookup', 'MEMBER') THEN
        EXECUTE format('GRANT switchboard_lookup TO %I', current_user);
    END IF;
END $$;

GRANT SELECT (id, org_id, kind, email, role, user_id, token_hash, created_at, expires_at,
    used_at, revoked_at) ON user_tokens TO switchboard_lookup;
CREATE POLICY definer_lookup ON user_tokens FOR SELECT TO switchboard_lookup USING (true);

-- The invitation or password reset a link's token (its hash) opens, with its organization's
-- status.
CREATE FUNCTION sb_user_token(p_hash TEXT)
RETURNS TABLE (id TEXT, org_id TEXT, kind TEXT, email TEXT, role TEXT, user_id TEXT,
    created_at BIGINT, expires_at BIGINT, used_at BIGINT, revoked_at BIGINT, org_status TEXT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT t.id, t.org_id, t.kind, t.email, t.role, t.user_id, t.created_at, t.expires_at,
        t.used_at, t.revoked_at, o.status
    FROM user_tokens t JOIN organizations o ON o.id = t.org_id
    WHERE t.token_hash = p_hash
$f$;

DO $$
DECLARE f regprocedure := 'sb_user_token(text)'::regprocedure;
BEGIN
    EXECUTE format('ALTER FUNCTION %s OWNER TO switchboard_lookup', f);
    EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', f, current_schema());
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, current_user);
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        BEGIN
            EXECUTE format('REVOKE switchboard_lookup FROM %I', current_user);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'could not revoke switchboard_lookup from %: revoke it as a superuser', current_user;
        END;
    END IF;
END $$;
