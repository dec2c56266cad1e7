//! `/conversations` and one thread as chat bubbles, live while open, with a reply box.

use super::calls::{agent_names, analysis, day_range, timeline};
use super::layout::{self, badge, time, time_opt};
use super::{Dash, DashError, FieldErrors, Fields};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use switchboard_domain::entities::{ConversationFilter, Cursor};
use switchboard_domain::ids::{AgentId, ConversationId};
use switchboard_domain::values::{Channel, ConversationStatus, PhoneNumber};
use switchboard_messaging::MessagingError;

/// Filters of `/conversations`.
#[derive(Debug, Default, Deserialize)]
pub struct ConvQuery {
    #[serde(default)]
    channel: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    date: String,
    cursor: Option<String>,
    flash: Option<String>,
}

/// `GET /conversations`.
pub async fn list(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<ConvQuery>,
) -> Result<Response, DashError> {
    let mut problems = Vec::new();
    let mut filter = ConversationFilter::default();
    if !q.channel.is_empty() {
        filter.channel = Channel::parse(&q.channel);
        if filter.channel.is_none() {
            problems.push(format!("unknown channel `{}`", q.channel));
        }
    }
    if !q.status.is_empty() {
        filter.status = ConversationStatus::parse(&q.status);
        if filter.status.is_none() {
            problems.push(format!("unknown status `{}`", q.status));
        }
    }
    if !q.agent_id.is_empty() {
        filter.agent_id = AgentId::parse(&q.agent_id);
    }
    match q.contact.trim() {
        "" => {}
        c => match PhoneNumber::parse(c) {
            Ok(n) => filter.contact = Some(n.as_str().to_owned()),
            Err(m) => problems.push(format!("contact: {m}")),
        },
    }
    if !q.date.is_empty() {
        match day_range(&st, &dash, &q.date).await? {
            Some((a, b)) => {
                filter.from = Some(a);
                filter.to = Some(b);
            }
            None => problems.push("date: use YYYY-MM-DD".into()),
        }
    }
    let cursor = q.cursor.as_deref().and_then(Cursor::decode);
    let page = st
        .store
        .list_conversations(&dash.org, &filter, Some(50), cursor.as_ref())
        .await?;
    let numbers: Vec<String> = page.data.iter().map(|c| c.contact_number.clone()).collect();
    let opted_out = st.store.opted_out_among(&dash.org, &numbers).await?;
    let agents = agent_names(&st, &dash).await?;
    let body = html! {
        (layout::flash(q.flash.as_deref()))
        form.filters method="get" action="/conversations" {
            select name="channel" aria-label="Channel" {
                option value="" { "Any channel" }
                @for c in ["sms", "whatsapp", "web", "voice"] { option value=(c) selected[q.channel == c] { (c) } }
            }
            select name="status" aria-label="Status" {
                option value="" { "Any status" }
                @for s in ["active", "closed", "failed"] { option value=(s) selected[q.status == s] { (s) } }
            }
            input type="search" name="contact" placeholder="Contact +1555…" value=(q.contact) aria-label="Contact";
            input type="date" name="date" value=(q.date) aria-label="Day";
            button type="submit" { "Filter" }
            @if !problems.is_empty() { p.field-error role="alert" { (problems.join("; ")) } }
        }
        div #live {
            div.table-wrap {
                table.list #conversations {
                    thead { tr { th { "Last activity" } th { "Contact" } th { "Channel" } th { "Agent" } th { "Status" } th { "Started" } } }
                    tbody {
                        @for c in &page.data {
                            tr data-conversation=(c.id) {
                                td { a href={ "/conversations/" (c.id) } { (time(c.last_message_at)) } }
                                td { (c.contact_number) @if opted_out.contains(&c.contact_number) { " " (badge("opted out")) } }
                                td { (c.channel.as_str()) }
                                td { @match c.agent_id.as_ref().and_then(|a| agents.get(a)) { Some(n) => (n), None => span.muted { "—" } } }
                                td { (badge(c.status.as_str())) }
                                td { (time(c.started_at)) }
                            }
                        }
                        @if page.data.is_empty() { tr { td colspan="6" .empty { "No conversations match." } } }
                    }
                }
            }
            (layout::pager("/conversations", &[("channel", q.channel.clone()), ("status", q.status.clone()), ("contact", q.contact.clone()), ("date", q.date.clone())], page.next_cursor.as_deref()))
        }
    };
    let live = q.cursor.is_none().then_some("conversation.,message.");
    Ok(
        layout::render(&st, &dash, "conversations", "Conversations", live, body)
            .await?
            .into_response(),
    )
}

/// A long thread opens at its newest 200 messages; `?before=` pages back from there and
/// `?after=` forward.
#[derive(Debug, Default, Deserialize)]
pub struct ThreadQuery {
    after: Option<String>,
    before: Option<String>,
    flash: Option<String>,
}

/// One page of a thread and the links around it.
struct ThreadPage {
    items: Vec<switchboard_domain::entities::Message>,
    earlier: Option<String>,
    later: Option<String>,
}

async fn thread_page(
    st: &AppState,
    dash: &Dash,
    id: &ConversationId,
    after: Option<&str>,
    before: Option<&str>,
) -> Result<ThreadPage, DashError> {
    if let Some(c) = after.and_then(Cursor::decode) {
        let page = st
            .store
            .list_messages(&dash.org, id, Some(200), Some(&c))
            .await?;
        return Ok(ThreadPage {
            items: page.data,
            earlier: None,
            later: page.next_cursor,
        });
    }
    let before_cursor = before.and_then(Cursor::decode);
    let page = st
        .store
        .list_messages_before(&dash.org, id, Some(200), before_cursor.as_ref())
        .await?;
    Ok(ThreadPage {
        items: page.data,
        earlier: page.earlier,
        later: before_cursor.and(page.last),
    })
}

async fn render_thread(
    st: &AppState,
    dash: &Dash,
    id: &ConversationId,
    (after, before): (Option<&str>, Option<&str>),
    flash: Option<&str>,
    draft: &str,
    errors: &FieldErrors,
) -> Result<maud::Markup, DashError> {
    let conv = st.store.get_conversation(&dash.org, id).await?;
    let page = thread_page(st, dash, id, after, before).await?;
    let opted_out = st
        .store
        .contact_opted_out(&dash.org, &conv.contact_number)
        .await?;
    let agents = agent_names(st, dash).await?;
    let tool_runs = super::tools::of(st, dash, None, Some(&conv.id)).await?;
    let open = conv.status == ConversationStatus::Active;
    let texting = conv.channel != Channel::Voice;
    let body = html! {
        (layout::flash(flash))
        div #live data-subject=(conv.id) {
            section.card {
                dl.kv.grid {
                    dt { "Contact" } dd #contact { (conv.contact_number) @if opted_out { " " (badge("opted out")) } }
                    dt { "Channel" } dd { (conv.channel.as_str()) " · " (conv.direction.as_str()) }
                    dt { "Our number" } dd { (conv.our_number.as_deref().unwrap_or("—")) }
                    dt { "Agent" } dd { @match conv.agent_id.as_ref().and_then(|a| agents.get(a)) { Some(n) => (n), None => "—" } }
                    dt { "Status" } dd #conversation-status { (badge(conv.status.as_str())) }
                    dt { "Started" } dd { (time(conv.started_at)) }
                    dt { "Ended" } dd { (time_opt(conv.ended_at)) }
                    @if let Some(e) = &conv.error { dt { "Error" } dd.field-error { (e) } }
                }
            }
            div.chat {
                @if let Some(earlier) = &page.earlier {
                    p.pager { a #earlier-messages href={ "/conversations/" (conv.id) "?before=" (earlier) } { "← Earlier messages" } }
                }
                (timeline(&page.items, "Contact"))
                @if let Some(next) = &page.later {
                    p.pager { a #later-messages href={ "/conversations/" (conv.id) "?after=" (next) } { "Later messages →" } }
                }
            }
            @if conv.analysis.is_some() { h2 { "Analysis" } (analysis(conv.analysis.as_ref())) }
            @if !tool_runs.is_empty() { h2 { "Tool executions" } (super::tools::table(&tool_runs, "conversation-tools")) }
        }
        @if dash.can_manage() && open && texting {
            form.reply method="post" action={ "/conversations/" (conv.id) "/send" } #reply {
                (layout::csrf(dash))
                (layout::field("Send as staff", "text", errors, Some("Sent to the contact now; the agent sees it in the thread."), html! {
                    textarea #text name="text" rows="2" maxlength="1600" required { (draft) }
                }))
                button.primary type="submit" disabled[opted_out] { "Send" }
                @if opted_out { p.muted { "This contact opted out; nothing can be sent until they opt back in." } }
            }
        }
    };
    let title = format!("Conversation with {}", conv.contact_number);
    layout::render(
        st,
        dash,
        "conversations",
        &title,
        Some("message.,conversation.,tool."),
        body,
    )
    .await
}

/// `GET /conversations/{id}`.
pub async fn show(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Query(q): Query<ThreadQuery>,
) -> Result<Response, DashError> {
    let id = ConversationId::parse(&id).ok_or(DashError::NotFound)?;
    Ok(render_thread(
        &st,
        &dash,
        &id,
        (q.after.as_deref(), q.before.as_deref()),
        q.flash.as_deref(),
        "",
        &FieldErrors::default(),
    )
    .await?
    .into_response())
}

/// `POST /conversations/{id}/send` (admins, operators): a staff message into the thread.
pub async fn send(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let id = ConversationId::parse(&id).ok_or(DashError::NotFound)?;
    let text = f.raw("text");
    let mut errors = FieldErrors::default();
    match st.messaging.send_human(&dash.org, &id, text).await {
        Ok(_) => {
            return Ok(Redirect::to(&format!("/conversations/{id}?flash=Sent")).into_response())
        }
        Err(MessagingError::NotFound(_)) => return Err(DashError::NotFound),
        Err(MessagingError::Store(e)) => return Err(e.into()),
        Err(MessagingError::Invalid(v)) => errors.validation(&v),
        Err(e) => {
            let code = e.code();
            tracing::info!(code, error = %e, "dashboard message not sent");
            errors.add("text", e.to_string());
        }
    }
    let page = render_thread(&st, &dash, &id, (None, None), None, text, &errors).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}
