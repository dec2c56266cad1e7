-- When each alert was last e-mailed to an organization's admins, so one that keeps firing
-- (an endpoint failing, call e-mails bouncing) is sent once per interval, by one instance.
CREATE TABLE alert_notices (
    org_id   TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    sent_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, key)
);
ALTER TABLE alert_notices ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_notices FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON alert_notices
    USING (org_id = current_setting('switchboard.org_id', true))
    WITH CHECK (org_id = current_setting('switchboard.org_id', true));
