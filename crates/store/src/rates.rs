//! Request rates per API key: a token bucket of `burst` requests refilled at `per_minute`.
//! On PostgreSQL the bucket is a row every instance updates in one statement, so the rate
//! holds across instances; on SQLite (one instance) it lives in memory, sparing every API
//! request a write.

use crate::{Access, Backend, Scope, Store, StoreError};
use switchboard_domain::ids::OrgId;
use switchboard_domain::Timestamp;

/// A rate: `burst` requests at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests a full bucket holds.
    pub burst: u32,
    /// Requests added per minute.
    pub per_minute: u32,
}

impl Rate {
    fn per_ms(self) -> f64 {
        f64::from(self.per_minute.max(1)) / 60_000.0
    }

    /// The bucket after `elapsed_ms` of refill from `tokens`.
    fn refill(self, tokens: f64, elapsed_ms: i64) -> f64 {
        (tokens + elapsed_ms.max(0) as f64 * self.per_ms()).min(f64::from(self.burst.max(1)))
    }

    /// How long until one token is there, from `tokens`.
    fn wait_ms(self, tokens: f64) -> i64 {
        ((1.0 - tokens).max(0.0) / self.per_ms()).ceil() as i64
    }
}

impl Store {
    /// Takes one request from `key`'s bucket: `Ok(None)` when it had one, `Ok(Some(ms))`
    /// (how long until the next) when it was empty.
    pub async fn take_request_token(
        &self,
        org: &OrgId,
        key: &str,
        rate: Rate,
        now: Timestamp,
    ) -> Result<Option<i64>, StoreError> {
        let burst = f64::from(rate.burst.max(1));
        if self.inner.backend == Backend::Sqlite {
            let mut map = self.inner.rates.lock().unwrap_or_else(|e| e.into_inner());
            let (tokens, at) = map.get(key).copied().unwrap_or((burst, now.millis()));
            let tokens = rate.refill(tokens, now.millis() - at);
            if tokens < 1.0 {
                map.insert(key.to_owned(), (tokens, now.millis()));
                return Ok(Some(rate.wait_ms(tokens)));
            }
            map.insert(key.to_owned(), (tokens - 1.0, now.millis()));
            return Ok(None);
        }
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        // Refill and take in one statement; no row back means the bucket was empty.
        let taken: Option<f64> = sqlx::query_scalar(
            "INSERT INTO api_rate_buckets (key_id, org_id, tokens, updated_at) \
             VALUES ($1, $2, $3 - 1, $4) ON CONFLICT (key_id) DO UPDATE SET \
             tokens = LEAST($3, api_rate_buckets.tokens \
               + GREATEST($4 - api_rate_buckets.updated_at, 0) * $5) - 1, updated_at = $4 \
             WHERE LEAST($3, api_rate_buckets.tokens \
               + GREATEST($4 - api_rate_buckets.updated_at, 0) * $5) >= 1 \
             RETURNING tokens",
        )
        .bind(key)
        .bind(org.as_str())
        .bind(burst)
        .bind(now.millis())
        .bind(rate.per_ms())
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            tx.commit().await?;
            return Ok(None);
        }
        let row: Option<(f64, i64)> = sqlx::query_as(
            "SELECT tokens, updated_at FROM api_rate_buckets WHERE org_id = $1 AND key_id = $2",
        )
        .bind(org.as_str())
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let tokens = row.map_or(0.0, |(t, at)| rate.refill(t, now.millis() - at));
        Ok(Some(rate.wait_ms(tokens).max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::Rate;

    #[test]
    fn buckets_refill_at_the_rate_up_to_the_burst() {
        let r = Rate {
            burst: 10,
            per_minute: 60,
        };
        assert_eq!(r.refill(0.0, 1_000), 1.0);
        assert_eq!(r.refill(9.5, 60_000), 10.0);
        assert_eq!(r.refill(3.0, -5), 3.0, "a clock going back adds nothing");
        assert_eq!(r.wait_ms(0.0), 1_000);
        assert_eq!(r.wait_ms(0.5), 500);
        assert_eq!(r.wait_ms(1.5), 0);
    }
}
