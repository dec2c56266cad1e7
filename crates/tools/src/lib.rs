//! The tool registry shared by every channel. A tool always runs inside the organization of
//! the conversation that called it (the context carries it; arguments never choose it), under
//! a timeout, once per model call id, and every execution is written to the audit table.
//! Failures become results the agent can talk about, never a broken call.

mod builtin;

use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::agent::Agent;
use switchboard_domain::ids::{CallId, ConversationId, OrgId};
use switchboard_domain::values::{Channel, PhoneNumber};
use switchboard_domain::Timestamp;
use switchboard_store::{NewToolInvocation, Store};

/// Default time a tool may take before the agent is told it failed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(8);

/// A tool as offered to a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDefinition {
    /// Name.
    pub name: &'static str,
    /// What it does and when to use it.
    pub description: &'static str,
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
}

/// Something the channel must do after a tool returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Hang up once the agent has finished speaking.
    EndCall,
    /// Transfer the caller to this number once the agent has finished speaking.
    Transfer(PhoneNumber),
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
            "end_call" | "transfer_call" => channel == Channel::Voice,
            "check_availability" | "book_appointment" | "cancel_appointment" | "lookup_contact" => {
                true
            }
            "send_sms" => self.texts.is_some(),
            "call_contact" | "schedule_sms" => self.outreach.get().is_some(),
            _ => false,
        }
    }

    /// The agent's enabled tools that exist on `channel`, in the agent's order.
    pub fn definitions(&self, agent: &Agent, channel: Channel) -> Vec<ToolDefinition> {
        agent
            .tools
            .iter()
            .filter(|name| {
                let ok = self.implemented(name, channel);
                if !ok {
                    tracing::debug!(tool = %name, channel = channel.as_str(), "tool not available on this channel; not offered");
                }
                ok
            })
            .filter_map(|name| builtin::definition(name))
            .collect()
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
            source: match ctx.channel {
                Channel::Voice => "call",
                _ => "text",
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
        let allowed =
            ctx.agent.tools.iter().any(|t| t == name) && self.implemented(name, ctx.channel);
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
