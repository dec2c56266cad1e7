-- Appointments become a calendar staff manage: a revision counter (the iCalendar SEQUENCE,
-- so subscribed calendars take a move), the spelling `canceled` used by every other status
-- and event, an index for one agent's calendar, the organization's time zone, and one secret
-- calendar-feed token per organization (stored as its hash).
ALTER TABLE appointments ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
-- Row-level security would hide every row from this UPDATE; the owner lifts FORCE for the
-- length of the statement (inside the migration's transaction) and restores it.
ALTER TABLE appointments NO FORCE ROW LEVEL SECURITY;
UPDATE appointments SET status = 'canceled' WHERE status = 'cancelled';
ALTER TABLE appointments FORCE ROW LEVEL SECURITY;
CREATE INDEX appointments_agent ON appointments (org_id, agent_id, starts_at);
ALTER TABLE org_settings ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';

CREATE TABLE calendar_feeds (
    org_id      TEXT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);
ALTER TABLE calendar_feeds ENABLE ROW LEVEL SECURITY;
ALTER TABLE calendar_feeds FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON calendar_feeds
    USING (org_id = current_setting('switchboard.org_id', true))
    WITH CHECK (org_id = current_setting('switchboard.org_id', true));

DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'switchboard_lookup', 'MEMBER') THEN
        EXECUTE format('GRANT switchboard_lookup TO %I', current_user);
    END IF;
END $$;

GRANT SELECT (org_id, token_hash) ON calendar_feeds TO switchboard_lookup;
CREATE POLICY definer_lookup ON calendar_feeds FOR SELECT TO switchboard_lookup USING (true);

-- The organization a calendar-feed token (its hash) opens, and whether it is active.
CREATE FUNCTION sb_calendar_feed(p_hash TEXT)
RETURNS TABLE (org_id TEXT, status TEXT)
LANGUAGE sql STABLE SECURITY DEFINER AS $f$
    SELECT f.org_id, o.status FROM calendar_feeds f JOIN organizations o ON o.id = f.org_id
    WHERE f.token_hash = p_hash
$f$;

DO $$
DECLARE f regprocedure := 'sb_calendar_feed(text)'::regprocedure;
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
