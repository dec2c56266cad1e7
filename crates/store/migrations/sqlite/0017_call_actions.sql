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
    created_at       INTEGER NOT NULL,
    delivered_at     INTEGER,
    acknowledged_at  INTEGER
);
CREATE INDEX call_actions_call ON call_actions (org_id, call_id, created_at);
CREATE INDEX call_actions_undelivered ON call_actions (instance_id, created_at)
    WHERE delivered_at IS NULL;
