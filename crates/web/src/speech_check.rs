//! Checks a cascaded agent's providers when it is saved: an ElevenLabs voice id is looked up
//! (the seed platform broke on voice names stored where voice ids belonged) and a refused
//! Deepgram or ElevenLabs key is reported, when the server has that provider's key. A
//! provider that cannot be asked now does not block the save (logged; `doctor` reports it).

use crate::AppState;
use switchboard_cascade::{check_deepgram_key, check_elevenlabs_voice, KeyCheck};
use switchboard_domain::agent::{
    looks_like_elevenlabs_voice_id, SttProvider, SttSettings, TtsProvider, TtsSettings,
};
use switchboard_domain::ValidationError;

/// Checks the speech settings a create or update sets.
pub(crate) async fn check(
    st: &AppState,
    stt: Option<&SttSettings>,
    tts: Option<&TtsSettings>,
) -> Result<(), ValidationError> {
    let providers = &st.voice.cascade;
    if let Some(tts) = tts {
        for (field, choice) in [
            ("tts", Some(tts.primary())),
            ("tts.fallback", tts.fallback.clone()),
        ] {
            let Some(choice) = choice.filter(|c| c.provider == TtsProvider::Piper) else {
                continue;
            };
            if providers.local.has_voice(&choice.voice) == Some(false) {
                return Err(ValidationError::new(
                    format!("{field}.voice"),
                    format!("the server has no Piper voice `{}`", choice.voice),
                ));
            }
        }
        for (field, choice) in [
            ("tts", Some(tts.primary())),
            ("tts.fallback", tts.fallback.clone()),
        ] {
            let Some(choice) = choice else { continue };
            // A malformed id is the domain's to refuse, with its own message.
            if choice.provider != TtsProvider::Elevenlabs
                || !looks_like_elevenlabs_voice_id(&choice.voice)
            {
                continue;
            }
            let Some(key) = &providers.elevenlabs_key else {
                continue;
            };
            match check_elevenlabs_voice(providers, key.expose(), &choice.voice).await {
                KeyCheck::Ok => {}
                KeyCheck::NoSuchVoice => {
                    return Err(ValidationError::new(
                        format!("{field}.voice"),
                        format!(
                            "ElevenLabs has no voice with the id `{}`: copy the voice id from ElevenLabs' voice library",
                            choice.voice
                        ),
                    ))
                }
                KeyCheck::KeyRefused => {
                    return Err(ValidationError::new(
                        format!("{field}.provider"),
                        "ElevenLabs refused the server's key (SWITCHBOARD_ELEVENLABS_API_KEY): the operator must replace it",
                    ))
                }
                KeyCheck::Unreachable(e) => {
                    tracing::warn!(error = %e, "cannot ask ElevenLabs about a voice; saved unchecked")
                }
            }
        }
    }
    if let Some(stt) = stt {
        let deepgram = stt.provider == SttProvider::Deepgram
            || stt
                .fallback
                .as_ref()
                .is_some_and(|f| f.provider == SttProvider::Deepgram);
        if let (true, Some(key)) = (deepgram, &providers.deepgram_key) {
            match check_deepgram_key(providers, key.expose()).await {
                KeyCheck::KeyRefused => {
                    return Err(ValidationError::new(
                        "stt.provider",
                        "Deepgram refused the server's key (SWITCHBOARD_DEEPGRAM_API_KEY): the operator must replace it",
                    ))
                }
                KeyCheck::Unreachable(e) => {
                    tracing::warn!(error = %e, "cannot ask Deepgram about its key; saved unchecked")
                }
                KeyCheck::Ok | KeyCheck::NoSuchVoice => {}
            }
        }
    }
    Ok(())
}
