-- Knowledge: an organization's documents (pasted text, Markdown, uploaded .txt/.md/.pdf),
-- cut into passages and indexed for full-text search, which agents attached to them search
-- with the built-in `search_knowledge` tool. A source's text is kept as extracted; its
-- passages are rebuilt by a background job whenever the text changes (`version`).
CREATE TABLE knowledge_sources (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    format      TEXT NOT NULL CHECK (format IN ('text', 'markdown', 'pdf')),
    file_name   TEXT,
    content     TEXT NOT NULL,
    chars       BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('indexing', 'ready', 'failed')),
    error       TEXT,
    chunks      BIGINT NOT NULL DEFAULT 0,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    indexed_at  BIGINT
);
CREATE INDEX knowledge_sources_org ON knowledge_sources (org_id, name);

-- Passages with their search vector: the heading weighs more than the text (A over B),
-- as SQLite's bm25 weights the heading column.
CREATE TABLE knowledge_chunks (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    source_id   TEXT NOT NULL REFERENCES knowledge_sources(id) ON DELETE CASCADE,
    ordinal     BIGINT NOT NULL,
    heading     TEXT,
    text        TEXT NOT NULL,
    tsv         tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', coalesce(heading, '')), 'A') ||
        setweight(to_tsvector('english', text), 'B')
    ) STORED
);
CREATE INDEX knowledge_chunks_source ON knowledge_chunks (source_id, ordinal);
CREATE INDEX knowledge_chunks_tsv ON knowledge_chunks USING GIN (tsv);
CREATE INDEX knowledge_chunks_org ON knowledge_chunks (org_id);

ALTER TABLE knowledge_sources ENABLE ROW LEVEL SECURITY;
ALTER TABLE knowledge_sources FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON knowledge_sources
    USING (org_id = current_setting('switchboard.org_id', true))
    WITH CHECK (org_id = current_setting('switchboard.org_id', true));
ALTER TABLE knowledge_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE knowledge_chunks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON knowledge_chunks
    USING (org_id = current_setting('switchboard.org_id', true))
    WITH CHECK (org_id = current_setting('switchboard.org_id', true));

-- The sources an agent answers from (ids of knowledge_sources, as JSON).
ALTER TABLE agents ADD COLUMN knowledge TEXT;
