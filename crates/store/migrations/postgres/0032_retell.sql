-- Retell as a front end: an organization's Retell API key (sealed, it verifies Retell's
-- webhooks and looks calls up), the Retell agent each agent answers for (unique across
-- organizations, as Retell's ids are: a call is routed by it), and Retell's own analysis
-- of a call beside ours.
CREATE TABLE retell_credentials (
    org_id      TEXT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    api_key     TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
ALTER TABLE retell_credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE retell_credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON retell_credentials
    USING (org_id = current_setting('switchboard.org_id', true))
    WITH CHECK (org_id = current_setting('switchboard.org_id', true));
ALTER TABLE agents ADD COLUMN retell_agent_id TEXT;
CREATE UNIQUE INDEX agents_retell_agent ON agents (retell_agent_id)
    WHERE retell_agent_id IS NOT NULL;
ALTER TABLE calls ADD COLUMN provider_analysis TEXT;

DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'switchboard_lookup', 'MEMBER') THEN
        EXECUTE format('GRANT switchboard_lookup TO %I', current_user);
    END IF;
END $$;

GRANT SELECT (id, org_id, retell_agent_id) ON agents TO switchboard_lookup;
GRANT SELECT (org_id, api_key) ON retell_credentials TO switchboard_lookup;
CREATE POLICY definer_lookup ON agents FOR SELECT TO switchboard_lookup USING (true);
CREATE POLICY definer_lookup ON retell_credentials FOR SELECT TO switchboard_lookup USING (true);

-- Before the organization is known: the agent answering for a Retell agent id, its
-- organization's status and Retell key (sealed), for the webhook's signature check.
CREATE FUNCTION sb_route_retell_agent(p_retell_agent TEXT)
RETURNS TABLE (org_id TEXT, agent_id TEXT, status TEXT, api_key TEXT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT a.org_id, a.id, o.status, c.api_key FROM agents a
    JOIN organizations o ON o.id = a.org_id
    LEFT JOIN retell_credentials c ON c.org_id = a.org_id
    WHERE a.retell_agent_id = p_retell_agent
$f$;

DO $$
DECLARE f regprocedure;
BEGIN
    FOREACH f IN ARRAY ARRAY['sb_route_retell_agent(text)'::regprocedure]
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO switchboard_lookup', f);
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', f, current_schema());
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, current_user);
    END LOOP;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        BEGIN
            EXECUTE format('REVOKE switchboard_lookup FROM %I', current_user);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'could not revoke switchboard_lookup from %: revoke it as a superuser', current_user;
        END;
    END IF;
END $$;
