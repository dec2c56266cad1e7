//! Deepgram live transcription over WebSocket (`/v1/listen`): mu-law 8 kHz goes up as
//! binary frames as it comes; `Results` come back interim (`is_final: false`) and final,
//! with `speech_final` at Deepgram's endpoint; `{"type":"Finalize"}` flushes what is
//! buffered (its results carry `from_finalize: true`, though Deepgram sends none when
//! nothing was pending); `{"type":"KeepAlive"}` keeps an idle socket open (Deepgram closes
//! after about 10 s without audio, NET-0001); `{"type":"CloseStream"}` ends it.

use super::{SttEvent, SttOptions};
use crate::providers::{open_socket, socket_url, Socket};
use crate::Providers;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Idle time after which a KeepAlive is sent.
const KEEPALIVE: Duration = Duration::from_secs(5);

enum Command {
    Audio(Vec<u8>),
    Finalize,
}

/// The call's end of the Deepgram socket (a task owns the socket).
pub(super) struct Deepgram {
    commands: mpsc::Sender<Command>,
    dropped: u64,
}

impl Deepgram {
    pub(super) async fn open(
        p: &Providers,
        model: &str,
        o: &SttOptions,
        events: mpsc::Sender<SttEvent>,
    ) -> Result<Deepgram, String> {
        let key = p
            .deepgram_key
            .as_ref()
            .ok_or("SWITCHBOARD_DEEPGRAM_API_KEY is not set")?;
        let mut url = format!(
            "{}/v1/listen?model={model}&encoding=mulaw&sample_rate=8000&channels=1\
             &interim_results=true&endpointing={}&utterance_end_ms={}&vad_events=true\
             &smart_format=true&punctuate=true",
            socket_url(p.deepgram_url.trim_end_matches('/')),
            o.silence_ms.max(10),
            // Deepgram requires at least 1000 ms here.
            o.silence_ms.max(1000),
        );
        if let Some(lang) = &o.language {
            url.push_str(&format!("&language={lang}"));
        }
        let auth = format!("Token {}", key.expose());
        let socket = open_socket(p, "Deepgram", &url, "Authorization", &auth).await?;
        let (commands, rx) = mpsc::channel(256);
        tokio::spawn(run(socket, rx, events));
        Ok(Deepgram {
            commands,
            dropped: 0,
        })
    }

    pub(super) fn audio(&mut self, ulaw: &[u8]) {
        if self
            .commands
            .try_send(Command::Audio(ulaw.to_vec()))
            .is_err()
        {
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = self.dropped,
                    "Deepgram is not keeping up; caller audio dropped"
                );
            }
        }
    }

    pub(super) fn finalize(&mut self) {
        let _ = self.commands.try_send(Command::Finalize);
    }
}

async fn run(
    mut socket: Socket,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<SttEvent>,
) {
    let failed = loop {
        tokio::select! {
            cmd = commands.recv() => match cmd {
                Some(Command::Audio(bytes)) => {
                    if let Err(e) = socket.send(Message::Binary(bytes.into())).await {
                        break format!("cannot send audio to Deepgram: {e}");
                    }
                }
                Some(Command::Finalize) => {
                    if let Err(e) = socket.send(Message::Text(r#"{"type":"Finalize"}"#.into())).await {
                        break format!("cannot send to Deepgram: {e}");
                    }
                }
                None => {
                    // The call is over: ask Deepgram to close, without waiting for it.
                    let _ = socket.send(Message::Text(r#"{"type":"CloseStream"}"#.into())).await;
                    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
                    return;
                }
            },
            msg = socket.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    if let Some(ev) = parse(&t) {
                        if events.send(ev).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    break format!("Deepgram closed the stream: {}", frame.map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_default());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break format!("Deepgram stream failed: {e}"),
                None => break "Deepgram stream ended".to_owned(),
            },
            _ = tokio::time::sleep(KEEPALIVE) => {
                if let Err(e) = socket.send(Message::Text(r#"{"type":"KeepAlive"}"#.into())).await {
                    break format!("cannot send to Deepgram: {e}");
                }
            }
        }
    };
    let _ = events.send(SttEvent::Failed(failed)).await;
}

/// One Deepgram message as an event (`Metadata`, `SpeechStarted` and unknown types are
/// not needed: the engine's own detector decides when the caller speaks).
pub(super) fn parse(text: &str) -> Option<SttEvent> {
    let v: Value = serde_json::from_str(text).ok()?;
    match v["type"].as_str()? {
        "Results" => {
            let words = v
                .pointer("/channel/alternatives/0/transcript")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_owned();
            if v["is_final"].as_bool() == Some(true) {
                let complete = v["speech_final"].as_bool() == Some(true)
                    || v["from_finalize"].as_bool() == Some(true);
                Some(SttEvent::Final {
                    text: words,
                    complete,
                })
            } else {
                Some(SttEvent::Interim(words))
            }
        }
        "UtteranceEnd" => Some(SttEvent::UtteranceEnd),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_read_as_interim_final_and_complete() {
        let interim = r#"{"type":"Results","channel_index":[0,1],"duration":1.0,"start":0.0,"is_final":false,"speech_final":false,"channel":{"alternatives":[{"transcript":"hello there","confidence":0.9,"words":[]}]}}"#;
        assert_eq!(
            parse(interim),
            Some(SttEvent::Interim("hello there".into()))
        );
        let fin = r#"{"type":"Results","is_final":true,"speech_final":false,"channel":{"alternatives":[{"transcript":"hello there "}]}}"#;
        assert_eq!(
            parse(fin),
            Some(SttEvent::Final {
                text: "hello there".into(),
                complete: false
            })
        );
        let flushed = r#"{"type":"Results","is_final":true,"speech_final":false,"from_finalize":true,"channel":{"alternatives":[{"transcript":""}]}}"#;
        assert_eq!(
            parse(flushed),
            Some(SttEvent::Final {
                text: String::new(),
                complete: true
            })
        );
        assert_eq!(
            parse(r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":2.1}"#),
            Some(SttEvent::UtteranceEnd)
        );
        assert_eq!(parse(r#"{"type":"Metadata","request_id":"x"}"#), None);
        assert_eq!(parse("not json"), None);
    }
}
