-- Campaigns: many outbound calls placed by one agent within a calling window, with retries.
-- A runner dials each `running` campaign's due recipients, never more than its
-- `max_concurrent` at once (the organization's own cap is held by the dialer as well).

CREATE TABLE campaigns (
    id                   TEXT PRIMARY KEY,
    org_id               TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name                 TEXT NOT NULL,
    agent_id             TEXT NOT NULL,
    -- JSON array of E.164 numbers: the pool calls are placed from, in turn.
    from_numbers         TEXT NOT NULL,
    -- `draft`, `running`, `paused`, `completed`, `canceled`.
    status               TEXT NOT NULL,
    -- The calling window (JSON: days, start, end) and the time zone used for a recipient
    -- whose own zone is neither given nor implied by the number.
    calling_window       TEXT NOT NULL,
    timezone             TEXT NOT NULL,
    max_concurrent       BIGINT NOT NULL,
    max_attempts         BIGINT NOT NULL,
    retry_delay_seconds  BIGINT NOT NULL,
    start_at             BIGINT,
    voicemail            TEXT,
    record               INTEGER,
    metadata             TEXT,
    started_at           BIGINT,
    completed_at         BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX campaigns_org ON campaigns (org_id, created_at DESC, id DESC);
CREATE INDEX campaigns_running ON campaigns (status);

-- One row per recipient as given (CSV row or JSON item): `pending` (to dial, at
-- `next_attempt_at` or now), `calling` (its call is open), `done` (final `outcome`),
-- `skipped` (opted out, duplicate: `reason`), `invalid` (the row is wrong: `reason`; blocks
-- the start until skipping is accepted), `canceled`.
CREATE TABLE campaign_recipients (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    campaign_id      TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    row_number       BIGINT NOT NULL,
    number           TEXT NOT NULL,
    variables        TEXT NOT NULL,
    timezone         TEXT,
    status           TEXT NOT NULL,
    reason           TEXT,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    call_id          TEXT,
    outcome          TEXT,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX campaign_recipients_row ON campaign_recipients (campaign_id, row_number);
CREATE INDEX campaign_recipients_due ON campaign_recipients (campaign_id, status, next_attempt_at);

-- The campaign and recipient a call was placed for (echoed in the call's events).
ALTER TABLE calls ADD COLUMN campaign_id TEXT;
ALTER TABLE calls ADD COLUMN campaign_recipient_id TEXT;
CREATE INDEX calls_campaign_open ON calls (campaign_id)
    WHERE campaign_id IS NOT NULL AND ended_at IS NULL;

ALTER TABLE campaigns ENABLE ROW LEVEL SECURITY;
ALTER TABLE campaigns FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON campaigns
    USING (org_id = current_setting('switchboard.org_id', true))
    WITH CHECK (org_id = current_setting('switchboard.org_id', true));
-- The runner finds the running campaigns of every organization in the look-up scope.
CREATE POLICY platform_lookup ON campaigns FOR SELECT
    USING (current_setting('switchboard.lookup', true) = 'on');
ALTER TABLE campaign_recipients ENABLE ROW LEVEL SECURITY;
ALTER TABLE campaign_recipients FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON campaign_recipients
    USING (org_id = current_setting('switchboard.org_id', true))
    WITH CHECK (org_id = current_setting('switchboard.org_id', true));
