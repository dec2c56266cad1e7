//! Transcription of whole utterances: OpenAI's (`POST /v1/audio/transcriptions`, a WAV
//! file) or whisper.cpp in this process. Neither streams, so each utterance is kept from just
//! before the detector heard speech until the turn ended, and transcribed then.

use super::{SttEvent, SttOptions};
use crate::audio::{ulaw_to_pcm, wav, PHONE_RATE};
use crate::Providers;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::secret::Secret;
use tokio::sync::mpsc;

/// Audio kept from before speech was detected (the detector needs a few frames).
const PREFIX_BYTES: usize = 300 * 8;
/// Longest utterance sent (60 s); a longer one keeps its end.
const MAX_BYTES: usize = 60 * 8_000;
/// How long a transcription may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Who transcribes.
enum Transcriber {
    Openai {
        http: reqwest::Client,
        url: String,
        key: Secret,
        model: String,
    },
    Local(Arc<crate::offline::Local>),
}

pub(super) struct Utterances {
    transcriber: Transcriber,
    language: Option<String>,
    recent: VecDeque<u8>,
    speech: Option<Vec<u8>>,
    events: mpsc::Sender<SttEvent>,
}

type Job = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

impl Utterances {
    /// OpenAI's transcription.
    pub(super) fn openai(
        p: &Providers,
        model: &str,
        o: &SttOptions,
        events: mpsc::Sender<SttEvent>,
    ) -> Result<Utterances, String> {
        let key = p
            .openai_key
            .clone()
            .ok_or("SWITCHBOARD_OPENAI_API_KEY is not set")?;
        let transcriber = Transcriber::Openai {
            http: p.http.clone(),
            url: format!(
                "{}/audio/transcriptions",
                p.openai_url.trim_end_matches('/')
            ),
            key,
            model: model.to_owned(),
        };
        Ok(Utterances::with(transcriber, o, events))
    }

    /// whisper.cpp in this process (its model loads on first use).
    pub(super) fn local(
        p: &Providers,
        o: &SttOptions,
        events: mpsc::Sender<SttEvent>,
    ) -> Result<Utterances, String> {
        if !crate::offline::WHISPER_BUILT {
            return Err(crate::offline::NOT_BUILT.into());
        }
        if p.local.config().whisper_model.is_none() {
            return Err("SWITCHBOARD_WHISPER_MODEL is not set".into());
        }
        Ok(Utterances::with(
            Transcriber::Local(p.local.clone()),
            o,
            events,
        ))
    }

    fn with(transcriber: Transcriber, o: &SttOptions, events: mpsc::Sender<SttEvent>) -> Self {
        Utterances {
            transcriber,
            // ISO 639-1 (`en`), not a region.
            language: o
                .language
                .as_deref()
                .and_then(|l| l.split('-').next())
                .map(str::to_owned),
            recent: VecDeque::with_capacity(PREFIX_BYTES),
            speech: None,
            events,
        }
    }

    pub(super) fn audio(&mut self, ulaw: &[u8]) {
        match &mut self.speech {
            Some(s) => {
                s.extend_from_slice(ulaw);
                if s.len() > MAX_BYTES {
                    let over = s.len() - MAX_BYTES;
                    s.drain(..over);
                }
            }
            None => {
                self.recent.extend(ulaw);
                while self.recent.len() > PREFIX_BYTES {
                    self.recent.pop_front();
                }
            }
        }
    }

    pub(super) fn start(&mut self) {
        if self.speech.is_none() {
            self.speech = Some(self.recent.drain(..).collect());
        }
    }

    pub(super) fn finish(&mut self) {
        let Some(ulaw) = self.speech.take() else {
            return;
        };
        let language = self.language.clone();
        let job: Job = match &self.transcriber {
            Transcriber::Openai {
                http,
                url,
                key,
                model,
            } => {
                let pcm: Vec<i16> = ulaw.iter().map(|u| ulaw_to_pcm(*u)).collect();
                let file = wav(&pcm, PHONE_RATE);
                Box::pin(openai(http, url, key, model, language.as_deref(), file))
            }
            Transcriber::Local(local) => {
                let local = local.clone();
                Box::pin(async move { local.transcribe(ulaw, language).await })
            }
        };
        let events = self.events.clone();
        tokio::spawn(async move {
            let ev = match job.await {
                Ok(text) => SttEvent::Final {
                    text,
                    complete: true,
                },
                Err(e) => SttEvent::Failed(e),
            };
            let _ = events.send(ev).await;
        });
    }
}

/// One OpenAI transcription request (multipart: the model, the language, the WAV file).
fn openai(
    http: &reqwest::Client,
    url: &str,
    key: &Secret,
    model: &str,
    language: Option<&str>,
    file: Vec<u8>,
) -> impl Future<Output = Result<String, String>> + Send + 'static {
    let boundary = "switchboard-utterance-boundary";
    let mut body = Vec::with_capacity(file.len() + 512);
    let mut field = |name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    field("model", model);
    field("response_format", "json");
    if let Some(l) = language {
        field("language", l);
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"utterance.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let send = http
        .post(url)
        .bearer_auth(key.expose())
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .timeout(TIMEOUT)
        .body(body)
        .send();
    async move {
        let res = send
            .await
            .map_err(|e| format!("OpenAI transcription unreachable: {e}"))?;
        let status = res.status();
        let body: serde_json::Value = res
            .json()
            .await
            .map_err(|e| format!("OpenAI transcription answer unreadable: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "OpenAI transcription answered {status}: {}",
                body["error"]["message"].as_str().unwrap_or_default()
            ));
        }
        body["text"]
            .as_str()
            .map(|t| t.trim().to_owned())
            .ok_or_else(|| "OpenAI transcription answer has no text".to_owned())
    }
}
