-- Running server instances and which one runs each live call, so that a drain can tell
-- whether another instance takes calls, and a crashed instance's calls can be found and
-- ended by the survivors (or by the next start).

-- One row per server process. `heartbeat_at` is renewed every few seconds; a row whose
-- heartbeat is older than the lease, or that has `stopped_at`, is not running any call.
CREATE TABLE instances (
    id            TEXT PRIMARY KEY,
    started_at    BIGINT NOT NULL,
    heartbeat_at  BIGINT NOT NULL,
    draining      INTEGER NOT NULL DEFAULT 0,
    stopped_at    BIGINT
);
CREATE INDEX instances_heartbeat ON instances (heartbeat_at);

-- The instance whose call task owns the live call (set when the media stream is claimed).
ALTER TABLE calls ADD COLUMN instance_id TEXT;
-- When Twilio reported the call over while our call task had not finished it yet: the task
-- finalizes once its transcript is written; a sweep finalizes it if the task never does.
ALTER TABLE calls ADD COLUMN terminal_at BIGINT;
-- Live calls are looked for by the recovery sweep: few rows, so a partial index.
CREATE INDEX calls_live ON calls (instance_id) WHERE ended_at IS NULL;
