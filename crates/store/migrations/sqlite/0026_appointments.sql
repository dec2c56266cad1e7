-- Appointments become a calendar staff manage: a revision counter (the iCalendar SEQUENCE,
-- so subscribed calendars take a move), the spelling `canceled` used by every other status
-- and event, an index for one agent's calendar, the organization's time zone, and one secret
-- calendar-feed token per organization (stored as its hash).
ALTER TABLE appointments ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
UPDATE appointments SET status = 'canceled' WHERE status = 'cancelled';
CREATE INDEX appointments_agent ON appointments (org_id, agent_id, starts_at);
ALTER TABLE org_settings ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';

CREATE TABLE calendar_feeds (
    org_id      TEXT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);
