//! Webhook delivery: claim due deliveries, sign each per Standard Webhooks, POST it with a
//! 10 s timeout and no redirects, record the attempt, and schedule the retry.

use crate::signing::signature_header;
use crate::{Jobs, JobsConfig};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::ids::OrgId;
use switchboard_domain::Timestamp;
use switchboard_egress::{check_literal, describe, REFUSED, WEBHOOKS};
use switchboard_store::{AttemptOutcome, AttemptRecord, ClaimedDelivery, StoreError};
use tokio::sync::{Notify, Semaphore};

/// The default retry delays after each failed attempt (protocols.md section 7 and the issue):
/// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, then the delivery fails.
pub const DEFAULT_RETRY_SCHEDULE: &[u64] = &[5, 300, 1800, 7200, 18000, 36000, 36000];

/// How much of a response body an attempt keeps.
const EXCERPT_CHARS: usize = 1000;

/// The HTTP client for deliveries.
pub(crate) fn client(config: &JobsConfig) -> Result<reqwest::Client, reqwest::Error> {
    switchboard_egress::client(
        WEBHOOKS,
        config.allow_private_targets,
        config.webhook_timeout,
    )
}

impl Jobs {
    /// Claims and makes the due webhook attempts. Returns how many were attempted.
    pub async fn run_webhooks_once(&self) -> Result<usize, StoreError> {
        let inner = &self.inner;
        let lease = i64::try_from(inner.config.lease.as_millis()).unwrap_or(60_000);
        let claimed = self.claim_webhooks(lease, inner.config.batch).await?;
        let n = claimed.len();
        futures_util::future::join_all(claimed.into_iter().map(|c| self.deliver_logged(c))).await;
        Ok(n)
    }

    async fn claim_webhooks(
        &self,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let inner = &self.inner;
        inner
            .store
            .claim_webhook_deliveries(
                &inner.owner,
                inner.clock.now(),
                lease_ms,
                limit,
                inner.config.endpoint_concurrency,
            )
            .await
    }

    /// The background delivery loop: every attempt runs on its own, holding one of
    /// `webhook_concurrency` slots, and the loop claims again as soon as a slot frees, an
    /// event is committed or the poll interval passes. So a receiver that hangs until the
    /// timeout holds only its own attempts (at most `endpoint_concurrency` of them, counted
    /// across instances by the claim) while everybody else's go out.
    pub(crate) async fn run_webhook_loop(&self, every: Duration) {
        let inner = &self.inner;
        let lease = i64::try_from(inner.config.lease.as_millis()).unwrap_or(60_000);
        let slots = Arc::new(Semaphore::new(inner.config.webhook_concurrency.max(1)));
        let freed = Arc::new(Notify::new());
        let signal = inner.store.outbox_signal();
        let mut stop = inner.stop.clone();
        loop {
            if *stop.borrow() {
                return;
            }
            // Registered before the claim, so a commit during it is not missed.
            let committed = signal.notified();
            tokio::pin!(committed);
            committed.as_mut().enable();
            let free = slots.available_permits();
            let limit = inner
                .config
                .batch
                .min(i64::try_from(free).unwrap_or(i64::MAX));
            let mut full = false;
            if limit > 0 {
                // Shared by the attempts started now; shutdown waits until the last is done.
                let running = Arc::new(inner.running.clone().read_owned().await);
                match self.claim_webhooks(lease, limit).await {
                    Ok(claimed) => {
                        full = i64::try_from(claimed.len()).unwrap_or(0) == limit;
                        for c in claimed {
                            // This loop is the only one taking slots: `free` are there.
                            let Ok(permit) = slots.clone().try_acquire_owned() else {
                                break;
                            };
                            let (me, freed, running) =
                                (self.clone(), freed.clone(), running.clone());
                            tokio::spawn(async move {
                                me.deliver_logged(c).await;
                                drop(permit);
                                drop(running);
                                freed.notify_one();
                            });
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "webhook claim failed"),
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = &mut committed => {}
                _ = freed.notified() => {}
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn deliver_logged(&self, c: ClaimedDelivery) {
        if let Err(e) = self.deliver(&c).await {
            // The lease runs out and the delivery is attempted again.
            tracing::error!(org_id = %c.org_id, delivery_id = %c.id, error = %e, "webhook delivery could not be recorded");
        }
    }

    async fn deliver(&self, c: &ClaimedDelivery) -> Result<(), StoreError> {
        let inner = &self.inner;
        let org: &OrgId = &c.org_id;
        let now = inner.clock.now();
        let target = match inner.store.delivery_target(org, &c.id, now).await {
            Ok(t) => t,
            Err(StoreError::NotFound) => return Ok(()),
            Err(e) => return Err(e),
        };
        if !target.enabled {
            return inner
                .store
                .fail_webhook_delivery(org, &c.id, &inner.owner, "the endpoint is disabled", now)
                .await;
        }
        let started = std::time::Instant::now();
        let at = inner.clock.now();
        let mut record = AttemptRecord {
            at,
            status_code: None,
            latency_ms: 0,
            excerpt: None,
            error: None,
        };
        let mut retry_after = None;
        if let Err(why) = check_literal(WEBHOOKS, &target.url, inner.config.allow_private_targets) {
            record.error = Some(why);
        } else {
            // The signature timestamp is wall-clock time (receivers compare it with theirs).
            let ts = Timestamp::now().millis() / 1000;
            let body = target.payload.as_bytes();
            let signature = signature_header(&target.secrets, target.event_id.as_str(), ts, body);
            let res = inner
                .http
                .post(&target.url)
                .header("content-type", "application/json")
                .header("webhook-id", target.event_id.as_str())
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", signature)
                .body(target.payload.clone())
                .send()
                .await;
            match res {
                Ok(mut r) => {
                    record.status_code = Some(i64::from(r.status().as_u16()));
                    retry_after = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    record.excerpt = read_excerpt(&mut r).await;
                }
                Err(e) => record.error = Some(describe(&e)),
            }
        }
        // Refused by the literal check or by the resolver: both say so first.
        let refused = record
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with(REFUSED));
        record.latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let outcome = self.outcome(&target, &record, refused, retry_after);
        let stats = &inner.stats;
        match &outcome {
            AttemptOutcome::Succeeded => {
                stats.webhook_succeeded.fetch_add(1, Ordering::Relaxed);
                if let Ok(ms) = u64::try_from(record.latency_ms) {
                    stats
                        .webhook_latency_ms_total
                        .fetch_add(ms, Ordering::Relaxed);
                }
            }
            AttemptOutcome::Retry(next) => {
                stats.webhook_retried.fetch_add(1, Ordering::Relaxed);
                tracing::info!(org_id = %org, delivery_id = %c.id, endpoint_id = %target.endpoint_id,
                    status = ?record.status_code, error = ?record.error, next_attempt = %next.to_rfc3339(),
                    "webhook attempt failed; will retry");
            }
            AttemptOutcome::Failed { disable } => {
                stats.webhook_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(org_id = %org, delivery_id = %c.id, endpoint_id = %target.endpoint_id,
                    status = ?record.status_code, error = ?record.error, "webhook delivery failed for good");
                if let Some(reason) = disable {
                    tracing::warn!(org_id = %org, endpoint_id = %target.endpoint_id, reason = %reason,
                        "webhook endpoint disabled");
                }
            }
        }
        let kept = inner
            .store
            .record_webhook_attempt(
                org,
                &target,
                &inner.owner,
                &record,
                &outcome,
                inner.clock.now(),
            )
            .await?;
        if !kept {
            tracing::warn!(org_id = %org, delivery_id = %c.id, "webhook lease lost; the other worker's record stands");
        } else if let AttemptOutcome::Failed {
            disable: Some(reason),
        } = &outcome
        {
            self.alert_admins(
                org,
                crate::alerts::Alert {
                    key: format!("endpoint_disabled:{}", target.endpoint_id),
                    interval: crate::alerts::ENDPOINT_INTERVAL,
                    subject: "A webhook endpoint was turned off".into(),
                    lines: vec![
                        format!(
                            "Switchboard turned off the webhook endpoint {}: {reason}.",
                            target.url
                        ),
                        "Events for it are kept but not sent until it is turned back on; then re-send the ones it missed from its page.".into(),
                    ],
                    path: &format!("/webhooks/{}", target.endpoint_id),
                },
            )
            .await;
        }
        Ok(())
    }

    /// Decides what follows an attempt.
    fn outcome(
        &self,
        target: &switchboard_store::DeliveryTarget,
        record: &AttemptRecord,
        refused: bool,
        retry_after: Option<u64>,
    ) -> AttemptOutcome {
        let config = &self.inner.config;
        let code = record.status_code.unwrap_or(0);
        if (200..300).contains(&code) {
            return AttemptOutcome::Succeeded;
        }
        if refused {
            // A refused target is a configuration problem: retrying cannot help.
            return AttemptOutcome::Failed { disable: None };
        }
        if code == 410 {
            return AttemptOutcome::Failed {
                disable: Some("the endpoint answered 410 Gone".into()),
            };
        }
        let now = self.inner.clock.now();
        let failing_for = target
            .failing_since
            .map(|s| now.millis() - s.millis())
            .unwrap_or(0);
        let disable_after = i64::try_from(config.disable_after.as_millis()).unwrap_or(i64::MAX);
        if failing_for >= disable_after {
            return AttemptOutcome::Failed {
                disable: Some(format!(
                    "every attempt failed for {} hours",
                    failing_for / 3_600_000
                )),
            };
        }
        let made = usize::try_from(target.attempts).unwrap_or(usize::MAX);
        let Some(base) = config.retry_schedule.get(made) else {
            return AttemptOutcome::Failed { disable: None };
        };
        let mut delay = jitter(*base);
        // Throttling answers may ask for more time (Standard Webhooks: honour Retry-After).
        if matches!(code, 429 | 503) {
            if let Some(s) = retry_after {
                delay = delay.max(Duration::from_secs(s.min(24 * 3600)));
            }
        }
        let ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        AttemptOutcome::Retry(Timestamp::from_millis(now.millis() + ms))
    }
}

/// +-10 % so that many deliveries failing together do not retry together.
fn jitter(base: Duration) -> Duration {
    let mut b = [0u8; 2];
    switchboard_domain::ids::fill_random(&mut b);
    let r = f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX); // 0..=1
    base.mul_f64(0.9 + 0.2 * r)
}

async fn read_excerpt(r: &mut reqwest::Response) -> Option<String> {
    let mut buf: Vec<u8> = Vec::new();
    // Read at most a few KB: a receiver answering with a huge body must not cost memory.
    while buf.len() < EXCERPT_CHARS * 4 {
        match r.chunk().await {
            Ok(Some(c)) => buf.extend_from_slice(&c),
            _ => break,
        }
    }
    let text: String = String::from_utf8_lossy(&buf)
        .chars()
        .take(EXCERPT_CHARS)
        .collect();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(100));
            assert!(d >= Duration::from_secs(90) && d <= Duration::from_secs(110));
        }
    }
}
