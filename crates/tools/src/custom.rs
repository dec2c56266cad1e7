//! Running a custom HTTP tool: the model's arguments and the conversation's context are sent
//! to the organization's endpoint, signed per Standard Webhooks with the tool's own secret,
//! through the guarded client (no private addresses unless allowed, no redirects), under the
//! tool's timeout, and the answer (at most [`MAX_RESPONSE_BYTES`]) goes back to the model.

use crate::{failure, Registry, ToolContext, ToolError, ToolOutcome};
use serde_json::{json, Value};
use std::time::Duration;
use switchboard_domain::custom_tool::CustomTool;
use switchboard_domain::ids::OrgId;
use switchboard_domain::Timestamp;
use switchboard_egress::{check_literal, describe, read_limited, Overflow, TOOLS};

/// The longest an endpoint may take (the per-tool timeout is shorter or equal).
pub(crate) const MAX_WAIT: Duration =
    Duration::from_millis(switchboard_domain::custom_tool::MAX_TIMEOUT_MS.unsigned_abs());
/// The largest answer given to the model: more is refused, not cut (a cut JSON document
/// would mislead the agent).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// How much of an error answer the audit and the model see.
const EXCERPT_CHARS: usize = 500;

/// The document POSTed to a custom tool's endpoint (its `webhook-id` is `invocation_id`,
/// the same if the request is ever repeated, so a receiver can deduplicate on it).
pub fn request_body(
    tool: &CustomTool,
    invocation_id: &str,
    args: &Value,
    context: &Value,
) -> Value {
    json!({
        "tool": tool.name,
        "invocation_id": invocation_id,
        "arguments": args,
        "context": context,
    })
}

/// The `context` of a request made for an agent in a conversation.
pub(crate) fn conversation_context(ctx: &ToolContext) -> Value {
    json!({
        "org_id": ctx.org,
        "agent_id": ctx.agent.id,
        "agent_name": ctx.agent.name,
        "conversation_id": ctx.conversation_id,
        "call_id": ctx.call_id,
        "channel": ctx.channel.as_str(),
        "contact_number": ctx.contact_number.as_ref().map(|n| n.to_string()),
        "test": false,
    })
}

/// Calls the endpoint and maps every outcome to what the model is told.
pub(crate) async fn run(
    reg: &Registry,
    org: &OrgId,
    tool: &CustomTool,
    invocation_id: &str,
    args: Value,
    context: Value,
) -> ToolOutcome {
    let unreachable = |why: String| {
        tracing::warn!(tool = %tool.name, org_id = %org, reason = %why, "custom tool endpoint not reached");
        let mut e = ToolError::new(
            "endpoint_unreachable",
            "The system that answers this could not be reached; please try again later.",
        );
        e.details = Some(json!({"reason": why}));
        failure("error", e)
    };
    let Some(http) = reg.http() else {
        return unreachable("the HTTP client could not be built".into());
    };
    if let Err(why) = check_literal(TOOLS, &tool.url, reg.allows_private()) {
        return unreachable(why);
    }
    let body = request_body(tool, invocation_id, &args, &context).to_string();
    let ts = Timestamp::now().millis() / 1000;
    let signature = switchboard_egress::signing::signature_header(
        &tool.secrets,
        invocation_id,
        ts,
        body.as_bytes(),
    );
    let method = reqwest::Method::from_bytes(tool.method.as_str().as_bytes())
        .unwrap_or(reqwest::Method::POST);
    let timeout = Duration::from_millis(tool.timeout_ms.unsigned_abs());
    let mut req = http
        .request(method, &tool.url)
        .timeout(timeout)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("webhook-id", invocation_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature);
    for (name, value) in &tool.headers.0 {
        req = req.header(name.as_str(), value.expose());
    }
    // The whole exchange, reading included, stays within the tool's timeout.
    let exchange = async {
        let mut res = req.body(body).send().await.map_err(|e| describe(&e))?;
        let status = res.status();
        let read = read_limited(&mut res, MAX_RESPONSE_BYTES).await;
        Ok::<_, String>((status, read))
    };
    let (status, read) = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => return timed_out(tool),
        Ok(Err(why)) if why == "timed out" => return timed_out(tool),
        Ok(Err(why)) => return unreachable(why),
        Ok(Ok(v)) => v,
    };
    let bytes = match read {
        Ok(b) => b,
        Err(Overflow::TooLarge) => {
            tracing::warn!(tool = %tool.name, org_id = %org, limit = MAX_RESPONSE_BYTES, "custom tool answered too much");
            let mut e = ToolError::new(
                "response_too_large",
                "The answer from that system was too large to use.",
            );
            e.details = Some(json!({"limit_bytes": MAX_RESPONSE_BYTES}));
            return failure("error", e);
        }
        Err(Overflow::Failed(why)) if why == "timed out" => return timed_out(tool),
        Err(Overflow::Failed(why)) => return unreachable(why),
    };
    let text = String::from_utf8_lossy(&bytes);
    let answer: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone().into_owned()))
    };
    if !status.is_success() {
        tracing::info!(tool = %tool.name, org_id = %org, status = status.as_u16(), "custom tool endpoint answered an error");
        let excerpt: String = text.chars().take(EXCERPT_CHARS).collect();
        let mut e = ToolError::new(
            "endpoint_error",
            format!(
                "The system that answers this returned an error (HTTP {}).",
                status.as_u16()
            ),
        );
        e.details = Some(json!({"status": status.as_u16(), "body": excerpt}));
        return failure("error", e);
    }
    ToolOutcome {
        output: json!({"ok": true, "result": answer}),
        status: "ok",
        effect: None,
    }
}

fn timed_out(tool: &CustomTool) -> ToolOutcome {
    tracing::warn!(tool = %tool.name, timeout_ms = tool.timeout_ms, "custom tool endpoint timed out");
    failure(
        "timeout",
        ToolError::new(
            "timeout",
            "That took too long to answer; please try again in a moment.",
        ),
    )
}
