-- Inbound calls answered with a media stream that never connected, with no status from
-- Twilio, are closed by the recovery sweep. PostgreSQL gets the definer look-up (see the
-- PostgreSQL migration of the same number); SQLite reads the table directly: nothing changes.
SELECT 1;
