-- In-call control. An agent's `handoffs` (JSON: [{agent_id, description}]) are the agents it
-- may hand a call to; `digits` (JSON) is how `collect_digits` gathers keypad presses (NULL:
-- the defaults). A call's `handoffs` (JSON: [{from_agent_id, to_agent_id, reason, at}])
-- records the agents it passed through after the one that answered.
ALTER TABLE agents ADD COLUMN handoffs TEXT;
ALTER TABLE agents ADD COLUMN digits TEXT;
ALTER TABLE calls ADD COLUMN handoffs TEXT;
