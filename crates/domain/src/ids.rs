//! Opaque, prefixed identifiers. The prefix makes a pasted id self-describing in logs and
//! support tickets; the random part (120 bits) makes ids unguessable across organizations.

use std::fmt;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Random lowercase Crockford-style base32 text of `len` characters (5 bits each).
pub fn random_token(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    fill_random(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b & 31)] as char)
        .collect()
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) {
    // The OS RNG failing means the machine cannot produce secrets at all; there is no safe
    // fallback, so this is one of the few places where aborting is right.
    #[allow(clippy::expect_used)]
    getrandom::fill(buf).expect("operating system random number generator unavailable");
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A new random id.
            pub fn generate() -> Self {
                Self(format!("{}_{}", $prefix, random_token(24)))
            }

            /// Accepts a string that has this kind's shape; anything else is `None`
            /// (the API answers 404 for it, as for any absent id).
            pub fn parse(s: &str) -> Option<Self> {
                let rest = s.strip_prefix($prefix)?.strip_prefix('_')?;
                let ok = !rest.is_empty()
                    && rest.len() <= 64
                    && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
                ok.then(|| Self(s.to_owned()))
            }

            /// Wraps a value read back from our own database.
            pub fn from_db(s: String) -> Self {
                Self(s)
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(concat!("expected an id starting with `", $prefix, "_`"))
                })
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some(concat!("Opaque id, prefixed `", $prefix, "_`")))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

id_type!(/// An organization (tenant).
    OrgId, "org");
id_type!(/// A dashboard login.
    UserId, "usr");
id_type!(/// An API key (organization or operator).
    ApiKeyId, "key");
id_type!(/// An agent.
    AgentId, "agt");
id_type!(/// A phone number owned by an organization.
    PhoneNumberId, "pn");
id_type!(/// A contact.
    ContactId, "ct");
id_type!(/// A conversation (call, SMS or WhatsApp thread, web chat).
    ConversationId, "cnv");
id_type!(/// A call.
    CallId, "call");
id_type!(/// A transcript item or message.
    MessageId, "msg");
id_type!(/// A webhook endpoint.
    WebhookEndpointId, "ep");
id_type!(/// One event's delivery to one webhook endpoint.
    DeliveryId, "dlv");
id_type!(/// An outbox event; also the `webhook-id` of its deliveries.
    EventId, "evt");
id_type!(/// An e-mail notification.
    EmailId, "eml");
id_type!(/// An outbound calling campaign.
    CampaignId, "cmp");
id_type!(/// One recipient row of a campaign.
    RecipientId, "rcp");
id_type!(/// A custom HTTP tool of an organization.
    CustomToolId, "tool");
id_type!(/// An external MCP server an organization registered.
    McpServerId, "mcps");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_differ() {
        let a = AgentId::generate();
        let b = AgentId::generate();
        assert_ne!(a, b);
        assert_eq!(AgentId::parse(a.as_str()), Some(a.clone()));
        assert!(a.as_str().starts_with("agt_"));
    }

    #[test]
    fn foreign_or_malformed_ids_are_rejected() {
        let org = OrgId::generate();
        assert!(AgentId::parse(org.as_str()).is_none());
        assert!(AgentId::parse("agt_").is_none());
        assert!(AgentId::parse("agt_ABC").is_none());
        assert!(AgentId::parse("agt_a'--").is_none());
        assert!(AgentId::parse("agtx_abc").is_none());
    }
}
id_type!(/// A staff action on a live call.
    CallActionId, "cact");
id_type!(/// A knowledge source (a document agents search).
    KnowledgeSourceId, "kns");
