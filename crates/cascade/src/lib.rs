//! The cascaded voice pipeline: the caller's audio goes to a speech-to-text provider, the
//! finished turn to any OpenAI-compatible chat model (streamed, with tools), and its answer
//! sentence by sentence to a text-to-speech provider, whose audio goes back to the caller.
//!
//! It runs in this process and speaks the OpenAI Realtime events the call actor already
//! handles (audio deltas, turn edges, transcripts, function calls, `truncate`), over a
//! [`ModelLink::Local`]; so the transcript, marks, barge-in, tools, recording, analysis and
//! events of a call are the same whichever pipeline carries its voice.

pub mod audio;
mod engine;
pub mod offline;
mod providers;
mod stats;
pub mod stt;
pub mod text;
pub mod tts;

pub use engine::{open, Pipeline};
pub use providers::{
    check_deepgram_key, check_elevenlabs_voice, KeyCheck, Providers, DEEPGRAM_API_URL,
    ELEVENLABS_API_URL, OPENAI_API_URL,
};
pub use stats::Stats;
pub use switchboard_realtime::ModelLink;
