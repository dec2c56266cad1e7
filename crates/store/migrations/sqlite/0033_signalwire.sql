-- SignalWire as a carrier: an organization's carrier account is Twilio's (account SID and
-- auth token) or a SignalWire project's (project id and API token in the same columns, the
-- space's host, and the signing key its webhooks are signed with, sealed).
ALTER TABLE twilio_credentials ADD COLUMN carrier TEXT NOT NULL DEFAULT 'twilio';
ALTER TABLE twilio_credentials ADD COLUMN space TEXT;
ALTER TABLE twilio_credentials ADD COLUMN signing_key TEXT;
