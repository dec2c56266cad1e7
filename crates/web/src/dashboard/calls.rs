//! `/calls` (live list with filters) and `/calls/{id}` (timeline, analysis, latency, webhooks).

use super::layout::{self, badge, duration, time, time_opt};
use super::{Dash, DashError, Fields};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use switchboard_domain::entities::{Call, CallFilter, Cursor, Message};
use switchboard_domain::ids::{AgentId, CallId};
use switchboard_domain::values::{CallStatus, MessageKind, MessageRole, PhoneNumber};
use switchboard_domain::Timestamp;
use switchboard_store::DeliveryFilter;

/// Filters of `/calls`.
#[derive(Debug, Default, Deserialize)]
pub struct CallsQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    number: String,
    /// A day, `YYYY-MM-DD`, in the organization's time zone.
    #[serde(default)]
    date: String,
    cursor: Option<String>,
    flash: Option<String>,
}

/// The day `YYYY-MM-DD` in the organization's time zone as a start and end (23 or 25 hours
/// on the days clocks change).
pub(crate) async fn day_range(
    st: &AppState,
    dash: &Dash,
    day: &str,
) -> Result<Option<(Timestamp, Timestamp)>, DashError> {
    let tz = st.store.get_settings(&dash.org).await?.tz();
    let Some(date) = switchboard_domain::schedule::parse_date(day.trim()) else {
        return Ok(None);
    };
    let end = date.tomorrow().ok();
    Ok(crate::appointments::day_start(date, &tz)
        .zip(end.and_then(|e| crate::appointments::day_start(e, &tz))))
}

/// Agent names by id, for the lists.
pub(crate) async fn agent_names(
    st: &AppState,
    dash: &Dash,
) -> Result<HashMap<AgentId, String>, DashError> {
    let mut out = HashMap::new();
    let mut cursor: Option<Cursor> = None;
    // Organizations have tens of agents, not thousands; a few pages at most.
    for _ in 0..10 {
        let page = st
            .store
            .list_agents(&dash.org, Some(200), cursor.as_ref())
            .await?;
        for a in page.data {
            out.insert(a.id, a.name);
        }
        match page.next_cursor.as_deref().and_then(Cursor::decode) {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(out)
}

fn live(status: CallStatus) -> bool {
    matches!(
        status,
        CallStatus::Queued | CallStatus::Initiated | CallStatus::Ringing | CallStatus::InProgress
    )
}

fn outcome(c: &Call) -> Markup {
    match c
        .analysis
        .as_ref()
        .and_then(|a| a.pointer("/outcome/success"))
    {
        Some(Value::Bool(true)) => badge("success"),
        Some(Value::Bool(false)) => badge("unsuccessful"),
        _ => match c.analysis.as_ref().and_then(|a| a.get("status")) {
            Some(Value::String(s)) if s == "failed" => html! { span.muted { "analysis failed" } },
            _ if c.ended_at.is_some() => html! { span.muted { "pending" } },
            _ => html! { span.muted { "—" } },
        },
    }
}

/// The call's recording: an audio player once Twilio finished it (served through
/// `/calls/{id}/recording`, never Twilio's URL), else its state.
fn player(c: &Call, compact: bool) -> Markup {
    // Retell keeps the recording of a call it ran; its link is temporary and served by
    // Retell (the page's policy keeps media to this origin, so a link, not a player).
    if switchboard_domain::call::is_retell_call(&c.call_sid) {
        return match &c.recording_url {
            Some(url) => {
                html! { a #retell-recording href=(url) target="_blank" rel="noopener noreferrer" { "Retell's recording" } }
            }
            None if compact => html! {},
            None => html! { span.muted { "no recording from Retell" } },
        };
    }
    match &c.recording {
        Some(r) if r.status == "completed" => html! {
            audio controls preload="none" src={ "/calls/" (c.id) "/recording" } class=[compact.then_some("compact")] aria-label="Call recording" {}
            @if !compact { @if let Some(d) = r.duration_seconds { " " span.muted { (duration(d)) } } }
        },
        Some(r) => html! { span.muted { (r.status) } },
        None if compact => html! {},
        None => html! { span.muted { "not recorded" } },
    }
}

/// `GET /calls/{id}/recording`: the audio for the dashboard's player (the API's streaming,
/// with the signed-in session instead of an API key).
pub async fn recording(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Response, DashError> {
    let id = CallId::parse(&id).ok_or(DashError::NotFound)?;
    Ok(
        match crate::api::recordings::serve(&st, &dash.org, &id, &headers).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        },
    )
}

/// `POST /calls/{id}/recording/delete`.
pub async fn delete_recording(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    let id = CallId::parse(&id).ok_or(DashError::NotFound)?;
    let path = format!("/calls/{id}");
    Ok(
        match crate::api::recordings::delete(&st, &dash.org, &id).await {
            Ok(()) => super::redirect_with_flash(&path, "Recording deleted"),
            Err(e) => super::redirect_with_flash(&path, &e.message),
        },
    )
}

/// `GET /calls`.
pub async fn list(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<CallsQuery>,
) -> Result<Response, DashError> {
    let mut problems = Vec::new();
    let status = match q.status.as_str() {
        "" => None,
        s => CallStatus::parse(s).or_else(|| {
            problems.push(format!("unknown status `{s}`"));
            None
        }),
    };
    let agent_id = match q.agent_id.as_str() {
        "" => None,
        s => AgentId::parse(s).or_else(|| {
            problems.push("unknown agent".to_owned());
            None
        }),
    };
    let number = match q.number.trim() {
        "" => None,
        s => match PhoneNumber::parse(s) {
            Ok(n) => Some(n.as_str().to_owned()),
            Err(m) => {
                problems.push(format!("number: {m}"));
                None
            }
        },
    };
    let (from, to) = match q.date.as_str() {
        "" => (None, None),
        d => match day_range(&st, &dash, d).await? {
            Some((a, b)) => (Some(a), Some(b)),
            None => {
                problems.push("date: use YYYY-MM-DD".to_owned());
                (None, None)
            }
        },
    };
    let filter = CallFilter {
        status,
        agent_id,
        number,
        from,
        to,
        ..CallFilter::default()
    };
    let cursor = q.cursor.as_deref().and_then(Cursor::decode);
    let page = st
        .store
        .list_calls(&dash.org, &filter, Some(50), cursor.as_ref())
        .await?;
    let agents = agent_names(&st, &dash).await?;
    let mut agent_list: Vec<_> = agents.iter().collect();
    agent_list.sort_by(|a, b| a.1.cmp(b.1));
    let now = st.clock.now();
    let body = html! {
        (layout::flash(q.flash.as_deref()))
        form.filters method="get" action="/calls" {
            select name="status" aria-label="Status" {
                option value="" { "Any status" }
                @for s in ["in-progress", "ringing", "completed", "busy", "no-answer", "failed", "canceled"] {
                    option value=(s) selected[q.status == s] { (s) }
                }
            }
            select name="agent_id" aria-label="Agent" {
                option value="" { "Any agent" }
                @for (id, name) in &agent_list {
                    option value=(id) selected[q.agent_id == id.as_str()] { (name) }
                }
            }
            input type="search" name="number" placeholder="+15555550123" value=(q.number) aria-label="Number";
            input type="date" name="date" value=(q.date) aria-label="Day";
            button type="submit" { "Filter" }
            @if !problems.is_empty() { p.field-error role="alert" { (problems.join("; ")) } }
        }
        div #live {
            div.table-wrap {
                table.list #calls {
                    thead { tr { th { "Started" } th { "Direction" } th { "From" } th { "To" } th { "Agent" } th { "Status" } th { "Duration" } th { "Disposition" } th { "Outcome" } th { "Recording" } } }
                    tbody {
                        @for c in &page.data {
                            tr data-call=(c.id) class=[live(c.status).then_some("is-live")] {
                                td { a href={ "/calls/" (c.id) } { (time(c.started_at)) } }
                                td { (c.direction.as_str()) }
                                td { (c.from_number) }
                                td { (c.to_number) }
                                td { @match c.agent_id.as_ref().and_then(|a| agents.get(a)) { Some(n) => (n), None => span.muted { "—" } } }
                                td.status { (badge(c.status.as_str())) }
                                td {
                                    @if live(c.status) {
                                        span.timer data-since=(c.answered_at.unwrap_or(c.started_at).millis()) { (duration((now.millis() - c.answered_at.unwrap_or(c.started_at).millis()) / 1000)) }
                                    } @else {
                                        (c.duration_seconds.map(duration).unwrap_or_default())
                                    }
                                }
                                td { (c.disposition.as_deref().or(c.end_reason.as_deref()).unwrap_or("")) }
                                td { (outcome(c)) }
                                td { (player(c, true)) }
                            }
                        }
                        @if page.data.is_empty() { tr { td colspan="10" .empty { "No calls match." } } }
                    }
                }
            }
            (layout::pager("/calls", &[("status", q.status.clone()), ("agent_id", q.agent_id.clone()), ("number", q.number.clone()), ("date", q.date.clone())], page.next_cursor.as_deref()))
        }
    };
    let live_prefix = q.cursor.is_none().then_some("call.");
    Ok(
        layout::render(&st, &dash, "calls", "Calls", live_prefix, body)
            .await?
            .into_response(),
    )
}

fn text_of(m: &Message) -> String {
    match m.content.get("text") {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

/// The transcript as a timeline: caller and agent turns, tool calls with their arguments and
/// results, interruptions.
pub(crate) fn timeline(items: &[Message], contact_label: &str) -> Markup {
    html! {
        ol.timeline #transcript {
            @for m in items {
                @match m.kind {
                    MessageKind::Message => {
                        @let (who, class) = match m.role {
                            MessageRole::User => (contact_label, "turn contact"),
                            MessageRole::Assistant => ("Agent", "turn agent"),
                            MessageRole::Human => ("Staff", "turn staff"),
                            _ => ("System", "turn system"),
                        };
                        @let interrupted = m.content.get("interrupted").and_then(Value::as_bool) == Some(true);
                        li class=(class) data-message=(m.id) {
                            div.meta { strong { (who) } " " (time(m.created_at))
                                @if interrupted { " " span.badge.warn title="The caller spoke over the agent; only the heard part is kept" { "interrupted" } }
                                @if let Some(s) = &m.delivery_status { " " (badge(s)) }
                            }
                            div.bubble { (text_of(m)) }
                            @if let Some(b) = m.content.get("latency_breakdown") { (latency_breakdown(b)) }
                            @if interrupted {
                                @if let Some(Value::String(full)) = m.content.get("generated_text") {
                                    details { summary { "What the agent would have said" } p.muted { (full) } }
                                }
                            }
                        }
                    }
                    MessageKind::FunctionCall => {
                        li.turn.tool {
                            div.meta { strong { "Tool call" } " " code { (m.content.get("name").and_then(Value::as_str).unwrap_or("?")) } " " (time(m.created_at)) }
                            @let args = m.content.get("arguments").cloned().unwrap_or(Value::Null);
                            @let args = match &args { Value::String(s) => serde_json::from_str(s).unwrap_or(args.clone()), _ => args };
                            (layout::json_block(&args))
                        }
                    }
                    MessageKind::FunctionOutput => {
                        li.turn.tool {
                            div.meta { strong { "Tool result" } " " (time(m.created_at)) }
                            @let out = m.content.get("output").cloned().unwrap_or_else(|| m.content.clone());
                            @let out = match &out { Value::String(s) => serde_json::from_str(s).unwrap_or(out.clone()), _ => out };
                            (layout::json_block(&out))
                        }
                    }
                }
            }
            @if items.is_empty() { li.empty { "Nothing was said yet." } }
        }
    }
}

/// Where a cascaded turn's time went: end of speech to final transcript, to the chat
/// model's first word, to the voice's first audio, to the caller.
fn latency_breakdown(b: &Value) -> Markup {
    let leg = |k: &str| b.get(k).and_then(Value::as_i64);
    let legs = [
        ("transcript", leg("transcript_ms")),
        ("first word", leg("first_token_ms")),
        ("first audio", leg("first_audio_ms")),
        ("to the caller", leg("sent_ms")),
    ];
    html! {
        div.latency-breakdown.muted title="End of the caller's speech → final transcript → chat model's first word → voice's first audio → first audio sent" {
            @for (i, (name, ms)) in legs.iter().enumerate() {
                @if i > 0 { " → " }
                (name) " " @match ms { Some(v) => { (v) " ms" }, None => "—" }
            }
            @if let Some(t) = leg("total_ms") { " (total " (t) " ms)" }
        }
    }
}

/// What Retell made of a call it ran (`call_analysis`): summary, success, sentiment, and
/// its custom fields.
fn provider_analysis(a: &Value) -> Markup {
    let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    html! {
        h3 { "Retell's analysis" }
        dl.kv #provider-analysis {
            dt { "Summary" } dd { (s("call_summary")) }
            dt { "Successful" } dd {
                @match a.get("call_successful") { Some(Value::Bool(true)) => (badge("success")), Some(Value::Bool(false)) => (badge("unsuccessful")), _ => "" }
            }
            dt { "Sentiment" } dd { (s("user_sentiment")) }
            @if let Some(Value::Object(fields)) = a.get("custom_analysis_data") {
                @for (k, v) in fields {
                    dt { code { (k) } } dd { @match v { Value::String(t) => (t), other => (other.to_string()) } }
                }
            }
        }
    }
}

/// The analysis: summary, outcome, sentiment, extracted fields.
pub(crate) fn analysis(a: Option<&Value>) -> Markup {
    let Some(a) = a else {
        return html! { p.muted #analysis { "No analysis yet." } };
    };
    if a.get("status").and_then(Value::as_str) == Some("failed") {
        return html! { p.field-error #analysis { "The analysis failed: " (a.get("error").and_then(Value::as_str).unwrap_or("unknown error")) } };
    }
    let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    html! {
        dl.kv #analysis {
            dt { "Summary" } dd #summary { (s("summary")) }
            dt { "Intent" } dd { (s("intent")) }
            dt { "Outcome" } dd {
                @match a.pointer("/outcome/success") { Some(Value::Bool(true)) => (badge("success")), Some(Value::Bool(false)) => (badge("unsuccessful")), _ => "" }
                " " (a.pointer("/outcome/reason").and_then(Value::as_str).unwrap_or(""))
            }
            dt { "Sentiment" } dd { (s("sentiment")) }
            @if let Some(Value::Object(fields)) = a.get("fields") {
                @for (k, v) in fields {
                    dt { code { (k) } } dd { @match v { Value::String(t) => (t), other => (other.to_string()) } }
                }
            }
        }
    }
}

fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx.min(sorted.len() - 1)).copied()
}

/// Median and 95th percentile of latencies.
pub(crate) fn p50_p95(v: &[i64]) -> (Option<i64>, Option<i64>) {
    let mut s = v.to_vec();
    s.sort_unstable();
    (percentile(&s, 0.5), percentile(&s, 0.95))
}

/// `GET /calls/{id}`.
pub async fn show(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Query(q): Query<CallsQuery>,
) -> Result<Response, DashError> {
    let id = CallId::parse(&id).ok_or(DashError::NotFound)?;
    let call = st.store.get_call(&dash.org, &id).await?;
    let items = st
        .store
        .list_messages(&dash.org, &call.conversation_id, Some(200), None)
        .await?;
    let deliveries = st
        .store
        .list_webhook_deliveries(
            &dash.org,
            &DeliveryFilter {
                subject_id: Some(call.conversation_id.to_string()),
                ..DeliveryFilter::default()
            },
            Some(50),
            None,
        )
        .await?;
    let agents = agent_names(&st, &dash).await?;
    // Deliveries name their endpoint by URL, as people know it.
    let endpoints: HashMap<String, String> = st
        .store
        .list_webhook_endpoints(&dash.org, Some(200), None)
        .await?
        .data
        .into_iter()
        .map(|e| (e.id.to_string(), e.url))
        .collect();
    let tool_runs = super::tools::of(&st, &dash, Some(&call.id), None).await?;
    let (p50, p95) = p50_p95(&call.turn_latencies_ms);
    let now = st.clock.now();
    let body = html! {
        (layout::flash(q.flash.as_deref()))
        div #live {
            section.card {
                dl.kv.grid {
                    dt { "Status" } dd #call-status { (badge(call.status.as_str())) }
                    dt { "From" } dd { (call.from_number) }
                    dt { "To" } dd { (call.to_number) }
                    dt { "Agent" } dd { @match call.agent_id.as_ref().and_then(|a| agents.get(a)) { Some(n) => a href={ "/agents/" (call.agent_id.as_ref().map(|a| a.to_string()).unwrap_or_default()) } { (n) }, None => "—" } }
                    dt { "Started" } dd { (time(call.started_at)) }
                    dt { "Ended" } dd { (time_opt(call.ended_at)) }
                    dt { "Duration" } dd {
                        @if live(call.status) { span.timer data-since=(call.answered_at.unwrap_or(call.started_at).millis()) { (duration((now.millis() - call.started_at.millis()) / 1000)) } }
                        @else { (call.duration_seconds.map(duration).unwrap_or_default()) }
                    }
                    dt { "Disposition" } dd { (call.disposition.as_deref().unwrap_or("—")) }
                    dt { "End reason" } dd { (call.end_reason.as_deref().unwrap_or("—")) }
                    dt { "Recording" } dd #recording {
                        (player(&call, false))
                        @if call.recording.as_ref().is_some_and(|r| r.status == "completed") && dash.can_manage() {
                            " " (layout::action_button(&dash, &format!("/calls/{}/recording/delete", call.id), "Delete recording", Some("Delete this recording here and at Twilio?")))
                        }
                    }
                    dt { "Per-turn latency" } dd #latency {
                        @match (p50, p95) {
                            (Some(a), Some(b)) => { "p50 " (a) " ms · p95 " (b) " ms · " (call.turn_latencies_ms.len()) " turns" }
                            _ => span.muted { "no turns measured" }
                        }
                    }
                    @if let Some(e) = &call.error { dt { "Error" } dd.field-error { (e) } }
                }
                @if !call.turn_latencies_ms.is_empty() {
                    // SVG geometry, not inline styles: the pages' content policy forbids those.
                    @let n = call.turn_latencies_ms.len();
                    @let max = call.turn_latencies_ms.iter().copied().max().unwrap_or(1).max(1);
                    svg.bars role="img" aria-label="Per-turn latency (ms), in order"
                        width=(n * 21) height="60" viewBox={ "0 0 " (n * 21) " 100" } preserveAspectRatio="none" {
                        @for (i, l) in call.turn_latencies_ms.iter().enumerate() {
                            @let h = ((*l * 100) / max).max(2);
                            rect x=(i * 21) y=(100 - h) width="18" height=(h) rx="2" {
                                title { (l) " ms" }
                            }
                        }
                    }
                }
            }
            @if live(call.status) && call.ended_at.is_none() && dash.can_manage() {
                (super::call_control::card(&dash, &call))
            }
            div.columns {
                section {
                    h2 { "Transcript" }
                    (timeline(&items.data, "Caller"))
                }
                section {
                    h2 { "Analysis" }
                    (analysis(call.analysis.as_ref()))
                    @if let Some(a) = &call.provider_analysis { (provider_analysis(a)) }
                    @if dash.can_manage() && call.ended_at.is_some() {
                        (layout::action_button(&dash, &format!("/calls/{}/analyze", call.id), "Analyse again", None))
                    }
                    h2 { "Tool executions" }
                    (super::tools::table(&tool_runs, "call-tools"))
                    h2 { "Webhook deliveries" }
                    @if deliveries.data.is_empty() { p.muted { "None." } }
                    @else {
                        div.table-wrap {
                            table.list #deliveries {
                                thead { tr { th { "Event" } th { "Endpoint" } th { "Status" } th { "Attempts" } } }
                                tbody {
                                    @for d in &deliveries.data {
                                        @let ep = d.endpoint_id.to_string();
                                        tr { td { (d.event_type) } td.wrap { a href={ "/webhooks/" (ep) } { (endpoints.get(&ep).map(String::as_str).unwrap_or(ep.as_str())) } } td { (badge(&d.status)) } td { (d.attempts) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let title = format!("Call from {}", call.from_number);
    Ok(
        layout::render(&st, &dash, "calls", &title, Some("call."), body)
            .await?
            .into_response(),
    )
}

/// `POST /calls/{id}/analyze` (admins).
pub async fn analyze(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    let id = CallId::parse(&id).ok_or(DashError::NotFound)?;
    st.store
        .request_call_analysis(&dash.org, &id, st.clock.now())
        .await?;
    Ok(Redirect::to(&format!("/calls/{id}?flash=Analysis+queued")).into_response())
}
