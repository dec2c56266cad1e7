//! Background work after the conversation: signed webhook deliveries from the transactional
//! outbox, post-call (and post-thread) analysis by the chat model, and e-mail notifications.
//!
//! Everything is claimed from the database with leases, so several instances share the work
//! on PostgreSQL and a restart loses nothing. Tests drive the queues with `run_once`.

mod alerts;
mod analysis;
pub mod email;
mod knowledge;
pub mod transcript;
mod webhooks;

use analysis::RunError;
use email::Mailer;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::Clock;
use switchboard_llm::ChatClient;
use switchboard_store::{Job, Store, StoreError, ANALYSIS_JOB, EMAIL_JOB, KNOWLEDGE_JOB};
use tokio::sync::watch;

pub use switchboard_egress::signing;
pub use webhooks::DEFAULT_RETRY_SCHEDULE;

/// Settings of the background work.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Deliver to loopback, private and link-local addresses
    /// (`SWITCHBOARD_WEBHOOKS_ALLOW_PRIVATE`).
    pub allow_private_targets: bool,
    /// Whole-attempt timeout of a webhook POST.
    pub webhook_timeout: Duration,
    /// Delays after each failed attempt; when they run out the delivery fails. E-mails use
    /// the same schedule.
    pub retry_schedule: Vec<Duration>,
    /// An endpoint whose every attempt failed for this long is disabled.
    pub disable_after: Duration,
    /// How long a claimed delivery or job stays ours without news.
    pub lease: Duration,
    /// Deliveries (and jobs) claimed per round.
    pub batch: i64,
    /// Webhook attempts in flight at once on this instance
    /// (`SWITCHBOARD_WEBHOOK_CONCURRENCY`).
    pub webhook_concurrency: usize,
    /// Attempts in flight to one endpoint, across every instance
    /// (`SWITCHBOARD_WEBHOOK_ENDPOINT_CONCURRENCY`): a slow receiver holds at most this many
    /// slots, so it never delays other endpoints' deliveries.
    pub endpoint_concurrency: i64,
    /// SMTP URL and from address; `None` records e-mails as failed ("not configured").
    pub smtp: Option<(switchboard_domain::Secret, String)>,
    /// Model calls per analysis when the output does not match the schema.
    pub analysis_attempts: u32,
    /// Model for analyses of agents without their own chat model.
    pub analysis_model: Option<String>,
    /// Sampling temperature of analysis requests. `None` (the default) sends none: reasoning
    /// models refuse the parameter, and the schema-constrained output needs no sampling tweak.
    pub analysis_temperature: Option<f64>,
    /// Public base URL, for links in e-mails.
    pub dashboard_url: Option<String>,
    /// How long a call's e-mail waits for the analysis before it goes without one.
    pub email_analysis_wait: Duration,
    /// Poll interval when nothing wakes the worker (other instances' events); `None`
    /// disables the background loop (tests call `run_once`).
    pub poll_interval: Option<Duration>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            // Standard Webhooks recommends giving receivers 15 to 30 s.
            webhook_timeout: Duration::from_secs(15),
            retry_schedule: DEFAULT_RETRY_SCHEDULE
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            lease: Duration::from_secs(60),
            batch: 64,
            webhook_concurrency: 64,
            endpoint_concurrency: 4,
            smtp: None,
            analysis_attempts: 3,
            analysis_model: None,
            analysis_temperature: None,
            dashboard_url: None,
            email_analysis_wait: Duration::from_secs(600),
            poll_interval: Some(Duration::from_secs(1)),
        }
    }
}

/// Errors building the service.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// The SMTP settings are unusable.
    #[error("{0}")]
    Smtp(String),
    /// The HTTP client could not be built.
    #[error("webhook client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct JobsStats {
    webhook_succeeded: AtomicU64,
    webhook_retried: AtomicU64,
    webhook_failed: AtomicU64,
    webhook_latency_ms_total: AtomicU64,
    analyses: AtomicU64,
    analyses_failed: AtomicU64,
    emails_sent: AtomicU64,
    emails_failed: AtomicU64,
}

impl JobsStats {
    /// Prometheus text.
    pub fn render(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "# HELP switchboard_webhook_attempts_total Webhook attempts by result.\n\
             # TYPE switchboard_webhook_attempts_total counter\n\
             switchboard_webhook_attempts_total{{result=\"succeeded\"}} {}\n\
             switchboard_webhook_attempts_total{{result=\"retry\"}} {}\n\
             switchboard_webhook_attempts_total{{result=\"failed\"}} {}\n\
             # HELP switchboard_webhook_success_latency_ms_total Summed latency of successful attempts.\n\
             # TYPE switchboard_webhook_success_latency_ms_total counter\n\
             switchboard_webhook_success_latency_ms_total {}\n\
             # HELP switchboard_analyses_total Analyses stored by result.\n\
             # TYPE switchboard_analyses_total counter\n\
             switchboard_analyses_total{{result=\"completed\"}} {}\n\
             switchboard_analyses_total{{result=\"failed\"}} {}\n\
             # HELP switchboard_emails_total Notification e-mails by result.\n\
             # TYPE switchboard_emails_total counter\n\
             switchboard_emails_total{{result=\"sent\"}} {}\n\
             switchboard_emails_total{{result=\"failed\"}} {}\n",
            g(&self.webhook_succeeded),
            g(&self.webhook_retried),
            g(&self.webhook_failed),
            g(&self.webhook_latency_ms_total),
            g(&self.analyses),
            g(&self.analyses_failed),
            g(&self.emails_sent),
            g(&self.emails_failed),
        )
    }
}

/// An id the job's payload carries under `key`, if it is there and well-formed.
pub(crate) fn payload_id<T>(job: &Job, key: &str, parse: fn(&str) -> Option<T>) -> Option<T> {
    job.payload
        .get(key)
        .and_then(serde_json::Value::as_str)
        .and_then(parse)
}

/// The service; cheap to clone.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    clock: Clock,
    owner: String,
    config: JobsConfig,
    http: reqwest::Client,
    chat: Option<ChatClient>,
    mailer: Option<Mailer>,
    stats: JobsStats,
    stop_tx: watch::Sender<bool>,
    stop: watch::Receiver<bool>,
    /// Held by each running pass and each webhook attempt in flight; shutdown waits for
    /// them.
    running: Arc<tokio::sync::RwLock<()>>,
}

impl Jobs {
    /// Builds the service. `chat` is the analysis model (`None`: analyses are stored as
    /// failed with the reason).
    pub fn new(
        store: Store,
        config: JobsConfig,
        chat: Option<ChatClient>,
        clock: Clock,
    ) -> Result<Jobs, JobsError> {
        let mailer = match &config.smtp {
            Some((url, from)) => Some(Mailer::new(url.expose(), from).map_err(JobsError::Smtp)?),
            None => None,
        };
        let http = webhooks::client(&config)?;
        store.set_email_analysis_wait(config.email_analysis_wait);
        let (stop_tx, stop) = watch::channel(false);
        Ok(Jobs {
            inner: Arc::new(Inner {
                store,
                clock,
                owner: format!("jobs-{}", switchboard_domain::ids::random_token(12)),
                config,
                http,
                chat,
                mailer,
                stats: JobsStats::default(),
                stop_tx,
                stop,
                running: Arc::default(),
            }),
        })
    }

    /// The SMTP sender, when one is configured (for e-mails sent while a person waits:
    /// invitations and password resets).
    pub fn mailer(&self) -> Option<&email::Mailer> {
        self.inner.mailer.as_ref()
    }

    /// Counters.
    pub fn stats(&self) -> &JobsStats {
        &self.inner.stats
    }

    /// Claims and runs the due analysis, e-mail and knowledge index jobs. Returns how many
    /// ran.
    pub async fn run_jobs_once(&self) -> Result<usize, StoreError> {
        let inner = &self.inner;
        let lease = i64::try_from(inner.config.lease.as_millis()).unwrap_or(60_000);
        let jobs = inner
            .store
            .claim_jobs(
                &inner.owner,
                &[ANALYSIS_JOB, EMAIL_JOB, KNOWLEDGE_JOB],
                inner.clock.now(),
                lease,
                inner.config.batch,
            )
            .await?;
        let n = jobs.len();
        futures_util::future::join_all(jobs.into_iter().map(|j| self.run_job(j))).await;
        Ok(n)
    }

    async fn run_job(&self, job: Job) {
        let inner = &self.inner;
        let result = match job.kind.as_str() {
            ANALYSIS_JOB => self.analyse(&job).await,
            EMAIL_JOB => self.send_email(&job).await,
            KNOWLEDGE_JOB => self.index_knowledge(&job).await,
            other => Err(RunError::Stop(format!("unknown job kind {other}"))),
        };
        let now = inner.clock.now();
        let recorded = match result {
            Ok(()) => inner.store.complete_job(&job.id, &inner.owner, now).await,
            Err(RunError::Retry(why)) => {
                let made = usize::try_from(job.attempts.max(1) - 1).unwrap_or(0);
                match inner.config.retry_schedule.get(made) {
                    Some(delay) => {
                        tracing::warn!(org_id = %job.org_id, job_id = %job.id, kind = %job.kind, error = %why, "job failed; will retry");
                        let ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
                        let at = switchboard_domain::Timestamp::from_millis(now.millis() + ms);
                        inner.store.retry_job(&job.id, &inner.owner, at, &why).await
                    }
                    None => self.give_up(&job, &why).await,
                }
            }
            Err(RunError::Stop(why)) => self.give_up(&job, &why).await,
        };
        if let Err(e) = recorded {
            tracing::error!(job_id = %job.id, error = %e, "job outcome could not be recorded; its lease will expire");
        }
    }

    /// Fails a job for good; an analysis that cannot run is stored as failed so the call's
    /// `call.analyzed` and e-mail still follow.
    async fn give_up(&self, job: &Job, why: &str) -> Result<bool, StoreError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        tracing::error!(org_id = %job.org_id, job_id = %job.id, kind = %job.kind, error = %why, "job failed for good");
        if job.kind == ANALYSIS_JOB {
            let failed = serde_json::json!({"status": "failed", "error": why, "analyzed_at": now});
            let call = payload_id(job, "call_id", switchboard_domain::ids::CallId::parse);
            let conv = payload_id(
                job,
                "conversation_id",
                switchboard_domain::ids::ConversationId::parse,
            );
            let stored = match (call, conv) {
                (Some(c), _) => {
                    inner
                        .store
                        .store_call_analysis(&job.org_id, &c, &failed, now)
                        .await
                }
                (None, Some(c)) => {
                    inner
                        .store
                        .store_conversation_analysis(&job.org_id, &c, &failed, now)
                        .await
                }
                _ => Ok(()),
            };
            if let Err(e) = stored {
                if !matches!(e, StoreError::NotFound) {
                    return Err(e);
                }
            }
        }
        if job.kind == KNOWLEDGE_JOB {
            let id = payload_id(
                job,
                "source_id",
                switchboard_domain::ids::KnowledgeSourceId::parse,
            );
            let version = job
                .payload
                .get("version")
                .and_then(serde_json::Value::as_i64);
            if let (Some(id), Some(version)) = (id, version) {
                inner
                    .store
                    .fail_knowledge_index(&job.org_id, &id, version, why)
                    .await?;
            }
        }
        if job.kind == EMAIL_JOB {
            if let Some(id) = payload_id(job, "email_id", switchboard_domain::ids::EmailId::parse) {
                inner
                    .store
                    .record_email(&job.org_id, &id, "failed", None, Some(why), now)
                    .await?;
                self.alert_admins(&job.org_id, crate::alerts::email_failed(why))
                    .await;
            }
        }
        inner.store.fail_job(&job.id, &inner.owner, why, now).await
    }

    /// One pass over everything due: webhook attempts, then analysis and e-mail jobs.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let _pass = self.inner.running.read().await;
        let a = self.run_webhooks_once().await?;
        let b = self.run_jobs_once().await?;
        Ok(a + b)
    }

    /// Repeats [`Jobs::run_once`] until nothing is due (tests; bounded by `max_rounds`).
    pub async fn drain(&self, max_rounds: usize) -> Result<usize, StoreError> {
        let mut total = 0;
        for _ in 0..max_rounds {
            let n = self.run_once().await?;
            total += n;
            if n == 0 {
                break;
            }
        }
        Ok(total)
    }

    /// The background loops: webhook attempts and jobs (analysis, e-mail) each run a pass
    /// when this instance commits events, and at least every poll interval (other
    /// instances' events, retries coming due). Two loops, so a `call.ended` delivery never
    /// waits behind a batch of analyses.
    pub async fn run_worker(self) {
        let Some(every) = self.inner.config.poll_interval else {
            return;
        };
        let hooks = self.clone();
        let jobs = self;
        tokio::join!(hooks.run_webhook_loop(every), jobs.run_loop("jobs", every));
    }

    async fn run_loop(&self, name: &'static str, every: Duration) {
        let signal = self.inner.store.outbox_signal();
        let mut stop = self.inner.stop.clone();
        loop {
            if *stop.borrow() {
                return;
            }
            // Registered before the pass, so a commit during the pass is not missed.
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let pass = {
                let _running = self.inner.running.read().await;
                self.run_jobs_once().await
            };
            match pass {
                // More may be waiting (a full batch, or deliveries unblocked by this pass).
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(worker = name, error = %e, "background claim failed"),
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Stops the loop, waits up to `grace` for the running pass, and hands this instance's
    /// unfinished deliveries back so another instance takes them at once.
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.inner.stop_tx.send(true);
        if tokio::time::timeout(grace, self.inner.running.write())
            .await
            .is_err()
        {
            tracing::warn!("background jobs did not stop in time; their leases will expire");
            return;
        }
        match self
            .inner
            .store
            .release_webhook_deliveries(&self.inner.owner, self.inner.clock.now())
            .await
        {
            Ok(n) if n > 0 => {
                tracing::info!(deliveries = n, "handed unfinished webhook deliveries back")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "could not hand webhook deliveries back; their leases will expire")
            }
        }
    }
}
