//! The durable job queue. Jobs carry ids only (no tenant content), so the claim loop reads
//! every organization's due work in one query; the job itself then runs in its organization's
//! scope. Claims are leases: a worker that dies (crash, kill -9) loses its jobs when the lease
//! expires; one that shuts down cleanly hands them back at once.

use crate::rows::{col, json, to_json, ts, Sql};
use crate::{Access, Backend, Expect, Scope, Store, StoreError};
use serde_json::Value;
use switchboard_domain::ids::OrgId;
use switchboard_domain::Timestamp;

/// A queued unit of background work.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Id (`job_...`).
    pub id: String,
    /// The organization it works for.
    pub org_id: OrgId,
    /// What to do, e.g. `messaging.reply`.
    pub kind: String,
    /// Ids and progress markers.
    pub payload: Value,
    /// Runs started so far, including the current one.
    pub attempts: i64,
    /// When it was queued.
    pub created_at: Timestamp,
}

/// A job to queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// What to do.
    pub kind: String,
    /// Ids and progress markers.
    pub payload: Value,
    /// Not before.
    pub run_at: Timestamp,
    /// Claim it immediately for this worker (the caller runs it inline), until this time.
    pub lease: Option<(String, Timestamp)>,
    /// What it is about (a call id), so it can be found again.
    pub subject: Option<String>,
}

const JOB_COLUMNS: &str = "id, org_id, kind, payload, attempts, created_at";

fn job_from_row(row: &sqlx::any::AnyRow) -> Result<Job, StoreError> {
    Ok(Job {
        id: col(row, "id")?,
        org_id: OrgId::from_db(col(row, "org_id")?),
        kind: col(row, "kind")?,
        payload: json(row, "payload")?,
        attempts: col(row, "attempts")?,
        created_at: ts(row, "created_at")?,
    })
}

/// Queues a job inside an open transaction, so it exists exactly when the state change that
/// needs it commits.
pub(crate) async fn insert_job(
    tx: &mut crate::Tx,
    org: &OrgId,
    job: &NewJob,
    now: Timestamp,
) -> Result<Job, StoreError> {
    let id = format!("job_{}", switchboard_domain::ids::random_token(20));
    let (status, owner, until, attempts) = match &job.lease {
        Some((owner, until)) => ("running", Some(owner.clone()), Some(until.millis()), 1),
        None => ("pending", None, None, 0),
    };
    // Deferred to the flush before commit: nothing reads a job back in the transaction
    // that queues it.
    let sql = Sql::new(
        "INSERT INTO jobs (id, org_id, kind, payload, status, run_at, attempts, lease_owner, \
         lease_until, created_at, updated_at, subject) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(id.clone())
    .bind(org.to_string())
    .bind(job.kind.clone())
    .bind(to_json(&job.payload)?)
    .bind(status)
    .bind(job.run_at.millis())
    .bind(attempts)
    .bind(owner)
    .bind(until)
    .bind(now.millis())
    .bind(now.millis())
    .bind(job.subject.clone());
    tx.defer(sql, Expect::Any).await?;
    Ok(Job {
        id,
        org_id: org.clone(),
        kind: job.kind.clone(),
        payload: job.payload.clone(),
        attempts,
        created_at: now,
    })
}

impl Store {
    /// Queues a job on its own.
    pub async fn enqueue_job(
        &self,
        org: &OrgId,
        job: &NewJob,
        now: Timestamp,
    ) -> Result<Job, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        let job = insert_job(&mut tx, org, job, now).await?;
        tx.commit().await?;
        Ok(job)
    }

    /// Claims up to `limit` due jobs of `kinds` for `owner` until `now + lease_ms`: pending
    /// jobs whose time has come, and running jobs whose lease expired (their worker died).
    /// On PostgreSQL `FOR UPDATE SKIP LOCKED` lets several instances claim side by side
    /// without taking the same job; SQLite has a single writer.
    pub async fn claim_jobs(
        &self,
        owner: &str,
        kinds: &[&str],
        now: Timestamp,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Job>, StoreError> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let kinds_sql = kinds
            .iter()
            .map(|k| format!("'{}'", k.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ");
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE jobs SET status = 'running', lease_owner = $1, lease_until = $2, \
             attempts = attempts + 1, updated_at = $3 WHERE id IN (SELECT id FROM jobs \
             WHERE kind IN ({kinds_sql}) AND ((status = 'pending' AND run_at <= $4) \
             OR (status = 'running' AND lease_until < $5)) ORDER BY run_at LIMIT $6{lock}) \
             RETURNING {JOB_COLUMNS}"
        );
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(now.millis() + lease_ms)
            .bind(now.millis())
            .bind(now.millis())
            .bind(now.millis())
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(job_from_row).collect()
    }

    /// [`Store::claim_jobs`] for one kind, with at most `per_org` jobs of that kind running
    /// at once in any organization (running jobs with a live lease count, whichever
    /// instance holds them), so one organization's burst cannot take every slot. Each
    /// organization is claimed under its lock, so the cap holds across instances.
    pub async fn claim_jobs_per_org(
        &self,
        owner: &str,
        kind: &str,
        now: Timestamp,
        lease_ms: i64,
        limit: i64,
        per_org: i64,
    ) -> Result<Vec<Job>, StoreError> {
        const DUE: &str = "kind = $1 AND ((status = 'pending' AND run_at <= $2) \
             OR (status = 'running' AND lease_until < $3))";
        let mut r = self.reader(Scope::Platform).await?;
        let orgs: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT org_id FROM jobs WHERE {DUE} GROUP BY org_id ORDER BY MIN(run_at) LIMIT $4"
        ))
        .bind(kind)
        .bind(now.millis())
        .bind(now.millis())
        .bind(limit)
        .fetch_all(r.conn())
        .await?;
        r.finish().await?;
        let mut claimed = Vec::new();
        for org in orgs.into_iter().map(OrgId::from_db) {
            let room = limit - i64::try_from(claimed.len()).unwrap_or(limit);
            if room <= 0 {
                break;
            }
            let mut tx = self.begin(Scope::Org(&org), Access::Write).await?;
            self.lock_org(&mut tx, &org).await?;
            let busy = Self::running_jobs(&mut tx, &org, kind, now).await?;
            let take = (per_org - busy).min(room);
            if take <= 0 {
                tx.commit().await?;
                continue;
            }
            let rows = sqlx::query(&format!(
                "UPDATE jobs SET status = 'running', lease_owner = $4, lease_until = $5, \
                 attempts = attempts + 1, updated_at = $6 WHERE id IN (SELECT id FROM jobs \
                 WHERE org_id = $7 AND {DUE} ORDER BY run_at, id LIMIT $8) \
                 RETURNING {JOB_COLUMNS}"
            ))
            .bind(kind)
            .bind(now.millis())
            .bind(now.millis())
            .bind(owner)
            .bind(now.millis() + lease_ms)
            .bind(now.millis())
            .bind(org.as_str())
            .bind(take)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            for row in &rows {
                claimed.push(job_from_row(row)?);
            }
        }
        Ok(claimed)
    }

    /// Jobs of `kind` running now with a live lease in the organization (what
    /// [`Store::claim_jobs_per_org`] counts against its cap).
    pub(crate) async fn running_jobs(
        tx: &mut crate::Tx,
        org: &OrgId,
        kind: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE org_id = $1 AND kind = $2 \
             AND status = 'running' AND lease_until >= $3",
        )
        .bind(org.as_str())
        .bind(kind)
        .bind(now.millis())
        .fetch_one(&mut **tx)
        .await?)
    }

    /// When the earliest pending job of these kinds is due, if any (workers sleep until then).
    pub async fn next_job_at(&self, kinds: &[&str]) -> Result<Option<Timestamp>, StoreError> {
        if kinds.is_empty() {
            return Ok(None);
        }
        let kinds_sql = kinds
            .iter()
            .map(|k| format!("'{}'", k.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ");
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let at: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT MIN(run_at) FROM jobs WHERE kind IN ({kinds_sql}) AND status = 'pending'"
        ))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(at.map(Timestamp::from_millis))
    }

    /// Marks a job done. Returns false when `owner` no longer held it.
    pub async fn complete_job(
        &self,
        id: &str,
        owner: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.finish_job_with(
            "status = 'done', lease_owner = NULL, lease_until = NULL, last_error = $1, \
             updated_at = $2",
            id,
            owner,
            (None, now.millis()),
        )
        .await
    }

    /// Schedules another attempt at `run_at` after a failure.
    pub async fn retry_job(
        &self,
        id: &str,
        owner: &str,
        run_at: Timestamp,
        error: &str,
    ) -> Result<bool, StoreError> {
        self.finish_job_with(
            "status = 'pending', lease_owner = NULL, lease_until = NULL, last_error = $1, \
             run_at = $2",
            id,
            owner,
            (Some(error.to_owned()), run_at.millis()),
        )
        .await
    }

    /// Gives up on a job after its last attempt.
    pub async fn fail_job(
        &self,
        id: &str,
        owner: &str,
        error: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        self.finish_job_with(
            "status = 'failed', lease_owner = NULL, lease_until = NULL, last_error = $1, \
             updated_at = $2",
            id,
            owner,
            (Some(error.to_owned()), now.millis()),
        )
        .await
    }

    /// Hands a claimed job back untouched (its worker is stopping), so another instance or
    /// the next start picks it up without waiting for the lease to expire.
    pub async fn release_job(&self, id: &str, owner: &str) -> Result<bool, StoreError> {
        self.finish_job_with(
            "status = 'pending', lease_owner = NULL, lease_until = NULL, last_error = $1, \
             updated_at = $2",
            id,
            owner,
            (None, Timestamp::now().millis()),
        )
        .await
    }

    /// A job's status and last error (`None` when it does not exist).
    pub async fn job_status(
        &self,
        id: &str,
    ) -> Result<Option<(String, i64, Option<String>)>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let row = sqlx::query("SELECT status, attempts, last_error FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.map(|r| {
            Ok((
                col(&r, "status")?,
                col(&r, "attempts")?,
                col(&r, "last_error")?,
            ))
        })
        .transpose()
    }

    async fn finish_job_with(
        &self,
        set: &str,
        id: &str,
        owner: &str,
        (text, number): (Option<String>, i64),
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        let done = sqlx::query(&format!(
            "UPDATE jobs SET {set} WHERE id = $3 AND lease_owner = $4 AND status = 'running'"
        ))
        .bind(text)
        .bind(number)
        .bind(id)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}
