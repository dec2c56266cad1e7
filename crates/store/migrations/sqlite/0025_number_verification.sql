-- Numbers must be proven: each claim records whether Twilio confirmed that the number belongs
-- to the organization's account. Several organizations may claim a number while it is
-- unverified (so a first claimer who does not own it cannot block the real owner); at most one
-- claim per number and channel is verified. SQLite cannot drop the old platform-wide UNIQUE
-- constraint, so the table is rebuilt (nothing references it by foreign key).
CREATE TABLE phone_numbers_v25 (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    number      TEXT NOT NULL,
    channel     TEXT NOT NULL CHECK (channel IN ('voice', 'sms', 'whatsapp')),
    agent_id    TEXT REFERENCES agents(id) ON DELETE SET NULL,
    active      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    verification TEXT NOT NULL DEFAULT 'pending_verification'
        CHECK (verification IN ('verified', 'pending_verification')),
    verification_reason TEXT,
    verification_message TEXT,
    verification_checked_at INTEGER,
    UNIQUE (org_id, number, channel)
);
INSERT INTO phone_numbers_v25 (id, org_id, number, channel, agent_id, active, created_at,
    verification, verification_reason, verification_message)
SELECT id, org_id, number, channel, agent_id, active, created_at, 'pending_verification',
    'not_checked', 'registered before numbers were verified; not checked with Twilio yet'
FROM phone_numbers;
DROP TABLE phone_numbers;
ALTER TABLE phone_numbers_v25 RENAME TO phone_numbers;
CREATE INDEX phone_numbers_org ON phone_numbers (org_id, created_at DESC, id DESC);
CREATE INDEX phone_numbers_route ON phone_numbers (number, channel);
CREATE UNIQUE INDEX phone_numbers_verified ON phone_numbers (number, channel)
    WHERE verification = 'verified';
