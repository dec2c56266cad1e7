-- SignalWire as a carrier: an organization's carrier account is Twilio's (account SID and
-- auth token) or a SignalWire project's (project id and API token in the same columns, the
-- space's host, and the signing key its webhooks are signed with, sealed).
ALTER TABLE twilio_credentials ADD COLUMN carrier TEXT NOT NULL DEFAULT 'twilio';
ALTER TABLE twilio_credentials ADD COLUMN space TEXT;
ALTER TABLE twilio_credentials ADD COLUMN signing_key TEXT;

DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'switchboard_lookup', 'MEMBER') THEN
        EXECUTE format('GRANT switchboard_lookup TO %I', current_user);
    END IF;
END $$;

GRANT SELECT (carrier, space, signing_key) ON twilio_credentials TO switchboard_lookup;

-- Routing plus the owner's carrier account (sealed secrets), for the signature check.
DROP FUNCTION sb_route_number_with_credentials(text, text);
CREATE FUNCTION sb_route_number_with_credentials(p_number TEXT, p_channel TEXT)
RETURNS TABLE (id TEXT, org_id TEXT, agent_id TEXT, active BIGINT, status TEXT,
    verification TEXT, account_sid TEXT, auth_token TEXT, carrier TEXT, space TEXT,
    signing_key TEXT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT p.id, p.org_id, p.agent_id, p.active, o.status, p.verification, c.account_sid,
        c.auth_token, c.carrier, c.space, c.signing_key
    FROM phone_numbers p JOIN organizations o ON o.id = p.org_id
    LEFT JOIN twilio_credentials c ON c.org_id = p.org_id
    WHERE p.number = p_number AND p.channel = p_channel
    ORDER BY p.verification = 'verified' DESC, p.created_at, p.id LIMIT 1
$f$;

DO $$
DECLARE f regprocedure := 'sb_route_number_with_credentials(text, text)'::regprocedure;
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
