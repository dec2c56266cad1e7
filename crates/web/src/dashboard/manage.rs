//! Phone numbers, contacts, API keys and settings.

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
use switchboard_domain::entities::{
    ContactPatch, Cursor, NewContact, NewPhoneNumber, PhoneNumberPatch,
};
use switchboard_domain::ids::{AgentId, ApiKeyId, ContactId, PhoneNumberId};
use switchboard_domain::settings::{SettingsUpdate, NOTIFY_CALLS};
use switchboard_domain::values::{NumberChannel, PhoneNumber};
use switchboard_domain::Secret;
use switchboard_store::StoreError;

/// `?flash=`, `?cursor=`, `?q=`.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
    flash: Option<String>,
    #[serde(default)]
    q: String,
}

/// Maps a store result for a form: validation and conflicts go beside the field.
fn form_error(
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
        div.table-wrap {
            table.list #numbers {
                thead { tr { th { "Number" } th { "Channel" } th { "Agent" } th { "Active" } th {} } }
                tbody {
                    @for n in &page.data {
                        tr {
                            td { (n.number.as_str()) }
                            td { (n.channel.as_str()) }
                            @if dash.can_manage() {
                                td colspan="2" {
                                    form.inline method="post" action={ "/phone-numbers/" (n.id) } {
                                        (layout::csrf(dash))
                                        (agent_select("agent_id", &n.agent_id.as_ref().map(|a| a.to_string()).unwrap_or_default()))
                                        label.check { input type="checkbox" name="active" checked[n.active]; " active" }
                                        button.small type="submit" { "Save" }
                                    }
                                }
                                td { (layout::action_button(dash, &format!("/phone-numbers/{}/delete", n.id), "Remove", Some("Remove this number? Calls and messages to it will no longer be answered."))) }
                            } @else {
                                td { @match n.agent_id.as_ref().and_then(|a| agents.get(a)) { Some(x) => (x), None => span.muted { "—" } } }
                                td { (badge(if n.active { "enabled" } else { "disabled" })) }
                                td {}
                            }
                        }
                    }
                    @if page.data.is_empty() { tr { td colspan="5" .empty { "No numbers yet." } } }
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
            Ok(_) => return Ok(Redirect::to("/phone-numbers?flash=Number+added").into_response()),
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

// ---- contacts ----

struct ContactDraft<'a> {
    number: &'a str,
    name: &'a str,
    metadata: &'a str,
    opted_out: bool,
}

fn contact_form(
    dash: &Dash,
    action: &str,
    d: &ContactDraft<'_>,
    errors: &FieldErrors,
    button: &str,
) -> Markup {
    html! {
        form.card method="post" action=(action) #contact-form novalidate {
            (layout::csrf(dash))
            fieldset disabled[!dash.can_manage()] {
                div.row {
                    (field("Number", "number", errors, None, html! { input #number name="number" value=(d.number) placeholder="+15555550123"; }))
                    (field("Name", "name", errors, None, html! { input #name name="name" value=(d.name); }))
                }
                (field("Metadata", "metadata", errors, Some("A JSON object the agent can read (lookup_contact)."), html! {
                    textarea #metadata name="metadata" rows="3" spellcheck="false" { (d.metadata) }
                }))
                label.check { input type="checkbox" name="opted_out" checked[d.opted_out]; " Opted out of messages" }
                @if dash.can_manage() { p { button.primary type="submit" { (button) } } }
            }
        }
    }
}

fn parse_contact(
    f: &Fields,
    errors: &mut FieldErrors,
) -> (
    Option<PhoneNumber>,
    Option<String>,
    Option<serde_json::Value>,
) {
    let number = PhoneNumber::parse(f.raw("number").trim())
        .map_err(|m| errors.add("number", m))
        .ok();
    let metadata = match f.raw("metadata").trim() {
        "" => Some(serde_json::json!({})),
        t => match serde_json::from_str::<serde_json::Value>(t) {
            Ok(v) if v.is_object() => Some(v),
            Ok(_) => {
                errors.add(
                    "metadata",
                    "must be a JSON object, e.g. {\"plan\": \"gold\"}",
                );
                None
            }
            Err(e) => {
                errors.add("metadata", format!("is not valid JSON: {e}"));
                None
            }
        },
    };
    (number, f.get("name").map(str::to_owned), metadata)
}

async fn contacts_page(
    st: &AppState,
    dash: &Dash,
    q: &ListQuery,
    draft: &ContactDraft<'_>,
    errors: &FieldErrors,
) -> Result<Markup, DashError> {
    let cursor = q.cursor.as_deref().and_then(Cursor::decode);
    let page = st
        .store
        .list_contacts(&dash.org, Some(q.q.as_str()), Some(50), cursor.as_ref())
        .await?;
    let body = html! {
        (layout::flash(q.flash.as_deref()))
        form.filters method="get" action="/contacts" {
            input type="search" name="q" value=(q.q) placeholder="Number or name" aria-label="Search";
            button type="submit" { "Search" }
        }
        div.table-wrap {
            table.list #contacts {
                thead { tr { th { "Number" } th { "Name" } th { "Messages" } th { "Added" } } }
                tbody {
                    @for c in &page.data {
                        tr {
                            td { a href={ "/contacts/" (c.id) } { (c.number.as_str()) } }
                            td { (c.name.as_deref().unwrap_or("")) }
                            td { @if c.opted_out { (badge("opted out")) } @else { span.muted { "allowed" } } }
                            td { (time(c.created_at)) }
                        }
                    }
                    @if page.data.is_empty() { tr { td colspan="4" .empty { "No contacts match." } } }
                }
            }
        }
        (layout::pager("/contacts", &[("q", q.q.clone())], page.next_cursor.as_deref()))
        @if dash.can_manage() {
            h2 { "Add a contact" }
            (contact_form(dash, "/contacts", draft, errors, "Add contact"))
        }
    };
    layout::render(st, dash, "contacts", "Contacts", None, body).await
}

/// `GET /contacts`.
pub async fn contacts(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<ListQuery>,
) -> Result<Response, DashError> {
    let empty = ContactDraft {
        number: "",
        name: "",
        metadata: "{}",
        opted_out: false,
    };
    Ok(
        contacts_page(&st, &dash, &q, &empty, &FieldErrors::default())
            .await?
            .into_response(),
    )
}

/// `POST /contacts`.
pub async fn create_contact(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let mut errors = FieldErrors::default();
    let (number, name, metadata) = parse_contact(&f, &mut errors);
    if let (Some(number), Some(metadata), true) = (number, metadata, errors.is_empty()) {
        let input = NewContact {
            number,
            name,
            metadata: Some(metadata),
            opted_out: Some(f.checked("opted_out")),
        };
        match st.store.create_contact(&dash.org, input).await {
            Ok(c) => {
                return Ok(
                    Redirect::to(&format!("/contacts/{}?flash=Contact+added", c.id))
                        .into_response(),
                )
            }
            Err(e) => form_error(e, &mut errors, "number")?,
        }
    }
    let draft = ContactDraft {
        number: f.raw("number"),
        name: f.raw("name"),
        metadata: f.raw("metadata"),
        opted_out: f.checked("opted_out"),
    };
    let page = contacts_page(&st, &dash, &ListQuery::default(), &draft, &errors).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

async fn contact_page(
    st: &AppState,
    dash: &Dash,
    id: &ContactId,
    draft: Option<&ContactDraft<'_>>,
    errors: &FieldErrors,
    flash: Option<&str>,
) -> Result<Markup, DashError> {
    let c = st.store.get_contact(&dash.org, id).await?;
    let meta = serde_json::to_string_pretty(&c.metadata).unwrap_or_default();
    let stored = ContactDraft {
        number: c.number.as_str(),
        name: c.name.as_deref().unwrap_or(""),
        metadata: &meta,
        opted_out: c.opted_out,
    };
    let body = html! {
        (layout::flash(flash))
        (contact_form(dash, &format!("/contacts/{}", c.id), draft.unwrap_or(&stored), errors, "Save"))
        p { a href={ "/conversations?contact=" (form_urlencoded::byte_serialize(c.number.as_str().as_bytes()).collect::<String>()) } { "Conversations with this contact" } }
        @if dash.can_manage() {
            (layout::action_button(dash, &format!("/contacts/{}/delete", c.id), "Delete contact", Some("Delete this contact?")))
        }
    };
    let title = c
        .name
        .clone()
        .unwrap_or_else(|| c.number.as_str().to_owned());
    layout::render(st, dash, "contacts", &title, None, body).await
}

/// `GET /contacts/{id}`.
pub async fn edit_contact(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, DashError> {
    let id = ContactId::parse(&id).ok_or(DashError::NotFound)?;
    Ok(contact_page(
        &st,
        &dash,
        &id,
        None,
        &FieldErrors::default(),
        q.flash.as_deref(),
    )
    .await?
    .into_response())
}

/// `POST /contacts/{id}`.
pub async fn update_contact(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let id = ContactId::parse(&id).ok_or(DashError::NotFound)?;
    let mut errors = FieldErrors::default();
    let (number, name, metadata) = parse_contact(&f, &mut errors);
    if let (Some(number), Some(metadata), true) = (number, metadata, errors.is_empty()) {
        let patch = ContactPatch {
            number: Some(number),
            name: Some(name),
            metadata: Some(metadata),
            opted_out: Some(f.checked("opted_out")),
        };
        match st.store.update_contact(&dash.org, &id, patch).await {
            Ok(_) => {
                return Ok(Redirect::to(&format!("/contacts/{id}?flash=Saved")).into_response())
            }
            Err(e) => form_error(e, &mut errors, "number")?,
        }
    }
    let draft = ContactDraft {
        number: f.raw("number"),
        name: f.raw("name"),
        metadata: f.raw("metadata"),
        opted_out: f.checked("opted_out"),
    };
    let page = contact_page(&st, &dash, &id, Some(&draft), &errors, None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// `POST /contacts/{id}/delete`.
pub async fn delete_contact(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    let id = ContactId::parse(&id).ok_or(DashError::NotFound)?;
    st.store.delete_contact(&dash.org, &id).await?;
    Ok(Redirect::to("/contacts?flash=Contact+deleted").into_response())
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

// ---- settings ----

async fn settings_page(
    st: &AppState,
    dash: &Dash,
    draft: Option<&Fields>,
    errors: &FieldErrors,
    flash: Option<&str>,
) -> Result<Markup, DashError> {
    let s = st.store.get_settings(&dash.org).await?;
    let v = |k: &str, stored: String| -> String {
        draft.map(|f| f.raw(k).to_owned()).unwrap_or(stored)
    };
    let body = html! {
        (layout::flash(flash))
        form.card method="post" action="/settings" #settings-form novalidate {
            (layout::csrf(dash))
            @if !errors.is_empty() { p.error-banner role="alert" { "Nothing was saved. Correct the fields marked below." } }
            fieldset disabled[!dash.can_manage()] {
                h2 { "Messaging sessions" }
                div.row {
                    (field("Session window (s)", "session_window_seconds", errors, Some("A new text conversation starts after this much silence."), html! {
                        input #session_window_seconds name="session_window_seconds" inputmode="numeric" value=(v("session_window_seconds", s.session_window_seconds.to_string()));
                    }))
                    (field("Business-initiated window (s)", "business_session_window_seconds", errors, None, html! {
                        input #business_session_window_seconds name="business_session_window_seconds" inputmode="numeric" value=(v("business_session_window_seconds", s.business_session_window_seconds.to_string()));
                    }))
                }
                (field("HELP reply", "help_text", errors, None, html! { input #help_text name="help_text" value=(v("help_text", s.help_text.clone().unwrap_or_default())); }))
                h2 { "Outbound calls" }
                (field("Simultaneous outbound calls", "max_concurrent_outbound_calls", errors, Some("Calls ringing or live at once; more wait their turn (1 to 1000)."), html! {
                    input #max_concurrent_outbound_calls name="max_concurrent_outbound_calls" inputmode="numeric" value=(v("max_concurrent_outbound_calls", s.max_concurrent_outbound_calls.to_string()));
                }))
                h2 { "Notifications" }
                (field("Call report e-mails", "notification_emails", errors, Some("One address per line."), html! {
                    textarea #notification_emails name="notification_emails" rows="3" { (v("notification_emails", s.notification_emails.join("\n"))) }
                }))
                (field("Send reports for", "notify_calls", errors, None, html! {
                    select #notify_calls name="notify_calls" {
                        @let cur = v("notify_calls", s.notify_calls.clone());
                        @for n in NOTIFY_CALLS { option value=(n) selected[cur == *n] { (n) " calls" } }
                    }
                }))
                h2 { "Twilio" }
                div.row {
                    (field("Account SID", "twilio_account_sid", errors, None, html! {
                        input #twilio_account_sid name="twilio_account_sid" value=(v("twilio_account_sid", s.twilio_account_sid.clone().unwrap_or_default())) placeholder="AC…";
                    }))
                    (field("Auth token", "twilio_auth_token", errors, Some(if s.twilio_auth_token_set { "Set. Write-only: leave empty to keep it." } else { "Not set." }), html! {
                        input #twilio_auth_token type="password" name="twilio_auth_token" autocomplete="off" value="";
                    }))
                }
                @if dash.can_manage() { button.primary type="submit" #save-settings { "Save settings" } }
            }
        }
    };
    layout::render(st, dash, "settings", "Settings", None, body).await
}

/// `GET /settings`.
pub async fn settings(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<ListQuery>,
) -> Result<Response, DashError> {
    Ok(settings_page(
        &st,
        &dash,
        None,
        &FieldErrors::default(),
        q.flash.as_deref(),
    )
    .await?
    .into_response())
}

/// `POST /settings`: all or nothing.
pub async fn save_settings(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let mut errors = FieldErrors::default();
    let mut int = |k: &str| match f.raw(k).trim() {
        "" => None,
        t => t
            .parse::<i64>()
            .map_err(|_| errors.add(k, "must be a whole number"))
            .ok(),
    };
    let session = int("session_window_seconds");
    let business = int("business_session_window_seconds");
    let outbound = int("max_concurrent_outbound_calls");
    let current = st.store.get_settings(&dash.org).await?;
    let sid = f.get("twilio_account_sid").map(str::to_owned);
    let update = SettingsUpdate {
        // Unchanged values are not re-sent, so the write-only token is never required again.
        twilio_account_sid: sid.filter(|s| Some(s) != current.twilio_account_sid.as_ref()),
        twilio_auth_token: f.get("twilio_auth_token").map(Secret::new),
        session_window_seconds: session,
        business_session_window_seconds: business,
        notification_emails: Some(
            f.raw("notification_emails")
                .split([',', '\n'])
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        help_text: Some(f.get("help_text").map(str::to_owned)),
        notify_calls: f.get("notify_calls").map(str::to_owned),
        max_concurrent_outbound_calls: outbound,
    };
    if errors.is_empty() {
        match st.store.update_settings(&dash.org, update).await {
            Ok(_) => return Ok(Redirect::to("/settings?flash=Settings+saved").into_response()),
            Err(e) => form_error(e, &mut errors, "twilio_account_sid")?,
        }
    }
    let page = settings_page(&st, &dash, Some(&f), &errors, None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}
