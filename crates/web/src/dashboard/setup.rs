//! Guided setup on the dashboard: the overview's checklist, the Twilio card of the settings
//! page (the URLs to paste, "Check credentials"), and `/phone-numbers/import`: the Twilio
//! account's numbers, imported with their webhooks pointed here.

use super::appointments::agents;
use super::layout::{self, badge};
use super::{Dash, DashError, Fields};
use crate::setup::Setup;
use crate::twilio_setup::{self, ImportResult, SetupError};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use switchboard_domain::ids::AgentId;
use switchboard_domain::values::PhoneNumber;

/// The overview's checklist (nothing once every step is done).
pub(super) fn checklist(s: &Setup) -> Markup {
    if s.complete {
        return html! {};
    }
    let done = s.steps.iter().filter(|x| x.done).count();
    html! {
        section.card.setup #setup {
            h2 { "Get ready for real calls" span.muted { " · " (done) " of " (s.steps.len()) " done" } }
            ol.checklist {
                @for step in &s.steps {
                    li class=(if step.done { "done" } else { "todo" }) data-step=(step.key) {
                        span.mark aria-hidden="true" { @if step.done { "✓" } @else { "○" } }
                        div {
                            @if step.done { strong { (step.title) } } @else { a href=(step.href) { strong { (step.title) } } }
                            br;
                            small.muted { (step.detail) }
                        }
                    }
                }
            }
        }
    }
}

/// The Twilio card of the settings page: the URLs to paste, the credential check and the way
/// to the import.
pub(super) fn twilio_card(
    st: &AppState,
    dash: &Dash,
    check: Option<&twilio_setup::CredentialCheck>,
) -> Markup {
    let urls = twilio_setup::webhook_urls(st.twilio.public_url.as_deref());
    html! {
        section.card #twilio-setup {
            h2 { "Connect Twilio" }
            @if let Some(c) = check {
                p #credential-check class=(if c.ok { "flash" } else { "error-banner" }) role="status" {
                    (c.message)
                    @if let (Some(name), Some(kind)) = (&c.account_name, &c.account_type) { " (" (name) ", " (kind) ")" }
                }
            }
            @match &urls {
                Some(u) => {
                    p { "Import your numbers below and Switchboard sets these for you; to set them by hand in the Twilio console (Phone Numbers → your number), paste:" }
                    dl.kv #webhook-urls {
                        dt { "A call comes in (HTTP POST)" } dd { code.copy #url-voice { (u.voice) } }
                        dt { "Call status changes (HTTP POST)" } dd { code.copy #url-status { (u.voice_status) } }
                        dt { "A message comes in (HTTP POST)" } dd { code.copy #url-messaging { (u.messaging) } }
                    }
                }
                None => p.error-banner { "SWITCHBOARD_PUBLIC_URL is not set, so Twilio has no address to reach this server at. The operator sets it where the server runs (a tunnel works for trying it)." }
            }
            @if dash.can_manage() {
                div.actions {
                    (layout::action_button(dash, "/settings/twilio/check", "Check credentials", None))
                    a.button #import-numbers href="/phone-numbers/import" { "Import numbers from Twilio" }
                }
            }
        }
    }
}

fn result_rows(results: &[ImportResult]) -> Markup {
    html! {
        div.table-wrap {
            table.list #import-results {
                thead { tr { th { "Number" } th { "Registered" } th { "Proven" } th { "Webhooks" } th { "Problem" } } }
                tbody {
                    @for r in results {
                        tr data-number=(r.number) {
                            td { (r.number) }
                            td { (r.registered.iter().chain(&r.already_registered).cloned().collect::<Vec<_>>().join(", ")) }
                            td { (badge(if r.verified { "verified" } else { "pending" })) }
                            td { (badge(if r.webhooks_configured { "set" } else { "unchanged" })) }
                            td { (r.error.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

async fn import_page(
    st: &AppState,
    dash: &Dash,
    results: Option<&[ImportResult]>,
    problem: Option<&str>,
) -> Result<Markup, DashError> {
    let listed = twilio_setup::account_numbers(st, &dash.org).await;
    let agents = agents(st, dash).await?;
    let body = html! {
        @if let Some(r) = results { h2 { "Imported" } (result_rows(r)) }
        @if let Some(p) = problem { p.error-banner role="alert" { (p) } }
        @match &listed {
            Err(SetupError::Twilio(c)) => {
                p.error-banner #import-error role="alert" { (c.message) }
                p { a href="/settings" { "Check the Twilio credentials in Settings" } }
            }
            Err(SetupError::Store(e)) => p.error-banner { "The numbers could not be read: " (e) }
            Ok(list) if list.is_empty() => p.card { "This Twilio account has no phone numbers yet. Buy one in the Twilio console, then come back." }
            Ok(list) => {
                form.card method="post" action="/phone-numbers/import" #import-form {
                    (layout::csrf(dash))
                    p { "Tick the numbers the agent should answer. Each is registered here for what it can do (calls, texts), proven with Twilio, and, if you leave the box ticked, its webhooks are pointed at this server through the Twilio API." }
                    div.table-wrap {
                        table.list #account-numbers {
                            thead { tr { th {} th { "Number" } th { "Can" } th { "Calls go to" } th { "Registered here" } } }
                            tbody {
                                @for n in list {
                                    tr data-number=(n.number) {
                                        td { input type="checkbox" name="numbers" value=(n.number) checked[n.registered.is_empty()] aria-label={ "Import " (n.number) }; }
                                        td { (n.number) }
                                        td { (match (n.voice, n.sms) { (true, true) => "calls, texts", (true, false) => "calls", (false, true) => "texts", _ => "—" }) }
                                        td { @if n.points_here { (badge("this server")) } @else { small.muted { (n.voice_url.as_deref().unwrap_or("not set")) } } }
                                        td { (if n.registered.is_empty() { "—".to_owned() } else { n.registered.join(", ") }) }
                                    }
                                }
                            }
                        }
                    }
                    div.row {
                        div.field {
                            label for="agent_id" { "Agent that answers them" }
                            select #agent_id name="agent_id" {
                                @for a in &agents { option value=(a.id) { (a.name) } }
                                option value="" { "None for now" }
                            }
                        }
                    }
                    label.check { input #configure type="checkbox" name="configure_webhooks" checked; " Point their webhooks at this server (calls, call status, texts)" }
                    p { button.primary type="submit" #import { "Import" } }
                }
            }
        }
    };
    layout::render(
        st,
        dash,
        "numbers",
        "Import numbers from Twilio",
        None,
        body,
    )
    .await
}

/// `GET /phone-numbers/import` (admins).
pub async fn import_form(State(st): State<AppState>, dash: Dash) -> Result<Response, DashError> {
    dash.require_manage()?;
    Ok(import_page(&st, &dash, None, None).await?.into_response())
}

/// `POST /phone-numbers/import` (admins).
pub async fn import(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let numbers: Vec<PhoneNumber> = f
        .all("numbers")
        .iter()
        .filter_map(|n| PhoneNumber::parse(n).ok())
        .collect();
    if numbers.is_empty() {
        let page = import_page(
            &st,
            &dash,
            None,
            Some("Tick at least one number to import."),
        )
        .await?;
        return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let agent = f.get("agent_id").and_then(AgentId::parse);
    if let Some(a) = &agent {
        st.store.get_agent(&dash.org, a).await?;
    }
    match twilio_setup::import(
        &st,
        &dash.org,
        &numbers,
        agent.as_ref(),
        f.checked("configure_webhooks"),
    )
    .await
    {
        Ok(results) => Ok(import_page(&st, &dash, Some(&results), None)
            .await?
            .into_response()),
        Err(SetupError::Twilio(c)) => {
            let page = import_page(&st, &dash, None, Some(&c.message)).await?;
            Ok((axum::http::StatusCode::BAD_GATEWAY, page).into_response())
        }
        Err(SetupError::Store(e)) => Err(e.into()),
    }
}

/// `POST /settings/twilio/check` (admins): the settings page with Twilio's answer.
pub async fn check(
    State(st): State<AppState>,
    dash: Dash,
    body: Bytes,
) -> Result<Response, DashError> {
    Fields::managing(&dash, &body)?;
    let c = twilio_setup::check_credentials(&st, &dash.org).await?;
    Ok(super::settings::page_with_check(&st, &dash, &c)
        .await?
        .into_response())
}
