-- Text messaging: per-agent chat model, HELP text, per-contact sessions enforced by the
-- database, inbound dedupe by provider id, delivery errors, and the durable job queue.

ALTER TABLE agents ADD COLUMN chat_model TEXT;
ALTER TABLE org_settings ADD COLUMN help_text TEXT;
-- The last failure while answering (e.g. the chat model down); cleared by the next reply.
ALTER TABLE conversations ADD COLUMN error TEXT;

-- At most one open text session per (organization, channel, contact, our number): two first
-- messages arriving at once cannot start two conversations, whatever the code does.
CREATE UNIQUE INDEX conversations_open_session
    ON conversations (org_id, channel, contact_number, our_number)
    WHERE status = 'active' AND channel <> 'voice';
CREATE INDEX conversations_org_idle ON conversations (org_id, status, last_message_at);

-- A provider message (Twilio MessageSid) is stored once, however often the webhook is retried.
ALTER TABLE messages ADD COLUMN dedupe_key TEXT;
ALTER TABLE messages ADD COLUMN delivery_error TEXT;
CREATE UNIQUE INDEX messages_dedupe ON messages (org_id, dedupe_key);

-- Text channels have no call: a model tool-call id runs once per conversation.
CREATE UNIQUE INDEX tool_invocations_once_text
    ON tool_invocations (conversation_id, external_id) WHERE call_id IS NULL;

-- Durable background work. Not tenant data (ids only, no content), so the claim loop can see
-- every organization's due jobs; each job then runs inside its organization's scope.
CREATE TABLE jobs (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    run_at       INTEGER NOT NULL,
    attempts     INTEGER NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs (status, run_at);

-- A transcript item moves its conversation's last-message time forward (never back), inside
-- the insert itself: one statement on the hot path instead of two.
CREATE TRIGGER messages_touch_conversation AFTER INSERT ON messages BEGIN
    UPDATE conversations SET last_message_at = NEW.created_at
    WHERE id = NEW.conversation_id AND last_message_at < NEW.created_at;
END;
