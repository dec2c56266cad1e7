//! Text-to-speech: sentences in, mu-law 8 kHz out, with how much of the text each piece
//! of audio voices (so a cut answer keeps only the words that were played).

mod elevenlabs;
mod openai;
mod piper;

use crate::Providers;
use switchboard_domain::agent::{TtsChoice, TtsProvider};
use tokio::sync::mpsc;

/// Speaking rate used where a provider does not say which characters a piece of audio
/// voices (OpenAI speech): about 15 characters a second.
pub const CHARS_PER_SECOND: usize = 15;

/// Text for the voice.
#[derive(Debug, Clone, PartialEq)]
pub enum TtsInput {
    /// Speak this next (a complete sentence, or the answer's last words).
    Text(String),
    /// No more text: finish speaking and end.
    Finish,
}

/// What the voice produced.
#[derive(Debug, Clone, PartialEq)]
pub enum TtsEvent {
    /// Audio (mu-law 8 kHz) and how many characters of the text it voices.
    Audio {
        /// Mu-law bytes.
        ulaw: Vec<u8>,
        /// Characters of the text this audio carries (may be 0).
        chars: usize,
    },
    /// Everything sent has been spoken.
    Done,
    /// The provider failed; no more events will come.
    Failed(String),
}

/// A speaking session for one answer.
pub struct Tts {
    /// Text in.
    pub input: mpsc::Sender<TtsInput>,
    /// Audio out.
    pub events: mpsc::Receiver<TtsEvent>,
    /// Which provider.
    pub provider: TtsProvider,
}

impl Tts {
    /// Opens a session with `choice` (ElevenLabs connects its socket now, so the first
    /// sentence does not wait for it).
    pub async fn open(choice: &TtsChoice, providers: &Providers) -> Result<Tts, String> {
        let (input, input_rx) = mpsc::channel(64);
        let (events_tx, events) = mpsc::channel(256);
        let model = choice
            .model
            .clone()
            .unwrap_or_else(|| choice.provider.default_model().to_owned());
        match choice.provider {
            TtsProvider::Elevenlabs => {
                elevenlabs::start(providers, &choice.voice, &model, input_rx, events_tx).await?
            }
            TtsProvider::Openai => {
                openai::start(providers, &choice.voice, &model, input_rx, events_tx)?
            }
            TtsProvider::Piper => piper::start(providers, &choice.voice, input_rx, events_tx)?,
        }
        Ok(Tts {
            input,
            events,
            provider: choice.provider,
        })
    }
}
