//! Who answered an outbound call. Twilio's answering-machine detection reports
//! asynchronously (`/twilio/voice/amd`, stored on the call); until it says a person answered,
//! the model session is open but the agent holds: caller audio is kept, not forwarded, and no
//! greeting is spoken, so a voicemail box never hears the agent. A person is never left in
//! dead air: the caller speaking first releases the agent at once (the model hears what they
//! said), and so does a detection that does not come within [`AMD_WAIT`].

use crate::live::{Live, Step};
use crate::session::Exit;
use std::time::Duration;
use switchboard_domain::call::EndReason;

/// How long the agent holds for the detection's result at most.
pub(crate) const AMD_WAIT: Duration = Duration::from_secs(30);
/// How often the stored detection result is read while holding.
pub(crate) const AMD_POLL: Duration = Duration::from_millis(250);
/// Consecutive loud 20 ms frames that count as the caller speaking.
const SPEECH_FRAMES: u32 = 3;

/// Decodes one G.711 mu-law byte to 16-bit linear PCM.
fn ulaw_to_linear(u: u8) -> i32 {
    let u = !u;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if sign != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// Whether a mu-law frame is louder than line noise (mean absolute amplitude).
pub(crate) fn is_loud(frame: &[u8]) -> bool {
    if frame.is_empty() {
        return false;
    }
    let sum: i64 = frame
        .iter()
        .map(|b| i64::from(ulaw_to_linear(*b).abs()))
        .sum();
    sum / frame.len() as i64 > 400
}

impl Live {
    /// Caller audio while holding: enough speech releases the agent.
    pub(crate) async fn hear_while_holding(&mut self, bytes: &[u8]) -> Step {
        if is_loud(bytes) {
            self.loud_frames += 1;
        } else {
            self.loud_frames = 0;
        }
        if self.loud_frames >= SPEECH_FRAMES {
            tracing::info!(
                "the callee spoke before the answering-machine detection; the agent listens"
            );
            return self.release_hold(false).await;
        }
        Step::Go
    }

    /// Reads the detection's result; releases the agent for a person (or when it takes too
    /// long). A machine is handled by the detection's webhook (the stream then ends).
    pub(crate) async fn check_answered_by(&mut self) -> Step {
        let answered_by = match self.svc.store.get_call(&self.org, &self.call_id).await {
            Ok(c) => c.answered_by,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the answering-machine result");
                None
            }
        };
        match answered_by.as_deref() {
            Some("human" | "unknown" | "machine_start") => {
                tracing::info!(answered_by = ?answered_by, "a person answered; the agent starts");
                self.release_hold(true).await
            }
            Some(_) => Step::Go,
            None if tokio::time::Instant::now() >= self.amd_deadline => {
                tracing::warn!("no answering-machine result in time; the agent starts");
                self.release_hold(true).await
            }
            None => Step::Go,
        }
    }

    async fn release_hold(&mut self, greet: bool) -> Step {
        self.amd_pending = false;
        if !self.confirmed {
            // The session is not configured yet: it starts talking once it is.
            return Step::Go;
        }
        match self.start_talking(greet).await {
            Ok(()) => Step::Go,
            Err(e) => Step::Exit(Exit::Fail(EndReason::ModelDisconnected, e)),
        }
    }
}
