//! Organization settings and Twilio credentials.

use crate::rows::{col, json};
use crate::secrets::{Owner, RETELL_KEY, SIGNALWIRE_SIGNING_KEY, TWILIO_TOKEN};
use crate::{Access, Scope, Store, StoreError};
use sqlx::any::AnyRow;
use switchboard_domain::ids::OrgId;
use switchboard_domain::settings::{OrgSettings, SettingsUpdate};
use switchboard_domain::values::Carrier;
use switchboard_domain::{Secret, Timestamp};

/// An organization's carrier account (Twilio, or a SignalWire project through its
/// compatibility API), for signing checks and REST calls.
#[derive(Debug, Clone)]
pub struct TwilioCredentials {
    /// Twilio's `AC...`, or SignalWire's project id: the REST API's Basic-auth user.
    pub account_sid: String,
    /// Twilio's auth token, or SignalWire's API token (redacted in `Debug`).
    pub auth_token: Secret,
    /// Who carries the calls.
    pub carrier: Carrier,
    /// SignalWire's space host (`example.signalwire.com`); `None` on Twilio.
    pub space: Option<String>,
    /// SignalWire's signing key, which its webhooks are signed with.
    pub signing_key: Option<Secret>,
}

impl TwilioCredentials {
    /// The key the carrier's webhooks are signed with: Twilio's auth token, SignalWire's
    /// signing key.
    pub fn webhook_key(&self) -> &Secret {
        match (&self.carrier, &self.signing_key) {
            (Carrier::SignalWire, Some(k)) => k,
            _ => &self.auth_token,
        }
    }

    /// The header the carrier's webhook signature comes in.
    pub fn signature_header(&self) -> &'static str {
        match self.carrier {
            Carrier::Twilio => "x-twilio-signature",
            Carrier::SignalWire => "x-signalwire-signature",
        }
    }
}

/// The credentials of a `twilio_credentials` row (`account_sid, auth_token, carrier, space,
/// signing_key`, any of them NULL through a LEFT JOIN).
pub(crate) fn credentials_from_row(
    store: &Store,
    org: &OrgId,
    row: &AnyRow,
) -> Result<Option<TwilioCredentials>, StoreError> {
    let sid: Option<String> = col(row, "account_sid")?;
    let token: Option<String> = col(row, "auth_token")?;
    let (Some(account_sid), Some(token)) = (sid, token) else {
        return Ok(None);
    };
    let carrier = col::<Option<String>>(row, "carrier")?
        .as_deref()
        .and_then(Carrier::parse)
        .unwrap_or(Carrier::Twilio);
    Ok(Some(TwilioCredentials {
        account_sid,
        auth_token: store.unseal(Owner::Org(org), TWILIO_TOKEN, &token)?,
        carrier,
        space: col(row, "space")?,
        signing_key: store.unseal_opt(
            Owner::Org(org),
            SIGNALWIRE_SIGNING_KEY,
            col(row, "signing_key")?,
        )?,
    }))
}

impl Store {
    /// The organization's settings (defaults when never set).
    pub async fn get_settings(&self, org: &OrgId) -> Result<OrgSettings, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        crate::accounts::ensure_org_exists(&mut tx, org).await?;
        let s = read_settings(&mut tx, org).await?;
        tx.commit().await?;
        Ok(s)
    }

    /// Applies the provided fields, all or nothing.
    pub async fn update_settings(
        &self,
        org: &OrgId,
        update: SettingsUpdate,
    ) -> Result<OrgSettings, StoreError> {
        update.validate()?;
        let now = Timestamp::now().millis();
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        crate::accounts::ensure_org_exists(&mut tx, org).await?;
        let mut s = read_settings(&mut tx, org).await?;
        let carrier = switchboard_domain::carrier::check_switch(s.carrier, &update)?;
        if let Some(v) = update.session_window_seconds {
            s.session_window_seconds = v;
        }
        if let Some(v) = update.business_session_window_seconds {
            s.business_session_window_seconds = v;
        }
        if let Some(v) = update.notification_emails {
            s.notification_emails = v.into_iter().map(|e| e.to_lowercase()).collect();
        }
        if let Some(v) = update.help_text {
            s.help_text = v;
        }
        if let Some(v) = update.notify_calls {
            s.notify_calls = v;
        }
        if let Some(v) = update.max_concurrent_outbound_calls {
            s.max_concurrent_outbound_calls = v;
        }
        if let Some(v) = update.recording_retention_days {
            s.recording_retention_days = v;
        }
        if let Some(v) = update.transfer_destinations {
            s.transfer_destinations = v;
        }
        if let Some(v) = update.timezone {
            s.timezone = v;
        }
        sqlx::query(
            "INSERT INTO org_settings (org_id, session_window_seconds, business_session_window_seconds, \
             notification_emails, help_text, notify_calls, max_concurrent_outbound_calls, \
             recording_retention_days, transfer_destinations, timezone, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (org_id) DO UPDATE SET session_window_seconds = excluded.session_window_seconds, \
             business_session_window_seconds = excluded.business_session_window_seconds, \
             notification_emails = excluded.notification_emails, help_text = excluded.help_text, \
             notify_calls = excluded.notify_calls, \
             max_concurrent_outbound_calls = excluded.max_concurrent_outbound_calls, \
             recording_retention_days = excluded.recording_retention_days, \
             transfer_destinations = excluded.transfer_destinations, \
             timezone = excluded.timezone, updated_at = excluded.updated_at",
        )
        .bind(org.as_str())
        .bind(s.session_window_seconds)
        .bind(s.business_session_window_seconds)
        .bind(crate::rows::to_json(&s.notification_emails)?)
        .bind(s.help_text.clone())
        .bind(s.notify_calls.clone())
        .bind(s.max_concurrent_outbound_calls)
        .bind(s.recording_retention_days)
        .bind(crate::rows::to_json(&s.transfer_destinations)?)
        .bind(s.timezone.clone())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let (sid, token) = match carrier {
            Carrier::Twilio => (&update.twilio_account_sid, &update.twilio_auth_token),
            Carrier::SignalWire => (&update.signalwire_project_id, &update.signalwire_api_token),
        };
        let changed = sid.is_some()
            || token.is_some()
            || update.signalwire_space.is_some()
            || update.signalwire_signing_key.is_some()
            || carrier != s.carrier;
        if changed {
            let token = self.seal_opt(
                Owner::Org(org),
                TWILIO_TOKEN,
                token.as_ref().map(Secret::expose),
            )?;
            let signing_key = self.seal_opt(
                Owner::Org(org),
                SIGNALWIRE_SIGNING_KEY,
                update.signalwire_signing_key.as_ref().map(Secret::expose),
            )?;
            // COALESCE keeps what is not sent (a switch of carrier sends everything: see
            // `check_switch`); Twilio has no space or signing key.
            sqlx::query(
                "INSERT INTO twilio_credentials (org_id, account_sid, auth_token, carrier, space, \
                 signing_key, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (org_id) DO UPDATE SET \
                 account_sid = COALESCE(excluded.account_sid, twilio_credentials.account_sid), \
                 auth_token = COALESCE(excluded.auth_token, twilio_credentials.auth_token), \
                 carrier = excluded.carrier, \
                 space = CASE WHEN excluded.carrier = 'twilio' THEN NULL \
                     ELSE COALESCE(excluded.space, twilio_credentials.space) END, \
                 signing_key = CASE WHEN excluded.carrier = 'twilio' THEN NULL \
                     ELSE COALESCE(excluded.signing_key, twilio_credentials.signing_key) END, \
                 updated_at = excluded.updated_at",
            )
            .bind(org.as_str())
            .bind(sid.clone())
            .bind(token)
            .bind(carrier.as_str())
            .bind(update.signalwire_space.clone())
            .bind(signing_key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        match &update.retell_api_key {
            None => {}
            Some(None) => {
                sqlx::query("DELETE FROM retell_credentials WHERE org_id = $1")
                    .bind(org.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            Some(Some(key)) => {
                let sealed = self.seal(Owner::Org(org), RETELL_KEY, key.expose())?;
                sqlx::query(
                    "INSERT INTO retell_credentials (org_id, api_key, updated_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (org_id) DO UPDATE SET api_key = excluded.api_key, \
                     updated_at = excluded.updated_at",
                )
                .bind(org.as_str())
                .bind(sealed)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
        }
        let s = read_settings(&mut tx, org).await?;
        tx.commit().await?;
        Ok(s)
    }

    /// The organization's Twilio credentials, when both halves are set.
    pub async fn twilio_credentials(
        &self,
        org: &OrgId,
    ) -> Result<Option<TwilioCredentials>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let row = sqlx::query(
            "SELECT account_sid, auth_token, carrier, space, signing_key FROM twilio_credentials \
             WHERE org_id = $1",
        )
        .bind(org.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        match row {
            Some(row) => credentials_from_row(self, org, &row),
            None => Ok(None),
        }
    }
}

/// Only the session windows (one query; the messaging hot path needs nothing else).
pub(crate) async fn read_windows(
    tx: &mut crate::Tx,
    org: &OrgId,
) -> Result<OrgSettings, StoreError> {
    let mut s = OrgSettings::default();
    let row = sqlx::query(
        "SELECT session_window_seconds, business_session_window_seconds FROM org_settings \
         WHERE org_id = $1",
    )
    .bind(org.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = row {
        s.session_window_seconds = col(&row, "session_window_seconds")?;
        s.business_session_window_seconds = col(&row, "business_session_window_seconds")?;
    }
    Ok(s)
}

pub(crate) async fn read_settings(
    tx: &mut crate::Tx,
    org: &OrgId,
) -> Result<OrgSettings, StoreError> {
    let mut s = OrgSettings::default();
    let row = sqlx::query(
        "SELECT session_window_seconds, business_session_window_seconds, notification_emails, \
         help_text, notify_calls, max_concurrent_outbound_calls, recording_retention_days, \
         transfer_destinations, timezone FROM org_settings WHERE org_id = $1",
    )
    .bind(org.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = row {
        s.session_window_seconds = col(&row, "session_window_seconds")?;
        s.business_session_window_seconds = col(&row, "business_session_window_seconds")?;
        s.notification_emails = json(&row, "notification_emails")?;
        s.help_text = col(&row, "help_text")?;
        s.notify_calls = col(&row, "notify_calls")?;
        s.max_concurrent_outbound_calls = col(&row, "max_concurrent_outbound_calls")?;
        s.recording_retention_days = col(&row, "recording_retention_days")?;
        s.transfer_destinations =
            crate::rows::json_opt(&row, "transfer_destinations")?.unwrap_or_default();
        s.timezone = col(&row, "timezone")?;
    }
    let creds = sqlx::query(
        "SELECT account_sid, auth_token, carrier, space, signing_key FROM twilio_credentials \
         WHERE org_id = $1",
    )
    .bind(org.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(row) = creds {
        let sid: Option<String> = col(&row, "account_sid")?;
        let token_set = col::<Option<String>>(&row, "auth_token")?.is_some();
        s.carrier = col::<String>(&row, "carrier")
            .ok()
            .as_deref()
            .and_then(Carrier::parse)
            .unwrap_or(Carrier::Twilio);
        match s.carrier {
            Carrier::Twilio => {
                s.twilio_account_sid = sid;
                s.twilio_auth_token_set = token_set;
            }
            Carrier::SignalWire => {
                s.signalwire_project_id = sid;
                s.signalwire_api_token_set = token_set;
                s.signalwire_space = col(&row, "space")?;
                s.signalwire_signing_key_set =
                    col::<Option<String>>(&row, "signing_key")?.is_some();
            }
        }
    }
    let retell: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM retell_credentials WHERE org_id = $1")
            .bind(org.as_str())
            .fetch_one(&mut **tx)
            .await?;
    s.retell_api_key_set = retell > 0;
    Ok(s)
}
