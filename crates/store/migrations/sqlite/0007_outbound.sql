-- Outbound calls placed through the API: what the caller of the API attached, how to make the
-- request idempotent, when to dial, and what Twilio said about the attempt.

-- Opaque JSON echoed in the call's events.
ALTER TABLE calls ADD COLUMN metadata TEXT;
-- `Idempotency-Key` of the request that placed the call, and a hash of its body: the same key
-- with the same body answers the same call; with another body it is refused.
ALTER TABLE calls ADD COLUMN idempotency_key TEXT;
ALTER TABLE calls ADD COLUMN request_hash TEXT;
-- When the call is to be dialled (`send_at`), and when the dial request to Twilio started:
-- a dial job that finds it set after a crash cannot know whether Twilio got the request, and
-- never dials a second time.
ALTER TABLE calls ADD COLUMN dial_at BIGINT;
ALTER TABLE calls ADD COLUMN dial_started_at BIGINT;
-- Twilio's account of a failed attempt.
ALTER TABLE calls ADD COLUMN sip_response_code BIGINT;
ALTER TABLE calls ADD COLUMN twilio_error_code BIGINT;
CREATE UNIQUE INDEX calls_idempotency ON calls (org_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- What an outbound call does when a machine answers, and what Twilio's answering-machine
-- detection said (`human`, `machine_end_beep`, `fax`, ...) with what was done about it
-- (`left` a message or `hung_up`).
ALTER TABLE agents ADD COLUMN voicemail TEXT NOT NULL DEFAULT 'hangup';
ALTER TABLE agents ADD COLUMN voicemail_message TEXT;
ALTER TABLE calls ADD COLUMN answered_by TEXT;
ALTER TABLE calls ADD COLUMN voicemail_outcome TEXT;
-- The voicemail behaviour asked for when the call was placed (else the agent's).
ALTER TABLE calls ADD COLUMN voicemail_mode TEXT;
-- When the API asked to hang up the live call (its end is then told as such).
ALTER TABLE calls ADD COLUMN hangup_requested_at BIGINT;

-- Text messages to send later (`POST /api/v1/scheduled-messages`): the request as given, its
-- time, and what became of it. A durable job sends each one once at `send_at`.
CREATE TABLE scheduled_messages (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    channel          TEXT NOT NULL,
    contact_number   TEXT NOT NULL,
    request          TEXT NOT NULL,
    send_at          BIGINT NOT NULL,
    status           TEXT NOT NULL,
    conversation_id  TEXT,
    message_id       TEXT,
    error            TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX scheduled_messages_org ON scheduled_messages (org_id, send_at DESC, id DESC);

-- How many outbound calls of the organization may be dialling or live at once.
ALTER TABLE org_settings ADD COLUMN max_concurrent_outbound_calls BIGINT NOT NULL DEFAULT 10;
