//! Call recordings: what Twilio's recording callbacks said, which recording a call has, its
//! deletion, and the recordings an organization's retention setting says to delete.

use crate::rows::{col, ts_opt};
use crate::{Access, Scope, Store, StoreError};
use switchboard_domain::ids::{CallId, OrgId};
use switchboard_domain::Timestamp;

/// A recording status callback, parsed.
#[derive(Debug, Clone)]
pub struct RecordingReport {
    /// `RecordingSid` (`RE...`).
    pub sid: String,
    /// `RecordingStatus`: `in-progress`, `completed`, `absent` or `failed`.
    pub status: String,
    /// `RecordingDuration`, seconds.
    pub duration_seconds: Option<i64>,
    /// `RecordingChannels`.
    pub channels: Option<i64>,
}

/// The recording a call has, for serving or deleting it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecording {
    /// `RE...`.
    pub sid: String,
    /// Its last reported status.
    pub status: Option<String>,
    /// When it was deleted, if it was.
    pub deleted_at: Option<Timestamp>,
}

/// A recording past its organization's retention.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpiredRecording {
    /// Its organization.
    pub org_id: OrgId,
    /// Its call.
    pub call_id: CallId,
    /// `RE...`.
    pub sid: String,
}

/// Order of recording statuses: a late `in-progress` never undoes a `completed`.
fn rank(status: &str) -> u8 {
    match status {
        "in-progress" => 1,
        "completed" | "absent" | "failed" => 2,
        _ => 0,
    }
}

impl Store {
    /// Notes that recording was asked of Twilio for this call (the API shows it `requested`
    /// until the first callback).
    pub async fn set_call_recorded(&self, org: &OrgId, call: &CallId) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query("UPDATE calls SET record = 1 WHERE org_id = $1 AND id = $2")
            .bind(org.as_str())
            .bind(call.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Notes that Twilio refused to start the call's recording (the API shows it `failed`).
    pub async fn set_recording_failed(&self, org: &OrgId, call: &CallId) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query(
            "UPDATE calls SET record = 1, recording_status = 'failed' \
             WHERE org_id = $1 AND id = $2 AND recording_sid IS NULL",
        )
        .bind(org.as_str())
        .bind(call.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Merges a recording callback. Callbacks may arrive out of order: the status only moves
    /// forward, and a deleted recording stays deleted. Returns `false` for an unknown call.
    pub async fn apply_recording(
        &self,
        org: &OrgId,
        call: &CallId,
        report: &RecordingReport,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let row = sqlx::query(&format!(
            "SELECT recording_sid, recording_status, recording_deleted_at FROM calls \
             WHERE org_id = $1 AND id = $2{}",
            self.for_update()
        ))
        .bind(org.as_str())
        .bind(call.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(false);
        };
        let current: Option<String> = col(&row, "recording_status")?;
        let deleted = ts_opt(&row, "recording_deleted_at")?.is_some();
        let same_sid =
            col::<Option<String>>(&row, "recording_sid")?.is_none_or(|s| s == report.sid);
        let forward = current
            .as_deref()
            .is_none_or(|c| rank(&report.status) > rank(c));
        if !deleted && (forward || !same_sid) {
            sqlx::query(
                "UPDATE calls SET record = 1, recording_sid = $1, recording_status = $2, \
                 recording_duration_seconds = COALESCE($3, recording_duration_seconds), \
                 recording_channels = COALESCE($4, recording_channels) \
                 WHERE org_id = $5 AND id = $6",
            )
            .bind(report.sid.as_str())
            .bind(report.status.as_str())
            .bind(report.duration_seconds)
            .bind(report.channels)
            .bind(org.as_str())
            .bind(call.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The call's recording, if Twilio reported one.
    pub async fn call_recording(
        &self,
        org: &OrgId,
        call: &CallId,
    ) -> Result<Option<StoredRecording>, StoreError> {
        let mut r = self.reader(Scope::Org(org)).await?;
        let row = sqlx::query(
            "SELECT recording_sid, recording_status, recording_deleted_at FROM calls \
             WHERE org_id = $1 AND id = $2",
        )
        .bind(org.as_str())
        .bind(call.as_str())
        .fetch_optional(r.conn())
        .await?;
        r.finish().await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound);
        };
        let Some(sid) = col::<Option<String>>(&row, "recording_sid")? else {
            return Ok(None);
        };
        Ok(Some(StoredRecording {
            sid,
            status: col(&row, "recording_status")?,
            deleted_at: ts_opt(&row, "recording_deleted_at")?,
        }))
    }

    /// Marks the call's recording deleted (once deleted at Twilio). Returns `false` when it
    /// already was.
    pub async fn mark_recording_deleted(
        &self,
        org: &OrgId,
        call: &CallId,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let done = sqlx::query(
            "UPDATE calls SET recording_deleted_at = $1 WHERE org_id = $2 AND id = $3 \
             AND recording_sid IS NOT NULL AND recording_deleted_at IS NULL",
        )
        .bind(at.millis())
        .bind(org.as_str())
        .bind(call.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(done > 0)
    }

    /// Recordings of calls that started more than their organization's
    /// `recording_retention_days` before `now`, oldest first. Runs in the look-up scope, which
    /// reads every organization's calls and settings but changes nothing.
    pub async fn expired_recordings(
        &self,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<ExpiredRecording>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let rows = sqlx::query(self.lookup(
            "SELECT * FROM sb_expired_recordings($1, $2)",
            "SELECT c.org_id, c.id, c.recording_sid FROM calls c \
             JOIN org_settings s ON s.org_id = c.org_id \
             WHERE c.recording_sid IS NOT NULL AND c.recording_deleted_at IS NULL \
             AND s.recording_retention_days IS NOT NULL \
             AND c.started_at < $1 - s.recording_retention_days * 86400000 \
             ORDER BY c.started_at LIMIT $2",
        ))
        .bind(now.millis())
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(ExpiredRecording {
                    org_id: OrgId::from_db(col(r, "org_id")?),
                    call_id: CallId::from_db(col(r, "id")?),
                    sid: col(r, "recording_sid")?,
                })
            })
            .collect()
    }
}
