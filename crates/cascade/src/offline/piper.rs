//! Piper voices through ONNX Runtime. A voice is `<name>.onnx` and its `<name>.onnx.json`
//! (sample rate, espeak voice, inference scales, and the map from phoneme characters to the
//! model's ids). A sentence becomes IPA phonemes (the `espeak-ng` program, `--ipa`), then ids
//! framed as Piper frames them (`^`, a pad after each, `$`), then audio from the model
//! (inputs `input`, `input_lengths`, `scales` and, for several speakers, `sid`), resampled
//! from the voice's rate to 8 kHz and encoded as mu-law.

use super::OfflineConfig;
use crate::audio::{pcm_to_ulaw, Resampler, PHONE_RATE};
use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// ONNX Runtime is loaded once per process.
static RUNTIME: OnceLock<Result<Environment, String>> = OnceLock::new();

fn runtime(lib: &Path) -> Result<Environment, String> {
    RUNTIME
        .get_or_init(|| {
            if !lib.is_file() {
                return Err(format!("no ONNX Runtime library at {}", lib.display()));
            }
            let builder = ort::init_from(lib)
                .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", lib.display()))?;
            builder
                .with_name("switchboard")
                .build()
                .map_err(|e| format!("ONNX Runtime did not start: {e}"))
        })
        .clone()
}

/// What a voice's `.onnx.json` says.
struct VoiceConfig {
    sample_rate: u32,
    espeak_voice: String,
    scales: [f32; 3],
    ids: HashMap<char, Vec<i64>>,
    speakers: usize,
}

fn read_config(path: &Path) -> Result<VoiceConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let map = v["phoneme_id_map"]
        .as_object()
        .ok_or_else(|| format!("{} has no phoneme_id_map", path.display()))?;
    let mut ids = HashMap::new();
    for (k, list) in map {
        let mut chars = k.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            continue;
        };
        let list: Vec<i64> = list
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        ids.insert(c, list);
    }
    for needed in ['^', '$', '_'] {
        if !ids.contains_key(&needed) {
            return Err(format!(
                "{}: phoneme_id_map has no `{needed}`",
                path.display()
            ));
        }
    }
    let f = |k: &str, d: f64| v["inference"][k].as_f64().unwrap_or(d) as f32;
    Ok(VoiceConfig {
        sample_rate: v["audio"]["sample_rate"].as_u64().unwrap_or(22_050) as u32,
        espeak_voice: v["espeak"]["voice"].as_str().unwrap_or("en-us").to_owned(),
        scales: [
            f("noise_scale", 0.667),
            f("length_scale", 1.0),
            f("noise_w", 0.8),
        ],
        ids,
        speakers: v["num_speakers"].as_u64().unwrap_or(1) as usize,
    })
}

pub(super) struct Voice {
    session: Mutex<Session>,
    config: VoiceConfig,
}

impl Voice {
    pub(super) fn load(
        lib: &Path,
        dir: &Path,
        name: &str,
        offline: &OfflineConfig,
    ) -> Result<Voice, String> {
        if !switchboard_domain::agent::is_piper_voice_name(name) {
            return Err(format!("`{name}` is not a Piper voice name"));
        }
        let model = dir.join(format!("{name}.onnx"));
        if !model.is_file() {
            return Err(format!("no Piper voice `{name}` in {}", dir.display()));
        }
        let config = read_config(&dir.join(format!("{name}.onnx.json")))?;
        let env = runtime(lib)?;
        let session = Session::builder(&env)
            .map_err(|e| format!("ONNX Runtime session: {e}"))?
            .with_intra_threads(offline.threads.max(1))
            .map_err(|e| format!("ONNX Runtime session options: {e}"))?
            .commit_from_file(&model)
            .map_err(|e| format!("ONNX Runtime cannot load {}: {e}", model.display()))?;
        Ok(Voice {
            session: Mutex::new(session),
            config,
        })
    }

    /// The ids of `phonemes`: `^`, a pad, then each known phoneme and a pad, then `$`.
    fn ids(&self, phonemes: &str) -> Vec<i64> {
        let m = &self.config.ids;
        let one = |c: char| m.get(&c).cloned().unwrap_or_default();
        let pad = one('_');
        let mut out = one('^');
        out.extend(&pad);
        for c in phonemes.chars() {
            if let Some(id) = m.get(&c) {
                out.extend(id);
                out.extend(&pad);
            }
        }
        out.extend(one('$'));
        out
    }

    /// `text` spoken: mu-law 8 kHz.
    pub(super) fn speak(&self, text: &str, offline: &OfflineConfig) -> Result<Vec<u8>, String> {
        let phonemes = phonemize(offline, &self.config.espeak_voice, text)?;
        let ids = self.ids(&phonemes);
        let n = ids.len();
        let input =
            Tensor::from_array(([1usize, n], ids)).map_err(|e| format!("input tensor: {e}"))?;
        let lengths = Tensor::from_array(([1usize], vec![n as i64]))
            .map_err(|e| format!("length tensor: {e}"))?;
        let scales = Tensor::from_array(([3usize], self.config.scales.to_vec()))
            .map_err(|e| format!("scales tensor: {e}"))?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let audio: Vec<f32> = if self.config.speakers > 1 {
            let sid = Tensor::from_array(([1usize], vec![0i64]))
                .map_err(|e| format!("speaker tensor: {e}"))?;
            let out = session
                .run(ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales, "sid" => sid])
                .map_err(|e| format!("Piper failed: {e}"))?;
            extract(&out)?
        } else {
            let out = session
                .run(ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales])
                .map_err(|e| format!("Piper failed: {e}"))?;
            extract(&out)?
        };
        drop(session);
        let pcm: Vec<i16> = audio
            .iter()
            .map(|s| (s * 32_767.0).clamp(-32_768.0, 32_767.0) as i16)
            .collect();
        let mut r = Resampler::new(self.config.sample_rate, PHONE_RATE)?;
        let mut out = r.push(&pcm);
        out.extend(r.finish());
        Ok(out.into_iter().map(pcm_to_ulaw).collect())
    }
}

fn extract(out: &ort::session::SessionOutputs<'_>) -> Result<Vec<f32>, String> {
    let first = out
        .values()
        .next()
        .ok_or("the voice model gave no output")?;
    let (_, data) = first
        .try_extract_tensor::<f32>()
        .map_err(|e| format!("the voice model's output is not audio: {e}"))?;
    Ok(data.to_vec())
}

/// IPA phonemes of `text` from the `espeak-ng` program (one line per clause, joined).
fn phonemize(offline: &OfflineConfig, voice: &str, text: &str) -> Result<String, String> {
    let program = offline.espeak.clone().unwrap_or_else(|| "espeak-ng".into());
    let out = std::process::Command::new(&program)
        .args(["-q", "-b", "1", "--ipa", "-v", voice, "--", text])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if !out.status.success() {
        return Err(format!(
            "espeak-ng failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    // Clauses end as the text did (`.`, `?`, `!`), which Piper's voices pronounce.
    let end = text
        .trim_end()
        .chars()
        .last()
        .filter(|c| matches!(c, '.' | '?' | '!'))
        .unwrap_or('.');
    Ok(format!("{}{end}", lines.join(", ")))
}
