//! The fake's side of new TwiML on a live call, as Twilio plays it:
//! - `<Dial action="...">`: the target rings and the scripted outcome happens (per dialled
//!   number; answered and talked for a while by default); then Twilio POSTs the signed
//!   `action` callback with `DialCallStatus`, `DialCallSid`, `DialCallDuration` and the
//!   parent's `CallStatus`, and plays the TwiML it answers;
//! - `<Play digits="...">`: the keys are sent down the line (recorded for the test);
//! - `<Connect><Stream>`: a new media stream to the server, with the TwiML's parameters,
//!   which the test takes with [`crate::twilio::FakeTwilioRest::resumed`].
//!
//! Anything else (`<Hangup/>`, `<Say>`) ends the call: an outbound call of the fake then
//! reports `completed`.

use crate::twilio::{stream_of, MediaCall};
use crate::twilio_calls::{pairs, Outbound, ServerLink};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a dialled transfer target answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialScript {
    /// Answers and talks for this many seconds, then the bridged call ends
    /// (`DialCallStatus=completed`).
    Complete(u32),
    /// Busy (`busy`).
    Busy,
    /// Rings out (`no-answer`).
    NoAnswer,
    /// Cannot be reached (`failed`).
    Failed,
    /// The caller hangs up while it rings (`canceled`, the parent `completed`).
    CallerHangsUp,
}

/// One `<Dial>` the fake played.
#[derive(Debug, Clone)]
pub struct DialRecord {
    /// The parent call.
    pub call_sid: String,
    /// The `<Number>` or `<Sip>` dialled.
    pub target: String,
    /// The `callerId` attribute.
    pub caller_id: Option<String>,
    /// The `action` attribute.
    pub action: Option<String>,
    /// The `DialCallStatus` the fake reported.
    pub outcome: &'static str,
}

/// The fake's dial state.
#[derive(Default)]
pub(crate) struct Dials {
    scripts: Mutex<HashMap<String, VecDeque<DialScript>>>,
    pub(crate) log: Mutex<Vec<DialRecord>>,
    /// `<Play digits>` sent, per call: (CallSid, digits).
    pub(crate) digits: Mutex<Vec<(String, String)>>,
    /// Conferences by name: the CallSids in each, in the order they joined.
    pub(crate) conferences: Mutex<HashMap<String, Vec<String>>>,
    /// Agent audio bytes each person heard on a briefing stream: (CallSid, bytes).
    pub(crate) briefings: Mutex<Vec<(String, usize)>>,
    /// What each call heard through `<Say>`: (CallSid, text).
    pub(crate) heard: Mutex<Vec<(String, String)>>,
    /// Streams reconnected by new TwiML: (CallSid, the stream until the test takes it).
    resumed: Mutex<Vec<(String, Option<MediaCall>)>>,
    notify: tokio::sync::Notify,
}

impl Dials {
    pub(crate) fn script(&self, target: &str, scripts: Vec<DialScript>) {
        self.scripts
            .lock()
            .unwrap()
            .entry(target.to_owned())
            .or_default()
            .extend(scripts);
    }

    fn next(&self, target: &str) -> DialScript {
        self.scripts
            .lock()
            .unwrap()
            .get_mut(target)
            .and_then(VecDeque::pop_front)
            .unwrap_or(DialScript::Complete(5))
    }

    /// Waits for the `n`th (0-based) stream reconnected on `call_sid`.
    pub(crate) async fn resumed(&self, call_sid: &str, n: usize, limit: Duration) -> MediaCall {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut all = self.resumed.lock().unwrap();
                if let Some((_, m)) = all.iter_mut().filter(|(s, _)| s == call_sid).nth(n) {
                    if let Some(m) = m.take() {
                        return m;
                    }
                }
            }
            assert!(
                tokio::time::timeout_at(deadline, &mut notified)
                    .await
                    .is_ok(),
                "no stream {n} was reconnected on {call_sid}"
            );
        }
    }
}

/// The value of attribute `name` in the first `<tag ...>` of `xml`, unescaped.
fn attr_of(xml: &str, tag: &str, name: &str) -> Option<String> {
    let s = xml.find(&format!("<{tag}"))?;
    let end = xml[s..].find('>')? + s;
    let open = &xml[s..end];
    let start = open.find(&format!(" {name}=\""))? + name.len() + 3;
    let stop = open[start..].find('"')? + start;
    Some(unescape(&open[start..stop]))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The name of the first `<Conference>` in `xml`.
fn conference_of(xml: &str) -> Option<String> {
    let s = xml.find("<Conference")?;
    let body = s + xml[s..].find('>')? + 1;
    let end = body + xml[body..].find("</Conference>")?;
    Some(unescape(&xml[body..end]))
}

/// The URL of the first `<Redirect>` in `xml`.
fn redirect_of(xml: &str) -> Option<String> {
    let s = xml.find("<Redirect")?;
    let body = s + xml[s..].find('>')? + 1;
    let end = body + xml[body..].find("</Redirect>")?;
    Some(unescape(&xml[body..end]))
}

/// The text of the first `<noun>...</noun>` inside `<Dial>`.
fn dial_target(xml: &str) -> Option<String> {
    let dial = &xml[xml.find("<Dial")?..];
    for noun in ["Number", "Sip"] {
        if let Some(s) = dial.find(&format!("<{noun}")) {
            let body = s + dial[s..].find('>')? + 1;
            let end = body + dial[body..].find(&format!("</{noun}>"))?;
            return Some(unescape(&dial[body..end]));
        }
    }
    None
}

impl Outbound {
    /// Plays TwiML that replaced a live call's (the old stream has been stopped).
    pub(crate) async fn play_update(self: Arc<Self>, sid: String, account: String, twiml: String) {
        let link = self.link.lock().unwrap().clone();
        let mut twiml = twiml;
        // New TwiML takes the call out of any conference it was in.
        self.leave_conferences(&sid);
        self.hear(&sid, &twiml);
        if let Some(name) = conference_of(&twiml) {
            self.dials
                .conferences
                .lock()
                .unwrap()
                .entry(name)
                .or_default()
                .push(sid);
            return;
        }
        if let Some(target) = dial_target(&twiml) {
            let script = self.dials.next(&target);
            let (outcome, duration, parent) = match script {
                DialScript::Complete(s) => ("completed", s, "in-progress"),
                DialScript::Busy => ("busy", 0, "in-progress"),
                DialScript::NoAnswer => ("no-answer", 0, "in-progress"),
                DialScript::Failed => ("failed", 0, "in-progress"),
                DialScript::CallerHangsUp => ("canceled", 0, "completed"),
            };
            let action = attr_of(&twiml, "Dial", "action");
            self.dials.log.lock().unwrap().push(DialRecord {
                call_sid: sid.clone(),
                target: target.clone(),
                caller_id: attr_of(&twiml, "Dial", "callerId"),
                action: action.clone(),
                outcome,
            });
            // The target rings a moment first.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let (Some(action), Some(link)) = (action, link.clone()) else {
                // No action: the call ends with the dial.
                return self.ended(&sid).await;
            };
            let duration = duration.to_string();
            let dial_sid = format!("CA{:032x}", self.dials.log.lock().unwrap().len() + 0xd1a1);
            let res = link
                .post(
                    &action,
                    &[
                        ("AccountSid", account.as_str()),
                        ("ApiVersion", "2010-04-01"),
                        ("CallSid", sid.as_str()),
                        ("CallStatus", parent),
                        ("DialCallSid", dial_sid.as_str()),
                        ("DialCallStatus", outcome),
                        ("DialCallDuration", duration.as_str()),
                    ],
                )
                .await;
            twiml = match res {
                Ok(r) if r.status().is_success() && parent != "completed" => {
                    r.text().await.unwrap_or_default()
                }
                _ => return self.ended(&sid).await,
            };
        }
        if let Some(digits) = attr_of(&twiml, "Play", "digits") {
            self.dials
                .digits
                .lock()
                .unwrap()
                .push((sid.clone(), digits));
        }
        match (stream_of(&twiml), link) {
            (Some((_, params)), Some(link)) => self.reconnect(&sid, &link, &params).await,
            _ => self.ended(&sid).await,
        }
    }

    /// `<Connect><Stream>` on a live call: a new media stream to the server.
    async fn reconnect(
        self: &Arc<Self>,
        sid: &str,
        link: &ServerLink,
        params: &[(String, String)],
    ) {
        match MediaCall::connect(
            &format!("{}/twilio/media", link.ws),
            sid,
            params,
            Duration::from_millis(20),
            1.0,
        )
        .await
        {
            Ok(media) => {
                if let Some(live) = &self.live {
                    live.lock()
                        .unwrap()
                        .insert(sid.to_owned(), media.commands());
                }
                self.dials
                    .resumed
                    .lock()
                    .unwrap()
                    .push((sid.to_owned(), Some(media)));
                self.dials.notify.notify_waiters();
            }
            Err(_) => self.ended(sid).await,
        }
    }

    fn leave_conferences(&self, sid: &str) {
        for members in self.dials.conferences.lock().unwrap().values_mut() {
            members.retain(|m| m != sid);
        }
    }

    /// Records the `<Say>`s of `twiml` as heard on `sid`.
    fn hear(&self, sid: &str, twiml: &str) {
        let mut heard = self.dials.heard.lock().unwrap();
        let mut rest = twiml;
        while let Some(s) = rest.find("<Say>") {
            let body = s + 5;
            let Some(end) = rest[body..].find("</Say>") else {
                break;
            };
            heard.push((sid.to_owned(), unescape(&rest[body..body + end])));
            rest = &rest[body + end..];
        }
    }

    /// A person answers a call the fake placed: they hear its TwiML, answer its gathers, and
    /// join a conference or hang up as it says.
    pub(crate) async fn person(self: &Arc<Self>, sid: &str, input: &'static str) {
        self.callback(sid, "in-progress", &[]).await;
        let Some(link) = self.link.lock().unwrap().clone() else {
            return;
        };
        let (url, params) = self.call_params(sid, "in-progress");
        let mut next = Some((url, Vec::new()));
        while let Some((url, extra)) = next.take() {
            let mut form = params.clone();
            form.extend(extra);
            let res = link.post(&url, &pairs(&form)).await;
            let twiml = match res {
                Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
                _ => break,
            };
            self.hear(sid, &twiml);
            if let Some((_, stream)) = stream_of(&twiml) {
                // Briefed on a media stream: they listen, answer, and the server moves their
                // call on (a REST update ends the stream); if it closes the stream instead,
                // Twilio goes on to the next verb.
                if self.briefed(sid, &link, &stream, input).await {
                    return;
                }
                next = redirect_of(&twiml).map(|u| (u, Vec::new()));
                continue;
            }
            if let Some(action) = attr_of(&twiml, "Gather", "action") {
                next = if input.is_empty() {
                    // Silence: the gather times out and Twilio goes on to `<Redirect>`.
                    redirect_of(&twiml).map(|u| (u, Vec::new()))
                } else if input
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
                {
                    Some((action, vec![("Digits".to_owned(), input.to_owned())]))
                } else {
                    Some((
                        action,
                        vec![
                            ("SpeechResult".to_owned(), input.to_owned()),
                            ("Confidence".to_owned(), "0.92".to_owned()),
                        ],
                    ))
                };
                continue;
            }
            if let Some(name) = conference_of(&twiml) {
                self.dials
                    .conferences
                    .lock()
                    .unwrap()
                    .entry(name)
                    .or_default()
                    .push(sid.to_owned());
                return;
            }
            next = redirect_of(&twiml).map(|u| (u, Vec::new()));
        }
        self.callback(sid, "completed", &[("CallDuration", "9")])
            .await;
    }

    /// A person on a media stream: waits for the agent to speak, answers (`input`: keys, or
    /// words as the caller fixture's audio), and waits for the stream to end. `true` when
    /// the server moved the call on through the REST API (the stream got `stop`).
    async fn briefed(
        self: &Arc<Self>,
        sid: &str,
        link: &ServerLink,
        params: &[(String, String)],
        input: &'static str,
    ) -> bool {
        let Ok(media) = MediaCall::connect(
            &format!("{}/twilio/media", link.ws),
            sid,
            params,
            Duration::from_millis(20),
            1.0,
        )
        .await
        else {
            return false;
        };
        if let Some(live) = &self.live {
            live.lock()
                .unwrap()
                .insert(sid.to_owned(), media.commands());
        }
        let received = media.received.clone();
        media
            .until(Duration::from_secs(20), |r| !r.audio.is_empty() || r.closed)
            .await;
        if input
            .chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
        {
            media.press(input);
        } else {
            media.play(crate::fixtures::CALLER_BOOKING);
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), media.ended()).await;
        let r = received.lock().unwrap().clone();
        self.dials
            .briefings
            .lock()
            .unwrap()
            .push((sid.to_owned(), r.audio.len()));
        r.stopped
    }

    /// The call's TwiML ran out: an outbound call of the fake completes.
    async fn ended(&self, sid: &str) {
        if self.knows(sid) {
            self.callback(sid, "completed", &[("CallDuration", "5")])
                .await;
        }
    }
}

/// What the test reads of the fake's `<Dial>`s, conferences, `<Say>`s, keys and reconnected
/// streams.
impl crate::twilio::FakeTwilioRest {
    /// What the next `<Dial>`s to `target` (a number or SIP URI) do, in order (default:
    /// answered, talked for 5 s, completed).
    pub fn script_dial(&self, target: &str, scripts: impl IntoIterator<Item = DialScript>) {
        self.outbound
            .dials
            .script(target, scripts.into_iter().collect());
    }

    /// The `<Dial>`s played so far.
    pub fn dials(&self) -> Vec<DialRecord> {
        self.outbound.dials.log.lock().unwrap().clone()
    }

    /// The CallSids in the conference `name` now, in the order they joined.
    pub fn conference(&self, name: &str) -> Vec<String> {
        self.outbound
            .dials
            .conferences
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// How many bytes of agent audio the person on `call_sid` heard on each briefing stream
    /// that has ended.
    pub fn briefings(&self, call_sid: &str) -> Vec<usize> {
        self.outbound
            .dials
            .briefings
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| s == call_sid)
            .map(|(_, n)| *n)
            .collect()
    }

    /// What was said (`<Say>`) on `call_sid` so far, in order.
    pub fn heard(&self, call_sid: &str) -> Vec<String> {
        self.outbound
            .dials
            .heard
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| s == call_sid)
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// The keys sent with `<Play digits>` so far: (CallSid, digits).
    pub fn sent_digits(&self) -> Vec<(String, String)> {
        self.outbound.dials.digits.lock().unwrap().clone()
    }

    /// Waits for the `n`th (0-based) media stream that new TwiML reconnected on `call_sid`
    /// (after a failed transfer, or `<Play digits>`), and hands it over.
    pub async fn resumed(&self, call_sid: &str, n: usize, limit: Duration) -> MediaCall {
        self.outbound.dials.resumed(call_sid, n, limit).await
    }
}
