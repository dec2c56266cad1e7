//! Twilio Media Streams messages (JSON text frames with an `event` discriminator). Numeric
//! fields arrive as strings; audio is base64 mu-law at 8 kHz (8 bytes per ms).

use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashMap;

/// Bytes of mu-law audio per millisecond.
pub const BYTES_PER_MS: usize = 8;
/// Bytes in one 20 ms frame.
pub const FRAME_BYTES: usize = 160;

/// Decoded length of standard padded base64, without decoding it.
pub fn b64_len(s: &str) -> usize {
    let pad = s.bytes().rev().take_while(|b| *b == b'=').count().min(2);
    (s.len() / 4 * 3).saturating_sub(pad)
}

/// A message from Twilio.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound<'a> {
    /// First message; no stream yet.
    Connected,
    /// The stream started.
    Start(Start),
    /// Caller audio.
    Media {
        /// Base64 mu-law.
        payload: Cow<'a, str>,
        /// Milliseconds since the stream started.
        timestamp_ms: Option<u64>,
    },
    /// A key press.
    Dtmf {
        /// The digit.
        digit: String,
    },
    /// The echo of a mark we sent: the audio before it has played (or was cleared).
    Mark {
        /// Its name.
        name: String,
    },
    /// The stream stopped (the call ended or the stream was stopped).
    Stop,
    /// An event this code does not know; logged and ignored.
    Unknown(String),
}

/// The `start` message's body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Start {
    /// `MZ...`.
    pub stream_sid: String,
    /// `CA...`.
    pub call_sid: String,
    /// `AC...`.
    pub account_sid: String,
    /// The `<Parameter>`s of the TwiML.
    pub custom_parameters: HashMap<String, String>,
    /// `audio/x-mulaw` expected.
    pub encoding: String,
    /// 8000 expected.
    pub sample_rate: u32,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Not JSON, or not the expected shape.
    #[error("malformed frame: {0}")]
    Malformed(#[from] serde_json::Error),
    /// A required part is missing.
    #[error("`{0}` message without `{1}`")]
    Missing(&'static str, &'static str),
}

#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow, default)]
    media: Option<RawMedia<'a>>,
    #[serde(default)]
    start: Option<RawStart>,
    #[serde(default)]
    mark: Option<RawMark>,
    #[serde(default)]
    dtmf: Option<RawDtmf>,
}

#[derive(Deserialize)]
struct RawMedia<'a> {
    #[serde(borrow)]
    payload: Cow<'a, str>,
    #[serde(default)]
    timestamp: Option<StrOrNum>,
}

/// Twilio documents numeric fields as strings; accept numbers too.
#[derive(Deserialize)]
#[serde(untagged)]
enum StrOrNum {
    Str(String),
    Num(u64),
}

impl StrOrNum {
    fn value(&self) -> Option<u64> {
        match self {
            StrOrNum::Str(s) => s.parse().ok(),
            StrOrNum::Num(n) => Some(*n),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStart {
    #[serde(default)]
    stream_sid: String,
    #[serde(default)]
    call_sid: String,
    #[serde(default)]
    account_sid: String,
    #[serde(default)]
    custom_parameters: HashMap<String, String>,
    #[serde(default)]
    media_format: Option<RawFormat>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawFormat {
    #[serde(default)]
    encoding: String,
    #[serde(default)]
    sample_rate: u32,
}

#[derive(Deserialize)]
struct RawMark {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawDtmf {
    #[serde(default)]
    digit: String,
}

/// Parses one text frame from Twilio.
pub fn parse(text: &str) -> Result<Inbound<'_>, FrameError> {
    let raw: RawFrame<'_> = serde_json::from_str(text)?;
    Ok(match raw.event.as_ref() {
        "connected" => Inbound::Connected,
        "media" => {
            let m = raw.media.ok_or(FrameError::Missing("media", "media"))?;
            Inbound::Media {
                payload: m.payload,
                timestamp_ms: m.timestamp.as_ref().and_then(StrOrNum::value),
            }
        }
        "start" => {
            let s = raw.start.ok_or(FrameError::Missing("start", "start"))?;
            let (encoding, sample_rate) = s
                .media_format
                .map(|f| (f.encoding, f.sample_rate))
                .unwrap_or_default();
            Inbound::Start(Start {
                stream_sid: s.stream_sid,
                call_sid: s.call_sid,
                account_sid: s.account_sid,
                custom_parameters: s.custom_parameters,
                encoding,
                sample_rate,
            })
        }
        "mark" => Inbound::Mark {
            name: raw
                .mark
                .and_then(|m| m.name)
                .ok_or(FrameError::Missing("mark", "mark.name"))?,
        },
        "dtmf" => Inbound::Dtmf {
            digit: raw.dtmf.map(|d| d.digit).unwrap_or_default(),
        },
        "stop" => Inbound::Stop,
        other => Inbound::Unknown(other.to_owned()),
    })
}

fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_quoted(&mut out, s);
    out
}

/// Appends `s` as a JSON string. Stream ids, base64 and mark names never need escaping: they
/// are copied as they are, and only a string that does goes through serde_json (these
/// messages are built 50 times a second per call).
fn push_quoted(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned()));
    }
}

/// `{"event":E,"streamSid":S,E:{field:value}}`, the shape of `media` and `mark`.
fn with_one_field(event: &str, stream_sid: &str, field: &str, value: &str) -> String {
    let mut out = String::with_capacity(48 + 2 * event.len() + stream_sid.len() + value.len());
    out.push_str("{\"event\":\"");
    out.push_str(event);
    out.push_str("\",\"streamSid\":");
    push_quoted(&mut out, stream_sid);
    out.push_str(",\"");
    out.push_str(event);
    out.push_str("\":{\"");
    out.push_str(field);
    out.push_str("\":");
    push_quoted(&mut out, value);
    out.push_str("}}");
    out
}

/// `media` towards the caller; `payload_b64` is base64 mu-law.
pub fn media(stream_sid: &str, payload_b64: &str) -> String {
    with_one_field("media", stream_sid, "payload", payload_b64)
}

/// `mark`: Twilio echoes it once the audio queued before it has played.
pub fn mark(stream_sid: &str, name: &str) -> String {
    with_one_field("mark", stream_sid, "name", name)
}

/// `clear`: drops queued audio at once (and echoes every pending mark).
pub fn clear(stream_sid: &str) -> String {
    format!(
        "{{\"event\":\"clear\",\"streamSid\":{}}}",
        quoted(stream_sid)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_examples() {
        let start = r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"call_id":"call_1","token":"t"}},"streamSid":"MZ1"}"#;
        let Inbound::Start(s) = parse(start).expect("start") else {
            panic!("not a start");
        };
        assert_eq!(s.stream_sid, "MZ1");
        assert_eq!(
            s.custom_parameters.get("token").map(String::as_str),
            Some("t")
        );
        assert_eq!(s.sample_rate, 8000);
        let media = r#"{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"5","payload":"no+JhoaJjpz="},"streamSid":"MZ1"}"#;
        assert_eq!(
            parse(media).expect("media"),
            Inbound::Media {
                payload: Cow::Borrowed("no+JhoaJjpz="),
                timestamp_ms: Some(5)
            }
        );
        let mark =
            r#"{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"my label"}}"#;
        assert_eq!(
            parse(mark).expect("mark"),
            Inbound::Mark {
                name: "my label".into()
            }
        );
        let stop = r#"{"event":"stop","sequenceNumber":"5","stop":{"accountSid":"AC1","callSid":"CA1"},"streamSid":"MZ1"}"#;
        assert_eq!(parse(stop).expect("stop"), Inbound::Stop);
        assert_eq!(
            parse(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#).expect("c"),
            Inbound::Connected
        );
    }

    #[test]
    fn odd_frames_are_errors_or_unknown() {
        assert!(parse("not json").is_err());
        assert!(parse(r#"{"event":"media"}"#).is_err());
        assert!(parse(r#"{"event":"mark","mark":{}}"#).is_err());
        assert_eq!(
            parse(r#"{"event":"close"}"#).expect("unknown"),
            Inbound::Unknown("close".into())
        );
        // Numbers where strings are documented are accepted.
        let m = parse(r#"{"event":"media","media":{"payload":"AA==","timestamp":40}}"#);
        assert!(matches!(
            m,
            Ok(Inbound::Media {
                timestamp_ms: Some(40),
                ..
            })
        ));
    }

    #[test]
    fn strings_are_quoted_exactly_as_serde_json_quotes_them() {
        for s in [
            "MZ0123abc",
            "no+JhoaJjpz/AA==",
            "3:12:1600",
            "",
            "quote\"inside",
            "back\\slash",
            "tab\there",
            "line\nfeed",
            "\u{1}",
            "\u{7f}",
            "é ü 名",
        ] {
            assert_eq!(quoted(s), serde_json::to_string(s).expect("json"), "{s:?}");
        }
        let v: serde_json::Value =
            serde_json::from_str(&media("MZ\"1", "AA==")).expect("valid json");
        assert_eq!(v["streamSid"], "MZ\"1");
        assert_eq!(v["media"]["payload"], "AA==");
    }

    #[test]
    fn outbound_shapes() {
        assert_eq!(
            media("MZ1", "//8A"),
            r#"{"event":"media","streamSid":"MZ1","media":{"payload":"//8A"}}"#
        );
        assert_eq!(
            mark("MZ1", "m1"),
            r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"m1"}}"#
        );
        assert_eq!(clear("MZ1"), r#"{"event":"clear","streamSid":"MZ1"}"#);
        let v: serde_json::Value = serde_json::from_str(&mark("M\"Z", "n")).expect("valid json");
        assert_eq!(v["streamSid"], "M\"Z");
    }
}
