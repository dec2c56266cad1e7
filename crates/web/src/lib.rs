//! Switchboard's HTTP edge: REST API v1, health, metrics and the OpenAPI document.

pub mod api;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod metrics;
mod twilio;

use crate::error::ApiError;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::{Clock, Secret};
use switchboard_jobs::{Jobs, JobsConfig};
use switchboard_messaging::{EventBus, Messaging, MessagingConfig};
use switchboard_store::Store;
use switchboard_voice::{VoiceConfig, VoiceServices, VoiceStats};
use tokio::sync::watch;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Settings the HTTP layer needs.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// An operator key from configuration (in addition to stored operator keys).
    pub operator_key: Option<Secret>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// The public base URL Twilio reaches us at (`https://voice.example.com`, no trailing `/`).
    pub public_url: Option<String>,
    /// Development only: accept Twilio requests without checking their signature.
    pub twilio_skip_signature: bool,
    /// Twilio REST base URL.
    pub twilio_api_url: String,
    /// Voice call settings.
    pub voice: VoiceConfig,
    /// Text messaging settings (its `public_url` is filled from `public_url`).
    pub messaging: MessagingConfig,
    /// The chat model for text agents.
    pub llm: LlmConfig,
    /// Webhooks, analysis and e-mail (its `dashboard_url` is filled from `public_url`).
    pub jobs: JobsConfig,
    /// Dashboard sessions and sign-in limits.
    pub dashboard: dashboard::DashboardConfig,
    /// Where "now" comes from (adjustable in tests).
    pub clock: Clock,
}

/// The OpenAI-compatible chat-completions endpoint.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// Base URL, e.g. `https://api.openai.com/v1` or `http://localhost:8000/v1`.
    pub base_url: String,
    /// API key (optional for local servers).
    pub api_key: Option<Secret>,
    /// Default model (agents may override it).
    pub model: String,
    /// Whole-request timeout.
    pub timeout: Duration,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            base_url: switchboard_llm::DEFAULT_BASE_URL.into(),
            api_key: None,
            model: switchboard_llm::DEFAULT_MODEL.into(),
            timeout: Duration::from_secs(60),
        }
    }
}

impl LlmConfig {
    /// Whether a model is configured: a key, or a non-default (self-hosted) endpoint.
    pub fn configured(&self) -> bool {
        self.api_key.is_some() || self.base_url != switchboard_llm::DEFAULT_BASE_URL
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            operator_key: None,
            max_body_bytes: 1024 * 1024,
            public_url: None,
            twilio_skip_signature: false,
            twilio_api_url: switchboard_twilio::rest::DEFAULT_API_URL.into(),
            voice: VoiceConfig::default(),
            messaging: MessagingConfig::default(),
            llm: LlmConfig::default(),
            jobs: JobsConfig::default(),
            dashboard: dashboard::DashboardConfig::default(),
            clock: Clock::system(),
        }
    }
}

/// What the Twilio endpoints need besides the store.
#[derive(Debug, Clone)]
pub struct TwilioEdge {
    /// Public base URL (signatures are computed over it; the media URL is built from it).
    pub public_url: Option<String>,
    /// Signature checks off (development only).
    pub skip_signature: bool,
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// SHA-256 of the configured operator key.
    pub operator_key_hash: Option<String>,
    /// Metrics registry.
    pub metrics: Arc<metrics::Metrics>,
    /// The OpenAPI document, rendered to JSON once at start.
    pub openapi: axum::body::Bytes,
    /// Twilio endpoint settings.
    pub twilio: Arc<TwilioEdge>,
    /// Voice call services.
    pub voice: VoiceServices,
    /// Text messaging.
    pub messaging: Messaging,
    /// Webhooks, analysis, e-mail.
    pub jobs: Jobs,
    /// Whether webhook endpoints may target private addresses.
    pub webhooks_allow_private: bool,
    /// Dashboard settings and sign-in limits.
    pub dashboard: Arc<dashboard::DashState>,
    /// Where "now" comes from.
    pub clock: Clock,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard API", version = "1", description = "Multi-tenant AI phone and messaging agents. Authenticate with `Authorization: Bearer <key>`; errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`."),
    modifiers(&SecurityAddon),
    components(schemas(error::ErrorBody, api::webhooks::EventEnvelope)),
)]
struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer =
            || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        components.add_security_scheme("api_key", bearer());
        components.add_security_scheme("operator_key", bearer());
    }
}

/// The API routes and their OpenAPI document, built from the same registrations so that a
/// route cannot exist without its documentation.
pub fn api_routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use api::*;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(orgs::create_org, orgs::list_orgs))
        .routes(routes!(orgs::get_org))
        .routes(routes!(orgs::disable_org))
        .routes(routes!(orgs::enable_org))
        .routes(routes!(orgs::create_org_api_key))
        .routes(routes!(api_keys::create_api_key, api_keys::list_api_keys))
        .routes(routes!(api_keys::revoke_api_key))
        .routes(routes!(agents::create_agent, agents::list_agents))
        .routes(routes!(
            agents::get_agent,
            agents::update_agent,
            agents::delete_agent
        ))
        .routes(routes!(numbers::create_number, numbers::list_numbers))
        .routes(routes!(
            numbers::get_number,
            numbers::update_number,
            numbers::delete_number
        ))
        .routes(routes!(contacts::create_contact, contacts::list_contacts))
        .routes(routes!(
            contacts::get_contact,
            contacts::update_contact,
            contacts::delete_contact
        ))
        .routes(routes!(
            conversations::list_conversations,
            conversations::create_conversation
        ))
        .routes(routes!(conversations::get_conversation))
        .routes(routes!(
            conversations::list_messages,
            conversations::send_message
        ))
        .routes(routes!(chat::chat))
        .routes(routes!(chat::event_stream))
        .routes(routes!(calls::list_calls))
        .routes(routes!(calls::get_call))
        .routes(routes!(webhooks::analyze_call))
        .routes(routes!(webhooks::create_endpoint, webhooks::list_endpoints))
        .routes(routes!(
            webhooks::get_endpoint,
            webhooks::update_endpoint,
            webhooks::delete_endpoint
        ))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::get_delivery))
        .routes(routes!(webhooks::resend_delivery))
        .routes(routes!(webhooks::list_events))
        .routes(routes!(webhooks::event_types))
        .routes(routes!(webhooks::list_emails))
        .routes(routes!(settings::get_settings, settings::put_settings))
        .split_for_parts()
}

/// Builds the whole application router.
pub fn router(
    store: Store,
    config: &WebConfig,
    voice: VoiceServices,
    messaging: Messaging,
    jobs: Jobs,
) -> Router {
    let (api, doc) = api_routes();
    // Operational endpoints go through the same registration, so they are documented too.
    let (ops, ops_doc) = OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_text))
        .split_for_parts();
    let mut doc = doc;
    doc.merge(ops_doc);
    let openapi = doc.to_json().unwrap_or_else(|e| {
        tracing::error!(error = %e, "could not render the OpenAPI document");
        "null".to_owned()
    });
    let metrics = Arc::new(metrics::Metrics::default());
    let state = AppState {
        store,
        operator_key_hash: config
            .operator_key
            .as_ref()
            .map(|k| switchboard_domain::auth::hash_api_key(k.expose())),
        metrics: metrics.clone(),
        openapi: axum::body::Bytes::from(openapi),
        twilio: Arc::new(TwilioEdge {
            public_url: config.public_url.clone(),
            skip_signature: config.twilio_skip_signature,
        }),
        voice,
        messaging,
        jobs,
        webhooks_allow_private: config.jobs.allow_private_targets,
        dashboard: Arc::new(dashboard::DashState::new(config.dashboard.clone())),
        clock: config.clock.clone(),
    };
    // Twilio's endpoints are part of Twilio's contract, not of our REST API document.
    let twilio_routes = Router::new()
        .route("/twilio/voice", post(twilio::voice_webhook))
        .route("/twilio/voice/status", post(twilio::voice_status))
        .route("/twilio/media", get(twilio::media_stream))
        .route("/twilio/messaging", post(twilio::messaging_webhook))
        .route("/twilio/messaging/status", post(twilio::messaging_status));
    api.merge(ops)
        .merge(twilio_routes)
        .merge(dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::track,
        ))
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "The document")))]
async fn openapi_json(State(st): State<AppState>) -> impl IntoResponse {
    // Rendered once at start; served as bytes rather than re-serialised per request.
    (
        [(header::CONTENT_TYPE, "application/json")],
        st.openapi.clone(),
    )
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// The database answers (503 when it does not within 2 s).
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "Ready"), (status = 503, body = error::ErrorBody)))]
async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    match tokio::time::timeout(Duration::from_secs(2), st.store.ping()).await {
        Ok(Ok(())) => {
            (StatusCode::OK, Json(serde_json::json!({"status": "ready"}))).into_response()
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database unreachable");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "database unreachable",
            )
            .into_response()
        }
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "database did not answer within 2 s",
        )
        .into_response(),
    }
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text")))]
async fn metrics_text(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        format!(
            "{}{}{}{}",
            st.metrics.render(),
            st.voice.stats.render(),
            st.messaging.stats().render(),
            st.jobs.stats().render()
        ),
    )
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

/// A bound, ready-to-run server (`build` then `run_until_stopped`), as the binary and the
/// tests use it.
pub struct Application {
    listener: tokio::net::TcpListener,
    router: Router,
    stop_calls: watch::Sender<bool>,
    voice_stats: Arc<VoiceStats>,
    messaging: Messaging,
    jobs: Jobs,
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
    /// Webhook or e-mail settings are unusable.
    #[error("{0}")]
    Jobs(#[from] switchboard_jobs::JobsError),
}

impl Application {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn build(
        addr: SocketAddr,
        store: Store,
        config: &WebConfig,
    ) -> Result<Application, BuildError> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        // One key for the media tokens, shared by every instance on the same database.
        let token_secret: Arc<str> = store.platform_secret("media_token").await?.into();
        let (stop_calls, stop) = watch::channel(false);
        let voice_stats = Arc::new(VoiceStats::default());
        let rest = switchboard_twilio::rest::RestClient::new(&config.twilio_api_url)?;
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
        let voice = VoiceServices {
            store: store.clone(),
            // One registry for every channel: calls can use `send_sms` too.
            tools: messaging.registry(),
            twilio: rest,
            config: config.voice.clone(),
            token_secret,
            stats: voice_stats.clone(),
            stop,
        };
        Ok(Application {
            listener,
            router: router(store, config, voice, messaging.clone(), jobs.clone()),
            stop_calls,
            voice_stats,
            messaging,
            jobs,
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

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests and
    /// live calls finish for up to `grace`. Calls still live shortly before the deadline are
    /// ended with the apology (recorded as `shutdown`), and the method returns.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> std::io::Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let notify = async move {
            shutdown.await;
            let _ = tx.send(());
        };
        // Media frames are small and latency-bound: no Nagle delay on accepted sockets.
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        // Connection info gives the sign-in rate limit the client's address.
        let server = axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(notify);
        let messaging = self.messaging;
        let worker = tokio::spawn(messaging.clone().run_worker());
        let jobs = self.jobs;
        let jobs_worker = tokio::spawn(jobs.clone().run_worker());
        let stop_calls = self.stop_calls;
        let stats = self.voice_stats;
        let deadline = async move {
            if rx.await.is_err() {
                std::future::pending::<()>().await;
            }
            let started = tokio::time::Instant::now();
            let calls_deadline = started + grace.saturating_sub(Duration::from_secs(3));
            loop {
                let active = stats.active.load(std::sync::atomic::Ordering::Relaxed);
                if active <= 0 {
                    break;
                }
                if tokio::time::Instant::now() >= calls_deadline {
                    tracing::warn!(active_calls = active, "ending live calls for shutdown");
                    let _ = stop_calls.send(true);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tokio::time::sleep_until(started + grace).await;
        };
        let res = tokio::select! {
            res = server => res,
            _ = deadline => {
                tracing::warn!(grace_seconds = grace.as_secs(), "in-flight requests did not finish in time; stopping anyway");
                Ok(())
            }
        };
        // Replies still being written are handed back to the queue for the next start.
        messaging.shutdown(Duration::from_secs(2)).await;
        let _ = worker.await;
        // Deliveries in flight finish (bounded by their timeout) or are handed back.
        jobs.shutdown(Duration::from_secs(12)).await;
        let _ = jobs_worker.await;
        res
    }
}
