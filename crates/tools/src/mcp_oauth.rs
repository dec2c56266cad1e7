//! OAuth to external MCP servers, on the SDK's implementation of the MCP authorization flow
//! (RFC 9728 protected-resource discovery, RFC 8414 metadata, RFC 7591 dynamic client
//! registration, PKCE S256, RFC 8707 resource indicators, RFC 9207 `iss` checks, refresh).
//! What this module adds is where things live: every request goes through our guarded HTTP
//! client (no private addresses unless allowed, no redirects, bounded answers), the flow's
//! PKCE verifier waits in the database between the redirect and the callback (any instance
//! may receive the callback), and the tokens live on the server's row, refreshed under a lock
//! that spans instances.

use rmcp::transport::auth::{
    AuthorizationMetadata, AuthorizationMetadataSource, CredentialRefreshGuard, OAuthClientConfig,
    OAuthTokenResponse, StoredAuthorizationState, StoredCredentials,
};
use rmcp::transport::{
    AuthError, AuthorizationManager, CredentialStore, InMemoryCredentialStore, InMemoryStateStore,
    OAuthHttpClient, OAuthHttpClientError, OAuthHttpClientFuture, OAuthHttpRequest, StateStore,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard_domain::ids::{McpServerId, OrgId, UserId};
use switchboard_domain::mcp_server::{McpAuth, McpServer};
use switchboard_domain::Timestamp;
use switchboard_egress::{check_literal, describe_013, TOOLS};
use switchboard_store::Store;

/// How long an admin has between the redirect and the callback.
pub const FLOW_TTL_MS: i64 = 10 * 60 * 1000;
/// The largest answer read from an authorization server.
const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// How long one request to an authorization server may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The name Switchboard registers under.
const CLIENT_NAME: &str = "Switchboard";

/// What a flow settled on, kept for the callback and for every later token request.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct ClientDoc {
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    redirect_uri: String,
    /// The resource the tokens are for (RFC 8707), as the flow sent it.
    resource: String,
    scopes: Vec<String>,
    metadata: AuthorizationMetadata,
}

#[derive(Serialize, Deserialize)]
struct FlowDoc {
    client: ClientDoc,
    state: StoredAuthorizationState,
}

/// The hash a flow is stored under (the `state` itself travels through the browser only).
fn state_hash(state: &str) -> String {
    switchboard_domain::auth::hash_api_key(&format!("mcp-oauth-state:{state}"))
}

/// Every OAuth request through the guarded client. Redirects are never followed (the SDK
/// treats a redirect on discovery as "not found here" and tries the next location).
pub(crate) struct GuardedHttp {
    client: reqwest013::Client,
}

impl GuardedHttp {
    pub(crate) fn new(allow_private: bool) -> Result<Arc<GuardedHttp>, String> {
        let client = switchboard_egress::client_013(TOOLS, allow_private, REQUEST_TIMEOUT)
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Arc::new(GuardedHttp { client }))
    }
}

fn boxed(message: String) -> OAuthHttpClientError {
    Box::new(std::io::Error::other(message))
}

impl OAuthHttpClient for GuardedHttp {
    fn execute(&self, request: OAuthHttpRequest) -> OAuthHttpClientFuture<'_> {
        Box::pin(async move {
            let timeout = request
                .timeout
                .unwrap_or(REQUEST_TIMEOUT)
                .min(REQUEST_TIMEOUT);
            let mut req = reqwest013::Request::try_from(request.request)
                .map_err(|e| boxed(format!("bad request: {e}")))?;
            *req.timeout_mut() = Some(timeout);
            let mut response = self
                .client
                .execute(req)
                .await
                .map_err(|e| boxed(describe_013(&e)))?;
            let mut builder = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| boxed(describe_013(&e)))?
            {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(boxed(format!(
                        "the authorization server's answer exceeds {MAX_ANSWER_BYTES} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            builder
                .body(body)
                .map_err(|e| boxed(format!("bad response: {e}")))
        })
    }
}

/// The flow's state, caught as the SDK saves it so it can be stored with the flow.
#[derive(Default, Clone)]
struct Captured(Arc<Mutex<Option<(String, StoredAuthorizationState)>>>);

#[async_trait::async_trait]
impl StateStore for Captured {
    async fn save(&self, csrf: &str, state: StoredAuthorizationState) -> Result<(), AuthError> {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some((csrf.to_owned(), state));
        }
        Ok(())
    }
    async fn load(&self, csrf: &str) -> Result<Option<StoredAuthorizationState>, AuthError> {
        Ok(self
            .0
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .filter(|(c, _)| c == csrf)
            .map(|(_, s)| s))
    }
    async fn delete(&self, _csrf: &str) -> Result<(), AuthError> {
        if let Ok(mut slot) = self.0.lock() {
            *slot = None;
        }
        Ok(())
    }
}

/// A manager for a settled client: its metadata, its registration, its resource.
pub(crate) async fn manager(
    client: &ClientDoc,
    http: Arc<GuardedHttp>,
) -> Result<AuthorizationManager, String> {
    let mut m = AuthorizationManager::new_with_oauth_http_client(client.resource.as_str(), http)
        .await
        .map_err(|e| format!("bad OAuth configuration: {e}"))?;
    m.set_metadata(client.metadata.clone());
    let mut config = OAuthClientConfig::new(client.client_id.clone(), client.redirect_uri.clone())
        .with_scopes(client.scopes.clone());
    if let Some(s) = &client.client_secret {
        config = config.with_client_secret(s.clone());
    }
    m.configure_client(config)
        .map_err(|e| format!("bad OAuth configuration: {e}"))?;
    Ok(m)
}

/// Asks the server without credentials, as a client first does: its 401 names the metadata
/// (`WWW-Authenticate: Bearer resource_metadata=...`). `None` when it did not challenge.
async fn challenge(http: &GuardedHttp, url: &str) -> Option<String> {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": CLIENT_NAME, "version": env!("CARGO_PKG_VERSION")}}});
    let response = http
        .client
        .post(url)
        .header(http::header::ACCEPT, "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .ok()?;
    if response.status() != http::StatusCode::UNAUTHORIZED {
        return None;
    }
    response
        .headers()
        .get(http::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Starts connecting `server` for `user`: discovers its authorization server, registers
/// Switchboard there (unless a client id is configured), stores the flow and answers the
/// URL to send the admin's browser to.
pub async fn start(
    store: &Store,
    org: &OrgId,
    server: &McpServer,
    user: &UserId,
    redirect_uri: &str,
    allow_private: bool,
) -> Result<String, String> {
    let McpAuth::Oauth {
        scopes,
        client_id,
        client_secret,
    } = &server.auth
    else {
        return Err("this server is not set to use OAuth".into());
    };
    check_literal(TOOLS, &server.url, allow_private)?;
    let http = GuardedHttp::new(allow_private)?;
    let challenged = challenge(&http, &server.url).await;
    let mut m = AuthorizationManager::new_with_oauth_http_client(server.url.as_str(), http.clone())
        .await
        .map_err(|e| format!("bad server URL: {e}"))?;
    let resolved = m
        .resolve_metadata_from_challenge(challenged.as_deref())
        .await
        .map_err(|e| format!("cannot discover the server's authorization server: {e}"))?;
    if resolved.source == AuthorizationMetadataSource::LegacyEndpointFallback {
        return Err(
            "the server publishes no OAuth metadata (RFC 9728 or RFC 8414), so it does not \
             appear to use OAuth; choose another authentication"
                .into(),
        );
    }
    let metadata = resolved.metadata;
    m.set_metadata(metadata.clone());
    let mut chosen: Vec<String> = if scopes.is_empty() {
        m.select_initial_scopes(&[]).await
    } else {
        scopes.clone()
    };
    let offers_offline = metadata
        .scopes_supported
        .as_ref()
        .is_some_and(|s| s.iter().any(|s| s == "offline_access"));
    if !chosen.is_empty() && offers_offline && !chosen.iter().any(|s| s == "offline_access") {
        // Some authorization servers issue refresh tokens only for this scope.
        chosen.push("offline_access".into());
    }
    let scope_refs: Vec<&str> = chosen.iter().map(String::as_str).collect();
    let config = match client_id {
        Some(id) => {
            let mut c =
                OAuthClientConfig::new(id.clone(), redirect_uri).with_scopes(chosen.clone());
            if let Some(s) = client_secret {
                c = c.with_client_secret(s.expose().to_owned());
            }
            c
        }
        None => m
            .register_client(CLIENT_NAME, redirect_uri, &scope_refs)
            .await
            .map_err(|e| {
                format!("the authorization server refused to register Switchboard: {e}")
            })?,
    };
    m.configure_client(config.clone())
        .map_err(|e| format!("bad OAuth configuration: {e}"))?;
    let captured = Captured::default();
    m.set_state_store(captured.clone());
    let url = m
        .get_authorization_url(&scope_refs)
        .await
        .map_err(|e| format!("cannot start the authorization: {e}"))?;
    let resource = url::Url::parse(&url)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "resource")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_else(|| server.url.clone());
    let Some((csrf, state)) = captured.0.lock().ok().and_then(|mut s| s.take()) else {
        return Err("the authorization request could not be prepared".into());
    };
    let doc = FlowDoc {
        client: ClientDoc {
            client_id: config.client_id,
            client_secret: config.client_secret,
            redirect_uri: redirect_uri.to_owned(),
            resource,
            scopes: chosen,
            metadata,
        },
        state,
    };
    let data = serde_json::to_string(&doc).map_err(|e| e.to_string())?;
    let now = Timestamp::now();
    store
        .create_mcp_oauth_flow(
            org,
            &server.id,
            user,
            &state_hash(&csrf),
            &data,
            now,
            Timestamp::from_millis(now.millis() + FLOW_TTL_MS),
        )
        .await
        .map_err(|e| format!("cannot store the authorization: {e}"))?;
    tracing::info!(org_id = %org, server = %server.name, issuer = ?doc.client.metadata.issuer, "MCP server authorization started");
    Ok(url)
}

/// Why a callback did not connect a server.
#[derive(Debug)]
pub enum CallbackError {
    /// No flow with this `state` in the organization, or it expired (or was used).
    UnknownFlow,
    /// Another admin started it.
    OtherUser,
    /// The flow was for this server and failed for this reason.
    Failed(McpServerId, String),
}

/// Completes a flow from the authorization server's redirect (`code`, `state`, `iss`; or
/// its `error`); answers the server connected.
pub async fn complete(
    store: &Store,
    org: &OrgId,
    user: &UserId,
    params: &HashMap<String, String>,
    allow_private: bool,
) -> Result<McpServerId, CallbackError> {
    let state = params.get("state").map(String::as_str).unwrap_or_default();
    let flow = store
        .take_mcp_oauth_flow(org, &state_hash(state), Timestamp::now())
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot read the MCP authorization flow");
            CallbackError::UnknownFlow
        })?
        .ok_or(CallbackError::UnknownFlow)?;
    if &flow.user_id != user {
        return Err(CallbackError::OtherUser);
    }
    let server = flow.server_id.clone();
    let failed = |why: String| CallbackError::Failed(server.clone(), why);
    if let Some(error) = params.get("error") {
        let detail = params
            .get("error_description")
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        return Err(failed(format!(
            "the authorization server answered `{error}`{detail}"
        )));
    }
    let Some(code) = params.get("code") else {
        return Err(failed("the authorization server sent no code".into()));
    };
    let doc: FlowDoc = serde_json::from_str(flow.data.expose())
        .map_err(|e| failed(format!("corrupt flow: {e}")))?;
    let http = GuardedHttp::new(allow_private).map_err(&failed)?;
    let mut m = manager(&doc.client, http).await.map_err(&failed)?;
    let states = InMemoryStateStore::new();
    states
        .save(state, doc.state)
        .await
        .map_err(|e| failed(e.to_string()))?;
    m.set_state_store(states);
    let held = InMemoryCredentialStore::new();
    m.set_credential_store(held.clone());
    m.exchange_code_for_token_with_issuer(code, state, params.get("iss").map(String::as_str))
        .await
        .map_err(|e| failed(format!("the token request failed: {e}")))?;
    let creds = held
        .load()
        .await
        .ok()
        .flatten()
        .ok_or_else(|| failed("no tokens were issued".into()))?;
    let expires_at = expiry(&creds);
    let tokens = serde_json::to_string(&creds).map_err(|e| failed(e.to_string()))?;
    let client = serde_json::to_string(&doc.client).map_err(|e| failed(e.to_string()))?;
    store
        .connect_mcp_oauth(org, &server, &client, &tokens, expires_at, Timestamp::now())
        .await
        .map_err(|e| failed(format!("cannot store the tokens: {e}")))?;
    tracing::info!(org_id = %org, server_id = %server, "MCP server connected with OAuth");
    Ok(server)
}

/// When stored credentials' access token expires.
fn expiry(creds: &StoredCredentials) -> Option<Timestamp> {
    let tokens: &OAuthTokenResponse = creds.token_response.as_ref()?;
    let received = creds.token_received_at?;
    let secs = serde_json::to_value(tokens).ok()?["expires_in"].as_u64()?;
    Some(Timestamp::from_millis(
        (received.saturating_add(secs) as i64).saturating_mul(1000),
    ))
}

/// The tokens of one connected server, read from and written to its row; refreshes are
/// serialized in this instance and, on PostgreSQL, across instances.
pub(crate) struct DbCredentials {
    pub(crate) store: Store,
    pub(crate) org: OrgId,
    pub(crate) server: McpServerId,
    /// The grant last loaded (a refresh saves onto it only).
    pub(crate) grant: Mutex<Option<Timestamp>>,
    /// This instance's side of the refresh lock.
    pub(crate) local: Arc<tokio::sync::Mutex<()>>,
}

fn store_error(e: impl std::fmt::Display) -> AuthError {
    AuthError::CredentialStoreError(e.to_string())
}

#[async_trait::async_trait]
impl CredentialStore for DbCredentials {
    async fn load(&self) -> Result<Option<StoredCredentials>, AuthError> {
        let held = self
            .store
            .mcp_oauth_held(&self.org, &self.server)
            .await
            .map_err(store_error)?;
        if let Ok(mut g) = self.grant.lock() {
            *g = held.connected_at;
        }
        match held.tokens {
            Some(t) => serde_json::from_str(t.expose())
                .map(Some)
                .map_err(store_error),
            None => Ok(None),
        }
    }

    async fn save(&self, credentials: StoredCredentials) -> Result<(), AuthError> {
        let grant = self.grant.lock().ok().and_then(|g| *g);
        let Some(grant) = grant else {
            return Err(store_error("the server is no longer connected"));
        };
        let tokens = serde_json::to_string(&credentials).map_err(store_error)?;
        let saved = self
            .store
            .refresh_mcp_oauth(
                &self.org,
                &self.server,
                grant,
                &tokens,
                expiry(&credentials),
            )
            .await
            .map_err(store_error)?;
        if !saved {
            tracing::info!(server_id = %self.server, "refreshed MCP tokens not saved: the server was disconnected or connected again meanwhile");
        }
        Ok(())
    }

    async fn clear(&self) -> Result<(), AuthError> {
        let grant = self.grant.lock().ok().and_then(|g| *g);
        self.store
            .disconnect_mcp_oauth(&self.org, &self.server, grant, None, Timestamp::now())
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn on_refresh_token_rejected(
        &self,
        _credentials: &StoredCredentials,
    ) -> Result<(), AuthError> {
        let grant = self.grant.lock().ok().and_then(|g| *g);
        let why = "the authorization server refused to refresh the tokens; an admin must connect \
                   the server again";
        tracing::warn!(org_id = %self.org, server_id = %self.server, "{why}");
        self.store
            .disconnect_mcp_oauth(&self.org, &self.server, grant, Some(why), Timestamp::now())
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn acquire_refresh_guard(&self) -> Result<Option<CredentialRefreshGuard>, AuthError> {
        let local = self.local.clone().lock_owned().await;
        let shared = self
            .store
            .lock_mcp_oauth_refresh(&self.server)
            .await
            .map_err(store_error)?;
        Ok(Some(CredentialRefreshGuard::new((local, shared))))
    }
}

/// A manager for a connected server's calls, its tokens on the server's row; `Err` says why
/// the server cannot be used (not connected).
pub(crate) async fn connected_manager(
    creds: DbCredentials,
    http: Arc<GuardedHttp>,
) -> Result<AuthorizationManager, String> {
    let held = creds
        .store
        .mcp_oauth_held(&creds.org, &creds.server)
        .await
        .map_err(|e| format!("cannot read the server's OAuth tokens: {e}"))?;
    let (Some(client), Some(_)) = (held.client, held.tokens) else {
        return Err(
            "not connected: an admin must connect this server (OAuth) from the dashboard".into(),
        );
    };
    let doc: ClientDoc =
        serde_json::from_str(client.expose()).map_err(|e| format!("corrupt OAuth client: {e}"))?;
    let mut m = manager(&doc, http).await?;
    m.set_credential_store(creds);
    Ok(m)
}
