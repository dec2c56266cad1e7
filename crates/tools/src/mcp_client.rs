//! Agents using the tools of external MCP servers (Streamable HTTP, through the official SDK
//! on our guarded HTTP client: no private addresses unless allowed, no redirects, bounded
//! answers).
//!
//! Each instance keeps one MCP session per server while it is in use (closed after five idle
//! minutes), so a conversation does not pay a handshake and the server can tell us when its
//! tools change: `notifications/tools/list_changed` drops the cached list and fetches it again
//! at once. Otherwise a list is reused for a minute (and refetched when the server is changed
//! here). A server that cannot be reached leaves its tools out of that conversation, logged,
//! never failing it. OAuth servers get their token from the server's row for every request,
//! refreshed before it expires and once when the server answers 401.

use crate::mcp_oauth::{self, DbCredentials, GuardedHttp};
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, Tool};
use rmcp::service::{NotificationContext, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpClientTransportConfig,
};
use rmcp::transport::{AuthClient, StreamableHttpClientTransport};
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use switchboard_domain::ids::{McpServerId, OrgId};
use switchboard_domain::mcp_server::{McpAuth, McpServer};
use switchboard_egress::{check_literal, TOOLS};
use switchboard_store::Store;

/// How long a server's tool list is reused without a change notification.
const TOOLS_TTL: Duration = Duration::from_secs(60);
/// How long connecting and listing may take before the server's tools are left out.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from a server (a tool list or a result).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// How long an unused session stays open.
const IDLE: Duration = Duration::from_secs(300);

type Session = RunningService<RoleClient, Listener>;

/// A server's tool list as last fetched.
#[derive(Clone)]
struct ToolList {
    /// The server's `updated_at` when listed.
    version: i64,
    fetched: Instant,
    tools: Vec<Tool>,
}

type SharedList = Arc<Mutex<Option<ToolList>>>;

/// The session's handler: our client info, and the change notification.
struct Listener {
    info: ClientConfig,
    server: String,
    version: i64,
    tools: SharedList,
}

impl ClientHandler for Listener {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    async fn on_tool_list_changed(&self, context: NotificationContext<RoleClient>) {
        tracing::info!(server = %self.server, "MCP server's tools changed; fetching them again");
        if let Ok(mut l) = self.tools.lock() {
            *l = None;
        }
        let (peer, tools, server) = (context.peer, self.tools.clone(), self.server.clone());
        let version = self.version;
        // Not inside the handler: the answer arrives through the same session.
        tokio::spawn(async move {
            match tokio::time::timeout(CONNECT_TIMEOUT, peer.list_all_tools()).await {
                Ok(Ok(list)) => {
                    if let Ok(mut l) = tools.lock() {
                        *l = Some(ToolList {
                            version,
                            fetched: Instant::now(),
                            tools: list,
                        });
                    }
                }
                Ok(Err(e)) => {
                    tracing::warn!(server = %server, error = %e, "cannot list the MCP server's changed tools")
                }
                Err(_) => {
                    tracing::warn!(server = %server, "the MCP server did not list its changed tools in time")
                }
            }
        });
    }
}

/// One server's session in this instance.
struct Live {
    /// The server's `updated_at` the session was opened for.
    version: i64,
    session: Arc<Session>,
    last_used: Instant,
}

#[derive(Default)]
struct Slot {
    /// Held while connecting, so concurrent conversations share one handshake.
    live: tokio::sync::Mutex<Option<Live>>,
    tools: SharedList,
    /// This instance's side of the OAuth refresh lock.
    refresh: Arc<tokio::sync::Mutex<()>>,
}

/// Whose server is used, and how far it may reach.
#[derive(Clone, Copy)]
pub(crate) struct Reach<'a> {
    pub(crate) store: &'a Store,
    pub(crate) org: &'a OrgId,
    /// `SWITCHBOARD_TOOLS_ALLOW_PRIVATE`.
    pub(crate) allow_private: bool,
}

/// Sessions with organizations' MCP servers and their tool lists.
#[derive(Default)]
pub(crate) struct McpClients {
    slots: Mutex<HashMap<McpServerId, Arc<Slot>>>,
}

/// Why a session could not be used.
fn closed(session: &Session) -> bool {
    session.is_closed() || session.is_transport_closed()
}

impl McpClients {
    fn slot(&self, id: &McpServerId) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(id.clone()).or_default().clone()
    }

    /// The server's open session, opened now when there is none (or the server changed).
    async fn session(
        &self,
        reach: Reach<'_>,
        server: &McpServer,
    ) -> Result<(Arc<Slot>, Arc<Session>), String> {
        let slot = self.slot(&server.id);
        let version = server.updated_at.millis();
        let mut live = slot.live.lock().await;
        if let Some(l) = live.as_mut() {
            if l.version == version && !closed(&l.session) {
                l.last_used = Instant::now();
                return Ok((slot.clone(), l.session.clone()));
            }
        }
        if let Some(old) = live.take() {
            old.session.cancellation_token().cancel();
        }
        let session = Arc::new(self.connect(reach, server, &slot).await?);
        *live = Some(Live {
            version,
            session: session.clone(),
            last_used: Instant::now(),
        });
        drop(live);
        tokio::spawn(close_when_idle(Arc::downgrade(&slot), session.clone()));
        Ok((slot, session))
    }

    /// Forgets the server's session (it failed): the next use opens a new one.
    async fn drop_session(slot: &Slot, session: &Arc<Session>) {
        let mut live = slot.live.lock().await;
        if live
            .as_ref()
            .is_some_and(|l| Arc::ptr_eq(&l.session, session))
        {
            live.take();
        }
        session.cancellation_token().cancel();
    }

    async fn connect(
        &self,
        reach: Reach<'_>,
        server: &McpServer,
        slot: &Slot,
    ) -> Result<Session, String> {
        let Reach {
            store,
            org,
            allow_private,
        } = reach;
        check_literal(TOOLS, &server.url, allow_private)?;
        let http = switchboard_egress::client_013(TOOLS, allow_private, CONNECT_TIMEOUT)
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let mut config = StreamableHttpClientTransportConfig::with_uri(server.url.as_str());
        config.max_json_response_size = MAX_ANSWER_BYTES;
        config.max_sse_event_size = MAX_ANSWER_BYTES;
        let listener = Listener {
            info: ClientConfig::new(
                ClientCapabilities::default(),
                Implementation::new("switchboard", env!("CARGO_PKG_VERSION")),
            ),
            server: server.name.clone(),
            version: server.updated_at.millis(),
            tools: slot.tools.clone(),
        };
        match &server.auth {
            McpAuth::Header { name, value } => {
                let name = http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|e| format!("bad header name: {e}"))?;
                let value = http::HeaderValue::from_str(value.expose())
                    .map_err(|e| format!("bad header value: {e}"))?;
                config.custom_headers.insert(name, value);
                handshake(listener, http, config).await
            }
            McpAuth::None => handshake(listener, http, config).await,
            McpAuth::Oauth { .. } => {
                let creds = DbCredentials {
                    store: store.clone(),
                    org: org.clone(),
                    server: server.id.clone(),
                    grant: Mutex::new(None),
                    local: slot.refresh.clone(),
                };
                let manager =
                    mcp_oauth::connected_manager(creds, GuardedHttp::new(allow_private)?).await?;
                handshake(listener, AuthClient::new(http, manager), config).await
            }
        }
    }

    /// The server's tools (all of them; the caller applies the allow-list), from the cache
    /// unless `fresh`.
    pub(crate) async fn tools(
        &self,
        reach: Reach<'_>,
        server: &McpServer,
        fresh: bool,
    ) -> Result<Vec<Tool>, String> {
        let slot = self.slot(&server.id);
        let version = server.updated_at.millis();
        if !fresh {
            if let Ok(cache) = slot.tools.lock() {
                if let Some(c) = cache.as_ref() {
                    if c.version == version && c.fetched.elapsed() < TOOLS_TTL {
                        return Ok(c.tools.clone());
                    }
                }
            }
        }
        let (slot, session) = self.session(reach, server).await?;
        let listed = tokio::time::timeout(CONNECT_TIMEOUT, session.list_all_tools()).await;
        let tools = match listed {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                Self::drop_session(&slot, &session).await;
                return Err(format!("tools/list failed: {e}"));
            }
            Err(_) => {
                Self::drop_session(&slot, &session).await;
                return Err("tools/list did not answer in time".into());
            }
        };
        if let Ok(mut cache) = slot.tools.lock() {
            *cache = Some(ToolList {
                version,
                fetched: Instant::now(),
                tools: tools.clone(),
            });
        }
        Ok(tools)
    }

    /// Calls `tool` on the server; answers what the model is given (`{"ok", "result"}` or
    /// `{"ok": false, "error"}`) and whether it succeeded. A call is sent at most once: a
    /// session that fails is replaced for the next call, not retried under this one.
    pub(crate) async fn call(
        &self,
        reach: Reach<'_>,
        server: &McpServer,
        tool: &str,
        args: Value,
        timeout: Duration,
    ) -> Result<Value, String> {
        let (slot, session) = self.session(reach, server).await?;
        let mut params = CallToolRequestParams::new(tool.to_owned());
        if let Value::Object(m) = args {
            params = params.with_arguments(m);
        }
        let answer = tokio::time::timeout(timeout, session.call_tool(params)).await;
        let result = match answer {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                Self::drop_session(&slot, &session).await;
                return Err(format!("tools/call failed: {e}"));
            }
            Err(_) => return Err("timed out".into()),
        };
        let text: Vec<String> = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect();
        let shown = match &result.structured_content {
            Some(v) => v.clone(),
            None => Value::String(text.join("\n")),
        };
        if result.is_error == Some(true) {
            return Ok(json!({"ok": false, "error": {"code": "tool_error", "message": shown}}));
        }
        Ok(json!({"ok": true, "result": shown}))
    }
}

/// Opens a session over `client`.
async fn handshake<C>(
    listener: Listener,
    client: C,
    config: StreamableHttpClientTransportConfig,
) -> Result<Session, String>
where
    C: StreamableHttpClient + Send + Sync + 'static,
    C::Error: Send + Sync + 'static,
{
    let transport = StreamableHttpClientTransport::with_client(client, config);
    match tokio::time::timeout(CONNECT_TIMEOUT, listener.serve(transport)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("the MCP handshake failed: {e}")),
        Err(_) => Err("the server did not answer the MCP handshake in time".into()),
    }
}

/// Closes `session` once it has not been used for [`IDLE`] (or its server's slot is gone,
/// or another session replaced it).
async fn close_when_idle(slot: Weak<Slot>, session: Arc<Session>) {
    let token = session.cancellation_token();
    loop {
        tokio::time::sleep(IDLE / 5).await;
        if closed(&session) {
            return;
        }
        let Some(slot) = slot.upgrade() else {
            token.cancel();
            return;
        };
        let mut live = slot.live.lock().await;
        match live.as_ref() {
            Some(l) if Arc::ptr_eq(&l.session, &session) => {
                if l.last_used.elapsed() >= IDLE || closed(&session) {
                    live.take();
                    token.cancel();
                    return;
                }
            }
            _ => {
                token.cancel();
                return;
            }
        }
    }
}
