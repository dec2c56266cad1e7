-- When each alert was last e-mailed to an organization's admins, so one that keeps firing
-- (an endpoint failing, call e-mails bouncing) is sent once per interval, by one instance.
CREATE TABLE alert_notices (
    org_id   TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    sent_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, key)
);
