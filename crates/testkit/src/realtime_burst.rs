//! The fake model's bursty echo (load generator): the caller's audio comes back as the real
//! API sends agent audio, in deltas of 100 to 200 ms released a few at a time, rather than
//! one 20 ms delta per appended frame.

use switchboard_twilio::media::FRAME_BYTES;

/// How agent audio is cut and released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Burst {
    /// Fewest 20 ms frames per delta.
    pub min_frames: usize,
    /// Most 20 ms frames per delta.
    pub max_frames: usize,
    /// Deltas held back and then sent together.
    pub deltas_per_burst: usize,
}

impl Default for Burst {
    /// 100 to 200 ms per delta, three at a time.
    fn default() -> Self {
        Burst {
            min_frames: 5,
            max_frames: 10,
            deltas_per_burst: 3,
        }
    }
}

/// Cuts appended audio into deltas and releases them in bursts.
#[derive(Debug)]
pub(crate) struct Burster {
    cfg: Burst,
    buf: Vec<u8>,
    held: Vec<Vec<u8>>,
    cut: usize,
}

impl Burster {
    pub(crate) fn new(cfg: Burst) -> Burster {
        Burster {
            cfg,
            buf: Vec::new(),
            held: Vec::new(),
            cut: 0,
        }
    }

    /// The frames of the next delta: a fixed, uneven sequence between the bounds.
    fn target(&self) -> usize {
        let span = self.cfg.max_frames.saturating_sub(self.cfg.min_frames) + 1;
        self.cfg.min_frames.max(1) + (self.cut * 7) % span
    }

    /// Adds appended audio; answers the deltas to send now.
    pub(crate) fn push(&mut self, audio: &[u8]) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(audio);
        while self.buf.len() >= self.target() * FRAME_BYTES {
            let n = self.target() * FRAME_BYTES;
            self.held.push(self.buf.drain(..n).collect());
            self.cut += 1;
        }
        if self.held.len() >= self.cfg.deltas_per_burst.max(1) {
            std::mem::take(&mut self.held)
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_of_100_to_200_ms_in_bursts_of_three() {
        let mut b = Burster::new(Burst::default());
        let mut out = Vec::new();
        for i in 0..400u32 {
            let frame = [i as u8; FRAME_BYTES];
            let sent = b.push(&frame);
            assert!(sent.is_empty() || sent.len() == 3, "{}", sent.len());
            out.extend(sent);
        }
        assert!(out.len() >= 30);
        for d in &out {
            assert!(d.len() % FRAME_BYTES == 0);
            assert!((5..=10).contains(&(d.len() / FRAME_BYTES)), "{}", d.len());
        }
        // Nothing lost or reordered: frame i carries byte i.
        let frames: Vec<u8> = out.concat().chunks(FRAME_BYTES).map(|f| f[0]).collect();
        assert!(frames.iter().enumerate().all(|(i, f)| *f == i as u8));
    }
}
