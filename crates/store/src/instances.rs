//! Server instances and the calls they own: a heartbeat row per process, so that a draining
//! instance knows whether another one takes calls, and live calls whose instance died (or a
//! terminal status nobody finalized) are found by the recovery sweep of any instance.

use crate::rows::col;
use crate::{Access, Scope, Store, StoreError};
use switchboard_domain::ids::{CallId, OrgId};
use switchboard_domain::Timestamp;

/// A call the recovery sweep must finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrandedCall {
    /// Organization.
    pub org_id: OrgId,
    /// Call.
    pub call_id: CallId,
    /// Why: its instance stopped heartbeating (`true`), or Twilio reported it over and no
    /// call task finalized it in time (`false`).
    pub instance_lost: bool,
}

impl Store {
    /// Records a starting instance.
    pub async fn register_instance(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        sqlx::query(
            "INSERT INTO instances (id, started_at, heartbeat_at, draining) VALUES ($1, $2, $3, 0)",
        )
        .bind(id)
        .bind(at.millis())
        .bind(at.millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Renews an instance's heartbeat and says whether it is draining.
    pub async fn heartbeat_instance(
        &self,
        id: &str,
        at: Timestamp,
        draining: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        sqlx::query("UPDATE instances SET heartbeat_at = $1, draining = $2 WHERE id = $3")
            .bind(at.millis())
            .bind(i64::from(draining))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks an instance stopped (its calls have all ended). Rows of instances stopped or
    /// silent for a day are removed at the same time.
    pub async fn stop_instance(&self, id: &str, at: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        sqlx::query("UPDATE instances SET stopped_at = $1, draining = 1 WHERE id = $2")
            .bind(at.millis())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM instances WHERE heartbeat_at < $1 AND id <> $2")
            .bind(at.millis() - 86_400_000)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many other instances are running and taking calls (heartbeat newer than `since`,
    /// not draining, not stopped).
    pub async fn other_serving_instances(
        &self,
        id: &str,
        since: Timestamp,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM instances WHERE id <> $1 AND stopped_at IS NULL \
             AND draining = 0 AND heartbeat_at >= $2",
        )
        .bind(id)
        .bind(since.millis())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Inbound calls started before `started_before` that are not over, were never claimed
    /// by a call task, never started a media stream and have no terminal status from Twilio
    /// (look-up scope: every organization).
    pub async fn unconnected_calls(
        &self,
        started_before: Timestamp,
    ) -> Result<Vec<(OrgId, CallId)>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let rows = sqlx::query(self.lookup(
            "SELECT * FROM sb_unconnected_calls($1)",
            "SELECT org_id, id FROM calls WHERE ended_at IS NULL AND instance_id IS NULL \
             AND stream_sid IS NULL AND terminal_at IS NULL AND direction = 'inbound' \
             AND started_at < $1 ORDER BY started_at LIMIT 500",
        ))
        .bind(started_before.millis())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok((
                    OrgId::from_db(col(r, "org_id")?),
                    CallId::from_db(col(r, "id")?),
                ))
            })
            .collect()
    }

    /// Live calls that no running instance will finish: their instance's heartbeat is older
    /// than `alive_since` (or it stopped), or Twilio reported them over before
    /// `terminal_before` and they are still open (also a call whose transfer Twilio was
    /// dialling, which has no instance: its `<Dial action>` callback never came). Runs in the look-up scope,
    /// which may read calls of every organization but change none.
    pub async fn stranded_calls(
        &self,
        alive_since: Timestamp,
        terminal_before: Timestamp,
    ) -> Result<Vec<StrandedCall>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let rows = sqlx::query(self.lookup(
            "SELECT * FROM sb_stranded_calls($1, $2)",
            "SELECT org_id, id, CASE WHEN instance_id IS NULL OR instance_id IN (SELECT id \
               FROM instances WHERE stopped_at IS NULL AND heartbeat_at >= $1) THEN 0 ELSE 1 \
               END AS lost \
             FROM calls WHERE ended_at IS NULL \
             AND (terminal_at < $2 OR (instance_id IS NOT NULL AND instance_id NOT IN \
               (SELECT id FROM instances WHERE stopped_at IS NULL AND heartbeat_at >= $3))) \
             LIMIT 500",
        ))
        .bind(alive_since.millis())
        .bind(terminal_before.millis())
        .bind(alive_since.millis())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(StrandedCall {
                    org_id: OrgId::from_db(col(r, "org_id")?),
                    call_id: CallId::from_db(col(r, "id")?),
                    instance_lost: col::<i64>(r, "lost")? == 1,
                })
            })
            .collect()
    }
}
