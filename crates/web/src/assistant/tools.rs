//! The assistant's tools: the MCP server's (reads run now; changes become proposals), its own
//! reads (activity over a period, knowledge search), its own changes (a text to many
//! contacts, a knowledge source), and deciding a proposal from the chat. Every tool that
//! runs is in the tool audit with source `assistant` and the person as actor.

use super::{activity, decide, preview, Ctx};
use serde_json::{json, Map, Value};
use switchboard_domain::assistant::AssistantAction;
use switchboard_llm::Tool;
use switchboard_store::NewToolInvocation;
use switchboard_tools::mcp::{self, McpPrincipal};

/// What running a tool gave the model.
pub(crate) struct Ran {
    /// `ok`, `error` or `pending`.
    pub status: &'static str,
    /// What the model is given.
    pub output: Value,
    /// The change it proposed.
    pub action: Option<AssistantAction>,
}

impl Ran {
    pub(crate) fn ok(output: Value) -> Ran {
        Ran {
            status: "ok",
            output,
            action: None,
        }
    }

    pub(crate) fn error(code: &str, message: impl Into<String>) -> Ran {
        Ran {
            status: "error",
            output: json!({"ok": false, "error": {"code": code, "message": message.into()}}),
            action: None,
        }
    }
}

/// The assistant's own tools: (name, description, schema, changes something).
fn own() -> Vec<(&'static str, &'static str, Value, bool)> {
    vec![
        (
            "activity_summary",
            "Counts of calls (by direction and outcome: missed inbound calls, unreached outbound ones), minutes, text messages and successful conversations over a period of the organization's days. Use it for questions such as 'how many calls did we miss this week?'.",
            json!({"type": "object", "properties": {
                "period": {"type": "string", "enum": ["today", "yesterday", "this_week", "last_week", "last_7_days", "this_month", "last_month", "last_30_days"], "description": "A named period (weeks start on Monday)"},
                "from": {"type": "string", "description": "Or the first day, YYYY-MM-DD"},
                "to": {"type": "string", "description": "And the last day (included), YYYY-MM-DD"}
            }}),
            false,
        ),
        (
            "search_knowledge",
            "Search the organization's knowledge sources (its documents: prices, policies, directions...) for the passages answering a question.",
            json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}),
            false,
        ),
        (
            "list_knowledge_sources",
            "The organization's knowledge sources with their index status.",
            json!({"type": "object", "properties": {}}),
            false,
        ),
        (
            "add_knowledge_source",
            "Add a document (a price list, a policy...) as a knowledge source agents can answer from. Proposes the change.",
            json!({"type": "object", "properties": {
                "name": {"type": "string"},
                "format": {"type": "string", "enum": ["text", "markdown"]},
                "content": {"type": "string", "description": "The document's text"}
            }, "required": ["name", "content"]}),
            true,
        ),
        (
            "text_contacts",
            "Text one message by SMS to many contacts: everyone with a booked appointment on a day, or a list of numbers. Opted-out contacts are left out. Proposes the change, showing the count and the first recipients.",
            json!({"type": "object", "properties": {
                "text": {"type": "string", "description": "The message (1 to 1,600 characters)"},
                "appointments_on": {"type": "string", "description": "A day, YYYY-MM-DD: everyone with a booked appointment that day"},
                "numbers": {"type": "array", "items": {"type": "string"}, "description": "Or E.164 numbers"},
                "from_number": {"type": "string", "description": "One of the organization's SMS numbers"}
            }, "required": ["text"]}),
            true,
        ),
        (
            "confirm_action",
            "Carry out a proposed change, only after the person saw its summary and clearly said yes in a later message.",
            json!({"type": "object", "properties": {"action_id": {"type": "string"}}, "required": ["action_id"]}),
            true,
        ),
        (
            "cancel_action",
            "Discard a proposed change the person does not want.",
            json!({"type": "object", "properties": {"action_id": {"type": "string"}}, "required": ["action_id"]}),
            true,
        ),
    ]
}

/// Whether a tool changes something (and so is proposed, not run).
pub(crate) fn changes(name: &str) -> bool {
    own()
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(.., c)| *c)
        .or_else(|| {
            mcp::tool_specs()
                .iter()
                .find(|t| t.name == name)
                .map(|t| !t.read_only)
        })
        .unwrap_or(false)
}

/// The tools offered: everything to those who may change things; reads only to members.
pub(crate) fn definitions(can_manage: bool) -> Vec<Tool> {
    let mut out: Vec<Tool> = mcp::tool_specs()
        .into_iter()
        .filter(|t| can_manage || t.read_only)
        .map(|t| Tool {
            name: t.name.to_owned(),
            description: if t.read_only {
                t.description.to_owned()
            } else {
                format!(
                    "{} Proposes the change: nothing happens until the person confirms it.",
                    t.description
                )
            },
            parameters: t.schema,
        })
        .collect();
    for (name, description, parameters, change) in own() {
        if can_manage || !change {
            out.push(Tool {
                name: name.to_owned(),
                description: description.to_owned(),
                parameters,
            });
        }
    }
    out
}

/// The person as the API sees them.
pub(crate) fn api_principal(ctx: &Ctx<'_>) -> McpPrincipal {
    McpPrincipal {
        org: ctx.who.org.clone(),
        actor: ctx.who.id.clone(),
    }
}

/// Runs `work` with its tool audit record (source `assistant`, the person as actor).
pub(crate) async fn audited(
    ctx: &Ctx<'_>,
    name: &str,
    args: &Value,
    work: impl std::future::Future<Output = Ran>,
) -> Ran {
    let audit = NewToolInvocation {
        conversation_id: None,
        call_id: None,
        external_id: None,
        tool: name.to_owned(),
        arguments: args.clone(),
        actor: ctx.who.id.clone(),
        source: "assistant".to_owned(),
    };
    let id = match ctx
        .st
        .store
        .start_tool_invocation(&ctx.who.org, &audit)
        .await
    {
        Ok(id) => id,
        Err(e) => {
            // Nothing runs unrecorded.
            tracing::error!(error = %e, tool = name, "cannot write the tool audit record");
            return Ran::error(
                "unavailable",
                "the audit log cannot be written; nothing was done",
            );
        }
    };
    let ran = work.await;
    if let Some(id) = id {
        let status = if ran.status == "error" { "error" } else { "ok" };
        if let Err(e) = ctx
            .st
            .store
            .finish_tool_invocation(&ctx.who.org, &id, status, &ran.output)
            .await
        {
            tracing::error!(error = %e, tool = name, "cannot finish the tool audit record");
        }
    }
    ran
}

/// Runs a catalog tool through the API as the person now.
pub(crate) async fn run_catalog(
    ctx: &Ctx<'_>,
    name: &str,
    args: Map<String, Value>,
) -> Result<Value, (String, String)> {
    let Some(backend) = ctx.st.api_backend() else {
        return Err(("unavailable".into(), "the API is not ready".into()));
    };
    mcp::run_tool(name, args, backend.as_ref(), &api_principal(ctx)).await
}

/// Runs the tool `name` the model called with `raw` arguments.
pub(crate) async fn run(ctx: &Ctx<'_>, name: &str, raw: &str) -> Ran {
    let args: Map<String, Value> = if raw.trim().is_empty() {
        Map::new()
    } else {
        match serde_json::from_str(raw) {
            Ok(Value::Object(m)) => m,
            _ => return Ran::error("invalid_arguments", "the arguments must be a JSON object"),
        }
    };
    let value = Value::Object(args.clone());
    let known =
        own().iter().any(|(n, ..)| *n == name) || mcp::tool_specs().iter().any(|t| t.name == name);
    if !known {
        return Ran::error("unknown_tool", format!("there is no tool `{name}`"));
    }
    match name {
        "confirm_action" | "cancel_action" => {
            let id = args
                .get("action_id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let decision = if name == "confirm_action" {
                let via = match &ctx.spoken {
                    Some(s) => decide::Via::Voice {
                        turn: ctx.turn,
                        words: s.words.as_deref(),
                    },
                    None => decide::Via::Chat { turn: ctx.turn },
                };
                decide::confirm(ctx.st, ctx.who, &id, via).await
            } else {
                decide::cancel(ctx.st, ctx.who, &id).await
            };
            match decision {
                Ok(d) => d.for_model(),
                Err(e) => Ran::error(e.code, e.message),
            }
        }
        _ if changes(name) => {
            if !ctx.who.can_manage {
                return Ran::error(
                    "read_only",
                    "members can ask questions but cannot change anything; ask an admin",
                );
            }
            preview::propose(ctx, name, args).await
        }
        "activity_summary" => audited(ctx, name, &value, activity::run(ctx, &args)).await,
        "search_knowledge" => {
            audited(ctx, name, &value, async {
                let q = args
                    .get("query")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match crate::api::knowledge::run_search(ctx.st, &ctx.who.org, q, None, 5).await {
                    Ok(r) => Ran::ok(json!({"ok": true, "results": r.data})),
                    Err(e) => Ran::error(e.code, e.message),
                }
            })
            .await
        }
        "list_knowledge_sources" => {
            audited(ctx, name, &value, async {
                match ctx.st.store.list_knowledge_sources(&ctx.who.org).await {
                    Ok(s) => Ran::ok(json!({"ok": true, "sources": s})),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot list knowledge sources");
                        Ran::error("unavailable", "the sources cannot be read right now")
                    }
                }
            })
            .await
        }
        _ => {
            audited(ctx, name, &value, async {
                match run_catalog(ctx, name, args).await {
                    Ok(v) => Ran::ok(json!({"ok": true, "result": v})),
                    Err((code, message)) => Ran::error(&code, message),
                }
            })
            .await
        }
    }
}
