-- A call's latest transfer (JSON: {target, mode, requested_by, agent_id, status, outcome,
-- started_at, ended_at}). While it is `dialing` the call has no media stream (Twilio's
-- `<Dial>` holds the caller) and no task: the `<Dial action>` callback settles it, and a
-- failed transfer brings the caller back on a new stream.
ALTER TABLE calls ADD COLUMN transfer TEXT;
-- How an agent's `transfer_call` hands the caller over: `cold` (NULL) or `warm`.
ALTER TABLE agents ADD COLUMN transfer_mode TEXT;
