//! Contacts: list, search, add, edit, delete.

use super::layout::{self, badge, field, time};
use super::manage::{form_error, ListQuery};
use super::{Dash, DashError, FieldErrors, Fields};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use switchboard_domain::entities::{ContactPatch, Cursor, NewContact};
use switchboard_domain::ids::ContactId;
use switchboard_domain::values::PhoneNumber;

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
    let call_form = call_form(st, dash, &c.id).await?;
    let appointments = appointments_card(st, dash, &c.id).await?;
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
        (appointments)
        @if dash.can_manage() && !c.opted_out { (call_form) }
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

/// The contact's appointments: upcoming (a year ahead) and the last 90 days, canceled ones
/// marked.
async fn appointments_card(
    st: &AppState,
    dash: &Dash,
    id: &ContactId,
) -> Result<Markup, DashError> {
    const DAY: i64 = 86_400_000;
    let now = st.clock.now().millis();
    let range = (
        switchboard_domain::Timestamp::from_millis(now - 90 * DAY),
        switchboard_domain::Timestamp::from_millis(now + 366 * DAY),
    );
    let entries = st
        .store
        .calendar_entries(&dash.org, range, None, Some(id), true, 200)
        .await?;
    let tz = st.store.get_settings(&dash.org).await?.tz();
    let when = |t| {
        crate::appointments::local(&tz, t)
            .map(|l| l.strftime("%a %-d %b %Y %H:%M").to_string())
            .unwrap_or_default()
    };
    Ok(html! {
        section.card #contact-appointments {
            h2 { "Appointments" }
            @if entries.is_empty() { p.muted { "None booked." } }
            ul.plain {
                @for e in entries.iter().rev() {
                    @let a = &e.appointment;
                    li data-id=(a.id) class=[(a.ends_at.millis() < now).then_some("past")] {
                        a href={ "/appointments/" (a.id) } { (when(a.starts_at)) } " · " (a.title) " " (badge(&a.status))
                    }
                }
            }
            @if dash.can_manage() { p { a.button #book-for-contact href={ "/appointments/new?contact=" (id) } { "Book an appointment" } } }
        }
    })
}

/// The "Call this contact" form: the agent that talks and the call's variables.
async fn call_form(st: &AppState, dash: &Dash, id: &ContactId) -> Result<Markup, DashError> {
    let agents = super::calls::agent_names(st, dash).await?;
    let mut agents: Vec<_> = agents.into_iter().collect();
    agents.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(html! {
        form.card method="post" action={ "/contacts/" (id) "/call" } #call-form {
            (layout::csrf(dash))
            h2 { "Call this contact" }
            div.row {
                div.field {
                    label for="call_agent" { "Agent" }
                    select #call_agent name="agent_id" {
                        @for (aid, name) in &agents { option value=(aid) { (name) } }
                    }
                }
                div.field {
                    label for="call_variables" { "Variables" }
                    textarea #call_variables name="variables" rows="2" placeholder="name=Ada\nreason=your appointment tomorrow" {}
                    span.hint { "One name=value per line, for the agent's {{variables}}." }
                }
            }
            button.primary type="submit" #call-contact { "Call now" }
        }
    })
}

/// `POST /contacts/{id}/call`: places an outbound call to the contact through the same checks
/// as `POST /api/v1/calls`, then shows the call.
pub async fn call_contact(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let id = ContactId::parse(&id).ok_or(DashError::NotFound)?;
    let mut variables = serde_json::Map::new();
    for line in f.raw("variables").lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                variables.insert(
                    k.trim().to_owned(),
                    serde_json::Value::String(v.trim().to_owned()),
                );
            }
            _ => {
                return Ok(super::redirect_with_flash(
                    &format!("/contacts/{id}"),
                    &format!("Nothing was dialled: the variable line `{line}` is not name=value"),
                ));
            }
        }
    }
    let body = crate::api::outbound::PlaceCall {
        to: None,
        contact_id: Some(id.clone()),
        from_number: None,
        agent_id: switchboard_domain::ids::AgentId::parse(f.raw("agent_id").trim()),
        variables: Some(serde_json::Value::Object(variables)),
        send_at: None,
        metadata: Some(
            serde_json::json!({"placed_by": "dashboard", "user": dash.session.user.email}),
        ),
        voicemail: None,
        record: None,
    };
    match crate::api::outbound::place(&st, &dash.org, body, None).await {
        Ok((call, _)) => {
            Ok(Redirect::to(&format!("/calls/{}?flash=Call+placed", call.id)).into_response())
        }
        Err(e) => Ok(super::redirect_with_flash(
            &format!("/contacts/{id}"),
            &format!("Nothing was dialled: {}", e.message),
        )),
    }
}
