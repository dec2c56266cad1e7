//! `search_knowledge`: the built-in tool every agent with knowledge sources is given, on
//! calls and in texts. It searches only the sources the agent answers from, in its
//! organization, and hands the model the best passages with the name of their source.

use crate::{ToolContext, ToolDefinition, ToolError};
use serde_json::{json, Value};
use switchboard_domain::knowledge::search_terms;

/// The tool's name.
pub(crate) const NAME: &str = "search_knowledge";
/// Passages given to the model per search (when it asks for no other number).
const DEFAULT_RESULTS: u64 = 3;
/// The most passages one search gives.
const MAX_RESULTS: u64 = 8;

/// The tool as offered to the model.
pub(crate) fn definition() -> ToolDefinition {
    ToolDefinition {
        name: NAME.to_owned(),
        description: "Search the business's own documents (prices, services, policies, opening hours, directions and the like) for the passages that answer a question. Use it before answering a factual question about the business, and answer from what it returns; if it finds nothing, say you do not know rather than guessing.".to_owned(),
        parameters: json!({"type": "object", "properties": {
            "query": {"type": "string", "description": "The question or the key words, e.g. \"price of a colour treatment\""},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS, "description": "How many passages (default 3)"}
        }, "required": ["query"]}),
    }
}

/// Runs a search in the agent's sources.
pub(crate) async fn run(ctx: &ToolContext, args: &Value) -> Result<Value, ToolError> {
    let query = args
        .get("query")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default();
    if query.is_empty() {
        return Err(ToolError::new(
            "invalid_arguments",
            "Say what to search for in `query`.",
        ));
    }
    let terms = search_terms(query);
    if terms.is_empty() {
        return Err(ToolError::new(
            "invalid_arguments",
            "The query has no words to search for; use the key words of the question.",
        ));
    }
    let limit = args
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_RESULTS)
        .clamp(1, MAX_RESULTS);
    let hits = ctx
        .store
        .search_knowledge(
            &ctx.org,
            &terms,
            Some(&ctx.agent.knowledge),
            u32::try_from(limit).unwrap_or(3),
        )
        .await
        .map_err(|e| {
            tracing::error!(error = %e, org_id = %ctx.org, "knowledge search failed");
            ToolError::new(
                "unavailable",
                "The documents cannot be searched right now; please try again later.",
            )
        })?;
    if hits.is_empty() {
        return Ok(json!({"ok": true, "results": [],
            "message": "Nothing in the business's documents matches. Say you do not know, or offer to find out."}));
    }
    let results: Vec<Value> = hits
        .into_iter()
        .map(|h| json!({"source": h.source, "heading": h.heading, "text": h.text}))
        .collect();
    Ok(json!({"ok": true, "results": results}))
}
