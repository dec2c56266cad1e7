//! `/campaigns`: the list with progress, a new campaign from a CSV (the draft page is the
//! preview: the first rows as they will be called, the rows skipped and the unreadable ones,
//! each with the reason), and a campaign's page with a live progress bar, pause / resume /
//! cancel, and each recipient's attempts and outcome.

use super::calls::agent_names;
use super::layout::{self, badge, field, time, time_opt};
use super::{Dash, DashError, FieldErrors, Fields};
use crate::api::campaigns::create;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;
use switchboard_domain::campaign::{
    recipients_from_csv, CallingWindow, Campaign, CampaignRecipient, NewCampaign,
};
use switchboard_domain::entities::Cursor;
use switchboard_domain::ids::{AgentId, CampaignId};
use switchboard_domain::schedule::DAY_NAMES;
use switchboard_domain::values::{NumberChannel, PhoneNumber};
use switchboard_store::CampaignAction;

/// `?flash=`, `?cursor=`.
#[derive(Debug, Default, Deserialize)]
pub struct CampaignsQuery {
    cursor: Option<String>,
    flash: Option<String>,
}

/// Recipients done or not to be called, out of all: what the progress bar shows.
fn progress(c: &Campaign) -> (i64, i64) {
    let n = &c.counts;
    (n.done + n.skipped + n.invalid + n.canceled, n.total.max(1))
}

fn progress_bar(c: &Campaign) -> Markup {
    let (done, total) = progress(c);
    html! {
        progress.campaign-progress value=(done) max=(total) data-campaign=(c.id) aria-label="Progress" {}
        " " span.muted.progress-text { (done) " / " (total) }
    }
}

/// `GET /campaigns`.
pub async fn list(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<CampaignsQuery>,
) -> Result<Response, DashError> {
    let cursor = q.cursor.as_deref().and_then(Cursor::decode);
    let page = st
        .store
        .list_campaigns(&dash.org, Some(50), cursor.as_ref())
        .await?;
    let body = html! {
        (layout::flash(q.flash.as_deref()))
        @if dash.can_manage() { p { a.button.primary href="/campaigns/new" #new-campaign { "New campaign" } } }
        div #live {
            div.table-wrap {
                table.list #campaigns {
                    thead { tr { th { "Name" } th { "Status" } th { "Progress" } th { "Outcomes" } th { "Created" } } }
                    tbody {
                        @for c in &page.data {
                            tr {
                                td { a href={ "/campaigns/" (c.id) } { (c.name) } }
                                td { (badge(&c.status)) }
                                td { (progress_bar(c)) }
                                td { (outcomes(c)) }
                                td { (time(c.created_at)) }
                            }
                        }
                        @if page.data.is_empty() { tr { td colspan="5" .empty { "No campaigns yet." } } }
                    }
                }
            }
            (layout::pager("/campaigns", &[], page.next_cursor.as_deref()))
        }
    };
    Ok(layout::render(
        &st,
        &dash,
        "campaigns",
        "Campaigns",
        Some("campaign.,call."),
        body,
    )
    .await?
    .into_response())
}

fn outcomes(c: &Campaign) -> Markup {
    html! {
        @for (k, v) in &c.counts.outcomes { span.outcome { (k.replace('_', " ")) ": " (v) } " " }
        @if c.counts.outcomes.is_empty() { span.muted { "—" } }
    }
}

/// The new-campaign form's values.
struct Draft {
    name: String,
    agent_id: String,
    from_number: String,
    timezone: String,
    days: Vec<String>,
    start: String,
    end: String,
    max_concurrent: String,
    max_attempts: String,
    retry_minutes: String,
    csv: String,
}

impl Draft {
    fn empty() -> Draft {
        let w = CallingWindow::default();
        Draft {
            name: String::new(),
            agent_id: String::new(),
            from_number: String::new(),
            timezone: "UTC".into(),
            days: w.days,
            start: w.start,
            end: w.end,
            max_concurrent: "5".into(),
            max_attempts: "1".into(),
            retry_minutes: "60".into(),
            csv: String::new(),
        }
    }

    fn from_form(f: &Fields) -> Draft {
        Draft {
            name: f.raw("name").to_owned(),
            agent_id: f.raw("agent_id").trim().to_owned(),
            from_number: f.raw("from_number").trim().to_owned(),
            timezone: f.raw("timezone").trim().to_owned(),
            days: f.all("days"),
            start: f.raw("start").trim().to_owned(),
            end: f.raw("end").trim().to_owned(),
            max_concurrent: f.raw("max_concurrent_calls").trim().to_owned(),
            max_attempts: f.raw("max_attempts").trim().to_owned(),
            retry_minutes: f.raw("retry_minutes").trim().to_owned(),
            csv: f.raw("csv").to_owned(),
        }
    }

    /// The API's body for these values; problems are recorded beside their field.
    fn parse(&self, errors: &mut FieldErrors) -> Option<NewCampaign> {
        let mut int = |k: &str, v: &str| match v.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.add(k, "must be a whole number");
                None
            }
        };
        let max_concurrent = int("max_concurrent_calls", &self.max_concurrent);
        let max_attempts = int("max_attempts", &self.max_attempts);
        let retry = int("retry_minutes", &self.retry_minutes);
        let from = match PhoneNumber::parse(&self.from_number) {
            Ok(n) => Some(n),
            Err(_) => {
                errors.add("from_number", "choose a number to call from");
                None
            }
        };
        let agent = AgentId::parse(&self.agent_id);
        if agent.is_none() {
            errors.add("agent_id", "choose an agent");
        }
        if self.csv.trim().is_empty() {
            errors.add(
                "csv",
                "choose a CSV file (or paste its text) with a `number` column",
            );
        }
        if !errors.is_empty() {
            return None;
        }
        Some(NewCampaign {
            name: self.name.trim().to_owned(),
            agent_id: agent,
            from_number: from,
            from_numbers: None,
            window: Some(CallingWindow {
                days: self.days.clone(),
                start: self.start.clone(),
                end: self.end.clone(),
            }),
            timezone: Some(self.timezone.clone()),
            max_concurrent_calls: max_concurrent,
            max_attempts,
            retry_delay_seconds: retry.map(|m| m * 60),
            start_at: None,
            voicemail: None,
            record: None,
            metadata: None,
            recipients: None,
        })
    }
}

async fn form_page(
    st: &AppState,
    dash: &Dash,
    d: &Draft,
    errors: &FieldErrors,
) -> Result<Markup, DashError> {
    let agents = agent_names(st, dash).await?;
    let mut agents: Vec<_> = agents.into_iter().collect();
    agents.sort_by(|a, b| a.1.cmp(&b.1));
    let numbers = st
        .store
        .active_numbers(&dash.org, NumberChannel::Voice)
        .await?;
    let body = html! {
        form.card method="post" action="/campaigns/new" #campaign-form novalidate {
            (layout::csrf(dash))
            @if !errors.is_empty() { p.error-banner role="alert" { "Nothing was created. Correct the fields marked below." } }
            (field("Name", "name", errors, None, html! { input #name name="name" value=(d.name) maxlength="200"; }))
            div.row {
                (field("Agent", "agent_id", errors, None, html! {
                    select #agent_id name="agent_id" {
                        @for (id, name) in &agents { option value=(id) selected[id.as_str() == d.agent_id] { (name) } }
                    }
                }))
                (field("Call from", "from_number", errors, None, html! {
                    select #from_number name="from_number" {
                        @for n in &numbers { option value=(n.number) selected[n.number.as_str() == d.from_number] { (n.number) } }
                    }
                }))
            }
            (field("Calling window", "window", errors, Some("In each recipient's local time: their `timezone` column, else the zone their number implies, else the default below."), html! {
                div.row {
                    @for day in DAY_NAMES { label.check { input type="checkbox" name="days" value=(day) checked[d.days.iter().any(|x| x == day)]; " " (day) } }
                }
                div.row {
                    input #start name="start" value=(d.start) aria-label="From" placeholder="09:00";
                    input #end name="end" value=(d.end) aria-label="Until" placeholder="18:00";
                }
            }))
            @for k in ["window.days", "window.start", "window.end"] {
                @if let Some(m) = errors.get(k) { p.field-error { (m) } }
            }
            div.row {
                (field("Default time zone", "timezone", errors, Some("IANA, e.g. America/New_York"), html! { input #timezone name="timezone" value=(d.timezone); }))
                (field("Calls at once", "max_concurrent_calls", errors, Some("1 to 100"), html! { input #max_concurrent_calls name="max_concurrent_calls" inputmode="numeric" value=(d.max_concurrent); }))
                (field("Calls per person", "max_attempts", errors, Some("1 to 10; no answer, busy and voicemail are called again"), html! { input #max_attempts name="max_attempts" inputmode="numeric" value=(d.max_attempts); }))
                (field("Retry after (minutes)", "retry_minutes", errors, None, html! { input #retry_minutes name="retry_minutes" inputmode="numeric" value=(d.retry_minutes); }))
            }
            (field("Recipients (CSV)", "csv", errors, Some("A header row with `number`, optional `timezone`; other columns become the call's {{variables}}."), html! {
                input #csv-file type="file" accept=".csv,text/csv" data-fills="csv";
                textarea #csv name="csv" rows="6" spellcheck="false" placeholder="number,first_name\n+15555550123,Ada" { (d.csv) }
            }))
            p { button.primary type="submit" #preview-campaign { "Preview" } }
        }
    };
    layout::render(st, dash, "campaigns", "New campaign", None, body).await
}

/// `GET /campaigns/new`.
pub async fn new_form(State(st): State<AppState>, dash: Dash) -> Result<Response, DashError> {
    dash.require_manage()?;
    Ok(
        form_page(&st, &dash, &Draft::empty(), &FieldErrors::default())
            .await?
            .into_response(),
    )
}

/// `POST /campaigns/new`: creates the draft with its recipients, then shows it (the preview).
pub async fn create_draft(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let draft = Draft::from_form(&f);
    let mut errors = FieldErrors::default();
    if let Some(new) = draft.parse(&mut errors) {
        match recipients_from_csv(&draft.csv) {
            Err(e) => errors.add("csv", e.message),
            Ok(rows) => match create(&st, &dash.org, new, Some(rows)).await {
                Ok((c, _)) => {
                    return Ok(Redirect::to(&format!("/campaigns/{}", c.id)).into_response())
                }
                Err(e) => {
                    let field = match e.field.as_deref() {
                        Some("recipients") => "csv".to_owned(),
                        Some(f) => f.to_owned(),
                        None => "name".to_owned(),
                    };
                    errors.add(&field, e.message)
                }
            },
        }
    }
    let page = form_page(&st, &dash, &draft, &errors).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

fn recipients_table(rows: &[CampaignRecipient], id: &str) -> Markup {
    html! {
        div.table-wrap {
            table.list id=(id) {
                thead { tr { th { "Row" } th { "Number" } th { "Zone" } th { "Status" } th { "Attempts" } th { "Outcome or reason" } th { "Variables" } } }
                tbody {
                    @for r in rows {
                        tr {
                            td { (r.row) }
                            td { (r.number) }
                            td { (r.timezone.as_deref().unwrap_or("—")) }
                            td { (badge(&r.status)) }
                            td { (r.attempts) }
                            td {
                                @match (&r.outcome, &r.call_id, &r.reason) {
                                    (Some(o), Some(c), _) => a href={ "/calls/" (c) } { (o.replace('_', " ")) },
                                    (None, Some(c), _) => a href={ "/calls/" (c) } { "call" },
                                    (_, None, Some(why)) => span.reason { (why) },
                                    _ => span.muted { "—" },
                                }
                            }
                            td { code { (r.variables) } }
                        }
                    }
                    @if rows.is_empty() { tr { td colspan="7" .empty { "None." } } }
                }
            }
        }
    }
}

/// `GET /campaigns/{id}`: the preview of a draft, else the live progress.
pub async fn show(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    Query(q): Query<CampaignsQuery>,
) -> Result<Response, DashError> {
    let id = CampaignId::parse(&id)
        .ok_or(DashError::NotFound)?
        .to_string();
    let c = st.store.get_campaign(&dash.org, &id).await?;
    let agents = agent_names(&st, &dash).await?;
    let rows = |status: Option<&'static str>, n: u32| {
        let st = st.clone();
        let org = dash.org.clone();
        let id = id.clone();
        async move { st.store.list_recipients(&org, &id, status, None, n).await }
    };
    let summary = html! {
        dl.kv.grid {
            dt { "Status" } dd #campaign-status { (badge(&c.status)) }
            dt { "Agent" } dd { (agents.get(&c.agent_id).map(String::as_str).unwrap_or("—")) }
            dt { "Calls from" } dd { (c.from_numbers.join(", ")) }
            dt { "Window" } dd { (c.window.days.join(" ")) " · " (c.window.start) "–" (c.window.end) " local (default " (c.timezone) ")" }
            dt { "At once" } dd { (c.max_concurrent_calls) }
            dt { "Calls per person" } dd { (c.max_attempts) @if c.max_attempts > 1 { ", retried after " (c.retry_delay_seconds / 60) " min" } }
            dt { "Started" } dd { (time_opt(c.started_at)) }
            dt { "Finished" } dd { (time_opt(c.completed_at)) }
        }
    };
    let body = if c.status == "draft" {
        let first = rows(Some("pending"), 10).await?;
        let skipped = rows(Some("skipped"), 200).await?;
        let invalid = rows(Some("invalid"), 200).await?;
        html! {
            (layout::flash(q.flash.as_deref()))
            section.card { (summary) }
            section.card #preview {
                h2 { "Preview" }
                p #preview-counts { strong { (c.counts.pending) } " will be called · " (c.counts.skipped) " skipped · " (c.counts.invalid) " unreadable" }
                h3 { "First rows" }
                (recipients_table(&first, "preview-rows"))
                @if !skipped.is_empty() { h3 { "Skipped" } (recipients_table(&skipped, "skipped-rows")) }
                @if !invalid.is_empty() { h3 { "Unreadable rows" } (recipients_table(&invalid, "invalid-rows")) }
                @if dash.can_manage() {
                    form.inline method="post" action={ "/campaigns/" (c.id) "/start" } #start-form {
                        (layout::csrf(&dash))
                        @if c.counts.invalid > 0 {
                            label.check { input #skip_invalid_rows type="checkbox" name="skip_invalid_rows"; " Skip the " (c.counts.invalid) " unreadable rows" }
                        }
                        button.primary type="submit" #start-campaign { "Start calling" }
                    }
                    " " (layout::action_button(&dash, &format!("/campaigns/{}/cancel", c.id), "Discard", Some("Discard this draft?")))
                }
            }
        }
    } else {
        let list = rows(None, 200).await?;
        html! {
            (layout::flash(q.flash.as_deref()))
            div #live {
                section.card {
                    p { (progress_bar(&c)) }
                    p #campaign-counts {
                        "Pending " (c.counts.pending) " · calling " (c.counts.calling) " · done " (c.counts.done)
                        " · skipped " (c.counts.skipped) " · unreadable " (c.counts.invalid) " · canceled " (c.counts.canceled)
                    }
                    p #campaign-outcomes { (outcomes(&c)) }
                    @if dash.can_manage() {
                        @match c.status.as_str() {
                            "running" => { (layout::action_button(&dash, &format!("/campaigns/{}/pause", c.id), "Pause", None)) " " }
                            "paused" => { (layout::action_button(&dash, &format!("/campaigns/{}/resume", c.id), "Resume", None)) " " }
                            _ => {}
                        }
                        @if matches!(c.status.as_str(), "running" | "paused") {
                            (layout::action_button(&dash, &format!("/campaigns/{}/cancel", c.id), "Cancel campaign", Some("Cancel the campaign? Nobody else will be called.")))
                        }
                    }
                    (summary)
                }
                h2 { "Recipients" }
                (recipients_table(&list, "recipients"))
                @if c.counts.total > 200 { p.muted { "The first 200 rows; all of them through the API (GET /api/v1/campaigns/" (c.id) "/recipients)." } }
            }
        }
    };
    Ok(layout::render(
        &st,
        &dash,
        "campaigns",
        &c.name,
        Some("campaign.,call."),
        body,
    )
    .await?
    .into_response())
}

/// `POST /campaigns/{id}/{start|pause|resume|cancel}`.
pub async fn act(
    State(st): State<AppState>,
    dash: Dash,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let id = CampaignId::parse(&id)
        .ok_or(DashError::NotFound)?
        .to_string();
    let action = match action.as_str() {
        "start" => CampaignAction::Start {
            skip_invalid_rows: f.checked("skip_invalid_rows"),
        },
        "pause" => CampaignAction::Pause,
        "resume" => CampaignAction::Resume,
        "cancel" => CampaignAction::Cancel,
        _ => return Err(DashError::NotFound),
    };
    let flash = match crate::api::campaigns::change(&st, &dash.org, &id, action).await {
        Ok(c) => format!("Campaign {}", c.status),
        Err(e) if e.status == StatusCode::NOT_FOUND => return Err(DashError::NotFound),
        Err(e) if e.code == "invalid_rows" => {
            "Not started: some rows are unreadable. Tick \"Skip the unreadable rows\" to call the others.".to_owned()
        }
        Err(e) => e.message,
    };
    Ok(super::redirect_with_flash(
        &format!("/campaigns/{id}"),
        &flash,
    ))
}
