-- Numbers must be proven: each claim records whether Twilio confirmed that the number belongs
-- to the organization's account. Several organizations may claim a number while it is
-- unverified (so a first claimer who does not own it cannot block the real owner); at most one
-- claim per number and channel is verified. Routing prefers the verified claim. Existing rows
-- get their reason from column defaults (an UPDATE would be filtered by row-level security).

ALTER TABLE phone_numbers DROP CONSTRAINT phone_numbers_number_channel_key;
ALTER TABLE phone_numbers
    ADD COLUMN verification TEXT NOT NULL DEFAULT 'pending_verification'
        CHECK (verification IN ('verified', 'pending_verification')),
    ADD COLUMN verification_reason TEXT DEFAULT 'not_checked',
    ADD COLUMN verification_message TEXT
        DEFAULT 'registered before numbers were verified; not checked with Twilio yet',
    ADD COLUMN verification_checked_at BIGINT;
ALTER TABLE phone_numbers ALTER COLUMN verification_reason DROP DEFAULT,
    ALTER COLUMN verification_message DROP DEFAULT;
ALTER TABLE phone_numbers ADD CONSTRAINT phone_numbers_org_number_channel_key
    UNIQUE (org_id, number, channel);
CREATE INDEX phone_numbers_route ON phone_numbers (number, channel);
CREATE UNIQUE INDEX phone_numbers_verified ON phone_numbers (number, channel)
    WHERE verification = 'verified';

DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'switchboard_lookup', 'MEMBER') THEN
        EXECUTE format('GRANT switchboard_lookup TO %I', current_user);
    END IF;
END $$;

GRANT SELECT (verification, created_at) ON phone_numbers TO switchboard_lookup;

DROP FUNCTION sb_route_number(text, text);
DROP FUNCTION sb_route_number_with_credentials(text, text);

-- Inbound routing: the claim that takes the number's traffic (the verified one, else the
-- oldest), its owner, agent, whether it may take traffic and whether it is verified.
CREATE FUNCTION sb_route_number(p_number TEXT, p_channel TEXT)
RETURNS TABLE (id TEXT, org_id TEXT, agent_id TEXT, active BIGINT, status TEXT,
    verification TEXT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT p.id, p.org_id, p.agent_id, p.active, o.status, p.verification FROM phone_numbers p
    JOIN organizations o ON o.id = p.org_id
    WHERE p.number = p_number AND p.channel = p_channel
    ORDER BY p.verification = 'verified' DESC, p.created_at, p.id LIMIT 1
$f$;

-- Routing plus the owner's Twilio credentials (sealed), for the signature check.
CREATE FUNCTION sb_route_number_with_credentials(p_number TEXT, p_channel TEXT)
RETURNS TABLE (id TEXT, org_id TEXT, agent_id TEXT, active BIGINT, status TEXT,
    verification TEXT, account_sid TEXT, auth_token TEXT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT p.id, p.org_id, p.agent_id, p.active, o.status, p.verification, c.account_sid,
        c.auth_token
    FROM phone_numbers p JOIN organizations o ON o.id = p.org_id
    LEFT JOIN twilio_credentials c ON c.org_id = p.org_id
    WHERE p.number = p_number AND p.channel = p_channel
    ORDER BY p.verification = 'verified' DESC, p.created_at, p.id LIMIT 1
$f$;

-- Whether an organization other than p_org holds the verified claim on a number (yes or no
-- only: who it is stays hidden).
CREATE FUNCTION sb_number_verified_elsewhere(p_number TEXT, p_channel TEXT, p_org TEXT)
RETURNS BIGINT
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT COUNT(*) FROM phone_numbers p WHERE p.number = p_number
    AND p.channel = p_channel AND p.verification = 'verified' AND p.org_id <> p_org
$f$;

DO $$
DECLARE f regprocedure;
BEGIN
    FOREACH f IN ARRAY ARRAY['sb_route_number(text, text)'::regprocedure,
        'sb_route_number_with_credentials(text, text)'::regprocedure,
        'sb_number_verified_elsewhere(text, text, text)'::regprocedure]
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
