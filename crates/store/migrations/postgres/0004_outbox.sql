-- After the conversation: the transactional outbox (per-organization event sequence and
-- webhook deliveries written with the state change), webhook endpoints and their attempts,
-- text-conversation analysis, and e-mail notifications.

-- The per-organization event counter. Incremented inside the transaction that writes the
-- event, so sequence order is commit order within an organization.
CREATE TABLE org_event_seq (
    org_id    TEXT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    last_seq  BIGINT NOT NULL
);

CREATE TABLE webhook_endpoints (
    id                           TEXT PRIMARY KEY,
    org_id                       TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    url                          TEXT NOT NULL,
    description                  TEXT,
    -- JSON array of event types; NULL means every type.
    event_types                  TEXT,
    enabled                      BIGINT NOT NULL,
    secret                       TEXT NOT NULL,
    -- After a rotation the old secret keeps signing too, until it expires.
    previous_secret              TEXT,
    previous_secret_expires_at   BIGINT,
    failing_since                BIGINT,
    disabled_reason              TEXT,
    created_at                   BIGINT NOT NULL,
    updated_at                   BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id, created_at DESC, id DESC);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_id         TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    event_type       TEXT NOT NULL,
    org_seq          BIGINT NOT NULL,
    -- Deliveries with the same endpoint and key go out in org_seq order (one conversation).
    order_key        TEXT NOT NULL,
    subject_id       TEXT,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivering', 'succeeded', 'failed')),
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    lease_owner      TEXT,
    last_status_code BIGINT,
    last_error       TEXT,
    delivered_at     BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status IN ('pending', 'delivering');
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, order_key, org_seq)
    WHERE status IN ('pending', 'delivering');
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (org_id, endpoint_id, created_at DESC, id DESC);
CREATE INDEX webhook_deliveries_subject ON webhook_deliveries (org_id, subject_id, org_seq);

CREATE TABLE webhook_attempts (
    id                TEXT PRIMARY KEY,
    org_id            TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    delivery_id       TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempted_at      BIGINT NOT NULL,
    status_code       BIGINT,
    latency_ms        BIGINT NOT NULL,
    response_excerpt  TEXT,
    error             TEXT
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempted_at);

ALTER TABLE conversations ADD COLUMN analysis TEXT;
-- Which calls e-mail the recipients: all, unsuccessful, none.
ALTER TABLE org_settings ADD COLUMN notify_calls TEXT NOT NULL DEFAULT 'all';

CREATE TABLE email_notifications (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    call_id          TEXT REFERENCES calls(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    recipients       TEXT NOT NULL,
    subject          TEXT,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'skipped', 'failed')),
    attempts         BIGINT NOT NULL,
    last_error       TEXT,
    sent_at          BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX email_notifications_org ON email_notifications (org_id, created_at DESC, id DESC);
CREATE INDEX email_notifications_call ON email_notifications (org_id, call_id);

-- A job about one subject (a call) can be found again: the analysis brings the call's e-mail
-- forward when it finishes.
ALTER TABLE jobs ADD COLUMN subject TEXT;
CREATE INDEX jobs_subject ON jobs (subject, kind);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['org_event_seq', 'webhook_endpoints', 'webhook_deliveries',
        'webhook_attempts', 'email_notifications']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (org_id = current_setting('switchboard.org_id', true))
            WITH CHECK (org_id = current_setting('switchboard.org_id', true))$p$, t);
    END LOOP;
END $$;

-- The delivery claim loop must find every organization's due deliveries. It runs with
-- switchboard.worker set and sees ids and schedule only; each delivery then loads its
-- payload, endpoint and secret inside its own organization's scope.
CREATE POLICY platform_worker ON webhook_deliveries
    USING (current_setting('switchboard.worker', true) = 'on')
    WITH CHECK (current_setting('switchboard.worker', true) = 'on');
