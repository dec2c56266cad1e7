//! OAuth clients, authorization codes and tokens for the MCP server. Codes, secrets and
//! tokens arrive here already hashed.

use crate::rows::{col, json, parsed, ts};
use crate::{Access, Scope, Store, StoreError};
use switchboard_domain::ids::OrgId;
use switchboard_domain::oauth::{ClientAuth, OAuthClient};
use switchboard_domain::values::OrgStatus;
use switchboard_domain::Timestamp;

/// What an authorization code (or a refresh token) grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthGrant {
    /// The client it was issued to.
    pub client_id: String,
    /// The organization the consenting admin chose.
    pub org_id: OrgId,
    /// The consenting admin.
    pub user_id: String,
    /// Granted scope.
    pub scope: String,
    /// The resource (the `/mcp` URL) the tokens are for.
    pub resource: String,
    /// Tokens of one consent share a family.
    pub family_id: String,
}

/// An authorization code as stored.
#[derive(Debug, Clone)]
pub struct OAuthCode {
    /// What it grants.
    pub grant: OAuthGrant,
    /// The redirect URI it was issued for.
    pub redirect_uri: String,
    /// The PKCE challenge (S256).
    pub code_challenge: String,
}

/// What a refresh attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// Valid: it is now revoked; issue the next pair.
    Granted(OAuthGrant),
    /// Already used or revoked: the whole family has been revoked (a stolen token replayed).
    Replayed,
    /// Unknown, expired, or another client's.
    Invalid,
}

/// A valid access token's principal.
#[derive(Debug, Clone)]
pub struct OAuthPrincipal {
    /// The organization.
    pub org_id: OrgId,
    /// Whether it is active.
    pub org_status: OrgStatus,
    /// The client.
    pub client_id: String,
    /// The consenting admin.
    pub user_id: String,
}

/// A token pair to store.
#[derive(Debug, Clone)]
pub struct IssuedTokens<'a> {
    /// SHA-256 of the access token.
    pub access_hash: &'a str,
    /// SHA-256 of the refresh token.
    pub refresh_hash: &'a str,
    /// Access token expiry.
    pub access_expires_at: Timestamp,
    /// Refresh token expiry.
    pub refresh_expires_at: Timestamp,
}

impl Store {
    /// Stores a registered client.
    pub async fn register_oauth_client(&self, c: &OAuthClient) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        sqlx::query(
            "INSERT INTO oauth_clients (id, name, redirect_uris, token_endpoint_auth_method, \
             secret_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(crate::rows::to_json(&c.redirect_uris)?)
        .bind(c.auth.as_str())
        .bind(c.secret_hash.clone())
        .bind(c.created_at.millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A registered client.
    pub async fn oauth_client(&self, id: &str) -> Result<Option<OAuthClient>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let row = sqlx::query(
            "SELECT id, name, redirect_uris, token_endpoint_auth_method, secret_hash, created_at \
             FROM oauth_clients WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(|r| {
            Ok(OAuthClient {
                id: col(&r, "id")?,
                name: col(&r, "name")?,
                redirect_uris: json(&r, "redirect_uris")?,
                auth: parsed(&r, "token_endpoint_auth_method", ClientAuth::parse)?,
                secret_hash: col(&r, "secret_hash")?,
                created_at: ts(&r, "created_at")?,
            })
        })
        .transpose()
    }

    /// Stores an authorization code (hashed) for a consent.
    pub async fn create_oauth_code(
        &self,
        code_hash: &str,
        code: &OAuthCode,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        sqlx::query(
            "INSERT INTO oauth_codes (code_hash, client_id, org_id, user_id, redirect_uri, \
             code_challenge, scope, resource, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(code_hash)
        .bind(&code.grant.client_id)
        .bind(code.grant.org_id.as_str())
        .bind(&code.grant.user_id)
        .bind(&code.redirect_uri)
        .bind(&code.code_challenge)
        .bind(&code.grant.scope)
        .bind(&code.grant.resource)
        .bind(expires_at.millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes an unexpired, unused code: it is marked used whatever the caller decides next,
    /// so it never works twice. `None` when it is unknown, expired or already used (then the
    /// tokens issued from it are revoked, as RFC 6749 §4.1.2 advises).
    pub async fn take_oauth_code(
        &self,
        code_hash: &str,
        now: Timestamp,
    ) -> Result<Option<OAuthCode>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        let row = sqlx::query(&format!(
            "SELECT client_id, org_id, user_id, redirect_uri, code_challenge, scope, resource, \
             expires_at, used_at FROM oauth_codes WHERE code_hash = $1{}",
            self.for_update()
        ))
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        let used: Option<i64> = col(&r, "used_at")?;
        let expires: i64 = col(&r, "expires_at")?;
        if used.is_some() {
            sqlx::query("UPDATE oauth_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
                .bind(now.millis())
                .bind(code_hash)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(None);
        }
        sqlx::query("UPDATE oauth_codes SET used_at = $1 WHERE code_hash = $2")
            .bind(now.millis())
            .bind(code_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if expires <= now.millis() {
            return Ok(None);
        }
        Ok(Some(OAuthCode {
            grant: OAuthGrant {
                client_id: col(&r, "client_id")?,
                org_id: OrgId::from_db(col(&r, "org_id")?),
                user_id: col(&r, "user_id")?,
                scope: col(&r, "scope")?,
                resource: col(&r, "resource")?,
                // The code's hash names the family, so a replayed code can revoke it.
                family_id: code_hash.to_owned(),
            },
            redirect_uri: col(&r, "redirect_uri")?,
            code_challenge: col(&r, "code_challenge")?,
        }))
    }

    /// Stores an access and a refresh token (hashed) for `grant`.
    pub async fn issue_oauth_tokens(
        &self,
        grant: &OAuthGrant,
        t: &IssuedTokens<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        for (hash, kind, expires) in [
            (t.access_hash, "access", t.access_expires_at),
            (t.refresh_hash, "refresh", t.refresh_expires_at),
        ] {
            sqlx::query(
                "INSERT INTO oauth_tokens (token_hash, kind, client_id, org_id, user_id, \
                 family_id, scope, resource, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(hash)
            .bind(kind)
            .bind(&grant.client_id)
            .bind(grant.org_id.as_str())
            .bind(&grant.user_id)
            .bind(&grant.family_id)
            .bind(&grant.scope)
            .bind(&grant.resource)
            .bind(expires.millis())
            .bind(now.millis())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Uses a refresh token of `client_id` once (see [`Refresh`]).
    pub async fn use_refresh_token(
        &self,
        hash: &str,
        client_id: &str,
        now: Timestamp,
    ) -> Result<Refresh, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        let row = sqlx::query(&format!(
            "SELECT client_id, org_id, user_id, family_id, scope, resource, expires_at, \
             revoked_at FROM oauth_tokens WHERE token_hash = $1 AND kind = 'refresh'{}",
            self.for_update()
        ))
        .bind(hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else {
            tx.commit().await?;
            return Ok(Refresh::Invalid);
        };
        let family: String = col(&r, "family_id")?;
        let owner: String = col(&r, "client_id")?;
        if owner != client_id {
            tx.commit().await?;
            return Ok(Refresh::Invalid);
        }
        if col::<Option<i64>>(&r, "revoked_at")?.is_some() {
            sqlx::query("UPDATE oauth_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
                .bind(now.millis())
                .bind(&family)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Refresh::Replayed);
        }
        if col::<i64>(&r, "expires_at")? <= now.millis() {
            tx.commit().await?;
            return Ok(Refresh::Invalid);
        }
        sqlx::query("UPDATE oauth_tokens SET revoked_at = $1 WHERE token_hash = $2")
            .bind(now.millis())
            .bind(hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Refresh::Granted(OAuthGrant {
            client_id: owner,
            org_id: OrgId::from_db(col(&r, "org_id")?),
            user_id: col(&r, "user_id")?,
            scope: col(&r, "scope")?,
            resource: col(&r, "resource")?,
            family_id: family,
        }))
    }

    /// The principal of a valid access token.
    pub async fn authenticate_oauth_token(
        &self,
        hash: &str,
        now: Timestamp,
    ) -> Result<Option<OAuthPrincipal>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let row = sqlx::query(
            "SELECT t.org_id, t.client_id, t.user_id, o.status FROM oauth_tokens t \
             JOIN organizations o ON o.id = t.org_id \
             WHERE t.token_hash = $1 AND t.kind = 'access' AND t.revoked_at IS NULL \
             AND t.expires_at > $2",
        )
        .bind(hash)
        .bind(now.millis())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(|r| {
            Ok(OAuthPrincipal {
                org_id: OrgId::from_db(col(&r, "org_id")?),
                org_status: parsed(&r, "status", OrgStatus::parse)?,
                client_id: col(&r, "client_id")?,
                user_id: col(&r, "user_id")?,
            })
        })
        .transpose()
    }

    /// Revokes a token of `client_id` (RFC 7009); a refresh token takes its family with it.
    /// Unknown tokens are ignored.
    pub async fn revoke_oauth_token(
        &self,
        hash: &str,
        client_id: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT kind, family_id FROM oauth_tokens WHERE token_hash = $1 AND client_id = $2",
        )
        .bind(hash)
        .bind(client_id)
        .fetch_optional(&mut *tx)
        .await?;
        match row {
            Some((kind, family)) if kind == "refresh" => {
                sqlx::query("UPDATE oauth_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
                    .bind(now.millis())
                    .bind(family)
                    .execute(&mut *tx)
                    .await?;
            }
            Some(_) => {
                sqlx::query("UPDATE oauth_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
                    .bind(now.millis())
                    .bind(hash)
                    .execute(&mut *tx)
                    .await?;
            }
            None => {}
        }
        tx.commit().await?;
        Ok(())
    }
}

/// An application connected to the MCP server by an admin's consent.
#[derive(Debug, Clone)]
pub struct ConnectedApp {
    /// The consent (its tokens' family).
    pub family_id: String,
    /// The client.
    pub client_id: String,
    /// Its registered name.
    pub client_name: String,
    /// Who consented.
    pub user_id: String,
    /// When tokens were first issued.
    pub connected_at: Timestamp,
    /// When tokens were last issued (a refresh).
    pub last_refreshed_at: Timestamp,
}

impl Store {
    /// The organization's consents that still have a usable refresh token, newest first.
    pub async fn connected_apps(
        &self,
        org: &OrgId,
        now: Timestamp,
    ) -> Result<Vec<ConnectedApp>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let rows = sqlx::query(
            "SELECT t.family_id, t.client_id, c.name, MIN(t.user_id) AS user_id, \
             MIN(t.created_at) AS first_at, MAX(t.created_at) AS last_at \
             FROM oauth_tokens t JOIN oauth_clients c ON c.id = t.client_id \
             WHERE t.org_id = $1 GROUP BY t.family_id, t.client_id, c.name \
             HAVING SUM(CASE WHEN t.kind = 'refresh' AND t.revoked_at IS NULL \
             AND t.expires_at > $2 THEN 1 ELSE 0 END) > 0 \
             ORDER BY last_at DESC LIMIT 200",
        )
        .bind(org.as_str())
        .bind(now.millis())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(ConnectedApp {
                    family_id: col(r, "family_id")?,
                    client_id: col(r, "client_id")?,
                    client_name: col(r, "name")?,
                    user_id: col(r, "user_id")?,
                    connected_at: ts(r, "first_at")?,
                    last_refreshed_at: ts(r, "last_at")?,
                })
            })
            .collect()
    }

    /// Disconnects an application: every token of the consent `family_id` of `org` is
    /// revoked. `NotFound` when the organization has no such consent.
    pub async fn disconnect_app(
        &self,
        org: &OrgId,
        family_id: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        let done = sqlx::query(
            "UPDATE oauth_tokens SET revoked_at = $1 \
             WHERE org_id = $2 AND family_id = $3 AND revoked_at IS NULL",
        )
        .bind(now.millis())
        .bind(org.as_str())
        .bind(family_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
