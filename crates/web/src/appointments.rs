//! Staff bookings, shared by the API and the dashboard: the same rules as the agents' booking
//! tools (the agent's business hours and closures, a time in the future, no overlap with
//! another booked appointment), with a length staff may choose; day ranges read in the
//! organization's time zone.

use crate::error::ApiError;
use axum::http::StatusCode;
use jiff::civil::Date;
use switchboard_domain::agent::Agent;
use switchboard_domain::entities::{Appointment, AppointmentChange, NewAppointment};
use switchboard_domain::ids::{AgentId, ContactId, OrgId};
use switchboard_domain::schedule::{BusinessHours, SlotError};
use switchboard_domain::values::PhoneNumber;
use switchboard_domain::Timestamp;
use switchboard_store::{Store, StoreError};

/// Why a booking or a change was refused; `field` is the input at fault.
#[derive(Debug)]
pub(crate) enum BookingError {
    /// The input is wrong: `code` is stable (`invalid_field`, `past`, `outside_hours`,
    /// `closed_day`), the message is for people.
    Invalid {
        field: &'static str,
        code: &'static str,
        message: String,
    },
    /// The time overlaps another booked appointment.
    Taken,
    /// The appointment is canceled and cannot change.
    Canceled(String),
    /// No such appointment, agent or contact in the organization.
    NotFound(&'static str),
    /// The store failed.
    Store(StoreError),
}

impl BookingError {
    fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        BookingError::Invalid {
            field,
            code: "invalid_field",
            message: message.into(),
        }
    }

    fn slot(e: SlotError) -> Self {
        let code = match e {
            SlotError::Unreadable(_) | SlotError::BadLength => "invalid_field",
            SlotError::Past => "past",
            SlotError::Closed(_) => "outside_hours",
            SlotError::ClosedDay(_) => "closed_day",
        };
        BookingError::Invalid {
            field: "start",
            code,
            message: e.to_string(),
        }
    }

    /// The form field it belongs to and what to show there (`None`: not a field's fault).
    pub(crate) fn field_message(&self) -> Option<(&'static str, String)> {
        match self {
            BookingError::Invalid { field, message, .. } => Some((field, message.clone())),
            BookingError::Taken => Some(("start", "that time is already booked".into())),
            BookingError::NotFound(what) => Some((what, format!("no such {what} here"))),
            _ => None,
        }
    }
}

impl From<StoreError> for BookingError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(_) => BookingError::Taken,
            other => BookingError::Store(other),
        }
    }
}

impl From<BookingError> for ApiError {
    fn from(e: BookingError) -> Self {
        match e {
            BookingError::Invalid {
                field,
                code,
                message,
            } => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code,
                message: format!("{field}: {message}"),
                field: Some(field.to_owned()),
                retry_after: None,
            },
            BookingError::Taken => ApiError::new(
                StatusCode::CONFLICT,
                "slot_taken",
                "that time overlaps another booked appointment",
            ),
            BookingError::Canceled(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            BookingError::NotFound("appointment") => ApiError::not_found(),
            BookingError::NotFound(what) => {
                ApiError::invalid(what, format!("no such {what} in this organization"))
            }
            BookingError::Store(s) => s.into(),
        }
    }
}

/// Who the appointment is for.
#[derive(Debug, Clone)]
pub(crate) enum ContactRef {
    /// A contact of the organization.
    Id(ContactId),
    /// A number: its contact, created when missing (as a call or text would).
    Number(PhoneNumber),
    /// Nobody in particular (a block of time).
    None,
}

/// A booking made by staff.
#[derive(Debug, Clone)]
pub(crate) struct StaffBooking {
    pub agent_id: AgentId,
    pub contact: ContactRef,
    /// RFC 3339, or a local `YYYY-MM-DDTHH:MM` in the agent's time zone.
    pub start: String,
    /// Default: the agent's slot length.
    pub duration_minutes: Option<i64>,
    pub title: Option<String>,
    pub notes: Option<String>,
}

/// A change made by staff: absent fields keep their value.
#[derive(Debug, Clone, Default)]
pub(crate) struct StaffChange {
    pub start: Option<String>,
    pub duration_minutes: Option<i64>,
    pub title: Option<String>,
    pub notes: Option<Option<String>>,
    pub contact_id: Option<ContactId>,
}

const MAX_TITLE: usize = 200;
const MAX_NOTES: usize = 2000;

fn check_duration(m: i64) -> Result<i64, BookingError> {
    if (5..=480).contains(&m) {
        Ok(m)
    } else {
        Err(BookingError::invalid(
            "duration_minutes",
            "must be between 5 and 480 minutes",
        ))
    }
}

fn check_text(field: &'static str, v: &str, max: usize) -> Result<String, BookingError> {
    let t = v.trim();
    if field == "title" && t.is_empty() {
        return Err(BookingError::invalid(field, "must not be empty"));
    }
    if t.chars().count() > max {
        return Err(BookingError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(t.to_owned())
}

async fn agent_of(store: &Store, org: &OrgId, id: &AgentId) -> Result<Agent, BookingError> {
    match store.get_agent(org, id).await {
        Ok(a) => Ok(a),
        Err(StoreError::NotFound) => Err(BookingError::NotFound("agent_id")),
        Err(e) => Err(BookingError::Store(e)),
    }
}

/// Books for staff: hours and closures of the agent, no overlap; writes
/// `appointment.created` with `by`.
pub(crate) async fn book(
    store: &Store,
    org: &OrgId,
    req: StaffBooking,
    now: Timestamp,
    by: String,
) -> Result<Appointment, BookingError> {
    let agent = agent_of(store, org, &req.agent_id).await?;
    let hours = &agent.business_hours;
    let start = hours.parse_start(&req.start).map_err(BookingError::slot)?;
    let minutes = check_duration(req.duration_minutes.unwrap_or(hours.slot_minutes))?;
    let end = Timestamp::from_millis(start.millis() + minutes * 60_000);
    let title = req
        .title
        .as_deref()
        .map(|t| check_text("title", t, MAX_TITLE))
        .transpose()?;
    let notes = req
        .notes
        .as_deref()
        .map(|t| check_text("notes", t, MAX_NOTES))
        .transpose()?
        .filter(|n| !n.is_empty());
    let contact = match req.contact {
        ContactRef::Id(id) => match store.get_contact(org, &id).await {
            Ok(c) => Some(c),
            Err(StoreError::NotFound) => return Err(BookingError::NotFound("contact_id")),
            Err(e) => return Err(e.into()),
        },
        ContactRef::Number(n) => Some(store.ensure_contact(org, &n).await?),
        ContactRef::None => None,
    };
    hours
        .check_range(start, end, now)
        .map_err(BookingError::slot)?;
    let title = title.unwrap_or_else(|| match &contact {
        Some(c) => format!(
            "Appointment with {}",
            c.name.as_deref().unwrap_or(c.number.as_str())
        ),
        None => "Appointment".to_owned(),
    });
    Ok(store
        .book_appointment(
            org,
            NewAppointment {
                agent_id: Some(agent.id),
                contact_id: contact.map(|c| c.id),
                starts_at: start,
                ends_at: end,
                title,
                notes,
                by,
            },
        )
        .await?)
}

/// Moves or edits for staff: a new start or length is checked against the agent's hours
/// (an appointment whose agent was deleted keeps only the overlap rule); writes
/// `appointment.updated` with `by`.
pub(crate) async fn change(
    store: &Store,
    org: &OrgId,
    id: &str,
    req: StaffChange,
    now: Timestamp,
    by: &str,
) -> Result<Appointment, BookingError> {
    let current = match store.get_appointment(org, id).await {
        Ok(a) => a,
        Err(StoreError::NotFound) => return Err(BookingError::NotFound("appointment")),
        Err(e) => return Err(BookingError::Store(e)),
    };
    if current.status != "booked" {
        return Err(BookingError::Canceled(
            "this appointment is canceled; book a new one instead".into(),
        ));
    }
    let hours = match &current.agent_id {
        Some(a) => match store.get_agent(org, a).await {
            Ok(agent) => Some(agent.business_hours),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let mut out = AppointmentChange::default();
    if req.start.is_some() || req.duration_minutes.is_some() {
        let h = hours.clone().unwrap_or_else(BusinessHours::default);
        let start = match &req.start {
            Some(s) => h.parse_start(s).map_err(BookingError::slot)?,
            None => current.starts_at,
        };
        let minutes = match req.duration_minutes {
            Some(m) => check_duration(m)?,
            None => (current.ends_at.millis() - current.starts_at.millis()) / 60_000,
        };
        let end = Timestamp::from_millis(start.millis() + minutes * 60_000);
        match &hours {
            Some(h) => h.check_range(start, end, now).map_err(BookingError::slot)?,
            None if start <= now => return Err(BookingError::slot(SlotError::Past)),
            None => {}
        }
        out.times = Some((start, end));
    }
    if let Some(t) = &req.title {
        out.title = Some(check_text("title", t, MAX_TITLE)?);
    }
    if let Some(n) = &req.notes {
        out.notes = Some(
            n.as_deref()
                .map(|t| check_text("notes", t, MAX_NOTES))
                .transpose()?
                .filter(|t| !t.is_empty()),
        );
    }
    if let Some(c) = req.contact_id {
        match store.get_contact(org, &c).await {
            Ok(_) => out.contact_id = Some(c),
            Err(StoreError::NotFound) => return Err(BookingError::NotFound("contact_id")),
            Err(e) => return Err(e.into()),
        }
    }
    match store.update_appointment(org, id, out, by).await {
        Ok(a) => Ok(a),
        Err(StoreError::NotFound) => Err(BookingError::NotFound("appointment")),
        // Canceled between the read and the write.
        Err(StoreError::Conflict(m)) if m.contains("canceled") => Err(BookingError::Canceled(m)),
        Err(e) => Err(e.into()),
    }
}

/// Cancels for staff; writes `appointment.canceled` with `by`.
pub(crate) async fn cancel(
    store: &Store,
    org: &OrgId,
    id: &str,
    by: &str,
) -> Result<Appointment, BookingError> {
    match store.cancel_appointment(org, id, None, by).await {
        Ok(a) => Ok(a),
        Err(StoreError::NotFound) => Err(BookingError::NotFound("appointment")),
        Err(StoreError::Conflict(m)) => Err(BookingError::Canceled(m)),
        Err(e) => Err(BookingError::Store(e)),
    }
}

/// Whether `id` has the shape of an appointment id (`apt_` and letters or digits); anything
/// else is answered "not found" without asking the store.
pub(crate) fn is_appointment_id(id: &str) -> bool {
    id.strip_prefix("apt_").is_some_and(|r| {
        !r.is_empty() && r.len() <= 64 && r.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// The start of local `date` in `tz`.
pub(crate) fn day_start(date: Date, tz: &jiff::tz::TimeZone) -> Option<Timestamp> {
    date.to_zoned(tz.clone())
        .ok()
        .map(|z| Timestamp::from_millis(z.timestamp().as_millisecond()))
}

/// A range bound: `YYYY-MM-DD` (a day in `tz`; `end_of_day` takes the start of the next
/// day, so `to=2026-12-07` includes that day) or an RFC 3339 time.
pub(crate) fn parse_bound(v: &str, tz: &jiff::tz::TimeZone, end_of_day: bool) -> Option<Timestamp> {
    if let Some(t) = Timestamp::parse_rfc3339(v) {
        return Some(t);
    }
    let d = switchboard_domain::schedule::parse_date(v)?;
    let d = if end_of_day { d.tomorrow().ok()? } else { d };
    day_start(d, tz)
}

/// Today in `tz`.
pub(crate) fn today(tz: &jiff::tz::TimeZone, now: Timestamp) -> Date {
    jiff::Timestamp::from_millisecond(now.millis())
        .map(|t| t.to_zoned(tz.clone()).date())
        .unwrap_or_else(|_| jiff::Timestamp::UNIX_EPOCH.to_zoned(tz.clone()).date())
}

/// `t` as local date and `HH:MM` in `tz`.
pub(crate) fn local(tz: &jiff::tz::TimeZone, t: Timestamp) -> Option<jiff::civil::DateTime> {
    jiff::Timestamp::from_millisecond(t.millis())
        .ok()
        .map(|ts| ts.to_zoned(tz.clone()).datetime())
}
