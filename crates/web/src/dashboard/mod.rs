//! The web dashboard: server-rendered pages (maud) with a little JavaScript, served by the same
//! binary as the API, signed in with e-mail and password, scoped by the session's organization
//! exactly like the API is scoped by its key.
//!
//! Every form carries the session's CSRF token; script requests send it as `x-csrf-token`.
//! Live pages follow `/live` (server-sent events read from the outbox's event log) and
//! re-render the part of the page that changed.

mod account;
mod agent_calls;
mod agent_form;
mod agent_pipeline;
mod agents;
mod alerts;
mod analytics;
mod appointment_form;
mod appointments;
mod assistant;
mod assistant_voice;
mod auth;
mod call_control;
mod calls;
mod campaigns;
mod charts;
mod contacts;
mod conversations;
mod custom_tools;
mod knowledge;
mod layout;
mod links;
mod live;
mod manage;
mod mcp_oauth;
mod mcp_servers;
pub(crate) mod oauth;
mod overview;
mod routes;
mod settings;
mod setup;
mod team;
mod tools;
mod web_call;
mod webhooks;

use crate::AppState;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::time::Duration;
use switchboard_domain::auth::hash_api_key;
use switchboard_domain::ids::OrgId;
use switchboard_domain::values::Role;
use switchboard_store::{DashboardSession, StoreError};

pub use auth::LoginLimiter;
pub use routes::routes;

/// The session cookie's name (over plain http: on localhost, in development).
pub const SESSION_COOKIE: &str = "sb_session";
/// The sign-in form's double-submit cookie (before a session exists).
pub const LOGIN_CSRF_COOKIE: &str = "sb_login";
/// [`SESSION_COOKIE`] over https: the `__Host-` prefix makes browsers refuse it unless it is
/// `Secure`, for this exact host and path `/`, so a sibling subdomain cannot plant one.
pub const SECURE_SESSION_COOKIE: &str = "__Host-sb_session";
/// [`LOGIN_CSRF_COOKIE`] over https.
pub const SECURE_LOGIN_CSRF_COOKIE: &str = "__Host-sb_login";

/// Dashboard settings.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// How long a session lasts without use; each use within the second half renews it.
    pub session_ttl: Duration,
    /// Mark cookies `Secure` (on when the public URL is https).
    pub secure_cookies: bool,
    /// Failed sign-ins allowed per e-mail in `login_window` (four times as many per client
    /// address).
    pub login_attempts: u32,
    /// The rate-limit window for sign-ins.
    pub login_window: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`SWITCHBOARD_TRUSTED_PROXIES`).
    pub trusted_proxies: crate::security::TrustedProxies,
}

impl DashboardConfig {
    /// The session cookie's name ([`SECURE_SESSION_COOKIE`] over https).
    pub fn session_cookie(&self) -> &'static str {
        if self.secure_cookies {
            SECURE_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        }
    }

    /// The sign-in form's cookie name ([`SECURE_LOGIN_CSRF_COOKIE`] over https).
    pub fn login_cookie(&self) -> &'static str {
        if self.secure_cookies {
            SECURE_LOGIN_CSRF_COOKIE
        } else {
            LOGIN_CSRF_COOKIE
        }
    }
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            login_attempts: 5,
            login_window: Duration::from_secs(15 * 60),
            trusted_proxies: crate::security::TrustedProxies::default(),
        }
    }
}

/// The dashboard's shared state.
#[derive(Debug)]
pub struct DashState {
    /// Settings.
    pub config: DashboardConfig,
    /// Failed sign-in counts.
    pub limiter: LoginLimiter,
}

impl DashState {
    /// State for `config`.
    pub fn new(config: DashboardConfig) -> DashState {
        DashState {
            limiter: LoginLimiter::new(config.login_attempts, config.login_window),
            config,
        }
    }
}

/// A signed-in request: the session and the organization it acts in. The only source of the
/// organization for dashboard handlers.
#[derive(Debug, Clone)]
pub struct Dash {
    /// The session as stored.
    pub session: DashboardSession,
    /// The organization every read and write is scoped to.
    pub org: OrgId,
    /// SHA-256 of the cookie token (to switch organization or sign out).
    token_hash: String,
    /// For a page (GET): the organization's last event when the request began, before the
    /// page read anything. A live page's event stream starts after it, so an event committed
    /// while the page rendered still reaches it.
    pub seen: Option<i64>,
}

impl Dash {
    /// Whether the user may change things in the organization (admins and operators).
    pub fn can_manage(&self) -> bool {
        matches!(self.session.user.role, Role::Admin | Role::Operator)
    }

    /// Refuses members.
    pub fn require_manage(&self) -> Result<(), DashError> {
        if self.can_manage() {
            Ok(())
        } else {
            Err(DashError::Forbidden)
        }
    }

    /// Whether the user runs the platform (sees every organization).
    pub fn is_operator(&self) -> bool {
        self.session.user.role == Role::Operator
    }
}

/// Why a dashboard request failed, rendered as a page (or a redirect to sign-in).
#[derive(Debug)]
pub enum DashError {
    /// No valid session: go to the sign-in page, then back to `next`.
    SignIn(String),
    /// The user's role does not allow this.
    Forbidden,
    /// No such page or record in this organization.
    NotFound,
    /// The request is malformed or its CSRF token is wrong.
    BadRequest(String),
    /// The organization is disabled.
    Disabled,
    /// A failure of ours (logged, not shown).
    Internal(String),
}

impl From<StoreError> for DashError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => DashError::NotFound,
            StoreError::Invalid(v) => DashError::BadRequest(format!("{}: {}", v.field, v.message)),
            StoreError::Conflict(m) => DashError::BadRequest(m),
            other => DashError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for DashError {
    fn into_response(self) -> Response {
        let (status, title, text) = match self {
            DashError::SignIn(next) => {
                let to = format!("/login?next={}", url_encode(&next));
                return Redirect::to(&to).into_response();
            }
            DashError::Forbidden => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                "Your role can read this organization but not change it. Ask an admin.".to_owned(),
            ),
            DashError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such page or record in this organization.".to_owned(),
            ),
            DashError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Bad request", m),
            DashError::Disabled => (
                StatusCode::FORBIDDEN,
                "Organization disabled",
                "This organization is disabled; ask the operator to enable it.".to_owned(),
            ),
            DashError::Internal(cause) => {
                tracing::error!(error = %cause, "dashboard request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The request failed on our side; it has been logged.".to_owned(),
                )
            }
        };
        (status, layout::bare(title, &text)).into_response()
    }
}

/// Cookie `name` from the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value with the dashboard's attributes.
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    max_age: Option<u64>,
    secure: bool,
) -> HeaderValue {
    let mut s = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    match max_age {
        Some(age) => s.push_str(&format!("; Max-Age={age}")),
        None => s.push_str("; Max-Age=0"),
    }
    if secure {
        s.push_str("; Secure");
    }
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Compares two secrets in time independent of where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub(crate) fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A redirect to `path` showing `message` as the page's flash.
pub(crate) fn redirect_with_flash(path: &str, message: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::response::Redirect::to(&format!("{path}?flash={}", url_encode(message))).into_response()
}

/// Only same-site relative paths are followed after sign-in (no open redirect).
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

async fn load(parts: &Parts, state: &AppState) -> Result<Option<Dash>, DashError> {
    let Some(token) = cookie(&parts.headers, state.dashboard.config.session_cookie()) else {
        return Ok(None);
    };
    if token.is_empty() || token.len() > 100 {
        return Ok(None);
    }
    let token_hash = hash_api_key(token);
    let now = state.clock.now();
    let Some(session) = state.store.dashboard_session(&token_hash, now).await? else {
        return Ok(None);
    };
    if session.org_disabled && session.user.role != Role::Operator {
        return Err(DashError::Disabled);
    }
    // Sliding expiry: renew once less than half the lifetime is left.
    let ttl = state.dashboard.config.session_ttl.as_millis() as i64;
    if session.expires_at.millis() - now.millis() < ttl / 2 {
        let until = switchboard_domain::Timestamp::from_millis(now.millis() + ttl);
        state
            .store
            .extend_dashboard_session(&token_hash, until)
            .await?;
    }
    let seen = if parts.method == axum::http::Method::GET {
        Some(state.store.last_event_seq(&session.org_id).await?)
    } else {
        None
    };
    Ok(Some(Dash {
        org: session.org_id.clone(),
        session,
        token_hash,
        seen,
    }))
}

impl FromRequestParts<AppState> for Dash {
    type Rejection = DashError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, DashError> {
        let dash = load(parts, state).await?.ok_or_else(|| {
            let next = if parts.method == Method::GET {
                parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_else(|| "/".into())
            } else {
                "/".into()
            };
            DashError::SignIn(next)
        })?;
        // State-changing requests must come from our own pages: the token from the form is
        // checked by the handler (`Form::csrf`); scripts send it as a header, checked here.
        if parts.method != Method::GET && parts.method != Method::HEAD {
            let cross_site = parts
                .headers
                .get("sec-fetch-site")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v == "cross-site");
            if cross_site {
                return Err(DashError::BadRequest(
                    "cross-site requests are refused".into(),
                ));
            }
            // Multipart forms (uploads) carry `_csrf` as a field too, checked by their handler.
            let is_form = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| {
                    v.starts_with("application/x-www-form-urlencoded")
                        || v.starts_with("multipart/form-data")
                });
            if !is_form {
                let ok = parts
                    .headers
                    .get("x-csrf-token")
                    .and_then(|h| h.to_str().ok())
                    .is_some_and(|v| same_secret(v, &dash.session.csrf_token));
                if !ok {
                    return Err(DashError::BadRequest(
                        "the form is out of date; reload the page and try again".into(),
                    ));
                }
            }
        }
        Ok(dash)
    }
}

impl OptionalFromRequestParts<AppState> for Dash {
    type Rejection = DashError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, DashError> {
        load(parts, state).await
    }
}

/// A submitted form: its fields, with the CSRF token checked against the session.
#[derive(Debug, Default)]
pub struct Fields(pub HashMap<String, String>);

impl Fields {
    /// Parses an `application/x-www-form-urlencoded` body and checks its `_csrf`.
    pub fn parse(dash: &Dash, body: &[u8]) -> Result<Fields, DashError> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(body) {
            // Repeated fields (checkboxes) are joined with newlines.
            map.entry(k.into_owned())
                .and_modify(|e: &mut String| {
                    e.push('\n');
                    e.push_str(&v);
                })
                .or_insert_with(|| v.into_owned());
        }
        let ok = map
            .get("_csrf")
            .is_some_and(|t| same_secret(t, &dash.session.csrf_token));
        if !ok {
            return Err(DashError::BadRequest(
                "the form is out of date (CSRF token missing or wrong); reload the page and try again"
                    .into(),
            ));
        }
        Ok(Fields(map))
    }

    /// [`Fields::parse`] for a change to the organization: also refuses members (after the
    /// CSRF check, so a forged request never learns the role).
    pub fn managing(dash: &Dash, body: &[u8]) -> Result<Fields, DashError> {
        let f = Fields::parse(dash, body)?;
        dash.require_manage()?;
        Ok(f)
    }

    /// A field, trimmed; empty is `None`.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    /// A field as entered (empty when absent).
    pub fn raw(&self, k: &str) -> &str {
        self.0.get(k).map(String::as_str).unwrap_or("")
    }

    /// Every value of a repeated field.
    pub fn all(&self, k: &str) -> Vec<String> {
        self.0
            .get(k)
            .map(|s| {
                s.split('\n')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A checkbox.
    pub fn checked(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }
}

/// Field errors shown beside their inputs.
#[derive(Debug, Default)]
pub struct FieldErrors(pub HashMap<String, String>);

impl FieldErrors {
    /// Records an error on `field` (the first one wins).
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    /// Records a domain validation error under the form field it belongs to: nested fields
    /// (`analysis_fields[0].name`, `turn_detection.threshold`) show beside their top-level
    /// input with the full path in the message.
    pub fn validation(&mut self, v: &switchboard_domain::ValidationError) {
        let top = v
            .field
            .split(['.', '['])
            .next()
            .unwrap_or(v.field.as_str())
            .to_owned();
        let msg = if top == v.field {
            v.message.clone()
        } else {
            format!("{}: {}", v.field, v.message)
        };
        self.add(&top, msg);
    }

    /// Records an API error beside its form field (validation names the field, a nested one
    /// shows at its top-level input; a conflict is the name's); any other error is returned.
    pub fn api(&mut self, e: crate::error::ApiError) -> Result<(), DashError> {
        use axum::http::StatusCode;
        match (e.status, e.field) {
            (StatusCode::UNPROCESSABLE_ENTITY, Some(f)) => {
                let message = e
                    .message
                    .strip_prefix(&format!("{f}: "))
                    .unwrap_or(&e.message)
                    .to_owned();
                let at = f.split(['.', '[']).next().unwrap_or(&f).to_owned();
                self.add(&at, message);
                Ok(())
            }
            (StatusCode::CONFLICT, _) => {
                self.add("name", e.message);
                Ok(())
            }
            (StatusCode::NOT_FOUND, _) => Err(DashError::NotFound),
            _ => Err(DashError::Internal(e.message)),
        }
    }

    /// The error for `field`.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }

    /// No errors.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
