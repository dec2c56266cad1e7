//! TwiML documents we answer with. Every interpolated value is XML-escaped.

/// Escapes text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // An XML parser turns a literal tab or line break in an attribute value into a
            // space, and a literal CR into LF anywhere; character references survive both,
            // so Twilio reads back exactly the value we wrote (found by fuzz/twiml_params).
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            // Other control characters, and U+FFFE/U+FFFF, are not allowed in XML 1.0.
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

/// `<Connect><Stream>`: a bidirectional media stream to `url` (wss, no query string), with
/// the call's metadata as `<Parameter>`s.
// SignalWire's cXML documents `<Connect><Stream>` and `<Parameter>`; that a space hands the
// parameters to the socket's `start` as `customParameters`, exactly as Twilio does, is
// UNCONFIRMED against the live service (the call is authenticated by them, so a space that
// dropped them would have its calls refused at the stream, loudly, never answered unchecked).
pub fn connect_stream(url: &str, params: &[(&str, &str)]) -> String {
    let mut xml = format!("{HEAD}<Response><Connect><Stream url=\"{}\">", escape(url));
    for (name, value) in params {
        xml.push_str(&format!(
            "<Parameter name=\"{}\" value=\"{}\"/>",
            escape(name),
            escape(value)
        ));
    }
    xml.push_str("</Stream></Connect></Response>");
    xml
}

/// Speaks `text`, then hangs up.
pub fn say_hangup(text: &str) -> String {
    format!(
        "{HEAD}<Response><Say>{}</Say><Hangup/></Response>",
        escape(text)
    )
}

/// Optionally speaks `text`, then dials `number` with `caller_id` as the caller id.
pub fn say_dial(text: Option<&str>, number: &str, caller_id: &str) -> String {
    say_dial_to(text, number, caller_id)
}

/// Optionally speaks `text`, then dials `target`: a `<Sip>` for a `sip:`/`sips:` URI, else a
/// `<Number>`, with `caller_id` as the caller id.
pub fn say_dial_to(text: Option<&str>, target: &str, caller_id: &str) -> String {
    say_dial_action(text, target, caller_id, None)
}

/// [`say_dial_to`] with an `action` URL: when the dial ends (the bridged call is over, or the
/// target was busy, did not answer or failed), Twilio POSTs `DialCallStatus` there and plays
/// the TwiML it answers, instead of hanging up.
pub fn say_dial_action(
    text: Option<&str>,
    target: &str,
    caller_id: &str,
    action: Option<&str>,
) -> String {
    let action = action
        .map(|a| format!(" action=\"{}\" method=\"POST\"", escape(a)))
        .unwrap_or_default();
    let say = text
        .map(|t| format!("<Say>{}</Say>", escape(t)))
        .unwrap_or_default();
    let lower = target.to_ascii_lowercase();
    let noun = if lower.starts_with("sip:") || lower.starts_with("sips:") {
        "Sip"
    } else {
        "Number"
    };
    format!(
        "{HEAD}<Response>{say}<Dial callerId=\"{}\"{action}><{noun}>{}</{noun}></Dial></Response>",
        escape(caller_id),
        escape(target)
    )
}

/// Says `text`, then holds the caller in the conference `name` with Twilio's hold music
/// until someone who starts it joins (`startConferenceOnEnter=false`); the conference ends
/// when the caller leaves it.
pub fn hold_in_conference(text: &str, name: &str) -> String {
    format!(
        "{HEAD}<Response><Say>{}</Say><Dial><Conference startConferenceOnEnter=\"false\" endConferenceOnExit=\"true\" beep=\"false\">{}</Conference></Dial></Response>",
        escape(text),
        escape(name)
    )
}

/// Says `text`, then joins the conference `name` and starts it (the person taking a warm
/// transfer joins the caller on hold).
pub fn join_conference(text: &str, name: &str) -> String {
    format!(
        "{HEAD}<Response><Say>{}</Say><Dial><Conference startConferenceOnEnter=\"true\" endConferenceOnExit=\"true\" beep=\"false\">{}</Conference></Dial></Response>",
        escape(text),
        escape(name)
    )
}

/// Reads `lines` to the person answering and waits for one key or a spoken answer, posted
/// to `action`; without an answer Twilio goes on to `<Redirect>` to `no_input`.
pub fn gather_answer(lines: &[&str], action: &str, no_input: &str) -> String {
    let says: String = lines
        .iter()
        .map(|l| format!("<Say>{}</Say>", escape(l)))
        .collect();
    format!(
        "{HEAD}<Response><Gather input=\"dtmf speech\" numDigits=\"1\" timeout=\"6\" speechTimeout=\"auto\" action=\"{}\" method=\"POST\">{says}</Gather><Redirect method=\"POST\">{}</Redirect></Response>",
        escape(action),
        escape(no_input)
    )
}

/// Presses `digits` on the line (`<Play digits>`: `0`-`9`, `*`, `#`, and `w` for a half-second
/// pause), then plays the verbs of `then` (a whole TwiML document, e.g. a `<Connect><Stream>`).
pub fn play_digits_then(digits: &str, then: &str) -> String {
    let body = then
        .strip_prefix(HEAD)
        .unwrap_or(then)
        .trim_start_matches("<Response>")
        .trim_end_matches("</Response>");
    format!(
        "{HEAD}<Response><Play digits=\"{}\"/>{body}</Response>",
        escape(digits)
    )
}

/// Tells Twilio to fetch the call's next TwiML from `url` with a POST (the call goes on).
/// Used by a draining instance to send a new call back through the load balancer.
pub fn redirect(url: &str) -> String {
    format!(
        "{HEAD}<Response><Redirect method=\"POST\">{}</Redirect></Response>",
        escape(url)
    )
}

/// `doc`'s verbs, then `<Redirect>` (POST) to `url`: where Twilio goes when they end, e.g. a
/// `<Connect><Stream>` whose socket closed.
pub fn then_redirect(doc: &str, url: &str) -> String {
    let body = doc.strip_suffix("</Response>").unwrap_or(doc);
    format!(
        "{body}<Redirect method=\"POST\">{}</Redirect></Response>",
        escape(url)
    )
}

/// Hangs up at once.
pub fn hangup() -> String {
    format!("{HEAD}<Response><Hangup/></Response>")
}

/// An empty response: Twilio sends nothing back to the texter.
pub fn empty() -> String {
    format!("{HEAD}<Response/>")
}

/// A reply text message for each body, in order, each with an optional status callback URL
/// (absolute; the message's delivery reports are posted there).
pub fn messages(bodies: &[(&str, Option<&str>)]) -> String {
    if bodies.is_empty() {
        return empty();
    }
    let mut xml = format!("{HEAD}<Response>");
    for (body, callback) in bodies {
        match callback {
            Some(url) => xml.push_str(&format!(
                "<Message statusCallback=\"{}\">{}</Message>",
                escape(url),
                escape(body)
            )),
            None => xml.push_str(&format!("<Message>{}</Message>", escape(body))),
        }
    }
    xml.push_str("</Response>");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_escaped_with_callbacks() {
        assert_eq!(
            empty(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"
        );
        let xml = messages(&[
            (
                "Fish & chips <3",
                Some("https://x.test/s?message_id=m1&a=b"),
            ),
            ("Second", None),
        ]);
        assert!(xml.contains(
            "<Message statusCallback=\"https://x.test/s?message_id=m1&amp;a=b\">Fish &amp; chips &lt;3</Message><Message>Second</Message>"
        ));
        assert_eq!(messages(&[]), empty());
    }

    #[test]
    fn stream_parameters_are_escaped() {
        let xml = connect_stream(
            "wss://voice.example.com/twilio/media",
            &[("call_id", "call_1"), ("token", "a\"<&>")],
        );
        assert!(xml.starts_with("<?xml"));
        assert!(xml.contains("<Stream url=\"wss://voice.example.com/twilio/media\">"));
        assert!(xml.contains("<Parameter name=\"token\" value=\"a&quot;&lt;&amp;&gt;\"/>"));
        // Only the XML declaration has `?`: nothing travels in the stream URL's query string.
        assert_eq!(xml.matches('?').count(), 2);
    }

    #[test]
    fn dial_picks_the_noun() {
        let sip = say_dial_to(
            Some("One moment & thanks"),
            "sip:desk@pbx.example.com;transport=tls",
            "+15550001001",
        );
        assert!(sip.contains("<Say>One moment &amp; thanks</Say>"), "{sip}");
        assert!(
            sip.contains("<Dial callerId=\"+15550001001\"><Sip>sip:desk@pbx.example.com;transport=tls</Sip></Dial>"),
            "{sip}"
        );
        let number = say_dial_to(None, "+15550009999", "+15557770000");
        assert!(
            number.contains(
                "<Response><Dial callerId=\"+15557770000\"><Number>+15550009999</Number></Dial>"
            ),
            "{number}"
        );
    }

    #[test]
    fn dial_action_is_escaped() {
        let xml = say_dial_action(
            None,
            "+15550009999",
            "+15557770000",
            Some("https://x.test/twilio/voice/dial?call_id=call_1&a=b"),
        );
        assert!(
            xml.contains("<Dial callerId=\"+15557770000\" action=\"https://x.test/twilio/voice/dial?call_id=call_1&amp;a=b\" method=\"POST\"><Number>+15550009999</Number></Dial>"),
            "{xml}"
        );
    }

    #[test]
    fn play_digits_then_stream() {
        let xml = play_digits_then(
            "1w2#",
            &connect_stream("wss://x.test/twilio/media", &[("call_id", "c")]),
        );
        assert!(
            xml.contains("<Response><Play digits=\"1w2#\"/><Connect><Stream url=\"wss://x.test/twilio/media\">"),
            "{xml}"
        );
        assert_eq!(xml.matches("<?xml").count(), 1);
    }

    #[test]
    fn a_stream_then_a_redirect() {
        let xml = then_redirect(
            &connect_stream("wss://x.test/twilio/media", &[("role", "whisper")]),
            "https://x.test/twilio/voice/warm/ask?call_id=c&a=b",
        );
        assert!(
            xml.ends_with("</Stream></Connect><Redirect method=\"POST\">https://x.test/twilio/voice/warm/ask?call_id=c&amp;a=b</Redirect></Response>"),
            "{xml}"
        );
    }

    #[test]
    fn say_is_escaped() {
        assert_eq!(
            say_hangup("Tom & Jerry <3"),
            format!("{HEAD}<Response><Say>Tom &amp; Jerry &lt;3</Say><Hangup/></Response>")
        );
    }

    #[test]
    fn whitespace_survives_attribute_normalization_and_xml_forbidden_chars_go() {
        // A parser would read a literal newline in an attribute back as a space.
        assert_eq!(
            escape("a\nb\tc\rd\u{1}e\u{FFFE}f\u{FFFF}"),
            "a&#10;b&#9;c&#13;def"
        );
    }

    #[test]
    fn redirect_posts_to_an_escaped_url() {
        assert_eq!(
            redirect("https://x.test/twilio/voice?drain_hop=1&a=b"),
            format!("{HEAD}<Response><Redirect method=\"POST\">https://x.test/twilio/voice?drain_hop=1&amp;a=b</Redirect></Response>")
        );
    }
}
