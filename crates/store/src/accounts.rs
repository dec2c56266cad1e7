//! Organizations, operator keys, organization API keys, dashboard users, and the first-start
//! bootstrap.

use crate::rows::{col, into_page, page_size, parsed, ts, ts_opt, Newest, Sql};
use crate::{conflict_on_unique, Access, Scope, Store, StoreError};
use sqlx::any::AnyRow;
use switchboard_domain::auth::{hash_password, mint_api_key, MintedKey};
use switchboard_domain::entities::{
    validate_org_name, ApiKey, Cursor, KeyPrincipal, Organization, Page, User,
};
use switchboard_domain::ids::{ApiKeyId, OrgId, UserId};
use switchboard_domain::values::{require_text, validate_email, OrgStatus, Role};
use switchboard_domain::{Secret, Timestamp, ValidationError};

/// What the first start of an empty installation creates.
#[derive(Debug)]
pub struct BootstrapInput {
    /// Name of the first organization.
    pub org_name: String,
    /// E-mail of the operator login.
    pub admin_email: String,
}

/// What the first start created; secrets are shown once and never stored in clear.
#[derive(Debug)]
pub struct Bootstrap {
    /// The first organization.
    pub org: Organization,
    /// The operator login.
    pub admin: User,
    /// The operator login's generated password.
    pub admin_password: Secret,
    /// An API key for the first organization.
    pub org_key: Secret,
    /// An operator API key (manages organizations).
    pub operator_key: Secret,
}

fn org_from_row(row: &AnyRow) -> Result<Organization, StoreError> {
    Ok(Organization {
        id: OrgId::from_db(col(row, "id")?),
        name: col(row, "name")?,
        status: parsed(row, "status", OrgStatus::parse)?,
        created_at: ts(row, "created_at")?,
    })
}

fn key_from_row(row: &AnyRow) -> Result<ApiKey, StoreError> {
    Ok(ApiKey {
        id: ApiKeyId::from_db(col(row, "id")?),
        name: col(row, "name")?,
        prefix: col(row, "prefix")?,
        created_at: ts(row, "created_at")?,
        last_used_at: ts_opt(row, "last_used_at")?,
        revoked_at: ts_opt(row, "revoked_at")?,
    })
}

pub(crate) fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: UserId::from_db(col(row, "id")?),
        org_id: OrgId::from_db(col(row, "org_id")?),
        email: col(row, "email")?,
        role: parsed(row, "role", Role::parse)?,
        created_at: ts(row, "created_at")?,
    })
}

/// Minimum interval between `last_used_at` writes for one key.
const TOUCH_INTERVAL_MS: i64 = 60_000;

impl Store {
    // ---- platform: organizations and operator keys ----

    /// Creates an organization.
    pub async fn create_org(&self, name: &str) -> Result<Organization, StoreError> {
        validate_org_name(name)?;
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        let org = insert_org(&mut tx, name).await?;
        tx.commit().await?;
        Ok(org)
    }

    /// Lists organizations, newest first.
    pub async fn list_orgs(
        &self,
        limit: Option<u32>,
        cursor: Option<&Cursor>,
    ) -> Result<Page<Organization>, StoreError> {
        let limit = page_size(limit);
        let mut sql =
            Sql::new("SELECT id, name, status, created_at FROM organizations WHERE 1 = 1");
        sql.before_cursor("created_at", cursor)?;
        sql.newest_first("created_at", limit)?;
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let rows = sql.query().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let orgs = rows
            .iter()
            .map(org_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(into_page(orgs, limit, |o| Cursor {
            at: o.created_at.millis(),
            id: o.id.to_string(),
        }))
    }

    /// Every organization id (for platform checks such as `doctor`).
    pub async fn all_org_ids(&self) -> Result<Vec<OrgId>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM organizations ORDER BY created_at")
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(ids.into_iter().map(OrgId::from_db).collect())
    }

    /// One organization.
    pub async fn get_org(&self, id: &OrgId) -> Result<Organization, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let row =
            sqlx::query("SELECT id, name, status, created_at FROM organizations WHERE id = $1")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        row.as_ref()
            .map(org_from_row)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    /// Enables or disables an organization; a disabled one's keys stop working and its
    /// numbers are refused.
    pub async fn set_org_status(
        &self,
        id: &OrgId,
        status: OrgStatus,
    ) -> Result<Organization, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        let done = sqlx::query("UPDATE organizations SET status = $1 WHERE id = $2")
            .bind(status.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_org(id).await
    }

    /// Number of organizations.
    pub async fn count_orgs(&self) -> Result<i64, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM organizations")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Creates an operator key; returns the key once.
    pub async fn create_operator_key(&self, name: &str) -> Result<Secret, StoreError> {
        require_text("name", name, 200)?;
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        let minted = insert_operator_key(&mut tx, name).await?;
        tx.commit().await?;
        Ok(minted.key)
    }

    /// Whether `hash` is a live operator key.
    pub async fn authenticate_operator_key(&self, hash: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM operator_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Creates the first organization, operator login and keys, once. Returns `None` when
    /// the installation already has an organization (another instance may have won the race).
    pub async fn bootstrap(&self, input: &BootstrapInput) -> Result<Option<Bootstrap>, StoreError> {
        validate_org_name(&input.org_name)?;
        validate_email(&input.admin_email).map_err(|m| ValidationError::new("admin_email", m))?;
        let password = switchboard_domain::auth::generate_password();
        let password_hash =
            hash_password(&password).map_err(|e| StoreError::Corrupt(format!("argon2: {e}")))?;
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        if self.backend() == crate::Backend::Postgres {
            // Serialise concurrent first starts of several instances.
            sqlx::query("SELECT pg_advisory_xact_lock(7355608)")
                .execute(&mut *tx)
                .await?;
        }
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM organizations")
            .fetch_one(&mut *tx)
            .await?;
        if existing > 0 {
            tx.commit().await?;
            return Ok(None);
        }
        let org = insert_org(&mut tx, &input.org_name).await?;
        let operator = insert_operator_key(&mut tx, "first-start operator key").await?;
        // The same transaction continues inside the new organization (tenant rows follow).
        self.apply_scope(&mut tx, Scope::Org(&org.id)).await?;
        let org_key = insert_api_key(&mut tx, &org.id, "first-start key").await?;
        let admin = insert_user(
            &mut tx,
            &org.id,
            &input.admin_email,
            &password_hash,
            Role::Operator,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(Bootstrap {
            org,
            admin,
            admin_password: password,
            org_key: org_key.1.key,
            operator_key: operator.key,
        }))
    }

    // ---- tenant: API keys ----

    /// Resolves an organization API key by its hash. Runs before the organization is known,
    /// so it uses the narrow look-up scope.
    pub async fn authenticate_api_key(
        &self,
        hash: &str,
    ) -> Result<Option<KeyPrincipal>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let row = sqlx::query(self.lookup(
            "SELECT * FROM sb_authenticate_api_key($1)",
            "SELECT k.id, k.org_id, k.last_used_at, o.status FROM api_keys k \
             JOIN organizations o ON o.id = k.org_id \
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
        ))
        .bind(hash)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(|row| {
            Ok(KeyPrincipal {
                key_id: ApiKeyId::from_db(col(&row, "id")?),
                org_id: OrgId::from_db(col(&row, "org_id")?),
                last_used_at: ts_opt(&row, "last_used_at")?,
                org_status: parsed(&row, "status", OrgStatus::parse)?,
            })
        })
        .transpose()
    }

    /// Records that a key was used, at most once a minute per key.
    pub async fn touch_api_key(
        &self,
        org: &OrgId,
        principal: &KeyPrincipal,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now().millis();
        if principal
            .last_used_at
            .is_some_and(|t| now - t.millis() < TOUCH_INTERVAL_MS)
        {
            return Ok(());
        }
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE org_id = $2 AND id = $3")
            .bind(now)
            .bind(org.as_str())
            .bind(principal.key_id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates an API key; the returned secret is shown once.
    pub async fn create_api_key(
        &self,
        org: &OrgId,
        name: &str,
    ) -> Result<(ApiKey, Secret), StoreError> {
        require_text("name", name, 200)?;
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        ensure_org_exists(&mut tx, org).await?;
        let (key, minted) = insert_api_key(&mut tx, org, name).await?;
        tx.commit().await?;
        Ok((key, minted.key))
    }

    /// Lists API keys, newest first.
    pub async fn list_api_keys(
        &self,
        org: &OrgId,
        limit: Option<u32>,
        cursor: Option<&Cursor>,
    ) -> Result<Page<ApiKey>, StoreError> {
        let mut sql = Sql::new(
            "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys WHERE ",
        );
        sql.push_arg("org_id = {}", org.to_string())?;
        let order = Newest {
            col: "created_at",
            key: |k: &ApiKey| Cursor {
                at: k.created_at.millis(),
                id: k.id.to_string(),
            },
        };
        self.list_newest(org, sql, order, limit, cursor, key_from_row)
            .await
    }

    /// Revokes a key (idempotent: revoking twice keeps the first time).
    pub async fn revoke_api_key(&self, org: &OrgId, id: &ApiKeyId) -> Result<ApiKey, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE org_id = $2 AND id = $3",
        )
        .bind(Timestamp::now().millis())
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let row = sqlx::query(
            "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys \
             WHERE org_id = $1 AND id = $2",
        )
        .bind(org.as_str())
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        key_from_row(&row)
    }

    // ---- tenant: users ----

    /// Creates a dashboard login with an argon2id password hash.
    pub async fn create_user(
        &self,
        org: &OrgId,
        email: &str,
        password: &Secret,
        role: Role,
    ) -> Result<User, StoreError> {
        validate_email(email).map_err(|m| ValidationError::new("email", m))?;
        switchboard_domain::team::validate_password("password", password)?;
        let hash =
            hash_password(password).map_err(|e| StoreError::Corrupt(format!("argon2: {e}")))?;
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        ensure_org_exists(&mut tx, org).await?;
        let user = insert_user(&mut tx, org, email, &hash, role).await?;
        tx.commit().await?;
        Ok(user)
    }

    /// Lists an organization's users.
    pub async fn list_users(&self, org: &OrgId) -> Result<Vec<User>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let rows = sqlx::query(
            "SELECT id, org_id, email, role, created_at FROM users WHERE org_id = $1 ORDER BY created_at, id",
        )
        .bind(org.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Finds a login and its password hash by e-mail (before any organization is known).
    pub async fn find_login(&self, email: &str) -> Result<Option<(User, String)>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let row = sqlx::query(self.lookup(
            "SELECT * FROM sb_find_login($1)",
            "SELECT id, org_id, email, role, created_at, password_hash FROM users WHERE email = $1",
        ))
        .bind(email.to_lowercase())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(|r| Ok((user_from_row(&r)?, col(&r, "password_hash")?)))
            .transpose()
    }
}

/// Tenant writes check the organization exists, so a typo in `--org` is a clear error rather
/// than a foreign-key failure.
pub(crate) async fn ensure_org_exists(tx: &mut crate::Tx, org: &OrgId) -> Result<(), StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM organizations WHERE id = $1")
        .bind(org.as_str())
        .fetch_one(&mut **tx)
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

async fn insert_org(tx: &mut crate::Tx, name: &str) -> Result<Organization, StoreError> {
    let org = Organization {
        id: OrgId::generate(),
        name: name.trim().to_owned(),
        status: OrgStatus::Active,
        created_at: Timestamp::now(),
    };
    sqlx::query("INSERT INTO organizations (id, name, status, created_at) VALUES ($1, $2, $3, $4)")
        .bind(org.id.as_str())
        .bind(org.name.as_str())
        .bind(org.status.as_str())
        .bind(org.created_at.millis())
        .execute(&mut **tx)
        .await?;
    Ok(org)
}

async fn insert_operator_key(tx: &mut crate::Tx, name: &str) -> Result<MintedKey, StoreError> {
    let minted = mint_api_key();
    sqlx::query(
        "INSERT INTO operator_keys (id, name, prefix, key_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(ApiKeyId::generate().as_str())
    .bind(name)
    .bind(minted.prefix.as_str())
    .bind(minted.hash.as_str())
    .bind(Timestamp::now().millis())
    .execute(&mut **tx)
    .await?;
    Ok(minted)
}

async fn insert_api_key(
    tx: &mut crate::Tx,
    org: &OrgId,
    name: &str,
) -> Result<(ApiKey, MintedKey), StoreError> {
    let minted = mint_api_key();
    let key = ApiKey {
        id: ApiKeyId::generate(),
        name: name.trim().to_owned(),
        prefix: minted.prefix.clone(),
        created_at: Timestamp::now(),
        last_used_at: None,
        revoked_at: None,
    };
    sqlx::query(
        "INSERT INTO api_keys (id, org_id, name, prefix, key_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(key.id.as_str())
    .bind(org.as_str())
    .bind(key.name.as_str())
    .bind(key.prefix.as_str())
    .bind(minted.hash.as_str())
    .bind(key.created_at.millis())
    .execute(&mut **tx)
    .await?;
    Ok((key, minted))
}

async fn insert_user(
    tx: &mut crate::Tx,
    org: &OrgId,
    email: &str,
    password_hash: &str,
    role: Role,
) -> Result<User, StoreError> {
    let user = User {
        id: UserId::generate(),
        org_id: org.clone(),
        email: email.to_lowercase(),
        role,
        created_at: Timestamp::now(),
    };
    sqlx::query(
        "INSERT INTO users (id, org_id, email, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(user.id.as_str())
    .bind(org.as_str())
    .bind(user.email.as_str())
    .bind(password_hash)
    .bind(role.as_str())
    .bind(user.created_at.millis())
    .execute(&mut **tx)
    .await
    .map_err(conflict_on_unique("a user with this e-mail already exists"))?;
    Ok(user)
}
