//! One answer: the chat model streams it, complete sentences go to the voice as they come
//! (the caller hears the first before the model has finished writing), and the voice's
//! audio goes back to the engine. A chat model that fails, or says nothing in time, is
//! replaced by the apology; a voice that fails is replaced by the fallback voice, which
//! speaks what was not yet heard.

use crate::text::Sentences;
use crate::tts::{Tts, TtsEvent, TtsInput};
use crate::Providers;
use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::agent::TtsChoice;
use switchboard_llm::{CompletionStream, Request, StreamEvent, ToolCall};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What an answer needs.
pub(super) struct Job {
    pub(super) seq: u64,
    pub(super) request: Request,
    pub(super) voices: Vec<TtsChoice>,
    pub(super) apology: String,
    pub(super) first_token: Duration,
    pub(super) providers: Arc<Providers>,
}

/// What an answer produced, in order.
#[derive(Debug)]
pub(super) enum Out {
    /// The model's first words arrived.
    FirstToken,
    /// Text handed to the voice (the answer's words, in order).
    Text(String),
    /// Audio and how many characters of the text it voices.
    Audio { ulaw: Vec<u8>, chars: usize },
    /// The answer is complete.
    Done {
        tool_calls: Vec<ToolCall>,
        /// The model failed and the apology was spoken instead.
        apologized: bool,
    },
    /// No voice could speak: nothing more will come.
    Failed { code: &'static str, message: String },
}

/// Opens the first voice that answers; one that is not the agent's first choice (`failed`:
/// a voice already failed this answer) counts as a fallback.
async fn open_voice(
    voices: &mut std::collections::VecDeque<TtsChoice>,
    providers: &Providers,
    mut failed: bool,
) -> Result<Tts, String> {
    let mut last = "no voice is configured".to_owned();
    while let Some(choice) = voices.pop_front() {
        match Tts::open(&choice, providers).await {
            Ok(t) => {
                if failed {
                    crate::Stats::add(&providers.stats.tts_fallbacks);
                }
                return Ok(t);
            }
            Err(e) => {
                tracing::warn!(provider = ?choice.provider, error = %e, "text-to-speech unavailable");
                failed = true;
                last = e;
            }
        }
    }
    Err(last)
}

async fn open_model(providers: &Providers, request: &Request) -> Result<CompletionStream, String> {
    let chat = providers
        .chat
        .as_ref()
        .ok_or("no chat model is configured (SWITCHBOARD_LLM_URL)")?;
    chat.stream(request).await.map_err(|e| e.to_string())
}

/// Runs one answer, reporting to `out` tagged with the job's `seq`.
pub(super) async fn run(job: Job, out: mpsc::Sender<(u64, Out)>) {
    let seq = job.seq;
    let send = |o: Out| {
        let out = out.clone();
        async move { out.send((seq, o)).await.is_ok() }
    };
    let mut voices: std::collections::VecDeque<TtsChoice> = job.voices.into_iter().collect();
    // The first word is due this long after the answer was asked for, however long the
    // connections take.
    let deadline = Instant::now() + job.first_token;
    let (voice, model) = tokio::join!(
        open_voice(&mut voices, &job.providers, false),
        tokio::time::timeout_at(deadline, open_model(&job.providers, &job.request))
    );
    let mut tts = match voice {
        Ok(t) => t,
        Err(e) => {
            send(Out::Failed {
                code: "tts_unavailable",
                message: e,
            })
            .await;
            return;
        }
    };
    tracing::debug!(voice = ?tts.provider, model_ok = matches!(model, Ok(Ok(_))), "answer under way");
    let mut stream = match model {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the chat model failed; apologising");
            None
        }
        Err(_) => {
            tracing::warn!("the chat model did not answer in time; apologising");
            None
        }
    };
    let mut apologized = false;
    let mut said = String::new();
    let mut voiced = 0usize;
    let mut sentences = Sentences::default();
    let mut tool_calls = Vec::new();
    let mut got_token = false;
    if stream.is_none() {
        apologized = true;
        said.push_str(&job.apology);
        if !send(Out::Text(job.apology.clone())).await {
            return;
        }
        let _ = tts.input.send(TtsInput::Text(job.apology.clone())).await;
        let _ = tts.input.send(TtsInput::Finish).await;
    }
    loop {
        let writing = stream.is_some();
        tokio::select! {
            ev = next_piece(stream.as_mut(), (!got_token).then_some(deadline)), if writing => {
                let mut pieces = Vec::new();
                let mut finished = false;
                match ev {
                    Ok(Some(StreamEvent::Text(t))) => {
                        if !got_token {
                            got_token = true;
                            if !send(Out::FirstToken).await {
                                return;
                            }
                        }
                        pieces = sentences.push(&t);
                    }
                    Ok(Some(StreamEvent::Done(c))) => {
                        tool_calls = c.tool_calls;
                        pieces.extend(sentences.finish());
                        finished = true;
                    }
                    Ok(None) => {
                        pieces.extend(sentences.finish());
                        finished = true;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, spoken = !said.is_empty(), "the chat model failed mid-answer");
                        if said.is_empty() {
                            apologized = true;
                            pieces.push(job.apology.clone());
                        } else {
                            pieces.extend(sentences.finish());
                        }
                        finished = true;
                    }
                }
                for piece in pieces {
                    tracing::trace!(piece = %piece, "to the voice");
                    said.push_str(&piece);
                    if !send(Out::Text(piece.clone())).await {
                        return;
                    }
                    let _ = tts.input.send(TtsInput::Text(piece)).await;
                }
                if finished {
                    stream = None;
                    let _ = tts.input.send(TtsInput::Finish).await;
                }
            }
            ev = tts.events.recv() => {
                let failure = match ev {
                    Some(TtsEvent::Audio { ulaw, chars }) => {
                        voiced += chars;
                        if !send(Out::Audio { ulaw, chars }).await {
                            return;
                        }
                        None
                    }
                    // Spoken to the end of the input.
                    Some(TtsEvent::Done) if !writing => break,
                    Some(TtsEvent::Done) => None,
                    Some(TtsEvent::Failed(e)) => Some(e),
                    None => Some("the voice stopped".to_owned()),
                };
                if let Some(e) = failure {
                    tracing::warn!(provider = ?tts.provider, error = %e, "text-to-speech failed mid-answer");
                    match open_voice(&mut voices, &job.providers, true).await {
                        Ok(next) => {
                            tts = next;
                            // The fallback says what the caller has not heard yet.
                            let rest: String = said.chars().skip(voiced).collect();
                            if !rest.trim().is_empty() {
                                let _ = tts.input.send(TtsInput::Text(rest)).await;
                            }
                            if !writing {
                                let _ = tts.input.send(TtsInput::Finish).await;
                            }
                        }
                        Err(_) => {
                            send(Out::Failed { code: "tts_failed", message: e }).await;
                            return;
                        }
                    }
                }
            }
        }
    }
    send(Out::Done {
        tool_calls,
        apologized,
    })
    .await;
}

/// The next piece of the answer; before the first one, no later than `deadline`.
async fn next_piece(
    stream: Option<&mut CompletionStream>,
    deadline: Option<Instant>,
) -> Result<Option<StreamEvent>, String> {
    let Some(stream) = stream else {
        return Ok(None);
    };
    match deadline {
        Some(d) => match tokio::time::timeout_at(d, stream.next()).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("the chat model said nothing in time".into()),
        },
        None => stream.next().await.map_err(|e| e.to_string()),
    }
}
