//! Tools that steer the call itself rather than reach data: handing the call to another agent
//! (`handoff_to_<name>`, one per agent the current one lists) and collecting keypad digits
//! (`collect_digits`, fed by the call's keypad). Both run under the registry's audit like any
//! tool; the call actor acts on their effects.

use crate::{Effect, ToolContext, ToolDefinition, ToolError};
use serde_json::{json, Value};
use std::sync::Mutex;
use std::time::Duration;
use switchboard_domain::agent::{handoff_tool_name, Agent};
use switchboard_domain::ids::{AgentId, OrgId};
use switchboard_store::Store;
use tokio::sync::mpsc;

/// The most handoffs one call may make.
pub const MAX_CALL_HANDOFFS: usize = 8;
/// How many times a call may arrive at the same agent by handoff: A -> B -> A -> B, and a
/// third arrival at A is refused.
pub const MAX_RETURNS: usize = 2;

/// A handoff the model may make: its tool name and the agent it goes to.
#[derive(Debug, Clone)]
pub(crate) struct HandoffTool {
    pub(crate) name: String,
    pub(crate) agent_id: AgentId,
}

/// The handoff tools of `agent` (voice only), skipping agents that no longer exist.
pub(crate) async fn handoff_tools(
    store: &Store,
    org: &OrgId,
    agent: &Agent,
) -> Vec<(ToolDefinition, HandoffTool)> {
    let mut out: Vec<(ToolDefinition, HandoffTool)> = Vec::new();
    for h in &agent.handoffs {
        let target = match store.get_agent(org, &h.agent_id).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(agent_id = %h.agent_id, error = %e, "handoff target unavailable; not offered");
                continue;
            }
        };
        let taken: Vec<String> = out.iter().map(|(d, _)| d.name.clone()).collect();
        let name = handoff_tool_name(&target.name, &taken);
        out.push((
            ToolDefinition {
                name: name.clone(),
                description: format!(
                    "Hand the call to {} (another agent of this business, with its own instructions and tools): {} Tell the caller you are passing them on, then call this. The conversation so far goes with the call.",
                    target.name, h.description
                ),
                parameters: json!({"type": "object", "properties": {
                    "reason": {"type": "string", "description": "What the caller needs, in a few words, for the next agent"}
                }}),
            },
            HandoffTool {
                name,
                agent_id: target.id,
            },
        ));
    }
    out
}

/// Runs a handoff tool: the target is read again (its latest instructions), the call's
/// handoff count and returns are checked, and the effect tells the call actor to switch.
pub(crate) async fn handoff(
    ctx: &ToolContext,
    tool: &HandoffTool,
    args: &Value,
) -> Result<(Value, Option<Effect>), ToolError> {
    let passed = &ctx.passed_agents;
    if passed.len() > MAX_CALL_HANDOFFS {
        return Err(ToolError::new(
            "handoff_limit",
            "This call has been passed on too many times; help the caller yourself.",
        ));
    }
    let returns = passed.iter().filter(|a| **a == tool.agent_id).count();
    if returns >= MAX_RETURNS {
        return Err(ToolError::new(
            "handoff_loop",
            "The call keeps going back and forth between the same agents; help the caller yourself.",
        ));
    }
    let target = ctx
        .store
        .get_agent(&ctx.org, &tool.agent_id)
        .await
        .map_err(|_| {
            ToolError::new(
                "handoff_unavailable",
                "That part of the business cannot take calls right now; help the caller yourself.",
            )
        })?;
    let reason = args["reason"]
        .as_str()
        .map(|r| r.chars().take(500).collect::<String>());
    Ok((
        json!({"ok": true, "handed_off_to": target.name,
            "message": format!("The call is now with {}; continue as them.", target.name)}),
        Some(Effect::Handoff {
            agent: Box::new(target),
            reason,
        }),
    ))
}

/// The definition of `collect_digits`.
pub(crate) fn collect_digits_definition(agent: &Agent) -> ToolDefinition {
    let d = agent.digits;
    let ends = match d.terminator {
        Some(t) => format!(
            "the caller presses {t}, {} digits are entered, or {} seconds pass without a key",
            d.max_digits, d.timeout_seconds
        ),
        None => format!(
            "{} digits are entered or {} seconds pass without a key",
            d.max_digits, d.timeout_seconds
        ),
    };
    ToolDefinition {
        name: "collect_digits".into(),
        description: format!(
            "Let the caller type a number on their keypad instead of saying it (an account or order number, a PIN, a menu choice). First tell the caller what to enter{}. Answers the digits once {ends}.",
            d.terminator.map(|t| format!(" and to finish with {t}")).unwrap_or_default()
        ),
        parameters: json!({"type": "object", "properties": {
            "max_digits": {"type": "integer", "minimum": 1, "maximum": d.max_digits,
                "description": "Fewer digits than the default, when the number's length is known"}
        }}),
    }
}

/// A call's keypad: key presses go to a running `collect_digits` when there is one; else
/// they wait here until the call actor gives them to the model (after a pause), or a
/// collection that starts meanwhile takes them (a caller may type as soon as asked, before
/// the model's tool call arrives).
#[derive(Debug, Default)]
pub struct Keypad {
    state: Mutex<KeypadState>,
}

#[derive(Debug, Default)]
struct KeypadState {
    collecting: Option<mpsc::UnboundedSender<char>>,
    pending: String,
}

impl Keypad {
    fn state(&self) -> std::sync::MutexGuard<'_, KeypadState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A key press: `true` when a running collection took it, `false` when it waits for
    /// [`Keypad::take_pending`].
    pub fn press(&self, key: char) -> bool {
        let mut st = self.state();
        if let Some(tx) = &st.collecting {
            if tx.send(key).is_ok() {
                return true;
            }
            st.collecting = None;
        }
        st.pending.push(key);
        false
    }

    /// The keys pressed outside a collection since the last call.
    pub fn take_pending(&self) -> String {
        std::mem::take(&mut self.state().pending)
    }

    /// Collects up to `max` digits, ending at `terminator`, at `max`, or after `timeout`
    /// without a key (twice as long for the first key). Keys already pending count first.
    /// Answers the digits and what ended the entry. A second collection while one runs is
    /// refused.
    pub(crate) async fn collect(
        &self,
        max: u8,
        terminator: Option<char>,
        timeout: Duration,
    ) -> Result<(String, &'static str), ToolError> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let early = {
            let mut st = self.state();
            if st.collecting.is_some() {
                return Err(ToolError::new(
                    "already_collecting",
                    "The keypad is already being read.",
                ));
            }
            st.collecting = Some(tx);
            std::mem::take(&mut st.pending)
        };
        let mut digits = String::new();
        let mut early = early.chars();
        let ended_by = loop {
            let next = match early.next() {
                Some(k) => Ok(Some(k)),
                None => {
                    let wait = if digits.is_empty() {
                        timeout * 2
                    } else {
                        timeout
                    };
                    tokio::time::timeout(wait, rx.recv()).await
                }
            };
            match next {
                Ok(Some(d)) if Some(d) == terminator => break "terminator",
                Ok(Some(d)) => {
                    digits.push(d);
                    if digits.len() >= usize::from(max) {
                        break "max_digits";
                    }
                }
                Ok(None) => break "call_ended",
                Err(_) => break "timeout",
            }
        };
        let mut st = self.state();
        st.collecting = None;
        // Keys typed before the entry started but after it ended stay for the model.
        let rest: String = early.collect();
        st.pending.insert_str(0, &rest);
        Ok((digits, ended_by))
    }
}

/// Runs `collect_digits` on the call's keypad.
pub(crate) async fn collect_digits(
    ctx: &ToolContext,
    args: &Value,
) -> Result<(Value, Option<Effect>), ToolError> {
    let Some(keypad) = &ctx.keypad else {
        return Err(ToolError::new(
            "unavailable",
            "The keypad cannot be read on this channel.",
        ));
    };
    let d = ctx.agent.digits;
    let max = args["max_digits"]
        .as_u64()
        .map_or(d.max_digits, |m| m.clamp(1, u64::from(d.max_digits)) as u8);
    let (digits, ended_by) = keypad
        .collect(
            max,
            d.terminator,
            Duration::from_secs(u64::from(d.timeout_seconds)),
        )
        .await?;
    if digits.is_empty() {
        return Err(ToolError::new(
            "no_digits",
            "The caller did not press any keys; ask them to try again or to say it instead.",
        ));
    }
    Ok((
        json!({"ok": true, "digits": digits, "ended_by": ended_by}),
        None,
    ))
}
