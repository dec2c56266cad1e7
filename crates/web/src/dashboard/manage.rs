//! Phone numbers and API keys (and what the other management pages share).

use super::calls::agent_names;
use super::layout::{self, badge, field, time, time_opt};
use super::{Dash, DashError, FieldErrors, Fields};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use switchboard_domain::entities::{Cursor, NewPhoneNumber, OwnedNumber, PhoneNumberPatch};
use switchboard_domain::ids::{AgentId, ApiKeyId, PhoneNumberId};
use switchboard_domain::values::{NumberChannel, NumberVerification, PhoneNumber};
use switchboard_domain::Secret;
use switchboard_store::StoreError;
/// `?flash=`, `?cursor=`, `?q=`.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub(super) cursor: Option<String>,
    pub(super) flash: Option<String>,
    #[serde(default)]
    pub(super) q: String,
}

/// Maps a store result for a form: validation and conflicts go beside the field.
pub(super) fn form_error(
    e: StoreError,
    errors: &mut FieldErrors,
    conflict_field: &str,
) -> Result<(), DashError> {
    match e {
        StoreError::Invalid(v) => {
            errors.validation(&v);
            Ok(())
        }
        StoreError::Conflict(m) => {
            errors.add(conflict_field, m);
            Ok(())
        }
        other => Err(other.into()),
    }
}

// ---- phone numbers ----

async fn numbers_page(
    st: &AppState,
    dash: &Dash,
    q: &ListQuery,
    draft: (&str, &str, &str),
    errors: &FieldErrors,
) -> Result<Markup, DashError> {
    let cursor = q.cursor.as_deref().and_then(Cursor::decode);
    let page = st
        .store
        .list_numbers(&dash.org, Some(50), cursor.as_ref())
        .await?;
    let agents = agent_names(st, dash).await?;
    let mut agent_list: Vec<_> = agents.iter().collect();
    agent_list.sort_by(|a, b| a.1.cmp(b.1));
    let agent_select = |name: &str, selected: &str| {
        html! {
            select name=(name) aria-label="Agent" {
                option value="" { "No agent" }
                @for (id, n) in &agent_list { option value=(id) selected[selected == id.as_str()] { (n) } }
            }
        }
    };
    let body = html! {
        (layout::flash(q.flash.as_deref()))
        @if dash.can_manage() { p { a.button #import-from-twilio href="/phone-numbers/import" { "Import numbers from Twilio" } } }
        div.table-wrap {
            table.list #numbers {
                thead { tr { th { "Number" } th { "Channel" } th { "Verification" } th { "Agent" } th { "Active" } th {} } }
                tbody {
                    @for n in &page.data {
                        tr data-number=(n.number.as_str()) data-channel=(n.channel.as_str()) {
                            td { (n.number.as_str()) }
                            td { (n.channel.as_str()) }
                            td.verification {
                                @match n.verification {
                                    NumberVerification::Verified => span.badge.ok title=(n.verification_message.as_deref().unwrap_or_default()) { "verified" },
                                    NumberVerification::PendingVerification => {
                                        span.badge.warn { "pending verification" }
                                        @if let Some(m) = &n.verification_message { br; small.muted { (m) } }
                                        @if !st.twilio.require_verified_numbers { br; small.muted { "Routes anyway in development; production would refuse it." } }
                                    }
                                }
                            }
                            @if dash.can_manage() {
                                td colspan="2" {
                                    form.inline method="post" action={ "/phone-numbers/" (n.id) } {
                                        (layout::csrf(dash))
                                        (agent_select("agent_id", &n.agent_id.as_ref().map(|a| a.to_string()).unwrap_or_default()))
                                        label.check { input type="checkbox" name="active" checked[n.active]; " active" }
                                        button.small type="submit" { "Save" }
                                    }
                                }
                                td {
                                    (layout::action_button(dash, &format!("/phone-numbers/{}/verify", n.id), "Verify", None))
                                    (layout::action_button(dash, &format!("/phone-numbers/{}/delete", n.id), "Remove", Some("Remove this number? Calls and messages to it will no longer be answered.")))
                                }
                            } @else {
                                td { @match n.agent_id.as_ref().and_then(|a| agents.get(a)) { Some(x) => (x), None => span.muted { "—" } } }
                                td { (badge(if n.active { "enabled" } else { "disabled" })) }
                                td {}
                            }
                        }
                    }
                    @if page.data.is_empty() { tr { td colspan="6" .empty { "No numbers yet." } } }
                }
            }
        }
        (layout::pager("/phone-numbers", &[], page.next_cursor.as_deref()))
        @if dash.can_manage() {
            form.card method="post" action="/phone-numbers" #new-number novalidate {
                h2 { "Add a number" }
                (layout::csrf(dash))
                div.row {
                    (field("Number", "number", errors, Some("E.164, as bought from Twilio"), html! { input #number name="number" value=(draft.0) placeholder="+15555550123"; }))
                    (field("Channel", "channel", errors, None, html! {
                        select #channel name="channel" { @for c in ["voice", "sms", "whatsapp"] { option value=(c) selected[draft.1 == c] { (c) } } }
                    }))
                    (field("Agent", "agent_id", errors, None, agent_select("agent_id", draft.2)))
                }
                button.primary type="submit" { "Add number" }
            }
        }
    };
    layout::render(st, dash, "numbers", "Phone numbers", None, body).await
}

/// `GET /phone-numbers`.
pub async fn numbers(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<ListQuery>,
) -> Result<Response, DashError> {
    Ok(
        numbers_page(&st, &dash, &q, ("", "voice", ""), &FieldErrors::default())
            .await?
            .into_response(),
    )
}

fn parse_agent(raw: Option<&str>, errors: &mut FieldErrors) -> Option<AgentId> {
    let raw = raw?;
    let id = AgentId::parse(raw);
    if id.is_none() {
        errors.add("agent_id", "unknown agent");
    }
    id
}

/// `POST /phone-numbers`.
pub async fn create_number(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let mut errors = FieldErrors::default();
    let number = PhoneNumber::parse(f.raw("number").trim())
        .map_err(|m| errors.add("number", m))
        .ok();
    let channel = NumberChannel::parse(f.raw("channel"));
    if channel.is_none() {
        errors.add("channel", "choose voice, sms or whatsapp");
    }
    let agent_id = parse_agent(f.get("agent_id"), &mut errors);
    if let (Some(number), Some(channel), true) = (number, channel, errors.is_empty()) {
        let input = NewPhoneNumber {
            number,
            channel,
            agent_id,
            active: Some(true),
        };
        match st.store.create_number(&dash.org, input).await {
            Ok(n) => {
                let n = crate::numbers::verify(&st.store, &st.voice.twilio, &dash.org, &n.id)
                    .await
                    .unwrap_or(n);
                return Ok(super::redirect_with_flash(
                    "/phone-numbers",
                    &verified_flash("Number added", &n),
                ));
            }
            Err(e) => form_error(e, &mut errors, "number")?,
        }
    }
    let page = numbers_page(
        &st,
        &dash,
        &ListQuery::default(),
        (f.raw("number"), f.raw("channel"), f.raw("agent_id")),
        &errors,
    )
    .await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// `POST /phone-numbers/{id}`: route to an agent, switch on or off.
pub async fn update_number(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let id = PhoneNumberId::parse(&id).ok_or(DashError::NotFound)?;
    let mut errors = FieldErrors::default();
    let agent = parse_agent(f.get("agent_id"), &mut errors);
    if let Some(e) = errors.get("agent_id") {
        return Err(DashError::BadRequest(e.to_owned()));
    }
    let patch = PhoneNumberPatch {
        agent_id: Some(agent),
        active: Some(f.checked("active")),
    };
    st.store.update_number(&dash.org, &id, patch).await?;
    Ok(Redirect::to("/phone-numbers?flash=Saved").into_response())
}

/// What a flash says about a number's verification.
fn verified_flash(what: &str, n: &OwnedNumber) -> String {
    match (&n.verification, &n.verification_message) {
        (NumberVerification::Verified, _) => format!("{what}: verified with Twilio"),
        (NumberVerification::PendingVerification, Some(m)) => {
            format!("{what}: pending verification ({m})")
        }
        (NumberVerification::PendingVerification, None) => format!("{what}: pending verification"),
    }
}

/// `POST /phone-numbers/{id}/verify`: check again with Twilio.
pub async fn verify_number(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    let id = PhoneNumberId::parse(&id).ok_or(DashError::NotFound)?;
    let n = crate::numbers::verify(&st.store, &st.voice.twilio, &dash.org, &id).await?;
    Ok(super::redirect_with_flash(
        "/phone-numbers",
        &verified_flash(n.number.as_str(), &n),
    ))
}

/// `POST /phone-numbers/{id}/delete`.
pub async fn delete_number(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    let id = PhoneNumberId::parse(&id).ok_or(DashError::NotFound)?;
    st.store.delete_number(&dash.org, &id).await?;
    Ok(Redirect::to("/phone-numbers?flash=Number+removed").into_response())
}

// ---- API keys ----

async fn keys_page(
    st: &AppState,
    dash: &Dash,
    q: &ListQuery,
    new_key: Option<(&str, &Secret)>,
    errors: &FieldErrors,
) -> Result<Markup, DashError> {
    let cursor = q.cursor.as_deref().and_then(Cursor::decode);
    let page = st
        .store
        .list_api_keys(&dash.org, Some(50), cursor.as_ref())
        .await?;
    let body = html! {
        (layout::flash(q.flash.as_deref()))
        @if let Some((name, key)) = new_key {
            div.card.secret #new-key role="status" {
                p { "The key " strong { (name) } " is below. " strong { "It is shown this once" } "; store it now." }
                code.copy #new-key-value { (key.expose()) }
            }
        }
        div.table-wrap {
            table.list #api-keys {
                thead { tr { th { "Name" } th { "Key" } th { "Created" } th { "Last used" } th { "Status" } th {} } }
                tbody {
                    @for k in &page.data {
                        tr {
                            td { (k.name) } td { code { (k.prefix) "_…" } } td { (time(k.created_at)) } td { (time_opt(k.last_used_at)) }
                            td { @if k.revoked_at.is_some() { (badge("revoked")) } @else { (badge("enabled")) } }
                            td { @if dash.can_manage() && k.revoked_at.is_none() {
                                (layout::action_button(dash, &format!("/api-keys/{}/revoke", k.id), "Revoke", Some("Revoke this key? Requests using it will fail at once.")))
                            } }
                        }
                    }
                    @if page.data.is_empty() { tr { td colspan="6" .empty { "No keys." } } }
                }
            }
        }
        (layout::pager("/api-keys", &[], page.next_cursor.as_deref()))
        (connected_apps(st, dash).await?)
        @if dash.can_manage() {
            form.card method="post" action="/api-keys" #new-key-form novalidate {
                h2 { "Create a key" }
                (layout::csrf(dash))
                (field("Name", "name", errors, Some("What uses it, e.g. \"CRM sync\"."), html! { input #key-name name="name" maxlength="200"; }))
                button.primary type="submit" { "Create key" }
            }
        }
    };
    layout::render(st, dash, "keys", "API keys", None, body).await
}

/// The applications connected to `/mcp` by an admin's consent (OAuth), with "Disconnect".
async fn connected_apps(st: &AppState, dash: &Dash) -> Result<Markup, DashError> {
    let apps = st.store.connected_apps(&dash.org, st.clock.now()).await?;
    Ok(html! {
        section.card #connected-apps {
            h2 { "Connected applications" }
            p.muted { "AI assistants an admin allowed to use this organization through the MCP server at " code { "/mcp" } "." }
            div.table-wrap {
                table.list {
                    thead { tr { th { "Application" } th { "Connected" } th { "Last refreshed" } th {} } }
                    tbody {
                        @for a in &apps {
                            tr {
                                td { (a.client_name) " " small.muted { (a.client_id) } }
                                td { (time(a.connected_at)) }
                                td { (time(a.last_refreshed_at)) }
                                td { @if dash.can_manage() {
                                    (layout::action_button(dash, &format!("/api-keys/apps/{}/disconnect", a.family_id), "Disconnect", Some("Disconnect this application? Its access ends at once.")))
                                } }
                            }
                        }
                        @if apps.is_empty() { tr { td colspan="4" .empty { "No connected applications." } } }
                    }
                }
            }
        }
    })
}

/// `POST /api-keys/apps/{family}/disconnect` (admins): revokes every token of that consent.
pub async fn disconnect_app(
    State(st): State<AppState>,
    dash: Dash,
    Path(family): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    if family.len() != 64 || !family.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DashError::NotFound);
    }
    st.store
        .disconnect_app(&dash.org, &family, st.clock.now())
        .await?;
    tracing::info!(org_id = %dash.org, "connected application disconnected");
    Ok(super::redirect_with_flash(
        "/api-keys",
        "Application disconnected",
    ))
}

/// `GET /api-keys`.
pub async fn api_keys(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<ListQuery>,
) -> Result<Response, DashError> {
    Ok(keys_page(&st, &dash, &q, None, &FieldErrors::default())
        .await?
        .into_response())
}

/// `POST /api-keys`: the new key is in this one response only.
pub async fn create_api_key(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let mut errors = FieldErrors::default();
    let name = f.raw("name").trim().to_owned();
    match st.store.create_api_key(&dash.org, &name).await {
        Ok((key, secret)) => {
            tracing::info!(org_id = %dash.org, key_id = %key.id, "API key created in the dashboard");
            let page = keys_page(
                &st,
                &dash,
                &ListQuery::default(),
                Some((&key.name, &secret)),
                &errors,
            )
            .await?;
            // The secret must not be cached anywhere on the way back.
            Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], page).into_response())
        }
        Err(e) => {
            form_error(e, &mut errors, "name")?;
            let page = keys_page(&st, &dash, &ListQuery::default(), None, &errors).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// `POST /api-keys/{id}/revoke`.
pub async fn revoke_api_key(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    let id = ApiKeyId::parse(&id).ok_or(DashError::NotFound)?;
    st.store.revoke_api_key(&dash.org, &id).await?;
    Ok(Redirect::to("/api-keys?flash=Key+revoked").into_response())
}
