-- Admission control counts an organization's calls under way on every incoming call: an
-- index of only the calls that have not ended keeps that count small.
CREATE INDEX calls_live_org ON calls (org_id) WHERE ended_at IS NULL;
