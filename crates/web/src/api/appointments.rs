//! Appointments: the organization's calendar, as agents book it and staff manage it, and the
//! secret calendar-feed URL for Google Calendar or Outlook.

use super::{paging, parse_agent};
use crate::appointments::{self as booking, ContactRef, StaffBooking, StaffChange};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, OrgAuth};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_domain::entities::{Appointment, AppointmentFilter, Page, APPOINTMENT_STATUSES};
use switchboard_domain::ids::{AgentId, ContactId};
use switchboard_domain::values::PhoneNumber;
use switchboard_domain::Timestamp;

/// Query parameters of `GET /api/v1/appointments`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AppointmentQuery {
    /// Appointments ending after this: a day `YYYY-MM-DD` (its start, in the organization's
    /// time zone) or an RFC 3339 time.
    pub from: Option<String>,
    /// Appointments starting before this: a day `YYYY-MM-DD` (that day included, in the
    /// organization's time zone) or an RFC 3339 time.
    pub to: Option<String>,
    /// One contact's (`con_...`).
    pub contact_id: Option<String>,
    /// One agent's (`agt_...`).
    pub agent_id: Option<String>,
    /// `booked` or `canceled`; absent lists both.
    pub status: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// The body of `POST /api/v1/appointments`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAppointmentRequest {
    /// The agent whose calendar it goes in: its business hours and closures apply.
    pub agent_id: AgentId,
    /// Who it is for: a contact of the organization ...
    #[serde(default)]
    pub contact_id: Option<ContactId>,
    /// ... or a number (E.164), whose contact is created when missing. Neither: a block of
    /// time for nobody in particular.
    #[serde(default)]
    pub contact_number: Option<String>,
    /// RFC 3339 (`2026-12-07T09:00:00Z`) or a local time in the agent's time zone
    /// (`2026-12-07T10:00`).
    pub start: String,
    /// Length, 5 to 480 minutes (default: the agent's slot length).
    #[serde(default)]
    pub duration_minutes: Option<i64>,
    /// Title, at most 200 characters (default "Appointment with <name or number>").
    #[serde(default)]
    pub title: Option<String>,
    /// Notes, at most 2,000 characters.
    #[serde(default)]
    pub notes: Option<String>,
}

/// The body of `PATCH /api/v1/appointments/{id}`: absent fields keep their value. A new
/// `start` or `duration_minutes` moves it (checked like a booking).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppointmentPatch {
    /// New start: RFC 3339 or a local time in the agent's time zone.
    #[serde(default)]
    pub start: Option<String>,
    /// New length, 5 to 480 minutes.
    #[serde(default)]
    pub duration_minutes: Option<i64>,
    /// New title.
    #[serde(default)]
    pub title: Option<String>,
    /// New notes; `null` clears them.
    #[serde(default, deserialize_with = "switchboard_domain::agent::double_option")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
    /// Another contact of the organization.
    #[serde(default)]
    pub contact_id: Option<ContactId>,
}

/// The organization's calendar feed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CalendarFeed {
    /// Whether a feed URL exists.
    pub enabled: bool,
    /// When the current URL was made.
    pub created_at: Option<Timestamp>,
    /// The URL to subscribe to (only in the answer that creates it: it is not stored).
    /// Relative when the server has no public URL configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

fn appointment_id(id: &str) -> Result<&str, ApiError> {
    if booking::is_appointment_id(id) {
        Ok(id)
    } else {
        Err(ApiError::not_found())
    }
}

/// List appointments overlapping a range, earliest start first.
#[utoipa::path(get, path = "/api/v1/appointments", tag = "appointments", params(AppointmentQuery),
    responses((status = 200, body = Page<Appointment>), (status = 422, body = ErrorBody)), security(("api_key" = [])))]
pub async fn list_appointments(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<AppointmentQuery>,
) -> Result<Json<Page<Appointment>>, ApiError> {
    let p = paging(q.limit, q.cursor.as_deref())?;
    let tz = st.store.get_settings(&auth.org).await?.tz();
    let bound = |name: &str, v: Option<&str>, end: bool| {
        v.map(|s| {
            booking::parse_bound(s, &tz, end).ok_or_else(|| {
                ApiError::invalid_query(
                    name,
                    "must be a day (2026-12-07) or an RFC 3339 time (2026-12-07T09:00:00Z)",
                )
            })
        })
        .transpose()
    };
    let from = bound("from", q.from.as_deref(), false)?;
    let to = bound("to", q.to.as_deref(), true)?;
    if let (Some(f), Some(t)) = (from, to) {
        if t <= f {
            return Err(ApiError::invalid_query("to", "must be after `from`"));
        }
    }
    let contact_id = q
        .contact_id
        .as_deref()
        .map(|c| {
            ContactId::parse(c).ok_or_else(|| {
                ApiError::invalid_query("contact_id", "is not a contact id (con_...)")
            })
        })
        .transpose()?;
    if let Some(s) = &q.status {
        if !APPOINTMENT_STATUSES.contains(&s.as_str()) {
            return Err(ApiError::invalid_query(
                "status",
                format!("must be one of {}", APPOINTMENT_STATUSES.join(", ")),
            ));
        }
    }
    let filter = AppointmentFilter {
        from,
        to,
        contact_id,
        agent_id: parse_agent(q.agent_id.as_deref())?,
        status: q.status,
        limit: p.limit,
        cursor: p.cursor,
    };
    Ok(Json(
        st.store
            .query_appointments(
                &auth.org,
                &filter,
                switchboard_domain::entities::MAX_PAGE_SIZE,
            )
            .await?,
    ))
}

/// Book an appointment, with the same rules as the agents' booking tools: within the agent's
/// business hours and outside its closures, in the future, and not overlapping another booked
/// appointment (409 `slot_taken`). Writes `appointment.created`.
#[utoipa::path(post, path = "/api/v1/appointments", tag = "appointments", request_body = NewAppointmentRequest,
    responses((status = 201, body = Appointment), (status = 409, body = ErrorBody, description = "`slot_taken`: the time overlaps a booked appointment"),
        (status = 422, body = ErrorBody, description = "`invalid_field`, or for `start`: `past`, `outside_hours`, `closed_day`")),
    security(("api_key" = [])))]
pub async fn create_appointment(
    auth: OrgAuth,
    State(st): State<AppState>,
    ApiJson(body): ApiJson<NewAppointmentRequest>,
) -> Result<(StatusCode, Json<Appointment>), ApiError> {
    let contact = match (body.contact_id, body.contact_number) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "contact_number",
                "give either contact_id or contact_number, not both",
            ))
        }
        (Some(id), None) => ContactRef::Id(id),
        (None, Some(n)) => ContactRef::Number(
            PhoneNumber::parse(&n)
                .map_err(|e| ApiError::invalid("contact_number", e.to_string()))?,
        ),
        (None, None) => ContactRef::None,
    };
    let req = StaffBooking {
        agent_id: body.agent_id,
        contact,
        start: body.start,
        duration_minutes: body.duration_minutes,
        title: body.title,
        notes: body.notes,
    };
    let a = booking::book(&st.store, &auth.org, req, st.clock.now(), auth.actor).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// One appointment.
#[utoipa::path(get, path = "/api/v1/appointments/{id}", tag = "appointments", params(("id" = String, Path)),
    responses((status = 200, body = Appointment), (status = 404, body = ErrorBody)), security(("api_key" = [])))]
pub async fn get_appointment(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Appointment>, ApiError> {
    let id = appointment_id(&id)?;
    Ok(Json(st.store.get_appointment(&auth.org, id).await?))
}

/// Move or edit a booked appointment (a move is checked like a booking; 409 `slot_taken`
/// when it would overlap another, 409 `conflict` when it is canceled). Writes
/// `appointment.updated`.
#[utoipa::path(patch, path = "/api/v1/appointments/{id}", tag = "appointments", params(("id" = String, Path)), request_body = AppointmentPatch,
    responses((status = 200, body = Appointment), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update_appointment(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AppointmentPatch>,
) -> Result<Json<Appointment>, ApiError> {
    let id = appointment_id(&id)?;
    let req = StaffChange {
        start: body.start,
        duration_minutes: body.duration_minutes,
        title: body.title,
        notes: body.notes,
        contact_id: body.contact_id,
    };
    Ok(Json(
        booking::change(&st.store, &auth.org, id, req, st.clock.now(), &auth.actor).await?,
    ))
}

/// Cancel an appointment (it stays listed with status `canceled`; 409 when it already is).
/// Writes `appointment.canceled`.
#[utoipa::path(delete, path = "/api/v1/appointments/{id}", tag = "appointments", params(("id" = String, Path)),
    responses((status = 200, body = Appointment), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("api_key" = [])))]
pub async fn cancel_appointment(
    auth: OrgAuth,
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Appointment>, ApiError> {
    let id = appointment_id(&id)?;
    Ok(Json(
        booking::cancel(&st.store, &auth.org, id, &auth.actor).await?,
    ))
}

/// Whether the organization has a calendar feed (the URL itself is shown only when made).
#[utoipa::path(get, path = "/api/v1/calendar-feed", tag = "appointments",
    responses((status = 200, body = CalendarFeed)), security(("api_key" = [])))]
pub async fn get_feed(
    auth: OrgAuth,
    State(st): State<AppState>,
) -> Result<Json<CalendarFeed>, ApiError> {
    let at = st.store.calendar_feed(&auth.org).await?;
    Ok(Json(CalendarFeed {
        enabled: at.is_some(),
        created_at: at,
        url: None,
    }))
}

/// Make a new secret calendar-feed URL (iCalendar, for Google Calendar, Outlook or Apple
/// Calendar to subscribe to). It replaces the previous URL, which stops working.
#[utoipa::path(post, path = "/api/v1/calendar-feed", tag = "appointments",
    responses((status = 201, body = CalendarFeed)), security(("api_key" = [])))]
pub async fn create_feed(
    auth: OrgAuth,
    State(st): State<AppState>,
) -> Result<(StatusCode, Json<CalendarFeed>), ApiError> {
    let token = st.store.create_calendar_feed(&auth.org).await?;
    tracing::info!(org_id = %auth.org, actor = %auth.actor, "calendar feed URL made");
    Ok((
        StatusCode::CREATED,
        Json(CalendarFeed {
            enabled: true,
            created_at: st.store.calendar_feed(&auth.org).await?,
            url: Some(crate::calendar::feed_url(&st, &token)),
        }),
    ))
}

/// Revoke the calendar-feed URL (subscribers stop getting updates).
#[utoipa::path(delete, path = "/api/v1/calendar-feed", tag = "appointments",
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorBody, description = "There was no feed")), security(("api_key" = [])))]
pub async fn revoke_feed(
    auth: OrgAuth,
    State(st): State<AppState>,
) -> Result<StatusCode, ApiError> {
    if st.store.revoke_calendar_feed(&auth.org).await? {
        tracing::info!(org_id = %auth.org, actor = %auth.actor, "calendar feed URL revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}
