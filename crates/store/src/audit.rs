//! The organization's audit trail: who changed what, written in the same transaction as the
//! change.

use crate::rows::{col, ts};
use crate::{Access, Scope, Store, StoreError};
use sqlx::any::AnyRow;
use switchboard_domain::ids::{random_token, OrgId};
use switchboard_domain::team::{Actor, AuditEntry};
use switchboard_domain::Timestamp;

fn audit_from_row(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: col(row, "id")?,
        actor: col(row, "actor")?,
        action: col(row, "action")?,
        target: col(row, "target")?,
        detail: col(row, "detail")?,
        created_at: ts(row, "created_at")?,
    })
}

/// Writes one line of the audit trail inside `tx`.
pub(crate) async fn audit(
    tx: &mut crate::Tx,
    org: &OrgId,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: Option<&str>,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (id, org_id, actor, action, target, detail, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(format!("aud_{}", random_token(20)))
    .bind(org.as_str())
    .bind(actor.label.as_str())
    .bind(action)
    .bind(target)
    .bind(detail)
    .bind(now.millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// The organization's audit trail, newest first.
    pub async fn audit_log(&self, org: &OrgId, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let rows = sqlx::query(
            "SELECT id, actor, action, target, detail, created_at FROM audit_log \
             WHERE org_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        )
        .bind(org.as_str())
        .bind(i64::from(limit.clamp(1, 500)))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(audit_from_row).collect()
    }
}
