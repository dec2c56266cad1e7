//! The call lifecycle: a forward-only state machine fed by Twilio status callbacks, the media
//! stream and the call session. Callbacks arrive late, twice or out of order, so every rule
//! here is idempotent and never moves a call backwards.

use crate::values::CallStatus;

/// The SID of a call made from a browser ("Call this agent"): `WB` and `tag`. Twilio's call
/// SIDs start with `CA`, so the two never meet, and nothing is ever asked of Twilio for one.
pub fn browser_call_sid(tag: &str) -> String {
    format!("WB{tag}")
}

/// Whether a call came from a browser rather than over Twilio (see [`browser_call_sid`]).
pub fn is_browser_call(call_sid: &str) -> bool {
    call_sid.starts_with("WB")
}

/// The SID Switchboard gives a call Retell runs: `retell:` and Retell's call id. Twilio's
/// SIDs start with `CA` and browser calls with `WB`; a Retell id may start with anything, so
/// the prefix has a colon no Twilio SID has.
pub fn retell_call_sid(retell_call_id: &str) -> String {
    format!("retell:{retell_call_id}")
}

/// Whether a call is run by Retell (see [`retell_call_sid`]): Retell, not Twilio, carries it.
pub fn is_retell_call(call_sid: &str) -> bool {
    call_sid.starts_with("retell:")
}

/// Whether Twilio carries the call (neither a browser nor a Retell call): only then may
/// anything about it be asked of Twilio.
pub fn is_twilio_call(call_sid: &str) -> bool {
    !is_browser_call(call_sid) && !is_retell_call(call_sid)
}

/// Whether `sid` can be a carrier's call SID: Twilio's `CA` + 32 hex digits, or
/// SignalWire's UUID (1 to 64 letters, digits and `-`), and neither a browser's nor Retell's.
pub fn valid_carrier_sid(sid: &str) -> bool {
    !sid.is_empty()
        && sid.len() <= 64
        && sid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && is_twilio_call(sid)
}

/// Position of a status in the lifecycle; a status with a lower rank never replaces a higher one.
pub fn status_rank(s: CallStatus) -> u8 {
    match s {
        CallStatus::Queued | CallStatus::Initiated => 0,
        CallStatus::Ringing => 1,
        CallStatus::InProgress => 2,
        CallStatus::Completed
        | CallStatus::Busy
        | CallStatus::NoAnswer
        | CallStatus::Canceled
        | CallStatus::Failed => 3,
    }
}

/// Whether the call is over.
pub fn is_terminal(s: CallStatus) -> bool {
    status_rank(s) == 3
}

/// The status a call should have after `incoming` is reported while it is at `current`:
/// forward only, and the first terminal status wins.
pub fn advance(current: CallStatus, incoming: CallStatus) -> CallStatus {
    if status_rank(incoming) > status_rank(current) {
        incoming
    } else {
        current
    }
}

/// Why a call ended; stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller hung up (stream `stop` or a `completed` callback we did not cause).
    CallerHungUp,
    /// The agent called `end_call`.
    AgentEnded,
    /// The agent transferred the caller to a person.
    Transferred,
    /// The agent's maximum call duration was reached.
    MaxDuration,
    /// The speech model session could not be opened.
    ModelUnavailable,
    /// The speech model session dropped mid-call.
    ModelDisconnected,
    /// The speech model rejected the session configuration or failed.
    ModelError,
    /// The media stream closed without a `stop`.
    StreamClosed,
    /// The media stream never authenticated or never started.
    StreamRejected,
    /// The server drained for a restart and the call outlived the drain timeout: the caller
    /// heard a goodbye.
    Shutdown,
    /// The instance running the call died (crash, `kill -9`); another instance or the next
    /// start ended it.
    InstanceLost,
    /// A peer (Twilio or the model) stopped reading and a send timed out.
    PeerStuck,
    /// The live call was hung up through the API (`POST /api/v1/calls/{id}/cancel`).
    HungUpByApi,
    /// An answering machine took the outbound call; the agent's message was left.
    VoicemailLeft,
    /// An answering machine (or a fax) took the outbound call; it was hung up.
    VoicemailHungUp,
    /// Twilio reported busy.
    Busy,
    /// Twilio reported no answer.
    NoAnswer,
    /// Twilio reported the call canceled.
    Canceled,
    /// Twilio reported the call failed.
    TwilioFailed,
    /// The call was answered with a media stream that never connected, and Twilio sent no
    /// status: closed by the recovery sweep.
    NoMedia,
    /// The front end that carried the call (Retell) ended it with an error or a failed dial;
    /// the call's `error` has its reason.
    ProviderFailed,
}

impl EndReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::CallerHungUp => "caller_hung_up",
            EndReason::AgentEnded => "agent_ended",
            EndReason::Transferred => "transferred",
            EndReason::MaxDuration => "max_duration",
            EndReason::ModelUnavailable => "model_unavailable",
            EndReason::ModelDisconnected => "model_disconnected",
            EndReason::ModelError => "model_error",
            EndReason::StreamClosed => "stream_closed",
            EndReason::StreamRejected => "stream_rejected",
            EndReason::Shutdown => "shutdown",
            EndReason::InstanceLost => "instance_lost",
            EndReason::PeerStuck => "peer_stuck",
            EndReason::HungUpByApi => "hung_up_by_api",
            EndReason::VoicemailLeft => "voicemail_left",
            EndReason::VoicemailHungUp => "voicemail_hung_up",
            EndReason::Busy => "busy",
            EndReason::NoAnswer => "no_answer",
            EndReason::Canceled => "canceled",
            EndReason::TwilioFailed => "twilio_failed",
            EndReason::NoMedia => "no_media",
            EndReason::ProviderFailed => "provider_failed",
        }
    }

    /// The final status a call ending this way gets. Failures on our side record `failed`
    /// even though Twilio will report the leg itself as `completed`.
    pub fn final_status(self) -> CallStatus {
        match self {
            EndReason::CallerHungUp
            | EndReason::AgentEnded
            | EndReason::Transferred
            | EndReason::StreamClosed
            | EndReason::Shutdown
            | EndReason::HungUpByApi
            | EndReason::VoicemailLeft
            | EndReason::VoicemailHungUp => CallStatus::Completed,
            EndReason::MaxDuration
            | EndReason::ModelUnavailable
            | EndReason::ModelDisconnected
            | EndReason::ModelError
            | EndReason::StreamRejected
            | EndReason::InstanceLost
            | EndReason::PeerStuck
            | EndReason::TwilioFailed
            | EndReason::NoMedia
            | EndReason::ProviderFailed => CallStatus::Failed,
            EndReason::Busy => CallStatus::Busy,
            EndReason::NoAnswer => CallStatus::NoAnswer,
            EndReason::Canceled => CallStatus::Canceled,
        }
    }

    /// The end reason implied by a terminal Twilio status we did not cause.
    pub fn from_twilio(status: CallStatus) -> Option<EndReason> {
        match status {
            CallStatus::Completed => Some(EndReason::CallerHungUp),
            CallStatus::Busy => Some(EndReason::Busy),
            CallStatus::NoAnswer => Some(EndReason::NoAnswer),
            CallStatus::Canceled => Some(EndReason::Canceled),
            CallStatus::Failed => Some(EndReason::TwilioFailed),
            _ => None,
        }
    }
}

/// The outcome shown in lists: completed, no_answer, busy, failed or canceled.
pub fn disposition(status: CallStatus) -> &'static str {
    match status {
        CallStatus::Busy => "busy",
        CallStatus::NoAnswer => "no_answer",
        CallStatus::Canceled => "canceled",
        CallStatus::Failed => "failed",
        _ => "completed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_only_moves_forward() {
        use CallStatus::*;
        assert_eq!(advance(Ringing, InProgress), InProgress);
        assert_eq!(advance(InProgress, Ringing), InProgress);
        assert_eq!(advance(Completed, InProgress), Completed);
        // The first terminal status wins; a second terminal report does not overwrite it.
        assert_eq!(advance(Failed, Completed), Failed);
        assert!(is_terminal(NoAnswer) && !is_terminal(InProgress));
    }

    #[test]
    fn reasons_map_to_statuses() {
        assert_eq!(EndReason::MaxDuration.final_status(), CallStatus::Failed);
        assert_eq!(EndReason::AgentEnded.final_status(), CallStatus::Completed);
        assert_eq!(
            EndReason::from_twilio(CallStatus::NoAnswer),
            Some(EndReason::NoAnswer)
        );
        assert_eq!(disposition(CallStatus::NoAnswer), "no_answer");
    }
}
