//! The team: invitations and password resets (single-use links, stored as hashes), role
//! changes and removals, password changes, and the audit trail each of them writes in the
//! same transaction.

use crate::accounts::user_from_row;
use crate::audit::audit;
use crate::rows::{col, parsed, ts, ts_opt};
use crate::{conflict_on_unique, Access, Scope, Store, StoreError};
use sqlx::any::AnyRow;
use switchboard_domain::auth::hash_api_key;
use switchboard_domain::entities::User;
use switchboard_domain::ids::{random_token, OrgId, UserId};
use switchboard_domain::team::{
    Actor, LinkProblem, TokenKind, UserToken, INVITE_TTL_MS, RESET_TTL_MS,
};
use switchboard_domain::values::{validate_email, Role};
use switchboard_domain::{Secret, Timestamp, ValidationError};

const TOKEN_COLUMNS: &str =
    "id, org_id, kind, email, role, user_id, created_at, expires_at, used_at, revoked_at";

fn token_from_row(row: &AnyRow) -> Result<UserToken, StoreError> {
    let role: Option<String> = col(row, "role")?;
    let user: Option<String> = col(row, "user_id")?;
    Ok(UserToken {
        id: col(row, "id")?,
        org_id: OrgId::from_db(col(row, "org_id")?),
        kind: parsed(row, "kind", TokenKind::parse)?,
        email: col(row, "email")?,
        role: role
            .map(|r| Role::parse(&r).ok_or_else(|| StoreError::Corrupt(format!("role {r}"))))
            .transpose()?,
        user_id: user.map(UserId::from_db),
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
        used_at: ts_opt(row, "used_at")?,
        revoked_at: ts_opt(row, "revoked_at")?,
    })
}

/// A new link's secret and the row that stores its hash.
async fn insert_token(
    tx: &mut crate::Tx,
    t: &UserToken,
    created_by: &Actor,
) -> Result<Secret, StoreError> {
    let secret = random_token(43);
    sqlx::query(
        "INSERT INTO user_tokens (id, org_id, kind, email, role, user_id, token_hash, created_by, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(t.id.as_str())
    .bind(t.org_id.as_str())
    .bind(t.kind.as_str())
    .bind(t.email.as_str())
    .bind(t.role.map(Role::as_str))
    .bind(t.user_id.as_ref().map(UserId::as_str))
    .bind(hash_api_key(&secret))
    .bind(created_by.label.as_str())
    .bind(t.created_at.millis())
    .bind(t.expires_at.millis())
    .execute(&mut **tx)
    .await?;
    Ok(Secret::new(secret))
}

/// Marks a link used, if it still may be; `false` when another request used it first.
async fn consume(tx: &mut crate::Tx, id: &str, now: Timestamp) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE user_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL \
         AND revoked_at IS NULL AND expires_at > $3",
    )
    .bind(now.millis())
    .bind(id)
    .bind(now.millis())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets a login's password hash and ends its sessions (all, or all but `keep`).
async fn set_password_hash(
    tx: &mut crate::Tx,
    user: &User,
    password_hash: &str,
    keep: Option<&str>,
) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND org_id = $3")
        .bind(password_hash)
        .bind(user.id.as_str())
        .bind(user.org_id.as_str())
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound);
    }
    sqlx::query("DELETE FROM dashboard_sessions WHERE user_id = $1 AND token_hash <> $2")
        .bind(user.id.as_str())
        .bind(keep.unwrap_or(""))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The admins (and operators) of an organization other than `except`.
async fn other_managers(
    tx: &mut crate::Tx,
    org: &OrgId,
    except: &UserId,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE org_id = $1 AND id <> $2 \
         AND role IN ('admin', 'operator')",
    )
    .bind(org.as_str())
    .bind(except.as_str())
    .fetch_one(&mut **tx)
    .await?)
}

async fn user_in(tx: &mut crate::Tx, org: &OrgId, id: &UserId) -> Result<User, StoreError> {
    let row = sqlx::query(
        "SELECT id, org_id, email, role, created_at FROM users WHERE id = $1 AND org_id = $2",
    )
    .bind(id.as_str())
    .bind(org.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound)?;
    user_from_row(&row)
}

impl Store {
    /// Invites `email` to join `org` as `role`: a link that works once, for a week. An earlier
    /// open invitation of the same e-mail is withdrawn. `Conflict` when a login with that
    /// e-mail already exists (e-mails are unique across the platform).
    pub async fn create_invite(
        &self,
        org: &OrgId,
        email: &str,
        role: Role,
        by: &Actor,
        now: Timestamp,
    ) -> Result<(UserToken, Secret), StoreError> {
        validate_email(email).map_err(|m| ValidationError::new("email", m))?;
        let email = email.trim().to_lowercase();
        if self.find_login(&email).await?.is_some() {
            return Err(StoreError::Conflict(
                "a login with this e-mail already exists".into(),
            ));
        }
        let token = UserToken {
            id: format!("tok_{}", random_token(20)),
            org_id: org.clone(),
            kind: TokenKind::Invite,
            email: email.clone(),
            role: Some(role),
            user_id: None,
            created_at: now,
            expires_at: Timestamp::from_millis(now.millis() + INVITE_TTL_MS),
            used_at: None,
            revoked_at: None,
        };
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        crate::accounts::ensure_org_exists(&mut tx, org).await?;
        sqlx::query(
            "UPDATE user_tokens SET revoked_at = $1 WHERE org_id = $2 AND kind = 'invite' \
             AND email = $3 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now.millis())
        .bind(org.as_str())
        .bind(email.as_str())
        .execute(&mut *tx)
        .await?;
        let secret = insert_token(&mut tx, &token, by).await?;
        audit(
            &mut tx,
            org,
            by,
            "user.invited",
            &email,
            Some(role.as_str()),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok((token, secret))
    }

    /// The organization's invitations not used or withdrawn (expired ones too), newest first.
    pub async fn open_invites(&self, org: &OrgId) -> Result<Vec<UserToken>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM user_tokens WHERE org_id = $1 AND kind = 'invite' \
             AND used_at IS NULL AND revoked_at IS NULL ORDER BY created_at DESC, id LIMIT 200"
        ))
        .bind(org.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(token_from_row).collect()
    }

    /// Withdraws an open invitation.
    pub async fn revoke_invite(
        &self,
        org: &OrgId,
        id: &str,
        by: &Actor,
        now: Timestamp,
    ) -> Result<UserToken, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let row = sqlx::query(&format!(
            "UPDATE user_tokens SET revoked_at = $1 WHERE id = $2 AND org_id = $3 \
             AND kind = 'invite' AND used_at IS NULL AND revoked_at IS NULL \
             RETURNING {TOKEN_COLUMNS}"
        ))
        .bind(now.millis())
        .bind(id)
        .bind(org.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let token = token_from_row(&row)?;
        audit(
            &mut tx,
            org,
            by,
            "user.invite_revoked",
            &token.email,
            None,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The invitation or reset a link's secret opens (before any organization is known).
    pub async fn user_token(&self, secret: &str) -> Result<Option<UserToken>, LinkLookupError> {
        if secret.is_empty() || secret.len() > 100 {
            return Ok(None);
        }
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let row = sqlx::query(self.lookup(
            "SELECT * FROM sb_user_token($1)",
            "SELECT t.id, t.org_id, t.kind, t.email, t.role, t.user_id, t.created_at, \
             t.expires_at, t.used_at, t.revoked_at, o.status AS org_status \
             FROM user_tokens t JOIN organizations o ON o.id = t.org_id WHERE t.token_hash = $1",
        ))
        .bind(hash_api_key(secret))
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let status: String = col(&row, "org_status")?;
        if status != "active" {
            return Err(LinkLookupError::Link(LinkProblem::Disabled));
        }
        Ok(Some(token_from_row(&row)?))
    }

    /// Opens a link for `kind`, or says why it does not work.
    async fn usable_token(
        &self,
        secret: &str,
        kind: TokenKind,
        now: Timestamp,
    ) -> Result<UserToken, LinkLookupError> {
        let t = self
            .user_token(secret)
            .await?
            .ok_or(LinkLookupError::Link(LinkProblem::Unknown))?;
        t.usable(kind, now).map_err(LinkLookupError::Link)?;
        Ok(t)
    }

    /// Accepts an invitation: creates the login with the invited role and the chosen
    /// password (its argon2 hash), and uses up the link.
    pub async fn accept_invite(
        &self,
        secret: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<User, LinkLookupError> {
        let t = self.usable_token(secret, TokenKind::Invite, now).await?;
        let role = t.role.unwrap_or(Role::Member);
        let mut tx = self.begin(Scope::Org(&t.org_id), Access::Write).await?;
        if !consume(&mut tx, &t.id, now).await? {
            return Err(LinkLookupError::Link(LinkProblem::Used));
        }
        let user = User {
            id: UserId::generate(),
            org_id: t.org_id.clone(),
            email: t.email.clone(),
            role,
            created_at: now,
        };
        sqlx::query(
            "INSERT INTO users (id, org_id, email, password_hash, role, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(user.id.as_str())
        .bind(user.org_id.as_str())
        .bind(user.email.as_str())
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now.millis())
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique(
            "a login with this e-mail already exists",
        ))?;
        let actor = Actor::user(&user.id, &user.email);
        audit(
            &mut tx,
            &t.org_id,
            &actor,
            "user.joined",
            &user.email,
            Some(role.as_str()),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Makes a password-reset link (an hour) for the login with this e-mail; `None` when
    /// there is none (the caller answers the same either way). Earlier open resets of the
    /// login are withdrawn.
    pub async fn request_password_reset(
        &self,
        email: &str,
        now: Timestamp,
    ) -> Result<Option<(User, Secret)>, StoreError> {
        let email = email.trim().to_lowercase();
        let Some((user, _)) = self.find_login(&email).await? else {
            return Ok(None);
        };
        let token = UserToken {
            id: format!("tok_{}", random_token(20)),
            org_id: user.org_id.clone(),
            kind: TokenKind::Reset,
            email: user.email.clone(),
            role: None,
            user_id: Some(user.id.clone()),
            created_at: now,
            expires_at: Timestamp::from_millis(now.millis() + RESET_TTL_MS),
            used_at: None,
            revoked_at: None,
        };
        let actor = Actor::user(&user.id, &user.email);
        let mut tx = self.begin(Scope::Org(&user.org_id), Access::Write).await?;
        sqlx::query(
            "UPDATE user_tokens SET revoked_at = $1 WHERE org_id = $2 AND kind = 'reset' \
             AND user_id = $3 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now.millis())
        .bind(user.org_id.as_str())
        .bind(user.id.as_str())
        .execute(&mut *tx)
        .await?;
        let secret = insert_token(&mut tx, &token, &actor).await?;
        audit(
            &mut tx,
            &user.org_id,
            &actor,
            "user.password_reset_requested",
            &user.email,
            None,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some((user, secret)))
    }

    /// Sets a new password through a reset link, uses up the link, and signs the login out
    /// everywhere.
    pub async fn reset_password(
        &self,
        secret: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<User, LinkLookupError> {
        let t = self.usable_token(secret, TokenKind::Reset, now).await?;
        let user_id = t
            .user_id
            .clone()
            .ok_or(LinkLookupError::Link(LinkProblem::Unknown))?;
        let mut tx = self.begin(Scope::Org(&t.org_id), Access::Write).await?;
        if !consume(&mut tx, &t.id, now).await? {
            return Err(LinkLookupError::Link(LinkProblem::Used));
        }
        let user = user_in(&mut tx, &t.org_id, &user_id).await?;
        set_password_hash(&mut tx, &user, password_hash, None).await?;
        let actor = Actor::user(&user.id, &user.email);
        audit(
            &mut tx,
            &t.org_id,
            &actor,
            "user.password_reset",
            &user.email,
            Some("with an e-mailed link"),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// A signed-in user's new password: every other session of the login ends (`keep` is the
    /// SHA-256 of the session that made the change).
    pub async fn change_password(
        &self,
        user: &User,
        password_hash: &str,
        keep: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(&user.org_id), Access::Write).await?;
        set_password_hash(&mut tx, user, password_hash, Some(keep)).await?;
        let actor = Actor::user(&user.id, &user.email);
        audit(
            &mut tx,
            &user.org_id,
            &actor,
            "user.password_changed",
            &user.email,
            None,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets the password of the login with this e-mail (the command line's reset) and signs
    /// it out everywhere. `NotFound` when there is no such login.
    pub async fn set_password_by_email(
        &self,
        email: &str,
        password_hash: &str,
        by: &Actor,
        now: Timestamp,
    ) -> Result<User, StoreError> {
        let (user, _) = self
            .find_login(&email.trim().to_lowercase())
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut tx = self.begin(Scope::Org(&user.org_id), Access::Write).await?;
        set_password_hash(&mut tx, &user, password_hash, None).await?;
        audit(
            &mut tx,
            &user.org_id,
            by,
            "user.password_reset",
            &user.email,
            Some("set on the command line"),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Changes a login's role. `Conflict` when the organization would be left without an
    /// admin.
    pub async fn set_user_role(
        &self,
        org: &OrgId,
        id: &UserId,
        role: Role,
        by: &Actor,
        now: Timestamp,
    ) -> Result<User, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let user = user_in(&mut tx, org, id).await?;
        if user.role == role {
            tx.commit().await?;
            return Ok(user);
        }
        if role == Role::Member && other_managers(&mut tx, org, id).await? == 0 {
            return Err(StoreError::Conflict(
                "this is the organization's only admin; make someone else an admin first".into(),
            ));
        }
        sqlx::query("UPDATE users SET role = $1 WHERE id = $2 AND org_id = $3")
            .bind(role.as_str())
            .bind(id.as_str())
            .bind(org.as_str())
            .execute(&mut *tx)
            .await?;
        let detail = format!("{} -> {}", user.role.as_str(), role.as_str());
        audit(
            &mut tx,
            org,
            by,
            "user.role_changed",
            &user.email,
            Some(&detail),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(User { role, ..user })
    }

    /// Removes a login (its sessions end with it). `Conflict` for the organization's only
    /// admin.
    pub async fn remove_user(
        &self,
        org: &OrgId,
        id: &UserId,
        by: &Actor,
        now: Timestamp,
    ) -> Result<User, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let user = user_in(&mut tx, org, id).await?;
        if user.role != Role::Member && other_managers(&mut tx, org, id).await? == 0 {
            return Err(StoreError::Conflict(
                "this is the organization's only admin; make someone else an admin first".into(),
            ));
        }
        sqlx::query("DELETE FROM dashboard_sessions WHERE user_id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM users WHERE id = $1 AND org_id = $2")
            .bind(id.as_str())
            .bind(org.as_str())
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            org,
            by,
            "user.removed",
            &user.email,
            Some(user.role.as_str()),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }
}

/// Why a link could not be used: the link itself (shown to the person), or the store.
#[derive(Debug, thiserror::Error)]
pub enum LinkLookupError {
    /// The link does not work.
    #[error("{}", .0.message())]
    Link(LinkProblem),
    /// The store failed (or the e-mail is taken: `Conflict`).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for LinkLookupError {
    fn from(e: sqlx::Error) -> Self {
        LinkLookupError::Store(e.into())
    }
}
