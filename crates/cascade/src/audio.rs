//! Audio for the phone: G.711 mu-law to and from 16-bit PCM, a band-limited resampler
//! between 8 kHz and the providers' rates, and the energy-based voice activity detector
//! that decides when the caller speaks and when they stopped.

use rubato::{Resampler as _, SincFixedIn, SincInterpolationParameters, SincInterpolationType};

/// Samples per second on the phone.
pub const PHONE_RATE: u32 = 8_000;
/// Samples in a 20 ms phone frame (one Twilio media message).
pub const FRAME_SAMPLES: usize = 160;

/// One mu-law byte to linear 16-bit PCM (G.711).
pub fn ulaw_to_pcm(u: u8) -> i16 {
    let u = !u;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// Linear 16-bit PCM to one mu-law byte (G.711, with the standard bias and clip).
pub fn pcm_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = s.min(CLIP) + BIAS;
    let exponent = (7 - (s.leading_zeros() as i32 - 17)).clamp(0, 7);
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Streams 16-bit PCM from one rate to another through a windowed-sinc resampler
/// (rubato), keeping what does not fill a block for the next call.
pub struct Resampler {
    inner: SincFixedIn<f32>,
    pending: Vec<f32>,
    block: usize,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("block", &self.block)
            .finish()
    }
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz, taking 20 ms blocks.
    pub fn new(from: u32, to: u32) -> Result<Resampler, String> {
        let block = (from / 50) as usize;
        let params = SincInterpolationParameters {
            // Speech on the phone is band-limited to 3.4 kHz: a short filter suffices.
            sinc_len: 64,
            f_cutoff: 0.92,
            oversampling_factor: 128,
            interpolation: SincInterpolationType::Linear,
            window: rubato::WindowFunction::BlackmanHarris2,
        };
        let inner = SincFixedIn::new(f64::from(to) / f64::from(from), 1.0, params, block, 1)
            .map_err(|e| format!("cannot build a {from}->{to} Hz resampler: {e}"))?;
        Ok(Resampler {
            inner,
            pending: Vec::with_capacity(block * 2),
            block,
        })
    }

    /// Resamples what `input` completes; the rest waits for more (or [`Resampler::finish`]).
    pub fn push(&mut self, input: &[i16]) -> Vec<i16> {
        self.pending
            .extend(input.iter().map(|s| f32::from(*s) / 32_768.0));
        let mut out = Vec::new();
        while self.pending.len() >= self.block {
            let chunk: Vec<f32> = self.pending.drain(..self.block).collect();
            if let Ok(res) = self.inner.process(&[chunk], None) {
                out.extend(res[0].iter().map(|s| to_i16(*s)));
            }
        }
        out
    }

    /// Resamples what is left (padded with silence to a block).
    pub fn finish(&mut self) -> Vec<i16> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let rest = std::mem::take(&mut self.pending);
        match self.inner.process_partial(Some(&[rest]), None) {
            Ok(res) => res[0].iter().map(|s| to_i16(*s)).collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn to_i16(s: f32) -> i16 {
    (s * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16
}

/// What the detector saw in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voice {
    /// Nothing changed.
    Same,
    /// The caller started speaking.
    Started,
    /// The caller has been quiet for the endpointing silence after speaking.
    Stopped,
}

/// Voice activity detection on the caller's audio: a frame is speech when its level is
/// above a threshold; speech starts after [`Vad::ONSET_FRAMES`] of the last
/// [`Vad::WINDOW`] frames are speech (a click or a breath is not a turn), and stops after
/// `silence_ms` without a speech frame (the endpointing rule, tunable per agent).
#[derive(Debug, Clone)]
pub struct Vad {
    level: f64,
    silence_frames: u32,
    recent: u8,
    speaking: bool,
    quiet: u32,
}

impl Vad {
    /// Speech frames among the last [`Vad::WINDOW`] that start a turn.
    pub const ONSET_FRAMES: u32 = 3;
    /// Frames the onset looks at.
    pub const WINDOW: u32 = 5;

    /// `threshold` 0 to 1 (the agent's `turn_detection.threshold`, default 0.5) maps to
    /// -55 to -25 dBFS; `silence_ms` is the agent's `silence_duration_ms` (default 500).
    pub fn new(threshold: f64, silence_ms: u32) -> Vad {
        let db = -55.0 + threshold.clamp(0.0, 1.0) * 30.0;
        Vad {
            level: 32_768.0 * 10f64.powf(db / 20.0),
            silence_frames: silence_ms.div_ceil(20).max(1),
            recent: 0,
            speaking: false,
            quiet: 0,
        }
    }

    /// Whether the caller is speaking.
    pub fn speaking(&self) -> bool {
        self.speaking
    }

    /// Back to waiting for speech (the turn ended another way).
    pub fn reset(&mut self) {
        self.speaking = false;
        self.recent = 0;
        self.quiet = 0;
    }

    /// One frame of PCM.
    pub fn frame(&mut self, pcm: &[i16]) -> Voice {
        if pcm.is_empty() {
            return Voice::Same;
        }
        let energy: f64 = pcm.iter().map(|s| f64::from(*s).powi(2)).sum();
        let rms = (energy / pcm.len() as f64).sqrt();
        let speech = rms >= self.level;
        self.recent = ((self.recent << 1) | u8::from(speech)) & ((1 << Self::WINDOW) - 1);
        if !self.speaking {
            if self.recent.count_ones() >= Self::ONSET_FRAMES {
                self.speaking = true;
                self.quiet = 0;
                return Voice::Started;
            }
            return Voice::Same;
        }
        if speech {
            self.quiet = 0;
            return Voice::Same;
        }
        self.quiet += 1;
        if self.quiet >= self.silence_frames {
            self.reset();
            return Voice::Stopped;
        }
        Voice::Same
    }
}

/// PCM 16-bit mono as a WAV file (for uploads that want a file).
pub fn wav(pcm: &[i16], rate: u32) -> Vec<u8> {
    let data_len = (pcm.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mu_law_round_trips_within_its_step() {
        for u in 0..=255u8 {
            let pcm = ulaw_to_pcm(u);
            let back = ulaw_to_pcm(pcm_to_ulaw(pcm));
            assert_eq!(back, pcm, "byte {u:#x}");
        }
        assert_eq!(pcm_to_ulaw(0), 0xff);
    }

    fn tone(rate: u32, hz: f64, ms: u32, amp: f64) -> Vec<i16> {
        (0..rate * ms / 1000)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * hz * f64::from(i) / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    #[test]
    fn resampling_keeps_the_length_and_the_tone() {
        let input = tone(24_000, 440.0, 1000, 10_000.0);
        let mut r = Resampler::new(24_000, 8_000).expect("resampler");
        let mut out = r.push(&input[..7_001]);
        out.extend(r.push(&input[7_001..]));
        out.extend(r.finish());
        assert!(
            (7_900..=8_200).contains(&out.len()),
            "{} samples",
            out.len()
        );
        // A 440 Hz tone crosses zero 880 times a second; sample dropping without a filter
        // would keep it too, so also check the level survived (no collapse to silence).
        let mid = &out[1_000..7_000];
        let crossings = mid.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        assert!(
            (640..=680).contains(&crossings),
            "{crossings} crossings in 0.75 s"
        );
        let peak = mid.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!((9_000..=11_000).contains(&peak), "peak {peak}");
    }

    #[test]
    fn a_tone_above_the_new_nyquist_is_filtered_out() {
        // 6 kHz cannot exist at 8 kHz: a resampler that only drops samples aliases it to
        // 2 kHz at full level; a band-limited one removes it.
        let input = tone(24_000, 6_000.0, 500, 10_000.0);
        let mut r = Resampler::new(24_000, 8_000).expect("resampler");
        let out = r.push(&input);
        let peak = out[200..]
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap_or(0);
        assert!(peak < 1_000, "aliased peak {peak}");
    }

    #[test]
    fn the_detector_starts_on_speech_and_stops_after_the_silence() {
        let mut vad = Vad::new(0.5, 100);
        let quiet = vec![0i16; FRAME_SAMPLES];
        let loud = tone(8_000, 300.0, 20, 8_000.0);
        assert_eq!(vad.frame(&quiet), Voice::Same);
        // One loud frame (a click) is not speech.
        assert_eq!(vad.frame(&loud), Voice::Same);
        assert_eq!(vad.frame(&quiet), Voice::Same);
        assert_eq!(vad.frame(&quiet), Voice::Same);
        assert_eq!(vad.frame(&quiet), Voice::Same);
        assert_eq!(vad.frame(&quiet), Voice::Same);
        assert_eq!(vad.frame(&loud), Voice::Same);
        assert_eq!(vad.frame(&loud), Voice::Same);
        assert_eq!(vad.frame(&loud), Voice::Started);
        assert!(vad.speaking());
        // Four quiet frames (80 ms) are a pause, the fifth (100 ms) ends the turn.
        for _ in 0..4 {
            assert_eq!(vad.frame(&quiet), Voice::Same);
        }
        assert_eq!(vad.frame(&loud), Voice::Same);
        for _ in 0..4 {
            assert_eq!(vad.frame(&quiet), Voice::Same);
        }
        assert_eq!(vad.frame(&quiet), Voice::Stopped);
        assert!(!vad.speaking());
    }
}
