//! The alerts e-mailed to an organization's admins: when each was last sent, claimed so that
//! one firing again and again, on any number of instances, is sent once per interval.

use crate::{Access, Scope, Store, StoreError};
use switchboard_domain::ids::OrgId;
use switchboard_domain::Timestamp;

impl Store {
    /// Claims the right to send alert `key` of `org` now: `true` when it was never sent, or
    /// last sent `interval_ms` or more before `now` (and records `now`); `false` otherwise.
    pub async fn claim_alert(
        &self,
        org: &OrgId,
        key: &str,
        now: Timestamp,
        interval_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let done = sqlx::query(
            "INSERT INTO alert_notices (org_id, key, sent_at) VALUES ($1, $2, $3) \
             ON CONFLICT (org_id, key) DO UPDATE SET sent_at = excluded.sent_at \
             WHERE alert_notices.sent_at <= $4",
        )
        .bind(org.as_str())
        .bind(key)
        .bind(now.millis())
        .bind(now.millis().saturating_sub(interval_ms))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}
