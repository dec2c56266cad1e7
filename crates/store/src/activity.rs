//! Counts of calls by direction and disposition over a span, for the assistant's questions
//! about activity ("how many calls did we miss this week?").

use crate::rows::col;
use crate::{Scope, Store, StoreError};
use switchboard_domain::ids::OrgId;
use switchboard_domain::Timestamp;

/// Calls of one direction and disposition.
#[derive(Debug, Clone, PartialEq)]
pub struct CallCount {
    /// `inbound` or `outbound`.
    pub direction: String,
    /// `completed`, `no_answer`, `busy`, `failed`, `canceled`, `voicemail`...; `None` while
    /// the call is not over.
    pub disposition: Option<String>,
    /// How many.
    pub calls: i64,
}

impl Store {
    /// Calls started in `[from, to)`, counted by direction and disposition.
    pub async fn call_counts(
        &self,
        org: &OrgId,
        (from, to): (Timestamp, Timestamp),
    ) -> Result<Vec<CallCount>, StoreError> {
        let mut r = self.reader(Scope::Org(org)).await?;
        let rows = sqlx::query(
            "SELECT direction, disposition, COUNT(*) AS n FROM calls \
             WHERE org_id = $1 AND started_at >= $2 AND started_at < $3 \
             GROUP BY direction, disposition ORDER BY direction, disposition",
        )
        .bind(org.as_str())
        .bind(from.millis())
        .bind(to.millis())
        .fetch_all(r.conn())
        .await?;
        r.finish().await?;
        rows.iter()
            .map(|row| {
                Ok(CallCount {
                    direction: col(row, "direction")?,
                    disposition: col(row, "disposition")?,
                    calls: col(row, "n")?,
                })
            })
            .collect()
    }
}
