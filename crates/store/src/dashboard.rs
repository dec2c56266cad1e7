//! Dashboard sign-in sessions and the overview figures.
//!
//! Sessions are platform rows keyed by the SHA-256 of the cookie token. Reading one joins the
//! user (a pre-tenant look-up, like an API key), which is what tells the dashboard which
//! organization a request belongs to.

use crate::rows::{col, parsed, ts, Sql};
use crate::{Access, Scope, Store, StoreError};
use switchboard_domain::entities::User;
use switchboard_domain::ids::{OrgId, UserId};
use switchboard_domain::values::{OrgStatus, Role};
use switchboard_domain::Timestamp;

/// A live dashboard session.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardSession {
    /// The signed-in user.
    pub user: User,
    /// The organization the session acts in (the user's own unless an operator switched).
    pub org_id: OrgId,
    /// That organization's name.
    pub org_name: String,
    /// Whether that organization is disabled.
    pub org_disabled: bool,
    /// The per-session CSRF token every form and script request must echo.
    pub csrf_token: String,
    /// When the session stops being accepted.
    pub expires_at: Timestamp,
}

/// The overview page's figures for one organization since `since`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overview {
    /// Calls started since `since`.
    pub calls: i64,
    /// Calls not over yet, whatever their status (any start time): the same calls the
    /// overview's live list shows.
    pub active_calls: i64,
    /// Mean duration of the calls since `since` that have one, in seconds.
    pub avg_duration_seconds: Option<f64>,
    /// Analysed calls since `since` whose outcome was a success / all analysed ones.
    pub successes: i64,
    /// Analysed calls since `since` with an outcome (calls where the other party never spoke
    /// are not judged, so not counted).
    pub analysed: i64,
    /// Every per-turn latency (ms) of the calls since `since`.
    pub turn_latencies_ms: Vec<i64>,
    /// Text messages (SMS, WhatsApp, web) written since `since`.
    pub messages: i64,
}

impl Store {
    /// Stores a new session for `user`, acting in `org`.
    pub async fn create_dashboard_session(
        &self,
        user: &UserId,
        org: &OrgId,
        token_hash: &str,
        csrf_token: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        // Expired sessions are swept here rather than by a separate timer: sign-ins are rare.
        sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at < $1")
            .bind(now.millis())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO dashboard_sessions (token_hash, user_id, org_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(user.as_str())
        .bind(org.as_str())
        .bind(csrf_token)
        .bind(now.millis())
        .bind(expires_at.millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The unexpired session with this token hash, with its user and organization.
    pub async fn dashboard_session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<DashboardSession>, StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Read).await?;
        let row = sqlx::query(self.lookup(
            "SELECT * FROM sb_dashboard_session($1, $2)",
            "SELECT u.id, u.org_id, u.email, u.role, u.created_at, s.org_id AS acting_org, \
             o.name AS org_name, o.status AS org_status, s.csrf_token, s.expires_at \
             FROM dashboard_sessions s JOIN users u ON u.id = s.user_id \
             JOIN organizations o ON o.id = s.org_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        ))
        .bind(token_hash)
        .bind(now.millis())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(DashboardSession {
            user: User {
                id: UserId::from_db(col(&r, "id")?),
                org_id: OrgId::from_db(col(&r, "org_id")?),
                email: col(&r, "email")?,
                role: parsed(&r, "role", Role::parse)?,
                created_at: ts(&r, "created_at")?,
            },
            org_id: OrgId::from_db(col(&r, "acting_org")?),
            org_name: col(&r, "org_name")?,
            org_disabled: parsed(&r, "org_status", OrgStatus::parse)? == OrgStatus::Disabled,
            csrf_token: col(&r, "csrf_token")?,
            expires_at: ts(&r, "expires_at")?,
        }))
    }

    /// Moves a session's expiry (sliding sessions).
    pub async fn extend_dashboard_session(
        &self,
        token_hash: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        sqlx::query("UPDATE dashboard_sessions SET expires_at = $1 WHERE token_hash = $2")
            .bind(expires_at.millis())
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Points a session at another organization. The caller checks the user may act there
    /// (operators only); `NotFound` if the organization does not exist.
    pub async fn switch_dashboard_org(
        &self,
        token_hash: &str,
        org: &OrgId,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        let done = sqlx::query(
            "UPDATE dashboard_sessions SET org_id = $1 WHERE token_hash = $2 \
             AND EXISTS (SELECT 1 FROM organizations WHERE id = $3)",
        )
        .bind(org.as_str())
        .bind(token_hash)
        .bind(org.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ends a session (sign-out). Ending an unknown session is not an error.
    pub async fn delete_dashboard_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Platform, Access::Write).await?;
        sqlx::query("DELETE FROM dashboard_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The organization's latest event sequence number (0 before any event).
    pub async fn last_event_seq(&self, org: &OrgId) -> Result<i64, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM org_event_seq WHERE org_id = $1")
                .bind(org.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(seq.unwrap_or(0))
    }

    /// Which of `numbers` belong to contacts who opted out (for marking lists).
    pub async fn opted_out_among(
        &self,
        org: &OrgId,
        numbers: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        if numbers.is_empty() {
            return Ok(Default::default());
        }
        let mut sql = Sql::new("SELECT number FROM contacts WHERE ");
        sql.push_arg("org_id = {}", org.to_string())?;
        sql.push(" AND opted_out = 1 AND number IN (");
        for (i, n) in numbers.iter().take(500).enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let p = sql.arg(n.clone())?;
            sql.push(&p);
        }
        sql.push(")");
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let rows = sql.query().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows.iter().map(|r| col::<String>(r, "number")).collect()
    }

    /// The overview figures of `org` since `since` (the start of the day the page shows).
    pub async fn overview(&self, org: &OrgId, since: Timestamp) -> Result<Overview, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        // SUM of BIGINT is NUMERIC on PostgreSQL: cast back so both backends decode an i64.
        let row = sqlx::query(
            "SELECT COUNT(*) AS calls, \
             CAST(COALESCE(SUM(duration_seconds), 0) AS BIGINT) AS dur_sum, \
             COUNT(duration_seconds) AS dur_n, \
             (SELECT COUNT(*) FROM calls WHERE org_id = $1 AND ended_at IS NULL) AS active \
             FROM calls WHERE org_id = $2 AND started_at >= $3",
        )
        .bind(org.as_str())
        .bind(org.as_str())
        .bind(since.millis())
        .fetch_one(&mut *tx)
        .await?;
        let calls: i64 = col(&row, "calls")?;
        let dur_sum: i64 = col(&row, "dur_sum")?;
        let dur_n: i64 = col(&row, "dur_n")?;
        let active_calls: i64 = col(&row, "active")?;
        // Analyses and latencies are JSON columns: read the (bounded) day's rows and
        // aggregate here, which keeps the SQL the same on both backends.
        let rows = sqlx::query(
            "SELECT analysis, turn_latencies_ms FROM calls WHERE org_id = $1 AND started_at >= $2 \
             ORDER BY started_at DESC LIMIT 20000",
        )
        .bind(org.as_str())
        .bind(since.millis())
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Overview {
            calls,
            active_calls,
            avg_duration_seconds: (dur_n > 0).then(|| dur_sum as f64 / dur_n as f64),
            ..Overview::default()
        };
        for r in &rows {
            let analysis: Option<String> = col(r, "analysis")?;
            if let Some(a) =
                analysis.and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            {
                // A call where the other party never spoke is not judged: it counts neither
                // for nor against the success rate.
                let silent = a.get("source").and_then(|v| v.as_str()) == Some("no_transcript");
                if let (Some(ok), false) = (
                    a.pointer("/outcome/success").and_then(|v| v.as_bool()),
                    silent,
                ) {
                    out.analysed += 1;
                    out.successes += i64::from(ok);
                }
            }
            let lat: Option<String> = col(r, "turn_latencies_ms")?;
            if let Some(v) = lat.and_then(|s| serde_json::from_str::<Vec<i64>>(&s).ok()) {
                out.turn_latencies_ms.extend(v);
            }
        }
        out.messages = sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id \
             WHERE m.org_id = $1 AND m.created_at >= $2 AND m.kind = 'message' \
             AND c.channel <> 'voice'",
        )
        .bind(org.as_str())
        .bind(since.millis())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(out)
    }
}
