//! `/tools`: the tool audit (every execution: tool, where it came from, who ran it, status,
//! duration, arguments and result) with filters; the call and conversation pages show their
//! own executions with the same table.

use super::layout::{self, badge, time};
use super::{Dash, DashError};
use crate::AppState;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use switchboard_domain::entities::{Cursor, ToolInvocation, ToolInvocationFilter, TOOL_SOURCES};
use switchboard_domain::ids::{CallId, ConversationId};

/// Filters of `/tools`.
#[derive(Debug, Default, Deserialize)]
pub struct ToolsQuery {
    #[serde(default)]
    tool: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    source: String,
    cursor: Option<String>,
    flash: Option<String>,
}

/// A table of tool executions (arguments and result folded).
pub(crate) fn table(rows: &[ToolInvocation], id: &str) -> Markup {
    html! {
        div.table-wrap {
            table.list id=(id) {
                thead { tr { th { "Started" } th { "Tool" } th { "Source" } th { "By" } th { "Status" } th { "Duration" } th { "Where" } th { "Arguments and result" } } }
                tbody {
                    @for t in rows {
                        tr {
                            td { (time(t.started_at)) }
                            td { code { (t.tool) } }
                            td { (t.source) }
                            td { small { (t.actor) } }
                            td { (badge(&t.status)) }
                            td { @match t.duration_ms { Some(ms) => { (ms) " ms" }, None => span.muted { "—" } } }
                            td {
                                @match (&t.call_id, &t.conversation_id) {
                                    (Some(c), _) => a href={ "/calls/" (c) } { "call" },
                                    (None, Some(c)) => a href={ "/conversations/" (c) } { "conversation" },
                                    _ => span.muted { "—" },
                                }
                            }
                            td {
                                details {
                                    summary { "show" }
                                    pre.json { (serde_json::to_string_pretty(&t.arguments).unwrap_or_default()) }
                                    @if let Some(r) = &t.result { pre.json { (serde_json::to_string_pretty(r).unwrap_or_default()) } }
                                }
                            }
                        }
                    }
                    @if rows.is_empty() { tr { td colspan="8" .empty { "No tool executions." } } }
                }
            }
        }
    }
}

/// The executions of one call or conversation, oldest first (for their pages).
pub(crate) async fn of(
    st: &AppState,
    dash: &Dash,
    call: Option<&CallId>,
    conversation: Option<&ConversationId>,
) -> Result<Vec<ToolInvocation>, DashError> {
    let filter = ToolInvocationFilter {
        call_id: call.cloned(),
        conversation_id: conversation.cloned(),
        ..ToolInvocationFilter::default()
    };
    let mut rows = st
        .store
        .search_tool_invocations(&dash.org, &filter, Some(200), None)
        .await?
        .data;
    rows.reverse();
    Ok(rows)
}

/// `GET /tools`.
pub async fn list(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<ToolsQuery>,
) -> Result<Response, DashError> {
    let keep = |v: &str, allowed: &[&str]| allowed.contains(&v).then(|| v.to_owned());
    let filter = ToolInvocationFilter {
        tool: (!q.tool.trim().is_empty()).then(|| q.tool.trim().to_owned()),
        status: keep(&q.status, &["running", "ok", "error", "timeout"]),
        source: keep(&q.source, TOOL_SOURCES),
        ..ToolInvocationFilter::default()
    };
    let cursor = q.cursor.as_deref().and_then(Cursor::decode);
    let page = st
        .store
        .search_tool_invocations(&dash.org, &filter, Some(50), cursor.as_ref())
        .await?;
    let custom = super::custom_tools::card(&st, &dash).await?;
    let servers = super::mcp_servers::card(&st, &dash).await?;
    let body = html! {
        (layout::flash(q.flash.as_deref()))
        (custom)
        (servers)
        h2 { "Activity" }
        form.filters method="get" action="/tools" {
            input type="search" name="tool" placeholder="tool name" value=(q.tool) aria-label="Tool";
            select name="status" aria-label="Status" {
                option value="" { "any status" }
                @for s in ["ok", "error", "timeout", "running"] { option value=(s) selected[q.status == s] { (s) } }
            }
            select name="source" aria-label="Source" {
                option value="" { "calls and texts" }
                @for s in TOOL_SOURCES { option value=(s) selected[q.source == *s] { (s) } }
            }
            button type="submit" { "Filter" }
        }
        div #live {
            (table(&page.data, "tool-invocations"))
            (layout::pager("/tools", &[("tool", q.tool.clone()), ("status", q.status.clone()), ("source", q.source.clone())], page.next_cursor.as_deref()))
        }
    };
    let live = q.cursor.is_none().then_some("tool.");
    Ok(layout::render(&st, &dash, "tools", "Tools", live, body)
        .await?
        .into_response())
}
