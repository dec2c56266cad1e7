//! Secrets at rest: every credential column is sealed with the keyring (see [`crate::keyring`])
//! on write and opened on read, bound to its organization and its kind. This module holds the
//! list of those columns and the sweep that seals plaintext rows (on migration) and re-encrypts
//! rows sealed with an older key (`switchboard secrets rotate`).

use crate::keyring::{sealed_key_id, KeyError};
use crate::rows::col;
use crate::{Access, Scope, Store, StoreError};
use std::collections::BTreeMap;
use switchboard_domain::ids::OrgId;
use switchboard_domain::Secret;

/// Twilio auth tokens.
pub(crate) const TWILIO_TOKEN: &str = "twilio.auth_token";
/// SignalWire signing keys (they verify SignalWire's webhooks).
pub(crate) const SIGNALWIRE_SIGNING_KEY: &str = "signalwire.signing_key";
/// Retell API keys (they verify Retell's webhooks).
pub(crate) const RETELL_KEY: &str = "retell.api_key";
/// Webhook signing secrets (current and previous: a rotation moves one to the other).
pub(crate) const WEBHOOK_SECRET: &str = "webhook.secret";
/// A custom tool's headers (JSON pairs; the values are credentials).
pub(crate) const TOOL_HEADERS: &str = "custom_tool.headers";
/// A custom tool's signing secrets.
pub(crate) const TOOL_SECRET: &str = "custom_tool.secret";
/// An MCP server's configured authentication (JSON).
pub(crate) const MCP_AUTH: &str = "mcp.auth";
/// An MCP server's OAuth client registration (JSON; may hold a client secret).
pub(crate) const MCP_OAUTH_CLIENT: &str = "mcp.oauth_client";
/// An MCP server's OAuth access and refresh tokens (JSON).
pub(crate) const MCP_OAUTH_TOKENS: &str = "mcp.oauth_tokens";
/// An MCP OAuth flow under way (PKCE verifier, client configuration).
pub(crate) const MCP_OAUTH_FLOW: &str = "mcp.oauth_flow";

/// Whose secret a value is; part of what it is sealed to.
#[derive(Clone, Copy)]
pub(crate) enum Owner<'a> {
    /// One organization's.
    Org(&'a OrgId),
    /// The platform's own (the media-token key).
    Platform,
}

impl Owner<'_> {
    fn aad(self, purpose: &str) -> String {
        match self {
            Owner::Org(org) => format!("{}:{purpose}", org.as_str()),
            Owner::Platform => format!("platform:{purpose}"),
        }
    }
}

/// A tenant column holding a sealed secret.
struct Column {
    table: &'static str,
    key: &'static str,
    column: &'static str,
    purpose: &'static str,
}

const COLUMNS: &[Column] = &[
    Column {
        table: "twilio_credentials",
        key: "org_id",
        column: "auth_token",
        purpose: TWILIO_TOKEN,
    },
    Column {
        table: "twilio_credentials",
        key: "org_id",
        column: "signing_key",
        purpose: SIGNALWIRE_SIGNING_KEY,
    },
    Column {
        table: "retell_credentials",
        key: "org_id",
        column: "api_key",
        purpose: RETELL_KEY,
    },
    Column {
        table: "webhook_endpoints",
        key: "id",
        column: "secret",
        purpose: WEBHOOK_SECRET,
    },
    Column {
        table: "webhook_endpoints",
        key: "id",
        column: "previous_secret",
        purpose: WEBHOOK_SECRET,
    },
    Column {
        table: "custom_tools",
        key: "id",
        column: "headers",
        purpose: TOOL_HEADERS,
    },
    Column {
        table: "custom_tools",
        key: "id",
        column: "signing_secret",
        purpose: TOOL_SECRET,
    },
    Column {
        table: "custom_tools",
        key: "id",
        column: "previous_secret",
        purpose: TOOL_SECRET,
    },
    Column {
        table: "mcp_servers",
        key: "id",
        column: "auth",
        purpose: MCP_AUTH,
    },
    Column {
        table: "mcp_servers",
        key: "id",
        column: "oauth_client",
        purpose: MCP_OAUTH_CLIENT,
    },
    Column {
        table: "mcp_servers",
        key: "id",
        column: "oauth_tokens",
        purpose: MCP_OAUTH_TOKENS,
    },
    Column {
        table: "mcp_oauth_flows",
        key: "state_hash",
        column: "data",
        purpose: MCP_OAUTH_FLOW,
    },
];

/// What a sweep does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reseal {
    /// Only counts.
    Count,
    /// Seals values stored in clear (written before encryption at rest existed).
    Plaintext,
    /// Also re-encrypts every value sealed with a key other than the current one.
    All,
}

/// What a sweep found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretsReport {
    /// Sealed values by key id, after the sweep.
    pub by_key: BTreeMap<String, u64>,
    /// Values still in clear after the sweep.
    pub plaintext: u64,
    /// Values this sweep sealed or re-encrypted.
    pub resealed: u64,
    /// Values that could not be opened (unknown key or altered), left as they were.
    pub unreadable: u64,
}

fn key_error(purpose: &str, e: KeyError) -> StoreError {
    match e {
        KeyError::UnknownKey(_) | KeyError::BadKey(_) | KeyError::File { .. } => {
            StoreError::Config(e.to_string())
        }
        KeyError::Tampered | KeyError::NotSealed | KeyError::TooLarge => {
            StoreError::Corrupt(format!("{purpose}: {e}"))
        }
    }
}

impl Store {
    /// The master keys.
    pub fn keyring(&self) -> &crate::Keyring {
        &self.inner.keyring
    }

    /// Seals a secret for storage.
    pub(crate) fn seal(
        &self,
        owner: Owner<'_>,
        purpose: &str,
        plain: &str,
    ) -> Result<String, StoreError> {
        self.inner
            .keyring
            .seal(&owner.aad(purpose), plain.as_bytes())
            .map_err(|e| key_error(purpose, e))
    }

    /// Seals an optional secret.
    pub(crate) fn seal_opt(
        &self,
        owner: Owner<'_>,
        purpose: &str,
        plain: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        plain.map(|p| self.seal(owner, purpose, p)).transpose()
    }

    /// Opens a stored secret. A value in clear is refused: migration seals every one, so a
    /// clear value now was written around the store.
    pub(crate) fn unseal(
        &self,
        owner: Owner<'_>,
        purpose: &str,
        stored: &str,
    ) -> Result<Secret, StoreError> {
        let bytes = self
            .inner
            .keyring
            .open(&owner.aad(purpose), stored)
            .map_err(|e| key_error(purpose, e))?;
        String::from_utf8(bytes)
            .map(Secret::new)
            .map_err(|_| StoreError::Corrupt(format!("{purpose}: not UTF-8")))
    }

    /// Opens an optional stored secret.
    pub(crate) fn unseal_opt(
        &self,
        owner: Owner<'_>,
        purpose: &str,
        stored: Option<String>,
    ) -> Result<Option<Secret>, StoreError> {
        stored.map(|s| self.unseal(owner, purpose, &s)).transpose()
    }

    /// Counts, seals or re-encrypts every stored secret (see [`Reseal`]), one organization
    /// per transaction. A value changed by a request meanwhile is left to that request (its
    /// write sealed it with the current key already).
    pub async fn reseal_secrets(&self, mode: Reseal) -> Result<SecretsReport, StoreError> {
        let mut report = SecretsReport::default();
        let orgs: Vec<String> = {
            let mut tx = self.begin(Scope::Platform, Access::Read).await?;
            let ids = sqlx::query_scalar("SELECT id FROM organizations ORDER BY id")
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            ids
        };
        for org in orgs {
            let org = OrgId::from_db(org);
            let mut tx = self.begin(Scope::Org(&org), Access::Write).await?;
            for c in COLUMNS {
                let sql = format!(
                    "SELECT {key} AS k, {column} AS v FROM {table} \
                     WHERE org_id = $1 AND {column} IS NOT NULL",
                    key = c.key,
                    column = c.column,
                    table = c.table
                );
                let rows = sqlx::query(&sql)
                    .bind(org.as_str())
                    .fetch_all(&mut *tx)
                    .await?;
                for row in rows {
                    let key: String = col(&row, "k")?;
                    let stored: String = col(&row, "v")?;
                    let Some(fresh) =
                        self.resealed(Owner::Org(&org), c.purpose, &stored, mode, &mut report)
                    else {
                        continue;
                    };
                    let update = format!(
                        "UPDATE {table} SET {column} = $1 \
                         WHERE org_id = $2 AND {key} = $3 AND {column} = $4",
                        key = c.key,
                        column = c.column,
                        table = c.table
                    );
                    sqlx::query(&update)
                        .bind(&fresh)
                        .bind(org.as_str())
                        .bind(&key)
                        .bind(&stored)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
        }
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        let rows = sqlx::query("SELECT name, value FROM platform_secrets")
            .fetch_all(&mut *tx)
            .await?;
        for row in rows {
            let name: String = col(&row, "name")?;
            let stored: String = col(&row, "value")?;
            let purpose = platform_purpose(&name);
            let Some(fresh) = self.resealed(Owner::Platform, &purpose, &stored, mode, &mut report)
            else {
                continue;
            };
            sqlx::query("UPDATE platform_secrets SET value = $1 WHERE name = $2 AND value = $3")
                .bind(&fresh)
                .bind(&name)
                .bind(&stored)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if report.resealed > 0 {
            tracing::info!(
                resealed = report.resealed,
                key = %self.inner.keyring.current_id(),
                "secrets encrypted with the current master key"
            );
        }
        Ok(report)
    }

    /// The new stored form of one value under `mode`, if it needs one; counts it either way.
    fn resealed(
        &self,
        owner: Owner<'_>,
        purpose: &str,
        stored: &str,
        mode: Reseal,
        report: &mut SecretsReport,
    ) -> Option<String> {
        let current = self.inner.keyring.current_id();
        let id = sealed_key_id(stored);
        let needed = match (mode, id) {
            (Reseal::Count, _) => false,
            (_, None) => true,
            (Reseal::All, Some(id)) => id != current,
            (Reseal::Plaintext, Some(_)) => false,
        };
        let keep = |report: &mut SecretsReport| match id {
            Some(id) => *report.by_key.entry(id.to_owned()).or_default() += 1,
            None => report.plaintext += 1,
        };
        if !needed {
            keep(report);
            return None;
        }
        let plain = match id {
            None => stored.to_owned(),
            Some(_) => match self.unseal(owner, purpose, stored) {
                Ok(s) => s.expose().to_owned(),
                Err(e) => {
                    tracing::warn!(purpose, error = %e, "a stored secret cannot be re-encrypted");
                    report.unreadable += 1;
                    keep(report);
                    return None;
                }
            },
        };
        match self.seal(owner, purpose, &plain) {
            Ok(fresh) => {
                report.resealed += 1;
                *report.by_key.entry(current).or_default() += 1;
                Some(fresh)
            }
            Err(e) => {
                tracing::warn!(purpose, error = %e, "a stored secret cannot be encrypted");
                report.unreadable += 1;
                keep(report);
                None
            }
        }
    }
}

/// What a platform secret is sealed to: its name.
pub(crate) fn platform_purpose(name: &str) -> String {
    format!("platform_secret.{name}")
}
