-- Pre-tenant look-ups and the delivery worker through SECURITY DEFINER functions.
--
-- Until now the look-ups that run before the organization is known (API key and session
-- authentication, login by e-mail, routing by number, call by CallSid or id, and the
-- platform sweeps) read whole tables of every tenant through `platform_lookup` policies
-- enabled by a transaction setting, and the worker setting opened every organization's
-- deliveries to every statement. Now each of them is a function that returns exactly the
-- columns it needs for exactly the key it is given. The functions belong to the role
-- `switchboard_lookup` (NOLOGIN), which alone has policies and column grants on what they
-- read; the application only has EXECUTE on them. The broad policies are dropped.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'switchboard_lookup') THEN
        BEGIN
            CREATE ROLE switchboard_lookup NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'the role switchboard_lookup does not exist and this login cannot create it: as a superuser run CREATE ROLE switchboard_lookup NOLOGIN; GRANT switchboard_lookup TO %', current_user;
        END;
    END IF;
    -- Needed to hand the functions over; taken back at the end of this migration.
    IF NOT pg_has_role(current_user, 'switchboard_lookup', 'MEMBER') THEN
        EXECUTE format('GRANT switchboard_lookup TO %I', current_user);
    END IF;
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO switchboard_lookup', current_schema());
END $$;

DROP POLICY platform_lookup ON api_keys;
DROP POLICY platform_lookup ON phone_numbers;
DROP POLICY platform_lookup ON users;
DROP POLICY platform_lookup ON calls;
DROP POLICY platform_lookup ON twilio_credentials;
DROP POLICY platform_lookup ON org_settings;
DROP POLICY platform_lookup ON campaigns;
DROP POLICY platform_worker ON webhook_deliveries;
DROP POLICY platform_worker ON call_actions;

-- What the functions may read (and, for the worker's claim, change): these columns only.
GRANT SELECT (id, name, status) ON organizations TO switchboard_lookup;
GRANT SELECT (id, org_id, key_hash, last_used_at, revoked_at) ON api_keys TO switchboard_lookup;
GRANT SELECT (id, org_id, email, role, created_at, password_hash) ON users TO switchboard_lookup;
GRANT SELECT (token_hash, user_id, org_id, csrf_token, expires_at) ON dashboard_sessions
    TO switchboard_lookup;
GRANT SELECT (id, org_id, agent_id, active, number, channel) ON phone_numbers TO switchboard_lookup;
GRANT SELECT (org_id, account_sid, auth_token) ON twilio_credentials TO switchboard_lookup;
GRANT SELECT (org_id, recording_retention_days) ON org_settings TO switchboard_lookup;
GRANT SELECT (id, org_id, call_sid, direction, instance_id, started_at, ended_at, terminal_at,
    dial_started_at, recording_sid, recording_deleted_at) ON calls TO switchboard_lookup;
GRANT SELECT (id, org_id, status, start_at, created_at) ON campaigns TO switchboard_lookup;
GRANT SELECT (id, stopped_at, heartbeat_at) ON instances TO switchboard_lookup;
GRANT SELECT (id, org_id, call_id, instance_id, delivered_at, created_at) ON call_actions
    TO switchboard_lookup;
GRANT SELECT (id, org_id, endpoint_id, order_key, org_seq, status, next_attempt_at, lease_owner)
    ON webhook_deliveries TO switchboard_lookup;
GRANT UPDATE (status, lease_owner, next_attempt_at, updated_at) ON webhook_deliveries
    TO switchboard_lookup;

CREATE POLICY definer_lookup ON api_keys FOR SELECT TO switchboard_lookup USING (true);
CREATE POLICY definer_lookup ON users FOR SELECT TO switchboard_lookup USING (true);
CREATE POLICY definer_lookup ON phone_numbers FOR SELECT TO switchboard_lookup USING (true);
CREATE POLICY definer_lookup ON twilio_credentials FOR SELECT TO switchboard_lookup USING (true);
CREATE POLICY definer_lookup ON org_settings FOR SELECT TO switchboard_lookup USING (true);
CREATE POLICY definer_lookup ON calls FOR SELECT TO switchboard_lookup USING (true);
CREATE POLICY definer_lookup ON campaigns FOR SELECT TO switchboard_lookup USING (true);
CREATE POLICY definer_lookup ON call_actions FOR SELECT TO switchboard_lookup USING (true);
CREATE POLICY definer_lookup ON webhook_deliveries FOR SELECT TO switchboard_lookup USING (true);
CREATE POLICY definer_claim ON webhook_deliveries FOR UPDATE TO switchboard_lookup
    USING (true) WITH CHECK (true);

-- An organization API key by its hash (not revoked), with its organization's status.
CREATE FUNCTION sb_authenticate_api_key(p_hash TEXT)
RETURNS TABLE (id TEXT, org_id TEXT, last_used_at BIGINT, status TEXT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT k.id, k.org_id, k.last_used_at, o.status FROM api_keys k
    JOIN organizations o ON o.id = k.org_id
    WHERE k.key_hash = p_hash AND k.revoked_at IS NULL
$f$;

-- A login by its (lower-cased) e-mail, with its password hash.
CREATE FUNCTION sb_find_login(p_email TEXT)
RETURNS TABLE (id TEXT, org_id TEXT, email TEXT, role TEXT, created_at BIGINT,
    password_hash TEXT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT u.id, u.org_id, u.email, u.role, u.created_at, u.password_hash FROM users u
    WHERE u.email = p_email
$f$;

-- The unexpired dashboard session with this token hash, its user and acting organization.
CREATE FUNCTION sb_dashboard_session(p_token_hash TEXT, p_now BIGINT)
RETURNS TABLE (id TEXT, org_id TEXT, email TEXT, role TEXT, created_at BIGINT,
    acting_org TEXT, org_name TEXT, org_status TEXT, csrf_token TEXT, expires_at BIGINT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT u.id, u.org_id, u.email, u.role, u.created_at, s.org_id, o.name, o.status,
        s.csrf_token, s.expires_at
    FROM dashboard_sessions s JOIN users u ON u.id = s.user_id
    JOIN organizations o ON o.id = s.org_id
    WHERE s.token_hash = p_token_hash AND s.expires_at > p_now
$f$;

-- The organization and call a CallSid belongs to.
CREATE FUNCTION sb_find_call_by_sid(p_sid TEXT)
RETURNS TABLE (org_id TEXT, id TEXT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT c.org_id, c.id FROM calls c WHERE c.call_sid = p_sid
$f$;

-- The organization a call id belongs to.
CREATE FUNCTION sb_find_call_org(p_call TEXT)
RETURNS TABLE (org_id TEXT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT c.org_id FROM calls c WHERE c.id = p_call
$f$;

-- Inbound routing: the number's owner, agent and whether it may take traffic.
CREATE FUNCTION sb_route_number(p_number TEXT, p_channel TEXT)
RETURNS TABLE (id TEXT, org_id TEXT, agent_id TEXT, active BIGINT, status TEXT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT p.id, p.org_id, p.agent_id, p.active, o.status FROM phone_numbers p
    JOIN organizations o ON o.id = p.org_id
    WHERE p.number = p_number AND p.channel = p_channel
$f$;

-- Routing plus the owner's Twilio credentials (sealed), for the signature check.
CREATE FUNCTION sb_route_number_with_credentials(p_number TEXT, p_channel TEXT)
RETURNS TABLE (id TEXT, org_id TEXT, agent_id TEXT, active BIGINT, status TEXT,
    account_sid TEXT, auth_token TEXT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT p.id, p.org_id, p.agent_id, p.active, o.status, c.account_sid, c.auth_token
    FROM phone_numbers p JOIN organizations o ON o.id = p.org_id
    LEFT JOIN twilio_credentials c ON c.org_id = p.org_id
    WHERE p.number = p_number AND p.channel = p_channel
$f$;

-- Sweeps: ids only; each is then handled in its own organization's scope.

-- Running campaigns whose start time has come.
CREATE FUNCTION sb_running_campaigns(p_now BIGINT)
RETURNS TABLE (org_id TEXT, id TEXT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT c.org_id, c.id FROM campaigns c WHERE c.status = 'running'
    AND (c.start_at IS NULL OR c.start_at <= p_now) ORDER BY c.created_at LIMIT 1000
$f$;

-- Open calls whose instance is gone, or that Twilio reported over long ago.
CREATE FUNCTION sb_stranded_calls(p_alive_since BIGINT, p_terminal_before BIGINT)
RETURNS TABLE (org_id TEXT, id TEXT, lost BIGINT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT c.org_id, c.id, CASE WHEN c.instance_id IS NULL OR c.instance_id IN (SELECT i.id
        FROM instances i WHERE i.stopped_at IS NULL AND i.heartbeat_at >= p_alive_since)
        THEN 0 ELSE 1 END
    FROM calls c WHERE c.ended_at IS NULL
    AND (c.terminal_at < p_terminal_before OR (c.instance_id IS NOT NULL AND c.instance_id
        NOT IN (SELECT i.id FROM instances i WHERE i.stopped_at IS NULL
        AND i.heartbeat_at >= p_alive_since)))
    LIMIT 500
$f$;

-- Outbound calls dialled before the given time that no call task ever claimed.
CREATE FUNCTION sb_unsettled_outbound_calls(p_before BIGINT, p_limit BIGINT)
RETURNS TABLE (org_id TEXT, id TEXT, call_sid TEXT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT c.org_id, c.id, c.call_sid FROM calls c WHERE c.direction = 'outbound'
    AND c.ended_at IS NULL AND c.instance_id IS NULL AND c.call_sid NOT LIKE 'pending:%'
    AND c.dial_started_at < p_before ORDER BY c.dial_started_at LIMIT p_limit
$f$;

-- Recordings past their organization's retention.
CREATE FUNCTION sb_expired_recordings(p_now BIGINT, p_limit BIGINT)
RETURNS TABLE (org_id TEXT, id TEXT, recording_sid TEXT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT c.org_id, c.id, c.recording_sid FROM calls c
    JOIN org_settings s ON s.org_id = c.org_id
    WHERE c.recording_sid IS NOT NULL AND c.recording_deleted_at IS NULL
    AND s.recording_retention_days IS NOT NULL
    AND c.started_at < p_now - s.recording_retention_days * 86400000
    ORDER BY c.started_at LIMIT p_limit
$f$;

-- Staff actions addressed to an instance and not delivered yet.
CREATE FUNCTION sb_undelivered_call_actions(p_instance TEXT)
RETURNS TABLE (org_id TEXT, id TEXT, call_id TEXT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT a.org_id, a.id, a.call_id FROM call_actions a
    WHERE a.instance_id = p_instance AND a.delivered_at IS NULL
    ORDER BY a.created_at, a.id LIMIT 200
$f$;

-- The delivery worker: claims due deliveries (the first of each endpoint and order key) for
-- `p_owner` until `p_lease_until`; the rest of each attempt runs in the delivery's
-- organization.
CREATE FUNCTION sb_claim_webhook_deliveries(p_owner TEXT, p_lease_until BIGINT, p_now BIGINT,
    p_limit BIGINT)
RETURNS TABLE (id TEXT, org_id TEXT)
LANGUAGE sql VOLATILE SECURITY DEFINER AS $f$
    UPDATE webhook_deliveries w SET status = 'delivering', lease_owner = p_owner,
        next_attempt_at = p_lease_until, updated_at = p_now
    WHERE w.id IN (
        SELECT d.id FROM webhook_deliveries d
        WHERE d.status IN ('pending', 'delivering') AND d.next_attempt_at <= p_now
        AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
            WHERE p.endpoint_id = d.endpoint_id AND p.order_key = d.order_key
            AND p.org_seq < d.org_seq AND p.status IN ('pending', 'delivering'))
        ORDER BY d.next_attempt_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
    RETURNING w.id, w.org_id
$f$;

-- Hands an owner's claimed deliveries back (shutdown); answers how many.
CREATE FUNCTION sb_release_webhook_deliveries(p_owner TEXT, p_now BIGINT)
RETURNS BIGINT
LANGUAGE sql VOLATILE SECURITY DEFINER AS $f$
    WITH released AS (
        UPDATE webhook_deliveries w SET status = 'pending', lease_owner = NULL,
            next_attempt_at = p_now
        WHERE w.status = 'delivering' AND w.lease_owner = p_owner
        RETURNING 1)
    SELECT COUNT(*) FROM released
$f$;

-- Every function: owned by switchboard_lookup, a fixed search path (a definer function must
-- not resolve names through a schema its caller controls), executable only by this login and
-- the application role (granted after migrations).
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = current_schema() AND p.proname LIKE 'sb\_%'
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO switchboard_lookup', f);
        EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', f, current_schema());
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, current_user);
    END LOOP;
    -- The login that runs the application must not be able to become the functions' owner.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        BEGIN
            EXECUTE format('REVOKE switchboard_lookup FROM %I', current_user);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'could not revoke switchboard_lookup from %: revoke it as a superuser', current_user;
        END;
    END IF;
END $$;
