//! The tool registry shared by every channel. A tool always runs inside the organization of
//! the conversation that called it (the context carries it; arguments never choose it), under
//! a timeout, once per model call id, and every execution is written to the audit table.
//! Failures become results the agent can talk about, never a broken call.

mod builtin;
mod call_control;
mod custom;
mod knowledge;
pub mod mcp;
mod mcp_client;
pub mod mcp_oauth;
mod toolset;

pub use custom::{request_body, MAX_RESPONSE_BYTES};

use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::agent::Agent;
use switchboard_domain::custom_tool::CustomTool;
use switchboard_domain::ids::{CallId, ConversationId, OrgId};
use switchboard_domain::values::{Channel, PhoneNumber};
use switchboard_domain::Timestamp;
use switchboard_store::{NewToolInvocation, Store};

pub use call_control::{Keypad, MAX_CALL_HANDOFFS, MAX_RETURNS};
pub use toolset::Toolset;

/// Default time a tool may take before the agent is told it failed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(8);

/// A tool as offered to a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDefinition {
    /// Name.
    pub name: String,
    /// What it does and when to use it.
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

/// Where and for whom a tool runs.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The store.
    pub store: Store,
    /// The conversation's organization: the only one the tool may touch.
    pub org: OrgId,
    /// The agent that called it.
    pub agent: Agent,
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The call, on voice.
    pub call_id: Option<CallId>,
    /// The contact's number (the caller or texter), when known.
    pub contact_number: Option<PhoneNumber>,
    /// The channel.
    pub channel: Channel,
    /// The tools this conversation offers.
    pub toolset: Arc<Toolset>,
    /// The agents the call has passed through so far, the current one last (calls only).
    pub passed_agents: Vec<switchboard_domain::ids::AgentId>,
    /// The call's keypad, for `collect_digits` (calls only).
    pub keypad: Option<Arc<Keypad>>,
}

/// Something the channel must do after a tool returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Hang up once the agent has finished speaking.
    EndCall,
    /// Transfer the caller here once the agent has finished speaking; a warm transfer tells
    /// the person `summary` first.
    Transfer {
        /// Where.
        target: switchboard_domain::transfer::TransferTarget,
        /// The agent's summary of the call for the person taking it.
        summary: Option<String>,
    },
    /// Press these keys on the line (an IVR's menu), then go on listening in the same
    /// session: `0`-`9`, `*`, `#`, and `w` for a half-second pause.
    SendDigits(String),
    /// The call goes on with this agent (its instructions and tools) in the same session.
    Handoff {
        /// The agent taking the call, as stored now.
        agent: Box<Agent>,
        /// Why, as the handing agent put it.
        reason: Option<String>,
    },
}

/// The result of one execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    /// What the model is given (always a JSON object with `ok`).
    pub output: Value,
    /// `ok`, `error` or `timeout` (as audited).
    pub status: &'static str,
    /// What the channel must do next.
    pub effect: Option<Effect>,
}

/// A failure the agent can explain to the person it is talking to.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolError {
    /// Stable code, e.g. `slot_taken`.
    pub code: &'static str,
    /// A sentence the agent can say.
    pub message: String,
    /// Extra facts (e.g. alternative slots).
    pub details: Option<Value>,
}

/// Sends a text message for `send_sms`. The messaging channel implements it (opt-out and
/// WhatsApp rules, the REST send, storing the message); the registry only holds it, so this
/// crate does not depend on the channel.
pub trait TextSender: Send + Sync {
    /// Sends `text` by SMS to the organization's contact `to`; answers what the model sees.
    fn send_sms<'a>(
        &'a self,
        ctx: &'a ToolContext,
        to: &'a PhoneNumber,
        text: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Value, ToolError>> + Send + 'a>>;
}

/// Places calls and schedules texts for `call_contact` and `schedule_sms` (the HTTP layer
/// implements it with the same checks as the API); the registry only holds it.
pub trait Outreach: Send + Sync {
    /// Places a call from the agent to the organization's contact `to`, now or `at`.
    fn call_contact<'a>(
        &'a self,
        ctx: &'a ToolContext,
        to: &'a PhoneNumber,
        at: Option<Timestamp>,
        reason: Option<&'a str>,
    ) -> Pin<Box<dyn Future<Output = Result<Value, ToolError>> + Send + 'a>>;

    /// Schedules `text` by SMS to the organization's contact `to` at `at`.
    fn schedule_sms<'a>(
        &'a self,
        ctx: &'a ToolContext,
        to: &'a PhoneNumber,
        text: &'a str,
        at: Timestamp,
    ) -> Pin<Box<dyn Future<Output = Result<Value, ToolError>> + Send + 'a>>;
}

impl ToolError {
    /// A failure with a stable code and a sentence the agent can say.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }
}

/// The registry: which tools an agent offers on a channel, and running them.
#[derive(Clone)]
pub struct Registry {
    timeout: Duration,
    texts: Option<Arc<dyn TextSender>>,
    /// Filled once at start (the implementation needs services built after the registry).
    outreach: Arc<std::sync::OnceLock<Arc<dyn Outreach>>>,
    /// The client for custom tools' endpoints (guarded against private addresses unless
    /// the operator allowed them); built on first use when not set at start.
    http: Arc<std::sync::OnceLock<reqwest::Client>>,
    allow_private: Arc<std::sync::atomic::AtomicBool>,
    mcp: Arc<mcp_client::McpClients>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("timeout", &self.timeout)
            .field("send_sms", &self.texts.is_some())
            .field("outreach", &self.outreach.get().is_some())
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            texts: None,
            outreach: Arc::default(),
            http: Arc::default(),
            allow_private: Arc::default(),
            mcp: Arc::default(),
        }
    }
}

impl Registry {
    /// A registry with a per-execution timeout.
    pub fn new(timeout: Duration) -> Registry {
        Registry {
            timeout,
            texts: None,
            outreach: Arc::default(),
            http: Arc::default(),
            allow_private: Arc::default(),
            mcp: Arc::default(),
        }
    }

    /// The same registry with `send_sms` available through `sender`.
    pub fn with_text_sender(mut self, sender: Arc<dyn TextSender>) -> Registry {
        self.texts = Some(sender);
        self
    }

    /// Makes `call_contact` and `schedule_sms` available in this registry and its clones (the
    /// first implementation set stays).
    pub fn set_outreach(&self, outreach: Arc<dyn Outreach>) {
        let _ = self.outreach.set(outreach);
    }

    /// Lets custom tools reach private, loopback and link-local addresses
    /// (`SWITCHBOARD_TOOLS_ALLOW_PRIVATE`); call once at start, before any tool runs.
    pub fn allow_private_targets(&self, allow: bool) {
        match switchboard_egress::client(switchboard_egress::TOOLS, allow, custom::MAX_WAIT) {
            Ok(c) => {
                if self.http.set(c).is_ok() {
                    self.allow_private
                        .store(allow, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot build the custom tools' HTTP client"),
        }
    }

    /// Whether custom tools may reach private addresses.
    pub(crate) fn allows_private(&self) -> bool {
        self.allow_private
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// An organization's MCP servers, as far as this registry may reach.
    fn reach<'a>(&self, store: &'a Store, org: &'a OrgId) -> mcp_client::Reach<'a> {
        mcp_client::Reach {
            store,
            org,
            allow_private: self.allows_private(),
        }
    }

    /// The custom tools' client.
    pub(crate) fn http(&self) -> Option<&reqwest::Client> {
        if self.http.get().is_none() {
            self.allow_private_targets(false);
        }
        self.http.get()
    }

    /// The outreach implementation, when set.
    pub(crate) fn outreach(&self) -> Option<&Arc<dyn Outreach>> {
        self.outreach.get()
    }

    /// The text sender, when `send_sms` is available.
    pub(crate) fn texts(&self) -> Option<&Arc<dyn TextSender>> {
        self.texts.as_ref()
    }

    /// Whether a tool is implemented on a channel with this registry.
    fn implemented(&self, name: &str, channel: Channel) -> bool {
        match name {
            "end_call" | "transfer_call" | "collect_digits" | "send_digits" => {
                channel == Channel::Voice
            }
            "check_availability" | "book_appointment" | "cancel_appointment" | "lookup_contact" => {
                true
            }
            "send_sms" => self.texts.is_some(),
            "call_contact" | "schedule_sms" => self.outreach.get().is_some(),
            _ => false,
        }
    }

    /// Runs `name` with the model's JSON `arguments`. Returns `None` when this model call id
    /// already ran in this call (a repeated event): the caller must not answer it twice.
    pub async fn execute(
        &self,
        ctx: &ToolContext,
        external_id: Option<&str>,
        name: &str,
        arguments: &str,
    ) -> Option<ToolOutcome> {
        let args: Result<Value, _> = if arguments.trim().is_empty() {
            Ok(json!({}))
        } else {
            serde_json::from_str(arguments)
        };
        let audit_args = args
            .as_ref()
            .cloned()
            .unwrap_or_else(|_| json!({"raw": arguments}));
        let audit = NewToolInvocation {
            conversation_id: Some(ctx.conversation_id.clone()),
            call_id: ctx.call_id.clone(),
            external_id: external_id.map(str::to_owned),
            tool: name.to_owned(),
            arguments: audit_args,
            actor: format!("agent:{}", ctx.agent.id),
            source: match (ctx.toolset.custom_tool(name), ctx.channel) {
                _ if ctx.toolset.mcp_tool(name).is_some() => "mcp_client",
                (Some(_), _) => "custom",
                (None, Channel::Voice) => "call",
                (None, _) => "text",
            }
            .to_owned(),
        };
        let audit_id = match ctx.store.start_tool_invocation(&ctx.org, &audit).await {
            Ok(Some(id)) => Some(id),
            Ok(None) => {
                tracing::warn!(tool = name, call_id = ?external_id, "tool call already executed; ignoring the repeat");
                return None;
            }
            Err(e) => {
                // The audit log failing must not run a side effect unrecorded.
                tracing::error!(error = %e, tool = name, "cannot write the tool audit record");
                return Some(failure(
                    "error",
                    ToolError::new(
                        "unavailable",
                        "The system is having trouble right now; please try again later.",
                    ),
                ));
            }
        };
        let custom = ctx.toolset.custom_tool(name);
        let mcp = ctx.toolset.mcp_tool(name);
        let handoff = ctx.toolset.handoff_tool(name);
        let allowed = mcp.is_some()
            || handoff.is_some()
            || (ctx.agent.tools.iter().any(|t| t == name)
                && (custom.is_some() || self.implemented(name, ctx.channel)))
            || (name == knowledge::NAME && !ctx.agent.knowledge.is_empty());
        let outcome = match (allowed, args) {
            (false, _) => failure(
                "error",
                ToolError::new(
                    "unknown_tool",
                    format!("The tool `{name}` is not available."),
                ),
            ),
            (true, Err(e)) => failure(
                "error",
                ToolError::new(
                    "invalid_arguments",
                    format!("The arguments were not valid JSON ({e})."),
                ),
            ),
            (true, Ok(args)) if mcp.is_some() => match mcp {
                Some((server, tool)) => {
                    match self
                        .mcp
                        .call(
                            self.reach(&ctx.store, &ctx.org),
                            server,
                            tool,
                            args,
                            self.timeout,
                        )
                        .await
                    {
                        Ok(output) => ToolOutcome {
                            status: if output["ok"] == true { "ok" } else { "error" },
                            output,
                            effect: None,
                        },
                        Err(why) if why == "timed out" => failure(
                            "timeout",
                            ToolError::new(
                                "timeout",
                                "That took too long to answer; please try again in a moment.",
                            ),
                        ),
                        Err(why) => {
                            tracing::warn!(server = %server.name, tool, reason = %why, "MCP tool call failed");
                            let mut e = ToolError::new(
                                "server_unavailable",
                                "The system that answers this could not be reached; please try again later.",
                            );
                            e.details = Some(json!({"reason": why}));
                            failure("error", e)
                        }
                    }
                }
                None => failure(
                    "error",
                    ToolError::new("unknown_tool", "The tool is not available."),
                ),
            },
            (true, Ok(args)) if handoff.is_some() || name == "collect_digits" => {
                // Not under the tool timeout: a handoff is a quick read, and collecting
                // digits has its own timeouts.
                let ran = match handoff {
                    Some(h) => call_control::handoff(ctx, h, &args).await,
                    None => call_control::collect_digits(ctx, &args).await,
                };
                match ran {
                    Ok((output, effect)) => ToolOutcome {
                        output,
                        status: "ok",
                        effect,
                    },
                    Err(e) => failure("error", e),
                }
            }
            (true, Ok(args)) if custom.is_some() => match (custom, &audit_id) {
                (Some(tool), Some(id)) => {
                    custom::run(
                        self,
                        &ctx.org,
                        tool,
                        id,
                        args,
                        custom::conversation_context(ctx),
                    )
                    .await
                }
                _ => failure(
                    "error",
                    ToolError::new("unknown_tool", "The tool is not available."),
                ),
            },
            (true, Ok(args)) => {
                match tokio::time::timeout(self.timeout, builtin::run(self, ctx, name, &args)).await
                {
                    Ok(Ok((output, effect))) => ToolOutcome {
                        output,
                        status: "ok",
                        effect,
                    },
                    Ok(Err(e)) => failure("error", e),
                    Err(_) => failure(
                        "timeout",
                        ToolError::new(
                            "timeout",
                            "That took too long to answer; please try again in a moment.",
                        ),
                    ),
                }
            }
        };
        if let Some(id) = audit_id {
            if let Err(e) = ctx
                .store
                .finish_tool_invocation(&ctx.org, &id, outcome.status, &outcome.output)
                .await
            {
                tracing::error!(error = %e, tool = name, "cannot finish the tool audit record");
            }
        }
        tracing::info!(tool = name, status = outcome.status, org_id = %ctx.org, "tool executed");
        Some(outcome)
    }
}

impl Registry {
    /// Runs a custom tool outside any conversation ("test this tool" in the dashboard and
    /// the API), audited with source `custom` and the principal `actor`. The endpoint sees
    /// `context.test: true` and no conversation.
    pub async fn test_custom_tool(
        &self,
        store: &Store,
        org: &OrgId,
        tool: &CustomTool,
        arguments: Value,
        actor: &str,
    ) -> Result<(ToolOutcome, String), switchboard_store::StoreError> {
        let audit = NewToolInvocation {
            conversation_id: None,
            call_id: None,
            external_id: None,
            tool: tool.name.clone(),
            arguments: arguments.clone(),
            actor: actor.to_owned(),
            source: "custom".to_owned(),
        };
        let id = store
            .start_tool_invocation(org, &audit)
            .await?
            .ok_or_else(|| {
                switchboard_store::StoreError::Conflict("duplicate invocation".into())
            })?;
        let context = json!({"org_id": org, "agent_id": null, "agent_name": null,
            "conversation_id": null, "call_id": null, "channel": null,
            "contact_number": null, "test": true});
        let outcome = custom::run(self, org, tool, &id, arguments, context).await;
        store
            .finish_tool_invocation(org, &id, outcome.status, &outcome.output)
            .await?;
        tracing::info!(tool = %tool.name, status = outcome.status, org_id = %org, "custom tool tested");
        Ok((outcome, id))
    }
}

fn failure(status: &'static str, e: ToolError) -> ToolOutcome {
    let mut error = json!({"code": e.code, "message": e.message});
    if let Some(d) = e.details {
        error["details"] = d;
    }
    ToolOutcome {
        output: json!({"ok": false, "error": error}),
        status,
        effect: None,
    }
}
