//! SMS, WhatsApp and web-chat agents. An inbound text joins its per-contact session (decided
//! by the store in one transaction), compliance keywords are honoured, and the agent's reply
//! is written by a chat model with the conversation's history and the shared tool registry.
//! The reply goes back as TwiML when it is ready within the budget, otherwise through the
//! Twilio REST API by a durable job that survives a restart. Business-initiated conversations
//! and human messages go out through the same delivery path.

mod agent;
mod api;
mod delivery;
mod events;
mod inbound;
mod jobs;
mod scheduled;

pub use agent::{Generated, ToolRecord};
pub use api::{ChatTurn, NewOutbound, Started};
pub use delivery::Delivery;
pub use events::{Event, EventBus};
pub use inbound::InboundText;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::{Clock, ValidationError};
use switchboard_llm::{ChatClient, LlmError};
use switchboard_store::{Store, StoreError};
use switchboard_tools::Registry;
use switchboard_twilio::rest::{RestClient, RestError};
use tokio::sync::watch;

/// The job kind of an agent reply.
pub const REPLY_JOB: &str = "messaging.reply";

/// Messaging settings.
#[derive(Debug, Clone)]
pub struct MessagingConfig {
    /// How long the webhook waits for the reply before answering empty TwiML and sending the
    /// reply through the REST API (Twilio gives up after 15 s).
    pub reply_budget: Duration,
    /// Model calls per reply, tool rounds included; the last one may not call tools.
    pub max_model_rounds: usize,
    /// Transcript items given to the model.
    pub history_items: i64,
    /// How long a claimed job is ours before another worker may take it over.
    pub lease: Duration,
    /// How often the background worker looks for due jobs; `None` runs no worker (tests
    /// drive it with [`Messaging::run_jobs_once`]).
    pub poll_interval: Option<Duration>,
    /// Delays before the 2nd, 3rd... attempt of a failed reply; attempts stop after the last.
    pub retry_backoff: Vec<Duration>,
    /// How often idle sessions are closed.
    pub sweep_interval: Duration,
    /// Public base URL, for delivery-status callbacks (none: no callbacks requested).
    pub public_url: Option<String>,
    /// Replies one organization may have in flight at once, across instances
    /// (`SWITCHBOARD_MAX_TEXT_REPLIES_PER_ORG`); texts beyond it wait for a free slot.
    pub max_replies_per_org: i64,
}

impl Default for MessagingConfig {
    fn default() -> Self {
        Self {
            reply_budget: Duration::from_secs(10),
            max_model_rounds: 5,
            history_items: 60,
            lease: Duration::from_secs(60),
            poll_interval: Some(Duration::from_secs(1)),
            retry_backoff: [5, 30, 120, 600, 1800, 3600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            sweep_interval: Duration::from_secs(30),
            public_url: None,
            max_replies_per_org: 20,
        }
    }
}

/// Counters exported at `/metrics` (no labels that could carry numbers or text).
#[derive(Debug, Default)]
pub struct MessagingStats {
    /// Inbound texts stored.
    pub inbound: AtomicU64,
    /// Retried webhooks ignored.
    pub duplicates: AtomicU64,
    /// Texts to numbers no organization owns (or inactive ones).
    pub unknown_number: AtomicU64,
    /// Replies answered inline as TwiML.
    pub replies_twiml: AtomicU64,
    /// Replies sent through the REST API.
    pub replies_rest: AtomicU64,
    /// Messages accepted by Twilio's REST API.
    pub sent: AtomicU64,
    /// Messages that failed to send or were reported undelivered.
    pub failed: AtomicU64,
    /// Chat model failures.
    pub model_failures: AtomicU64,
    /// Opt-outs received.
    pub opt_outs: AtomicU64,
    /// Replies that waited for a slot: the organization was at its cap of replies in flight.
    pub replies_deferred: AtomicU64,
}

impl MessagingStats {
    /// Prometheus text.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &AtomicU64); 10] = [
            ("inbound_total", "Inbound texts stored", &self.inbound),
            (
                "duplicates_total",
                "Retried webhooks ignored",
                &self.duplicates,
            ),
            (
                "unknown_number_total",
                "Texts to unknown or inactive numbers",
                &self.unknown_number,
            ),
            (
                "replies_twiml_total",
                "Replies answered inline as TwiML",
                &self.replies_twiml,
            ),
            (
                "replies_rest_total",
                "Replies sent through the REST API",
                &self.replies_rest,
            ),
            (
                "sent_total",
                "Messages accepted by the Twilio REST API",
                &self.sent,
            ),
            (
                "failed_total",
                "Messages that failed or were undelivered",
                &self.failed,
            ),
            (
                "model_failures_total",
                "Chat model failures",
                &self.model_failures,
            ),
            (
                "replies_deferred_total",
                "Replies that waited: the organization was at its cap of replies in flight",
                &self.replies_deferred,
            ),
            (
                "opt_outs_total",
                "Opt-out keywords received",
                &self.opt_outs,
            ),
        ];
        let mut out = String::new();
        for (name, help, v) in rows {
            out.push_str(&format!(
                "# HELP switchboard_messaging_{name} {help}.\n# TYPE switchboard_messaging_{name} counter\nswitchboard_messaging_{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A failure the API reports with a stable code.
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    /// The agent, conversation or number does not exist in the organization.
    #[error("{0}")]
    NotFound(&'static str),
    /// Bad input.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The contact opted out of messages from this organization.
    #[error("the contact has opted out of messages from this organization (they can text START to opt back in)")]
    OptedOut,
    /// WhatsApp free-form message outside the 24-hour window.
    #[error("WhatsApp allows free-form messages only within 24 hours of the contact's last message; send an approved template (`content_sid`) instead")]
    WhatsappWindowClosed,
    /// The conversation is not open.
    #[error("the conversation is {0}; start a new one")]
    ConversationClosed(&'static str),
    /// The operation does not exist on this channel.
    #[error("{0}")]
    UnsupportedChannel(String),
    /// Something the platform needs is not configured.
    #[error("{0}")]
    NotConfigured(String),
    /// The chat model failed.
    #[error("the chat model failed: {0}")]
    Model(#[from] LlmError),
    /// Twilio refused or did not answer.
    #[error("Twilio could not send the message: {0}")]
    Twilio(#[from] RestError),
    /// Twilio could not be reached (the message was certainly not sent).
    #[error("Twilio could not be reached: {0}")]
    TwilioUnreachable(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MessagingError {
    /// The message an API client sees: for a provider's failure (the model, Twilio) a
    /// stable description without the provider's text, which is logged instead (it can hold
    /// internals, even a fragment of a key); otherwise the error itself.
    pub fn public_message(&self) -> String {
        match self {
            MessagingError::Model(_) => {
                "the chat model did not answer; the message is kept and the failure is logged"
                    .into()
            }
            MessagingError::Twilio(e) => e.summary(),
            MessagingError::TwilioUnreachable(_) => {
                "Twilio could not be reached; the message was not sent".into()
            }
            other => other.to_string(),
        }
    }

    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            MessagingError::NotFound(_) => "not_found",
            MessagingError::Invalid(_) => "invalid",
            MessagingError::OptedOut => "contact_opted_out",
            MessagingError::WhatsappWindowClosed => "whatsapp_window_closed",
            MessagingError::ConversationClosed(_) => "conversation_closed",
            MessagingError::UnsupportedChannel(_) => "unsupported_channel",
            MessagingError::NotConfigured(_) => "not_configured",
            MessagingError::Model(_) => "model_unavailable",
            MessagingError::Twilio(_) | MessagingError::TwilioUnreachable(_) => "twilio_error",
            MessagingError::Store(_) => "internal",
        }
    }
}

/// The messaging service; cheap to clone.
#[derive(Clone)]
pub struct Messaging {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    pub(crate) llm: Option<ChatClient>,
    pub(crate) registry: Registry,
    pub(crate) delivery: Arc<Delivery>,
    pub(crate) events: EventBus,
    pub(crate) clock: Clock,
    pub(crate) config: MessagingConfig,
    /// This instance's lease-owner name.
    pub(crate) owner: String,
    pub(crate) stats: Arc<MessagingStats>,
    pub(crate) stop: watch::Receiver<bool>,
    stop_tx: watch::Sender<bool>,
    /// Reply tasks in flight (so shutdown can wait for them to hand their jobs back).
    pub(crate) running: tokio::sync::Semaphore,
}

/// Reply tasks that may run at once; more wait for a slot.
const MAX_RUNNING: usize = 4096;

impl Messaging {
    /// Builds the service. `llm` is `None` when no chat model is configured (texts are
    /// stored; replies fail with a clear error and are retried).
    pub fn new(
        store: Store,
        config: MessagingConfig,
        llm: Option<ChatClient>,
        rest: RestClient,
        clock: Clock,
        events: EventBus,
    ) -> Messaging {
        let stats = Arc::new(MessagingStats::default());
        let delivery = Arc::new(Delivery::new(
            store.clone(),
            rest,
            config.public_url.clone(),
            events.clone(),
            clock.clone(),
            stats.clone(),
        ));
        let registry = Registry::default().with_text_sender(delivery.clone());
        let (stop_tx, stop) = watch::channel(false);
        Messaging {
            inner: Arc::new(Inner {
                store,
                llm,
                registry,
                delivery,
                events,
                clock,
                config,
                owner: format!("instance-{}", switchboard_domain::ids::random_token(12)),
                stats,
                stop,
                stop_tx,
                running: tokio::sync::Semaphore::new(MAX_RUNNING),
            }),
        }
    }

    /// The chat model, when one is configured (the operator assistant uses it too).
    pub fn chat_client(&self) -> Option<&ChatClient> {
        self.inner.llm.as_ref()
    }

    /// The tool registry (shared with voice, so calls can use `send_sms` too).
    pub fn registry(&self) -> Registry {
        self.inner.registry.clone()
    }

    /// The event stream.
    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    /// Counters.
    pub fn stats(&self) -> &MessagingStats {
        &self.inner.stats
    }

    /// The delivery path (REST sends, delivery reports).
    pub fn delivery(&self) -> &Delivery {
        &self.inner.delivery
    }

    /// Runs the background worker until [`Messaging::shutdown`]: due jobs every poll
    /// interval, idle sessions closed every sweep interval. Returns at once without a poll
    /// interval.
    pub async fn run_worker(self) {
        let Some(every) = self.inner.config.poll_interval else {
            return;
        };
        let mut stop = self.inner.stop.clone();
        let mut last_sweep = tokio::time::Instant::now();
        loop {
            if *stop.borrow() {
                return;
            }
            match self.run_jobs_once().await {
                Ok(n) if n > 0 => tracing::debug!(jobs = n, "messaging jobs ran"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "messaging job claim failed"),
            }
            if let Err(e) = self.run_scheduled_once().await {
                tracing::error!(error = %e, "scheduled message claim failed");
            }
            if last_sweep.elapsed() >= self.inner.config.sweep_interval {
                last_sweep = tokio::time::Instant::now();
                if let Err(e) = self.close_idle_once().await {
                    tracing::error!(error = %e, "closing idle conversations failed");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Stops the worker and in-flight replies; each hands its job back so the next instance
    /// (or the next start) sends the reply. Waits up to `grace` for them.
    pub async fn shutdown(&self, grace: Duration) {
        let _ = self.inner.stop_tx.send(true);
        let all = u32::try_from(MAX_RUNNING).unwrap_or(u32::MAX);
        match tokio::time::timeout(grace, self.inner.running.acquire_many(all)).await {
            Ok(Ok(permits)) => drop(permits),
            _ => tracing::warn!("some replies did not stop in time; their leases will expire"),
        }
    }
}
