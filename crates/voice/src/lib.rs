//! Voice calls: one task per call joins a Twilio Media Stream to a realtime model session.
//! It owns all of the call's state (playback, barge-in, tool calls, transcript, lifecycle);
//! nothing about a call is shared with other calls.

mod actions;
mod answer;
mod call_control;
pub mod campaigns;
pub mod converse;
pub mod dialer;
mod digits;
mod live;
mod model;
mod pipeline;
pub mod playback;
mod reconcile;
pub mod recordings;
pub mod recovery;
mod resume;
pub mod retell;
mod rollover;
mod session;
mod staff;
mod stream;
pub mod token;
mod transcript;
mod transfer;
mod wake;
mod whisper;

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard_domain::ids::CallId;
use switchboard_realtime::Shape;
use switchboard_store::Store;
use switchboard_tools::Registry;
use switchboard_twilio::rest::RestClient;
use tokio::sync::watch;

pub use actions::{deliver, run_dispatcher, wait_acknowledged, LiveCalls};
pub use session::{run_media_stream, MediaIo, MediaSocket, WsFrame};
pub use stream::{browser_stream, stream_twiml, ws_base};
pub use switchboard_cascade::Providers as SpeechProviders;
pub use transfer::{
    accept_warm, bring_back, caller_left, conference_name, join_twiml, resume_twiml,
    transfer_failed, transfer_note, CONNECTING, DECLINED,
};

/// OpenAI's Realtime endpoint.
pub const DEFAULT_REALTIME_URL: &str = "wss://api.openai.com/v1/realtime";

/// What callers hear when the call cannot go on.
pub const DEFAULT_APOLOGY: &str =
    "We're sorry, we are having technical difficulties and have to end this call. Please call again later.";

/// What callers hear when a draining server ends their call at the drain timeout.
pub const DEFAULT_GOODBYE: &str =
    "We're sorry, we have to end this call for scheduled maintenance. Please call back in a few minutes. Goodbye.";

/// Voice settings from configuration.
#[derive(Debug, Clone)]
pub struct VoiceConfig {
    /// Realtime WebSocket base URL (`SWITCHBOARD_OPENAI_REALTIME_URL`).
    pub realtime_url: String,
    /// Model key (`SWITCHBOARD_OPENAI_API_KEY`).
    pub api_key: Option<switchboard_domain::Secret>,
    /// GA or beta event shapes (`SWITCHBOARD_OPENAI_REALTIME_SHAPE`).
    pub shape: Shape,
    /// Input transcription model.
    pub transcription_model: String,
    /// Spoken before hanging up on a failure.
    pub apology: String,
    /// Spoken before hanging up when a drain outlasts its timeout.
    pub goodbye: String,
    /// Time to wait for the stream's `start` and for the model session.
    pub setup_timeout: Duration,
    /// How long one send to Twilio or the model may take before the peer counts as stuck
    /// and the call ends (`peer_stuck`).
    pub send_timeout: Duration,
    /// How long one model session is used before the call moves to a new one at a quiet
    /// moment (OpenAI Realtime sessions end at 60 minutes). The switch is forced a sixth of
    /// this (at least 30 s) later if no quiet moment came.
    pub session_limit: Duration,
    /// Reconnects per call after the model connection drops mid-call.
    pub reconnects: u32,
    /// The speech providers of cascaded agents.
    pub speech: SpeechConfig,
}

/// Where the cascaded pipeline's speech providers are, and their keys (one set per server,
/// like the OpenAI key).
#[derive(Debug, Clone)]
pub struct SpeechConfig {
    /// OpenAI REST base, for transcription and speech (`SWITCHBOARD_OPENAI_API_URL`).
    pub openai_api_url: String,
    /// Deepgram base (`SWITCHBOARD_DEEPGRAM_API_URL`).
    pub deepgram_api_url: String,
    /// Deepgram key (`SWITCHBOARD_DEEPGRAM_API_KEY`).
    pub deepgram_api_key: Option<switchboard_domain::Secret>,
    /// ElevenLabs base (`SWITCHBOARD_ELEVENLABS_API_URL`).
    pub elevenlabs_api_url: String,
    /// ElevenLabs key (`SWITCHBOARD_ELEVENLABS_API_KEY`).
    pub elevenlabs_api_key: Option<switchboard_domain::Secret>,
    /// The offline providers' model files.
    pub offline: switchboard_cascade::offline::OfflineConfig,
}

impl Default for SpeechConfig {
    fn default() -> Self {
        Self {
            openai_api_url: switchboard_cascade::OPENAI_API_URL.into(),
            deepgram_api_url: switchboard_cascade::DEEPGRAM_API_URL.into(),
            deepgram_api_key: None,
            elevenlabs_api_url: switchboard_cascade::ELEVENLABS_API_URL.into(),
            elevenlabs_api_key: None,
            offline: Default::default(),
        }
    }
}

impl VoiceConfig {
    /// The cascaded pipeline's providers: these endpoints, the OpenAI key, and the chat
    /// model the server has (if any).
    pub fn speech_providers(
        &self,
        chat: Option<switchboard_llm::ChatClient>,
    ) -> Result<switchboard_cascade::Providers, reqwest::Error> {
        let s = &self.speech;
        Ok(switchboard_cascade::Providers {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()?,
            chat,
            openai_url: s.openai_api_url.clone(),
            openai_key: self.api_key.clone(),
            deepgram_url: s.deepgram_api_url.clone(),
            deepgram_key: s.deepgram_api_key.clone(),
            elevenlabs_url: s.elevenlabs_api_url.clone(),
            elevenlabs_key: s.elevenlabs_api_key.clone(),
            connect_timeout: self.setup_timeout,
            stats: Default::default(),
            local: Arc::new(switchboard_cascade::offline::Local::new(s.offline.clone())),
        })
    }
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self {
            realtime_url: DEFAULT_REALTIME_URL.into(),
            api_key: None,
            shape: Shape::Ga,
            transcription_model: "gpt-4o-mini-transcribe".into(),
            apology: DEFAULT_APOLOGY.into(),
            goodbye: DEFAULT_GOODBYE.into(),
            setup_timeout: Duration::from_secs(10),
            send_timeout: Duration::from_secs(5),
            session_limit: Duration::from_secs(50 * 60),
            reconnects: 1,
            speech: SpeechConfig::default(),
        }
    }
}

/// Counters for `/metrics` (low cardinality: no numbers, no ids).
#[derive(Debug, Default)]
pub struct VoiceStats {
    /// Calls with a live session task.
    pub active: AtomicI64,
    /// Sessions started (a `start` that authenticated).
    pub started: AtomicU64,
    /// Incoming calls to numbers nobody owns.
    pub unknown_number: AtomicU64,
    /// Streams closed before a session was opened (bad token, no start).
    pub rejected_streams: AtomicU64,
    /// Calls ended by a model failure or the duration limit.
    pub failed: AtomicU64,
    /// Frames from Twilio that could not be read.
    pub bad_frames: AtomicU64,
    /// Caller audio frames forwarded to the model.
    pub frames_in: AtomicU64,
    /// Agent audio chunks forwarded to Twilio.
    pub frames_out: AtomicU64,
    /// Barge-ins handled.
    pub interruptions: AtomicU64,
    /// Incoming calls refused because this instance was draining with no other to take them.
    pub refused_draining: AtomicU64,
    /// Agent audio deltas dropped because the caller had interrupted their item.
    pub late_deltas: AtomicU64,
    /// Model sessions restored after the connection dropped mid-call.
    pub reconnects: AtomicU64,
    /// Model sessions replaced before the provider's session limit.
    pub rollovers: AtomicU64,
    /// Inbound calls closed because their media stream never connected (`no_media`).
    pub no_media: AtomicU64,
}

impl VoiceStats {
    /// Prometheus text for these counters.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let rows: [(&str, &str, &str, i64); 14] = [
            (
                "switchboard_voice_active_calls",
                "gauge",
                "Calls with a live session.",
                self.active.load(Ordering::Relaxed),
            ),
            (
                "switchboard_voice_sessions_total",
                "counter",
                "Call sessions started.",
                self.started.load(Ordering::Relaxed) as i64,
            ),
            (
                "switchboard_voice_unknown_number_total",
                "counter",
                "Incoming calls to unknown or inactive numbers.",
                self.unknown_number.load(Ordering::Relaxed) as i64,
            ),
            (
                "switchboard_voice_rejected_streams_total",
                "counter",
                "Media streams closed before a session opened.",
                self.rejected_streams.load(Ordering::Relaxed) as i64,
            ),
            (
                "switchboard_voice_failed_calls_total",
                "counter",
                "Calls ended by a failure or the duration limit.",
                self.failed.load(Ordering::Relaxed) as i64,
            ),
            (
                "switchboard_voice_bad_frames_total",
                "counter",
                "Unreadable media stream frames.",
                self.bad_frames.load(Ordering::Relaxed) as i64,
            ),
            (
                "switchboard_voice_frames_in_total",
                "counter",
                "Caller audio frames forwarded to the model.",
                self.frames_in.load(Ordering::Relaxed) as i64,
            ),
            (
                "switchboard_voice_frames_out_total",
                "counter",
                "Agent audio chunks forwarded to Twilio.",
                self.frames_out.load(Ordering::Relaxed) as i64,
            ),
            (
                "switchboard_voice_interruptions_total",
                "counter",
                "Barge-ins handled.",
                self.interruptions.load(Ordering::Relaxed) as i64,
            ),
            (
                "switchboard_voice_refused_draining_total",
                "counter",
                "Incoming calls refused while draining with no other instance serving.",
                self.refused_draining.load(Ordering::Relaxed) as i64,
            ),
            (
                "switchboard_voice_late_deltas_total",
                "counter",
                "Agent audio deltas dropped after the caller interrupted their item.",
                self.late_deltas.load(Ordering::Relaxed) as i64,
            ),
            (
                "switchboard_voice_model_reconnects_total",
                "counter",
                "Model sessions restored (with the conversation replayed) after a drop.",
                self.reconnects.load(Ordering::Relaxed) as i64,
            ),
            (
                "switchboard_voice_model_rollovers_total",
                "counter",
                "Model sessions replaced before the provider's session limit.",
                self.rollovers.load(Ordering::Relaxed) as i64,
            ),
            (
                "switchboard_voice_no_media_calls_total",
                "counter",
                "Inbound calls closed because their media stream never connected.",
                self.no_media.load(Ordering::Relaxed) as i64,
            ),
        ];
        for (name, kind, help, v) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        out
    }
}

/// Everything a call session needs, shared by all calls.
#[derive(Debug, Clone)]
pub struct VoiceServices {
    /// The store.
    pub store: Store,
    /// Tool registry.
    pub tools: Registry,
    /// Twilio REST.
    pub twilio: RestClient,
    /// Settings.
    pub config: VoiceConfig,
    /// Key of the per-call media tokens.
    pub token_secret: Arc<str>,
    /// Counters.
    pub stats: Arc<VoiceStats>,
    /// Becomes `true` when the server must end live calls (the drain timeout passed).
    pub stop: watch::Receiver<bool>,
    /// This process's id in the instance registry (recorded on the calls it runs).
    pub instance_id: Arc<str>,
    /// Calls answered with a media stream that has not connected yet.
    pub pending: Arc<PendingStreams>,
    /// Where "now" comes from for call limits (adjustable in tests).
    pub clock: switchboard_domain::Clock,
    /// `SWITCHBOARD_PUBLIC_URL`: where Twilio sends a recording's callbacks.
    pub public_url: Option<String>,
    /// The calls whose tasks run here (staff actions reach them through it).
    pub live: Arc<LiveCalls>,
    /// The cascaded pipeline's providers.
    pub cascade: Arc<switchboard_cascade::Providers>,
}

/// Calls whose webhook was answered with `<Connect><Stream>` but whose stream has not started
/// yet. A draining server waits for them too: the caller is about to be connected.
#[derive(Debug, Default)]
pub struct PendingStreams {
    calls: Mutex<HashMap<CallId, Instant>>,
}

impl PendingStreams {
    /// A stream is expected for `call` until `deadline`.
    pub fn expect(&self, call: CallId, deadline: Instant) {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        calls.retain(|_, d| *d > now);
        calls.insert(call, deadline);
    }

    /// The stream of `call` arrived (or will not).
    pub fn arrived(&self, call: &CallId) {
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(call);
    }

    /// Streams still expected now.
    pub fn waiting(&self) -> usize {
        let now = Instant::now();
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|d| **d > now)
            .count()
    }
}
