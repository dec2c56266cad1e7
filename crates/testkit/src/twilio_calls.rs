//! The outbound side of the fake Twilio: `POST .../Calls.json` answers like Twilio (201 with a
//! `CA...` sid, or Twilio's JSON error), then plays the call's life as Twilio does: signed
//! status callbacks (`initiated`, `ringing`, then `in-progress` or the failure), the signed
//! TwiML fetch from `Url` when answered, and the Media Stream to the server.

use crate::twilio::{stream_of, MediaCall, RestRequest};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the next created call does.
#[derive(Debug, Clone)]
pub enum CallScript {
    /// Rings, is answered by a person, fetches the TwiML and connects the media stream; the
    /// answering-machine detection (when asked for) then says `human`.
    Answer,
    /// Answered like `Answer`, but the detection's result never comes (a person who speaks
    /// right away must not wait for it).
    AnswerWithoutDetection,
    /// Answered by a person (the detection says `human`) who hangs up as soon as the media
    /// stream is up: the stream stops and the call completes.
    AnswerAndHangUp,
    /// Answered by a machine: the stream connects, then the detection reports this
    /// `AnsweredBy` (`machine_end_beep`, `machine_end_silence`, `fax`, ...).
    Machine(&'static str),
    /// Rings, then busy (SIP 486).
    Busy,
    /// Rings out: no answer (SIP 487).
    NoAnswer,
    /// Rings until the call is cancelled through the REST API.
    RingUntilCanceled,
    /// The create request is refused: HTTP status, Twilio error code, message.
    Refuse(u16, i64, String),
    /// Answered by a person who listens to the TwiML (its `<Say>`s are recorded) and answers
    /// every `<Gather>` with this: digits as `Digits`, words as `SpeechResult`, `""` as
    /// silence (the gather times out). A `<Conference>` joins them to it.
    Person(&'static str),
}

/// Where the fake reaches the server under test, and how it signs.
#[derive(Debug, Clone)]
pub(crate) struct ServerLink {
    /// The public base URL the server gives Twilio (`https://voice.example.test`).
    pub public: String,
    /// Where the server really listens (`http://127.0.0.1:port`).
    pub base: String,
    /// Its WebSocket base (`ws://127.0.0.1:port`).
    pub ws: String,
    /// The organization's auth token (Twilio signs with it; SignalWire with the signing key).
    pub auth_token: String,
    /// `X-Twilio-Signature`, or SignalWire's `X-SignalWire-Signature`.
    pub header: &'static str,
    /// What the REST API's Basic auth takes with the account: Twilio's auth token (the same
    /// as it signs with), SignalWire's API token (not its signing key).
    pub rest_token: String,
}

impl ServerLink {
    /// POSTs `params` to `url` (a public URL, or a path) as Twilio does: to where the server
    /// really listens, signed for the public URL.
    pub(crate) async fn post(
        &self,
        url: &str,
        params: &[(&str, &str)],
    ) -> Result<reqwest::Response, reqwest::Error> {
        let path = url.strip_prefix(&self.public).unwrap_or(url);
        crate::twilio::try_post_signed_as(
            &reqwest::Client::new(),
            &self.base,
            &self.public,
            path,
            (self.header, &self.auth_token),
            params,
        )
        .await
    }
}

/// `(name, value)` pairs borrowed for [`ServerLink::post`].
pub(crate) fn pairs(params: &[(String, String)]) -> Vec<(&str, &str)> {
    params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// One created call's state, for the test.
struct Placed {
    request: RestRequest,
    media: Option<MediaCall>,
    cancel: Option<tokio::sync::oneshot::Sender<()>>,
    /// Sequence number of the next status callback.
    seq: u32,
    /// Twilio reported it over (a terminal status callback was sent).
    ended: bool,
    /// Its latest status, as the Calls API shows it.
    status: String,
}

/// The fake's outbound calls.
#[derive(Default)]
pub(crate) struct Outbound {
    /// The fake's live streams (REST updates stop them).
    pub(crate) live: Option<crate::twilio::LiveStreams>,
    pub(crate) link: Mutex<Option<ServerLink>>,
    scripts: Mutex<VecDeque<CallScript>>,
    /// Scripts for calls to one number, used before the general queue.
    by_number: Mutex<std::collections::HashMap<String, VecDeque<CallScript>>>,
    /// Calls created and not yet over, and the most there ever were at once.
    active: Mutex<(usize, usize)>,
    calls: Mutex<Vec<(String, Placed)>>,
    notify: tokio::sync::Notify,
    /// The fake's recordings (`Record=true` calls are recorded from their answer).
    pub(crate) recordings: Option<Arc<crate::twilio_recordings::Recordings>>,
    /// `<Dial>`s, `<Play digits>` and reconnected streams of live calls (twilio_dial.rs).
    pub(crate) dials: crate::twilio_dial::Dials,
    /// Plays SignalWire: its SIDs are UUIDs.
    pub(crate) signalwire: std::sync::atomic::AtomicBool,
}

pub(crate) fn form_value(form: &[(String, String)], name: &str) -> String {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

impl Outbound {
    /// A fake whose answered calls' streams REST updates can stop.
    pub(crate) fn new(
        live: crate::twilio::LiveStreams,
        recordings: Arc<crate::twilio_recordings::Recordings>,
    ) -> Outbound {
        Outbound {
            live: Some(live),
            recordings: Some(recordings),
            ..Outbound::default()
        }
    }

    pub(crate) fn script(&self, scripts: Vec<CallScript>) {
        self.scripts.lock().unwrap().extend(scripts);
    }

    pub(crate) fn script_number(&self, number: &str, scripts: Vec<CallScript>) {
        self.by_number
            .lock()
            .unwrap()
            .entry(number.to_owned())
            .or_default()
            .extend(scripts);
    }

    /// The most calls that were ever created and not yet over at once.
    pub(crate) fn max_active(&self) -> usize {
        self.active.lock().unwrap().1
    }

    /// `POST .../Calls.json`: answers, and starts the call's life.
    pub(crate) fn create(
        self: &Arc<Self>,
        request: RestRequest,
        n: u64,
    ) -> (u16, serde_json::Value) {
        let to = form_value(&request.form, "To");
        let for_number = self
            .by_number
            .lock()
            .unwrap()
            .get_mut(&to)
            .and_then(VecDeque::pop_front);
        let script = for_number
            .or_else(|| self.scripts.lock().unwrap().pop_front())
            .unwrap_or(CallScript::Answer);
        if let CallScript::Refuse(status, code, message) = &script {
            return (
                *status,
                json!({"code": code, "message": message, "status": status,
                    "more_info": format!("https://www.twilio.com/docs/errors/{code}")}),
            );
        }
        let sid = crate::twilio::fake_sid(
            "CA",
            u128::from(n) + 0x00c0_ffee,
            self.signalwire.load(std::sync::atomic::Ordering::Relaxed),
        );
        let body = json!({"sid": sid, "account_sid": request.account_sid, "status": "queued",
            "to": form_value(&request.form, "To"), "from": form_value(&request.form, "From"),
            "direction": "outbound-api"});
        let (cancel_tx, cancel_rx) = tokio::sync::oneshot::channel();
        self.calls.lock().unwrap().push((
            sid.clone(),
            Placed {
                request,
                media: None,
                cancel: Some(cancel_tx),
                seq: 0,
                ended: false,
                status: "queued".into(),
            },
        ));
        {
            let mut active = self.active.lock().unwrap();
            active.0 += 1;
            active.1 = active.1.max(active.0);
        }
        self.notify.notify_waiters();
        let me = self.clone();
        tokio::spawn(async move { me.live(sid, script, cancel_rx).await });
        (201, body)
    }

    /// The call's life after the create answer (which Twilio sends first).
    async fn live(
        self: Arc<Self>,
        sid: String,
        script: CallScript,
        cancel: tokio::sync::oneshot::Receiver<()>,
    ) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.callback(&sid, "initiated", &[]).await;
        self.callback(&sid, "ringing", &[]).await;
        match script {
            CallScript::Busy => {
                self.callback(
                    &sid,
                    "busy",
                    &[("SipResponseCode", "486"), ("CallDuration", "0")],
                )
                .await
            }
            CallScript::NoAnswer => {
                self.callback(
                    &sid,
                    "no-answer",
                    &[("SipResponseCode", "487"), ("CallDuration", "0")],
                )
                .await
            }
            CallScript::RingUntilCanceled => {
                if cancel.await.is_ok() {
                    self.callback(&sid, "canceled", &[("CallDuration", "0")])
                        .await;
                }
            }
            CallScript::Answer => {
                if self.answer(&sid).await {
                    self.detection(&sid, "human").await;
                }
            }
            CallScript::AnswerWithoutDetection => {
                self.answer(&sid).await;
            }
            CallScript::AnswerAndHangUp => {
                if self.answer(&sid).await {
                    self.detection(&sid, "human").await;
                    let media = {
                        let mut calls = self.calls.lock().unwrap();
                        calls
                            .iter_mut()
                            .find(|(s, _)| *s == sid)
                            .and_then(|(_, p)| p.media.take())
                    };
                    if let Some(m) = media {
                        m.stop();
                    }
                    if let Some(live) = &self.live {
                        live.lock().unwrap().remove(&sid);
                    }
                    self.callback(&sid, "completed", &[("CallDuration", "1")])
                        .await;
                }
            }
            CallScript::Machine(answered_by) => {
                if self.answer(&sid).await {
                    // The detection waits for the greeting's end (DetectMessageEnd).
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    self.detection(&sid, answered_by).await;
                }
            }
            CallScript::Person(input) => self.person(&sid, input).await,
            CallScript::Refuse(..) => {}
        }
    }

    /// Answers: returns whether the media stream connected.
    async fn answer(self: &Arc<Self>, sid: &str) -> bool {
        self.callback(sid, "in-progress", &[]).await;
        self.start_recording(sid);
        let Some(link) = self.link.lock().unwrap().clone() else {
            return false;
        };
        let (url, params) = self.call_params(sid, "in-progress");
        let res = link.post(&url, &pairs(&params)).await;
        let twiml = match res {
            Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
            _ => {
                // The TwiML could not be fetched (the server went away): Twilio says an
                // application error to the callee and hangs up, and the call completes.
                self.callback(sid, "completed", &[("CallDuration", "1")])
                    .await;
                return false;
            }
        };
        let Some((_, stream_params)) = stream_of(&twiml) else {
            // `<Hangup/>` or anything else: the call ends.
            self.callback(sid, "completed", &[("CallDuration", "1")])
                .await;
            return false;
        };
        let media = match MediaCall::connect(
            &format!("{}/twilio/media", link.ws),
            sid,
            &stream_params,
            Duration::from_millis(20),
            1.0,
        )
        .await
        {
            Ok(m) => m,
            Err(_) => {
                // The stream could not connect (the server went away): `<Connect>` ends,
                // nothing follows, and Twilio hangs up.
                self.callback(sid, "completed", &[("CallDuration", "1")])
                    .await;
                return false;
            }
        };
        if let Some(live) = &self.live {
            live.lock()
                .unwrap()
                .insert(sid.to_owned(), media.commands());
        }
        self.watch_stream(sid, media.received.clone(), media.ended());
        if let Some((_, p)) = self
            .calls
            .lock()
            .unwrap()
            .iter_mut()
            .find(|(s, _)| s == sid)
        {
            p.media = Some(media);
        }
        self.notify.notify_waiters();
        true
    }

    /// When the server closes the media stream of a call Twilio did not end (it stopped, or
    /// crashed), `<Connect><Stream>` ends, no TwiML follows, and Twilio hangs up: the call
    /// completes and its callback goes to the public URL.
    fn watch_stream(
        self: &Arc<Self>,
        sid: &str,
        received: Arc<Mutex<crate::twilio::Received>>,
        ended: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let me = self.clone();
        let sid = sid.to_owned();
        tokio::spawn(async move {
            ended.await;
            let (closed, stopped) = {
                let r = received.lock().unwrap();
                (r.closed, r.stopped)
            };
            let call_ended = {
                let calls = me.calls.lock().unwrap();
                calls.iter().any(|(s, p)| *s == sid && p.ended)
            };
            // Twilio ended the call itself, or the caller hung up: nothing more to play.
            if closed && !stopped && !call_ended {
                me.callback(&sid, "completed", &[("CallDuration", "1")])
                    .await;
            }
        });
    }

    /// `Record=true` at create: the recording starts when the call is answered.
    fn start_recording(&self, sid: &str) {
        let Some(recordings) = &self.recordings else {
            return;
        };
        let calls = self.calls.lock().unwrap();
        let Some((_, p)) = calls.iter().find(|(s, _)| s == sid) else {
            return;
        };
        if form_value(&p.request.form, "Record") == "true" {
            recordings.create(
                &p.request.account_sid,
                sid,
                "OutboundAPI",
                &form_value(&p.request.form, "RecordingStatusCallback"),
            );
        }
    }

    /// The asynchronous answering-machine detection's callback, when the call asked for it.
    async fn detection(&self, sid: &str, answered_by: &str) {
        let Some(link) = self.link.lock().unwrap().clone() else {
            return;
        };
        let (url, account) = {
            let calls = self.calls.lock().unwrap();
            let Some((_, p)) = calls.iter().find(|(s, _)| s == sid) else {
                return;
            };
            if form_value(&p.request.form, "AsyncAmd") != "true" {
                return;
            }
            (
                form_value(&p.request.form, "AsyncAmdStatusCallback"),
                p.request.account_sid.clone(),
            )
        };
        // The server under test may already be gone (a load run ending): nothing to do then.
        let _ = link
            .post(
                &url,
                &[
                    ("AccountSid", account.as_str()),
                    ("CallSid", sid),
                    ("AnsweredBy", answered_by),
                    ("MachineDetectionDuration", "2400"),
                ],
            )
            .await;
    }

    /// `GET .../Calls/{sid}.json`: the call's latest status, or `None` for a call never made.
    pub(crate) fn state(&self, sid: &str) -> Option<String> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .find(|(s, _)| s == sid)
            .map(|(_, p)| p.status.clone())
    }

    /// Whether `sid` is one of the fake's outbound calls.
    pub(crate) fn knows(&self, sid: &str) -> bool {
        self.calls.lock().unwrap().iter().any(|(s, _)| s == sid)
    }

    /// Form parameters Twilio sends about a call, and the `Url` it was given.
    pub(crate) fn call_params(&self, sid: &str, status: &str) -> (String, Vec<(String, String)>) {
        let calls = self.calls.lock().unwrap();
        let Some((_, p)) = calls.iter().find(|(s, _)| s == sid) else {
            return (String::new(), Vec::new());
        };
        let f = |n: &str| form_value(&p.request.form, n);
        let params = vec![
            ("AccountSid".to_owned(), p.request.account_sid.clone()),
            ("ApiVersion".to_owned(), "2010-04-01".to_owned()),
            ("CallSid".to_owned(), sid.to_owned()),
            ("CallStatus".to_owned(), status.to_owned()),
            ("Direction".to_owned(), "outbound-api".to_owned()),
            ("From".to_owned(), f("From")),
            ("To".to_owned(), f("To")),
        ];
        (f("Url"), params)
    }

    /// Posts a signed status callback to the call's `StatusCallback`.
    pub(crate) async fn callback(&self, sid: &str, status: &str, extra: &[(&str, &str)]) {
        let Some(link) = self.link.lock().unwrap().clone() else {
            return;
        };
        let (callback, seq) = {
            let mut calls = self.calls.lock().unwrap();
            let Some((_, p)) = calls.iter_mut().find(|(s, _)| s == sid) else {
                return;
            };
            p.seq += 1;
            p.status = status.to_owned();
            let terminal = matches!(
                status,
                "completed" | "busy" | "no-answer" | "canceled" | "failed"
            );
            if terminal && !p.ended {
                p.ended = true;
                let mut active = self.active.lock().unwrap();
                active.0 = active.0.saturating_sub(1);
            }
            (form_value(&p.request.form, "StatusCallback"), p.seq - 1)
        };
        let (_, mut params) = self.call_params(sid, status);
        params.push(("SequenceNumber".into(), seq.to_string()));
        params.push(("CallbackSource".into(), "call-progress-events".into()));
        params.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let _ = link.post(&callback, &pairs(&params)).await;
        // The call is over: its recordings are finished and told after its last callback.
        if status == "completed" {
            if let Some(recordings) = &self.recordings {
                recordings.finish_call(sid, Some(link)).await;
            }
        }
    }

    /// A REST `Status=canceled` for a ringing call.
    pub(crate) fn cancel(&self, sid: &str) {
        if let Some((_, p)) = self
            .calls
            .lock()
            .unwrap()
            .iter_mut()
            .find(|(s, _)| s == sid)
        {
            if let Some(tx) = p.cancel.take() {
                let _ = tx.send(());
            }
        }
    }

    /// Create requests so far, in order, with their sids.
    pub(crate) fn created(&self) -> Vec<(String, RestRequest)> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(s, p)| (s.clone(), p.request.clone()))
            .collect()
    }

    /// Waits until call `n` (0-based, in creation order) is answered and its stream is up;
    /// hands over its media stream.
    pub(crate) async fn answered(&self, n: usize, limit: Duration) -> (String, MediaCall) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut calls = self.calls.lock().unwrap();
                if let Some((sid, p)) = calls.get_mut(n) {
                    if let Some(m) = p.media.take() {
                        return (sid.clone(), m);
                    }
                }
            }
            assert!(
                tokio::time::timeout_at(deadline, &mut notified)
                    .await
                    .is_ok(),
                "outbound call {n} was never answered"
            );
        }
    }
}
