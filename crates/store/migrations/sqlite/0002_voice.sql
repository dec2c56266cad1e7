-- Voice calls: agent business hours for appointment tools, the call lifecycle columns, the
-- model's call_id on tool invocations, and platform secrets (the media-token key).

ALTER TABLE agents ADD COLUMN business_hours TEXT;

ALTER TABLE calls ADD COLUMN stream_sid TEXT;
ALTER TABLE calls ADD COLUMN status_seq INTEGER;
ALTER TABLE calls ADD COLUMN turn_latencies_ms TEXT;
ALTER TABLE calls ADD COLUMN error TEXT;

ALTER TABLE tool_invocations ADD COLUMN external_id TEXT;
-- A model call_id runs at most once per call.
CREATE UNIQUE INDEX tool_invocations_once ON tool_invocations (call_id, external_id);
CREATE INDEX tool_invocations_conversation ON tool_invocations (conversation_id, started_at);

CREATE INDEX appointments_contact ON appointments (org_id, contact_id, starts_at);

CREATE TABLE platform_secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
