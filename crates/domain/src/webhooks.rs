//! Webhook endpoints, deliveries and the event types they carry; the SSRF rules for targets.

use crate::ids::{DeliveryId, EventId, WebhookEndpointId};
use crate::{Timestamp, ValidationError};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every event type the outbox writes, in the documented order.
pub const EVENT_TYPES: &[&str] = &[
    "call.started",
    "call.ended",
    "call.analyzed",
    "call.handoff",
    "call.transfer_started",
    "call.transfer_answered",
    "call.transfer_completed",
    "call.transfer_failed",
    "message.received",
    "message.sent",
    "message.failed",
    "conversation.started",
    "conversation.closed",
    "conversation.analyzed",
    "tool.executed",
    "webhook_endpoint.disabled",
    "campaign.started",
    "campaign.completed",
    "appointment.created",
    "appointment.updated",
    "appointment.canceled",
];

/// The version of the event envelope (`version` in every payload).
pub const EVENT_VERSION: i64 = 1;

/// A webhook endpoint as returned by the API (the secret only at creation and rotation).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WebhookEndpoint {
    /// Id.
    pub id: WebhookEndpointId,
    /// Where deliveries are POSTed.
    pub url: String,
    /// A note for people.
    pub description: Option<String>,
    /// Event types delivered; `null` means all.
    pub event_types: Option<Vec<String>>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Why the platform disabled it (e.g. failing for days, or `410 Gone`).
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed, if it is failing.
    pub failing_since: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// The body of `POST /api/v1/webhook-endpoints`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookEndpoint {
    /// `https://...` (or `http://`); private and loopback addresses only when the operator
    /// allows them.
    pub url: String,
    /// Event types to deliver; absent or `null` means all.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// A note for people (at most 500 characters).
    #[serde(default)]
    pub description: Option<String>,
    /// Defaults to true.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// The body of `PATCH /api/v1/webhook-endpoints/{id}`; absent fields keep their value.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointUpdate {
    /// New URL.
    pub url: Option<String>,
    /// New event types; `null` means all.
    #[serde(default, deserialize_with = "crate::agent::double_option")]
    #[schema(value_type = Option<Vec<String>>)]
    pub event_types: Option<Option<Vec<String>>>,
    /// New description; `null` clears it.
    #[serde(default, deserialize_with = "crate::agent::double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Enable (clears the platform's disabled reason and failure streak) or disable.
    pub enabled: Option<bool>,
}

impl NewWebhookEndpoint {
    /// Checks the URL, the event types and the description.
    pub fn validate(&self, allow_private: bool) -> Result<(), ValidationError> {
        validate_url(&self.url, allow_private)?;
        if let Some(types) = &self.event_types {
            validate_event_types(types)?;
        }
        validate_description(self.description.as_deref())
    }
}

impl WebhookEndpointUpdate {
    /// Checks what is being changed.
    pub fn validate(&self, allow_private: bool) -> Result<(), ValidationError> {
        if let Some(url) = &self.url {
            validate_url(url, allow_private)?;
        }
        if let Some(Some(types)) = &self.event_types {
            validate_event_types(types)?;
        }
        if let Some(d) = &self.description {
            validate_description(d.as_deref())?;
        }
        Ok(())
    }
}

fn validate_description(d: Option<&str>) -> Result<(), ValidationError> {
    match d {
        Some(d) if d.chars().count() > 500 => Err(ValidationError::new(
            "description",
            "at most 500 characters",
        )),
        _ => Ok(()),
    }
}

fn validate_event_types(types: &[String]) -> Result<(), ValidationError> {
    if types.is_empty() {
        return Err(ValidationError::new(
            "event_types",
            "list at least one event type, or leave it out for all",
        ));
    }
    for (i, t) in types.iter().enumerate() {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(ValidationError::new(
                format!("event_types[{i}]"),
                format!(
                    "unknown event type `{t}`; known: {}",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Checks a target URL: http(s), a host, no credentials, at most 2,000 characters, and (unless
/// allowed) no literal private, loopback or link-local address. Names are checked again when
/// they are resolved, at every delivery.
pub fn validate_url(raw: &str, allow_private: bool) -> Result<url::Url, ValidationError> {
    validate_target_url(
        raw,
        allow_private,
        "webhooks",
        "SWITCHBOARD_WEBHOOKS_ALLOW_PRIVATE",
    )
}

/// [`validate_url`] for any tenant-chosen target: `what` names the targets in the message
/// and `setting` the operator's switch that allows private addresses.
pub fn validate_target_url(
    raw: &str,
    allow_private: bool,
    what: &str,
    setting: &str,
) -> Result<url::Url, ValidationError> {
    let bad = |m: &str| ValidationError::new("url", m);
    if raw.len() > 2000 {
        return Err(bad("at most 2,000 characters"));
    }
    let url = url::Url::parse(raw).map_err(|e| bad(&format!("not a valid URL: {e}")))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(bad("must start with https:// or http://"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "must not contain credentials; verify requests by their signature instead",
        ));
    }
    let ip = match url.host() {
        None => return Err(bad("must name a host")),
        Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
        Some(url::Host::Domain(_)) => None,
    };
    if let (Some(ip), false) = (ip, allow_private) {
        if let Some(kind) = restricted_address(ip) {
            return Err(bad(&format!(
                "{ip} is a {kind} address; {what} may only target public addresses \
                 (an operator can allow private targets with {setting}=true)"
            )));
        }
    }
    Ok(url)
}

/// Why an address must not receive webhooks (server-side request forgery guard), or `None`
/// for a public address.
pub fn restricted_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => restricted_v4(a),
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return restricted_v4(v4);
            }
            restricted_v6(a)
        }
    }
}

fn restricted_v4(a: Ipv4Addr) -> Option<&'static str> {
    let o = a.octets();
    if a.is_loopback() {
        Some("loopback")
    } else if a.is_private() {
        Some("private network")
    } else if a.is_link_local() {
        Some("link-local")
    } else if a.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if o[0] == 100 && (64..128).contains(&o[1]) {
        Some("shared address space (carrier-grade NAT)")
    } else if a.is_multicast() || a.is_broadcast() || o[0] >= 240 {
        Some("multicast or reserved")
    } else if o[0] == 198 && (o[1] == 18 || o[1] == 19) {
        Some("benchmarking")
    } else if (o[0] == 192 && o[1] == 0 && (o[2] == 0 || o[2] == 2))
        || (o[0] == 198 && o[1] == 51 && o[2] == 100)
        || (o[0] == 203 && o[1] == 0 && o[2] == 113)
    {
        Some("reserved or documentation")
    } else {
        None
    }
}

fn restricted_v6(a: Ipv6Addr) -> Option<&'static str> {
    let seg = a.segments();
    if a.is_loopback() {
        Some("loopback")
    } else if a.is_unspecified() {
        Some("unspecified")
    } else if seg[0] & 0xfe00 == 0xfc00 {
        Some("unique local (private network)")
    } else if seg[0] & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if a.is_multicast() {
        Some("multicast or reserved")
    } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        Some("reserved or documentation")
    } else if seg[0] == 0x64 && seg[1] == 0xff9b {
        // NAT64 can reach any IPv4 address, private ones included.
        Some("NAT64")
    } else {
        None
    }
}

/// The state of one event's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WebhookDelivery {
    /// Id.
    pub id: DeliveryId,
    /// Endpoint.
    pub endpoint_id: WebhookEndpointId,
    /// The event; also the `webhook-id` header, the same on every attempt.
    pub event_id: EventId,
    /// Its type.
    pub event_type: String,
    /// The event's per-organization sequence number.
    pub sequence: i64,
    /// The call or conversation it is about.
    pub subject_id: Option<String>,
    /// `pending` (waiting for its next attempt), `delivering`, `succeeded` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<Timestamp>,
    /// HTTP status of the last attempt.
    pub last_status_code: Option<i64>,
    /// What went wrong last.
    pub last_error: Option<String>,
    /// When a 2xx came back.
    pub delivered_at: Option<Timestamp>,
    /// Created with the event.
    pub created_at: Timestamp,
}

/// One HTTP attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WebhookAttempt {
    /// When it started.
    pub attempted_at: Timestamp,
    /// The receiver's status code, if it answered.
    pub status_code: Option<i64>,
    /// How long it took.
    pub latency_ms: i64,
    /// The first 1,000 characters of the response body.
    pub response_excerpt: Option<String>,
    /// Transport failure or refusal, if any.
    pub error: Option<String>,
}

/// An outbox event as listed by the API; `payload` is exactly what webhooks receive.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OutboxEvent {
    /// Id.
    pub id: EventId,
    /// Type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Per-organization sequence number.
    pub sequence: i64,
    /// The delivered document.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Written.
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_targets_are_refused_unless_allowed() {
        for u in [
            "http://127.0.0.1:9/x",
            "http://10.1.2.3/",
            "http://[::1]/",
            "http://169.254.169.254/latest",
            "http://[fd00::1]/",
            "http://[::ffff:192.168.0.1]/",
            "http://100.64.0.1/",
        ] {
            let e = validate_url(u, false).expect_err(u);
            assert_eq!(e.field, "url");
            assert!(validate_url(u, true).is_ok(), "{u}");
        }
        assert!(validate_url("https://hooks.example.com/a?b=c", false).is_ok());
        assert!(validate_url("https://8.8.8.8/", false).is_ok());
        assert!(validate_url("ftp://example.com/", true).is_err());
        assert!(validate_url("https://u:p@example.com/", true).is_err());
        assert!(validate_url("not a url", true).is_err());
    }

    #[test]
    fn event_types_must_be_known() {
        let e = NewWebhookEndpoint {
            url: "https://example.com/".into(),
            event_types: Some(vec!["call.ended".into(), "call.exploded".into()]),
            description: None,
            enabled: None,
        }
        .validate(false)
        .expect_err("unknown type");
        assert_eq!(e.field, "event_types[1]");
        let empty = NewWebhookEndpoint {
            url: "https://example.com/".into(),
            event_types: Some(vec![]),
            description: None,
            enabled: None,
        };
        assert!(empty.validate(false).is_err());
    }
}

/// An e-mail notification and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EmailNotification {
    /// Id.
    pub id: crate::ids::EmailId,
    /// The call it reports.
    pub call_id: Option<crate::ids::CallId>,
    /// `call`.
    pub kind: String,
    /// Recipients at the time it was queued.
    pub recipients: Vec<String>,
    /// Subject line, once composed.
    pub subject: Option<String>,
    /// `pending`, `sent`, `skipped` (the organization's rule excluded it) or `failed`.
    pub status: String,
    /// Attempts so far.
    pub attempts: i64,
    /// Last failure.
    pub last_error: Option<String>,
    /// When the SMTP server accepted it.
    pub sent_at: Option<Timestamp>,
    /// Queued.
    pub created_at: Timestamp,
}
