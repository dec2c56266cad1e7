//! The caller's side of the engine: their audio through the detector and to the
//! speech-to-text provider, the edges of their turns, and the words that end a turn (then
//! the answer starts). A provider that fails is replaced by the fallback.

use super::respond::Out;
use super::{events, Engine, Marks, Stop};
use crate::audio::{ulaw_to_pcm, Voice, FRAME_SAMPLES};
use crate::stt::{Stt, SttEvent, SttOptions};
use crate::{Providers, Stats};
use std::time::Duration;
use switchboard_domain::agent::SttSettings;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How long a streaming provider may take to finish a turn's words after the turn ended.
const STREAMED_FINAL_WAIT: Duration = Duration::from_millis(1_500);
/// How long an utterance transcription may take.
const BATCH_FINAL_WAIT: Duration = Duration::from_secs(15);

/// Opens speech-to-text: the first choice (unless `skip_primary`), else the fallback.
pub(super) async fn open_stt(
    s: &SttSettings,
    providers: &Providers,
    options: &SttOptions,
    skip_primary: bool,
) -> Result<(Stt, mpsc::Receiver<SttEvent>), String> {
    let choices = std::iter::once(s.primary())
        .skip(usize::from(skip_primary))
        .chain(s.fallback.clone());
    let mut last = "no speech-to-text is configured".to_owned();
    for (i, choice) in choices.enumerate() {
        match Stt::open(&choice, providers, options).await {
            Ok(open) => {
                if i > 0 || skip_primary {
                    Stats::add(&providers.stats.stt_fallbacks);
                }
                return Ok(open);
            }
            Err(e) => {
                tracing::warn!(provider = ?choice.provider, error = %e, "speech-to-text unavailable");
                last = e;
            }
        }
    }
    Err(last)
}

/// The caller's turn in progress.
pub(super) struct Turn {
    pub(super) item: String,
    pub(super) text: String,
}

/// A finished turn waiting for the last of its words.
pub(super) struct Pending {
    pub(super) item: String,
    pub(super) text: String,
    pub(super) ended: Instant,
    pub(super) deadline: Instant,
}

impl Engine {
    /// The caller's audio: to the provider, and frame by frame through the detector.
    pub(super) fn on_audio(&mut self, ulaw: &[u8], out: &mpsc::Sender<(u64, Out)>) -> Vec<String> {
        self.stt.audio(ulaw);
        self.leftover.extend_from_slice(ulaw);
        let mut sends = Vec::new();
        let whole = self.leftover.len() / FRAME_SAMPLES * FRAME_SAMPLES;
        let frames: Vec<u8> = self.leftover.drain(..whole).collect();
        for frame in frames.chunks_exact(FRAME_SAMPLES) {
            let pcm: Vec<i16> = frame.iter().map(|u| ulaw_to_pcm(*u)).collect();
            self.audio_ms += 20;
            match self.vad.frame(&pcm) {
                Voice::Same => {}
                Voice::Started => sends.extend(self.speech_started()),
                Voice::Stopped => sends.extend(self.speech_stopped(out)),
            }
        }
        sends
    }

    fn speech_started(&mut self) -> Vec<String> {
        let item = self.next_id("item_user");
        tracing::debug!(item = %item, at_ms = self.audio_ms, "caller speaking");
        let mut sends = vec![events::speech_started(&item, self.audio_ms)];
        self.stt.speech_started();
        self.turn = Some(Turn {
            item,
            text: String::new(),
        });
        // Barge-in: the answer stops; the actor clears what Twilio holds and truncates.
        sends.extend(self.cancel());
        sends
    }

    fn speech_stopped(&mut self, out: &mpsc::Sender<(u64, Out)>) -> Vec<String> {
        let Some(turn) = self.turn.take() else {
            return Vec::new();
        };
        tracing::debug!(item = %turn.item, at_ms = self.audio_ms, words = %turn.text, "caller stopped");
        let sends = vec![events::speech_stopped(&turn.item, self.audio_ms)];
        // A turn still waiting for its words is closed with those it has (stored, not
        // answered): the caller went on, and this turn is answered instead.
        let earlier = self.pending.take().map(|p| self.close_pending(p));
        let now = Instant::now();
        let wait = if self.stt.streams() {
            STREAMED_FINAL_WAIT
        } else {
            BATCH_FINAL_WAIT
        };
        self.pending = Some(Pending {
            item: turn.item,
            text: turn.text,
            ended: now,
            deadline: now + wait,
        });
        self.stt.end_of_turn();
        let mut sends = sends;
        sends.extend(earlier.into_iter().flatten());
        // Everything the provider heard is final already: no need to wait.
        let ready = self.stt.streams()
            && !self.interim
            && self.pending.as_ref().is_some_and(|p| !p.text.is_empty());
        if ready {
            sends.extend(self.finish_turn(out));
        }
        sends
    }

    /// A superseded pending turn: its transcript (if any) is stored, no answer.
    fn close_pending(&mut self, p: Pending) -> Vec<String> {
        if p.text.trim().is_empty() {
            return vec![events::transcript_failed(
                &p.item,
                "no words were recognised",
            )];
        }
        self.context.add_user(&p.item, &p.text);
        vec![events::transcript_completed(&p.item, &p.text)]
    }

    /// The pending turn's words are all in (or their wait is over): the user's message,
    /// then the answer.
    pub(super) fn finish_turn(&mut self, out: &mpsc::Sender<(u64, Out)>) -> Vec<String> {
        let Some(p) = self.pending.take() else {
            return Vec::new();
        };
        let ended = p.ended;
        let had_words = !p.text.trim().is_empty();
        tracing::debug!(item = %p.item, words = %p.text, speaking = self.turn.is_some(), answering = self.active.is_some(), "turn complete");
        if had_words {
            Stats::add(&self.providers.stats.turns);
        }
        let mut sends = self.close_pending(p);
        if had_words && self.turn.is_none() && self.active.is_none() {
            let marks = Marks {
                speech_end: Some(ended),
                transcript: Some(Instant::now()),
                ..Marks::default()
            };
            sends.extend(self.respond(None, false, marks, out));
        }
        sends
    }

    /// Where a provider's final words go: the turn waiting for them, else the one in
    /// progress.
    fn words_target(&mut self) -> Option<&mut String> {
        match (&mut self.pending, &mut self.turn) {
            (Some(p), _) => Some(&mut p.text),
            (None, Some(t)) => Some(&mut t.text),
            _ => None,
        }
    }

    pub(super) async fn on_stt(
        &mut self,
        ev: Option<SttEvent>,
        out: &mpsc::Sender<(u64, Out)>,
    ) -> Result<Vec<String>, Stop> {
        let ev = ev.unwrap_or_else(|| SttEvent::Failed("speech-to-text stopped".into()));
        match ev {
            SttEvent::Interim(words) => {
                self.interim = !words.is_empty();
                Ok(Vec::new())
            }
            SttEvent::Final { text, complete } => {
                self.interim = false;
                if !text.is_empty() {
                    if let Some(t) = self.words_target() {
                        if !t.is_empty() {
                            t.push(' ');
                        }
                        t.push_str(&text);
                    }
                }
                if complete && self.pending.is_some() {
                    return Ok(self.finish_turn(out));
                }
                Ok(Vec::new())
            }
            SttEvent::UtteranceEnd => {
                self.interim = false;
                if self.pending.is_some() {
                    return Ok(self.finish_turn(out));
                }
                Ok(Vec::new())
            }
            SttEvent::Failed(e) => {
                if self.stt_fallen_back || self.pipeline.stt.fallback.is_none() {
                    return Err(Stop::Failed(e));
                }
                tracing::warn!(error = %e, "speech-to-text failed; moving to the fallback");
                self.stt_fallen_back = true;
                match open_stt(&self.pipeline.stt, &self.providers, &self.options, true).await {
                    Ok((stt, events)) => {
                        self.stt = stt;
                        self.stt_events = events;
                        if self.turn.is_some() {
                            self.stt.speech_started();
                        }
                        Ok(Vec::new())
                    }
                    Err(e2) => Err(Stop::Failed(format!("{e}; the fallback failed too: {e2}"))),
                }
            }
        }
    }
}
