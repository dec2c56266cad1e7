//! Offline providers: whisper.cpp for speech-to-text and Piper voices through ONNX Runtime
//! for text-to-speech, in this process, from model files the operator configures (nothing is
//! downloaded). Piper is always built: ONNX Runtime is loaded at run time from
//! `SWITCHBOARD_ONNXRUNTIME_LIB` and the phonemes come from the `espeak-ng` program.
//! whisper.cpp is compiled in with the `whisper` feature (`--features whisper`, which needs
//! cmake and a C++ compiler); without it, asking for whisper is a clear error.

mod piper;
#[cfg(feature = "whisper")]
mod whisper;

use std::path::PathBuf;

/// Where the local models are.
#[derive(Debug, Clone, Default)]
pub struct OfflineConfig {
    /// A whisper.cpp model file (`ggml-base.en.bin`, ...): `SWITCHBOARD_WHISPER_MODEL`.
    pub whisper_model: Option<PathBuf>,
    /// A folder of Piper voices (`<name>.onnx` with `<name>.onnx.json`):
    /// `SWITCHBOARD_PIPER_VOICES_DIR`.
    pub piper_voices: Option<PathBuf>,
    /// ONNX Runtime's shared library (`libonnxruntime.so.1.x`): `SWITCHBOARD_ONNXRUNTIME_LIB`.
    pub onnxruntime: Option<PathBuf>,
    /// The espeak-ng program (Piper's phonemes): `SWITCHBOARD_ESPEAK_NG`, default `espeak-ng`.
    pub espeak: Option<PathBuf>,
    /// Threads one transcription or synthesis uses (0: all cores).
    pub threads: usize,
}

/// Whether this build has whisper.cpp.
pub const WHISPER_BUILT: bool = cfg!(feature = "whisper");

pub(crate) const NOT_BUILT: &str =
    "this server was built without whisper.cpp (build it with `--features whisper`)";

/// The loaded local models, shared by every call.
pub struct Local {
    config: OfflineConfig,
    #[cfg(feature = "whisper")]
    whisper: std::sync::OnceLock<Result<std::sync::Arc<whisper::Whisper>, String>>,
    voices: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<piper::Voice>>>,
    /// One inference per permit: more at once would only share the same cores.
    permits: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("config", &self.config)
            .finish()
    }
}

impl Default for Local {
    fn default() -> Self {
        Local::new(OfflineConfig::default())
    }
}

impl Local {
    /// Models are loaded on first use (and by [`Local::check`]).
    pub fn new(config: OfflineConfig) -> Local {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let threads = if config.threads == 0 {
            cores
        } else {
            config.threads
        };
        Local {
            permits: tokio::sync::Semaphore::new((cores / threads.max(1)).max(1)),
            config: OfflineConfig { threads, ..config },
            #[cfg(feature = "whisper")]
            whisper: Default::default(),
            voices: Default::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OfflineConfig {
        &self.config
    }

    /// Transcribes an utterance (mu-law 8 kHz); waits its turn for the cores.
    pub async fn transcribe(
        self: &std::sync::Arc<Self>,
        ulaw: Vec<u8>,
        language: Option<String>,
    ) -> Result<String, String> {
        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.transcribe_now(&ulaw, language.as_deref()))
            .await
            .map_err(|e| format!("the transcription stopped: {e}"))?
    }

    /// Speaks `text` with Piper voice `voice`: mu-law 8 kHz; waits its turn for the cores.
    pub async fn synthesize(
        self: &std::sync::Arc<Self>,
        voice: String,
        text: String,
    ) -> Result<Vec<u8>, String> {
        let _permit = self.permits.acquire().await.map_err(|e| e.to_string())?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.synthesize_now(&voice, &text))
            .await
            .map_err(|e| format!("the synthesis stopped: {e}"))?
    }

    #[cfg(feature = "whisper")]
    fn whisper(&self) -> Result<std::sync::Arc<whisper::Whisper>, String> {
        self.whisper
            .get_or_init(|| {
                let path = self
                    .config
                    .whisper_model
                    .as_ref()
                    .ok_or("SWITCHBOARD_WHISPER_MODEL is not set")?;
                whisper::Whisper::load(path).map(std::sync::Arc::new)
            })
            .clone()
    }

    fn voice(&self, name: &str) -> Result<std::sync::Arc<piper::Voice>, String> {
        let mut voices = self.voices.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = voices.get(name) {
            return Ok(v.clone());
        }
        let dir = self
            .config
            .piper_voices
            .as_ref()
            .ok_or("SWITCHBOARD_PIPER_VOICES_DIR is not set")?;
        let lib = self
            .config
            .onnxruntime
            .as_ref()
            .ok_or("SWITCHBOARD_ONNXRUNTIME_LIB is not set")?;
        let voice = std::sync::Arc::new(piper::Voice::load(lib, dir, name, &self.config)?);
        voices.insert(name.to_owned(), voice.clone());
        Ok(voice)
    }

    #[cfg(feature = "whisper")]
    fn transcribe_now(&self, ulaw: &[u8], language: Option<&str>) -> Result<String, String> {
        self.whisper()?
            .transcribe(ulaw, language, self.config.threads)
    }

    #[cfg(not(feature = "whisper"))]
    fn transcribe_now(&self, _ulaw: &[u8], _language: Option<&str>) -> Result<String, String> {
        Err(NOT_BUILT.into())
    }

    fn synthesize_now(&self, voice: &str, text: &str) -> Result<Vec<u8>, String> {
        self.voice(voice)?.speak(text, &self.config)
    }

    /// Whether a Piper voice of that name is in the voices folder (the files only).
    pub fn has_voice(&self, name: &str) -> Option<bool> {
        let dir = self.config.piper_voices.as_ref()?;
        Some(
            dir.join(format!("{name}.onnx")).is_file()
                && dir.join(format!("{name}.onnx.json")).is_file(),
        )
    }

    /// Loads what is configured (the whisper model, every voice in the folder) and says how
    /// each went: `(what, Ok(detail) | Err(why))`. For `doctor`.
    pub fn check(&self) -> Vec<(String, Result<String, String>)> {
        let mut out = Vec::new();
        if let Some(path) = &self.config.whisper_model {
            out.push((
                format!("whisper model {}", path.display()),
                self.check_whisper(),
            ));
        }
        if let Some(dir) = &self.config.piper_voices {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok())
                        .filter_map(|e| {
                            e.file_name()
                                .to_str()
                                .and_then(|n| n.strip_suffix(".onnx"))
                                .map(str::to_owned)
                        })
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            if names.is_empty() {
                out.push((
                    format!("piper voices {}", dir.display()),
                    Err("no `<name>.onnx` voice in the folder".into()),
                ));
            }
            for name in names {
                let started = std::time::Instant::now();
                let result = self.voice(&name).and_then(|v| {
                    v.speak("Hello.", &self.config).map(|audio| {
                        format!(
                            "loads and speaks ({} ms of audio in {} ms)",
                            audio.len() / 8,
                            started.elapsed().as_millis()
                        )
                    })
                });
                out.push((format!("piper voice {name}"), result));
            }
        }
        out
    }

    #[cfg(feature = "whisper")]
    fn check_whisper(&self) -> Result<String, String> {
        let started = std::time::Instant::now();
        self.whisper()
            .map(|_| format!("loads ({} ms)", started.elapsed().as_millis()))
    }

    #[cfg(not(feature = "whisper"))]
    fn check_whisper(&self) -> Result<String, String> {
        Err(NOT_BUILT.into())
    }
}
