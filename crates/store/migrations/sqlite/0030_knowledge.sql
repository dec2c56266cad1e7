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
    chars       INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('indexing', 'ready', 'failed')),
    error       TEXT,
    chunks      INTEGER NOT NULL DEFAULT 0,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    indexed_at  INTEGER
);
CREATE INDEX knowledge_sources_org ON knowledge_sources (org_id, name);

-- The integer key is the full-text index's row id.
CREATE TABLE knowledge_chunks (
    id          INTEGER PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    source_id   TEXT NOT NULL REFERENCES knowledge_sources(id) ON DELETE CASCADE,
    ordinal     INTEGER NOT NULL,
    heading     TEXT,
    text        TEXT NOT NULL
);
CREATE INDEX knowledge_chunks_source ON knowledge_chunks (source_id, ordinal);

-- An external-content FTS5 index over the passages (their text is stored once, above):
-- Porter stemming over Unicode words, as PostgreSQL's `english` configuration stems.
CREATE VIRTUAL TABLE knowledge_fts USING fts5(
    heading, text,
    content = 'knowledge_chunks', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER knowledge_chunks_ai AFTER INSERT ON knowledge_chunks BEGIN
    INSERT INTO knowledge_fts (rowid, heading, text) VALUES (new.id, new.heading, new.text);
END;
CREATE TRIGGER knowledge_chunks_ad AFTER DELETE ON knowledge_chunks BEGIN
    INSERT INTO knowledge_fts (knowledge_fts, rowid, heading, text)
    VALUES ('delete', old.id, old.heading, old.text);
END;

-- The sources an agent answers from (ids of knowledge_sources, as JSON).
ALTER TABLE agents ADD COLUMN knowledge TEXT;
