-- Voice calls: agent business hours for appointment tools, the call lifecycle columns, the
-- model's call_id on tool invocations, and platform secrets (the media-token key).

ALTER TABLE agents ADD COLUMN business_hours TEXT;

ALTER TABLE calls ADD COLUMN stream_sid TEXT;
ALTER TABLE calls ADD COLUMN status_seq BIGINT;
ALTER TABLE calls ADD COLUMN turn_latencies_ms TEXT;
ALTER TABLE calls ADD COLUMN error TEXT;

ALTER TABLE tool_invocations ADD COLUMN external_id TEXT;
-- A model call_id runs at most once per call.
CREATE UNIQUE INDEX tool_invocations_once ON tool_invocations (call_id, external_id);
CREATE INDEX tool_invocations_conversation ON tool_invocations (conversation_id, started_at);

CREATE INDEX appointments_contact ON appointments (org_id, contact_id, starts_at);

-- Not tenant data: keys of the platform itself, readable only by the application role.
CREATE TABLE platform_secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Twilio status callbacks name a CallSid before the organization is known: the same narrow,
-- read-only look-up visibility as number routing.
CREATE POLICY platform_lookup ON calls FOR SELECT
    USING (current_setting('switchboard.lookup', true) = 'on');
