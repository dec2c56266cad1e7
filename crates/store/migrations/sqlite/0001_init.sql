-- Switchboard schema, SQLite flavour. Timestamps are Unix milliseconds; JSON is TEXT;
-- flags are 0/1 integers (the same column types as the PostgreSQL schema, so one set of
-- queries serves both).

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at  INTEGER NOT NULL
);

CREATE TABLE operator_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE org_settings (
    org_id                          TEXT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    session_window_seconds          INTEGER NOT NULL,
    business_session_window_seconds INTEGER NOT NULL,
    notification_emails             TEXT NOT NULL,
    updated_at                      INTEGER NOT NULL
);

CREATE TABLE twilio_credentials (
    org_id       TEXT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    account_sid  TEXT,
    auth_token   TEXT,
    updated_at   INTEGER NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email          TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('operator', 'admin', 'member')),
    created_at     INTEGER NOT NULL
);
CREATE INDEX users_org ON users (org_id);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
);
CREATE INDEX api_keys_org ON api_keys (org_id, created_at DESC, id DESC);

CREATE TABLE agents (
    id                         TEXT PRIMARY KEY,
    org_id                     TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name                       TEXT NOT NULL,
    instructions               TEXT NOT NULL,
    greeting                   TEXT,
    voice                      TEXT NOT NULL,
    model                      TEXT NOT NULL,
    language                   TEXT,
    temperature                REAL,
    turn_detection             TEXT NOT NULL,
    tools                      TEXT NOT NULL,
    transfer_number            TEXT,
    max_call_duration_seconds  INTEGER NOT NULL,
    analysis_fields            TEXT NOT NULL,
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL
);
CREATE INDEX agents_org ON agents (org_id, created_at DESC, id DESC);

CREATE TABLE phone_numbers (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    number      TEXT NOT NULL,
    channel     TEXT NOT NULL CHECK (channel IN ('voice', 'sms', 'whatsapp')),
    agent_id    TEXT REFERENCES agents(id) ON DELETE SET NULL,
    active      INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    -- A number+channel belongs to at most one organization platform-wide.
    UNIQUE (number, channel)
);
CREATE INDEX phone_numbers_org ON phone_numbers (org_id, created_at DESC, id DESC);

CREATE TABLE contacts (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    number      TEXT NOT NULL,
    name        TEXT,
    metadata    TEXT NOT NULL,
    opted_out   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    UNIQUE (org_id, number)
);
CREATE INDEX contacts_org ON contacts (org_id, created_at DESC, id DESC);

CREATE TABLE conversations (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    channel          TEXT NOT NULL CHECK (channel IN ('voice', 'sms', 'whatsapp', 'web')),
    direction        TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    contact_number   TEXT NOT NULL,
    our_number       TEXT,
    agent_id         TEXT REFERENCES agents(id) ON DELETE SET NULL,
    status           TEXT NOT NULL,
    started_at       INTEGER NOT NULL,
    last_message_at  INTEGER NOT NULL,
    ended_at         INTEGER,
    variables        TEXT NOT NULL
);
CREATE INDEX conversations_org_started ON conversations (org_id, started_at DESC, id DESC);
CREATE INDEX conversations_org_contact ON conversations (org_id, contact_number, started_at DESC);
CREATE INDEX conversations_org_agent ON conversations (org_id, agent_id, started_at DESC);

CREATE TABLE messages (
    seq              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    org_id           TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role             TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('message', 'function_call', 'function_output')),
    content          TEXT NOT NULL,
    external_id      TEXT,
    delivery_status  TEXT,
    created_at       INTEGER NOT NULL
);
CREATE INDEX messages_conversation ON messages (conversation_id, seq);
CREATE INDEX messages_external ON messages (org_id, external_id);

CREATE TABLE calls (
    id                TEXT PRIMARY KEY,
    org_id            TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    conversation_id   TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    call_sid          TEXT NOT NULL UNIQUE,
    direction         TEXT NOT NULL,
    from_number       TEXT NOT NULL,
    to_number         TEXT NOT NULL,
    agent_id          TEXT REFERENCES agents(id) ON DELETE SET NULL,
    status            TEXT NOT NULL,
    started_at        INTEGER NOT NULL,
    answered_at       INTEGER,
    ended_at          INTEGER,
    duration_seconds  INTEGER,
    end_reason        TEXT,
    disposition       TEXT,
    recording_url     TEXT,
    analysis          TEXT
);
CREATE INDEX calls_org_started ON calls (org_id, started_at DESC, id DESC);

CREATE TABLE tool_invocations (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    conversation_id  TEXT REFERENCES conversations(id) ON DELETE SET NULL,
    call_id          TEXT REFERENCES calls(id) ON DELETE SET NULL,
    tool             TEXT NOT NULL,
    arguments        TEXT NOT NULL,
    result           TEXT,
    status           TEXT NOT NULL,
    actor            TEXT NOT NULL,
    started_at       INTEGER NOT NULL,
    finished_at      INTEGER
);
CREATE INDEX tool_invocations_org ON tool_invocations (org_id, started_at DESC);

CREATE TABLE appointments (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    agent_id    TEXT REFERENCES agents(id) ON DELETE SET NULL,
    contact_id  TEXT REFERENCES contacts(id) ON DELETE SET NULL,
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    title       TEXT NOT NULL,
    notes       TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX appointments_org_time ON appointments (org_id, starts_at);

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    org_seq     INTEGER NOT NULL,
    type        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (org_id, org_seq)
);
