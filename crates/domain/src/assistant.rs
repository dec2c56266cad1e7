//! The operator assistant's rules: who may ask it what, and when a proposed change may be
//! carried out. Nothing the assistant proposes happens when the model asks for it: it becomes
//! an action with a preview, done once, only by the person it was proposed to, before it
//! expires, and only while what it would change is as the preview showed it.

use crate::Timestamp;
use serde::Serialize;
use serde_json::Value;

/// How long a proposed action may be confirmed.
pub const ACTION_TTL_MS: i64 = 10 * 60 * 1000;
/// Model rounds (tool calls and answers) one message may take before the assistant stops.
pub const MAX_ROUNDS: usize = 8;
/// The longest message a person may send.
pub const MAX_MESSAGE_CHARS: usize = 8_000;
/// The longest session key a client may choose.
pub const MAX_SESSION_KEY: usize = 100;

/// Where a proposed action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ActionStatus {
    /// Waiting for a decision.
    Pending,
    /// Confirmed; being carried out.
    Running,
    /// Carried out.
    Done,
    /// Confirmed, but carrying it out failed (`result` says why).
    Failed,
    /// Cancelled by the person.
    Canceled,
    /// What it would change changed after the preview; a new preview replaced it.
    Stale,
    /// Not decided within [`ACTION_TTL_MS`].
    Expired,
}

impl ActionStatus {
    /// The stored name (`expired` is never stored: it is read off the expiry).
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Pending => "pending",
            ActionStatus::Running => "running",
            ActionStatus::Done => "done",
            ActionStatus::Failed => "failed",
            ActionStatus::Canceled => "canceled",
            ActionStatus::Stale => "stale",
            ActionStatus::Expired => "expired",
        }
    }

    /// Reads a stored name, as of `now` (a pending action past its expiry is expired).
    pub fn read(s: &str, expires_at: Timestamp, now: Timestamp) -> Option<ActionStatus> {
        let status = match s {
            "pending" => ActionStatus::Pending,
            "running" => ActionStatus::Running,
            "done" => ActionStatus::Done,
            "failed" => ActionStatus::Failed,
            "canceled" => ActionStatus::Canceled,
            "stale" => ActionStatus::Stale,
            _ => return None,
        };
        Some(
            if status == ActionStatus::Pending && now.millis() >= expires_at.millis() {
                ActionStatus::Expired
            } else {
                status
            },
        )
    }
}

/// A proposed change as shown to people and clients.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AssistantAction {
    /// Id (`act_...`).
    pub id: String,
    /// The tool that would run.
    pub tool: String,
    /// What will happen, in a sentence or two.
    pub summary: String,
    /// The details: a diff of instructions, the recipients and the message, the number and
    /// the time of a call...
    #[schema(value_type = Object)]
    pub preview: Value,
    /// `pending`, `running`, `done`, `failed`, `canceled`, `stale` or `expired`.
    pub status: ActionStatus,
    /// Proposed.
    pub created_at: Timestamp,
    /// Confirmable until.
    pub expires_at: Timestamp,
    /// Decided.
    pub decided_at: Option<Timestamp>,
    /// What carrying it out answered (or why it failed).
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
}

/// Why a confirmation (or cancellation) is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such action in this organization.
    NotFound,
    /// Proposed to someone else.
    NotYours,
    /// Past its expiry.
    Expired,
    /// Already confirmed (once is all).
    AlreadyDone,
    /// Cancelled.
    Canceled,
    /// Replaced by a newer preview.
    Stale,
    /// Proposed in the same message that asks to confirm it: the person has not seen it.
    NotShownYet,
    /// The person may only read (members).
    ReadOnly,
    /// Asked by voice without an explicit spoken confirmation ("yes, do it").
    NotSpoken,
}

impl Refusal {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotFound => "not_found",
            Refusal::NotYours => "not_your_action",
            Refusal::Expired => "action_expired",
            Refusal::AlreadyDone => "action_used",
            Refusal::Canceled => "action_canceled",
            Refusal::Stale => "action_stale",
            Refusal::NotShownYet => "action_not_shown",
            Refusal::ReadOnly => "read_only",
            Refusal::NotSpoken => "confirmation_not_spoken",
        }
    }

    /// A sentence for the person.
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::NotFound => "no such action",
            Refusal::NotYours => "this action was proposed to someone else; only they can decide it",
            Refusal::Expired => "this action expired (actions are confirmable for 10 minutes); ask again for a new preview",
            Refusal::AlreadyDone => "this action was already confirmed; it happens once",
            Refusal::Canceled => "this action was cancelled",
            Refusal::Stale => "what this action changes has changed since the preview; a new preview replaces it",
            Refusal::NotShownYet => "the preview has not been shown yet; show it and ask for confirmation first",
            Refusal::ReadOnly => "members can ask the assistant questions but cannot change anything",
            Refusal::NotSpoken => "a change is confirmed by voice only when the person says so explicitly (\"yes, do it\" or \"confirm\"), or with the Confirm button; ask them",
        }
    }
}

/// Checks that `who` may decide an action in `status` proposed to `proposed_to`.
pub fn may_decide(status: ActionStatus, proposed_to: &str, who: &str) -> Result<(), Refusal> {
    if proposed_to != who {
        return Err(Refusal::NotYours);
    }
    match status {
        ActionStatus::Pending => Ok(()),
        ActionStatus::Expired => Err(Refusal::Expired),
        ActionStatus::Running | ActionStatus::Done | ActionStatus::Failed => {
            Err(Refusal::AlreadyDone)
        }
        ActionStatus::Canceled => Err(Refusal::Canceled),
        ActionStatus::Stale => Err(Refusal::Stale),
    }
}

/// Whether spoken words are an explicit confirmation: they ask for it to be done ("yes, do
/// it", "confirm", "go ahead") and nothing in them holds it back ("no", "don't", "wait",
/// "cancel"...). A bare "yes", "sure" or "okay" is not enough: it may answer a different
/// question than the one the preview asked.
pub fn spoken_yes(words: &str) -> bool {
    let lower = words.to_lowercase().replace(['’', '`'], "'");
    let tokens: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|t| !t.is_empty())
        .collect();
    const HOLD: [&str; 11] = [
        "no", "not", "dont", "never", "wait", "cancel", "stop", "hold", "nope", "later", "before",
    ];
    if tokens
        .iter()
        .any(|t| HOLD.contains(t) || t.ends_with("n't"))
    {
        return false;
    }
    let has = |phrase: &[&str]| tokens.windows(phrase.len()).any(|w| w == phrase);
    has(&["do", "it"])
        || has(&["confirm"])
        || has(&["confirmed"])
        || has(&["go", "ahead"])
        || has(&["approve"])
        || has(&["approved"])
}

/// A session's title: the first words of its first message.
pub fn title_of(message: &str) -> String {
    let one_line: String = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= 60 {
        return one_line;
    }
    let cut: String = one_line.chars().take(59).collect();
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_explicit_words_confirm_by_voice() {
        for yes in [
            "Yes, do it.",
            "yes do it",
            "Confirm.",
            "I confirm",
            "Go ahead!",
            "Yes please, go ahead and do it",
            "Approved",
        ] {
            assert!(spoken_yes(yes), "{yes}");
        }
        for no in [
            "Yes.",
            "Sure",
            "okay",
            "",
            "No, don't do it",
            "Don’t do it",
            "do not do it",
            "wait, do it later",
            "Cancel it",
            "can you confirm the time before you do it?",
            "I can't confirm",
            "Never do it",
        ] {
            assert!(!spoken_yes(no), "{no}");
        }
    }

    #[test]
    fn pending_actions_expire_and_only_their_person_decides_once() {
        let at = Timestamp::from_millis(1_000);
        let until = Timestamp::from_millis(1_000 + ACTION_TTL_MS);
        assert_eq!(
            ActionStatus::read("pending", until, at),
            Some(ActionStatus::Pending)
        );
        assert_eq!(
            ActionStatus::read("pending", until, until),
            Some(ActionStatus::Expired)
        );
        assert_eq!(
            ActionStatus::read("done", until, until),
            Some(ActionStatus::Done)
        );
        assert_eq!(ActionStatus::read("nonsense", until, at), None);
        assert_eq!(
            may_decide(ActionStatus::Pending, "user:a", "user:a"),
            Ok(())
        );
        assert_eq!(
            may_decide(ActionStatus::Pending, "user:a", "user:b"),
            Err(Refusal::NotYours)
        );
        for (s, r) in [
            (ActionStatus::Done, Refusal::AlreadyDone),
            (ActionStatus::Running, Refusal::AlreadyDone),
            (ActionStatus::Expired, Refusal::Expired),
            (ActionStatus::Canceled, Refusal::Canceled),
            (ActionStatus::Stale, Refusal::Stale),
        ] {
            assert_eq!(may_decide(s, "user:a", "user:a"), Err(r));
        }
    }

    #[test]
    fn titles_are_short_single_lines() {
        assert_eq!(
            title_of("  How many\ncalls  today? "),
            "How many calls today?"
        );
        let long = "word ".repeat(40);
        let t = title_of(&long);
        assert!(t.chars().count() <= 60 && t.ends_with('…'), "{t}");
    }
}
