//! Audio accounting for one call: 20 ms alignment in both directions, and per assistant item
//! what was sent to Twilio and what Twilio confirmed played (via marks). Pure state, no I/O,
//! so the barge-in arithmetic is unit-tested.

use base64::Engine;
pub use switchboard_twilio::media::b64_len;
use switchboard_twilio::media::{BYTES_PER_MS, FRAME_BYTES};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// mu-law silence, used to pad the last partial frame of an item.
const SILENCE: u8 = 0xFF;

/// Re-chunks a byte stream into whole 20 ms frames.
#[derive(Debug, Default)]
pub struct Aligner {
    rest: Vec<u8>,
}

impl Aligner {
    /// Adds base64 audio; returns base64 of the whole frames now available (or `None`).
    /// When nothing is pending and the input is already whole frames, it is passed through
    /// without decoding.
    pub fn push<'a>(
        &mut self,
        b64: &'a str,
    ) -> Result<Option<(std::borrow::Cow<'a, str>, usize)>, base64::DecodeError> {
        let n = b64_len(b64);
        if self.rest.is_empty() && n.is_multiple_of(FRAME_BYTES) && b64.len().is_multiple_of(4) {
            return Ok((n > 0).then_some((std::borrow::Cow::Borrowed(b64), n)));
        }
        self.rest.extend_from_slice(&B64.decode(b64)?);
        let whole = self.rest.len() / FRAME_BYTES * FRAME_BYTES;
        if whole == 0 {
            return Ok(None);
        }
        let out = B64.encode(&self.rest[..whole]);
        self.rest.drain(..whole);
        Ok(Some((std::borrow::Cow::Owned(out), whole)))
    }

    /// The last partial frame padded with silence, and how many real bytes it holds.
    pub fn flush(&mut self) -> Option<(String, usize)> {
        if self.rest.is_empty() {
            return None;
        }
        let real = self.rest.len();
        self.rest.resize(FRAME_BYTES, SILENCE);
        let out = B64.encode(&self.rest);
        self.rest.clear();
        Some((out, real))
    }

    /// Drops anything pending.
    pub fn reset(&mut self) {
        self.rest.clear();
    }
}

/// One assistant item's audio on its way to the caller.
#[derive(Debug)]
pub struct Item {
    /// The model's item id.
    pub item_id: String,
    /// Local number, used in mark names.
    pub no: u64,
    /// Real audio bytes sent to Twilio (padding excluded).
    pub sent: usize,
    /// Bytes Twilio confirmed played.
    pub played: usize,
    /// The model finished this item's audio.
    pub done: bool,
    aligner: Aligner,
}

/// What to do on barge-in for one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// The item.
    pub item_id: String,
    /// What the caller heard, in ms, clamped to what was sent.
    pub audio_end_ms: u64,
    /// Everything sent so far, in ms.
    pub sent_ms: u64,
}

/// Playback state of a call.
#[derive(Debug, Default)]
pub struct Playback {
    generation: u64,
    next_no: u64,
    items: Vec<Item>,
    /// Items the caller interrupted: their late audio is dropped, never played.
    cut: std::collections::HashSet<String>,
}

/// One media message to send, with the mark that follows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Base64 mu-law.
    pub payload: String,
    /// Mark name.
    pub mark: String,
}

impl Playback {
    fn item_mut(&mut self, item_id: &str) -> &mut Item {
        // A new item resets per-item state (the bug the Twilio sample has: a stale start).
        if let Some(i) = self.items.iter().position(|i| i.item_id == item_id) {
            return &mut self.items[i];
        }
        self.next_no += 1;
        self.items.push(Item {
            item_id: item_id.to_owned(),
            no: self.next_no,
            sent: 0,
            played: 0,
            done: false,
            aligner: Aligner::default(),
        });
        let last = self.items.len() - 1;
        &mut self.items[last]
    }

    /// Model audio for `item_id`: returns the frame-aligned chunk to send, if any, and
    /// whether this is the item's first audio. Mark names are `generation:item:bytes`, the
    /// bytes sent for the item once this chunk has played.
    pub fn audio(
        &mut self,
        item_id: &str,
        b64: &str,
    ) -> Result<(Option<Chunk>, bool), base64::DecodeError> {
        let generation = self.generation;
        let item = self.item_mut(item_id);
        let first = item.sent == 0 && item.aligner.rest.is_empty();
        let Some((payload, n)) = item.aligner.push(b64)? else {
            return Ok((None, false));
        };
        item.sent += n;
        let mark = format!("{generation}:{}:{}", item.no, item.sent);
        Ok((
            Some(Chunk {
                payload: payload.into_owned(),
                mark,
            }),
            first,
        ))
    }

    /// The model finished the item's audio: the padded last partial frame, if any.
    pub fn audio_done(&mut self, item_id: &str) -> Option<Chunk> {
        let generation = self.generation;
        let item = self.item_mut(item_id);
        item.done = true;
        let (payload, real) = item.aligner.flush()?;
        item.sent += real;
        let mark = format!("{generation}:{}:{}", item.no, item.sent);
        Some(Chunk { payload, mark })
    }

    /// A mark echoed by Twilio. Echoes from before the last `clear` are ignored.
    pub fn mark(&mut self, name: &str) {
        let mut parts = name.split(':').map(str::parse::<u64>);
        let (Some(Ok(generation)), Some(Ok(no)), Some(Ok(cum))) =
            (parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        if generation != self.generation {
            return;
        }
        if let Some(item) = self.items.iter_mut().find(|i| i.no == no) {
            // Marks are echoed in order, so `max` only guards against a replayed echo.
            item.played = item.played.max(cum as usize).min(item.sent);
        }
        self.items.retain(|i| !(i.done && i.played >= i.sent));
    }

    /// Whether the caller still has agent audio queued or coming.
    pub fn audible(&self) -> bool {
        self.items.iter().any(|i| !i.done || i.played < i.sent)
    }

    /// Whether the caller interrupted `item_id` (its further audio must be dropped).
    pub fn is_cut(&self, item_id: &str) -> bool {
        self.cut.contains(item_id)
    }

    /// What Twilio confirmed played and what was sent of an item still tracked, in bytes.
    pub fn progress(&self, item_id: &str) -> Option<(usize, usize)> {
        self.items
            .iter()
            .find(|i| i.item_id == item_id)
            .map(|i| (i.played.min(i.sent), i.sent))
    }

    /// Barge-in: the items to truncate (only those with audio sent), and the state reset.
    /// The caller must send `clear` when `audible()` was true.
    pub fn interrupt(&mut self) -> Vec<Cut> {
        let cuts = self
            .items
            .iter()
            .filter(|i| i.sent > 0 && (!i.done || i.played < i.sent))
            .map(|i| Cut {
                item_id: i.item_id.clone(),
                audio_end_ms: (i.played.min(i.sent) / BYTES_PER_MS) as u64,
                sent_ms: (i.sent / BYTES_PER_MS) as u64,
            })
            .collect();
        self.generation += 1;
        // Every item still streaming is over for the caller, with audio sent or not yet.
        for i in self.items.iter().filter(|i| !i.done) {
            self.cut.insert(i.item_id.clone());
        }
        self.items.clear();
        cuts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(n: usize) -> String {
        B64.encode(vec![0x55u8; n])
    }

    #[test]
    fn lengths_without_decoding() {
        for n in [0, 1, 2, 3, 159, 160, 161, 320] {
            assert_eq!(b64_len(&b64(n)), n);
        }
    }

    #[test]
    fn aligner_passes_whole_frames_and_keeps_the_rest() {
        let mut a = Aligner::default();
        let whole = b64(320);
        let (out, n) = a.push(&whole).expect("ok").expect("frames");
        assert!(matches!(out, std::borrow::Cow::Borrowed(_)));
        assert_eq!(n, 320);
        assert!(a.push(&b64(100)).expect("ok").is_none());
        let (_, n) = a.push(&b64(100)).expect("ok").expect("one frame");
        assert_eq!(n, 160);
        let (pad, real) = a.flush().expect("rest");
        assert_eq!((b64_len(&pad), real), (160, 40));
    }

    #[test]
    fn barge_in_truncates_at_the_played_offset() {
        let mut p = Playback::default();
        let (c1, first) = p.audio("item_a", &b64(1600)).expect("ok");
        assert!(first);
        let c1 = c1.expect("chunk");
        assert_eq!(c1.mark, "0:1:1600");
        let (c2, first) = p.audio("item_a", &b64(1600)).expect("ok");
        assert!(!first);
        // Twilio has played the first 200 ms only.
        p.mark(&c1.mark);
        assert!(p.audible());
        let cuts = p.interrupt();
        assert_eq!(
            cuts,
            vec![Cut {
                item_id: "item_a".into(),
                audio_end_ms: 200,
                sent_ms: 400
            }]
        );
        // The echo of the second mark, produced by `clear`, is ignored.
        p.mark(&c2.expect("chunk").mark);
        assert!(!p.audible());
    }

    #[test]
    fn nothing_to_cut_once_everything_played() {
        let mut p = Playback::default();
        let (c, _) = p.audio("item_a", &b64(800)).expect("ok");
        assert!(p.audio_done("item_a").is_none());
        p.mark(&c.expect("chunk").mark);
        assert!(!p.audible());
        assert!(p.interrupt().is_empty());
    }

    #[test]
    fn late_audio_of_an_interrupted_item_is_recognised() {
        let mut p = Playback::default();
        let (c, _) = p.audio("item_a", &b64(1600)).expect("ok");
        assert!(c.is_some() && !p.is_cut("item_a"));
        assert_eq!(p.progress("item_a"), Some((0, 1600)));
        p.interrupt();
        assert!(p.is_cut("item_a"));
        // A finished, fully played item is not cut by a later barge-in.
        let (c, _) = p.audio("item_b", &b64(160)).expect("ok");
        p.audio_done("item_b");
        p.mark(&c.expect("chunk").mark);
        p.interrupt();
        assert!(!p.is_cut("item_b"));
    }

    #[test]
    fn a_new_item_starts_from_zero() {
        let mut p = Playback::default();
        let (c, _) = p.audio("item_a", &b64(800)).expect("ok");
        p.audio_done("item_a");
        p.mark(&c.expect("chunk").mark);
        let (c, first) = p.audio("item_b", &b64(480)).expect("ok");
        assert!(first);
        assert_eq!(c.expect("chunk").mark, "0:2:480");
        let cuts = p.interrupt();
        assert_eq!(cuts[0].audio_end_ms, 0);
        assert_eq!(cuts[0].item_id, "item_b");
    }
}
