//! TwiML parameters: every value we interpolate into a TwiML document (call metadata as
//! `<Parameter>`s, spoken text, numbers, URLs) must come out as a well-formed XML 1.0
//! document that gives Twilio back exactly that value; and what Twilio then echoes in the
//! Media Streams `start` frame (`customParameters`) must parse back to the same value.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use switchboard_domain::ids::{CallId, OrgId};
use switchboard_domain::Timestamp;
use switchboard_twilio::{media, twiml};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    url: &'a str,
    params: Vec<(&'a str, &'a str)>,
    text: &'a str,
    target: &'a str,
    caller_id: &'a str,
    action: Option<&'a str>,
    lines: Vec<&'a str>,
    digits: &'a str,
    token: &'a str,
    now_ms: i64,
}

/// What a value should read as after the XML round trip: XML 1.0 cannot carry most control
/// characters or U+FFFE/U+FFFF at all, so `escape` drops them; everything else is kept.
fn expected(s: &str) -> String {
    s.chars()
        .filter(|&c| {
            !(((c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t'))
                || c == '\u{FFFE}'
                || c == '\u{FFFF}')
        })
        .collect()
}

fn parse(doc: &str) -> roxmltree::Document<'_> {
    match roxmltree::Document::parse(doc) {
        Ok(d) => d,
        Err(e) => panic!("TwiML is not well-formed XML ({e}): {doc:?}"),
    }
}

fn text_of(doc: &roxmltree::Document<'_>, tag: &str) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name(tag))
        .map(|n| n.text().unwrap_or("").to_owned())
        .collect()
}

fuzz_target!(|i: Input<'_>| {
    let stream = twiml::connect_stream(i.url, &i.params);
    {
        let doc = parse(&stream);
        let s = doc
            .descendants()
            .find(|n| n.has_tag_name("Stream"))
            .expect("a Stream element");
        assert_eq!(s.attribute("url").unwrap_or(""), expected(i.url));
        let got: Vec<(String, String)> = s
            .children()
            .filter(|n| n.has_tag_name("Parameter"))
            .map(|n| {
                (
                    n.attribute("name").unwrap_or("").to_owned(),
                    n.attribute("value").unwrap_or("").to_owned(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = i
            .params
            .iter()
            .map(|(k, v)| (expected(k), expected(v)))
            .collect();
        assert_eq!(got, want);
        // Twilio echoes the parameters as JSON in `start`; the parser gives them back.
        let custom: serde_json::Map<String, serde_json::Value> = got
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let frame = serde_json::json!({
            "event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
            "start": {"streamSid": "MZ1", "callSid": "CA1", "accountSid": "AC1",
                      "customParameters": custom, "tracks": ["inbound"],
                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}
        })
        .to_string();
        match media::parse(&frame) {
            Ok(media::Inbound::Start(start)) => {
                for (k, v) in &got {
                    // A repeated name keeps its last value, as a JSON object does.
                    let last = got.iter().rev().find(|(k2, _)| k2 == k).map(|(_, v)| v);
                    assert_eq!(start.custom_parameters.get(k), last, "{k}: {v}");
                }
            }
            other => panic!("start frame did not parse: {other:?}"),
        }
    }

    let doc = twiml::say_hangup(i.text);
    assert_eq!(text_of(&parse(&doc), "Say"), vec![expected(i.text)]);

    let doc = twiml::say_dial_action(Some(i.text), i.target, i.caller_id, i.action);
    {
        let d = parse(&doc);
        let dial = d
            .descendants()
            .find(|n| n.has_tag_name("Dial"))
            .expect("a Dial element");
        assert_eq!(
            dial.attribute("callerId").unwrap_or(""),
            expected(i.caller_id)
        );
        assert_eq!(dial.attribute("action"), i.action.map(expected).as_deref());
        let noun = dial.first_element_child().expect("Number or Sip");
        assert_eq!(noun.text().unwrap_or(""), expected(i.target));
    }

    let doc = twiml::hold_in_conference(i.text, i.target);
    assert_eq!(
        text_of(&parse(&doc), "Conference"),
        vec![expected(i.target)]
    );
    let doc = twiml::join_conference(i.text, i.target);
    assert_eq!(text_of(&parse(&doc), "Say"), vec![expected(i.text)]);

    let doc = twiml::gather_answer(&i.lines, i.url, i.target);
    {
        let d = parse(&doc);
        let want: Vec<String> = i.lines.iter().map(|l| expected(l)).collect();
        assert_eq!(text_of(&d, "Say"), want);
        assert_eq!(text_of(&d, "Redirect"), vec![expected(i.target)]);
    }

    let doc = twiml::play_digits_then(i.digits, &stream);
    parse(&doc);
    let doc = twiml::then_redirect(&stream, i.url);
    parse(&doc);
    let doc = twiml::redirect(i.url);
    assert_eq!(text_of(&parse(&doc), "Redirect"), vec![expected(i.url)]);

    let bodies: Vec<(&str, Option<&str>)> = i.lines.iter().map(|l| (*l, i.action)).collect();
    let doc = twiml::messages(&bodies);
    let want: Vec<String> = i.lines.iter().map(|l| expected(l)).collect();
    assert_eq!(text_of(&parse(&doc), "Message"), want);

    // The media token travels as a `<Parameter>`: any value is refused or accepted, never a
    // panic, and only a token we minted for this call is accepted.
    let (org, call) = (OrgId::generate(), CallId::generate());
    let now = Timestamp::from_millis(i.now_ms.clamp(0, 4_000_000_000_000));
    assert!(
        !switchboard_voice::token::verify("secret", &org, &call, i.token, now)
            || i.token.contains('.')
    );
    let minted = switchboard_voice::token::mint("secret", &org, &call, now);
    assert!(switchboard_voice::token::verify(
        "secret", &org, &call, &minted, now
    ));
    assert!(!switchboard_voice::token::verify(
        "secret",
        &org,
        &CallId::generate(),
        &minted,
        now
    ));
});
