//! Analytics over a range of the organization's days, and CSV exports of its calls,
//! conversations and appointments (streamed).

use crate::error::{ApiError, ErrorBody};
use crate::exports::{self, DayRange, ExportKind};
use crate::extract::{ApiQuery, OrgAuth};
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use switchboard_domain::analytics::Figures;
use switchboard_domain::ids::AgentId;
use switchboard_domain::values::PhoneNumber;
use switchboard_store::AnalyticsQuery;

/// `?from=&to=` (days in the organization's time zone, `to` included; by default the last
/// 30 days), and for analytics `agent_id` and `number`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RangeQuery {
    /// First day, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last day (included), `YYYY-MM-DD`; at most 366 days after `from`.
    pub to: Option<String>,
    /// Only this agent (analytics).
    pub agent_id: Option<String>,
    /// Only this number of the organization, E.164 with `+` written `%2B` (analytics).
    pub number: Option<String>,
}

/// What a day, an agent, a number or the whole range adds up to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FiguresView {
    /// Calls started.
    pub calls: i64,
    /// Calls by disposition (`in-progress` for calls not over).
    pub by_disposition: BTreeMap<String, i64>,
    /// Minutes of calls.
    pub minutes: f64,
    /// Calls judged by their analysis (calls where nobody spoke are not).
    pub analysed: i64,
    /// Percent of judged calls that succeeded.
    pub success_rate: Option<f64>,
    /// Median per-turn latency, milliseconds.
    pub latency_p50_ms: Option<i64>,
    /// 95th percentile per-turn latency, milliseconds.
    pub latency_p95_ms: Option<i64>,
    /// Text messages received.
    pub messages_in: i64,
    /// Text messages sent.
    pub messages_out: i64,
}

impl From<&Figures> for FiguresView {
    fn from(f: &Figures) -> Self {
        FiguresView {
            calls: f.calls,
            by_disposition: f.by_disposition.clone(),
            minutes: (f.minutes() * 10.0).round() / 10.0,
            analysed: f.analysed,
            success_rate: f.success_rate().map(|r| (r * 10.0).round() / 10.0),
            latency_p50_ms: f.latency.percentile(0.5),
            latency_p95_ms: f.latency.percentile(0.95),
            messages_in: f.messages_in,
            messages_out: f.messages_out,
        }
    }
}

/// One day's figures.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DayView {
    /// The day, `YYYY-MM-DD`, in the organization's time zone.
    pub day: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: FiguresView,
}

/// A range's analytics.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AnalyticsView {
    /// First day.
    pub from: String,
    /// Last day (included).
    pub to: String,
    /// The organization's time zone the days are in.
    pub timezone: String,
    /// The whole range.
    pub total: FiguresView,
    /// Each day.
    pub days: Vec<DayView>,
    /// By agent id (`none`: calls without an agent).
    pub agents: BTreeMap<String, FiguresView>,
    /// By the organization's number.
    pub numbers: BTreeMap<String, FiguresView>,
}

fn range_of(
    st_tz: &jiff::tz::TimeZone,
    q: &RangeQuery,
    now: switchboard_domain::Timestamp,
) -> Result<DayRange, ApiError> {
    exports::parse_range(q.from.as_deref(), q.to.as_deref(), st_tz, now).map_err(|errors| {
        let (field, message) = errors
            .into_iter()
            .next()
            .unwrap_or(("from", "is invalid".into()));
        ApiError::invalid_query(field, message)
    })
}

/// Calls, minutes, success rate, per-turn latency and text messages per day over a range of
/// the organization's days, and per agent and per number.
#[utoipa::path(get, path = "/api/v1/analytics", tag = "analytics", params(RangeQuery),
    responses((status = 200, body = AnalyticsView), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_analytics(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> Result<Json<AnalyticsView>, ApiError> {
    let settings = st.store.get_settings(&auth.org).await?;
    let tz = settings.tz();
    let range = range_of(&tz, &q, st.clock.now())?;
    let agent = q
        .agent_id
        .as_deref()
        .map(|a| {
            AgentId::parse(a)
                .ok_or_else(|| ApiError::invalid_query("agent_id", "is not an agent id (agt_...)"))
        })
        .transpose()?;
    let number = q
        .number
        .as_deref()
        .map(|n| {
            PhoneNumber::parse(n)
                .map(|p| p.as_str().to_owned())
                .map_err(|_| {
                    ApiError::invalid_query("number", "must be E.164, like %2B15550001000")
                })
        })
        .transpose()?;
    let a = st
        .store
        .analytics(
            &auth.org,
            &AnalyticsQuery {
                bounds: range.bounds.clone(),
                agent,
                number,
            },
        )
        .await?;
    let mut day = range.first;
    let mut days = Vec::with_capacity(a.days.len());
    for f in &a.days {
        days.push(DayView {
            day: day.to_string(),
            figures: f.into(),
        });
        day = day.tomorrow().unwrap_or(day);
    }
    Ok(Json(AnalyticsView {
        from: range.first.to_string(),
        to: range.last.to_string(),
        timezone: settings.timezone.clone(),
        total: (&a.total()).into(),
        days,
        agents: a
            .agents
            .iter()
            .map(|(k, v)| (k.clone().unwrap_or_else(|| "none".into()), v.into()))
            .collect(),
        numbers: a
            .numbers
            .iter()
            .map(|(k, v)| (k.clone(), v.into()))
            .collect(),
    }))
}

async fn export(
    st: &AppState,
    auth: &OrgAuth,
    q: &RangeQuery,
    kind: ExportKind,
) -> Result<Response, ApiError> {
    let tz = st.store.get_settings(&auth.org).await?.tz();
    let range = range_of(&tz, q, st.clock.now())?;
    Ok(exports::csv(st, &auth.org, kind, &range, tz).await?)
}

/// The calls started in a range of days, as CSV (streamed; times in UTC and in the
/// organization's time zone).
#[utoipa::path(get, path = "/api/v1/exports/calls.csv", tag = "analytics", params(RangeQuery),
    responses((status = 200, description = "CSV, one row per call", content_type = "text/csv"), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn export_calls(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> Result<Response, ApiError> {
    export(&st, &auth, &q, ExportKind::Calls).await
}

/// The conversations started in a range of days, as CSV (streamed).
#[utoipa::path(get, path = "/api/v1/exports/conversations.csv", tag = "analytics", params(RangeQuery),
    responses((status = 200, description = "CSV, one row per conversation", content_type = "text/csv"), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn export_conversations(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> Result<Response, ApiError> {
    export(&st, &auth, &q, ExportKind::Conversations).await
}

/// The appointments starting in a range of days, canceled ones included, as CSV (streamed).
#[utoipa::path(get, path = "/api/v1/exports/appointments.csv", tag = "analytics", params(RangeQuery),
    responses((status = 200, description = "CSV, one row per appointment", content_type = "text/csv"), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn export_appointments(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<RangeQuery>,
) -> Result<Response, ApiError> {
    export(&st, &auth, &q, ExportKind::Appointments).await
}
