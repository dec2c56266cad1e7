//! OpenAI speech (`POST /v1/audio/speech`, `response_format: "pcm"`): one request per
//! sentence, in order; the body streams raw 16-bit 24 kHz mono PCM, resampled to 8 kHz and
//! encoded as mu-law as it arrives. OpenAI does not say which characters a piece voices:
//! they are estimated at a steady speaking rate within the sentence.

use super::{TtsEvent, TtsInput, CHARS_PER_SECOND};
use crate::audio::{pcm_to_ulaw, Resampler, PHONE_RATE};
use crate::Providers;
use serde_json::json;
use std::time::Duration;
use switchboard_domain::secret::Secret;
use tokio::sync::mpsc;

/// OpenAI's PCM rate.
const OPENAI_RATE: u32 = 24_000;
/// How long one sentence may take to synthesize.
const TIMEOUT: Duration = Duration::from_secs(30);

struct Speech {
    http: reqwest::Client,
    url: String,
    key: Secret,
    voice: String,
    model: String,
}

pub(super) fn start(
    p: &Providers,
    voice: &str,
    model: &str,
    input: mpsc::Receiver<TtsInput>,
    events: mpsc::Sender<TtsEvent>,
) -> Result<(), String> {
    let key = p
        .openai_key
        .clone()
        .ok_or("SWITCHBOARD_OPENAI_API_KEY is not set")?;
    let speech = Speech {
        http: p.http.clone(),
        url: format!("{}/audio/speech", p.openai_url.trim_end_matches('/')),
        key,
        voice: voice.to_owned(),
        model: model.to_owned(),
    };
    tokio::spawn(run(speech, input, events));
    Ok(())
}

async fn run(s: Speech, mut input: mpsc::Receiver<TtsInput>, events: mpsc::Sender<TtsEvent>) {
    while let Some(TtsInput::Text(text)) = input.recv().await {
        if let Err(e) = s.sentence(&text, &events).await {
            let _ = events.send(TtsEvent::Failed(e)).await;
            return;
        }
    }
    let _ = events.send(TtsEvent::Done).await;
}

impl Speech {
    async fn sentence(&self, text: &str, events: &mpsc::Sender<TtsEvent>) -> Result<(), String> {
        let body = json!({"model": self.model, "voice": self.voice, "input": text, "response_format": "pcm"});
        let mut res = self
            .http
            .post(&self.url)
            .bearer_auth(self.key.expose())
            .timeout(TIMEOUT)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("OpenAI speech unreachable: {e}"))?;
        if !res.status().is_success() {
            let status = res.status();
            let detail = res.text().await.unwrap_or_default();
            return Err(format!(
                "OpenAI speech answered {status}: {}",
                detail.chars().take(200).collect::<String>()
            ));
        }
        let mut resampler = Resampler::new(OPENAI_RATE, PHONE_RATE)?;
        let total = text.chars().count();
        let mut voiced = 0usize;
        let mut odd: Option<u8> = None;
        let mut emit = |pcm: Vec<i16>, last: bool| {
            let ulaw: Vec<u8> = pcm.into_iter().map(pcm_to_ulaw).collect();
            let chars = if last {
                total - voiced
            } else {
                (ulaw.len() * CHARS_PER_SECOND / PHONE_RATE as usize).min(total - voiced)
            };
            voiced += chars;
            TtsEvent::Audio { ulaw, chars }
        };
        loop {
            let chunk = res
                .chunk()
                .await
                .map_err(|e| format!("OpenAI speech stream failed: {e}"))?;
            let Some(bytes) = chunk else { break };
            let mut data: Vec<u8> = odd.take().into_iter().chain(bytes).collect();
            if data.len() % 2 == 1 {
                odd = data.pop();
            }
            let pcm: Vec<i16> = data
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            let out = resampler.push(&pcm);
            if !out.is_empty() {
                let ev = emit(out, false);
                if events.send(ev).await.is_err() {
                    return Ok(());
                }
            }
        }
        let ev = emit(resampler.finish(), true);
        let _ = events.send(ev).await;
        Ok(())
    }
}
