//! The transactional outbox. Domain events are written by the transaction that makes the
//! change they report, numbered per organization, and fanned out to the organization's
//! webhook endpoints in that same transaction: an event exists exactly when its change
//! committed, and a delivery row exists for every endpoint that wanted it at that moment.
//!
//! Ordering: the per-organization counter row is locked by the writing transaction until it
//! commits, so sequence order is commit order within an organization. A delivery is only
//! claimed when no earlier delivery of the same (endpoint, subject) is still pending or in
//! flight, so one conversation's events reach an endpoint in order, and `call.analyzed`
//! (written after the call was finalized) never overtakes `call.ended`.

use crate::rows::{col, fetch_scoped, flag, json, json_opt, to_json, ts, ts_opt, Newest, Sql};
use crate::secrets::{Owner, WEBHOOK_SECRET};
use crate::{Access, Backend, Expect, Scope, Store, StoreError};
use serde_json::{json, Value};
use switchboard_domain::entities::{Call, Conversation, Cursor, Message, Page};
use switchboard_domain::ids::{DeliveryId, EventId, OrgId, WebhookEndpointId};
use switchboard_domain::webhooks::{
    NewWebhookEndpoint, OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint,
    WebhookEndpointUpdate, EVENT_VERSION,
};
use switchboard_domain::{Secret, Timestamp};

/// An event to write with a state change.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// `call.ended`, `message.received`, ...
    pub kind: &'static str,
    /// The call or conversation it is about; events with the same subject are delivered to
    /// an endpoint in order.
    pub subject_id: String,
    /// The `data` member of the payload.
    pub data: Value,
}

impl NewEvent {
    /// An event about `subject`.
    pub fn new(kind: &'static str, subject: impl Into<String>, data: Value) -> NewEvent {
        NewEvent {
            kind,
            subject_id: subject.into(),
            data,
        }
    }
}

/// Writes `events` inside the caller's transaction: numbers them, stores their payloads and
/// queues one delivery per interested, enabled endpoint. Commit with
/// [`Store::commit_events`] so the local worker wakes up.
pub(crate) async fn emit(
    tx: &mut crate::Tx,
    org: &OrgId,
    events: &[NewEvent],
    now: Timestamp,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
    // The counter and the endpoints in one round trip where the engine allows it.
    let (seq_rows, endpoint_rows) = tx
        .run_two(
            Sql::new(
                "INSERT INTO org_event_seq (org_id, last_seq) VALUES ($1, $2) \
                 ON CONFLICT (org_id) DO UPDATE SET last_seq = org_event_seq.last_seq + $3 \
                 RETURNING last_seq",
            )
            .bind(org.to_string())
            .bind(n)
            .bind(n),
            Sql::new(
                "SELECT id, event_types FROM webhook_endpoints WHERE org_id = $1 AND enabled = 1",
            )
            .bind(org.to_string()),
        )
        .await?;
    let last: i64 = match seq_rows.first() {
        Some(r) => col(r, "last_seq")?,
        None => return Err(StoreError::Corrupt("event counter returned no row".into())),
    };
    let first = last - n + 1;
    let endpoints = endpoint_rows
        .iter()
        .map(|r| {
            Ok((
                col::<String>(r, "id")?,
                json_opt::<Vec<String>>(r, "event_types")?,
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;

    let mut ev_sql =
        Sql::new("INSERT INTO events (id, org_id, org_seq, type, payload, created_at) VALUES ");
    let mut dl_sql = Sql::new(
        "INSERT INTO webhook_deliveries (id, org_id, endpoint_id, event_id, event_type, org_seq, \
         order_key, subject_id, status, attempts, next_attempt_at, created_at, updated_at) VALUES ",
    );
    let mut deliveries = 0;
    for (i, e) in events.iter().enumerate() {
        let seq = first + i64::try_from(i).unwrap_or(0);
        let id = EventId::generate();
        let payload = json!({
            "id": id,
            "type": e.kind,
            "version": EVENT_VERSION,
            "org_id": org,
            "sequence": seq,
            "timestamp": now,
            "data": e.data,
        });
        if i > 0 {
            ev_sql.push(", ");
        }
        let vals = [
            ev_sql.arg(id.to_string())?,
            ev_sql.arg(org.to_string())?,
            ev_sql.arg(seq)?,
            ev_sql.arg(e.kind.to_owned())?,
            ev_sql.arg(to_json(&payload)?)?,
            ev_sql.arg(now.millis())?,
        ];
        ev_sql.push(&format!("({})", vals.join(", ")));
        for (ep, types) in &endpoints {
            if types
                .as_ref()
                .is_some_and(|t| !t.iter().any(|t| t == e.kind))
            {
                continue;
            }
            if deliveries > 0 {
                dl_sql.push(", ");
            }
            deliveries += 1;
            let vals = [
                dl_sql.arg(DeliveryId::generate().to_string())?,
                dl_sql.arg(org.to_string())?,
                dl_sql.arg(ep.clone())?,
                dl_sql.arg(id.to_string())?,
                dl_sql.arg(e.kind.to_owned())?,
                dl_sql.arg(seq)?,
                dl_sql.arg(format!("{ep}:{}", e.subject_id))?,
                dl_sql.arg(e.subject_id.clone())?,
                dl_sql.arg(now.millis())?,
                dl_sql.arg(now.millis())?,
                dl_sql.arg(now.millis())?,
            ];
            dl_sql.push(&format!(
                "({}, {}, {}, {}, {}, {}, {}, {}, 'pending', 0, {}, {}, {})",
                vals[0],
                vals[1],
                vals[2],
                vals[3],
                vals[4],
                vals[5],
                vals[6],
                vals[7],
                vals[8],
                vals[9],
                vals[10]
            ));
        }
    }
    // Nothing reads events or deliveries back in the writing transaction: both go out with
    // the flush before commit.
    tx.defer(ev_sql, Expect::Any).await?;
    if deliveries > 0 {
        tx.defer(dl_sql, Expect::Any).await?;
    }
    Ok(())
}

/// A delivery the worker claimed.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// Delivery.
    pub id: DeliveryId,
    /// Its organization.
    pub org_id: OrgId,
}

/// Everything needed to make one attempt.
#[derive(Debug, Clone)]
pub struct DeliveryTarget {
    /// Delivery.
    pub id: DeliveryId,
    /// The `webhook-id`.
    pub event_id: EventId,
    /// Event type.
    pub event_type: String,
    /// The exact body to send.
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// Endpoint.
    pub endpoint_id: WebhookEndpointId,
    /// Endpoint URL.
    pub url: String,
    /// Whether the endpoint is enabled.
    pub enabled: bool,
    /// Secrets to sign with: the current one, and the previous one during a rotation.
    pub secrets: Vec<Secret>,
    /// Since when the endpoint has been failing.
    pub failing_since: Option<Timestamp>,
}

/// What one attempt observed.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// When it started.
    pub at: Timestamp,
    /// The receiver's status code.
    pub status_code: Option<i64>,
    /// Duration.
    pub latency_ms: i64,
    /// Start of the response body.
    pub excerpt: Option<String>,
    /// Transport error or refusal.
    pub error: Option<String>,
}

/// What becomes of the delivery after an attempt.
#[derive(Debug, Clone)]
pub enum AttemptOutcome {
    /// 2xx.
    Succeeded,
    /// Try again at this time.
    Retry(Timestamp),
    /// Give up; `disable` also disables the endpoint with that reason.
    Failed {
        /// Disable the endpoint with this reason.
        disable: Option<String>,
    },
}

/// Filters for listing deliveries.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// One endpoint.
    pub endpoint_id: Option<WebhookEndpointId>,
    /// One call or conversation.
    pub subject_id: Option<String>,
    /// One status.
    pub status: Option<String>,
}

const ENDPOINT_COLUMNS: &str = "id, url, description, event_types, enabled, disabled_reason, \
    failing_since, created_at, updated_at";

fn endpoint_from_row(r: &sqlx::any::AnyRow) -> Result<WebhookEndpoint, StoreError> {
    Ok(WebhookEndpoint {
        id: WebhookEndpointId::from_db(col(r, "id")?),
        url: col(r, "url")?,
        description: col(r, "description")?,
        event_types: json_opt(r, "event_types")?,
        enabled: flag(r, "enabled")?,
        disabled_reason: col(r, "disabled_reason")?,
        failing_since: ts_opt(r, "failing_since")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

const DELIVERY_COLUMNS: &str = "id, endpoint_id, event_id, event_type, org_seq, subject_id, \
    status, attempts, next_attempt_at, last_status_code, last_error, delivered_at, created_at";

fn delivery_from_row(r: &sqlx::any::AnyRow) -> Result<WebhookDelivery, StoreError> {
    let status: String = col(r, "status")?;
    let next = ts(r, "next_attempt_at")?;
    Ok(WebhookDelivery {
        id: DeliveryId::from_db(col(r, "id")?),
        endpoint_id: WebhookEndpointId::from_db(col(r, "endpoint_id")?),
        event_id: EventId::from_db(col(r, "event_id")?),
        event_type: col(r, "event_type")?,
        sequence: col(r, "org_seq")?,
        subject_id: col(r, "subject_id")?,
        next_attempt_at: (status == "pending").then_some(next),
        status,
        attempts: col(r, "attempts")?,
        last_status_code: col(r, "last_status_code")?,
        last_error: col(r, "last_error")?,
        delivered_at: ts_opt(r, "delivered_at")?,
        created_at: ts(r, "created_at")?,
    })
}

impl Store {
    /// Creates an endpoint with its signing secret (`whsec_...`, generated by the caller).
    pub async fn create_webhook_endpoint(
        &self,
        org: &OrgId,
        input: &NewWebhookEndpoint,
        secret: &str,
        now: Timestamp,
    ) -> Result<WebhookEndpoint, StoreError> {
        let id = WebhookEndpointId::generate();
        let secret = self.seal(Owner::Org(org), WEBHOOK_SECRET, secret)?;
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        crate::accounts::ensure_org_exists(&mut tx, org).await?;
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, org_id, url, description, event_types, enabled, \
             secret, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id.as_str())
        .bind(org.as_str())
        .bind(input.url.as_str())
        .bind(input.description.clone())
        .bind(input.event_types.as_ref().map(to_json).transpose()?)
        .bind(i64::from(input.enabled.unwrap_or(true)))
        .bind(&secret)
        .bind(now.millis())
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        let ep = fetch_endpoint(&mut tx, org, &id, "").await?;
        tx.commit().await?;
        Ok(ep)
    }

    /// One endpoint.
    pub async fn get_webhook_endpoint(
        &self,
        org: &OrgId,
        id: &WebhookEndpointId,
    ) -> Result<WebhookEndpoint, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let ep = fetch_endpoint(&mut tx, org, id, "").await?;
        tx.commit().await?;
        Ok(ep)
    }

    /// The organization's endpoints, newest first.
    pub async fn list_webhook_endpoints(
        &self,
        org: &OrgId,
        limit: Option<u32>,
        cursor: Option<&Cursor>,
    ) -> Result<Page<WebhookEndpoint>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE "
        ));
        sql.push_arg("org_id = {}", org.to_string())?;
        let order = Newest {
            col: "created_at",
            key: |e: &WebhookEndpoint| Cursor {
                at: e.created_at.millis(),
                id: e.id.to_string(),
            },
        };
        self.list_newest(org, sql, order, limit, cursor, endpoint_from_row)
            .await
    }

    /// Applies a partial update. Enabling clears the platform's disabled reason and the
    /// failure streak.
    pub async fn update_webhook_endpoint(
        &self,
        org: &OrgId,
        id: &WebhookEndpointId,
        update: &WebhookEndpointUpdate,
        now: Timestamp,
    ) -> Result<WebhookEndpoint, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let mut ep = fetch_endpoint(&mut tx, org, id, self.for_update()).await?;
        if let Some(u) = &update.url {
            ep.url = u.clone();
        }
        if let Some(t) = &update.event_types {
            ep.event_types = t.clone();
        }
        if let Some(d) = &update.description {
            ep.description = d.clone();
        }
        let mut reset = false;
        if let Some(e) = update.enabled {
            reset = e && !ep.enabled;
            ep.enabled = e;
        }
        sqlx::query(
            "UPDATE webhook_endpoints SET url = $1, event_types = $2, description = $3, \
             enabled = $4, updated_at = $5, \
             disabled_reason = CASE WHEN $6 = 1 THEN NULL ELSE disabled_reason END, \
             failing_since = CASE WHEN $7 = 1 THEN NULL ELSE failing_since END \
             WHERE org_id = $8 AND id = $9",
        )
        .bind(ep.url.clone())
        .bind(ep.event_types.as_ref().map(to_json).transpose()?)
        .bind(ep.description.clone())
        .bind(i64::from(ep.enabled))
        .bind(now.millis())
        .bind(i64::from(reset))
        .bind(i64::from(reset))
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        let ep = fetch_endpoint(&mut tx, org, id, "").await?;
        tx.commit().await?;
        Ok(ep)
    }

    /// Deletes an endpoint with its deliveries and attempts.
    pub async fn delete_webhook_endpoint(
        &self,
        org: &OrgId,
        id: &WebhookEndpointId,
    ) -> Result<(), StoreError> {
        self.delete_scoped(org, "webhook_endpoints", id.as_str())
            .await
    }

    /// Replaces the signing secret. The previous one keeps signing until `previous_until`,
    /// so receivers can switch without missing a delivery.
    pub async fn rotate_webhook_secret(
        &self,
        org: &OrgId,
        id: &WebhookEndpointId,
        secret: &str,
        previous_until: Timestamp,
        now: Timestamp,
    ) -> Result<WebhookEndpoint, StoreError> {
        // The current secret moves to `previous_secret` as it is: both columns are sealed
        // to the same owner and kind.
        let secret = self.seal(Owner::Org(org), WEBHOOK_SECRET, secret)?;
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET previous_secret = secret, \
             previous_secret_expires_at = $1, secret = $2, updated_at = $3 \
             WHERE org_id = $4 AND id = $5",
        )
        .bind(previous_until.millis())
        .bind(&secret)
        .bind(now.millis())
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let ep = fetch_endpoint(&mut tx, org, id, "").await?;
        tx.commit().await?;
        Ok(ep)
    }

    /// Deliveries, newest first.
    pub async fn list_webhook_deliveries(
        &self,
        org: &OrgId,
        filter: &DeliveryFilter,
        limit: Option<u32>,
        cursor: Option<&Cursor>,
    ) -> Result<Page<WebhookDelivery>, StoreError> {
        let mut sql = Sql::new(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE "
        ));
        sql.push_arg("org_id = {}", org.to_string())?;
        if let Some(e) = &filter.endpoint_id {
            sql.push_arg(" AND endpoint_id = {}", e.to_string())?;
        }
        if let Some(s) = &filter.subject_id {
            sql.push_arg(" AND subject_id = {}", s.clone())?;
        }
        if let Some(s) = &filter.status {
            sql.push_arg(" AND status = {}", s.clone())?;
        }
        let order = Newest {
            col: "created_at",
            key: |d: &WebhookDelivery| Cursor {
                at: d.created_at.millis(),
                id: d.id.to_string(),
            },
        };
        self.list_newest(org, sql, order, limit, cursor, delivery_from_row)
            .await
    }

    /// One delivery with its attempts, oldest attempt first.
    pub async fn get_webhook_delivery(
        &self,
        org: &OrgId,
        id: &DeliveryId,
    ) -> Result<(WebhookDelivery, Vec<WebhookAttempt>), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let d = fetch_delivery(&mut tx, org, id).await?;
        let rows = sqlx::query(
            "SELECT attempted_at, status_code, latency_ms, response_excerpt, error \
             FROM webhook_attempts WHERE org_id = $1 AND delivery_id = $2 \
             ORDER BY attempted_at, id",
        )
        .bind(org.as_str())
        .bind(id.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let attempts = rows
            .iter()
            .map(|r| {
                Ok(WebhookAttempt {
                    attempted_at: ts(r, "attempted_at")?,
                    status_code: col(r, "status_code")?,
                    latency_ms: col(r, "latency_ms")?,
                    response_excerpt: col(r, "response_excerpt")?,
                    error: col(r, "error")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((d, attempts))
    }

    /// Queues a finished delivery again (same `webhook-id`), or brings a waiting one forward.
    /// A delivery in flight cannot be re-sent (`Conflict`).
    pub async fn resend_webhook_delivery(
        &self,
        org: &OrgId,
        id: &DeliveryId,
        now: Timestamp,
    ) -> Result<WebhookDelivery, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, \
             updated_at = $2, lease_owner = NULL WHERE org_id = $3 AND id = $4 \
             AND status <> 'delivering'",
        )
        .bind(now.millis())
        .bind(now.millis())
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        let d = fetch_delivery(&mut tx, org, id).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(
                "the delivery is being attempted right now; try again when it finishes".into(),
            ));
        }
        self.commit_events(tx).await?;
        Ok(d)
    }

    /// The organization's events in sequence order, after `after` (a sequence number).
    pub async fn list_events(
        &self,
        org: &OrgId,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let rows = sqlx::query(
            "SELECT id, type, org_seq, payload, created_at FROM events \
             WHERE org_id = $1 AND org_seq > $2 ORDER BY org_seq LIMIT $3",
        )
        .bind(org.as_str())
        .bind(after.unwrap_or(0))
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxEvent {
                    id: EventId::from_db(col(r, "id")?),
                    kind: col(r, "type")?,
                    sequence: col(r, "org_seq")?,
                    payload: json(r, "payload")?,
                    created_at: ts(r, "created_at")?,
                })
            })
            .collect()
    }

    /// Claims up to `limit` due deliveries for `owner` until `now + lease_ms`: pending ones
    /// whose time came and in-flight ones whose worker's lease ran out (their outcome is
    /// unknown, so they go again with the same `webhook-id`). A delivery waits while an
    /// earlier one for the same endpoint and subject is unfinished. An endpoint never has
    /// more than `per_endpoint` deliveries in flight across every instance (those already
    /// leased count), so one slow receiver cannot take every worker slot.
    pub async fn claim_webhook_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
        lease_ms: i64,
        limit: i64,
        per_endpoint: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // `next_attempt_at` holds the lease end while delivering, so one due test covers
        // both the waiting and the abandoned.
        // The same statement as the PostgreSQL function of migration 0022: the due
        // deliveries ranked per endpoint, kept while position + in flight fits the cap.
        let sql = format!(
            "UPDATE webhook_deliveries SET status = 'delivering', lease_owner = $1, \
             next_attempt_at = $2, updated_at = $3 WHERE id IN (\
             SELECT w.id FROM webhook_deliveries w WHERE w.id IN (\
               SELECT c.id FROM (\
                 SELECT d.id, ROW_NUMBER() OVER (PARTITION BY d.endpoint_id \
                   ORDER BY d.next_attempt_at, d.id) AS pos, \
                   (SELECT COUNT(*) FROM webhook_deliveries f WHERE f.endpoint_id = d.endpoint_id \
                     AND f.status = 'delivering' AND f.next_attempt_at > $3) AS busy \
                 FROM webhook_deliveries d \
                 WHERE d.status IN ('pending', 'delivering') AND d.next_attempt_at <= $3 \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p \
                   WHERE p.endpoint_id = d.endpoint_id AND p.order_key = d.order_key \
                   AND p.org_seq < d.org_seq AND p.status IN ('pending', 'delivering'))) c \
               WHERE c.pos + c.busy <= $5) \
             ORDER BY w.next_attempt_at LIMIT $4{lock}) RETURNING id, org_id"
        );
        let sql = self.lookup(
            "SELECT * FROM sb_claim_webhook_deliveries($1, $2, $3, $4, $5)",
            &sql,
        );
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        let rows = sqlx::query(sql)
            .bind(owner)
            .bind(now.millis() + lease_ms)
            .bind(now.millis())
            .bind(limit)
            .bind(per_endpoint.max(1))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(ClaimedDelivery {
                    id: DeliveryId::from_db(col(r, "id")?),
                    org_id: OrgId::from_db(col(r, "org_id")?),
                })
            })
            .collect()
    }

    /// Loads what an attempt needs, in the delivery's organization.
    pub async fn delivery_target(
        &self,
        org: &OrgId,
        id: &DeliveryId,
        now: Timestamp,
    ) -> Result<DeliveryTarget, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let r = sqlx::query(
            "SELECT d.id, d.event_id, d.event_type, d.attempts, d.endpoint_id, e.payload, \
             w.url, w.enabled, w.secret, w.previous_secret, w.previous_secret_expires_at, \
             w.failing_since FROM webhook_deliveries d \
             JOIN events e ON e.id = d.event_id \
             JOIN webhook_endpoints w ON w.id = d.endpoint_id \
             WHERE d.org_id = $1 AND d.id = $2",
        )
        .bind(org.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        let owner = Owner::Org(org);
        let mut secrets =
            vec![self.unseal(owner, WEBHOOK_SECRET, &col::<String>(&r, "secret")?)?];
        let previous: Option<String> = col(&r, "previous_secret")?;
        let until: Option<i64> = col(&r, "previous_secret_expires_at")?;
        if let (Some(p), Some(u)) = (previous, until) {
            if u > now.millis() {
                secrets.push(self.unseal(owner, WEBHOOK_SECRET, &p)?);
            }
        }
        Ok(DeliveryTarget {
            id: DeliveryId::from_db(col(&r, "id")?),
            event_id: EventId::from_db(col(&r, "event_id")?),
            event_type: col(&r, "event_type")?,
            payload: col(&r, "payload")?,
            attempts: col(&r, "attempts")?,
            endpoint_id: WebhookEndpointId::from_db(col(&r, "endpoint_id")?),
            url: col(&r, "url")?,
            enabled: flag(&r, "enabled")?,
            secrets,
            failing_since: ts_opt(&r, "failing_since")?,
        })
    }

    /// Records an attempt and what follows from it, if `owner` still holds the delivery.
    /// Updates the endpoint's failure streak; disabling an endpoint writes a
    /// `webhook_endpoint.disabled` event in the same transaction. Returns false when the
    /// lease was lost (another worker took the delivery over): nothing is written.
    pub async fn record_webhook_attempt(
        &self,
        org: &OrgId,
        target: &DeliveryTarget,
        owner: &str,
        attempt: &AttemptRecord,
        outcome: &AttemptOutcome,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let (status, next, delivered) = match outcome {
            AttemptOutcome::Succeeded => ("succeeded", now.millis(), Some(now.millis())),
            AttemptOutcome::Retry(at) => ("pending", at.millis(), None),
            AttemptOutcome::Failed { .. } => ("failed", now.millis(), None),
        };
        let last_error = attempt.error.clone().or_else(|| {
            attempt
                .status_code
                .filter(|c| !(200..300).contains(c))
                .map(|c| format!("HTTP {c}"))
        });
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, next_attempt_at = $2, \
             attempts = attempts + 1, lease_owner = NULL, last_status_code = $3, \
             last_error = $4, delivered_at = COALESCE($5, delivered_at), updated_at = $6 \
             WHERE org_id = $7 AND id = $8 AND status = 'delivering' AND lease_owner = $9",
        )
        .bind(status)
        .bind(next)
        .bind(attempt.status_code)
        .bind(last_error)
        .bind(delivered)
        .bind(now.millis())
        .bind(org.as_str())
        .bind(target.id.as_str())
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO webhook_attempts (id, org_id, delivery_id, attempted_at, status_code, \
             latency_ms, response_excerpt, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(format!("att_{}", switchboard_domain::ids::random_token(20)))
        .bind(org.as_str())
        .bind(target.id.as_str())
        .bind(attempt.at.millis())
        .bind(attempt.status_code)
        .bind(attempt.latency_ms)
        .bind(attempt.excerpt.clone())
        .bind(attempt.error.clone())
        .execute(&mut *tx)
        .await?;
        match outcome {
            AttemptOutcome::Succeeded => {
                sqlx::query(
                    "UPDATE webhook_endpoints SET failing_since = NULL \
                     WHERE org_id = $1 AND id = $2 AND failing_since IS NOT NULL",
                )
                .bind(org.as_str())
                .bind(target.endpoint_id.as_str())
                .execute(&mut *tx)
                .await?;
            }
            AttemptOutcome::Retry(_) | AttemptOutcome::Failed { disable: None } => {
                sqlx::query(
                    "UPDATE webhook_endpoints SET failing_since = $1 \
                     WHERE org_id = $2 AND id = $3 AND failing_since IS NULL",
                )
                .bind(attempt.at.millis())
                .bind(org.as_str())
                .bind(target.endpoint_id.as_str())
                .execute(&mut *tx)
                .await?;
            }
            AttemptOutcome::Failed {
                disable: Some(reason),
            } => {
                let off = sqlx::query(
                    "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = $1, \
                     failing_since = COALESCE(failing_since, $2), updated_at = $3 \
                     WHERE org_id = $4 AND id = $5 AND enabled = 1",
                )
                .bind(reason.as_str())
                .bind(attempt.at.millis())
                .bind(now.millis())
                .bind(org.as_str())
                .bind(target.endpoint_id.as_str())
                .execute(&mut *tx)
                .await?;
                if off.rows_affected() > 0 {
                    let ep = fetch_endpoint(&mut tx, org, &target.endpoint_id, "").await?;
                    let ev = NewEvent::new(
                        "webhook_endpoint.disabled",
                        ep.id.to_string(),
                        json!({"endpoint": ep, "reason": reason}),
                    );
                    emit(&mut tx, org, &[ev], now).await?;
                }
            }
        }
        self.commit_events(tx).await?;
        Ok(true)
    }

    /// Fails a claimed delivery without an HTTP attempt (its endpoint was disabled meanwhile).
    pub async fn fail_webhook_delivery(
        &self,
        org: &OrgId,
        id: &DeliveryId,
        owner: &str,
        error: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET status = 'failed', lease_owner = NULL, \
             last_error = $1, updated_at = $2 WHERE org_id = $3 AND id = $4 \
             AND status = 'delivering' AND lease_owner = $5",
        )
        .bind(error)
        .bind(now.millis())
        .bind(org.as_str())
        .bind(id.as_str())
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Hands claimed deliveries back at shutdown so another instance takes them at once.
    pub async fn release_webhook_deliveries(
        &self,
        owner: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        let done = if self.backend() == Backend::Postgres {
            let n: i64 = sqlx::query_scalar("SELECT sb_release_webhook_deliveries($1, $2)")
                .bind(owner)
                .bind(now.millis())
                .fetch_one(&mut *tx)
                .await?;
            n.unsigned_abs()
        } else {
            sqlx::query(
                "UPDATE webhook_deliveries SET status = 'pending', lease_owner = NULL, \
                 next_attempt_at = $2 WHERE status = 'delivering' AND lease_owner = $1",
            )
            .bind(owner)
            .bind(now.millis())
            .execute(&mut *tx)
            .await?
            .rows_affected()
        };
        tx.commit().await?;
        Ok(done)
    }
}

async fn fetch_endpoint(
    tx: &mut crate::Tx,
    org: &OrgId,
    id: &WebhookEndpointId,
    lock: &str,
) -> Result<WebhookEndpoint, StoreError> {
    fetch_scoped(
        tx,
        "webhook_endpoints",
        ENDPOINT_COLUMNS,
        org,
        id.as_str(),
        lock,
        endpoint_from_row,
    )
    .await
}

async fn fetch_delivery(
    tx: &mut crate::Tx,
    org: &OrgId,
    id: &DeliveryId,
) -> Result<WebhookDelivery, StoreError> {
    fetch_scoped(
        tx,
        "webhook_deliveries",
        DELIVERY_COLUMNS,
        org,
        id.as_str(),
        "",
        delivery_from_row,
    )
    .await
}

/// A `conversation.*` event.
pub(crate) fn conversation_event(kind: &'static str, c: &Conversation) -> NewEvent {
    NewEvent::new(kind, c.id.to_string(), json!({ "conversation": c }))
}

/// A `message.*` event, ordered with its conversation's other events.
pub(crate) fn message_event(kind: &'static str, m: &Message) -> NewEvent {
    NewEvent::new(
        kind,
        m.conversation_id.to_string(),
        json!({ "conversation_id": m.conversation_id, "message": m }),
    )
}

/// A `call.*` event, ordered with the call's conversation (its transcript and tools).
pub(crate) fn call_event(kind: &'static str, c: &Call) -> NewEvent {
    NewEvent::new(kind, c.conversation_id.to_string(), json!({ "call": c }))
}

/// What follows a text conversation's close, in the closing transaction: the event and,
/// when an agent ran it, its analysis job.
pub(crate) async fn conversation_closed(
    tx: &mut crate::Tx,
    org: &OrgId,
    conv: &Conversation,
    now: Timestamp,
) -> Result<(), StoreError> {
    emit(
        tx,
        org,
        &[conversation_event("conversation.closed", conv)],
        now,
    )
    .await?;
    if conv.agent_id.is_some() {
        crate::followups::queue_analysis(tx, org, None, &conv.id, now).await?;
    }
    Ok(())
}

/// What follows a call's end, in the finalizing transaction: `call.ended`, the analysis job
/// and, when the organization wants it, the e-mail (sent once the analysis is stored, or
/// after the bounded wait).
pub(crate) async fn call_finalized(
    tx: &mut crate::Tx,
    org: &OrgId,
    call: &Call,
    now: Timestamp,
    email_wait_ms: i64,
) -> Result<(), StoreError> {
    emit(tx, org, &[call_event("call.ended", call)], now).await?;
    crate::followups::queue_analysis(tx, org, Some(&call.id), &call.conversation_id, now).await?;
    crate::followups::queue_call_email(tx, org, call, now, email_wait_ms).await
}
