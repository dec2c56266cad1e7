//! ElevenLabs WebSocket input streaming (`/v1/text-to-speech/{voice_id}/stream-input`):
//! the first message is a single space with the voice settings; each sentence follows with
//! `flush: true` so it is spoken at once rather than buffered up to the chunk schedule; an
//! empty text ends the input. The answers carry base64 `audio` (mu-law 8 kHz, asked for
//! with `output_format=ulaw_8000`) and, by default, an `alignment` whose `chars` are the
//! characters that audio voices; the last has `isFinal: true`. An error comes as a JSON
//! message with `error`/`message` and a close (e.g. 1008 for a bad key or voice id).

use super::{TtsEvent, TtsInput, CHARS_PER_SECOND};
use crate::providers::{open_socket, socket_url, Socket};
use crate::Providers;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

pub(super) async fn start(
    p: &Providers,
    voice: &str,
    model: &str,
    input: mpsc::Receiver<TtsInput>,
    events: mpsc::Sender<TtsEvent>,
) -> Result<(), String> {
    let key = p
        .elevenlabs_key
        .as_ref()
        .ok_or("SWITCHBOARD_ELEVENLABS_API_KEY is not set")?;
    let url = format!(
        "{}/v1/text-to-speech/{voice}/stream-input?model_id={model}&output_format=ulaw_8000&inactivity_timeout=60",
        socket_url(p.elevenlabs_url.trim_end_matches('/'))
    );
    let mut socket = open_socket(p, "ElevenLabs", &url, "xi-api-key", key.expose()).await?;
    let init = json!({"text": " ", "voice_settings": {"stability": 0.5, "similarity_boost": 0.8}});
    socket
        .send(Message::Text(init.to_string().into()))
        .await
        .map_err(|e| format!("cannot start ElevenLabs: {e}"))?;
    tokio::spawn(run(socket, input, events));
    Ok(())
}

async fn run(
    mut socket: Socket,
    mut input: mpsc::Receiver<TtsInput>,
    events: mpsc::Sender<TtsEvent>,
) {
    let mut input_open = true;
    let outcome = loop {
        tokio::select! {
            text = input.recv(), if input_open => {
                let msg = match text {
                    Some(TtsInput::Text(t)) => {
                        // Each text ends with a space, as ElevenLabs asks.
                        let t = if t.ends_with(' ') { t } else { format!("{t} ") };
                        json!({"text": t, "flush": true})
                    }
                    Some(TtsInput::Finish) | None => {
                        input_open = false;
                        json!({"text": ""})
                    }
                };
                if let Err(e) = socket.send(Message::Text(msg.to_string().into())).await {
                    break TtsEvent::Failed(format!("cannot send to ElevenLabs: {e}"));
                }
            }
            msg = socket.next() => match msg {
                Some(Ok(Message::Text(t))) => match parse(&t) {
                    Ok(Some(ev)) => {
                        if events.send(ev).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => break TtsEvent::Failed(e),
                },
                Some(Ok(Message::Close(frame))) => {
                    if input_open {
                        break TtsEvent::Failed(format!(
                            "ElevenLabs closed the stream: {}",
                            frame.map(|f| format!("{} {}", f.code, f.reason)).unwrap_or_default()
                        ));
                    }
                    break TtsEvent::Done;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break TtsEvent::Failed(format!("ElevenLabs stream failed: {e}")),
                None if input_open => break TtsEvent::Failed("ElevenLabs stream ended".into()),
                None => break TtsEvent::Done,
            },
        }
    };
    // `isFinal` already reported Done; a second one is ignored by the reader.
    let _ = events.send(outcome).await;
    let _ = socket.close(None).await;
}

/// One ElevenLabs message: audio (with the characters it voices), the end, or an error.
pub(super) fn parse(text: &str) -> Result<Option<TtsEvent>, String> {
    let v: Value =
        serde_json::from_str(text).map_err(|_| "ElevenLabs sent a message that is not JSON")?;
    if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
        let message = v["message"].as_str().unwrap_or_default();
        let kind = err.as_str().map_or_else(|| err.to_string(), str::to_owned);
        return Err(format!("ElevenLabs error {kind}: {message}"));
    }
    if let Some(b64) = v["audio"].as_str().filter(|a| !a.is_empty()) {
        let ulaw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| "ElevenLabs audio is not base64")?;
        let chars = match v.pointer("/alignment/chars").and_then(Value::as_array) {
            Some(chars) => chars.len(),
            // No alignment (it is optional): estimate from the audio's length.
            None => ulaw.len() * CHARS_PER_SECOND / 8_000,
        };
        return Ok(Some(TtsEvent::Audio { ulaw, chars }));
    }
    if v["isFinal"].as_bool() == Some(true) {
        return Ok(Some(TtsEvent::Done));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_audio_with_their_characters_the_end_or_an_error() {
        let audio = r#"{"audio":"//8A","isFinal":null,"normalizedAlignment":{"chars":["H","i"," "],"charStartTimesMs":[0,30,60],"charDurationsMs":[30,30,30]},"alignment":{"chars":["H","i"," "],"charStartTimesMs":[0,30,60],"charDurationsMs":[30,30,30]}}"#;
        assert_eq!(
            parse(audio),
            Ok(Some(TtsEvent::Audio {
                ulaw: vec![0xff, 0xff, 0x00],
                chars: 3
            }))
        );
        assert_eq!(parse(r#"{"isFinal":true}"#), Ok(Some(TtsEvent::Done)));
        assert!(
            parse(r#"{"message":"Invalid API key","error":"invalid_api_key","code":1008}"#)
                .expect_err("an error")
                .contains("invalid_api_key")
        );
        assert_eq!(parse(r#"{"audio":null,"isFinal":false}"#), Ok(None));
    }
}
