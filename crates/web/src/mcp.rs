//! `/mcp`: Switchboard as an MCP server. This layer authenticates each request (an
//! organization API key as `Authorization: Bearer sk_...`, or an OAuth access token), keeps
//! sessions bound to the organization that opened them, and hands the request to the SDK's
//! Streamable HTTP service (`switchboard_tools::mcp`). The tools call the REST API in-process as
//! the authenticated principal (not authenticated a second time), through a copy of the API
//! router (not the whole application, which contains this endpoint).

use crate::error::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use switchboard_domain::Timestamp;
use switchboard_tools::mcp::{ApiAnswer, ApiBackend, McpConfig, McpPrincipal};
use tower::ServiceExt;

/// The largest API answer a tool reads (lists are paged well below this).
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

/// Runs tools' API requests through the API router.
pub(crate) struct RouterBackend {
    api: Router,
}

impl RouterBackend {
    /// Over `api` (the API routes with their state).
    pub(crate) fn new(api: Router) -> RouterBackend {
        RouterBackend { api }
    }
}

impl ApiBackend for RouterBackend {
    fn request<'a>(
        &'a self,
        who: &'a McpPrincipal,
        method: http::Method,
        path_and_query: String,
        body: Option<Value>,
    ) -> Pin<Box<dyn Future<Output = ApiAnswer> + Send + 'a>> {
        Box::pin(async move {
            let mut req = Request::builder()
                .method(method)
                .uri(path_and_query)
                .extension(crate::extract::McpInternal {
                    org: who.org.clone(),
                    actor: who.actor.clone(),
                });
            let body = match body {
                Some(v) => {
                    req = req.header(header::CONTENT_TYPE, "application/json");
                    Body::from(v.to_string())
                }
                None => Body::empty(),
            };
            let failed = |why: String| {
                tracing::error!(error = %why, "MCP tool request could not be made");
                ApiAnswer {
                    status: 500,
                    body: serde_json::json!({"error": {"code": "internal", "message": "the request failed"}}),
                }
            };
            let req = match req.body(body) {
                Ok(r) => r,
                Err(e) => return failed(e.to_string()),
            };
            let res = match self.api.clone().oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let status = res.status().as_u16();
            match axum::body::to_bytes(res.into_body(), MAX_ANSWER_BYTES).await {
                Ok(bytes) => ApiAnswer {
                    status,
                    body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                },
                Err(e) => failed(e.to_string()),
            }
        })
    }
}

/// The MCP endpoint's settings from the server's: the public host and loopback are accepted
/// as `Host`; the public origin and loopback origins as `Origin`.
pub(crate) fn config(public_url: Option<&str>, max_body_bytes: usize) -> McpConfig {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1", "[::1]"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut origins: Vec<String> = ["http://localhost:*", "http://127.0.0.1:*"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    if let Some(u) = public_url.and_then(|u| url::Url::parse(u).ok()) {
        if let Some(h) = u.host_str() {
            hosts.push(h.to_owned());
            if let Some(p) = u.port() {
                hosts.push(format!("{h}:{p}"));
            }
        }
        origins.push(u.origin().ascii_serialization());
    }
    McpConfig {
        allowed_hosts: hosts,
        allowed_origins: origins,
        max_body_bytes,
    }
}

/// The `/mcp` routes: the SDK's service behind [`authenticate`].
pub(crate) fn routes(state: &AppState, api: Router, config: &McpConfig) -> Router<AppState> {
    let service = switchboard_tools::mcp::service(
        state.store.clone(),
        Arc::new(RouterBackend::new(api)),
        config,
    );
    Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
}

/// 401 with the challenge MCP clients follow to the OAuth metadata (RFC 9728 §5.1).
fn challenge(st: &AppState, parts: &http::request::Parts, e: ApiError) -> Response {
    let metadata = format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        crate::oauth::base_url(st, &parts.headers)
    );
    let invalid = if parts.headers.contains_key(header::AUTHORIZATION) {
        ", error=\"invalid_token\""
    } else {
        ""
    };
    let mut res = e.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "Bearer realm=\"switchboard\", resource_metadata=\"{metadata}\"{invalid}"
    )) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

/// Authenticates an MCP request, checks its session belongs to the caller's organization,
/// and binds a session the response opens.
async fn authenticate(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let auth = match crate::extract::authenticate(&parts, &st, true).await {
        Ok(a) => a,
        Err(e) if e.status == StatusCode::UNAUTHORIZED => return challenge(&st, &parts, e),
        Err(e) => return e.into_response(),
    };
    let principal = McpPrincipal {
        org: auth.org.clone(),
        actor: auth.actor.clone(),
    };
    // A session opened by another organization is unknown here (404, as the transport
    // answers for any unknown session: the client starts a new one).
    let session = parts
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = &session {
        match st.store.mcp_session_org(id, Timestamp::now()).await {
            Ok(Some(org)) if org != principal.org => {
                tracing::warn!(org_id = %principal.org, "MCP session of another organization presented");
                return (StatusCode::NOT_FOUND, "session not found").into_response();
            }
            Ok(_) => {}
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    parts.extensions.insert(principal.clone());
    // A POSTed message is read here (within the size limit) so that what is not one JSON-RPC
    // message gets the JSON-RPC error codes rather than the transport's plain-text 415.
    let body = if parts.method == http::Method::POST {
        let bytes = match axum::body::to_bytes(body, st.mcp_max_body).await {
            Ok(b) => b,
            Err(_) => {
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body over {} bytes", st.mcp_max_body),
                )
                    .into_response()
            }
        };
        if let Some(error) = switchboard_tools::mcp::malformed(&bytes) {
            return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
        }
        Body::from(bytes)
    } else {
        body
    };
    let res = next.run(Request::from_parts(parts, body)).await;
    if session.is_none() {
        if let Some(opened) = res
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            if let Err(e) = st
                .store
                .bind_mcp_session(opened, &principal.org, &principal.actor, Timestamp::now())
                .await
            {
                tracing::error!(error = %e, "cannot record the MCP session");
                return ApiError::from(e).into_response();
            }
        }
    }
    res
}
