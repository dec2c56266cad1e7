//! Building and running the server, and stopping it without dropping a call.
//!
//! Stopping is a drain in three phases. axum's graceful shutdown does not track upgraded
//! WebSockets, so the media streams (the live calls) are counted by the voice sessions
//! themselves and the HTTP server keeps serving while they run:
//!
//! 1. **Drain** (SIGTERM, `switchboard drain`, or `POST /api/v1/instance/drain`): `/readyz`
//!    answers 503 at once and new calls are sent elsewhere or politely refused (see
//!    `twilio::voice_webhook`). Live calls, status callbacks, texts and background work go on.
//!    When the live calls (and streams about to connect) are gone, or the drain timeout
//!    passes, the remaining callers hear a goodbye and their calls end as `completed` /
//!    `shutdown`.
//! 2. **Close**: the HTTP server stops accepting; event streams end so they cannot hold it;
//!    in-flight requests get the shutdown grace.
//! 3. **Background**: message replies in flight finish or go back to the queue, webhook
//!    deliveries and jobs finish or release their leases, the instance is marked stopped.
//!    The caller closes the store last.

use crate::lifecycle::Lifecycle;
use crate::{router, WebConfig};
use axum::Router;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::Clock;
use switchboard_jobs::{Jobs, JobsConfig};
use switchboard_messaging::{EventBus, Messaging, MessagingConfig};
use switchboard_store::Store;
use switchboard_voice::campaigns::CampaignRunner;
use switchboard_voice::dialer::Dialer;
use switchboard_voice::recordings::Recordings;
use switchboard_voice::recovery::Recovery;
use switchboard_voice::{PendingStreams, VoiceServices, VoiceStats};
use tokio::sync::watch;

/// How long a look-up at Retell's API may take (it stands between a call and its first words).
const RETELL_API_TIMEOUT: Duration = Duration::from_secs(5);

/// How long calls that heard the goodbye get to hang up before the server closes anyway.
const GOODBYE_WAIT: Duration = Duration::from_secs(15);

/// A bound, ready-to-run server (`build` then `run_until_stopped`), as the binary and the
/// tests use it.
pub struct Application {
    listener: tokio::net::TcpListener,
    router: Router,
    stop_calls: watch::Sender<bool>,
    voice_stats: Arc<VoiceStats>,
    pending: Arc<PendingStreams>,
    messaging: Messaging,
    jobs: Jobs,
    store: Store,
    lifecycle: Lifecycle,
    recovery: Recovery,
    dialer: Dialer,
    recordings: Recordings,
    campaigns: CampaignRunner,
    /// For the staff-action dispatcher.
    voice: VoiceServices,
    clock: Clock,
    drain_timeout: Duration,
    /// When it was built: numbers registered before that and never checked are checked once
    /// it runs (rows from before verification existed).
    built_at: switchboard_domain::Timestamp,
}

/// Why the application could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The address could not be bound.
    #[error("cannot listen: {0}")]
    Bind(#[from] std::io::Error),
    /// The store failed while preparing platform secrets.
    #[error("database error: {0}")]
    Store(#[from] switchboard_store::StoreError),
    /// The HTTP client for Twilio could not be built.
    #[error("{0}")]
    Twilio(#[from] switchboard_twilio::rest::RestError),
    /// The chat-model client could not be built.
    #[error("{0}")]
    Llm(#[from] switchboard_llm::LlmError),
    /// The Retell API client could not be built.
    #[error("{0}")]
    Retell(#[from] switchboard_retell::RetellApiError),
    /// Webhook or e-mail settings are unusable.
    #[error("{0}")]
    Jobs(#[from] switchboard_jobs::JobsError),
    /// The HTTP client of the speech providers could not be built.
    #[error("speech providers: {0}")]
    Speech(#[from] reqwest::Error),
}

impl Application {
    /// Binds `addr` (port 0 picks a free port) and registers this instance.
    pub async fn build(
        addr: SocketAddr,
        store: Store,
        config: &WebConfig,
    ) -> Result<Application, BuildError> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        // One key for the media tokens, shared by every instance on the same database.
        let token_secret: Arc<str> = store.platform_secret("media_token").await?.expose().into();
        let instance_id: Arc<str> =
            format!("ins_{}", switchboard_domain::ids::random_token(16)).into();
        store
            .register_instance(&instance_id, config.clock.now())
            .await?;
        let lifecycle = Lifecycle::new(instance_id.clone(), config.instance_lease);
        let (stop_calls, stop) = watch::channel(false);
        let voice_stats = Arc::new(VoiceStats::default());
        let rest = switchboard_twilio::rest::RestClient::new(&config.twilio_api_url)?
            .with_signalwire_base(config.signalwire_api_url.as_deref());
        let llm = if config.llm.configured() {
            Some(switchboard_llm::ChatClient::new(
                &config.llm.base_url,
                config.llm.api_key.clone(),
                &config.llm.model,
                config.llm.timeout,
            )?)
        } else {
            None
        };
        let cascade = Arc::new(config.voice.speech_providers(llm.clone())?);
        let jobs = Jobs::new(
            store.clone(),
            JobsConfig {
                dashboard_url: config.public_url.clone(),
                ..config.jobs.clone()
            },
            llm.clone(),
            config.clock.clone(),
        )?;
        let messaging = Messaging::new(
            store.clone(),
            MessagingConfig {
                public_url: config.public_url.clone(),
                ..config.messaging.clone()
            },
            llm,
            rest.clone(),
            config.clock.clone(),
            EventBus::default(),
        );
        let pending = Arc::new(PendingStreams::default());
        let dialer = Dialer::new(
            store.clone(),
            rest.clone(),
            config.clock.clone(),
            config.public_url.clone(),
            &instance_id,
        );
        let voice = VoiceServices {
            store: store.clone(),
            // One registry for every channel: calls can use `send_sms` too.
            tools: messaging.registry(),
            twilio: rest.clone(),
            config: config.voice.clone(),
            token_secret,
            stats: voice_stats.clone(),
            stop,
            instance_id,
            pending: pending.clone(),
            clock: config.clock.clone(),
            public_url: config.public_url.clone(),
            live: Arc::default(),
            cascade,
        };
        let recovery = Recovery::new(
            store.clone(),
            rest,
            config.clock.clone(),
            config.instance_lease,
        )
        .with_apology(&config.voice.apology)
        .with_stats(voice_stats.clone());
        let campaigns = CampaignRunner::new(store.clone(), config.clock.clone());
        let recordings = Recordings::new(store.clone(), voice.twilio.clone(), config.clock.clone());
        Ok(Application {
            listener,
            router: router(
                store.clone(),
                config,
                voice.clone(),
                messaging.clone(),
                jobs.clone(),
                lifecycle.clone(),
                switchboard_retell::RetellApi::new(&config.retell_api_url, RETELL_API_TIMEOUT)?,
            ),
            stop_calls,
            voice_stats,
            pending,
            messaging,
            jobs,
            store,
            lifecycle,
            recovery,
            dialer,
            recordings,
            campaigns,
            voice,
            clock: config.clock.clone(),
            drain_timeout: config.drain_timeout,
            built_at: switchboard_domain::Timestamp::now(),
        })
    }

    /// The background jobs (tests drive them with `run_once` / `drain`).
    pub fn jobs(&self) -> Jobs {
        self.jobs.clone()
    }

    /// The messaging service (tests drive its jobs with `run_jobs_once`).
    pub fn messaging(&self) -> Messaging {
        self.messaging.clone()
    }

    /// The recovery sweep for stranded calls (tests run it with `run_once`).
    pub fn recovery(&self) -> Recovery {
        self.recovery.clone()
    }

    /// The recording retention job (tests run it with `run_once`).
    pub fn recordings(&self) -> Recordings {
        self.recordings.clone()
    }

    /// The campaign runner (tests run it with `run_once`).
    pub fn campaigns(&self) -> CampaignRunner {
        self.campaigns.clone()
    }

    /// The outbound dialer (tests run it with `run_once`).
    pub fn dialer(&self) -> Dialer {
        self.dialer.clone()
    }

    /// The lifecycle flags (tests start a drain with it).
    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle.clone()
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves or a drain is requested through the API, then drains
    /// (see the module documentation): live calls go on for up to the drain timeout, then
    /// in-flight requests get `grace`, then background work stops.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> std::io::Result<()> {
        let lifecycle = self.lifecycle;
        // Media frames are small and latency-bound: no Nagle delay on accepted sockets.
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let closing = lifecycle.clone();
        // Connection info gives the sign-in rate limit the client's address.
        let server = axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { closing.closing().await });
        let mut server = tokio::spawn(server.into_future());
        let messaging = self.messaging;
        let worker = tokio::spawn(messaging.clone().run_worker());
        let jobs = self.jobs;
        let jobs_worker = tokio::spawn(jobs.clone().run_worker());
        let heartbeat = tokio::spawn(
            lifecycle
                .clone()
                .run_heartbeat(self.store.clone(), self.clock.clone()),
        );
        // A draining instance dials nothing new: its queued calls wait for another
        // instance or the next start.
        let until_draining = lifecycle.clone();
        let dialer = tokio::spawn(
            self.dialer
                .run_worker(async move { until_draining.drain_started().await }),
        );
        // A draining instance starts no campaign call either.
        let until_draining = lifecycle.clone();
        let campaigns = tokio::spawn(
            self.campaigns
                .run_worker(async move { until_draining.drain_started().await }),
        );
        let until_closing = lifecycle.clone();
        let retention = tokio::spawn(
            self.recordings
                .run_worker(async move { until_closing.closing().await }),
        );
        let until_closing = lifecycle.clone();
        let actions = tokio::spawn(switchboard_voice::run_dispatcher(
            self.voice.clone(),
            async move { until_closing.closing().await },
        ));
        let until_closing = lifecycle.clone();
        let recovery = tokio::spawn(
            self.recovery
                .run_worker(async move { until_closing.closing().await }),
        );
        // Numbers registered before verification existed are checked once, in the
        // background (every instance may do it; a second check changes nothing).
        let (store, rest) = (self.store.clone(), self.voice.twilio.clone());
        let built_at = self.built_at;
        tokio::spawn(async move {
            match crate::numbers::verify_unchecked_everywhere(&store, &rest, built_at).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    numbers = n,
                    "checked numbers registered before verification"
                ),
                Err(e) => tracing::error!(error = %e, "could not check unverified numbers"),
            }
        });

        let mut served = None;
        tokio::select! {
            _ = shutdown => tracing::info!("shutdown requested; draining"),
            _ = lifecycle.drain_started() => tracing::info!("drain requested; draining"),
            res = &mut server => {
                tracing::error!("the HTTP server stopped on its own");
                served = Some(res);
            }
        }
        lifecycle.begin_drain();
        // Other instances learn at once that this one takes no new calls.
        lifecycle.beat(&self.store, &self.clock).await;
        drain_calls(
            &self.voice_stats,
            &self.pending,
            &self.stop_calls,
            self.drain_timeout,
        )
        .await;

        lifecycle.close();
        let res = match served {
            Some(res) => res,
            None => match tokio::time::timeout(grace, &mut server).await {
                Ok(res) => res,
                Err(_) => {
                    tracing::warn!(
                        grace_seconds = grace.as_secs(),
                        "in-flight requests did not finish in time; stopping anyway"
                    );
                    server.abort();
                    Ok(Ok(()))
                }
            },
        };
        let res = res.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let _ = recovery.await;
        let _ = actions.await;
        let _ = retention.await;
        let _ = dialer.await;
        let _ = campaigns.await;
        let _ = heartbeat.await;
        // Replies still being written are handed back to the queue for the next start.
        messaging.shutdown(Duration::from_secs(2)).await;
        let _ = worker.await;
        // Deliveries in flight finish (bounded by their timeout) or are handed back.
        jobs.shutdown(Duration::from_secs(17)).await;
        let _ = jobs_worker.await;
        if let Err(e) = self
            .store
            .stop_instance(lifecycle.id(), self.clock.now())
            .await
        {
            tracing::warn!(error = %e, "cannot mark this instance stopped");
        }
        res
    }
}

/// Waits for live calls (and streams about to connect) to end, up to `timeout`; then tells
/// the rest to say goodbye and waits a little for them to hang up.
async fn drain_calls(
    stats: &VoiceStats,
    pending: &PendingStreams,
    stop_calls: &watch::Sender<bool>,
    timeout: Duration,
) {
    let live = || stats.active.load(Ordering::Relaxed).max(0) as usize + pending.waiting();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_report = tokio::time::Instant::now();
    if live() > 0 {
        tracing::info!(
            live_calls = live(),
            timeout_seconds = timeout.as_secs(),
            "waiting for live calls to end"
        );
    }
    while live() > 0 && tokio::time::Instant::now() < deadline {
        if last_report.elapsed() >= Duration::from_secs(30) {
            last_report = tokio::time::Instant::now();
            tracing::info!(live_calls = live(), "still draining");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if live() == 0 {
        tracing::info!("no live calls left");
        return;
    }
    tracing::warn!(
        live_calls = live(),
        "drain timeout reached: ending the remaining calls with a goodbye"
    );
    let _ = stop_calls.send(true);
    let until = tokio::time::Instant::now() + GOODBYE_WAIT;
    while stats.active.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
