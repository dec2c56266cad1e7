//! Text messaging rules: Twilio addresses (`whatsapp:` prefixes), compliance keywords,
//! splitting long replies, and the order of delivery statuses.

use crate::values::{Channel, NumberChannel, PhoneNumber};

/// Longest body Twilio accepts in one message.
pub const MAX_BODY_CHARS: usize = 1600;

/// WhatsApp allows free-form business messages only this long after the contact's last
/// message (outside it, an approved template is required; Twilio error 63016).
pub const WHATSAPP_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// A Twilio `From`/`To` value split into channel and E.164 number.
pub fn parse_address(raw: &str) -> Option<(NumberChannel, PhoneNumber)> {
    let raw = raw.trim();
    match raw.strip_prefix("whatsapp:") {
        Some(n) => PhoneNumber::parse(n)
            .ok()
            .map(|n| (NumberChannel::Whatsapp, n)),
        None => PhoneNumber::parse(raw)
            .ok()
            .map(|n| (NumberChannel::Sms, n)),
    }
}

/// The Twilio address of `number` on a text channel (the prefix is kept when replying).
pub fn address(channel: Channel, number: &str) -> String {
    match channel {
        Channel::Whatsapp => format!("whatsapp:{number}"),
        _ => number.to_owned(),
    }
}

/// The text channel a number channel serves.
pub fn text_channel(c: NumberChannel) -> Option<Channel> {
    match c {
        NumberChannel::Sms => Some(Channel::Sms),
        NumberChannel::Whatsapp => Some(Channel::Whatsapp),
        NumberChannel::Voice => None,
    }
}

/// The number channel that carries a text channel.
pub fn number_channel(c: Channel) -> Option<NumberChannel> {
    match c {
        Channel::Sms => Some(NumberChannel::Sms),
        Channel::Whatsapp => Some(NumberChannel::Whatsapp),
        _ => None,
    }
}

/// A compliance keyword sent as the whole message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT.
    OptOut,
    /// START, YES, UNSTOP.
    OptIn,
    /// HELP (and INFO).
    Help,
}

impl Keyword {
    /// Stored on the inbound message and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::OptOut => "opt_out",
            Keyword::OptIn => "opt_in",
            Keyword::Help => "help",
        }
    }
}

/// The keyword a body is, if it is one: the whole message, any case, surrounding spaces and
/// trailing punctuation ignored ("Stop." opts out; "please stop calling" does not).
pub fn keyword(body: &str) -> Option<Keyword> {
    let word = body
        .trim()
        .trim_end_matches(['.', '!', '?'])
        .trim()
        .to_ascii_uppercase();
    match word.as_str() {
        "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" => Some(Keyword::OptOut),
        "START" | "YES" | "UNSTOP" => Some(Keyword::OptIn),
        "HELP" | "INFO" => Some(Keyword::Help),
        _ => None,
    }
}

/// Splits `text` into parts of at most `max` characters, at whitespace where possible so
/// words are not cut; parts are trimmed and never empty.
pub fn split_body(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if rest.chars().count() <= max {
            parts.push(rest.to_owned());
            break;
        }
        // Byte offset just past `max` characters.
        let hard = rest
            .char_indices()
            .nth(max)
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let cut = rest[..hard]
            .rfind(char::is_whitespace)
            .filter(|&i| i > 0)
            .unwrap_or(hard);
        parts.push(rest[..cut].trim_end().to_owned());
        rest = rest[cut..].trim_start();
    }
    parts
}

/// Order of outbound delivery statuses; a callback never moves a message backwards
/// (callbacks arrive out of order). `None` for statuses we do not track.
pub fn delivery_rank(status: &str) -> Option<u8> {
    Some(match status {
        "pending" => 0,
        "sending" | "accepted" | "scheduled" => 1,
        "queued" => 2,
        "sent" => 3,
        "delivered" => 4,
        "read" => 5,
        // Terminal failures outrank everything but a confirmed read: a late "sent" must not
        // hide that the message failed.
        "undelivered" | "failed" | "canceled" => 6,
        _ => return None,
    })
}

/// Whether moving from `current` to `new` is forward.
pub fn delivery_advances(current: Option<&str>, new: &str) -> bool {
    let Some(n) = delivery_rank(new) else {
        return false;
    };
    match current.and_then(delivery_rank) {
        None => true,
        Some(c) => n > c,
    }
}

/// Whether a delivery status means the message did not reach the contact.
pub fn delivery_failed(status: &str) -> bool {
    matches!(status, "undelivered" | "failed" | "canceled")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_channels() {
        let (c, n) = parse_address("whatsapp:+14155550100").expect("wa");
        assert_eq!(c, NumberChannel::Whatsapp);
        assert_eq!(n.as_str(), "+14155550100");
        let (c, _) = parse_address("+14155550100").expect("sms");
        assert_eq!(c, NumberChannel::Sms);
        assert!(parse_address("whatsapp:14155550100").is_none());
        assert_eq!(
            address(Channel::Whatsapp, "+14155550100"),
            "whatsapp:+14155550100"
        );
        assert_eq!(address(Channel::Sms, "+14155550100"), "+14155550100");
    }

    #[test]
    fn keywords_are_whole_messages() {
        assert_eq!(keyword(" stop "), Some(Keyword::OptOut));
        assert_eq!(keyword("Stop."), Some(Keyword::OptOut));
        assert_eq!(keyword("UNSUBSCRIBE"), Some(Keyword::OptOut));
        assert_eq!(keyword("quit!"), Some(Keyword::OptOut));
        assert_eq!(keyword("start"), Some(Keyword::OptIn));
        assert_eq!(keyword("Yes"), Some(Keyword::OptIn));
        assert_eq!(keyword("help?"), Some(Keyword::Help));
        assert_eq!(keyword("please stop"), None);
        assert_eq!(keyword("stopped"), None);
        assert_eq!(keyword(""), None);
    }

    #[test]
    fn long_bodies_split_at_words() {
        let word = "abcdefghi ";
        let text = word.repeat(400); // 4,000 characters
        let parts = split_body(&text, MAX_BODY_CHARS);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_BODY_CHARS));
        assert!(parts.iter().all(|p| p.ends_with('i')));
        assert_eq!(parts.join(" "), text.trim());
        // Multi-byte characters count as one and are never cut in half.
        let emoji = "é".repeat(3000);
        let parts = split_body(&emoji, MAX_BODY_CHARS);
        assert_eq!(parts[0].chars().count(), 1600);
        assert_eq!(parts.concat(), emoji);
        assert!(split_body("   ", 10).is_empty());
        assert_eq!(split_body("short", 1600), vec!["short"]);
    }

    #[test]
    fn delivery_moves_forward_only() {
        assert!(delivery_advances(None, "queued"));
        assert!(delivery_advances(Some("queued"), "delivered"));
        assert!(!delivery_advances(Some("delivered"), "sent"));
        assert!(delivery_advances(Some("sent"), "failed"));
        assert!(!delivery_advances(Some("failed"), "sent"));
        assert!(delivery_advances(Some("delivered"), "read"));
        assert!(!delivery_advances(Some("sent"), "bogus"));
        assert!(delivery_failed("undelivered"));
    }
}
