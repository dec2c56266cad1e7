-- Inbound calls answered with a media stream that never connected, with no status from
-- Twilio, are closed by the recovery sweep: a platform look-up like the stranded calls'.

DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'switchboard_lookup', 'MEMBER') THEN
        EXECUTE format('GRANT switchboard_lookup TO %I', current_user);
    END IF;
END $$;

GRANT SELECT (stream_sid) ON calls TO switchboard_lookup;

-- Inbound calls started before p_started_before that are not over, were never claimed by a
-- call task (no instance), never started a media stream and have no terminal status.
CREATE FUNCTION sb_unconnected_calls(p_started_before BIGINT)
RETURNS TABLE (org_id TEXT, id TEXT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT c.org_id, c.id FROM calls c
    WHERE c.ended_at IS NULL AND c.instance_id IS NULL AND c.stream_sid IS NULL
    AND c.terminal_at IS NULL AND c.direction = 'inbound' AND c.started_at < p_started_before
    ORDER BY c.started_at LIMIT 500
$f$;

DO $$
DECLARE f regprocedure := 'sb_unconnected_calls(bigint)'::regprocedure;
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
