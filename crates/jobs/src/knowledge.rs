//! Indexing a knowledge source: its text is cut into passages (`knowledge::chunk`) and they
//! replace the source's previous ones, if the text is still the version the job was queued
//! for (a newer version has its own job). Cutting runs off the async threads: a long
//! document is a few milliseconds of CPU per 100 KB.

use crate::analysis::RunError;
use crate::Jobs;
use switchboard_domain::ids::KnowledgeSourceId;
use switchboard_domain::knowledge::chunk;
use switchboard_store::Job;

impl Jobs {
    /// Runs one index job.
    pub(crate) async fn index_knowledge(&self, job: &Job) -> Result<(), RunError> {
        let inner = &self.inner;
        let id = crate::payload_id(job, "source_id", KnowledgeSourceId::parse)
            .ok_or_else(|| RunError::Stop("the job names no knowledge source".into()))?;
        let version = job
            .payload
            .get("version")
            .and_then(serde_json::Value::as_i64)
            .ok_or_else(|| RunError::Stop("the job names no version".into()))?;
        let Some((format, text)) = inner
            .store
            .knowledge_text_to_index(&job.org_id, &id, version)
            .await?
        else {
            tracing::info!(org_id = %job.org_id, source_id = %id, version, "knowledge source changed or deleted since the job was queued; nothing to index");
            return Ok(());
        };
        let chunks = tokio::task::spawn_blocking(move || chunk(&text, format))
            .await
            .map_err(|e| RunError::Stop(format!("cutting the text failed: {e}")))?;
        let stored = inner
            .store
            .store_knowledge_chunks(&job.org_id, &id, version, &chunks, inner.clock.now())
            .await?;
        tracing::info!(org_id = %job.org_id, source_id = %id, version, chunks = chunks.len(), stored, "knowledge source indexed");
        Ok(())
    }
}
