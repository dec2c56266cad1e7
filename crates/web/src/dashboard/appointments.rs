//! `/appointments`: the organization's calendar by day, by week or as a list, in the
//! organization's time zone, with the free times of an agent on the day view, and the secret
//! calendar-feed link (admins). Booking, moving and canceling live in `appointment_form`.

use super::layout::{self, badge};
use super::{Dash, DashError, Fields};
use crate::appointments::{day_start, local, today};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use jiff::civil::{Date, Weekday};
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::HashMap;
use switchboard_domain::agent::Agent;
use switchboard_domain::ids::AgentId;
use switchboard_domain::schedule::parse_date;
use switchboard_domain::Timestamp;
use switchboard_store::CalendarEntry;

/// The most appointments one view draws.
const VIEW_LIMIT: i64 = 1000;
/// Days the list view covers.
const LIST_DAYS: i64 = 30;

/// `?view=day|week|list&date=YYYY-MM-DD&agent=agt_...&status=booked|canceled|all`.
#[derive(Debug, Default, Deserialize)]
pub struct CalendarQuery {
    #[serde(default)]
    view: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    status: String,
    flash: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum View {
    Day,
    Week,
    List,
}

impl View {
    fn parse(s: &str) -> View {
        match s {
            "day" => View::Day,
            "list" => View::List,
            _ => View::Week,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            View::Day => "day",
            View::Week => "week",
            View::List => "list",
        }
    }
    fn days(self) -> i64 {
        match self {
            View::Day => 1,
            View::Week => 7,
            View::List => LIST_DAYS,
        }
    }
}

/// Every agent of the organization, by name.
pub(super) async fn agents(st: &AppState, dash: &Dash) -> Result<Vec<Agent>, DashError> {
    let mut out = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let page = st
            .store
            .list_agents(&dash.org, Some(200), cursor.as_ref())
            .await?;
        out.extend(page.data);
        match page
            .next_cursor
            .as_deref()
            .and_then(switchboard_domain::entities::Cursor::decode)
        {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn add_days(d: Date, n: i64) -> Date {
    d.checked_add(jiff::Span::new().days(n)).unwrap_or(d)
}

fn hhmm(tz: &jiff::tz::TimeZone, t: Timestamp) -> String {
    local(tz, t)
        .map(|l| l.strftime("%H:%M").to_string())
        .unwrap_or_default()
}

/// `Mon 7 Dec`.
fn day_label(d: Date) -> String {
    d.strftime("%a %-d %b").to_string()
}

/// A link to the calendar with `view`, `date` and the current agent filter.
fn link(view: View, date: Date, agent: &str, status: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("view", view.as_str());
    q.append_pair("date", &date.to_string());
    if !agent.is_empty() {
        q.append_pair("agent", agent);
    }
    if !status.is_empty() {
        q.append_pair("status", status);
    }
    format!("/appointments?{}", q.finish())
}

fn who(e: &CalendarEntry) -> String {
    match (&e.contact_name, &e.contact_number) {
        (Some(n), _) => n.clone(),
        (None, Some(num)) => num.clone(),
        (None, None) => String::new(),
    }
}

fn chip(tz: &jiff::tz::TimeZone, e: &CalendarEntry, agents: &HashMap<AgentId, String>) -> Markup {
    let a = &e.appointment;
    let agent = a.agent_id.as_ref().and_then(|id| agents.get(id));
    html! {
        a.appt href={ "/appointments/" (a.id) } data-id=(a.id) class=[(a.status != "booked").then_some("canceled")] {
            span.when { (hhmm(tz, a.starts_at)) "–" (hhmm(tz, a.ends_at)) }
            span.what { (a.title) }
            @let w = who(e);
            @if !w.is_empty() { span.who { (w) } }
            @if let Some(n) = agent { span.agent.muted { (n) } }
        }
    }
}

/// Free slot starts of `agent` on `date` (its own hours and closures), minus booked ones.
fn free_slots(
    agent: &Agent,
    date: Date,
    now: Timestamp,
    booked: &[CalendarEntry],
) -> Vec<(Timestamp, String)> {
    let h = &agent.business_hours;
    h.slots_on(date, now)
        .into_iter()
        .filter(|(s, e)| {
            !booked.iter().any(|b| {
                b.appointment.status == "booked"
                    && b.appointment.starts_at < *e
                    && b.appointment.ends_at > *s
            })
        })
        .map(|(s, _)| {
            let local = h.local_string(s);
            (s, local.get(..16).unwrap_or(&local).to_owned())
        })
        .collect()
}

/// The page, with `secret` (a freshly made feed URL) shown once when given.
async fn page(
    st: &AppState,
    dash: &Dash,
    q: &CalendarQuery,
    secret: Option<&str>,
) -> Result<Markup, DashError> {
    let settings = st.store.get_settings(&dash.org).await?;
    let tz = settings.tz();
    let now = st.clock.now();
    let view = View::parse(&q.view);
    let today = today(&tz, now);
    let date = parse_date(&q.date).unwrap_or(today);
    let first = match view {
        View::Week => {
            let back = i64::from(date.weekday().to_monday_zero_offset());
            add_days(date, -back)
        }
        _ => date,
    };
    let last = add_days(first, view.days());
    let all_agents = agents(st, dash).await?;
    let names: HashMap<AgentId, String> = all_agents
        .iter()
        .map(|a| (a.id.clone(), a.name.clone()))
        .collect();
    let agent = AgentId::parse(&q.agent);
    let status = match q.status.as_str() {
        "canceled" | "all" => q.status.as_str(),
        _ => "booked",
    };
    let (Some(from), Some(to)) = (day_start(first, &tz), day_start(last, &tz)) else {
        return Err(DashError::BadRequest("that date cannot be shown".into()));
    };
    let mut entries = st
        .store
        .calendar_entries(
            &dash.org,
            (from, to),
            agent.as_ref(),
            None,
            status != "booked",
            VIEW_LIMIT,
        )
        .await?;
    if status == "canceled" {
        entries.retain(|e| e.appointment.status == "canceled");
    }
    let by_day = |d: Date| -> Vec<&CalendarEntry> {
        entries
            .iter()
            .filter(|e| local(&tz, e.appointment.starts_at).map(|l| l.date()) == Some(d))
            .collect()
    };
    // The day view offers the free times of the chosen agent, or of the only agent.
    let slot_agent = match &agent {
        Some(id) => all_agents.iter().find(|a| &a.id == id),
        None if all_agents.len() == 1 => all_agents.first(),
        None => None,
    };
    let feed = if dash.can_manage() {
        Some(st.store.calendar_feed(&dash.org).await?)
    } else {
        None
    };
    let step = view.days();
    let body = html! {
        (layout::flash(q.flash.as_deref()))
        @if let Some(url) = secret {
            div.card.secret #feed-secret {
                h2 { "Calendar subscription link" }
                p { "Add it to Google Calendar (Other calendars → From URL), Outlook (Add calendar → Subscribe from web) or Apple Calendar (New calendar subscription). Anyone with the link can read the calendar: it is shown only now; make a new one if it leaks (the old one then stops working)." }
                code.copy #feed-url { (url) }
            }
        }
        div.cal-bar {
            nav.tabs aria-label="View" {
                @for v in [View::Day, View::Week, View::List] {
                    a href=(link(v, date, &q.agent, &q.status)) class=[(v == view).then_some("active")] id={ "view-" (v.as_str()) } { (match v { View::Day => "Day", View::Week => "Week", View::List => "List" }) }
                }
            }
            div.actions {
                a.button #cal-prev href=(link(view, add_days(date, -step), &q.agent, &q.status)) { "← Previous" }
                a.button #cal-today href=(link(view, today, &q.agent, &q.status)) { "Today" }
                a.button #cal-next href=(link(view, add_days(date, step), &q.agent, &q.status)) { "Next →" }
            }
            form.filters method="get" action="/appointments" #cal-filter {
                input type="hidden" name="view" value=(view.as_str());
                input type="date" name="date" value=(date.to_string()) aria-label="Date";
                select name="agent" aria-label="Agent" {
                    option value="" { "Every agent" }
                    @for a in &all_agents { option value=(a.id) selected[Some(&a.id) == agent.as_ref()] { (a.name) } }
                }
                @if view == View::List {
                    select name="status" aria-label="Status" {
                        option value="booked" selected[status == "booked"] { "Booked" }
                        option value="canceled" selected[status == "canceled"] { "Canceled" }
                        option value="all" selected[status == "all"] { "All" }
                    }
                }
                button type="submit" { "Show" }
            }
            @if dash.can_manage() {
                a.button.primary #new-appointment href={ "/appointments/new" @if let Some(a) = &agent { "?agent=" (a) } } { "New appointment" }
            }
        }
        p.muted #cal-range {
            (match view { View::Day => day_label(first), _ => format!("{} – {}", day_label(first), day_label(add_days(last, -1))) })
            " · times in " (settings.timezone)
            @if settings.timezone == "UTC" { " (" a href="/settings" { "set the organization's time zone" } ")" }
        }
        div #live {
        @match view {
            View::Week => {
                div.week #calendar {
                    @for i in 0..7 {
                        @let d = add_days(first, i);
                        @let day = by_day(d);
                        section.day class=[(d == today).then_some("today")] data-date=(d.to_string()) {
                            h3 { a href=(link(View::Day, d, &q.agent, &q.status)) { (day_label(d)) } }
                            @for e in &day { (chip(&tz, e, &names)) }
                            @if day.is_empty() { p.muted.none { @if matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) { "—" } @else { "Nothing booked" } } }
                        }
                    }
                }
            }
            View::Day => {
                div.columns #calendar {
                    section.day.card data-date=(first.to_string()) {
                        h2 { "Booked" }
                        @let day = by_day(first);
                        @for e in &day { (chip(&tz, e, &names)) }
                        @if day.is_empty() { p.muted { "Nothing booked this day." } }
                    }
                    section.card #free-slots {
                        h2 { "Free times" }
                        @match slot_agent {
                            Some(a) => {
                                @let free = free_slots(a, first, now, &entries);
                                p.muted { (a.name) ", " (a.business_hours.describe()) }
                                @if let Some(c) = a.business_hours.closure_on(first) {
                                    p #closed-day { "Closed: " (c.describe()) }
                                } @else if free.is_empty() {
                                    p.muted { "No free time this day." }
                                }
                                div.slots {
                                    @for (_, local) in &free {
                                        @if dash.can_manage() {
                                            a.slot href={ "/appointments/new?agent=" (a.id) "&start=" (local) } { (local.get(11..).unwrap_or(local)) }
                                        } @else {
                                            span.slot { (local.get(11..).unwrap_or(local)) }
                                        }
                                    }
                                }
                            }
                            None => p.muted { "Choose an agent above to see its free times." }
                        }
                    }
                }
            }
            View::List => {
                div.table-wrap {
                    table.list #appointments {
                        thead { tr { th { "When" } th { "Title" } th { "Contact" } th { "Agent" } th { "Status" } } }
                        tbody {
                            @for e in &entries {
                                @let a = &e.appointment;
                                tr data-id=(a.id) {
                                    td { (local(&tz, a.starts_at).map(|l| l.strftime("%a %-d %b %H:%M").to_string()).unwrap_or_default()) }
                                    td { a href={ "/appointments/" (a.id) } { (a.title) } }
                                    td { (who(e)) }
                                    td { (a.agent_id.as_ref().and_then(|id| names.get(id)).map(String::as_str).unwrap_or("—")) }
                                    td { (badge(&a.status)) }
                                }
                            }
                            @if entries.is_empty() { tr { td colspan="5" .empty { "No appointments in these " (LIST_DAYS) " days." } } }
                        }
                    }
                }
            }
        }
        }
        @if let Some(feed) = feed {
            section.card #calendar-feed {
                h2 { "Subscribe from another calendar" }
                @match feed {
                    Some(at) => {
                        p { "A subscription link exists (made " (layout::time(at)) "). It is shown only when made: make a new one if you lost it; the old one then stops working." }
                        div.actions {
                            (layout::action_button(dash, "/appointments/feed", "Make a new link", Some("The current link will stop working. Continue?")))
                            (layout::action_button(dash, "/appointments/feed/revoke", "Revoke the link", Some("Subscribed calendars will stop updating. Continue?")))
                        }
                    }
                    None => {
                        p { "Staff can see these appointments in Google Calendar, Outlook or Apple Calendar through a secret link (iCalendar)." }
                        (layout::action_button(dash, "/appointments/feed", "Make a subscription link", None))
                    }
                }
            }
        }
    };
    layout::render(
        st,
        dash,
        "appointments",
        "Appointments",
        Some("appointment."),
        body,
    )
    .await
}

/// `GET /appointments`.
pub async fn calendar(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<CalendarQuery>,
) -> Result<Response, DashError> {
    Ok(page(&st, &dash, &q, None).await?.into_response())
}

/// The feed URL, absolute: from the public URL, else from the request's host.
fn absolute(st: &AppState, headers: &HeaderMap, token: &str) -> String {
    let url = crate::calendar::feed_url(st, token);
    if url.starts_with('/') {
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}{url}")
    } else {
        url
    }
}

/// `POST /appointments/feed` (admins): a new link, shown once on the page it answers with.
pub async fn make_feed(
    State(st): State<AppState>,
    dash: Dash,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    let token = st.store.create_calendar_feed(&dash.org).await?;
    tracing::info!(org_id = %dash.org, user = %dash.session.user.email, "calendar feed URL made");
    let url = absolute(&st, &headers, &token);
    let q = CalendarQuery {
        flash: Some("Subscription link made".into()),
        ..CalendarQuery::default()
    };
    let mut res = page(&st, &dash, &q, Some(&url)).await?.into_response();
    // The link is a credential: keep it out of caches.
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

/// `POST /appointments/feed/revoke` (admins).
pub async fn revoke_feed(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    st.store.revoke_calendar_feed(&dash.org).await?;
    tracing::info!(org_id = %dash.org, user = %dash.session.user.email, "calendar feed URL revoked");
    Ok(super::redirect_with_flash(
        "/appointments",
        "Subscription link revoked",
    ))
}
