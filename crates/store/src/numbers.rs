//! Phone numbers and inbound routing.

use crate::agents::agent_exists;
use crate::rows::{col, flag, parsed, ts, Newest, Sql};
use crate::{conflict_on_unique, Access, Scope, Store, StoreError};
use sqlx::any::AnyRow;
use switchboard_domain::entities::{
    verification_reason, Cursor, NewPhoneNumber, NumberRoute, OwnedNumber, Page, PhoneNumberPatch,
};
use switchboard_domain::ids::{AgentId, OrgId, PhoneNumberId};
use switchboard_domain::values::{NumberChannel, NumberVerification, OrgStatus, PhoneNumber};
use switchboard_domain::{Timestamp, ValidationError};

const COLUMNS: &str = "id, number, channel, agent_id, active, created_at, verification, \
     verification_reason, verification_message, verification_checked_at";
// The same words whether this organization or another one holds the number: a refusal must
// not tell who owns it.
const TAKEN: &str = "this number is already registered for this channel";
const VERIFIED_ELSEWHERE_MESSAGE: &str = "another organization on this platform has proven \
     this number is theirs; if it is yours, ask the operator";

/// The outcome of a check of a number with its carrier.
#[derive(Debug, Clone, PartialEq)]
pub enum NumberCheck {
    /// The number is the organization's; the message says how it was proven.
    Verified(String),
    /// Not proven: a stable reason code (`verification_reason`) and words.
    Pending(&'static str, String),
    /// The check could not be made (carrier unreachable): a verified number stays verified,
    /// a pending one records why it is still pending.
    Unreachable(String),
}

fn number_from_row(row: &AnyRow) -> Result<OwnedNumber, StoreError> {
    Ok(OwnedNumber {
        id: PhoneNumberId::from_db(col(row, "id")?),
        number: PhoneNumber::from_db(col(row, "number")?),
        channel: parsed(row, "channel", NumberChannel::parse)?,
        agent_id: col::<Option<String>>(row, "agent_id")?.map(AgentId::from_db),
        active: flag(row, "active")?,
        created_at: ts(row, "created_at")?,
        verification: parsed(row, "verification", NumberVerification::parse)?,
        verification_reason: col(row, "verification_reason")?,
        verification_message: col(row, "verification_message")?,
        verification_checked_at: col::<Option<i64>>(row, "verification_checked_at")?
            .map(Timestamp::from_millis),
    })
}

async fn check_agent(
    tx: &mut crate::Tx,
    org: &OrgId,
    agent: Option<&AgentId>,
) -> Result<(), StoreError> {
    if let Some(agent) = agent {
        if !agent_exists(tx, org, agent).await? {
            return Err(
                ValidationError::new("agent_id", "no such agent in this organization").into(),
            );
        }
    }
    Ok(())
}

impl Store {
    /// Registers a number, pending verification. A number+channel this organization already
    /// has, or that another organization has verified, is a conflict (with the same message,
    /// so the refusal does not reveal that another organization holds it). Another
    /// organization's unverified claim does not block it: the claim that is proven wins.
    pub async fn create_number(
        &self,
        org: &OrgId,
        input: NewPhoneNumber,
    ) -> Result<OwnedNumber, StoreError> {
        let number = OwnedNumber {
            id: PhoneNumberId::generate(),
            number: input.number,
            channel: input.channel,
            agent_id: input.agent_id,
            active: input.active.unwrap_or(true),
            created_at: Timestamp::now(),
            verification: NumberVerification::PendingVerification,
            verification_reason: Some(verification_reason::NOT_CHECKED.into()),
            verification_message: Some("not checked with Twilio yet".into()),
            verification_checked_at: None,
        };
        if self
            .number_verified_elsewhere(org, &number.number, number.channel)
            .await?
        {
            return Err(StoreError::Conflict(TAKEN.into()));
        }
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        crate::accounts::ensure_org_exists(&mut tx, org).await?;
        check_agent(&mut tx, org, number.agent_id.as_ref()).await?;
        sqlx::query(&format!(
            "INSERT INTO phone_numbers (org_id, {COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(org.as_str())
        .bind(number.id.as_str())
        .bind(number.number.as_str())
        .bind(number.channel.as_str())
        .bind(number.agent_id.as_ref().map(|a| a.to_string()))
        .bind(i64::from(number.active))
        .bind(number.created_at.millis())
        .bind(number.verification.as_str())
        .bind(number.verification_reason.clone())
        .bind(number.verification_message.clone())
        .bind(None::<i64>)
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique(TAKEN))?;
        tx.commit().await?;
        Ok(number)
    }

    /// Whether an organization other than `org` holds the verified claim on a number.
    async fn number_verified_elsewhere(
        &self,
        org: &OrgId,
        number: &PhoneNumber,
        channel: NumberChannel,
    ) -> Result<bool, StoreError> {
        let mut r = self.reader(Scope::Platform).await?;
        let n: i64 = sqlx::query_scalar(self.lookup(
            "SELECT sb_number_verified_elsewhere($1, $2, $3)",
            "SELECT COUNT(*) FROM phone_numbers WHERE number = $1 AND channel = $2 \
             AND verification = 'verified' AND org_id <> $3",
        ))
        .bind(number.as_str())
        .bind(channel.as_str())
        .bind(org.as_str())
        .fetch_one(r.conn())
        .await?;
        r.finish().await?;
        Ok(n > 0)
    }

    /// Records the outcome of a check of a number with its carrier and returns the number as
    /// it now stands. A claim proven while another organization holds the verified one
    /// (the number moved between accounts) stays pending as `verified_elsewhere`.
    pub async fn record_number_check(
        &self,
        org: &OrgId,
        id: &PhoneNumberId,
        check: NumberCheck,
        now: Timestamp,
    ) -> Result<OwnedNumber, StoreError> {
        let current = self.get_number(org, id).await?;
        let (state, reason, message) = match check {
            NumberCheck::Verified(m) => (NumberVerification::Verified, None, m),
            NumberCheck::Pending(r, m) => (NumberVerification::PendingVerification, Some(r), m),
            NumberCheck::Unreachable(m) => match current.verification {
                NumberVerification::Verified => (
                    NumberVerification::Verified,
                    None,
                    current
                        .verification_message
                        .clone()
                        .unwrap_or_else(|| m.clone()),
                ),
                NumberVerification::PendingVerification => (
                    NumberVerification::PendingVerification,
                    Some(verification_reason::TWILIO_UNREACHABLE),
                    m,
                ),
            },
        };
        match self
            .write_number_check(org, id, state, reason, &message, now)
            .await
        {
            Err(StoreError::Conflict(_)) => {
                self.write_number_check(
                    org,
                    id,
                    NumberVerification::PendingVerification,
                    Some(verification_reason::VERIFIED_ELSEWHERE),
                    VERIFIED_ELSEWHERE_MESSAGE,
                    now,
                )
                .await
            }
            other => other,
        }
    }

    async fn write_number_check(
        &self,
        org: &OrgId,
        id: &PhoneNumberId,
        state: NumberVerification,
        reason: Option<&str>,
        message: &str,
        now: Timestamp,
    ) -> Result<OwnedNumber, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let done = sqlx::query(
            "UPDATE phone_numbers SET verification = $1, verification_reason = $2, \
             verification_message = $3, verification_checked_at = $4 \
             WHERE org_id = $5 AND id = $6",
        )
        .bind(state.as_str())
        .bind(reason)
        .bind(message)
        .bind(now.millis())
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique(TAKEN))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let n = fetch_number(&mut tx, org, id).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Every number of an organization, oldest first (to check them all with the carrier).
    pub async fn all_numbers(&self, org: &OrgId) -> Result<Vec<OwnedNumber>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM phone_numbers WHERE org_id = $1 ORDER BY created_at, id"
        ))
        .bind(org.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(number_from_row).collect()
    }

    /// One number.
    pub async fn get_number(
        &self,
        org: &OrgId,
        id: &PhoneNumberId,
    ) -> Result<OwnedNumber, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let n = fetch_number(&mut tx, org, id).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Lists numbers, newest first.
    pub async fn list_numbers(
        &self,
        org: &OrgId,
        limit: Option<u32>,
        cursor: Option<&Cursor>,
    ) -> Result<Page<OwnedNumber>, StoreError> {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM phone_numbers WHERE "));
        sql.push_arg("org_id = {}", org.to_string())?;
        let order = Newest {
            col: "created_at",
            key: |n: &OwnedNumber| Cursor {
                at: n.created_at.millis(),
                id: n.id.to_string(),
            },
        };
        self.list_newest(org, sql, order, limit, cursor, number_from_row)
            .await
    }

    /// Changes a number's agent or active flag.
    pub async fn update_number(
        &self,
        org: &OrgId,
        id: &PhoneNumberId,
        patch: PhoneNumberPatch,
    ) -> Result<OwnedNumber, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let mut n = fetch_number(&mut tx, org, id).await?;
        if let Some(agent) = patch.agent_id {
            check_agent(&mut tx, org, agent.as_ref()).await?;
            n.agent_id = agent;
        }
        if let Some(active) = patch.active {
            n.active = active;
        }
        sqlx::query(
            "UPDATE phone_numbers SET agent_id = $1, active = $2 WHERE org_id = $3 AND id = $4",
        )
        .bind(n.agent_id.as_ref().map(|a| a.to_string()))
        .bind(i64::from(n.active))
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Releases a number.
    pub async fn delete_number(&self, org: &OrgId, id: &PhoneNumberId) -> Result<(), StoreError> {
        self.delete_scoped(org, "phone_numbers", id.as_str()).await
    }

    /// Counts an organization's numbers.
    pub async fn count_numbers(&self, org: &OrgId) -> Result<i64, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM phone_numbers WHERE org_id = $1")
            .bind(org.as_str())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// [`Store::route_number`] and the owning organization's Twilio credentials in one
    /// look-up (the messaging webhook's hot path: route, then verify the signature).
    pub async fn route_number_with_credentials(
        &self,
        number: &PhoneNumber,
        channel: NumberChannel,
    ) -> Result<Option<(NumberRoute, Option<crate::TwilioCredentials>)>, StoreError> {
        let mut r = self.reader(Scope::Platform).await?;
        let row = sqlx::query(self.lookup(
            "SELECT * FROM sb_route_number_with_credentials($1, $2)",
            "SELECT p.id, p.org_id, p.agent_id, p.active, o.status, p.verification, \
             c.account_sid, c.auth_token, c.carrier, c.space, c.signing_key \
             FROM phone_numbers p JOIN organizations o ON o.id = p.org_id \
             LEFT JOIN twilio_credentials c ON c.org_id = p.org_id \
             WHERE p.number = $1 AND p.channel = $2 \
             ORDER BY p.verification = 'verified' DESC, p.created_at, p.id LIMIT 1",
        ))
        .bind(number.as_str())
        .bind(channel.as_str())
        .fetch_optional(r.conn())
        .await?;
        r.finish().await?;
        row.map(|row| {
            let route = route_from_row(&row)?;
            let creds = crate::settings::credentials_from_row(self, &route.org_id, &row)?;
            Ok((route, creds))
        })
        .transpose()
    }

    /// The organization's active numbers on `channel`, oldest first (sender candidates).
    pub async fn active_numbers(
        &self,
        org: &OrgId,
        channel: NumberChannel,
    ) -> Result<Vec<OwnedNumber>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM phone_numbers WHERE org_id = $1 AND channel = $2 \
             AND active = 1 ORDER BY created_at, id LIMIT 100"
        ))
        .bind(org.as_str())
        .bind(channel.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(number_from_row).collect()
    }

    /// Finds which organization a dialled number belongs to: the single place inbound traffic
    /// is assigned a tenant. Runs in the narrow look-up scope, before any tenant is known.
    /// When several organizations claim the number, the verified claim wins, else the oldest
    /// (which routes only in development).
    pub async fn route_number(
        &self,
        number: &PhoneNumber,
        channel: NumberChannel,
    ) -> Result<Option<NumberRoute>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let row = sqlx::query(self.lookup(
            "SELECT * FROM sb_route_number($1, $2)",
            "SELECT p.id, p.org_id, p.agent_id, p.active, o.status, p.verification \
             FROM phone_numbers p JOIN organizations o ON o.id = p.org_id \
             WHERE p.number = $1 AND p.channel = $2 \
             ORDER BY p.verification = 'verified' DESC, p.created_at, p.id LIMIT 1",
        ))
        .bind(number.as_str())
        .bind(channel.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref().map(route_from_row).transpose()
    }
}

/// A routing row: `p.id, p.org_id, p.agent_id, p.active, o.status, p.verification`.
fn route_from_row(row: &AnyRow) -> Result<NumberRoute, StoreError> {
    let org_active = parsed(row, "status", OrgStatus::parse)? == OrgStatus::Active;
    Ok(NumberRoute {
        org_id: OrgId::from_db(col(row, "org_id")?),
        number_id: PhoneNumberId::from_db(col(row, "id")?),
        agent_id: col::<Option<String>>(row, "agent_id")?.map(AgentId::from_db),
        active: flag(row, "active")? && org_active,
        verified: parsed(row, "verification", NumberVerification::parse)?
            == NumberVerification::Verified,
    })
}

async fn fetch_number(
    tx: &mut crate::Tx,
    org: &OrgId,
    id: &PhoneNumberId,
) -> Result<OwnedNumber, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM phone_numbers WHERE org_id = $1 AND id = $2"
    ))
    .bind(org.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref()
        .map(number_from_row)
        .transpose()?
        .ok_or(StoreError::NotFound)
}
