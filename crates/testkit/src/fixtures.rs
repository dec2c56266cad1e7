//! Speech fixtures: raw mu-law 8 kHz made by `scripts/make-speech-fixtures.sh`.

/// "Hello, I would like to book an appointment for Monday at ten in the morning, please."
pub const CALLER_BOOKING: &[u8] = include_bytes!("../fixtures/caller_booking.ulaw");
/// "Wait, sorry, can I ask something else?"
pub const CALLER_INTERRUPT: &[u8] = include_bytes!("../fixtures/caller_interrupt.ulaw");
/// A ten-second agent answer about opening hours.
pub const AGENT_REPLY: &[u8] = include_bytes!("../fixtures/agent_reply.ulaw");
/// The transcript of [`AGENT_REPLY`].
pub const AGENT_REPLY_TEXT: &str = "Of course. Our opening hours are nine to five on weekdays, and I can book you in for Monday at ten. Shall I go ahead and reserve that time for you now?";
/// "Thanks for calling. Goodbye!"
pub const AGENT_SHORT: &[u8] = include_bytes!("../fixtures/agent_short.ulaw");
/// The transcript of [`AGENT_SHORT`].
pub const AGENT_SHORT_TEXT: &str = "Thanks for calling. Goodbye!";

static NEXT_WAV: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A WAV file (PCM 16-bit, 8 kHz, mono) of a second of silence, `speech` (mu-law), and two
/// more, in the temporary directory: what Chromium's fake microphone plays
/// (`--use-file-for-fake-audio-capture`). The caller removes it.
pub fn speech_wav(speech: &[u8]) -> std::path::PathBuf {
    use switchboard_cascade::audio::{ulaw_to_pcm, wav};
    let mut pcm: Vec<i16> = vec![0; 8000];
    pcm.extend(speech.iter().map(|b| ulaw_to_pcm(*b)));
    pcm.extend(std::iter::repeat_n(0, 16000));
    let out = wav(&pcm, 8_000);
    let path = std::env::temp_dir().join(format!(
        "switchboard-caller-{}.wav",
        NEXT_WAV.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + u64::from(std::process::id()) * 1_000_000
    ));
    std::fs::write(&path, out).expect("write the fixture");
    path
}
