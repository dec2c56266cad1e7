//! Bulk-written calls and text messages with chosen figures, for the analytics and export
//! tests and benchmarks (as a long-running organization's history would hold them).

use crate::rows::Sql;
use crate::{Access, Scope, Store, StoreError};
use switchboard_domain::ids::{random_token, AgentId, OrgId};
use switchboard_domain::Timestamp;

/// One call to write.
#[derive(Debug, Clone)]
pub struct SeedCall {
    /// Started.
    pub started_at: Timestamp,
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// The organization's number on the call.
    pub our_number: String,
    /// The other party.
    pub contact: String,
    /// Its agent.
    pub agent_id: Option<AgentId>,
    /// `None` for a call not over.
    pub disposition: Option<&'static str>,
    /// Seconds.
    pub duration_seconds: Option<i64>,
    /// The stored analysis.
    pub analysis: Option<serde_json::Value>,
    /// Per-turn latencies.
    pub turn_latencies_ms: Vec<i64>,
}

/// Writes `calls` (each with its voice conversation), 200 to a statement.
pub async fn seed_calls(store: &Store, org: &OrgId, calls: &[SeedCall]) -> Result<(), StoreError> {
    for chunk in calls.chunks(200) {
        let mut conv = Sql::new(
            "INSERT INTO conversations (id, org_id, channel, direction, contact_number, our_number, \
             agent_id, status, started_at, last_message_at, ended_at, variables) VALUES ",
        );
        let mut sql = Sql::new(
            "INSERT INTO calls (id, org_id, conversation_id, call_sid, direction, from_number, \
             to_number, agent_id, status, started_at, answered_at, ended_at, duration_seconds, \
             end_reason, disposition, analysis, turn_latencies_ms) VALUES ",
        );
        for (k, c) in chunk.iter().enumerate() {
            if k > 0 {
                conv.push(", ");
                sql.push(", ");
            }
            let tag = random_token(16);
            let conv_id = format!("cnv_{tag}");
            let at = c.started_at.millis();
            let ended = c
                .disposition
                .map(|_| at + c.duration_seconds.unwrap_or(0) * 1000);
            let (from, to) = if c.direction == "inbound" {
                (c.contact.clone(), c.our_number.clone())
            } else {
                (c.our_number.clone(), c.contact.clone())
            };
            let agent = c.agent_id.as_ref().map(|a| a.to_string());
            let vals = [
                conv.arg(conv_id.clone())?,
                conv.arg(org.to_string())?,
                conv.arg("voice".to_owned())?,
                conv.arg(c.direction.to_owned())?,
                conv.arg(c.contact.clone())?,
                conv.arg(c.our_number.clone())?,
                conv.arg(agent.clone())?,
                conv.arg(if ended.is_some() { "closed" } else { "active" }.to_owned())?,
                conv.arg(at)?,
                conv.arg(at)?,
                conv.arg(ended)?,
                conv.arg("{}".to_owned())?,
            ];
            conv.push(&format!("({})", vals.join(", ")));
            let status = match c.disposition {
                None => "in-progress",
                Some("completed" | "voicemail") => "completed",
                Some(d) => d,
            };
            let vals = [
                sql.arg(format!("call_{tag}"))?,
                sql.arg(org.to_string())?,
                sql.arg(conv_id)?,
                sql.arg(format!("CA{}", random_token(32)))?,
                sql.arg(c.direction.to_owned())?,
                sql.arg(from)?,
                sql.arg(to)?,
                sql.arg(agent)?,
                sql.arg(status.to_owned())?,
                sql.arg(at)?,
                sql.arg(Some(at))?,
                sql.arg(ended)?,
                sql.arg(c.duration_seconds)?,
                sql.arg(c.disposition.map(|_| "caller_hung_up".to_owned()))?,
                sql.arg(c.disposition.map(str::to_owned))?,
                sql.arg(c.analysis.as_ref().map(|a| a.to_string()))?,
                sql.arg(
                    serde_json::to_string(&c.turn_latencies_ms).unwrap_or_else(|_| "[]".into()),
                )?,
            ];
            sql.push(&format!("({})", vals.join(", ")));
        }
        let mut tx = store.begin(Scope::Org(org), Access::Write).await?;
        conv.query().execute(&mut *tx).await?;
        sql.query().execute(&mut *tx).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Writes a closed text conversation on `our_number` with `received` messages from the
/// contact and `sent` answers, all at `at`.
pub async fn seed_texts(
    store: &Store,
    org: &OrgId,
    our_number: &str,
    agent: Option<&AgentId>,
    at: Timestamp,
    received: usize,
    sent: usize,
) -> Result<(), StoreError> {
    let conv_id = format!("cnv_{}", random_token(16));
    let mut tx = store.begin(Scope::Org(org), Access::Write).await?;
    sqlx::query(
        "INSERT INTO conversations (id, org_id, channel, direction, contact_number, our_number, \
         agent_id, status, started_at, last_message_at, ended_at, variables) \
         VALUES ($1, $2, 'sms', 'inbound', '+15557770000', $3, $4, 'closed', $5, $6, $7, '{}')",
    )
    .bind(&conv_id)
    .bind(org.as_str())
    .bind(our_number)
    .bind(agent.map(|a| a.to_string()))
    .bind(at.millis())
    .bind(at.millis())
    .bind(at.millis())
    .execute(&mut *tx)
    .await?;
    for i in 0..received + sent {
        let role = if i < received { "user" } else { "assistant" };
        sqlx::query(
            "INSERT INTO messages (id, org_id, conversation_id, role, kind, content, created_at) \
             VALUES ($1, $2, $3, $4, 'message', '{\"text\":\"hi\"}', $5)",
        )
        .bind(format!("msg_{}", random_token(16)))
        .bind(org.as_str())
        .bind(&conv_id)
        .bind(role)
        .bind(at.millis())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Refreshes the planner's statistics after a bulk load, as autovacuum (PostgreSQL) or a
/// periodic ANALYZE would have them for a history that grew this size.
pub async fn analyze(store: &Store, org: &OrgId) -> Result<(), StoreError> {
    let mut tx = store.begin(Scope::Org(org), Access::Write).await?;
    sqlx::query("ANALYZE").execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}
