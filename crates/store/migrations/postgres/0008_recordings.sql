-- Call recordings. The audio stays at Twilio; Switchboard keeps what the recording callback
-- said and streams the audio through `/api/v1/calls/{id}/recording` with the organization's
-- credentials, so neither they nor Twilio's URL reach a client.

-- Whether the agent's calls (both directions) are recorded, and whether this call was.
ALTER TABLE agents ADD COLUMN record INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN record INTEGER NOT NULL DEFAULT 0;
-- Twilio's `RecordingSid`, `RecordingStatus` (`in-progress`, `completed`, `absent`, `failed`),
-- `RecordingDuration` and `RecordingChannels`, and when Switchboard deleted it (here and at
-- Twilio: through the API or by the retention job).
ALTER TABLE calls ADD COLUMN recording_sid TEXT;
ALTER TABLE calls ADD COLUMN recording_status TEXT;
ALTER TABLE calls ADD COLUMN recording_duration_seconds BIGINT;
ALTER TABLE calls ADD COLUMN recording_channels BIGINT;
ALTER TABLE calls ADD COLUMN recording_deleted_at BIGINT;
CREATE INDEX calls_recordings_kept ON calls (started_at)
    WHERE recording_sid IS NOT NULL AND recording_deleted_at IS NULL;

-- Recordings older than this many days are deleted (NULL: kept until deleted by hand).
ALTER TABLE org_settings ADD COLUMN recording_retention_days BIGINT;

-- The retention job finds old recordings of every organization in the look-up scope (read
-- only); it needs each organization's retention setting for that.
CREATE POLICY platform_lookup ON org_settings FOR SELECT
    USING (current_setting('switchboard.lookup', true) = 'on');
