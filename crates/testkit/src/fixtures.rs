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
    let decode = |u: u8| -> i16 {
        let u = !u;
        let sign = u & 0x80;
        let exp = (u >> 4) & 0x07;
        let mant = i32::from(u & 0x0f);
        let s = (((mant << 3) + 0x84) << exp) - 0x84;
        (if sign != 0 { -s } else { s }) as i16
    };
    let mut pcm: Vec<i16> = vec![0; 8000];
    pcm.extend(speech.iter().map(|b| decode(*b)));
    pcm.extend(std::iter::repeat_n(0, 16000));
    let data_len = (pcm.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    let path = std::env::temp_dir().join(format!(
        "switchboard-caller-{}.wav",
        NEXT_WAV.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + u64::from(std::process::id()) * 1_000_000
    ));
    std::fs::write(&path, out).expect("write the fixture");
    path
}
