//! Speech-to-text: what the engine hears from a provider, whichever it is.

mod batch;
mod deepgram;

use crate::Providers;
use switchboard_domain::agent::{SttChoice, SttProvider};
use tokio::sync::mpsc;

/// Something the speech-to-text provider said.
#[derive(Debug, Clone, PartialEq)]
pub enum SttEvent {
    /// Words so far of the speech in progress (may change).
    Interim(String),
    /// Words that will not change. `complete` when the provider says nothing of the
    /// utterance is left to transcribe (Deepgram `speech_final` or `from_finalize`, an
    /// OpenAI transcription).
    Final {
        /// The words.
        text: String,
        /// Nothing of the utterance is pending.
        complete: bool,
    },
    /// The provider detected the end of an utterance (Deepgram `UtteranceEnd`).
    UtteranceEnd,
    /// The provider failed; no more events will come.
    Failed(String),
}

/// How a provider is fed.
enum Feed {
    Deepgram(deepgram::Deepgram),
    Batch(batch::Utterances),
}

/// A speech-to-text session of one call.
pub struct Stt {
    feed: Feed,
    /// Which provider (for logs and the fallback).
    pub provider: SttProvider,
}

/// The settings an STT session needs from the agent.
#[derive(Debug, Clone)]
pub struct SttOptions {
    /// BCP 47 language, if the agent has one.
    pub language: Option<String>,
    /// The endpointing silence (Deepgram's own endpointing is set to match it).
    pub silence_ms: u32,
}

impl Stt {
    /// Opens a session with `choice`; the events come on the returned receiver.
    pub async fn open(
        choice: &SttChoice,
        providers: &Providers,
        options: &SttOptions,
    ) -> Result<(Stt, mpsc::Receiver<SttEvent>), String> {
        let (tx, rx) = mpsc::channel(64);
        let model = choice
            .model
            .clone()
            .unwrap_or_else(|| choice.provider.default_model().to_owned());
        let feed = match choice.provider {
            SttProvider::Deepgram => {
                Feed::Deepgram(deepgram::Deepgram::open(providers, &model, options, tx).await?)
            }
            SttProvider::Openai => {
                Feed::Batch(batch::Utterances::openai(providers, &model, options, tx)?)
            }
            SttProvider::Whisper => Feed::Batch(batch::Utterances::local(providers, options, tx)?),
        };
        Ok((
            Stt {
                feed,
                provider: choice.provider,
            },
            rx,
        ))
    }

    /// The caller's audio, mu-law 8 kHz, as it comes.
    pub fn audio(&mut self, ulaw: &[u8]) {
        match &mut self.feed {
            Feed::Deepgram(d) => d.audio(ulaw),
            Feed::Batch(o) => o.audio(ulaw),
        }
    }

    /// The caller started speaking (the detector's view).
    pub fn speech_started(&mut self) {
        if let Feed::Batch(o) = &mut self.feed {
            o.start();
        }
    }

    /// The caller finished a turn: whatever is pending is transcribed now.
    pub fn end_of_turn(&mut self) {
        match &mut self.feed {
            Feed::Deepgram(d) => d.finalize(),
            Feed::Batch(o) => o.finish(),
        }
    }

    /// Whether the provider transcribes while the caller speaks (an utterance may already
    /// be complete when the turn ends).
    pub fn streams(&self) -> bool {
        matches!(self.feed, Feed::Deepgram(_))
    }
}
