-- In-call control. An agent's `handoffs` (JSON: [{agent_id, description}]) are the agents it
-- may hand a call to; `digits` (JSON) is how `collect_digits` gathers keypad presses (NULL:
-- the defaults). A call's `handoffs` (JSON: [{from_agent_id, to_agent_id, reason, at}])
-- records the agents it passed through after the one that answered.
ALTER TABLE agents ADD COLUMN handoffs TEXT;
ALTER TABLE agents ADD COLUMN digits TEXT;
ALTER TABLE calls ADD COLUMN handoffs TEXT;
-- Transfers: whose number the person called sees (`our_number` or `caller`; NULL: ours), and
-- a line Twilio speaks before dialling. `transfer_number` may now also hold a SIP URI.
ALTER TABLE agents ADD COLUMN transfer_caller_id TEXT;
ALTER TABLE agents ADD COLUMN transfer_message TEXT;
-- Where staff (and later agents) may transfer calls besides each agent's own
-- `transfer_number`: JSON list of E.164 numbers, SIP URIs, or number prefixes ending in `*`.
ALTER TABLE org_settings ADD COLUMN transfer_destinations TEXT;
