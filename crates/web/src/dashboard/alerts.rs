//! The overview's alerts: what is failing repeatedly and needs a person: webhook endpoints
//! whose every attempt fails (or that the platform turned off), and call e-mails that could
//! not be sent in the last day.

use super::layout::time;
use super::{Dash, DashError};
use crate::AppState;
use maud::{html, Markup};
use switchboard_domain::Timestamp;

const DAY_MS: i64 = 86_400_000;

/// The alerts card (nothing when all is well).
pub(super) async fn card(st: &AppState, dash: &Dash) -> Result<Markup, DashError> {
    let endpoints = st
        .store
        .list_webhook_endpoints(&dash.org, Some(200), None)
        .await?
        .data;
    let now = st.clock.now();
    let (emails, last_error) = st
        .store
        .email_failures_since(&dash.org, Timestamp::from_millis(now.millis() - DAY_MS))
        .await?;
    let failing: Vec<_> = endpoints
        .iter()
        .filter(|e| e.failing_since.is_some() || (!e.enabled && e.disabled_reason.is_some()))
        .collect();
    if failing.is_empty() && emails == 0 {
        return Ok(html! {});
    }
    Ok(html! {
        section.card.alerts #alerts role="alert" {
            h2 { "Needs attention" }
            ul {
                @for e in &failing {
                    li data-endpoint=(e.id) {
                        @if let (false, Some(reason)) = (e.enabled, &e.disabled_reason) {
                            "Webhook endpoint " a href={ "/webhooks/" (e.id) } { (e.url) } " was turned off: " (reason) "."
                        } @else if let Some(since) = e.failing_since {
                            "Webhook endpoint " a href={ "/webhooks/" (e.id) } { (e.url) } " has failed every delivery since " (time(since)) "; events wait for it."
                        }
                    }
                }
                @if emails > 0 {
                    li #alert-emails {
                        (emails) " call e-mail(s) could not be sent in the last 24 hours"
                        @if let Some(err) = &last_error { " (last: " (err) ")" }
                        ". " a href="/settings" { "Check the recipients" } "; the operator checks the e-mail server with " code { "switchboard doctor" } "."
                    }
                }
            }
        }
    })
}
