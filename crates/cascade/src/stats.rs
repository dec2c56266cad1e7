//! Counters of the cascaded pipeline for `/metrics` (low cardinality: no ids, no providers'
//! names beyond the part that failed).

use std::sync::atomic::{AtomicU64, Ordering};

/// What the pipeline did since the server started.
#[derive(Debug, Default)]
pub struct Stats {
    /// Sessions opened (a call, or a call's reopened session).
    pub sessions: AtomicU64,
    /// Caller turns that ended with words.
    pub turns: AtomicU64,
    /// Answers spoken to the end.
    pub answers: AtomicU64,
    /// Answers cut while they played (the caller spoke over them, or staff muted the agent).
    pub interrupted: AtomicU64,
    /// Answers where the chat model failed or was too slow and the apology was said.
    pub apologies: AtomicU64,
    /// Answers no voice could speak.
    pub failed_answers: AtomicU64,
    /// Moves to the fallback speech-to-text.
    pub stt_fallbacks: AtomicU64,
    /// Moves to the fallback voice.
    pub tts_fallbacks: AtomicU64,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text for these counters.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &AtomicU64); 8] = [
            (
                "switchboard_cascade_sessions_total",
                "Cascaded pipeline sessions opened.",
                &self.sessions,
            ),
            (
                "switchboard_cascade_turns_total",
                "Caller turns transcribed by the cascaded pipeline.",
                &self.turns,
            ),
            (
                "switchboard_cascade_answers_total",
                "Cascaded answers spoken to the end.",
                &self.answers,
            ),
            (
                "switchboard_cascade_interrupted_total",
                "Cascaded answers cut while playing (barge-in, staff mute).",
                &self.interrupted,
            ),
            (
                "switchboard_cascade_apologies_total",
                "Cascaded answers replaced by the apology (chat model failed or slow).",
                &self.apologies,
            ),
            (
                "switchboard_cascade_failed_answers_total",
                "Cascaded answers no voice could speak.",
                &self.failed_answers,
            ),
            (
                "switchboard_cascade_stt_fallbacks_total",
                "Moves to the fallback speech-to-text.",
                &self.stt_fallbacks,
            ),
            (
                "switchboard_cascade_tts_fallbacks_total",
                "Moves to the fallback voice.",
                &self.tts_fallbacks,
            ),
        ];
        let mut out = String::new();
        for (name, help, v) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        out
    }
}
