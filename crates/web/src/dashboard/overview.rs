//! `/`: today's figures from the stored calls and messages, and the calls live now.

use super::calls::p50_p95;
use super::layout::{self, badge, duration, time};
use super::{Dash, DashError};
use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;
use switchboard_domain::entities::CallFilter;
use switchboard_domain::Timestamp;

/// `GET /`.
pub async fn page(State(st): State<AppState>, dash: Dash) -> Result<Response, DashError> {
    let now = st.clock.now();
    // "Today" is the day in the organization's time zone; the page says which.
    let settings = st.store.get_settings(&dash.org).await?;
    let tz = settings.tz();
    let day_start = crate::appointments::day_start(crate::appointments::today(&tz, now), &tz)
        .unwrap_or_else(|| {
            Timestamp::from_millis(now.millis() - now.millis().rem_euclid(86_400_000))
        });
    let o = st.store.overview(&dash.org, day_start).await?;
    let setup = crate::setup::checklist(&st, &dash.org).await?;
    let alerts = super::alerts::card(&st, &dash).await?;
    let (p50, p95) = p50_p95(&o.turn_latencies_ms);
    let live = st
        .store
        .list_calls(
            &dash.org,
            // Every call not over, whatever its status: exactly what "active now" counts.
            &CallFilter {
                open: true,
                ..CallFilter::default()
            },
            Some(20),
            None,
        )
        .await?;
    let ms = |v: Option<i64>| v.map(|v| format!("{v} ms")).unwrap_or_else(|| "—".into());
    let body = html! {
        (alerts)
        (super::setup::checklist(&setup))
        div #live {
            p.muted #today { "Today (" (settings.timezone) ", since " (time(day_start)) ")" }
            div.stats {
                div.stat #stat-calls { span.n { (o.calls) } span.l { "calls today" } }
                div.stat #stat-active { span.n { (o.active_calls) } span.l { "active now" } }
                div.stat #stat-duration { span.n { (o.avg_duration_seconds.map(|d| duration(d.round() as i64)).unwrap_or_else(|| "—".into())) } span.l { "average duration" } }
                div.stat #stat-success {
                    span.n { @if o.analysed > 0 { (format!("{:.0}%", o.successes as f64 * 100.0 / o.analysed as f64)) } @else { "—" } }
                    span.l { "success rate (" (o.analysed) " analysed)" }
                }
                div.stat #stat-latency { span.n { (ms(p50)) " / " (ms(p95)) } span.l { "per-turn latency p50 / p95" } }
                div.stat #stat-messages { span.n { (o.messages) } span.l { "messages today" } }
            }
            h2 { "Live calls" }
            @if live.data.is_empty() { p.muted #no-live { "No call in progress." } }
            @else {
                table.list #live-calls {
                    thead { tr { th { "From" } th { "To" } th { "Status" } th { "Time" } } }
                    tbody {
                        @for c in &live.data {
                            tr { td { a href={ "/calls/" (c.id) } { (c.from_number) } } td { (c.to_number) } td { (badge(c.status.as_str())) }
                                td { span.timer data-since=(c.answered_at.unwrap_or(c.started_at).millis()) { (duration((now.millis() - c.started_at.millis()) / 1000)) } } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::render(
        &st,
        &dash,
        "overview",
        "Overview",
        Some("call.,message."),
        body,
    )
    .await?
    .into_response())
}
