//! A Piper voice in this process (offline): one synthesis per sentence, in order; the
//! sentence's audio is known whole, so its characters are spread over it evenly.

use super::{TtsEvent, TtsInput};
use crate::Providers;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Audio per event (200 ms), so playback and barge-in accounting stay fine-grained.
const PIECE: usize = 1_600;

pub(super) fn start(
    p: &Providers,
    voice: &str,
    input: mpsc::Receiver<TtsInput>,
    events: mpsc::Sender<TtsEvent>,
) -> Result<(), String> {
    if p.local.has_voice(voice) != Some(true) {
        return Err(format!("the server has no Piper voice `{voice}`"));
    }
    tokio::spawn(run(p.local.clone(), voice.to_owned(), input, events));
    Ok(())
}

async fn run(
    local: Arc<crate::offline::Local>,
    voice: String,
    mut input: mpsc::Receiver<TtsInput>,
    events: mpsc::Sender<TtsEvent>,
) {
    while let Some(TtsInput::Text(text)) = input.recv().await {
        let audio = match local.synthesize(voice.clone(), text.clone()).await {
            Ok(a) => a,
            Err(e) => {
                let _ = events.send(TtsEvent::Failed(e)).await;
                return;
            }
        };
        let total = text.chars().count();
        let pieces = audio.len().div_ceil(PIECE).max(1);
        let mut given = 0;
        for (i, piece) in audio.chunks(PIECE).enumerate() {
            let upto = total * (i + 1) / pieces;
            let ev = TtsEvent::Audio {
                ulaw: piece.to_vec(),
                chars: upto - given,
            };
            given = upto;
            if events.send(ev).await.is_err() {
                return;
            }
        }
    }
    let _ = events.send(TtsEvent::Done).await;
}
