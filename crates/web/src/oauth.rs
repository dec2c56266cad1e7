//! The OAuth 2.1 authorization server MCP clients use to connect with a URL alone: protected
//! resource metadata (RFC 9728), authorization server metadata (RFC 8414), dynamic client
//! registration (RFC 7591), the token endpoint (authorization code with PKCE S256, refresh
//! with rotation and replay detection) and revocation (RFC 7009). Consent is given by a
//! signed-in dashboard admin (`dashboard::oauth`). Tokens are scoped to one organization and
//! accepted only by `/mcp` (and the API requests its tools make).

use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;
use switchboard_domain::auth::hash_api_key;
use switchboard_domain::ids::random_token;
use switchboard_domain::oauth::{
    pkce_matches, ClientAuth, OAuthClient, Registration, ACCESS_TOKEN_SECONDS,
    REFRESH_TOKEN_SECONDS, SCOPE,
};
use switchboard_domain::Timestamp;
use switchboard_store::{IssuedTokens, OAuthGrant, Refresh};

/// The server's base URL: the configured public URL, else this request's `Host` over http
/// (development).
pub(crate) fn base_url(st: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &st.twilio.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// The resource tokens are issued for.
pub(crate) fn resource(base: &str) -> String {
    format!("{base}/mcp")
}

/// `GET /.well-known/oauth-protected-resource[/mcp]` (RFC 9728).
pub async fn protected_resource(State(st): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let base = base_url(&st, &headers);
    Json(json!({
        "resource": resource(&base),
        "authorization_servers": [base],
        "scopes_supported": [SCOPE],
        "bearer_methods_supported": ["header"],
        "resource_name": "Switchboard",
    }))
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
pub async fn authorization_server(State(st): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let base = base_url(&st, &headers);
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "registration_endpoint": format!("{base}/oauth/register"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
        "scopes_supported": [SCOPE],
        "authorization_response_iss_parameter_supported": true,
    }))
}

/// An OAuth error response (RFC 6749 §5.2).
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut res = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "OAuth request failed");
    oauth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "the server failed; try again",
    )
}

/// `POST /oauth/register` (RFC 7591).
pub async fn register(State(st): State<AppState>, body: Bytes) -> Response {
    let reg: Registration = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_client_metadata",
                &format!("the body is not client metadata: {e}"),
            )
        }
    };
    let auth = match reg.validate() {
        Ok(a) => a,
        Err(e) => return oauth_error(StatusCode::BAD_REQUEST, e.error, &e.description),
    };
    let secret = (auth != ClientAuth::None).then(|| format!("sbcs_{}", random_token(40)));
    let now = st.clock.now();
    let client = OAuthClient {
        id: format!("mcpc_{}", random_token(24)),
        name: reg
            .client_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "MCP client".into()),
        redirect_uris: reg.redirect_uris.clone(),
        auth,
        secret_hash: secret.as_deref().map(hash_api_key),
        created_at: now,
    };
    if let Err(e) = st.store.register_oauth_client(&client).await {
        return internal(e);
    }
    tracing::info!(client_id = %client.id, name = %client.name, "OAuth client registered");
    let mut answer = json!({
        "client_id": client.id,
        "client_id_issued_at": now.millis() / 1000,
        "client_name": client.name,
        "redirect_uris": client.redirect_uris,
        "token_endpoint_auth_method": auth.as_str(),
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": SCOPE,
    });
    if let Some(s) = secret {
        answer["client_secret"] = json!(s);
        answer["client_secret_expires_at"] = json!(0);
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Authenticates the client of a token or revocation request (RFC 6749 §2.3).
async fn client_of(
    st: &AppState,
    headers: &HeaderMap,
    f: &HashMap<String, String>,
) -> Result<OAuthClient, Response> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(i, p)| (url_decode(i), url_decode(p)))
        });
    let (id, secret) = match (&basic, f.get("client_id")) {
        (Some((i, p)), _) => (i.clone(), Some(p.clone())),
        (None, Some(i)) => (i.clone(), f.get("client_secret").cloned()),
        (None, None) => {
            return Err(oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client_id is required",
            ))
        }
    };
    let bad = || {
        oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong credentials",
        )
    };
    let client = match st.store.oauth_client(&id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(bad()),
        Err(e) => return Err(internal(e)),
    };
    match (&client.secret_hash, secret) {
        (None, _) => Ok(client),
        (Some(h), Some(s)) if *h == hash_api_key(&s) => Ok(client),
        _ => Err(bad()),
    }
}

fn url_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Issues an access and a refresh token for `grant`.
async fn issue(st: &AppState, grant: &OAuthGrant) -> Response {
    let access = format!("sbat_{}", random_token(40));
    let refresh = format!("sbrt_{}", random_token(48));
    let now = st.clock.now();
    let tokens = IssuedTokens {
        access_hash: &hash_api_key(&access),
        refresh_hash: &hash_api_key(&refresh),
        access_expires_at: Timestamp::from_millis(now.millis() + ACCESS_TOKEN_SECONDS * 1000),
        refresh_expires_at: Timestamp::from_millis(now.millis() + REFRESH_TOKEN_SECONDS * 1000),
    };
    if let Err(e) = st.store.issue_oauth_tokens(grant, &tokens, now).await {
        return internal(e);
    }
    let mut res = Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "refresh_token": refresh,
        "scope": grant.scope,
    }))
    .into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    res
}

/// `POST /oauth/token`: `authorization_code` (with `code_verifier`) and `refresh_token`.
pub async fn token(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let f = form(&body);
    let client = match client_of(&st, &headers, &f).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let base = base_url(&st, &headers);
    let invalid_grant = |d: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", d);
    if let Some(r) = f.get("resource") {
        if r.trim_end_matches('/') != resource(&base) && r.trim_end_matches('/') != base {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                "tokens are issued for this server's /mcp only",
            );
        }
    }
    let now = st.clock.now();
    match f.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let (Some(code), Some(verifier)) = (f.get("code"), f.get("code_verifier")) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "code and code_verifier are required",
                );
            };
            let taken = match st.store.take_oauth_code(&hash_api_key(code), now).await {
                Ok(t) => t,
                Err(e) => return internal(e),
            };
            let Some(code) = taken else {
                return invalid_grant("the code is unknown, expired or already used");
            };
            if code.grant.client_id != client.id {
                return invalid_grant("the code was issued to another client");
            }
            if f.get("redirect_uri")
                .is_some_and(|u| *u != code.redirect_uri)
            {
                return invalid_grant("redirect_uri differs from the authorization request's");
            }
            if !pkce_matches(verifier, &code.code_challenge) {
                return invalid_grant("the code_verifier does not match the code_challenge");
            }
            tracing::info!(client_id = %client.id, org_id = %code.grant.org_id, "OAuth tokens issued");
            issue(&st, &code.grant).await
        }
        Some("refresh_token") => {
            let Some(refresh) = f.get("refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token is required",
                );
            };
            match st
                .store
                .use_refresh_token(&hash_api_key(refresh), &client.id, now)
                .await
            {
                Ok(Refresh::Granted(grant)) => issue(&st, &grant).await,
                Ok(Refresh::Replayed) => {
                    tracing::warn!(client_id = %client.id, "a used refresh token was replayed; its tokens are revoked");
                    invalid_grant("the refresh token was already used; sign in again")
                }
                Ok(Refresh::Invalid) => invalid_grant("the refresh token is unknown or expired"),
                Err(e) => internal(e),
            }
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        ),
    }
}

/// `POST /oauth/revoke` (RFC 7009): always 200 for an authenticated client.
pub async fn revoke(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let f = form(&body);
    let client = match client_of(&st, &headers, &f).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(token) = f.get("token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    if let Err(e) = st
        .store
        .revoke_oauth_token(&hash_api_key(token), &client.id, st.clock.now())
        .await
    {
        return internal(e);
    }
    StatusCode::OK.into_response()
}

/// CORS for the metadata, registration, token and revocation endpoints: any origin, no
/// cookies (they carry no ambient credentials).
pub async fn cors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut res = next.run(req).await;
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    res
}

/// The CORS preflight of those endpoints.
pub async fn preflight() -> Response {
    use axum::http::HeaderValue;
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type, mcp-protocol-version"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    res
}
