//! Agents using the tools of external MCP servers (Streamable HTTP, through the official SDK
//! on our guarded HTTP client: no private addresses unless allowed, no redirects, bounded
//! answers). A server's tool list is cached per instance for a minute (and refetched when the
//! server is changed); a server that cannot be reached leaves its tools out of that
//! conversation, logged, never failing it.

use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, Tool};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use switchboard_domain::mcp_server::{McpAuth, McpServer};
use switchboard_egress::{check_literal, TOOLS};

/// How long a server's tool list is reused.
const TOOLS_TTL: Duration = Duration::from_secs(60);
/// How long connecting and listing may take before the server's tools are left out.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from a server (a tool list or a result).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

struct Cached {
    updated_at: i64,
    fetched: Instant,
    tools: Vec<Tool>,
}

/// Connections to organizations' MCP servers and their cached tool lists.
#[derive(Default)]
pub(crate) struct McpClients {
    cache: Mutex<HashMap<String, Cached>>,
}

type Session = RunningService<RoleClient, ClientConfig>;

impl McpClients {
    async fn connect(&self, server: &McpServer, allow_private: bool) -> Result<Session, String> {
        check_literal(TOOLS, &server.url, allow_private)?;
        let http = switchboard_egress::client_013(TOOLS, allow_private, CONNECT_TIMEOUT)
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let mut config = StreamableHttpClientTransportConfig::with_uri(server.url.as_str());
        config.max_json_response_size = MAX_ANSWER_BYTES;
        config.max_sse_event_size = MAX_ANSWER_BYTES;
        if let McpAuth::Header { name, value } = &server.auth {
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| format!("bad header name: {e}"))?;
            let value = http::HeaderValue::from_str(value.expose())
                .map_err(|e| format!("bad header value: {e}"))?;
            config.custom_headers.insert(name, value);
        }
        let transport = StreamableHttpClientTransport::with_client(http, config);
        let info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("switchboard", env!("CARGO_PKG_VERSION")),
        );
        match tokio::time::timeout(CONNECT_TIMEOUT, info.serve(transport)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(format!("the MCP handshake failed: {e}")),
            Err(_) => Err("the server did not answer the MCP handshake in time".into()),
        }
    }

    /// The server's tools (all of them; the caller applies the allow-list), from the cache
    /// unless `fresh`.
    pub(crate) async fn tools(
        &self,
        server: &McpServer,
        allow_private: bool,
        fresh: bool,
    ) -> Result<Vec<Tool>, String> {
        let key = server.id.to_string();
        if let (false, Ok(cache)) = (fresh, self.cache.lock()) {
            if let Some(c) = cache.get(&key) {
                if c.updated_at == server.updated_at.millis() && c.fetched.elapsed() < TOOLS_TTL {
                    return Ok(c.tools.clone());
                }
            }
        }
        let session = self.connect(server, allow_private).await?;
        let listed = tokio::time::timeout(CONNECT_TIMEOUT, session.list_all_tools()).await;
        let _ = session.cancel().await;
        let tools = match listed {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => return Err(format!("tools/list failed: {e}")),
            Err(_) => return Err("tools/list did not answer in time".into()),
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(
                key,
                Cached {
                    updated_at: server.updated_at.millis(),
                    fetched: Instant::now(),
                    tools: tools.clone(),
                },
            );
        }
        Ok(tools)
    }

    /// Calls `tool` on the server; answers what the model is given (`{"ok", "result"}` or
    /// `{"ok": false, "error"}`) and whether it succeeded.
    pub(crate) async fn call(
        &self,
        server: &McpServer,
        tool: &str,
        args: Value,
        allow_private: bool,
        timeout: Duration,
    ) -> Result<Value, String> {
        let session = self.connect(server, allow_private).await?;
        let mut params = CallToolRequestParams::new(tool.to_owned());
        if let Value::Object(m) = args {
            params = params.with_arguments(m);
        }
        let answer = tokio::time::timeout(timeout, session.call_tool(params)).await;
        let _ = session.cancel().await;
        let result = match answer {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(format!("tools/call failed: {e}")),
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
