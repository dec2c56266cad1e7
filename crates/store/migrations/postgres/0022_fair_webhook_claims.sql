-- Fair webhook claims: an endpoint never has more than `p_per_endpoint` deliveries in flight
-- across every instance (leased ones count), so one tenant's slow receiver cannot take every
-- worker slot and delay everybody else's deliveries. Replaces the claim function of 0021 with
-- the same owner, search path and grants.

DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'switchboard_lookup', 'MEMBER') THEN
        EXECUTE format('GRANT switchboard_lookup TO %I', current_user);
    END IF;
END $$;

DROP FUNCTION sb_claim_webhook_deliveries(TEXT, BIGINT, BIGINT, BIGINT);

CREATE FUNCTION sb_claim_webhook_deliveries(p_owner TEXT, p_lease_until BIGINT, p_now BIGINT,
    p_limit BIGINT, p_per_endpoint BIGINT)
RETURNS TABLE (id TEXT, org_id TEXT)
LANGUAGE sql VOLATILE SECURITY DEFINER AS $f$
    UPDATE webhook_deliveries u SET status = 'delivering', lease_owner = p_owner,
        next_attempt_at = p_lease_until, updated_at = p_now
    WHERE u.id IN (
        SELECT w.id FROM webhook_deliveries w WHERE w.id IN (
            SELECT c.id FROM (
                SELECT d.id, ROW_NUMBER() OVER (PARTITION BY d.endpoint_id
                    ORDER BY d.next_attempt_at, d.id) AS pos,
                    (SELECT COUNT(*) FROM webhook_deliveries f WHERE f.endpoint_id = d.endpoint_id
                        AND f.status = 'delivering' AND f.next_attempt_at > p_now) AS busy
                FROM webhook_deliveries d
                WHERE d.status IN ('pending', 'delivering') AND d.next_attempt_at <= p_now
                AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p
                    WHERE p.endpoint_id = d.endpoint_id AND p.order_key = d.order_key
                    AND p.org_seq < d.org_seq AND p.status IN ('pending', 'delivering'))) c
            WHERE c.pos + c.busy <= p_per_endpoint)
        ORDER BY w.next_attempt_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
    RETURNING u.id, u.org_id
$f$;

DO $$
DECLARE f regprocedure := 'sb_claim_webhook_deliveries(text, bigint, bigint, bigint, bigint)'::regprocedure;
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
