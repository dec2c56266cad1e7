//! Analytics and exports: a range of days of calls and messages folded into figures as the
//! rows stream past (memory stays bounded whatever the range), and the rows of a range read
//! in pages, oldest first, for CSV exports that never hold more than one page.

use crate::appointments::CalendarEntry;
use crate::conversations::{call_from_row, conversation_from_row, CALL_COLUMNS, CONV_COLUMNS};
use crate::rows::{col, Sql};
use crate::{Access, Scope, Store, StoreError};
use futures_util::TryStreamExt;
use serde::Deserialize;
use switchboard_domain::analytics::{Analytics, Figures};
use switchboard_domain::entities::{Call, Conversation};
use switchboard_domain::ids::{AgentId, OrgId};
use switchboard_domain::Timestamp;

/// What an analytics query covers.
#[derive(Debug, Clone)]
pub struct AnalyticsQuery {
    /// The start of each day of the range, then the end of the last day: one more instant
    /// than there are days, increasing (days in the organization's time zone, so a day may
    /// be 23 or 25 hours long).
    pub bounds: Vec<Timestamp>,
    /// Only this agent's calls and conversations.
    pub agent: Option<AgentId>,
    /// Only calls and conversations on this number of the organization.
    pub number: Option<String>,
}

/// The part of a stored analysis the success rate needs (the rest is skipped unread).
#[derive(Deserialize)]
struct Judged {
    source: Option<String>,
    outcome: Option<Outcome>,
}

#[derive(Deserialize)]
struct Outcome {
    success: Option<bool>,
}

/// Where a call's or message's time falls among the day starts.
fn day_of(bounds: &[Timestamp], at: i64) -> Option<usize> {
    let i = bounds.partition_point(|b| b.millis() <= at);
    (i >= 1 && i < bounds.len()).then(|| i - 1)
}

/// A keyset position in an export: the last row's time and id.
pub type ExportAfter = Option<(i64, String)>;

impl Store {
    /// The figures of a range: per day, per agent, per number. Calls are counted on the day
    /// they started; text messages (not voice transcripts) on the day they were written.
    pub async fn analytics(
        &self,
        org: &OrgId,
        q: &AnalyticsQuery,
    ) -> Result<Analytics, StoreError> {
        let (Some(first), Some(last)) = (q.bounds.first(), q.bounds.last()) else {
            return Ok(Analytics::default());
        };
        let days = q.bounds.len().saturating_sub(1);
        let mut out = Analytics {
            days: vec![Figures::default(); days],
            ..Analytics::default()
        };
        let mut sql = Sql::new(
            "SELECT started_at, disposition, duration_seconds, agent_id, direction, from_number, \
             to_number, analysis, turn_latencies_ms FROM calls",
        );
        sql.push_arg(" WHERE org_id = {}", org.to_string())?;
        sql.push_arg(" AND started_at >= {}", first.millis())?;
        sql.push_arg(" AND started_at < {}", last.millis())?;
        if let Some(a) = &q.agent {
            sql.push_arg(" AND agent_id = {}", a.to_string())?;
        }
        if let Some(n) = &q.number {
            let a = sql.arg(n.clone())?;
            let b = sql.arg(n.clone())?;
            sql.push(&format!(
                " AND ((direction = 'inbound' AND to_number = {a}) OR (direction <> 'inbound' AND from_number = {b}))"
            ));
        }
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        {
            let mut rows = sql.query().fetch(&mut *tx);
            while let Some(r) = rows.try_next().await? {
                let at: i64 = col(&r, "started_at")?;
                let Some(d) = day_of(&q.bounds, at) else {
                    continue;
                };
                let mut f = Figures {
                    calls: 1,
                    ..Figures::default()
                };
                let disposition: Option<String> = col(&r, "disposition")?;
                f.by_disposition
                    .insert(disposition.unwrap_or_else(|| "in-progress".into()), 1);
                f.seconds = col::<Option<i64>>(&r, "duration_seconds")?.unwrap_or(0);
                let analysis: Option<String> = col(&r, "analysis")?;
                if let Some(j) = analysis.and_then(|s| serde_json::from_str::<Judged>(&s).ok()) {
                    // A call where the other party never spoke is not judged.
                    let silent = j.source.as_deref() == Some("no_transcript");
                    if let (Some(ok), false) = (j.outcome.and_then(|o| o.success), silent) {
                        f.analysed = 1;
                        f.successes = i64::from(ok);
                    }
                }
                let lat: Option<String> = col(&r, "turn_latencies_ms")?;
                if let Some(v) = lat.and_then(|s| serde_json::from_str::<Vec<i64>>(&s).ok()) {
                    for ms in v {
                        f.latency.add(ms);
                    }
                }
                let direction: String = col(&r, "direction")?;
                let number: String = if direction == "inbound" {
                    col(&r, "to_number")?
                } else {
                    col(&r, "from_number")?
                };
                let agent: Option<String> = col(&r, "agent_id")?;
                out.agents.entry(agent).or_default().merge(&f);
                out.numbers.entry(number).or_default().merge(&f);
                if let Some(day) = out.days.get_mut(d) {
                    day.merge(&f);
                }
            }
        }
        let mut sql = Sql::new(
            "SELECT m.created_at, m.role, c.agent_id, c.our_number FROM messages m \
             JOIN conversations c ON c.id = m.conversation_id",
        );
        sql.push_arg(" WHERE m.org_id = {}", org.to_string())?;
        sql.push_arg(" AND m.created_at >= {}", first.millis())?;
        sql.push_arg(" AND m.created_at < {}", last.millis())?;
        sql.push(" AND m.kind = 'message' AND c.channel <> 'voice'");
        if let Some(a) = &q.agent {
            sql.push_arg(" AND c.agent_id = {}", a.to_string())?;
        }
        if let Some(n) = &q.number {
            sql.push_arg(" AND c.our_number = {}", n.clone())?;
        }
        {
            let mut rows = sql.query().fetch(&mut *tx);
            while let Some(r) = rows.try_next().await? {
                let at: i64 = col(&r, "created_at")?;
                let Some(d) = day_of(&q.bounds, at) else {
                    continue;
                };
                let role: String = col(&r, "role")?;
                let inbound = role == "user";
                let bump = |f: &mut Figures| {
                    if inbound {
                        f.messages_in += 1;
                    } else {
                        f.messages_out += 1;
                    }
                };
                if let Some(day) = out.days.get_mut(d) {
                    bump(day);
                }
                let agent: Option<String> = col(&r, "agent_id")?;
                bump(out.agents.entry(agent).or_default());
                if let Some(n) = col::<Option<String>>(&r, "our_number")? {
                    bump(out.numbers.entry(n).or_default());
                }
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// One page of the calls started in `[from, to)`, oldest first, after `after`.
    pub async fn export_calls(
        &self,
        org: &OrgId,
        range: (Timestamp, Timestamp),
        after: &ExportAfter,
        limit: i64,
    ) -> Result<Vec<Call>, StoreError> {
        let mut sql = Sql::new(&format!("SELECT {CALL_COLUMNS} FROM calls"));
        page_after(&mut sql, org, "", "started_at", range, after)?;
        sql.push_arg(" ORDER BY started_at, id LIMIT {}", limit)?;
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let rows = sql.query().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows.iter().map(call_from_row).collect()
    }

    /// One page of the conversations started in `[from, to)`, oldest first, after `after`,
    /// with how many messages each holds.
    pub async fn export_conversations(
        &self,
        org: &OrgId,
        range: (Timestamp, Timestamp),
        after: &ExportAfter,
        limit: i64,
    ) -> Result<Vec<(Conversation, i64)>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {CONV_COLUMNS}, (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = \
             conversations.id AND m.kind = 'message') AS message_count FROM conversations"
        ));
        page_after(&mut sql, org, "", "started_at", range, after)?;
        sql.push_arg(" ORDER BY started_at, id LIMIT {}", limit)?;
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let rows = sql.query().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| Ok((conversation_from_row(r)?, col(r, "message_count")?)))
            .collect()
    }

    /// One page of the appointments starting in `[from, to)`, canceled ones too, earliest
    /// first, after `after`, with their contact.
    pub async fn export_appointments(
        &self,
        org: &OrgId,
        range: (Timestamp, Timestamp),
        after: &ExportAfter,
        limit: i64,
    ) -> Result<Vec<CalendarEntry>, StoreError> {
        self.appointments_page(org, range, after, limit).await
    }
}

/// `WHERE org_id = .. AND at_col in range AND (at_col, id) > after`, the columns of the
/// table aliased `t` (`""` for none).
pub(crate) fn page_after(
    sql: &mut Sql,
    org: &OrgId,
    t: &str,
    at_col: &str,
    range: (Timestamp, Timestamp),
    after: &ExportAfter,
) -> Result<(), StoreError> {
    let t = if t.is_empty() {
        String::new()
    } else {
        format!("{t}.")
    };
    let at_col = &format!("{t}{at_col}");
    sql.push_arg(&format!(" WHERE {t}org_id = {{}}"), org.to_string())?;
    sql.push_arg(&format!(" AND {at_col} >= {{}}"), range.0.millis())?;
    sql.push_arg(&format!(" AND {at_col} < {{}}"), range.1.millis())?;
    if let Some((at, id)) = after {
        // The plain bound lets the index seek to the page's start: without it, each page
        // would scan every row before the cursor again (an export of a million rows went
        // quadratic).
        let from = sql.arg(*at)?;
        let a = sql.arg(*at)?;
        let b = sql.arg(*at)?;
        let i = sql.arg(id.clone())?;
        sql.push(&format!(
            " AND {at_col} >= {from} AND ({at_col} > {a} OR ({at_col} = {b} AND {t}id > {i}))"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_fall_in_their_day_and_outside_the_range_in_none() {
        let b: Vec<Timestamp> = [0, 100, 190, 300].map(Timestamp::from_millis).to_vec();
        assert_eq!(day_of(&b, -1), None);
        assert_eq!(day_of(&b, 0), Some(0));
        assert_eq!(day_of(&b, 99), Some(0));
        assert_eq!(day_of(&b, 100), Some(1));
        assert_eq!(day_of(&b, 299), Some(2));
        assert_eq!(day_of(&b, 300), None);
    }
}
