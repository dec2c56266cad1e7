-- Whose contact data an agent's tools may use: `caller` (NULL: only the person on the line)
-- or `organization` (every contact; staff-facing agents).
ALTER TABLE agents ADD COLUMN contact_scope TEXT;
