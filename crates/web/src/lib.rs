//! Switchboard's HTTP edge: REST API v1, health, metrics and the OpenAPI document.

pub mod api;
mod api_doc;
mod appointments;
mod assistant;
mod calendar;
pub mod dashboard;
mod docs;
pub mod error;
mod event_log;
mod exports;
pub mod extract;
pub mod lifecycle;
mod mcp;
pub mod metrics;
pub mod numbers;
mod oauth;
mod outreach;
mod retell;
pub mod security;
mod server;
pub mod setup;
mod speech_check;
mod twilio;
mod twilio_outbound;
pub mod twilio_setup;
mod twilio_transfer;
mod twilio_warm;

pub use api_doc::api_routes;
pub use server::{Application, BuildError};

use crate::error::ApiError;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use lifecycle::Lifecycle;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::{Clock, Secret};
use switchboard_jobs::{Jobs, JobsConfig};
use switchboard_messaging::{Messaging, MessagingConfig};
use switchboard_store::Store;
use switchboard_voice::{VoiceConfig, VoiceServices};
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
    /// Route only numbers proven to be the organization's (production); otherwise an
    /// unverified number routes with a warning.
    pub require_verified_numbers: bool,
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
    /// How long a drain lets live calls go on before they hear the goodbye.
    pub drain_timeout: Duration,
    /// How long an instance's heartbeat counts; a silent instance's live calls are recovered
    /// by the others after it.
    pub instance_lease: Duration,
    /// Let custom tools reach loopback, private and link-local addresses
    /// (`SWITCHBOARD_TOOLS_ALLOW_PRIVATE`; development and tests).
    pub tools_allow_private: bool,
    /// Admission control.
    pub limits: security::Limits,
    /// Retell's REST API (`SWITCHBOARD_RETELL_API_URL`), asked to prove a socket's call.
    pub retell_api_url: String,
    /// Where SignalWire spaces are reached instead of `https://{space}`
    /// (`SWITCHBOARD_SIGNALWIRE_API_URL`; tests point it at a fake).
    pub signalwire_api_url: Option<String>,
}

/// Default drain timeout (`SWITCHBOARD_DRAIN_TIMEOUT_SECONDS`).
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(600);
/// Default instance lease (`SWITCHBOARD_INSTANCE_LEASE_SECONDS`).
pub const DEFAULT_INSTANCE_LEASE: Duration = Duration::from_secs(15);

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
            require_verified_numbers: false,
            twilio_api_url: switchboard_twilio::rest::DEFAULT_API_URL.into(),
            voice: VoiceConfig::default(),
            messaging: MessagingConfig::default(),
            llm: LlmConfig::default(),
            jobs: JobsConfig::default(),
            dashboard: dashboard::DashboardConfig::default(),
            clock: Clock::system(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            instance_lease: DEFAULT_INSTANCE_LEASE,
            tools_allow_private: false,
            limits: security::Limits::default(),
            retell_api_url: switchboard_retell::DEFAULT_API_URL.into(),
            signalwire_api_url: None,
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
    /// Unverified numbers do not route (production).
    pub require_verified_numbers: bool,
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
    /// Custom tools may target private addresses (`SWITCHBOARD_TOOLS_ALLOW_PRIVATE`).
    pub tools_allow_private: bool,
    /// Largest MCP request body.
    pub mcp_max_body: usize,
    /// Dashboard settings and sign-in limits.
    pub dashboard: Arc<dashboard::DashState>,
    /// Where "now" comes from.
    pub clock: Clock,
    /// Serving, draining or closing.
    pub lifecycle: Lifecycle,
    /// Admission control: the configured caps and the slots they hand out.
    pub admission: Arc<security::Admission>,
    /// `/docs`, rendered once at start from the OpenAPI document.
    pub docs_html: axum::body::Bytes,
    /// The setup checklist's outside answers, kept a minute.
    pub setup: Arc<setup::Probes>,
    /// A chat model is configured for text replies.
    pub text_model: bool,
    /// An SMTP server is configured for e-mails.
    pub smtp_configured: bool,
    /// The chat model (texts, the operator assistant), when configured.
    pub llm: Option<switchboard_llm::ChatClient>,
    /// The REST API in-process, for the assistant's tools (set once the router exists).
    pub api: Arc<std::sync::OnceLock<Arc<dyn switchboard_tools::mcp::ApiBackend>>>,
    /// Retell as a front end: its socket and webhooks.
    pub retell: switchboard_voice::retell::RetellFront,
}

impl AppState {
    /// The REST API in-process, once the router is built.
    pub(crate) fn api_backend(&self) -> Option<Arc<dyn switchboard_tools::mcp::ApiBackend>> {
        self.api.get().cloned()
    }
}

/// Builds the whole application router.
pub fn router(
    store: Store,
    config: &WebConfig,
    voice: VoiceServices,
    messaging: Messaging,
    jobs: Jobs,
    lifecycle: Lifecycle,
    retell_api: switchboard_retell::RetellApi,
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
    let mut doc = serde_json::to_value(&doc).unwrap_or_else(|e| {
        tracing::error!(error = %e, "could not render the OpenAPI document");
        serde_json::Value::Null
    });
    docs::enrich(&mut doc, config.public_url.as_deref());
    let docs_html = axum::body::Bytes::from(docs::render(&doc));
    let openapi = doc.to_string();
    let metrics = Arc::new(metrics::Metrics::default());
    let llm = messaging.chat_client().cloned();
    let retell = switchboard_voice::retell::RetellFront {
        svc: voice.clone(),
        llm: llm.clone(),
        api: retell_api,
        stats: Arc::default(),
    };
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
            require_verified_numbers: config.require_verified_numbers,
        }),
        voice,
        messaging,
        jobs,
        webhooks_allow_private: config.jobs.allow_private_targets,
        tools_allow_private: config.tools_allow_private,
        mcp_max_body: config.max_body_bytes,
        dashboard: Arc::new(dashboard::DashState::new(config.dashboard.clone())),
        clock: config.clock.clone(),
        lifecycle,
        admission: Arc::new(security::Admission::new(&config.limits)),
        setup: Arc::new(setup::Probes::default()),
        docs_html,
        text_model: config.llm.configured(),
        smtp_configured: config.jobs.smtp.is_some(),
        llm,
        api: Arc::default(),
        retell,
    };
    let admission = state.admission.clone();
    state
        .messaging
        .registry()
        .allow_private_targets(config.tools_allow_private);
    // The tools place calls and schedule texts through the same checks as the API.
    state
        .messaging
        .registry()
        .set_outreach(Arc::new(outreach::WebOutreach { st: state.clone() }));
    // Twilio's endpoints are part of Twilio's contract, not of our REST API document.
    let twilio_routes = Router::new()
        .route("/twilio/voice", post(twilio::voice_webhook))
        .route("/twilio/voice/status", post(twilio::voice_status))
        .route(
            "/twilio/voice/outbound",
            post(twilio_outbound::outbound_answered),
        )
        .route("/twilio/voice/amd", post(twilio_outbound::amd_result))
        .route("/twilio/voice/dial", post(twilio_transfer::dial_action))
        .route("/twilio/voice/warm", post(twilio_warm::answered))
        .route("/twilio/voice/warm/ask", post(twilio_warm::ask))
        .route("/twilio/voice/warm/answer", post(twilio_warm::answer))
        .route("/twilio/voice/warm/status", post(twilio_warm::status))
        .route(
            "/twilio/voice/recording",
            post(twilio_outbound::recording_status),
        )
        .route("/twilio/media", get(twilio::media_stream))
        .route("/twilio/messaging", post(twilio::messaging_webhook))
        .route("/twilio/messaging/status", post(twilio::messaging_status))
        .route("/retell/llm/{call_id}", get(retell::llm_socket))
        .route("/retell/webhook", post(retell::webhook));
    // OAuth for MCP clients (consent is a dashboard page). Browser-based clients call these
    // from other origins, so they answer CORS.
    let oauth_routes = Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(oauth::protected_resource).options(oauth::preflight),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(oauth::protected_resource).options(oauth::preflight),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::authorization_server).options(oauth::preflight),
        )
        .route(
            "/oauth/register",
            post(oauth::register).options(oauth::preflight),
        )
        .route("/oauth/token", post(oauth::token).options(oauth::preflight))
        .route(
            "/oauth/revoke",
            post(oauth::revoke).options(oauth::preflight),
        )
        .layer(axum::middleware::from_fn(oauth::cors));
    // The MCP server's tools call the REST API through their own copy of its routes.
    let (api_only, _) = api_routes();
    let api_only = api_only
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state.clone());
    // The assistant's tools use the same in-process API as the MCP server's.
    let _ = state
        .api
        .set(Arc::new(mcp::RouterBackend::new(api_only.clone())));
    let mcp_routes = mcp::routes(
        &state,
        api_only,
        &mcp::config(config.public_url.as_deref(), config.max_body_bytes),
    );
    api.merge(ops)
        .merge(twilio_routes)
        .merge(mcp_routes)
        .merge(oauth_routes)
        .merge(dashboard::routes())
        .route("/calendar/{file}", get(calendar::feed))
        .route("/docs", get(api_docs))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state)
        .layer(axum::middleware::from_fn(security::headers))
        .layer(axum::middleware::from_fn_with_state(
            admission,
            security::admit,
        ))
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

/// The API documentation as a page (rendered once at start; public, like the document).
async fn api_docs(State(st): State<AppState>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        st.docs_html.clone(),
    )
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Ready for new traffic: the database answers within 2 s and the instance is not draining
/// (503 `draining` from the moment a drain starts, so load balancers stop sending calls).
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, description = "Ready"), (status = 503, body = error::ErrorBody)))]
async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    if st.lifecycle.is_draining() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "this instance is draining: it finishes its live calls and takes no new ones",
        )
        .into_response();
    }
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
            "{}{}{}{}{}{}{}",
            st.metrics.render(),
            st.voice.stats.render(),
            st.retell.stats.render(),
            st.voice.cascade.stats.render(),
            st.messaging.stats().render(),
            st.jobs.stats().render(),
            st.admission.render()
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
