-- Retell as a front end: an organization's Retell API key (sealed, it verifies Retell's
-- webhooks and looks calls up), the Retell agent each agent answers for (unique across
-- organizations, as Retell's ids are: a call is routed by it), and Retell's own analysis
-- of a call beside ours.
CREATE TABLE retell_credentials (
    org_id      TEXT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    api_key     TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);
ALTER TABLE agents ADD COLUMN retell_agent_id TEXT;
CREATE UNIQUE INDEX agents_retell_agent ON agents (retell_agent_id)
    WHERE retell_agent_id IS NOT NULL;
ALTER TABLE calls ADD COLUMN provider_analysis TEXT;
