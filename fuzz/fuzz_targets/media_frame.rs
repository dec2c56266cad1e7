//! Twilio Media Streams frames, as the voice route receives them from the WebSocket.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_twilio::media::{self, Inbound};

fuzz_target!(|data: &[u8]| {
    // Twilio sends text frames; a binary or non-UTF-8 frame never reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(frame) = media::parse(text) else {
        return;
    };
    match frame {
        Inbound::Media { payload, .. } => {
            // The relay sizes audio from the base64 length without decoding it.
            let n = media::b64_len(&payload);
            assert!(n <= payload.len());
        }
        Inbound::Mark { name } => {
            // A mark name we would send back round-trips through our own encoder.
            let sent = media::mark("MZ1", &name);
            match media::parse(&sent) {
                Ok(Inbound::Unknown(_)) | Err(_) => panic!("our own mark does not parse: {sent}"),
                Ok(Inbound::Mark { name: back }) => assert_eq!(back, name),
                Ok(other) => panic!("our own mark parsed as {other:?}"),
            }
        }
        Inbound::Start(start) => {
            let _ = format!("{start:?}");
        }
        Inbound::Connected | Inbound::Dtmf { .. } | Inbound::Stop | Inbound::Unknown(_) => {}
    }
});
