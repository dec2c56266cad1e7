//! Which voice pipeline an agent's calls run, and the providers of the cascaded one:
//! speech-to-text, a chat model, text-to-speech, each with an optional fallback.

use super::{Agent, TurnDetection};
use crate::values::require_text;
use crate::ValidationError;
use serde::{Deserialize, Serialize};

/// How a call's voice is produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VoicePipeline {
    /// One speech-to-speech model (OpenAI Realtime): `model` and `voice`.
    #[default]
    Realtime,
    /// Speech-to-text, a chat model and text-to-speech: `stt`, `llm` and `tts`.
    Cascaded,
}

impl VoicePipeline {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            VoicePipeline::Realtime => "realtime",
            VoicePipeline::Cascaded => "cascaded",
        }
    }

    /// From the stored name (unknown names read as the default).
    pub fn parse(s: &str) -> VoicePipeline {
        match s {
            "cascaded" => VoicePipeline::Cascaded,
            _ => VoicePipeline::Realtime,
        }
    }
}

/// A provider's row in its list: the value, its wire name, its label.
type Named<T> = (T, &'static str, &'static str);

fn name_in<T: PartialEq + Copy>(all: &[Named<T>], v: T) -> &'static str {
    all.iter()
        .find(|(p, _, _)| *p == v)
        .map_or("", |(_, n, _)| n)
}

fn parse_in<T: Copy>(all: &[Named<T>], s: &str) -> Option<T> {
    all.iter().find(|(_, n, _)| *n == s).map(|(p, _, _)| *p)
}

/// A speech-to-text provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SttProvider {
    /// Deepgram streaming (WebSocket): interim and final results as the caller speaks.
    Deepgram,
    /// OpenAI transcription: each utterance once the caller stops.
    Openai,
    /// whisper.cpp in this process (offline): the server's `SWITCHBOARD_WHISPER_MODEL`.
    Whisper,
}

impl SttProvider {
    /// Every provider, with its wire name and a label.
    pub const ALL: [Named<SttProvider>; 3] = [
        (SttProvider::Deepgram, "deepgram", "Deepgram"),
        (SttProvider::Openai, "openai", "OpenAI"),
        (SttProvider::Whisper, "whisper", "whisper.cpp (offline)"),
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        name_in(&Self::ALL, self)
    }

    /// From the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        parse_in(&Self::ALL, s)
    }

    /// The model used when none is named.
    pub fn default_model(self) -> &'static str {
        match self {
            SttProvider::Deepgram => "nova-3",
            SttProvider::Openai => "gpt-4o-mini-transcribe",
            SttProvider::Whisper => "local",
        }
    }
}

/// A text-to-speech provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TtsProvider {
    /// ElevenLabs WebSocket input streaming (mu-law 8 kHz straight from the provider).
    Elevenlabs,
    /// OpenAI speech (24 kHz PCM, resampled for the phone).
    Openai,
    /// A Piper voice through ONNX Runtime in this process (offline): `voice` names a voice in
    /// the server's `SWITCHBOARD_PIPER_VOICES_DIR`.
    Piper,
}

impl TtsProvider {
    /// Every provider, with its wire name and a label.
    pub const ALL: [Named<TtsProvider>; 3] = [
        (TtsProvider::Elevenlabs, "elevenlabs", "ElevenLabs"),
        (TtsProvider::Openai, "openai", "OpenAI"),
        (TtsProvider::Piper, "piper", "Piper (offline)"),
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        name_in(&Self::ALL, self)
    }

    /// From the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        parse_in(&Self::ALL, s)
    }

    /// The model used when none is named.
    pub fn default_model(self) -> &'static str {
        match self {
            TtsProvider::Elevenlabs => "eleven_flash_v2_5",
            TtsProvider::Openai => "gpt-4o-mini-tts",
            TtsProvider::Piper => "local",
        }
    }
}

/// A Piper voice name: the file name of its model without `.onnx` (`en_US-lessac-medium`).
pub fn is_piper_voice_name(v: &str) -> bool {
    (1..=100).contains(&v.len())
        && !v.starts_with('.')
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Voices OpenAI's speech endpoint offers.
pub const OPENAI_TTS_VOICES: &[&str] = &[
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
    "marin", "cedar",
];

/// One speech-to-text choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SttChoice {
    /// `deepgram` or `openai`.
    pub provider: SttProvider,
    /// Model (default `nova-3` for Deepgram, `gpt-4o-mini-transcribe` for OpenAI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// Speech-to-text of a cascaded agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SttSettings {
    /// `deepgram` or `openai`.
    pub provider: SttProvider,
    /// Model (provider default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Used when the provider cannot be reached or fails mid-call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<SttChoice>,
}

impl SttSettings {
    /// The first choice.
    pub fn primary(&self) -> SttChoice {
        SttChoice {
            provider: self.provider,
            model: self.model.clone(),
        }
    }
}

/// One text-to-speech choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TtsChoice {
    /// `elevenlabs` or `openai`.
    pub provider: TtsProvider,
    /// The provider's voice id (ElevenLabs: the id from its voice library, not the voice's
    /// name; OpenAI: one of its voice names).
    pub voice: String,
    /// Model (default `eleven_flash_v2_5` for ElevenLabs, `gpt-4o-mini-tts` for OpenAI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// Text-to-speech of a cascaded agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TtsSettings {
    /// `elevenlabs` or `openai`.
    pub provider: TtsProvider,
    /// The provider's voice id.
    pub voice: String,
    /// Model (provider default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Used when the provider cannot be reached or fails mid-answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<TtsChoice>,
}

impl TtsSettings {
    /// The first choice.
    pub fn primary(&self) -> TtsChoice {
        TtsChoice {
            provider: self.provider,
            voice: self.voice.clone(),
            model: self.model.clone(),
        }
    }

    /// Every choice, first to last.
    pub fn choices(&self) -> Vec<TtsChoice> {
        std::iter::once(self.primary())
            .chain(self.fallback.clone())
            .collect()
    }
}

/// The chat model of a cascaded agent: any OpenAI-compatible endpoint the server is
/// configured with (`SWITCHBOARD_LLM_URL`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    /// Model (default: the agent's `chat_model`, else the server's `SWITCHBOARD_LLM_MODEL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// How long the first word of an answer may take, 500 to 30000 ms (default 4000);
    /// past it the caller hears the apology.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_token_timeout_ms: Option<i64>,
    /// What the agent says when the model fails or is too slow (a default apology when
    /// absent); the call goes on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apology: Option<String>,
}

/// Default wait for an answer's first word.
pub const DEFAULT_FIRST_TOKEN_MS: i64 = 4_000;
/// Default line when the chat model fails.
pub const DEFAULT_APOLOGY: &str =
    "Sorry, I'm having trouble answering right now. Could you say that again?";

fn model_name(field: &str, model: &Option<String>) -> Result<(), ValidationError> {
    if let Some(m) = model {
        require_text(field, m, 200)?;
        if m.chars().any(char::is_whitespace) {
            return Err(ValidationError::new(field, "must not contain spaces"));
        }
    }
    Ok(())
}

/// ElevenLabs voice ids are 20 letters and digits (e.g. `21m00Tcm4TlvDq8ikWAM`); a voice's
/// display name ("Rachel") is not one.
pub fn looks_like_elevenlabs_voice_id(v: &str) -> bool {
    (16..=40).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl TtsChoice {
    pub(crate) fn validate(&self) -> Result<(), ValidationError> {
        model_name("model", &self.model)?;
        match self.provider {
            TtsProvider::Elevenlabs if !looks_like_elevenlabs_voice_id(&self.voice) => {
                Err(ValidationError::new(
                    "voice",
                    format!(
                        "`{}` is not an ElevenLabs voice id: use the id from ElevenLabs' voice library (20 letters and digits, such as `21m00Tcm4TlvDq8ikWAM`), not the voice's name",
                        self.voice
                    ),
                ))
            }
            TtsProvider::Piper if !is_piper_voice_name(&self.voice) => Err(ValidationError::new(
                "voice",
                "must be a Piper voice name such as `en_US-lessac-medium` (its model file without `.onnx`)",
            )),
            TtsProvider::Openai if !OPENAI_TTS_VOICES.contains(&self.voice.as_str()) => {
                Err(ValidationError::new(
                    "voice",
                    format!("must be one of {}", OPENAI_TTS_VOICES.join(", ")),
                ))
            }
            _ => Ok(()),
        }
    }
}

impl SttSettings {
    pub(crate) fn validate(&self) -> Result<(), ValidationError> {
        model_name("model", &self.model)?;
        if let Some(f) = &self.fallback {
            model_name("model", &f.model).map_err(|e| e.under("fallback"))?;
        }
        Ok(())
    }
}

impl TtsSettings {
    pub(crate) fn validate(&self) -> Result<(), ValidationError> {
        self.primary().validate()?;
        if let Some(f) = &self.fallback {
            f.validate().map_err(|e| e.under("fallback"))?;
        }
        Ok(())
    }
}

impl LlmSettings {
    pub(crate) fn validate(&self) -> Result<(), ValidationError> {
        model_name("model", &self.model)?;
        if let Some(ms) = self.first_token_timeout_ms {
            if !(500..=30_000).contains(&ms) {
                return Err(ValidationError::new(
                    "first_token_timeout_ms",
                    "must be between 500 and 30000",
                ));
            }
        }
        if let Some(a) = &self.apology {
            require_text("apology", a, 500)?;
        }
        Ok(())
    }
}

impl Agent {
    /// The cascaded pipeline needs speech-to-text and text-to-speech, and decides turns on
    /// silence (`server_vad`), not on meaning.
    pub(super) fn validate_pipeline(&self) -> Result<(), ValidationError> {
        if let Some(s) = &self.stt {
            s.validate().map_err(|e| e.under("stt"))?;
        }
        if let Some(l) = &self.llm {
            l.validate().map_err(|e| e.under("llm"))?;
        }
        if let Some(t) = &self.tts {
            t.validate().map_err(|e| e.under("tts"))?;
        }
        if self.voice_pipeline == VoicePipeline::Cascaded {
            for (field, set) in [("stt", self.stt.is_some()), ("tts", self.tts.is_some())] {
                if !set {
                    return Err(ValidationError::new(
                        field,
                        "is required when `voice_pipeline` is `cascaded`",
                    ));
                }
            }
            if matches!(self.turn_detection, TurnDetection::SemanticVad { .. }) {
                return Err(ValidationError::new(
                    "turn_detection",
                    "the cascaded pipeline ends turns on silence: use `server_vad` (its `silence_duration_ms` and `threshold` apply)",
                ));
            }
        }
        Ok(())
    }
}
