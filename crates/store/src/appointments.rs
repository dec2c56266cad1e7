//! The organization's calendar: appointments booked by agents (in calls and texts), by staff
//! (dashboard and API), never overlapping another booked one, each change reported as an
//! `appointment.*` event in the transaction that makes it; and the secret calendar-feed token.

use crate::outbox::{emit, NewEvent};
use crate::rows::{col, into_page, page_size, ts, Sql};
use crate::{Access, Backend, Scope, Store, StoreError};
use serde_json::json;
use sqlx::any::AnyRow;
use switchboard_domain::auth::hash_api_key;
use switchboard_domain::entities::{
    Appointment, AppointmentChange, AppointmentFilter, Cursor, NewAppointment, Page,
};
use switchboard_domain::ids::{random_token, AgentId, ContactId, OrgId};
use switchboard_domain::Timestamp;

const COLUMNS: &str = "id, agent_id, contact_id, starts_at, ends_at, status, title, notes, \
    created_at, updated_at, revision";

/// An appointment with the contact it is for, as calendars show it.
#[derive(Debug, Clone)]
pub struct CalendarEntry {
    /// The appointment.
    pub appointment: Appointment,
    /// The contact's name.
    pub contact_name: Option<String>,
    /// The contact's number.
    pub contact_number: Option<String>,
}

/// Appointments (`a`) with their contact (`c`).
fn entries_select() -> String {
    let cols = COLUMNS
        .split(", ")
        .map(|c| format!("a.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {cols}, c.name AS contact_name, c.number AS contact_number \
         FROM appointments a LEFT JOIN contacts c ON c.org_id = a.org_id AND c.id = a.contact_id"
    )
}

fn entry_from_row(r: &AnyRow) -> Result<CalendarEntry, StoreError> {
    Ok(CalendarEntry {
        appointment: from_row(r)?,
        contact_name: col(r, "contact_name")?,
        contact_number: col(r, "contact_number")?,
    })
}

fn from_row(row: &AnyRow) -> Result<Appointment, StoreError> {
    Ok(Appointment {
        id: col(row, "id")?,
        agent_id: col::<Option<String>>(row, "agent_id")?.map(AgentId::from_db),
        contact_id: col::<Option<String>>(row, "contact_id")?.map(ContactId::from_db),
        starts_at: ts(row, "starts_at")?,
        ends_at: ts(row, "ends_at")?,
        status: col(row, "status")?,
        title: col(row, "title")?,
        notes: col(row, "notes")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        revision: col(row, "revision")?,
    })
}

fn event(kind: &'static str, a: &Appointment, by: &str) -> NewEvent {
    NewEvent::new(
        kind,
        a.id.clone(),
        json!({"appointment": a, "changed_by": by}),
    )
}

impl Store {
    /// Serialises bookings of one organization for the rest of `tx` (SQLite has a single
    /// writer already; PostgreSQL needs the lock), so an overlap check and the write that
    /// follows it cannot interleave with another booking's.
    async fn lock_calendar(&self, tx: &mut crate::Tx, org: &OrgId) -> Result<(), StoreError> {
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext('appointments:' || $1))")
                .bind(org.as_str())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// One appointment, locked for the rest of `tx`.
    async fn locked(
        &self,
        tx: &mut crate::Tx,
        org: &OrgId,
        id: &str,
    ) -> Result<Appointment, StoreError> {
        let lock = self.for_update();
        crate::rows::fetch_scoped(tx, "appointments", COLUMNS, org, id, lock, from_row).await
    }

    /// Refuses `[start, end)` when it overlaps a booked appointment other than `except`.
    async fn check_free(
        tx: &mut crate::Tx,
        org: &OrgId,
        start: Timestamp,
        end: Timestamp,
        except: &str,
    ) -> Result<(), StoreError> {
        let clash: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM appointments WHERE org_id = $1 AND status = 'booked' \
             AND starts_at < $2 AND ends_at > $3 AND id <> $4",
        )
        .bind(org.as_str())
        .bind(end.millis())
        .bind(start.millis())
        .bind(except)
        .fetch_one(&mut **tx)
        .await?;
        if clash > 0 {
            return Err(StoreError::Conflict("that time is already booked".into()));
        }
        Ok(())
    }

    /// Books an appointment unless it overlaps a booked one of the organization, and writes
    /// `appointment.created`. Two simultaneous requests for one slot cannot both succeed.
    pub async fn book_appointment(
        &self,
        org: &OrgId,
        input: NewAppointment,
    ) -> Result<Appointment, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        self.lock_calendar(&mut tx, org).await?;
        Self::check_free(&mut tx, org, input.starts_at, input.ends_at, "").await?;
        let now = Timestamp::now();
        let appt = Appointment {
            id: format!("apt_{}", random_token(16)),
            agent_id: input.agent_id,
            contact_id: input.contact_id,
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            status: "booked".into(),
            title: input.title,
            notes: input.notes,
            created_at: now,
            updated_at: now,
            revision: 0,
        };
        sqlx::query(
            "INSERT INTO appointments (id, org_id, agent_id, contact_id, starts_at, ends_at, \
             status, title, notes, created_at, updated_at, revision) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0)",
        )
        .bind(appt.id.as_str())
        .bind(org.as_str())
        .bind(appt.agent_id.as_ref().map(|a| a.to_string()))
        .bind(appt.contact_id.as_ref().map(|c| c.to_string()))
        .bind(appt.starts_at.millis())
        .bind(appt.ends_at.millis())
        .bind(appt.status.as_str())
        .bind(appt.title.as_str())
        .bind(appt.notes.clone())
        .bind(now.millis())
        .bind(now.millis())
        .execute(&mut *tx)
        .await?;
        emit(
            &mut tx,
            org,
            &[event("appointment.created", &appt, &input.by)],
            now,
        )
        .await?;
        self.commit_events(tx).await?;
        Ok(appt)
    }

    /// Booked appointments overlapping `[from, to)`, earliest first (at most 500);
    /// optionally one contact's. What the agents' tools see.
    pub async fn list_appointments(
        &self,
        org: &OrgId,
        from: Timestamp,
        to: Timestamp,
        contact: Option<&ContactId>,
    ) -> Result<Vec<Appointment>, StoreError> {
        let page = self
            .query_appointments(
                org,
                &AppointmentFilter {
                    from: Some(from),
                    to: Some(to),
                    contact_id: contact.cloned(),
                    status: Some("booked".into()),
                    limit: Some(500),
                    ..AppointmentFilter::default()
                },
                500,
            )
            .await?;
        Ok(page.data)
    }

    /// Appointments overlapping the filter's range, earliest start first, one page at a time.
    /// `max_limit` bounds the page size (the API allows 200; the tools and calendar views more).
    pub async fn query_appointments(
        &self,
        org: &OrgId,
        f: &AppointmentFilter,
        max_limit: u32,
    ) -> Result<Page<Appointment>, StoreError> {
        let limit = match f.limit {
            Some(l) => l.clamp(1, max_limit),
            None => page_size(None),
        };
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM appointments"));
        sql.push_arg(" WHERE org_id = {}", org.to_string())?;
        if let Some(t) = f.from {
            sql.push_arg(" AND ends_at > {}", t.millis())?;
        }
        if let Some(t) = f.to {
            sql.push_arg(" AND starts_at < {}", t.millis())?;
        }
        if let Some(c) = &f.contact_id {
            sql.push_arg(" AND contact_id = {}", c.to_string())?;
        }
        if let Some(a) = &f.agent_id {
            sql.push_arg(" AND agent_id = {}", a.to_string())?;
        }
        if let Some(s) = &f.status {
            sql.push_arg(" AND status = {}", s.clone())?;
        }
        if let Some(c) = &f.cursor {
            let at = sql.arg(c.at)?;
            let at2 = sql.arg(c.at)?;
            let id = sql.arg(c.id.clone())?;
            sql.push(&format!(
                " AND (starts_at > {at} OR (starts_at = {at2} AND id > {id}))"
            ));
        }
        let lim = sql.arg(i64::from(limit) + 1)?;
        sql.push(&format!(" ORDER BY starts_at, id LIMIT {lim}"));
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let rows = sql.query().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let items = rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(into_page(items, limit, |a: &Appointment| Cursor {
            at: a.starts_at.millis(),
            id: a.id.clone(),
        }))
    }

    /// One appointment.
    pub async fn get_appointment(&self, org: &OrgId, id: &str) -> Result<Appointment, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let a = crate::rows::fetch_scoped(&mut tx, "appointments", COLUMNS, org, id, "", from_row)
            .await?;
        tx.commit().await?;
        Ok(a)
    }

    /// Moves or edits a booked appointment (a move is checked against the other bookings
    /// under the calendar lock) and writes `appointment.updated`. A canceled appointment
    /// cannot change (`Conflict`).
    pub async fn update_appointment(
        &self,
        org: &OrgId,
        id: &str,
        change: AppointmentChange,
        by: &str,
    ) -> Result<Appointment, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        self.lock_calendar(&mut tx, org).await?;
        let mut a = self.locked(&mut tx, org, id).await?;
        if a.status != "booked" {
            return Err(StoreError::Conflict(
                "this appointment is canceled; book a new one instead".into(),
            ));
        }
        if let Some((start, end)) = change.times {
            Self::check_free(&mut tx, org, start, end, id).await?;
            a.starts_at = start;
            a.ends_at = end;
        }
        if let Some(t) = change.title {
            a.title = t;
        }
        if let Some(n) = change.notes {
            a.notes = n;
        }
        if let Some(c) = change.contact_id {
            a.contact_id = Some(c);
        }
        self.write_change(tx, org, a, "appointment.updated", by)
            .await
    }

    /// Stores a changed appointment (a new revision, now) with its event, and commits.
    async fn write_change(
        &self,
        mut tx: crate::Tx,
        org: &OrgId,
        mut a: Appointment,
        kind: &'static str,
        by: &str,
    ) -> Result<Appointment, StoreError> {
        let now = Timestamp::now();
        a.updated_at = now;
        a.revision += 1;
        sqlx::query(
            "UPDATE appointments SET starts_at = $1, ends_at = $2, title = $3, notes = $4, \
             contact_id = $5, status = $6, updated_at = $7, revision = $8 \
             WHERE org_id = $9 AND id = $10",
        )
        .bind(a.starts_at.millis())
        .bind(a.ends_at.millis())
        .bind(a.title.as_str())
        .bind(a.notes.clone())
        .bind(a.contact_id.as_ref().map(|c| c.to_string()))
        .bind(a.status.as_str())
        .bind(now.millis())
        .bind(a.revision)
        .bind(org.as_str())
        .bind(a.id.as_str())
        .execute(&mut *tx)
        .await?;
        emit(&mut tx, org, &[event(kind, &a, by)], now).await?;
        self.commit_events(tx).await?;
        Ok(a)
    }

    /// Cancels a booked appointment and writes `appointment.canceled`. With `only_for`, an
    /// appointment of another contact is "not found" (what a caller may cancel). Canceling a
    /// canceled appointment is a `Conflict`.
    pub async fn cancel_appointment(
        &self,
        org: &OrgId,
        id: &str,
        only_for: Option<&ContactId>,
        by: &str,
    ) -> Result<Appointment, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let mut a = self.locked(&mut tx, org, id).await?;
        if only_for.is_some_and(|c| a.contact_id.as_ref() != Some(c)) {
            return Err(StoreError::NotFound);
        }
        if a.status != "booked" {
            return Err(StoreError::Conflict(
                "this appointment is already canceled".into(),
            ));
        }
        a.status = "canceled".into();
        self.write_change(tx, org, a, "appointment.canceled", by)
            .await
    }

    /// One page of the appointments starting in `[from, to)`, canceled ones too, earliest
    /// first, after `after` (exports).
    pub(crate) async fn appointments_page(
        &self,
        org: &OrgId,
        range: (Timestamp, Timestamp),
        after: &crate::analytics::ExportAfter,
        limit: i64,
    ) -> Result<Vec<CalendarEntry>, StoreError> {
        let mut sql = Sql::new(&entries_select());
        crate::analytics::page_after(&mut sql, org, "a", "starts_at", range, after)?;
        sql.push_arg(" ORDER BY a.starts_at, a.id LIMIT {}", limit)?;
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let rows = sql.query().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Appointments overlapping `[from, to)` with their contact's name and number, earliest
    /// first, at most `limit` (the calendar views and the feed). `include_canceled` adds the
    /// canceled ones (the feed publishes them so subscribed calendars remove them).
    pub async fn calendar_entries(
        &self,
        org: &OrgId,
        range: (Timestamp, Timestamp),
        agent: Option<&AgentId>,
        contact: Option<&ContactId>,
        include_canceled: bool,
        limit: i64,
    ) -> Result<Vec<CalendarEntry>, StoreError> {
        let mut sql = Sql::new(&entries_select());
        sql.push_arg(" WHERE a.org_id = {}", org.to_string())?;
        sql.push_arg(" AND a.ends_at > {}", range.0.millis())?;
        sql.push_arg(" AND a.starts_at < {}", range.1.millis())?;
        if let Some(a) = agent {
            sql.push_arg(" AND a.agent_id = {}", a.to_string())?;
        }
        if let Some(c) = contact {
            sql.push_arg(" AND a.contact_id = {}", c.to_string())?;
        }
        if !include_canceled {
            sql.push(" AND a.status = 'booked'");
        }
        sql.push_arg(" ORDER BY a.starts_at, a.id LIMIT {}", limit)?;
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let rows = sql.query().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// When the organization's calendar feed was created, if it has one.
    pub async fn calendar_feed(&self, org: &OrgId) -> Result<Option<Timestamp>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let at: Option<i64> =
            sqlx::query_scalar("SELECT created_at FROM calendar_feeds WHERE org_id = $1")
                .bind(org.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(at.map(Timestamp::from_millis))
    }

    /// A new calendar-feed token for the organization (returned once; only its hash is
    /// kept). It replaces the previous one, whose URL stops working.
    pub async fn create_calendar_feed(&self, org: &OrgId) -> Result<String, StoreError> {
        let token = format!("cal_{}", random_token(32));
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        crate::accounts::ensure_org_exists(&mut tx, org).await?;
        sqlx::query(
            "INSERT INTO calendar_feeds (org_id, token_hash, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (org_id) DO UPDATE SET token_hash = excluded.token_hash, \
             created_at = excluded.created_at",
        )
        .bind(org.as_str())
        .bind(hash_api_key(&token))
        .bind(Timestamp::now().millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// Revokes the organization's calendar feed; `false` when it had none.
    pub async fn revoke_calendar_feed(&self, org: &OrgId) -> Result<bool, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let done = sqlx::query("DELETE FROM calendar_feeds WHERE org_id = $1")
            .bind(org.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// The active organization a calendar-feed token opens (look-up scope: the token is the
    /// only credential).
    pub async fn calendar_feed_org(&self, token: &str) -> Result<Option<OrgId>, StoreError> {
        let mut r = self.reader(Scope::Platform).await?;
        let row = sqlx::query(self.lookup(
            "SELECT * FROM sb_calendar_feed($1)",
            "SELECT f.org_id, o.status FROM calendar_feeds f \
             JOIN organizations o ON o.id = f.org_id WHERE f.token_hash = $1",
        ))
        .bind(hash_api_key(token))
        .fetch_optional(r.conn())
        .await?;
        r.finish().await?;
        match row {
            Some(row) if col::<String>(&row, "status")? == "active" => {
                Ok(Some(OrgId::from_db(col(&row, "org_id")?)))
            }
            _ => Ok(None),
        }
    }
}
