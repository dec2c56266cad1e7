//! Timestamps: stored as Unix milliseconds (portable across SQLite and PostgreSQL),
//! shown as RFC 3339 in UTC.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A point in time with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Self((nanos / 1_000_000) as i64)
    }

    /// From Unix milliseconds.
    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Unix milliseconds.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 (`2026-11-21T10:00:00Z`, offsets allowed).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
        Some(Self((t.unix_timestamp_nanos() / 1_000_000) as i64))
    }

    /// Formats as RFC 3339 in UTC with milliseconds.
    pub fn to_rfc3339(self) -> String {
        let nanos = i128::from(self.0) * 1_000_000;
        match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
            Ok(t) => t.format(&Rfc3339).unwrap_or_else(|_| self.0.to_string()),
            Err(_) => self.0.to_string(),
        }
    }
}

/// Where "now" comes from. Production uses the system clock; tests build an adjustable one
/// to let days pass (session windows, the WhatsApp 24-hour rule) without sleeping.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    skew_ms: Option<std::sync::Arc<std::sync::atomic::AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { skew_ms: None }
    }

    /// A clock that starts at the system time and can be moved forward with [`Clock::advance`].
    pub fn adjustable() -> Clock {
        Clock {
            skew_ms: Some(std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0))),
        }
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        let now = Timestamp::now();
        match &self.skew_ms {
            Some(skew) => Timestamp(now.0 + skew.load(std::sync::atomic::Ordering::Relaxed)),
            None => now,
        }
    }

    /// Moves an adjustable clock forward (a no-op on the system clock).
    pub fn advance(&self, by: std::time::Duration) {
        if let Some(skew) = &self.skew_ms {
            let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
            skew.fetch_add(ms, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse_rfc3339(&s)
            .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_milliseconds() {
        let t = Timestamp::from_millis(1_795_000_000_123);
        let s = t.to_rfc3339();
        assert_eq!(Timestamp::parse_rfc3339(&s), Some(t));
        assert!(s.ends_with('Z'), "{s}");
    }

    #[test]
    fn offsets_are_normalised() {
        let a = Timestamp::parse_rfc3339("2026-11-21T12:00:00+02:00");
        let b = Timestamp::parse_rfc3339("2026-11-21T10:00:00Z");
        assert_eq!(a, b);
        assert!(Timestamp::parse_rfc3339("yesterday").is_none());
    }
}
