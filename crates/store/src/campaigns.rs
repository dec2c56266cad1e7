//! Campaigns in the database: the campaign and its recipient rows, imports with opt-outs and
//! duplicates skipped, state changes, the runner's pass (which places the due calls of one
//! running campaign under a lock on its row, so instances sharing the database take turns),
//! and the recipient's outcome when its call ends (in the call's finalizing transaction).

use crate::outbound::{insert_outbound, NewOutboundCall};
use crate::outbox::{emit, NewEvent};
use crate::rows::{col, json, json_opt, to_json, ts, ts_opt};
use crate::{Access, Scope, Store, StoreError};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use switchboard_domain::agent::VoicemailMode;
use switchboard_domain::campaign::{
    recipient_zone, CallingWindow, Campaign, CampaignCounts, CampaignRecipient, ImportReport,
    RecipientRow, RowIssue, RETRIED,
};
use switchboard_domain::entities::{Call, NewConversation, Page};
use switchboard_domain::ids::{AgentId, CampaignId, OrgId, RecipientId};
use switchboard_domain::values::{Channel, Direction};
use switchboard_domain::Timestamp;

const COLUMNS: &str = "id, name, agent_id, from_numbers, status, calling_window, timezone, \
    max_concurrent, max_attempts, retry_delay_seconds, start_at, voicemail, record, metadata, \
    started_at, completed_at, created_at, updated_at";

const RECIPIENT_COLUMNS: &str = "id, row_number, number, variables, timezone, status, reason, \
    attempts, next_attempt_at, call_id, outcome, updated_at";

/// A campaign to create (validated by the caller against the organization's numbers).
#[derive(Debug, Clone)]
pub struct NewCampaignRow {
    /// Name.
    pub name: String,
    /// The agent.
    pub agent_id: AgentId,
    /// The numbers to call from, in turn.
    pub from_numbers: Vec<String>,
    /// Calling window.
    pub window: CallingWindow,
    /// Default zone.
    pub timezone: String,
    /// Calls at once.
    pub max_concurrent: i64,
    /// Calls per recipient.
    pub max_attempts: i64,
    /// Seconds before a retry.
    pub retry_delay_seconds: i64,
    /// Not before.
    pub start_at: Option<Timestamp>,
    /// Voicemail behaviour.
    pub voicemail: Option<VoicemailMode>,
    /// Record calls.
    pub record: Option<bool>,
    /// Added to the calls' metadata.
    pub metadata: Option<Value>,
    /// Now.
    pub now: Timestamp,
}

/// A refused change of state: a stable code and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// `campaign_state`, `invalid_rows`, `no_recipients`.
    pub code: &'static str,
    /// Human explanation.
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        code,
        message: message.into(),
    }
}

/// What to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignAction {
    /// Draft (or paused) to running.
    Start {
        /// Accept that unreadable rows are not called.
        skip_invalid_rows: bool,
    },
    /// Running to paused.
    Pause,
    /// Paused to running.
    Resume,
    /// Anything not finished to canceled.
    Cancel,
}

fn campaign_from_row(row: &sqlx::any::AnyRow) -> Result<Campaign, StoreError> {
    Ok(Campaign {
        id: col(row, "id")?,
        name: col(row, "name")?,
        agent_id: AgentId::from_db(col(row, "agent_id")?),
        from_numbers: json(row, "from_numbers")?,
        status: col(row, "status")?,
        window: json(row, "calling_window")?,
        timezone: col(row, "timezone")?,
        max_concurrent_calls: col(row, "max_concurrent")?,
        max_attempts: col(row, "max_attempts")?,
        retry_delay_seconds: col(row, "retry_delay_seconds")?,
        start_at: ts_opt(row, "start_at")?,
        voicemail: col::<Option<String>>(row, "voicemail")?
            .as_deref()
            .and_then(VoicemailMode::parse),
        record: col::<Option<i64>>(row, "record")?.map(|r| r != 0),
        metadata: json_opt(row, "metadata")?,
        counts: CampaignCounts::default(),
        started_at: ts_opt(row, "started_at")?,
        completed_at: ts_opt(row, "completed_at")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

fn recipient_from_row(row: &sqlx::any::AnyRow) -> Result<CampaignRecipient, StoreError> {
    Ok(CampaignRecipient {
        id: col(row, "id")?,
        row: col(row, "row_number")?,
        number: col(row, "number")?,
        variables: json(row, "variables")?,
        timezone: col(row, "timezone")?,
        status: col(row, "status")?,
        reason: col(row, "reason")?,
        attempts: col(row, "attempts")?,
        next_attempt_at: ts_opt(row, "next_attempt_at")?,
        call_id: col(row, "call_id")?,
        outcome: col(row, "outcome")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// The campaign with its counts, read inside a transaction (`lock`: `FOR UPDATE` or empty).
async fn fetch(
    tx: &mut crate::Tx,
    org: &OrgId,
    id: &str,
    lock: &str,
) -> Result<Option<Campaign>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM campaigns WHERE org_id = $1 AND id = $2{lock}"
    ))
    .bind(org.as_str())
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut c = campaign_from_row(&row)?;
    c.counts = counts(tx, org, id).await?;
    Ok(Some(c))
}

async fn counts(tx: &mut crate::Tx, org: &OrgId, id: &str) -> Result<CampaignCounts, StoreError> {
    let rows = sqlx::query(
        "SELECT status, outcome, COUNT(*) AS n FROM campaign_recipients \
         WHERE org_id = $1 AND campaign_id = $2 GROUP BY status, outcome",
    )
    .bind(org.as_str())
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    let mut c = CampaignCounts::default();
    for r in rows {
        let n: i64 = col(&r, "n")?;
        let status: String = col(&r, "status")?;
        c.total += n;
        match status.as_str() {
            "pending" => c.pending += n,
            "calling" => c.calling += n,
            "skipped" => c.skipped += n,
            "invalid" => c.invalid += n,
            "canceled" => c.canceled += n,
            _ => {
                c.done += n;
                let outcome: Option<String> = col(&r, "outcome")?;
                *c.outcomes
                    .entry(outcome.unwrap_or_else(|| "unknown".into()))
                    .or_insert(0) += n;
            }
        }
    }
    Ok(c)
}

fn event(kind: &'static str, c: &Campaign) -> NewEvent {
    NewEvent::new(kind, c.id.clone(), json!({ "campaign": c }))
}

impl Store {
    /// Creates a campaign in `draft`.
    pub async fn create_campaign(
        &self,
        org: &OrgId,
        input: NewCampaignRow,
    ) -> Result<Campaign, StoreError> {
        let id = CampaignId::generate();
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query(&format!(
            "INSERT INTO campaigns (org_id, {COLUMNS}) VALUES ($1, $2, $3, $4, $5, 'draft', $6, \
             $7, $8, $9, $10, $11, $12, $13, $14, NULL, NULL, $15, $15)"
        ))
        .bind(org.as_str())
        .bind(id.as_str())
        .bind(input.name.as_str())
        .bind(input.agent_id.as_str())
        .bind(to_json(&input.from_numbers)?)
        .bind(to_json(&input.window)?)
        .bind(input.timezone.as_str())
        .bind(input.max_concurrent)
        .bind(input.max_attempts)
        .bind(input.retry_delay_seconds)
        .bind(input.start_at.map(Timestamp::millis))
        .bind(input.voicemail.map(|v| v.as_str().to_owned()))
        .bind(input.record.map(i64::from))
        .bind(input.metadata.as_ref().map(to_json).transpose()?)
        .bind(input.now.millis())
        .execute(&mut *tx)
        .await?;
        let c = fetch(&mut tx, org, id.as_str(), "")
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(c)
    }

    /// One campaign with its counts.
    pub async fn get_campaign(&self, org: &OrgId, id: &str) -> Result<Campaign, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let c = fetch(&mut tx, org, id, "").await?;
        tx.commit().await?;
        c.ok_or(StoreError::NotFound)
    }

    /// Campaigns, newest first.
    pub async fn list_campaigns(
        &self,
        org: &OrgId,
        limit: Option<u32>,
        cursor: Option<&switchboard_domain::entities::Cursor>,
    ) -> Result<Page<Campaign>, StoreError> {
        let mut sql = crate::rows::Sql::new(&format!("SELECT {COLUMNS} FROM campaigns WHERE "));
        sql.push_arg("org_id = {}", org.to_string())?;
        let order = crate::rows::Newest {
            col: "created_at",
            key: |c: &Campaign| switchboard_domain::entities::Cursor {
                at: c.created_at.millis(),
                id: c.id.clone(),
            },
        };
        let mut page = self
            .list_newest(org, sql, order, limit, cursor, campaign_from_row)
            .await?;
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        for c in &mut page.data {
            c.counts = counts(&mut tx, org, &c.id).await?;
        }
        tx.commit().await?;
        Ok(page)
    }

    /// Adds recipients to a draft campaign: readable rows become `pending`, opted-out
    /// contacts and numbers already in the campaign are `skipped`, unreadable rows `invalid`
    /// (all kept, so the report can be read again). `Ok(Err)` when the campaign is not a draft.
    pub async fn add_recipients(
        &self,
        org: &OrgId,
        id: &str,
        rows: Vec<RecipientRow>,
        now: Timestamp,
    ) -> Result<Result<ImportReport, Refusal>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let Some(c) = fetch(&mut tx, org, id, self.for_update()).await? else {
            tx.commit().await?;
            return Err(StoreError::NotFound);
        };
        if c.status != "draft" {
            tx.commit().await?;
            return Ok(Err(refuse(
                "campaign_state",
                format!(
                    "recipients can only be added to a draft campaign (it is {})",
                    c.status
                ),
            )));
        }
        // Numbers already in the campaign, with their row, and the rows already used.
        let existing = sqlx::query(
            "SELECT number, row_number FROM campaign_recipients \
             WHERE org_id = $1 AND campaign_id = $2 AND status = 'pending'",
        )
        .bind(org.as_str())
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let mut seen: HashMap<String, i64> = HashMap::new();
        for r in &existing {
            seen.insert(col(r, "number")?, col(r, "row_number")?);
        }
        let offset: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(row_number), 0) FROM campaign_recipients \
             WHERE org_id = $1 AND campaign_id = $2",
        )
        .bind(org.as_str())
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let opted_out: std::collections::HashSet<String> =
            sqlx::query_scalar("SELECT number FROM contacts WHERE org_id = $1 AND opted_out = 1")
                .bind(org.as_str())
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        let mut report = ImportReport::default();
        for r in rows {
            let row = offset + r.row;
            let (number, variables, zone, status, reason) = match r.parsed {
                Err(why) => {
                    report.invalid.push(RowIssue {
                        row,
                        number: r.raw_number.clone(),
                        reason: why.clone(),
                    });
                    (r.raw_number, Map::new(), None, "invalid", Some(why))
                }
                Ok(p) => {
                    let number = p.number.to_string();
                    let issue = if opted_out.contains(&number) {
                        Some("opted_out".to_owned())
                    } else {
                        seen.get(&number)
                            .map(|first| format!("duplicate of row {first}"))
                    };
                    match issue {
                        Some(why) => {
                            report.skipped.push(RowIssue {
                                row,
                                number: number.clone(),
                                reason: why.clone(),
                            });
                            (number, p.variables, p.timezone, "skipped", Some(why))
                        }
                        None => {
                            seen.insert(number.clone(), row);
                            report.accepted += 1;
                            let zone = recipient_zone(p.timezone.as_deref(), &number, &c.timezone)
                                .to_owned();
                            if report.preview.len() < 5 {
                                report.preview.push(json!({"row": row, "number": number,
                                    "timezone": zone, "variables": p.variables}));
                            }
                            (number, p.variables, Some(zone), "pending", None)
                        }
                    }
                }
            };
            sqlx::query(
                "INSERT INTO campaign_recipients (id, org_id, campaign_id, row_number, number, \
                 variables, timezone, status, reason, attempts, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10)",
            )
            .bind(RecipientId::generate().as_str())
            .bind(org.as_str())
            .bind(id)
            .bind(row)
            .bind(number)
            .bind(to_json(&Value::Object(variables))?)
            .bind(zone)
            .bind(status)
            .bind(reason)
            .bind(now.millis())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE campaigns SET updated_at = $1 WHERE org_id = $2 AND id = $3")
            .bind(now.millis())
            .bind(org.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(report))
    }

    /// Recipients in row order (`after`: the last row of the previous page).
    pub async fn list_recipients(
        &self,
        org: &OrgId,
        id: &str,
        status: Option<&str>,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<CampaignRecipient>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let exists: Option<String> =
            sqlx::query_scalar("SELECT id FROM campaigns WHERE org_id = $1 AND id = $2")
                .bind(org.as_str())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            tx.commit().await?;
            return Err(StoreError::NotFound);
        }
        let rows = sqlx::query(&format!(
            "SELECT {RECIPIENT_COLUMNS} FROM campaign_recipients WHERE org_id = $1 \
             AND campaign_id = $2 AND ($3 = '' OR status = $3) AND row_number > $4 \
             ORDER BY row_number LIMIT $5"
        ))
        .bind(org.as_str())
        .bind(id)
        .bind(status.unwrap_or(""))
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(recipient_from_row).collect()
    }

    /// Starts, pauses, resumes or cancels a campaign. `campaign.started` is emitted the first
    /// time it runs; a canceled campaign's pending recipients become `canceled` (calls already
    /// placed go on).
    pub async fn change_campaign(
        &self,
        org: &OrgId,
        id: &str,
        action: CampaignAction,
        now: Timestamp,
    ) -> Result<Result<Campaign, Refusal>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let Some(c) = fetch(&mut tx, org, id, self.for_update()).await? else {
            tx.commit().await?;
            return Err(StoreError::NotFound);
        };
        let refused = |why: String| Ok(Err(refuse("campaign_state", why)));
        let next = match (action, c.status.as_str()) {
            (CampaignAction::Start { skip_invalid_rows }, "draft") => {
                if c.counts.invalid > 0 && !skip_invalid_rows {
                    tx.commit().await?;
                    return Ok(Err(refuse(
                        "invalid_rows",
                        format!(
                            "{} unreadable rows (GET .../recipients?status=invalid lists them): start with `skip_invalid_rows: true` to call the others",
                            c.counts.invalid
                        ),
                    )));
                }
                if c.counts.pending == 0 {
                    tx.commit().await?;
                    return Ok(Err(refuse(
                        "no_recipients",
                        "the campaign has nobody to call",
                    )));
                }
                "running"
            }
            (CampaignAction::Pause, "running") => "paused",
            (CampaignAction::Resume, "paused") => "running",
            (CampaignAction::Cancel, "draft" | "running" | "paused") => "canceled",
            (_, status) => {
                tx.commit().await?;
                return refused(format!(
                    "the campaign is {status}: that is not possible now"
                ));
            }
        };
        sqlx::query(
            "UPDATE campaigns SET status = $1, updated_at = $2, \
             started_at = CASE WHEN $3 = 'running' THEN COALESCE(started_at, $2) ELSE started_at END, \
             completed_at = CASE WHEN $4 = 'canceled' THEN $2 ELSE completed_at END \
             WHERE org_id = $5 AND id = $6",
        )
        .bind(next)
        .bind(now.millis())
        .bind(next)
        .bind(next)
        .bind(org.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if next == "canceled" {
            sqlx::query(
                "UPDATE campaign_recipients SET status = 'canceled', updated_at = $1 \
                 WHERE org_id = $2 AND campaign_id = $3 AND status = 'pending'",
            )
            .bind(now.millis())
            .bind(org.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let updated = fetch(&mut tx, org, id, "")
            .await?
            .ok_or(StoreError::NotFound)?;
        if next == "running" && c.started_at.is_none() {
            emit(&mut tx, org, &[event("campaign.started", &updated)], now).await?;
        }
        self.commit_events(tx).await?;
        Ok(Ok(updated))
    }

    /// Running campaigns of every organization whose start time has come (look-up scope:
    /// read only).
    pub async fn running_campaigns(
        &self,
        now: Timestamp,
    ) -> Result<Vec<(OrgId, String)>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let rows = sqlx::query(self.lookup(
            "SELECT * FROM sb_running_campaigns($1)",
            "SELECT org_id, id FROM campaigns WHERE status = 'running' \
             AND (start_at IS NULL OR start_at <= $1) ORDER BY created_at LIMIT 1000",
        ))
        .bind(now.millis())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| Ok((OrgId::from_db(col(r, "org_id")?), col(r, "id")?)))
            .collect()
    }

    /// One pass of the runner over a running campaign: places calls for due recipients whose
    /// window is open, up to the campaign's free slots, and completes the campaign when
    /// nobody is left. The campaign's row is locked for the pass, so instances sharing the
    /// database never place the same recipient twice nor exceed the cap together. Returns how
    /// many calls were placed.
    pub async fn campaign_pass(
        &self,
        org: &OrgId,
        id: &str,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let Some(c) = fetch(&mut tx, org, id, self.for_update()).await? else {
            tx.commit().await?;
            return Ok(0);
        };
        if c.status != "running" || c.start_at.is_some_and(|s| s > now) {
            tx.commit().await?;
            return Ok(0);
        }
        if c.counts.pending == 0 && c.counts.calling == 0 {
            sqlx::query(
                "UPDATE campaigns SET status = 'completed', completed_at = $1, updated_at = $1 \
                 WHERE org_id = $2 AND id = $3",
            )
            .bind(now.millis())
            .bind(org.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
            let done = fetch(&mut tx, org, id, "")
                .await?
                .ok_or(StoreError::NotFound)?;
            emit(&mut tx, org, &[event("campaign.completed", &done)], now).await?;
            self.commit_events(tx).await?;
            tracing::info!(org_id = %org, campaign_id = id, "campaign completed");
            return Ok(0);
        }
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM calls WHERE org_id = $1 AND campaign_id = $2 AND ended_at IS NULL",
        )
        .bind(org.as_str())
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let free = usize::try_from(c.max_concurrent_calls - open).unwrap_or(0);
        if free == 0 {
            tx.commit().await?;
            return Ok(0);
        }
        let due = sqlx::query(&format!(
            "SELECT {RECIPIENT_COLUMNS} FROM campaign_recipients WHERE org_id = $1 \
             AND campaign_id = $2 AND status = 'pending' \
             AND (next_attempt_at IS NULL OR next_attempt_at <= $3) \
             ORDER BY row_number LIMIT 1000"
        ))
        .bind(org.as_str())
        .bind(id)
        .bind(now.millis())
        .fetch_all(&mut *tx)
        .await?;
        let agent_records: Option<i64> =
            sqlx::query_scalar("SELECT record FROM agents WHERE org_id = $1 AND id = $2")
                .bind(org.as_str())
                .bind(c.agent_id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let record = c.record.unwrap_or(agent_records.unwrap_or(0) != 0);
        let mut placed = 0;
        for row in &due {
            if placed == free {
                break;
            }
            let r = recipient_from_row(row)?;
            let zone = r.timezone.clone().unwrap_or_else(|| c.timezone.clone());
            if !c.window.is_open(now, &zone) {
                continue;
            }
            let opted: Option<i64> = sqlx::query_scalar(
                "SELECT opted_out FROM contacts WHERE org_id = $1 AND number = $2",
            )
            .bind(org.as_str())
            .bind(r.number.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if opted == Some(1) {
                set_recipient(&mut tx, org, &r.id, "skipped", Some("opted_out"), None, now).await?;
                continue;
            }
            let pool = &c.from_numbers;
            let from = pool[usize::try_from(r.row + r.attempts).unwrap_or(0) % pool.len()].clone();
            let mut variables = json!({"contact_number": r.number, "our_number": from});
            if let Value::Object(extra) = &r.variables {
                for (k, v) in extra {
                    variables[k] = v.clone();
                }
            }
            let call = insert_outbound(
                &mut tx,
                org,
                NewOutboundCall {
                    conversation: NewConversation {
                        channel: Channel::Voice,
                        direction: Direction::Outbound,
                        contact_number: r.number.clone(),
                        our_number: Some(from.clone()),
                        agent_id: Some(c.agent_id.clone()),
                        variables,
                        started_at: now,
                    },
                    from_number: from,
                    to_number: r.number.clone(),
                    metadata: c.metadata.clone(),
                    dial_at: now,
                    idempotency: None,
                    voicemail_mode: c.voicemail.map(|v| v.as_str().to_owned()),
                    record,
                    campaign: Some((c.id.clone(), r.id.clone())),
                    now,
                },
            )
            .await?;
            sqlx::query(
                "UPDATE campaign_recipients SET status = 'calling', attempts = attempts + 1, \
                 call_id = $1, next_attempt_at = NULL, updated_at = $2 \
                 WHERE org_id = $3 AND id = $4",
            )
            .bind(call.id.as_str())
            .bind(now.millis())
            .bind(org.as_str())
            .bind(r.id.as_str())
            .execute(&mut *tx)
            .await?;
            placed += 1;
        }
        self.commit_events(tx).await?;
        if placed > 0 {
            tracing::info!(org_id = %org, campaign_id = id, placed, "campaign calls placed");
        }
        Ok(placed)
    }
}

async fn set_recipient(
    tx: &mut crate::Tx,
    org: &OrgId,
    id: &str,
    status: &str,
    reason: Option<&str>,
    next_attempt_at: Option<i64>,
    now: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE campaign_recipients SET status = $1, reason = COALESCE($2, reason), \
         next_attempt_at = $3, updated_at = $4 WHERE org_id = $5 AND id = $6",
    )
    .bind(status)
    .bind(reason)
    .bind(next_attempt_at)
    .bind(now.millis())
    .bind(org.as_str())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A campaign call ended (inside its finalizing transaction): the recipient is retried after
/// the campaign's delay when the outcome is one that is retried and attempts remain, else it
/// is done with that outcome.
pub(crate) async fn call_ended(
    tx: &mut crate::Tx,
    org: &OrgId,
    call: &Call,
    at: Timestamp,
) -> Result<(), StoreError> {
    let Some(campaign_id) = &call.campaign_id else {
        return Ok(());
    };
    let row = sqlx::query(
        "SELECT r.id, r.attempts, r.status, c.max_attempts, c.retry_delay_seconds, \
         c.status AS campaign_status FROM campaign_recipients r \
         JOIN campaigns c ON c.org_id = r.org_id AND c.id = r.campaign_id \
         WHERE r.org_id = $1 AND r.campaign_id = $2 AND r.call_id = $3",
    )
    .bind(org.as_str())
    .bind(campaign_id.as_str())
    .bind(call.id.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(()) };
    if col::<String>(&row, "status")? != "calling" {
        return Ok(());
    }
    let id: String = col(&row, "id")?;
    let outcome = call.disposition.clone().unwrap_or_else(|| "failed".into());
    let attempts: i64 = col(&row, "attempts")?;
    let retry = RETRIED.contains(&outcome.as_str())
        && attempts < col::<i64>(&row, "max_attempts")?
        && col::<String>(&row, "campaign_status")? != "canceled";
    let (status, next) = if retry {
        let delay = col::<i64>(&row, "retry_delay_seconds")? * 1000;
        ("pending", Some(at.millis() + delay))
    } else {
        ("done", None)
    };
    sqlx::query(
        "UPDATE campaign_recipients SET status = $1, outcome = $2, next_attempt_at = $3, \
         updated_at = $4 WHERE org_id = $5 AND id = $6",
    )
    .bind(status)
    .bind(outcome)
    .bind(next)
    .bind(at.millis())
    .bind(org.as_str())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
