//! whisper.cpp (whisper-rs): one model per server, a state per transcription. The caller's
//! mu-law 8 kHz is decoded and resampled to the 16 kHz mono f32 whisper takes.

use crate::audio::{ulaw_to_pcm, Resampler, PHONE_RATE};
use std::path::Path;
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

const WHISPER_RATE: u32 = 16_000;

pub(super) struct Whisper {
    ctx: WhisperContext,
}

impl Whisper {
    pub(super) fn load(path: &Path) -> Result<Whisper, String> {
        if !path.is_file() {
            return Err(format!("no whisper model at {}", path.display()));
        }
        // whisper.cpp's own log lines go to tracing (debug), not to stderr.
        static HOOKS: std::sync::Once = std::sync::Once::new();
        HOOKS.call_once(whisper_rs::install_logging_hooks);
        let ctx = WhisperContext::new_with_params(path, WhisperContextParameters::default())
            .map_err(|e| format!("whisper cannot load {}: {e}", path.display()))?;
        Ok(Whisper { ctx })
    }

    pub(super) fn transcribe(
        &self,
        ulaw: &[u8],
        language: Option<&str>,
        threads: usize,
    ) -> Result<String, String> {
        let pcm: Vec<i16> = ulaw.iter().map(|u| ulaw_to_pcm(*u)).collect();
        let mut r = Resampler::new(PHONE_RATE, WHISPER_RATE)?;
        let mut up = r.push(&pcm);
        up.extend(r.finish());
        // whisper.cpp wants at least a second of audio: pad short utterances with silence.
        if up.len() < WHISPER_RATE as usize {
            up.resize(WHISPER_RATE as usize + WHISPER_RATE as usize / 10, 0);
        }
        let samples: Vec<f32> = up.iter().map(|s| f32::from(*s) / 32_768.0).collect();
        let mut state = self
            .ctx
            .create_state()
            .map_err(|e| format!("whisper state: {e}"))?;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        // ISO 639-1 (`en` of `en-US`), else whisper detects it.
        let lang = language
            .and_then(|l| l.split('-').next())
            .map(str::to_owned);
        params.set_language(Some(lang.as_deref().unwrap_or("auto")));
        params.set_n_threads(threads.max(1) as i32);
        params.set_translate(false);
        params.set_no_context(true);
        params.set_single_segment(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        state
            .full(params, &samples)
            .map_err(|e| format!("whisper failed: {e}"))?;
        let mut text = String::new();
        for segment in state.as_iter() {
            if let Ok(t) = segment.to_str_lossy() {
                text.push_str(&t);
            }
        }
        Ok(text.trim().to_owned())
    }
}
