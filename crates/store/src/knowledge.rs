//! Knowledge sources and their full-text index: SQLite FTS5 (external content over
//! `knowledge_chunks`, bm25) and PostgreSQL (a weighted `tsvector` column under a GIN index,
//! `ts_rank`). Both stem English words (Porter / Snowball) and weigh a passage's headings over
//! its text; both are given the same terms (`knowledge::search_terms`), any of which may
//! match. A source's text changes bump its `version` and queue an index job in the same
//! transaction; the job's passages are written only if the version is still current.

use crate::jobs::{insert_job, NewJob};
use crate::rows::{col, parsed, ts, ts_opt};
use crate::{Access, Backend, Scope, Store, StoreError};
use serde_json::json;
use sqlx::any::AnyRow;
use switchboard_domain::ids::{KnowledgeSourceId, OrgId};
use switchboard_domain::knowledge::{
    Chunk, KnowledgeFormat, KnowledgeHit, KnowledgeSource, KnowledgeStatus, SourceText, MAX_SOURCES,
};
use switchboard_domain::{Timestamp, ValidationError};

/// A word in this many passages of an organization or more is common (see
/// [`Store::search_knowledge`]).
pub const COMMON: i64 = 2_000;

/// The job that (re)builds a source's passages.
pub const KNOWLEDGE_JOB: &str = "knowledge.index";

const COLUMNS: &str = "id, name, format, file_name, chars, version, status, error, chunks, \
    created_by, created_at, updated_at, indexed_at";

/// A source to store.
#[derive(Debug, Clone)]
pub struct NewSource {
    /// Name (validated).
    pub name: String,
    /// Format.
    pub format: KnowledgeFormat,
    /// The uploaded file's name.
    pub file_name: Option<String>,
    /// The text (validated).
    pub text: SourceText,
    /// Who adds it.
    pub created_by: String,
}

fn source_from_row(row: &AnyRow) -> Result<KnowledgeSource, StoreError> {
    Ok(KnowledgeSource {
        id: KnowledgeSourceId::from_db(col(row, "id")?),
        name: col(row, "name")?,
        format: parsed(row, "format", KnowledgeFormat::parse)?,
        file_name: col(row, "file_name")?,
        chars: col(row, "chars")?,
        version: col(row, "version")?,
        status: parsed(row, "status", KnowledgeStatus::parse)?,
        error: col(row, "error")?,
        chunks: col(row, "chunks")?,
        created_by: col(row, "created_by")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        indexed_at: ts_opt(row, "indexed_at")?,
    })
}

async fn queue_index(
    tx: &mut crate::Tx,
    org: &OrgId,
    id: &KnowledgeSourceId,
    version: i64,
    now: Timestamp,
) -> Result<(), StoreError> {
    let job = NewJob {
        kind: KNOWLEDGE_JOB.to_owned(),
        payload: json!({"source_id": id, "version": version}),
        run_at: now,
        lease: None,
        subject: Some(id.to_string()),
    };
    insert_job(tx, org, &job, now).await?;
    Ok(())
}

async fn fetch(
    tx: &mut crate::Tx,
    org: &OrgId,
    id: &KnowledgeSourceId,
    lock: &str,
) -> Result<KnowledgeSource, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM knowledge_sources WHERE org_id = $1 AND id = $2{lock}"
    ))
    .bind(org.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    source_from_row(&row)
}

/// Every source an agent lists exists in its organization.
pub(crate) async fn check_agent_sources(
    tx: &mut crate::Tx,
    org: &OrgId,
    ids: &[KnowledgeSourceId],
) -> Result<(), StoreError> {
    for (i, id) in ids.iter().enumerate() {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM knowledge_sources WHERE org_id = $1 AND id = $2",
        )
        .bind(org.as_str())
        .bind(id.as_str())
        .fetch_one(&mut **tx)
        .await?;
        if n == 0 {
            return Err(StoreError::Invalid(ValidationError::new(
                format!("knowledge[{i}]"),
                "no such knowledge source in this organization",
            )));
        }
    }
    Ok(())
}

impl Store {
    /// Stores a source and queues its indexing; `Conflict` past [`MAX_SOURCES`].
    pub async fn create_knowledge_source(
        &self,
        org: &OrgId,
        input: NewSource,
        now: Timestamp,
    ) -> Result<KnowledgeSource, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        crate::accounts::ensure_org_exists(&mut tx, org).await?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM knowledge_sources WHERE org_id = $1")
            .bind(org.as_str())
            .fetch_one(&mut *tx)
            .await?;
        if n >= MAX_SOURCES {
            return Err(StoreError::Conflict(format!(
                "an organization can have at most {MAX_SOURCES} knowledge sources"
            )));
        }
        let id = KnowledgeSourceId::generate();
        sqlx::query(
            "INSERT INTO knowledge_sources (id, org_id, name, format, file_name, content, chars, \
             version, status, chunks, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, 'indexing', 0, $8, $9, $9)",
        )
        .bind(id.as_str())
        .bind(org.as_str())
        .bind(input.name.as_str())
        .bind(input.format.as_str())
        .bind(input.file_name.clone())
        .bind(input.text.content.as_str())
        .bind(input.text.chars)
        .bind(input.created_by.as_str())
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        queue_index(&mut tx, org, &id, 1, now).await?;
        let source = fetch(&mut tx, org, &id, "").await?;
        // Wakes this instance's job loop for the index job.
        self.commit_events(tx).await?;
        Ok(source)
    }

    /// The organization's sources, by name.
    pub async fn list_knowledge_sources(
        &self,
        org: &OrgId,
    ) -> Result<Vec<KnowledgeSource>, StoreError> {
        let mut r = self.reader(Scope::Org(org)).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM knowledge_sources WHERE org_id = $1 ORDER BY name, id"
        ))
        .bind(org.as_str())
        .fetch_all(r.conn())
        .await?;
        r.finish().await?;
        rows.iter().map(source_from_row).collect()
    }

    /// One source with its text.
    pub async fn get_knowledge_source(
        &self,
        org: &OrgId,
        id: &KnowledgeSourceId,
    ) -> Result<(KnowledgeSource, String), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let source = fetch(&mut tx, org, id, "").await?;
        let content: String = sqlx::query_scalar(
            "SELECT content FROM knowledge_sources WHERE org_id = $1 AND id = $2",
        )
        .bind(org.as_str())
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((source, content))
    }

    /// Renames a source and/or replaces its text (which queues indexing again).
    pub async fn update_knowledge_source(
        &self,
        org: &OrgId,
        id: &KnowledgeSourceId,
        name: Option<String>,
        text: Option<SourceText>,
        now: Timestamp,
    ) -> Result<KnowledgeSource, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let current = fetch(&mut tx, org, id, self.for_update()).await?;
        if let Some(name) = &name {
            sqlx::query(
                "UPDATE knowledge_sources SET name = $1, updated_at = $2 \
                 WHERE org_id = $3 AND id = $4",
            )
            .bind(name.as_str())
            .bind(now.millis())
            .bind(org.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        }
        if let Some(text) = &text {
            let version = current.version + 1;
            sqlx::query(
                "UPDATE knowledge_sources SET content = $1, chars = $2, version = $3, \
                 status = 'indexing', error = NULL, updated_at = $4 WHERE org_id = $5 AND id = $6",
            )
            .bind(text.content.as_str())
            .bind(text.chars)
            .bind(version)
            .bind(now.millis())
            .bind(org.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
            queue_index(&mut tx, org, id, version, now).await?;
        }
        let source = fetch(&mut tx, org, id, "").await?;
        self.commit_events(tx).await?;
        Ok(source)
    }

    /// Deletes a source with its passages; agents that answered from it no longer do.
    pub async fn delete_knowledge_source(
        &self,
        org: &OrgId,
        id: &KnowledgeSourceId,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        fetch(&mut tx, org, id, self.for_update()).await?;
        // Explicitly, so SQLite's full-text index is told of every passage going.
        sqlx::query("DELETE FROM knowledge_chunks WHERE org_id = $1 AND source_id = $2")
            .bind(org.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM knowledge_sources WHERE org_id = $1 AND id = $2")
            .bind(org.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        crate::agents::drop_from_agents(
            &mut tx,
            org,
            "knowledge",
            id.as_str(),
            |k: &KnowledgeSourceId| k != id,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A source's text as of `version`, for its index job; `None` when the source is gone
    /// or its text has changed since (a newer job indexes that).
    pub async fn knowledge_text_to_index(
        &self,
        org: &OrgId,
        id: &KnowledgeSourceId,
        version: i64,
    ) -> Result<Option<(KnowledgeFormat, String)>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let row = sqlx::query(
            "SELECT format, content FROM knowledge_sources \
             WHERE org_id = $1 AND id = $2 AND version = $3",
        )
        .bind(org.as_str())
        .bind(id.as_str())
        .bind(version)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(|r| {
            Ok((
                parsed(&r, "format", KnowledgeFormat::parse)?,
                col(&r, "content")?,
            ))
        })
        .transpose()
    }

    /// Replaces a source's passages with `chunks` if its text is still at `version`, and
    /// marks it ready; answers whether it did.
    pub async fn store_knowledge_chunks(
        &self,
        org: &OrgId,
        id: &KnowledgeSourceId,
        version: i64,
        chunks: &[Chunk],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let current = match fetch(&mut tx, org, id, self.for_update()).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Ok(false),
            Err(e) => return Err(e),
        };
        if current.version != version {
            return Ok(false);
        }
        sqlx::query("DELETE FROM knowledge_chunks WHERE org_id = $1 AND source_id = $2")
            .bind(org.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        // A few rows per statement: far fewer round trips for a long document, well under
        // either engine's bind limit.
        for group in chunks.chunks(50) {
            let mut sql = String::from(
                "INSERT INTO knowledge_chunks (org_id, source_id, ordinal, heading, text) VALUES ",
            );
            for i in 0..group.len() {
                let b = i * 5;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5
                ));
            }
            let mut q = sqlx::query(&sql);
            for c in group {
                q = q
                    .bind(org.as_str())
                    .bind(id.as_str())
                    .bind(c.ordinal)
                    .bind(c.heading.clone())
                    .bind(c.text.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        sqlx::query(
            "UPDATE knowledge_sources SET status = 'ready', error = NULL, chunks = $1, \
             indexed_at = $2 WHERE org_id = $3 AND id = $4",
        )
        .bind(i64::try_from(chunks.len()).unwrap_or(i64::MAX))
        .bind(now.millis())
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks a source's indexing at `version` as failed with the reason (its previous
    /// passages, if any, stay searchable).
    pub async fn fail_knowledge_index(
        &self,
        org: &OrgId,
        id: &KnowledgeSourceId,
        version: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query(
            "UPDATE knowledge_sources SET status = 'failed', error = $1 \
             WHERE org_id = $2 AND id = $3 AND version = $4",
        )
        .bind(error)
        .bind(org.as_str())
        .bind(id.as_str())
        .bind(version)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The best passages for `terms` (from `knowledge::search_terms`; any may match), best
    /// first, in `sources` when given (else every source of the organization).
    ///
    /// Ranking every passage that contains a common word is what makes a search slow (bm25
    /// scores each match), so on SQLite words in [`COMMON`] passages or more of the
    /// organization's only rank the passages the rarer words find, and a question of common
    /// words alone ranks the first [`COMMON`] passages containing them. On PostgreSQL every
    /// word chooses candidates (see BENCHMARKS.md for why and what it costs).
    pub async fn search_knowledge(
        &self,
        org: &OrgId,
        terms: &[String],
        sources: Option<&[KnowledgeSourceId]>,
        limit: u32,
    ) -> Result<Vec<KnowledgeHit>, StoreError> {
        if terms.is_empty() || sources.is_some_and(<[KnowledgeSourceId]>::is_empty) {
            return Ok(Vec::new());
        }
        let sqlite = self.inner.backend == Backend::Sqlite;
        let mut r = self.reader(Scope::Org(org)).await?;
        let mut rare: Vec<String> = Vec::new();
        if !sqlite {
            // Measured on PostgreSQL, counting a word's passages costs more than it saves
            // (the capped count is planned as a scan): every word chooses candidates there.
            rare = terms.to_vec();
        }
        for t in terms.iter().filter(|_| sqlite) {
            let sql = if sqlite {
                "SELECT COUNT(*) FROM (SELECT 1 FROM knowledge_chunks c WHERE c.org_id = $1 \
                 AND c.id IN (SELECT rowid FROM knowledge_fts WHERE knowledge_fts MATCH $2) \
                 LIMIT $3) t"
            } else {
                "SELECT COUNT(*) FROM (SELECT 1 FROM knowledge_chunks c WHERE c.org_id = $1 \
                 AND c.tsv @@ to_tsquery('english', $2) LIMIT $3) t"
            };
            let term = if sqlite {
                format!("\"{t}\"")
            } else {
                t.clone()
            };
            let n: i64 = sqlx::query_scalar(sql)
                .bind(org.as_str())
                .bind(term)
                .bind(COMMON)
                .fetch_one(r.conn())
                .await?;
            if n < COMMON {
                rare.push(t.clone());
            }
        }
        let all_common = rare.is_empty();
        let matching: &[String] = if all_common { terms } else { &rare };
        let mut filter = String::new();
        if let Some(ids) = sources {
            let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 5)).collect();
            filter = format!(" AND c.source_id IN ({})", marks.join(", "));
        }
        // The terms are letters and digits only (search_terms), so neither query language
        // sees an operator or a quote it did not put there.
        let (sql, query) = if sqlite {
            let first = if all_common {
                " AND c.id IN (SELECT c2.id FROM knowledge_chunks c2 WHERE c2.org_id = $2 \
                 AND c2.id IN (SELECT rowid FROM knowledge_fts WHERE knowledge_fts MATCH $1) \
                 ORDER BY c2.id LIMIT $4)"
            } else {
                " AND $4 > 0"
            };
            (
                format!(
                    "SELECT c.source_id, s.name AS source, c.heading, c.text, c.ordinal \
                     FROM knowledge_fts JOIN knowledge_chunks c ON c.id = knowledge_fts.rowid \
                     JOIN knowledge_sources s ON s.id = c.source_id \
                     WHERE knowledge_fts MATCH $1 AND c.org_id = $2{filter}{first} \
                     ORDER BY bm25(knowledge_fts, 2.0, 1.0), c.id LIMIT $3"
                ),
                matching
                    .iter()
                    .map(|t| format!("\"{t}\""))
                    .collect::<Vec<_>>()
                    .join(" OR "),
            )
        } else {
            // ts_rank weighs how often a word occurs, not how rare it is (bm25 does): a
            // passage full of a common word would outrank the one matching every word of
            // the question. Passages matching more of the words come first.
            let next = 5 + sources.map_or(0, <[KnowledgeSourceId]>::len);
            let coord: Vec<String> = (0..terms.len())
                .map(|i| format!("(c.tsv @@ to_tsquery('english', ${}))::int", next + i))
                .collect();
            let everything = next + terms.len();
            let first = if all_common {
                " AND c.id IN (SELECT c2.id FROM knowledge_chunks c2 WHERE c2.org_id = $2 \
                 AND c2.tsv @@ to_tsquery('english', $1) ORDER BY c2.id LIMIT $4)"
            } else {
                " AND $4 > 0"
            };
            (
                format!(
                    "SELECT c.source_id, s.name AS source, c.heading, c.text, c.ordinal \
                     FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.source_id \
                     WHERE c.tsv @@ to_tsquery('english', $1) AND c.org_id = $2{filter}{first} \
                     ORDER BY {} DESC, ts_rank(c.tsv, to_tsquery('english', ${everything}), 1) DESC, \
                     c.id LIMIT $3",
                    coord.join(" + ")
                ),
                matching.join(" | "),
            )
        };
        let mut q = sqlx::query(&sql)
            .bind(query)
            .bind(org.as_str())
            .bind(i64::from(limit.clamp(1, 50)))
            .bind(COMMON);
        for id in sources.unwrap_or_default() {
            q = q.bind(id.as_str());
        }
        if !sqlite {
            for t in terms {
                q = q.bind(t.as_str());
            }
            q = q.bind(terms.join(" | "));
        }
        let rows = q.fetch_all(r.conn()).await?;
        r.finish().await?;
        rows.iter()
            .map(|row| {
                Ok(KnowledgeHit {
                    source_id: KnowledgeSourceId::from_db(col(row, "source_id")?),
                    source: col(row, "source")?,
                    heading: col(row, "heading")?,
                    text: col(row, "text")?,
                    ordinal: col(row, "ordinal")?,
                })
            })
            .collect()
    }
}
