//! An MCP server protected by OAuth, with its own small authorization server, as the MCP
//! authorization specification has them: the resource answers 401 with
//! `WWW-Authenticate: Bearer resource_metadata=...`; RFC 9728 protected-resource metadata
//! names the authorization server; RFC 8414 metadata lists its endpoints; RFC 7591 dynamic
//! client registration; an authorization endpoint that checks the client, the registered
//! redirect URI, PKCE S256 and the RFC 8707 `resource`, and sends the browser back with
//! `code`, `state` and the RFC 9207 `iss` (it approves at once: the consent screen is the
//! part a test cannot sign in to); a token endpoint that verifies the PKCE verifier, uses a
//! code once, and rotates refresh tokens (a used refresh token is refused with
//! `invalid_grant`, as strict servers do).
//!
//! The MCP side speaks Streamable HTTP with JSON answers and a `GET` event stream, over which
//! it sends `notifications/tools/list_changed` when [`OAuthMcp::set_tools`] changes its tools.
//! Its one real tool, `whoami`, answers which token called it.
//!
//! Tokens advertise the lifetime [`OAuthMcp::set_access_ttl`] sets (what a client plans its
//! refresh by); the resource accepts them until [`OAuthMcp::expire_access_tokens`], so tests
//! decide when a token stops working instead of waiting for a clock.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

/// The scope the resource advertises.
pub const SCOPE: &str = "crm.read";

struct Client {
    redirect_uris: Vec<String>,
    secret: Option<String>,
}

struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
}

struct Token {
    client_id: String,
    serial: usize,
    valid: bool,
}

#[derive(Default)]
struct Inner {
    clients: HashMap<String, Client>,
    codes: HashMap<String, Code>,
    access: HashMap<String, Token>,
    refresh: HashMap<String, Token>,
    issued: usize,
    access_ttl: u64,
    tools: Vec<Value>,
    registrations: usize,
    refreshes: usize,
    unauthorized: usize,
    token_requests: Vec<HashMap<String, String>>,
    list_requests: usize,
    calls: Vec<(String, usize)>,
    /// While set, a refresh waits this long for a second one to arrive before it is
    /// answered (to catch two clients spending one refresh token together).
    hold_refreshes: Option<std::time::Duration>,
    refreshes_waiting: usize,
}

struct Shared {
    base: String,
    inner: Mutex<Inner>,
    arrived: tokio::sync::Notify,
    changes: tokio::sync::broadcast::Sender<()>,
}

impl Shared {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }
    fn resource(&self) -> String {
        format!("{}/mcp", self.base)
    }
}

/// The running server.
pub struct OAuthMcp {
    /// `http://127.0.0.1:port`: the authorization server's issuer.
    pub base: String,
    /// `{base}/mcp`: the MCP endpoint (the protected resource).
    pub mcp_url: String,
    shared: Arc<Shared>,
}

/// The tool every instance starts with.
pub fn whoami_tool() -> Value {
    json!({"name": "whoami", "description": "Which CRM account and token are calling",
        "inputSchema": {"type": "object", "properties": {}}})
}

impl OAuthMcp {
    /// Starts on a free loopback port with one tool, `whoami`, and hour-long access tokens.
    pub async fn start() -> OAuthMcp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake OAuth MCP server");
        let port = listener.local_addr().expect("local address").port();
        let base = format!("http://127.0.0.1:{port}");
        let shared = Arc::new(Shared {
            base: base.clone(),
            inner: Mutex::new(Inner {
                access_ttl: 3600,
                tools: vec![whoami_tool()],
                ..Inner::default()
            }),
            changes: tokio::sync::broadcast::channel(16).0,
            arrived: tokio::sync::Notify::new(),
        });
        let app = Router::new()
            .route(
                "/.well-known/oauth-protected-resource/mcp",
                get(resource_metadata),
            )
            .route(
                "/.well-known/oauth-protected-resource",
                get(resource_metadata),
            )
            .route(
                "/.well-known/oauth-authorization-server",
                get(server_metadata),
            )
            .route("/register", post(register))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/mcp", post(mcp_post).get(mcp_get).delete(mcp_delete))
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        OAuthMcp {
            mcp_url: format!("{base}/mcp"),
            base,
            shared,
        }
    }

    /// The `expires_in` of tokens issued from now on (0: already due for refresh).
    pub fn set_access_ttl(&self, secs: u64) {
        self.shared.with(|i| i.access_ttl = secs);
    }

    /// Every access token issued so far stops working (the resource answers 401).
    pub fn expire_access_tokens(&self) {
        self.shared.with(|i| {
            for t in i.access.values_mut() {
                t.valid = false;
            }
        });
    }

    /// Every refresh token issued so far is refused (`invalid_grant`), as after a revocation.
    pub fn revoke_refresh_tokens(&self) {
        self.shared.with(|i| {
            for t in i.refresh.values_mut() {
                t.valid = false;
            }
        });
    }

    /// Replaces the tools and tells every open event stream
    /// (`notifications/tools/list_changed`).
    pub fn set_tools(&self, tools: Vec<Value>) {
        self.shared.with(|i| i.tools = tools);
        let _ = self.shared.changes.send(());
    }

    /// From now on a refresh request waits up to `window` for another one before it is
    /// answered: two clients that refresh with the same token at the same moment are then
    /// both seen, and the second refused (`invalid_grant`), however the scheduler runs them.
    pub fn hold_refreshes(&self, window: std::time::Duration) {
        self.shared.with(|i| i.hold_refreshes = Some(window));
    }

    /// Clients registered.
    pub fn registrations(&self) -> usize {
        self.shared.with(|i| i.registrations)
    }
    /// Refresh-token grants answered with new tokens.
    pub fn refreshes(&self) -> usize {
        self.shared.with(|i| i.refreshes)
    }
    /// MCP requests refused with 401.
    pub fn unauthorized(&self) -> usize {
        self.shared.with(|i| i.unauthorized)
    }
    /// Every credential this server handed out: access and refresh tokens and client
    /// secrets (to prove none is stored in clear).
    pub fn issued_secrets(&self) -> Vec<String> {
        self.shared.with(|i| {
            i.access
                .keys()
                .chain(i.refresh.keys())
                .cloned()
                .chain(i.clients.values().filter_map(|c| c.secret.clone()))
                .collect()
        })
    }
    /// Every token request's form, in order.
    pub fn token_requests(&self) -> Vec<HashMap<String, String>> {
        self.shared.with(|i| i.token_requests.clone())
    }
    /// `tools/list` requests answered.
    pub fn list_requests(&self) -> usize {
        self.shared.with(|i| i.list_requests)
    }
    /// Tool calls: the tool and the serial number of the access token that made it.
    pub fn calls(&self) -> Vec<(String, usize)> {
        self.shared.with(|i| i.calls.clone())
    }
    /// Event streams open now.
    pub fn listeners(&self) -> usize {
        self.shared.changes.receiver_count()
    }
}

fn random() -> String {
    let mut bytes = [0u8; 24];
    for b in bytes.iter_mut() {
        *b = rand_byte();
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Not cryptographic (a fake); unique enough for tokens in a test.
fn rand_byte() -> u8 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish() as u8
}

async fn resource_metadata(State(s): State<Arc<Shared>>) -> Json<Value> {
    Json(
        json!({"resource": s.resource(), "authorization_servers": [s.base],
        "scopes_supported": [SCOPE], "bearer_methods_supported": ["header"]}),
    )
}

async fn server_metadata(State(s): State<Arc<Shared>>) -> Json<Value> {
    let b = &s.base;
    Json(json!({
        "issuer": b,
        "authorization_endpoint": format!("{b}/authorize"),
        "token_endpoint": format!("{b}/token"),
        "registration_endpoint": format!("{b}/register"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_post"],
        "scopes_supported": [SCOPE, "offline_access"],
        "authorization_response_iss_parameter_supported": true,
    }))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn register(State(s): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    let uris: Vec<String> = body["redirect_uris"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|u| u.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if uris.is_empty()
        || uris
            .iter()
            .any(|u| !(u.starts_with("http://") || u.starts_with("https://")))
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "redirect_uris must list http(s) URLs",
        );
    }
    let public = body["token_endpoint_auth_method"].as_str() == Some("none");
    let id = format!("client_{}", random());
    let secret = (!public).then(random);
    s.with(|i| {
        i.registrations += 1;
        i.clients.insert(
            id.clone(),
            Client {
                redirect_uris: uris.clone(),
                secret: secret.clone(),
            },
        );
    });
    let mut answer = json!({"client_id": id, "redirect_uris": uris,
        "client_name": body["client_name"], "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": if public { "none" } else { "client_secret_post" }});
    if let Some(secret) = secret {
        answer["client_secret"] = json!(secret);
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(uri).expect("registered redirect URIs parse");
    for (k, v) in pairs {
        u.query_pairs_mut().append_pair(k, v);
    }
    u.to_string()
}

async fn authorize(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let known = s.with(|i| {
        i.clients
            .get(get("client_id"))
            .map(|c| c.redirect_uris.iter().any(|u| u == get("redirect_uri")))
    });
    // An unknown client or redirect URI is never redirected to (RFC 6749 4.1.2.1).
    if known != Some(true) {
        return (
            StatusCode::BAD_REQUEST,
            "unknown client or unregistered redirect_uri",
        )
            .into_response();
    }
    let back = get("redirect_uri");
    let state = get("state");
    let refuse = |error: &str| {
        let to = with_query(
            back,
            &[("error", error), ("state", state), ("iss", &s.base)],
        );
        (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
    };
    if get("response_type") != "code" {
        return refuse("unsupported_response_type");
    }
    if get("code_challenge").is_empty() || get("code_challenge_method") != "S256" {
        return refuse("invalid_request");
    }
    if get("resource") != s.resource() {
        return refuse("invalid_target");
    }
    let code = random();
    s.with(|i| {
        i.codes.insert(
            code.clone(),
            Code {
                client_id: get("client_id").to_owned(),
                redirect_uri: back.to_owned(),
                challenge: get("code_challenge").to_owned(),
            },
        )
    });
    let to = with_query(back, &[("code", &code), ("state", state), ("iss", &s.base)]);
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

fn issue(i: &mut Inner, client_id: &str) -> Value {
    i.issued += 1;
    let (access, refresh) = (format!("at_{}", random()), format!("rt_{}", random()));
    for (map, key) in [(&mut i.access, &access), (&mut i.refresh, &refresh)] {
        map.insert(
            key.clone(),
            Token {
                client_id: client_id.to_owned(),
                serial: i.issued,
                valid: true,
            },
        );
    }
    json!({"access_token": access, "token_type": "Bearer", "expires_in": i.access_ttl,
        "refresh_token": refresh, "scope": SCOPE})
}

async fn token(State(s): State<Arc<Shared>>, Form(f): Form<HashMap<String, String>>) -> Response {
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    if get("grant_type") == "refresh_token" {
        let hold = s.with(|i| {
            i.refreshes_waiting += 1;
            i.hold_refreshes
        });
        s.arrived.notify_waiters();
        if let Some(window) = hold {
            // Pacing of the fake, not synchronization: answer when a second refresh is here
            // or the window has passed.
            let _ = tokio::time::timeout(window, async {
                loop {
                    let notified = s.arrived.notified();
                    if s.with(|i| i.refreshes_waiting) >= 2 {
                        return;
                    }
                    notified.await;
                }
            })
            .await;
        }
        s.with(|i| i.refreshes_waiting -= 1);
    }
    let resource = s.resource();
    let answer = s.with(|i| {
        i.token_requests.push(f.clone());
        let client_id = get("client_id");
        match i.clients.get(client_id) {
            None => return Err(("invalid_client", "unknown client")),
            Some(c) => {
                if c.secret
                    .as_deref()
                    .is_some_and(|s| s != get("client_secret"))
                {
                    return Err(("invalid_client", "wrong client secret"));
                }
            }
        }
        if get("resource") != resource {
            return Err(("invalid_target", "resource must name the MCP server"));
        }
        match get("grant_type") {
            "authorization_code" => {
                let Some(code) = i.codes.remove(get("code")) else {
                    return Err(("invalid_grant", "unknown or used code"));
                };
                if code.client_id != client_id || code.redirect_uri != get("redirect_uri") {
                    return Err(("invalid_grant", "code issued to another client or redirect"));
                }
                let digest = Sha256::digest(get("code_verifier").as_bytes());
                let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
                if computed != code.challenge {
                    return Err(("invalid_grant", "PKCE verification failed"));
                }
                Ok(issue(i, client_id))
            }
            "refresh_token" => {
                let ok = i.refresh.get_mut(get("refresh_token")).is_some_and(|t| {
                    let ok = t.valid && t.client_id == client_id;
                    // Rotation: a refresh token works once.
                    t.valid = false;
                    ok
                });
                if !ok {
                    return Err(("invalid_grant", "unknown, used or revoked refresh token"));
                }
                i.refreshes += 1;
                Ok(issue(i, client_id))
            }
            _ => Err((
                "unsupported_grant_type",
                "use authorization_code or refresh_token",
            )),
        }
    });
    match answer {
        Ok(tokens) => ([(header::CACHE_CONTROL, "no-store")], Json(tokens)).into_response(),
        Err((error, description)) => oauth_error(StatusCode::BAD_REQUEST, error, description),
    }
}

/// The access token's serial when it is valid; else the 401 to answer.
fn authenticate(s: &Shared, headers: &HeaderMap) -> Result<usize, Box<Response>> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let serial = s.with(|i| {
        let found = given.and_then(|t| i.access.get(t)).filter(|t| t.valid);
        if found.is_none() {
            i.unauthorized += 1;
        }
        found.map(|t| t.serial)
    });
    serial.ok_or_else(|| {
        let error = if given.is_some() {
            ", error=\"invalid_token\""
        } else {
            ""
        };
        let challenge = format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", scope=\"{SCOPE}\"{error}",
            s.base
        );
        Box::new(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
            )
                .into_response(),
        )
    })
}

fn rpc(id: &Value, result: Value) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::HeaderName::from_static("mcp-session-id"),
                "oauth-session",
            ),
        ],
        json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
    )
        .into_response()
}

async fn mcp_post(State(s): State<Arc<Shared>>, headers: HeaderMap, body: String) -> Response {
    let serial = match authenticate(&s, &headers) {
        Ok(n) => n,
        Err(r) => return *r,
    };
    let msg: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let id = msg["id"].clone();
    if id.is_null() {
        return StatusCode::ACCEPTED.into_response();
    }
    match msg["method"].as_str().unwrap_or_default() {
        "initialize" => rpc(
            &id,
            json!({"protocolVersion": "2025-06-18",
                "capabilities": {"tools": {"listChanged": true}},
                "serverInfo": {"name": "fake-crm", "version": "1.0.0"}}),
        ),
        "tools/list" => {
            let tools = s.with(|i| {
                i.list_requests += 1;
                i.tools.clone()
            });
            rpc(&id, json!({"tools": tools}))
        }
        "tools/call" => {
            let name = msg["params"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let known = s.with(|i| {
                i.calls.push((name.clone(), serial));
                i.tools.iter().any(|t| t["name"] == name.as_str())
            });
            if known && name == "whoami" {
                rpc(
                    &id,
                    json!({"content": [{"type": "text", "text": format!("account acme, token #{serial}")}]}),
                )
            } else if known {
                rpc(
                    &id,
                    json!({"content": [{"type": "text", "text": format!("{name} done")}]}),
                )
            } else {
                rpc(
                    &id,
                    json!({"content": [{"type": "text", "text": format!("unknown tool {name}")}], "isError": true}),
                )
            }
        }
        "ping" => rpc(&id, json!({})),
        other => (
            [(header::CONTENT_TYPE, "application/json")],
            json!({"jsonrpc": "2.0", "id": id,
                "error": {"code": -32601, "message": format!("method not found: {other}")}})
            .to_string(),
        )
            .into_response(),
    }
}

async fn mcp_get(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(r) = authenticate(&s, &headers) {
        return *r;
    }
    let rx = s.changes.subscribe();
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(()) => {
                    let note =
                        json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
                    let event = Event::default().event("message").data(note.to_string());
                    return Some((Ok::<_, Infallible>(event), rx));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events).into_response()
}

async fn mcp_delete() -> StatusCode {
    StatusCode::OK
}
