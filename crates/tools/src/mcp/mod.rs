//! Switchboard as an MCP server (`/mcp`, Streamable HTTP, on the official `rmcp` SDK).
//!
//! The HTTP layer authenticates every request before it gets here and puts the
//! [`McpPrincipal`] in the request's extensions; the SDK hands the request's parts to each
//! handler. Tools run as REST API requests made as that principal (see
//! `catalog`), so they are scoped to its organization by the same code as the API. Every
//! tool execution is audited with source `mcp_server`.

mod catalog;
mod execute;
mod sessions;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{json, Map, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use switchboard_domain::ids::OrgId;
use switchboard_store::{NewToolInvocation, Store};

/// Who is calling: put in the HTTP request's extensions by the authenticating layer.
#[derive(Debug, Clone)]
pub struct McpPrincipal {
    /// The organization every tool runs in.
    pub org: OrgId,
    /// The principal, as audited: `api_key:key_...` or `oauth:<client id>`.
    pub actor: String,
}

/// What an API request answered.
#[derive(Debug, Clone)]
pub struct ApiAnswer {
    /// HTTP status.
    pub status: u16,
    /// The JSON body (`null` when there was none).
    pub body: Value,
}

/// Makes REST API requests in-process for the tools (the web layer implements it with its
/// own router).
pub trait ApiBackend: Send + Sync + 'static {
    /// `method` `path_and_query` (starting with `/api/v1`) with `body`, as `who`.
    fn request<'a>(
        &'a self,
        who: &'a McpPrincipal,
        method: http::Method,
        path_and_query: String,
        body: Option<Value>,
    ) -> Pin<Box<dyn Future<Output = ApiAnswer> + Send + 'a>>;
}

/// Settings of the `/mcp` endpoint.
#[derive(Debug, Clone)]
pub struct McpConfig {
    /// `Host` values accepted (DNS-rebinding protection): the public host and loopback.
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin` values accepted; a request with any other `Origin` gets 403.
    pub allowed_origins: Vec<String>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
}

/// The server one session talks to.
#[derive(Clone)]
pub struct McpServer {
    store: Store,
    backend: Arc<dyn ApiBackend>,
}

/// The Streamable HTTP service to mount at `/mcp` (behind the authenticating layer).
pub fn service(
    store: Store,
    backend: Arc<dyn ApiBackend>,
    config: &McpConfig,
) -> StreamableHttpService<McpServer, LocalSessionManager> {
    let server = McpServer {
        store: store.clone(),
        backend,
    };
    let mut http = StreamableHttpServerConfig::default()
        .with_allowed_hosts(config.allowed_hosts.clone())
        .with_max_request_body_bytes(config.max_body_bytes);
    http = if config.allowed_origins.is_empty() {
        http.enforce_origin_validation()
    } else {
        http.with_allowed_origins(config.allowed_origins.clone())
    };
    http.session_store = Some(Arc::new(sessions::DbSessions { store }));
    StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        http,
    )
}

/// One of the server's tools, as another caller of the same tools (the operator assistant)
/// offers it.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    /// Name.
    pub name: &'static str,
    /// Title.
    pub title: &'static str,
    /// What it does.
    pub description: &'static str,
    /// JSON Schema of its arguments.
    pub schema: Value,
    /// Whether it only reads (`readOnlyHint`).
    pub read_only: bool,
}

/// Every tool the server offers, in order.
pub fn tool_specs() -> Vec<ToolSpec> {
    catalog::all()
        .iter()
        .map(|s| ToolSpec {
            name: s.name,
            title: s.title,
            description: s.description,
            schema: (s.schema)(),
            read_only: s.read_only,
        })
        .collect()
}

/// Runs tool `name` as `who` through `backend`, exactly as an MCP client's call would run
/// (without its audit record: the caller keeps its own); the error is a code and a message.
pub async fn run_tool(
    name: &str,
    args: Map<String, Value>,
    backend: &dyn ApiBackend,
    who: &McpPrincipal,
) -> Result<Value, (String, String)> {
    let Some(spec) = catalog::find(name) else {
        return Err(("unknown_tool".into(), format!("there is no tool `{name}`")));
    };
    execute::run(spec, args, backend, who)
        .await
        .map_err(|f| (f.code, f.message))
}

/// Checks a POSTed body before the transport reads it, which would answer a plain-text 415
/// for anything it cannot parse: returns the JSON-RPC error response (sent with HTTP 400)
/// for a body that is not one JSON-RPC message, `None` for one that is.
pub fn malformed(body: &[u8]) -> Option<Value> {
    let error = |id: Value, code: i64, message: String| json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Some(error(Value::Null, -32700, format!("Parse error: {e}"))),
    };
    if v.is_array() {
        return Some(error(
            Value::Null,
            -32600,
            "Invalid Request: batches are not supported (removed in protocol 2025-06-18)".into(),
        ));
    }
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let shaped = v.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
        && (v.get("method").is_some_and(Value::is_string)
            || (v.get("id").is_some() && (v.get("result").is_some() || v.get("error").is_some())));
    if !shaped {
        return Some(error(
            id,
            -32600,
            "Invalid Request: expected a JSON-RPC 2.0 request, notification or response".into(),
        ));
    }
    // The SDK reads a known method with unusable params as a custom request (and answers
    // "method not found"): the methods this server implements are checked here.
    let needs = match v.get("method").and_then(Value::as_str) {
        Some("tools/call") => Some("name"),
        Some("resources/read") => Some("uri"),
        _ => None,
    };
    if let Some(field) = needs {
        if !v
            .pointer(&format!("/params/{field}"))
            .is_some_and(Value::is_string)
        {
            return Some(error(
                id,
                -32602,
                format!("Invalid params: `params.{field}` must be a string"),
            ));
        }
    }
    match serde_json::from_value::<rmcp::model::ClientJsonRpcMessage>(v) {
        Ok(_) => None,
        Err(e) => Some(error(id, -32602, format!("Invalid params: {e}"))),
    }
}

fn principal(ctx: &RequestContext<RoleServer>) -> Result<McpPrincipal, McpError> {
    ctx.extensions
        .get::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<McpPrincipal>())
        .cloned()
        .ok_or_else(|| McpError::internal_error("the request is not authenticated", None))
}

fn tool_of(spec: &catalog::Spec) -> Tool {
    let schema = match (spec.schema)() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let annotations = ToolAnnotations::with_title(spec.title)
        .read_only(spec.read_only)
        .destructive(spec.destructive)
        .open_world(spec.open_world);
    Tool::new(spec.name, spec.description, Arc::new(schema))
        .with_title(spec.title)
        .with_annotations(annotations)
}

/// A resource URI: `switchboard://calls/{id}/transcript` or `switchboard://conversations/{id}`.
enum Uri {
    Transcript(String),
    Conversation(String),
}

fn parse_uri(uri: &str) -> Option<Uri> {
    let rest = uri.strip_prefix("switchboard://")?;
    let id_ok =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if let Some(r) = rest.strip_prefix("calls/") {
        let id = r.strip_suffix("/transcript")?;
        return id_ok(id).then(|| Uri::Transcript(id.to_owned()));
    }
    let id = rest.strip_prefix("conversations/")?;
    id_ok(id).then(|| Uri::Conversation(id.to_owned()))
}

/// A call's transcript as lines a person (or a model) reads: `caller:` / `agent:` turns and
/// the tools the agent used.
fn transcript_text(call: &Value, messages: &Value) -> String {
    let mut out = format!(
        "Call {} ({} {} -> {}), status {}\n\n",
        call["id"].as_str().unwrap_or_default(),
        call["direction"].as_str().unwrap_or_default(),
        call["from_number"].as_str().unwrap_or_default(),
        call["to_number"].as_str().unwrap_or_default(),
        call["status"].as_str().unwrap_or_default(),
    );
    for m in messages.as_array().into_iter().flatten() {
        let who = match m["role"].as_str().unwrap_or_default() {
            "user" => "caller",
            "assistant" => "agent",
            other => other,
        };
        let text = m["content"]["text"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| m["content"].to_string());
        out.push_str(&format!("{who}: {text}\n"));
    }
    if let Some(summary) = call.pointer("/analysis/summary").and_then(Value::as_str) {
        out.push_str(&format!("\nSummary: {summary}\n"));
    }
    out
}

impl McpServer {
    async fn api(&self, who: &McpPrincipal, path: String) -> Result<Value, McpError> {
        let a = self
            .backend
            .request(who, http::Method::GET, format!("/api/v1{path}"), None)
            .await;
        match a.status {
            200..=299 => Ok(a.body),
            404 => Err(McpError::resource_not_found("resource not found", None)),
            _ => Err(McpError::internal_error(
                a.body["error"]["message"]
                    .as_str()
                    .unwrap_or("the request failed")
                    .to_owned(),
                None,
            )),
        }
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new(
            "switchboard",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(
            "Switchboard runs this organization's AI phone and messaging agents. Use the tools to \
             read and change agents (their instructions), numbers and contacts, to read calls and \
             conversations with transcripts and analysis, and to text or call contacts. Read a \
             call's transcript as switchboard://calls/{call_id}/transcript.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(
            catalog::all().iter().map(tool_of).collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let who = principal(&ctx)?;
        // An unknown tool is a protocol error (JSON-RPC -32602), as the specification says;
        // everything that goes wrong while running a known one is a tool error result.
        let Some(spec) = catalog::find(&request.name) else {
            return Err(McpError::invalid_params(
                format!("Unknown tool: {}", request.name),
                None,
            ));
        };
        let args = request.arguments.unwrap_or_default();
        let audit = NewToolInvocation {
            conversation_id: None,
            call_id: None,
            external_id: None,
            tool: spec.name.to_owned(),
            arguments: Value::Object(args.clone()),
            actor: who.actor.clone(),
            source: "mcp_server".to_owned(),
        };
        let audit_id = match self.store.start_tool_invocation(&who.org, &audit).await {
            Ok(id) => id,
            Err(e) => {
                // Nothing runs unrecorded.
                tracing::error!(error = %e, tool = spec.name, "cannot write the tool audit record");
                return Ok(CallToolResult::error(vec![ContentBlock::text(
                    "unavailable: the audit log cannot be written; nothing was done",
                )])
                .into());
            }
        };
        let outcome = execute::run(spec, args, self.backend.as_ref(), &who).await;
        let (status, output, result) = match outcome {
            Ok(v) => {
                let shown = if v.is_object() {
                    v
                } else {
                    json!({"result": v})
                };
                (
                    "ok",
                    json!({"ok": true, "result": shown.clone()}),
                    CallToolResult::structured(shown),
                )
            }
            Err(f) => {
                let mut r = CallToolResult::error(vec![ContentBlock::text(format!(
                    "{}: {}",
                    f.code, f.message
                ))]);
                r.structured_content =
                    Some(json!({"error": {"code": f.code, "message": f.message}}));
                (
                    "error",
                    json!({"ok": false, "error": {"code": f.code, "message": f.message}}),
                    r,
                )
            }
        };
        if let Some(id) = audit_id {
            if let Err(e) = self
                .store
                .finish_tool_invocation(&who.org, &id, status, &output)
                .await
            {
                tracing::error!(error = %e, tool = spec.name, "cannot finish the tool audit record");
            }
        }
        tracing::info!(tool = spec.name, status, org_id = %who.org, actor = %who.actor, "MCP tool executed");
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let who = principal(&ctx)?;
        let calls = self.api(&who, "/calls?limit=20".into()).await?;
        let convs = self.api(&who, "/conversations?limit=20".into()).await?;
        let mut resources = Vec::new();
        for c in calls["data"].as_array().into_iter().flatten() {
            let id = c["id"].as_str().unwrap_or_default();
            resources.push(
                Resource::new(
                    format!("switchboard://calls/{id}/transcript"),
                    format!("call-{id}-transcript"),
                )
                .with_title(format!(
                    "Call {} {} -> {} ({})",
                    c["started_at"].as_str().unwrap_or_default(),
                    c["from_number"].as_str().unwrap_or_default(),
                    c["to_number"].as_str().unwrap_or_default(),
                    c["status"].as_str().unwrap_or_default()
                ))
                .with_mime_type("text/plain"),
            );
        }
        for c in convs["data"].as_array().into_iter().flatten() {
            let id = c["id"].as_str().unwrap_or_default();
            resources.push(
                Resource::new(
                    format!("switchboard://conversations/{id}"),
                    format!("conversation-{id}"),
                )
                .with_title(format!(
                    "{} conversation with {} ({})",
                    c["channel"].as_str().unwrap_or_default(),
                    c["contact_number"].as_str().unwrap_or_default(),
                    c["started_at"].as_str().unwrap_or_default()
                ))
                .with_mime_type("application/json"),
            );
        }
        Ok(ListResourcesResult {
            resources,
            ..ListResourcesResult::default()
        })
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult {
            resource_templates: vec![
                ResourceTemplate::new(
                    "switchboard://calls/{call_id}/transcript",
                    "call-transcript",
                )
                .with_title("A call's transcript")
                .with_description(
                    "The call's turns (caller, agent, tools) and its summary, as text",
                ),
                ResourceTemplate::new(
                    "switchboard://conversations/{conversation_id}",
                    "conversation",
                )
                .with_title("A conversation")
                .with_description("The conversation with its messages, as JSON"),
            ],
            ..ListResourceTemplatesResult::default()
        })
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let who = principal(&ctx)?;
        let uri = request.uri.clone();
        let content = match parse_uri(&uri) {
            Some(Uri::Transcript(id)) => {
                let call = self.api(&who, format!("/calls/{id}")).await?;
                let conv = call["conversation_id"].as_str().unwrap_or_default().to_owned();
                let messages = self
                    .api(&who, format!("/conversations/{conv}/messages?limit=200"))
                    .await?;
                ResourceContents::text(transcript_text(&call, &messages["data"]), uri)
            }
            Some(Uri::Conversation(id)) => {
                let conversation = self.api(&who, format!("/conversations/{id}")).await?;
                let messages = self
                    .api(&who, format!("/conversations/{id}/messages?limit=200"))
                    .await?;
                let doc = json!({"conversation": conversation, "messages": messages["data"]});
                ResourceContents::text(doc.to_string(), uri)
            }
            None => {
                return Err(McpError::resource_not_found(
                    "unknown resource; expected switchboard://calls/{call_id}/transcript or switchboard://conversations/{conversation_id}",
                    Some(json!({"uri": request.uri})),
                ))
            }
        };
        Ok(ReadResourceResult::new(vec![content]).into())
    }
}
