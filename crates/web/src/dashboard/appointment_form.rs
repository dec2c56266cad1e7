//! Booking, moving, editing and canceling an appointment on the dashboard, with the rules of
//! the agents' booking tools (business hours, closures, no double booking). Every invalid
//! field is shown at once; nothing is written unless all of them are right.

use super::appointments::agents;
use super::layout::{self, badge, field, time};
use super::{Dash, DashError, FieldErrors, Fields};
use crate::appointments::{
    self as booking, local, BookingError, ContactRef, StaffBooking, StaffChange,
};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use switchboard_domain::agent::Agent;
use switchboard_domain::entities::Appointment;
use switchboard_domain::ids::{AgentId, ContactId};
use switchboard_domain::schedule::parse_date;
use switchboard_domain::values::PhoneNumber;

/// `?agent=agt_...&start=YYYY-MM-DDTHH:MM&contact=con_...` to prefill the new form.
#[derive(Debug, Default, Deserialize)]
pub struct NewQuery {
    #[serde(default)]
    agent: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    contact: String,
}

/// What the form shows: stored values, a prefill, or what was typed.
#[derive(Default)]
struct Draft {
    agent: String,
    number: String,
    date: String,
    time: String,
    duration: String,
    title: String,
    notes: String,
}

impl Draft {
    fn typed(f: &Fields) -> Draft {
        Draft {
            agent: f.raw("agent_id").trim().to_owned(),
            number: f.raw("contact_number").trim().to_owned(),
            date: f.raw("date").trim().to_owned(),
            time: f.raw("time").trim().to_owned(),
            duration: f.raw("duration_minutes").trim().to_owned(),
            title: f.raw("title").to_owned(),
            notes: f.raw("notes").to_owned(),
        }
    }

    /// Date and time as the agent's local start, every problem beside its field.
    fn start(&self, errors: &mut FieldErrors) -> Option<String> {
        let date = parse_date(&self.date);
        if date.is_none() {
            errors.add("date", "choose a day (YYYY-MM-DD)");
        }
        let time = switchboard_domain::schedule::parse_hhmm(&self.time);
        if time.is_none() {
            errors.add("time", "choose a time like 10:30");
        }
        Some(format!("{}T{}", date?, self.time))
    }

    fn duration(&self, errors: &mut FieldErrors) -> Option<i64> {
        match self.duration.as_str() {
            "" => None,
            d => match d.parse::<i64>() {
                Ok(m) if (5..=480).contains(&m) => Some(m),
                _ => {
                    errors.add("duration_minutes", "a whole number of minutes, 5 to 480");
                    None
                }
            },
        }
    }
}

fn record(e: BookingError, errors: &mut FieldErrors) -> Result<(), DashError> {
    match e.field_message() {
        Some((f, m)) => {
            // The form has date and time where the API has `start`.
            let f = match f {
                "start" => "date",
                "agent_id" => "agent_id",
                "contact_id" => "contact_number",
                other => other,
            };
            errors.add(f, m);
            Ok(())
        }
        None => match e {
            BookingError::Canceled(m) => Err(DashError::BadRequest(m)),
            BookingError::Store(s) => Err(s.into()),
            _ => Err(DashError::Internal("unmapped booking error".into())),
        },
    }
}

/// The time-zone hint: the agents' zone when they share one.
fn zone_hint(agents: &[Agent]) -> String {
    let mut zones: Vec<&str> = agents
        .iter()
        .map(|a| a.business_hours.timezone.as_str())
        .collect();
    zones.sort_unstable();
    zones.dedup();
    match zones.as_slice() {
        [one] => format!("Local time of the agent's business hours ({one})."),
        _ => "Local time of the chosen agent's business hours.".to_owned(),
    }
}

fn new_form(dash: &Dash, agents: &[Agent], d: &Draft, errors: &FieldErrors) -> Markup {
    html! {
        form.card method="post" action="/appointments/new" #appointment-form novalidate {
            (layout::csrf(dash))
            @if !errors.is_empty() { p.error-banner role="alert" { "Nothing was booked. Correct the fields marked below." } }
            div.row {
                (field("Agent", "agent_id", errors, Some("Whose calendar: its business hours and closures apply."), html! {
                    select #agent_id name="agent_id" {
                        @for a in agents { option value=(a.id) selected[a.id.as_str() == d.agent] { (a.name) } }
                    }
                }))
                (field("Contact number", "contact_number", errors, Some("E.164; a new contact is created if needed. Empty: a block of time."), html! {
                    input #contact_number name="contact_number" value=(d.number) placeholder="+15555550123" inputmode="tel";
                }))
            }
            (when_fields(agents, d, errors))
            (text_fields(d, errors, Some("Empty: \"Appointment with\" the contact.")))
            button.primary type="submit" #book { "Book" }
        }
    }
}

fn when_fields(agents: &[Agent], d: &Draft, errors: &FieldErrors) -> Markup {
    html! {
        div.row {
            (field("Day", "date", errors, None, html! { input #date type="date" name="date" value=(d.date); }))
            (field("Time", "time", errors, Some(&zone_hint(agents)), html! { input #time type="time" name="time" value=(d.time) step="300"; }))
            (field("Length (minutes)", "duration_minutes", errors, Some("Empty: the agent's slot length."), html! {
                input #duration_minutes name="duration_minutes" inputmode="numeric" value=(d.duration);
            }))
        }
    }
}

fn text_fields(d: &Draft, errors: &FieldErrors, title_hint: Option<&str>) -> Markup {
    html! {
        (field("Title", "title", errors, title_hint, html! { input #title name="title" value=(d.title) maxlength="200"; }))
        (field("Notes", "notes", errors, None, html! { textarea #notes name="notes" rows="3" maxlength="2000" { (d.notes) } }))
    }
}

async fn new_page(
    st: &AppState,
    dash: &Dash,
    d: &Draft,
    errors: &FieldErrors,
) -> Result<Markup, DashError> {
    let agents = agents(st, dash).await?;
    let body = html! {
        @if agents.is_empty() {
            p.card { "Appointments belong to an agent's calendar. " a href="/agents/new" { "Create an agent" } " first." }
        } @else {
            (new_form(dash, &agents, d, errors))
        }
    };
    layout::render(st, dash, "appointments", "New appointment", None, body).await
}

/// `GET /appointments/new` (admins).
pub async fn new(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<NewQuery>,
) -> Result<Response, DashError> {
    dash.require_manage()?;
    let (date, time) = q.start.split_once('T').unwrap_or((&q.start, ""));
    let number = match ContactId::parse(&q.contact) {
        Some(id) => match st.store.get_contact(&dash.org, &id).await {
            Ok(c) => c.number.as_str().to_owned(),
            Err(_) => String::new(),
        },
        None => String::new(),
    };
    let d = Draft {
        agent: q.agent.clone(),
        number,
        date: date.to_owned(),
        time: time.get(..5).unwrap_or(time).to_owned(),
        ..Draft::default()
    };
    Ok(new_page(&st, &dash, &d, &FieldErrors::default())
        .await?
        .into_response())
}

/// `POST /appointments/new` (admins).
pub async fn create(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let d = Draft::typed(&f);
    let mut errors = FieldErrors::default();
    let agent = AgentId::parse(&d.agent);
    if agent.is_none() {
        errors.add("agent_id", "choose an agent");
    }
    let contact = match d.number.as_str() {
        "" => Some(ContactRef::None),
        n => PhoneNumber::parse(n)
            .map(ContactRef::Number)
            .map_err(|m| errors.add("contact_number", m))
            .ok(),
    };
    let start = d.start(&mut errors);
    let duration = d.duration(&mut errors);
    if d.title.chars().count() > 200 {
        errors.add("title", "at most 200 characters");
    }
    if let (Some(agent_id), Some(contact), Some(start), true) =
        (agent, contact, start, errors.is_empty())
    {
        let req = StaffBooking {
            agent_id,
            contact,
            start,
            duration_minutes: duration,
            title: Some(d.title.clone()).filter(|t| !t.trim().is_empty()),
            notes: Some(d.notes.clone()).filter(|t| !t.trim().is_empty()),
        };
        let by = format!("user:{}", dash.session.user.id);
        match booking::book(&st.store, &dash.org, req, st.clock.now(), by).await {
            Ok(a) => {
                return Ok(
                    Redirect::to(&format!("/appointments/{}?flash=Booked", a.id)).into_response(),
                )
            }
            Err(e) => record(e, &mut errors)?,
        }
    }
    let page = new_page(&st, &dash, &d, &errors).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// The appointment's own values for the form, in its agent's time zone.
fn stored(a: &Appointment, agent: Option<&Agent>) -> Draft {
    let tz = agent
        .map(|ag| {
            jiff::tz::TimeZone::get(&ag.business_hours.timezone).unwrap_or(jiff::tz::TimeZone::UTC)
        })
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let l = local(&tz, a.starts_at);
    Draft {
        agent: a
            .agent_id
            .as_ref()
            .map(|x| x.to_string())
            .unwrap_or_default(),
        number: String::new(),
        date: l.map(|l| l.date().to_string()).unwrap_or_default(),
        time: l
            .map(|l| l.strftime("%H:%M").to_string())
            .unwrap_or_default(),
        duration: ((a.ends_at.millis() - a.starts_at.millis()) / 60_000).to_string(),
        title: a.title.clone(),
        notes: a.notes.clone().unwrap_or_default(),
    }
}

async fn show_page(
    st: &AppState,
    dash: &Dash,
    id: &str,
    typed: Option<&Draft>,
    errors: &FieldErrors,
    flash: Option<&str>,
) -> Result<Markup, DashError> {
    let a = st.store.get_appointment(&dash.org, id).await?;
    let all = agents(st, dash).await?;
    let agent = a
        .agent_id
        .as_ref()
        .and_then(|id| all.iter().find(|x| &x.id == id));
    let contact = match &a.contact_id {
        Some(c) => st.store.get_contact(&dash.org, c).await.ok(),
        None => None,
    };
    let tz = st.store.get_settings(&dash.org).await?.tz();
    let fmt = |t| {
        local(&tz, t)
            .map(|l| l.strftime("%A %-d %B %Y, %H:%M").to_string())
            .unwrap_or_default()
    };
    let d = stored(&a, agent);
    let d = typed.unwrap_or(&d);
    let booked = a.status == "booked";
    let agents_for_hint: Vec<Agent> = agent.cloned().into_iter().collect();
    let body = html! {
        (layout::flash(flash))
        section.card #appointment {
            dl.kv {
                dt { "Status" } dd #status { (badge(&a.status)) }
                dt { "When" } dd #when { (fmt(a.starts_at)) " – " (local(&tz, a.ends_at).map(|l| l.strftime("%H:%M").to_string()).unwrap_or_default()) }
                dt { "Contact" } dd #contact {
                    @match &contact {
                        Some(c) => a href={ "/contacts/" (c.id) } {
                            @match &c.name { Some(n) => { (n) " (" (c.number) ")" }, None => (c.number) }
                        },
                        None => span.muted { "—" },
                    }
                }
                dt { "Agent" } dd #agent {
                    @match agent { Some(ag) => a href={ "/agents/" (ag.id) } { (ag.name) }, None => span.muted { "—" } }
                }
                @if let Some(n) = &a.notes { dt { "Notes" } dd { (n) } }
                dt { "Booked" } dd { (time(a.created_at)) }
                dt { "Last changed" } dd { (time(a.updated_at)) }
            }
        }
        @if booked && dash.can_manage() {
            form.card method="post" action={ "/appointments/" (a.id) } #move-form novalidate {
                (layout::csrf(dash))
                h2 { "Move or edit" }
                @if !errors.is_empty() { p.error-banner role="alert" { "Nothing was changed. Correct the fields marked below." } }
                (when_fields(&agents_for_hint, d, errors))
                (text_fields(d, errors, None))
                button.primary type="submit" #save-appointment { "Save changes" }
            }
            (layout::action_button(dash, &format!("/appointments/{}/cancel", a.id), "Cancel appointment", Some("Cancel this appointment?")))
        }
        p { a href={ "/appointments?view=day&date=" (local(&tz, a.starts_at).map(|l| l.date().to_string()).unwrap_or_default()) } { "← That day in the calendar" } }
    };
    layout::render(st, dash, "appointments", &a.title, None, body).await
}

/// `?flash=`.
#[derive(Debug, Default, Deserialize)]
pub struct FlashQuery {
    flash: Option<String>,
}

fn appointment_id(id: &str) -> Result<&str, DashError> {
    booking::is_appointment_id(id)
        .then_some(id)
        .ok_or(DashError::NotFound)
}

/// `GET /appointments/{id}`.
pub async fn show(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Query(q): Query<FlashQuery>,
) -> Result<Response, DashError> {
    let id = appointment_id(&id)?;
    Ok(show_page(
        &st,
        &dash,
        id,
        None,
        &FieldErrors::default(),
        q.flash.as_deref(),
    )
    .await?
    .into_response())
}

/// `POST /appointments/{id}` (admins): move and/or edit.
pub async fn update(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let id = appointment_id(&id)?;
    let current = st.store.get_appointment(&dash.org, id).await?;
    let agent = match &current.agent_id {
        Some(a) => st.store.get_agent(&dash.org, a).await.ok(),
        None => None,
    };
    let was = stored(&current, agent.as_ref());
    let d = Draft::typed(&f);
    let mut errors = FieldErrors::default();
    let start = d.start(&mut errors);
    let duration = d.duration(&mut errors);
    if d.title.trim().is_empty() {
        errors.add("title", "must not be empty");
    }
    if errors.is_empty() {
        // Only a changed day, time or length is a move (checked against the hours again).
        let moved = d.date != was.date || d.time != was.time;
        let req = StaffChange {
            start: start.filter(|_| moved),
            duration_minutes: duration.filter(|m| m.to_string() != was.duration),
            title: Some(d.title.clone()).filter(|t| *t != was.title),
            notes: (d.notes != was.notes)
                .then(|| Some(d.notes.clone()).filter(|n| !n.trim().is_empty())),
            contact_id: None,
        };
        let by = format!("user:{}", dash.session.user.id);
        match booking::change(&st.store, &dash.org, id, req, st.clock.now(), &by).await {
            Ok(_) => {
                return Ok(Redirect::to(&format!("/appointments/{id}?flash=Saved")).into_response())
            }
            Err(e) => record(e, &mut errors)?,
        }
    }
    let page = show_page(&st, &dash, id, Some(&d), &errors, None).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// `POST /appointments/{id}/cancel` (admins).
pub async fn cancel(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    let id = appointment_id(&id)?;
    let by = format!("user:{}", dash.session.user.id);
    match booking::cancel(&st.store, &dash.org, id, &by).await {
        Ok(_) => Ok(Redirect::to(&format!("/appointments/{id}?flash=Canceled")).into_response()),
        Err(BookingError::NotFound(_)) => Err(DashError::NotFound),
        Err(BookingError::Canceled(_)) => {
            Ok(Redirect::to(&format!("/appointments/{id}?flash=Already+canceled")).into_response())
        }
        Err(BookingError::Store(e)) => Err(e.into()),
        Err(_) => Err(DashError::Internal("unexpected cancel refusal".into())),
    }
}
