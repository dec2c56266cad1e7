-- Staff actions on live calls: asked through the API or the dashboard, carried out by the
-- call's own task on the instance that holds it (`instance_id`, the call's at the time),
-- acknowledged with a result. The rows are the actions' audit trail.
CREATE TABLE call_actions (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    call_id          TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    request          TEXT NOT NULL,
    actor            TEXT NOT NULL,
    instance_id      TEXT NOT NULL,
    status           TEXT NOT NULL,
    result           TEXT,
    created_at       BIGINT NOT NULL,
    delivered_at     BIGINT,
    acknowledged_at  BIGINT
);
CREATE INDEX call_actions_call ON call_actions (org_id, call_id, created_at);
CREATE INDEX call_actions_undelivered ON call_actions (instance_id, created_at)
    WHERE delivered_at IS NULL;

ALTER TABLE call_actions ENABLE ROW LEVEL SECURITY;
ALTER TABLE call_actions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON call_actions
    USING (org_id = current_setting('switchboard.org_id', true))
    WITH CHECK (org_id = current_setting('switchboard.org_id', true));
-- Each instance finds the actions addressed to it across organizations (ids only), then
-- marks them delivered; results are written in the action's organization.
CREATE POLICY platform_worker ON call_actions
    USING (current_setting('switchboard.worker', true) = 'on')
    WITH CHECK (current_setting('switchboard.worker', true) = 'on');
