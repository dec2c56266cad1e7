//! `/analytics`: charts over a chosen range of the organization's days (calls by disposition,
//! minutes, success rate, per-turn latency, text messages), tables per agent and per number,
//! and CSV downloads of the range.

use super::calls::agent_names;
use super::charts::{bars, disposition_color, lines, Series};
use super::layout;
use super::{Dash, DashError, FieldErrors};
use crate::exports::{self, DayRange, ExportKind};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use switchboard_domain::analytics::{Analytics, Figures};
use switchboard_domain::ids::AgentId;
use switchboard_domain::values::PhoneNumber;
use switchboard_store::AnalyticsQuery;

/// `?from=&to=&agent=&number=`.
#[derive(Debug, Default, Deserialize)]
pub struct AnalyticsParams {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    number: String,
}

fn pct(f: &Figures) -> String {
    f.success_rate()
        .map(|r| format!("{r:.0}%"))
        .unwrap_or_else(|| "—".into())
}

fn ms(v: Option<i64>) -> String {
    v.map(|v| format!("{v} ms")).unwrap_or_else(|| "—".into())
}

fn charts(a: &Analytics, labels: &[String]) -> Markup {
    let dispositions: BTreeSet<&String> = a
        .days
        .iter()
        .flat_map(|d| d.by_disposition.keys())
        .collect();
    let by_disposition: Vec<Series> = dispositions
        .iter()
        .enumerate()
        .map(|(i, name)| Series {
            name: (*name).clone(),
            color: disposition_color(name, i),
            values: a
                .days
                .iter()
                .map(|d| Some(d.by_disposition.get(*name).copied().unwrap_or(0) as f64))
                .collect(),
        })
        .collect();
    let one = |name: &str, color: &'static str, f: &dyn Fn(&Figures) -> Option<f64>| Series {
        name: name.into(),
        color,
        values: a.days.iter().map(f).collect(),
    };
    html! {
        div.charts {
            (bars("chart-calls", "Calls per day, by disposition", labels, &by_disposition, true, ""))
            (bars("chart-minutes", "Minutes of calls per day", labels,
                &[one("minutes", "#1565c0", &|d| Some((d.minutes() * 10.0).round() / 10.0))], false, ""))
            (lines("chart-success", "Success rate per day (analysed calls)", labels,
                &[one("success rate", "#2e7d32", &|d| d.success_rate())], "%", Some(100.0)))
            (lines("chart-latency", "Per-turn latency per day", labels,
                &[one("p50", "#1565c0", &|d| d.latency.percentile(0.5).map(|v| v as f64)),
                  one("p95", "#c62828", &|d| d.latency.percentile(0.95).map(|v| v as f64))], " ms", None))
            (bars("chart-messages", "Text messages per day", labels,
                &[one("received", "#00838f", &|d| Some(d.messages_in as f64)),
                  one("sent", "#8d6e63", &|d| Some(d.messages_out as f64))], false, ""))
        }
    }
}

fn breakdown(id: &str, heading: &str, rows: Vec<(String, &Figures)>) -> Markup {
    html! {
        section.card id=(id) {
            h2 { (heading) }
            div.table-wrap {
                table.list {
                    thead { tr { th { "" } th { "Calls" } th { "Minutes" } th { "Success" } th { "p50 / p95" } th { "Messages" } } }
                    tbody {
                        @for (name, f) in &rows {
                            tr {
                                td { (name) } td { (f.calls) } td { (format!("{:.0}", f.minutes())) } td { (pct(f)) }
                                td { (ms(f.latency.percentile(0.5))) " / " (ms(f.latency.percentile(0.95))) }
                                td { (f.messages_in + f.messages_out) }
                            }
                        }
                        @if rows.is_empty() { tr { td colspan="6" .empty { "Nothing in this range." } } }
                    }
                }
            }
        }
    }
}

fn query_string(range: &DayRange) -> String {
    format!("from={}&to={}", range.first, range.last)
}

/// `GET /analytics`.
pub async fn page(
    State(st): State<AppState>,
    dash: Dash,
    Query(q): Query<AnalyticsParams>,
) -> Result<Response, DashError> {
    let settings = st.store.get_settings(&dash.org).await?;
    let tz = settings.tz();
    let names = agent_names(&st, &dash).await?;
    let mut errors = FieldErrors::default();
    let range = match exports::parse_range(Some(&q.from), Some(&q.to), &tz, st.clock.now()) {
        Ok(r) => Some(r),
        Err(list) => {
            for (f, m) in list {
                errors.add(f, m);
            }
            None
        }
    };
    let agent = match q.agent.trim() {
        "" => None,
        a => match AgentId::parse(a).filter(|a| names.contains_key(a)) {
            Some(a) => Some(a),
            None => {
                errors.add("agent", "is not one of this organization's agents");
                None
            }
        },
    };
    let number = match q.number.trim() {
        "" => None,
        n => match PhoneNumber::parse(n) {
            Ok(p) => Some(p.as_str().to_owned()),
            Err(_) => {
                errors.add(
                    "number",
                    "must be a number in E.164 form, like +15550001000",
                );
                None
            }
        },
    };
    let numbers = st
        .store
        .list_numbers(&dash.org, Some(200), None)
        .await?
        .data
        .into_iter()
        .map(|n| n.number.as_str().to_owned())
        .collect::<BTreeSet<_>>();
    let form = filter_form(&q, &names, &numbers, &errors, &settings.timezone);
    let Some(range) = range.filter(|_| errors.0.is_empty()) else {
        let page = layout::render(&st, &dash, "analytics", "Analytics", None, form).await?;
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    };
    let a = st
        .store
        .analytics(
            &dash.org,
            &AnalyticsQuery {
                bounds: range.bounds.clone(),
                agent,
                number,
            },
        )
        .await?;
    let total = a.total();
    let mut labels = Vec::with_capacity(a.days.len());
    let mut d = range.first;
    for _ in 0..a.days.len() {
        labels.push(d.to_string());
        d = d.tomorrow().unwrap_or(d);
    }
    let agent_rows = a
        .agents
        .iter()
        .map(|(k, f)| {
            let name = k
                .as_deref()
                .and_then(AgentId::parse)
                .and_then(|id| names.get(&id).cloned())
                .or_else(|| k.clone())
                .unwrap_or_else(|| "(no agent)".into());
            (name, f)
        })
        .collect();
    let number_rows = a.numbers.iter().map(|(k, f)| (k.clone(), f)).collect();
    let qs = query_string(&range);
    let body = html! {
        (form)
        p.muted #range { "From " strong { (range.first) } " to " strong { (range.last) } " (" (labels.len()) " days, " (settings.timezone) ")." }
        div.stats #totals {
            div.stat #total-calls { span.n { (total.calls) } span.l { "calls" } }
            div.stat #total-minutes { span.n { (format!("{:.0}", total.minutes())) } span.l { "minutes" } }
            div.stat #total-success { span.n { (pct(&total)) } span.l { "success rate (" (total.analysed) " analysed)" } }
            div.stat #total-latency { span.n { (ms(total.latency.percentile(0.5))) " / " (ms(total.latency.percentile(0.95))) } span.l { "per-turn latency p50 / p95" } }
            div.stat #total-messages { span.n { (total.messages_in + total.messages_out) } span.l { "text messages" } }
        }
        (charts(&a, &labels))
        (breakdown("by-agent", "By agent", agent_rows))
        (breakdown("by-number", "By number", number_rows))
        section.card #exports {
            h2 { "Download" }
            p.muted { "CSV of the whole range (filters above do not apply), times in UTC and in " (settings.timezone) "." }
            ul {
                li { a #export-calls href={ "/analytics/export/calls.csv?" (qs) } download { "Calls" } }
                li { a #export-conversations href={ "/analytics/export/conversations.csv?" (qs) } download { "Conversations" } }
                li { a #export-appointments href={ "/analytics/export/appointments.csv?" (qs) } download { "Appointments" } }
            }
        }
    };
    Ok(
        layout::render(&st, &dash, "analytics", "Analytics", None, body)
            .await?
            .into_response(),
    )
}

fn filter_form(
    q: &AnalyticsParams,
    names: &HashMap<AgentId, String>,
    numbers: &BTreeSet<String>,
    errors: &FieldErrors,
    timezone: &str,
) -> Markup {
    let mut agents: Vec<(&AgentId, &String)> = names.iter().collect();
    agents.sort_by(|a, b| a.1.cmp(b.1));
    html! {
        form.card.filters method="get" action="/analytics" #analytics-form novalidate {
            (layout::field("From", "from", errors, Some(timezone), html! { input #from type="date" name="from" value=(q.from); }))
            (layout::field("To", "to", errors, Some("Included; the last 30 days when empty."), html! { input #to type="date" name="to" value=(q.to); }))
            (layout::field("Agent", "agent", errors, None, html! {
                select #agent name="agent" {
                    option value="" { "All agents" }
                    @for (id, name) in &agents { option value=(id) selected[q.agent == id.as_str()] { (name) } }
                }
            }))
            (layout::field("Number", "number", errors, None, html! {
                select #number name="number" {
                    option value="" { "All numbers" }
                    @for n in numbers { option value=(n) selected[q.number.trim() == n] { (n) } }
                }
            }))
            button.primary type="submit" { "Show" }
        }
    }
}

/// `GET /analytics/export/{file}`: `calls.csv`, `conversations.csv` or `appointments.csv`
/// for `?from=&to=`.
pub async fn export(
    State(st): State<AppState>,
    dash: Dash,
    Path(file): Path<String>,
    Query(q): Query<AnalyticsParams>,
) -> Result<Response, DashError> {
    let kind = ExportKind::from_file(&file).ok_or(DashError::NotFound)?;
    let tz = st.store.get_settings(&dash.org).await?.tz();
    let range =
        exports::parse_range(Some(&q.from), Some(&q.to), &tz, st.clock.now()).map_err(|e| {
            DashError::BadRequest(
                e.into_iter()
                    .map(|(f, m)| format!("{f} {m}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
    Ok(exports::csv(&st, &dash.org, kind, &range, tz).await?)
}
