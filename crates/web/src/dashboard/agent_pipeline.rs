//! The agent form's voice pipeline: realtime or cascaded, and the cascaded pipeline's
//! speech-to-text, chat model and voice. Fallbacks, the apology and the first-word timeout
//! are set through the API; a save from this form keeps them.

use super::layout::field;
use super::{FieldErrors, Fields};
use maud::{html, Markup};
use switchboard_domain::agent::{
    Agent, LlmSettings, SttProvider, SttSettings, TtsProvider, TtsSettings, VoicePipeline,
};

/// What the pipeline part of the form shows.
pub(super) struct PipelineDraft {
    /// False for a form without these fields (an older page): the pipeline stays as it is.
    present: bool,
    pipeline: String,
    stt_provider: String,
    stt_model: String,
    llm_model: String,
    tts_provider: String,
    tts_voice: String,
    tts_model: String,
}

/// The pipeline fields of an agent, as the form sets them.
pub(super) struct PipelineFields {
    pub(super) voice_pipeline: VoicePipeline,
    pub(super) stt: Option<SttSettings>,
    pub(super) llm: Option<LlmSettings>,
    pub(super) tts: Option<TtsSettings>,
}

impl PipelineDraft {
    pub(super) fn empty() -> PipelineDraft {
        PipelineDraft {
            present: true,
            pipeline: VoicePipeline::Realtime.as_str().into(),
            stt_provider: "deepgram".into(),
            stt_model: String::new(),
            llm_model: String::new(),
            tts_provider: "elevenlabs".into(),
            tts_voice: String::new(),
            tts_model: String::new(),
        }
    }

    pub(super) fn of(a: &Agent) -> PipelineDraft {
        let mut d = PipelineDraft::empty();
        d.pipeline = a.voice_pipeline.as_str().into();
        if let Some(s) = &a.stt {
            d.stt_provider = s.provider.as_str().into();
            d.stt_model = s.model.clone().unwrap_or_default();
        }
        if let Some(l) = &a.llm {
            d.llm_model = l.model.clone().unwrap_or_default();
        }
        if let Some(t) = &a.tts {
            d.tts_provider = t.provider.as_str().into();
            d.tts_voice = t.voice.clone();
            d.tts_model = t.model.clone().unwrap_or_default();
        }
        d
    }

    /// Whether the form carried the pipeline fields.
    pub(super) fn present(&self) -> bool {
        self.present
    }

    pub(super) fn from_form(f: &Fields) -> PipelineDraft {
        PipelineDraft {
            present: f.0.contains_key("voice_pipeline"),
            pipeline: f.raw("voice_pipeline").trim().to_owned(),
            stt_provider: f.raw("stt_provider").trim().to_owned(),
            stt_model: f.raw("stt_model").trim().to_owned(),
            llm_model: f.raw("llm_model").trim().to_owned(),
            tts_provider: f.raw("tts_provider").trim().to_owned(),
            tts_voice: f.raw("tts_voice").trim().to_owned(),
            tts_model: f.raw("tts_model").trim().to_owned(),
        }
    }

    /// The fields to save (`None`: leave the pipeline as it is); what `current` set through
    /// the API and the form does not show is kept.
    pub(super) fn parse(
        &self,
        current: Option<&Agent>,
        errors: &mut FieldErrors,
    ) -> Option<PipelineFields> {
        if !self.present {
            return None;
        }
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let voice_pipeline = match self.pipeline.as_str() {
            "realtime" => VoicePipeline::Realtime,
            "cascaded" => VoicePipeline::Cascaded,
            _ => {
                errors.add("voice_pipeline", "choose realtime or cascaded");
                return None;
            }
        };
        let Some(stt_provider) = SttProvider::parse(&self.stt_provider) else {
            errors.add("stt", "choose a speech-to-text provider from the list");
            return None;
        };
        let Some(tts_provider) = TtsProvider::parse(&self.tts_provider) else {
            errors.add("tts", "choose a voice provider from the list");
            return None;
        };
        let cascaded = voice_pipeline == VoicePipeline::Cascaded;
        let stt = (cascaded || current.is_some_and(|a| a.stt.is_some())).then(|| SttSettings {
            provider: stt_provider,
            model: opt(&self.stt_model),
            fallback: current
                .and_then(|a| a.stt.as_ref())
                .and_then(|s| s.fallback.clone()),
        });
        let tts = opt(&self.tts_voice).map(|voice| TtsSettings {
            provider: tts_provider,
            voice,
            model: opt(&self.tts_model),
            fallback: current
                .and_then(|a| a.tts.as_ref())
                .and_then(|t| t.fallback.clone()),
        });
        let kept = current.and_then(|a| a.llm.clone());
        let llm = match (opt(&self.llm_model), kept) {
            (None, None) => None,
            (model, kept) => Some(LlmSettings {
                model,
                ..kept.unwrap_or_default()
            }),
        };
        Some(PipelineFields {
            voice_pipeline,
            stt,
            llm,
            tts,
        })
    }
}

/// The pipeline fieldset.
pub(super) fn fields(d: &PipelineDraft, errors: &FieldErrors) -> Markup {
    let sel = |a: &str, b: &str| a == b;
    html! {
        fieldset.card #voice-pipeline {
            legend { "Voice pipeline" }
            (field("Pipeline", "voice_pipeline", errors, Some("Realtime: one speech-to-speech model (the voice and voice model above). Cascaded: speech-to-text, a chat model and a voice of your choice."), html! {
                select #voice_pipeline name="voice_pipeline" {
                    option value="realtime" selected[sel(&d.pipeline, "realtime")] { "Realtime (OpenAI)" }
                    option value="cascaded" selected[sel(&d.pipeline, "cascaded")] { "Cascaded (speech-to-text, chat model, voice)" }
                }
            }))
            div.row {
                (field("Speech-to-text", "stt", errors, None, html! {
                    select #stt name="stt_provider" {
                        @for (_, name, label) in SttProvider::ALL {
                            option value=(name) selected[sel(&d.stt_provider, name)] { (label) }
                        }
                    }
                    input name="stt_model" placeholder="model (default nova-3 / gpt-4o-mini-transcribe)" value=(d.stt_model) aria-label="Speech-to-text model";
                }))
                (field("Chat model", "llm", errors, Some("Empty: the text model, else the server's default."), html! {
                    input #llm name="llm_model" value=(d.llm_model);
                }))
            }
            (field("Voice", "tts", errors, Some("ElevenLabs: the voice id from its voice library (20 letters and digits), not the voice's name. OpenAI: alloy, ash, coral, nova, sage... Piper: a voice in the server's voices folder, such as en_US-lessac-medium."), html! {
                div.row {
                    select name="tts_provider" aria-label="Voice provider" {
                        @for (_, name, label) in TtsProvider::ALL {
                            option value=(name) selected[sel(&d.tts_provider, name)] { (label) }
                        }
                    }
                    input #tts name="tts_voice" placeholder="voice id" value=(d.tts_voice);
                    input name="tts_model" placeholder="model (default eleven_flash_v2_5 / gpt-4o-mini-tts)" value=(d.tts_model) aria-label="Voice model";
                }
            }))
        }
    }
}
