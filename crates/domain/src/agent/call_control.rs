//! An agent's in-call control settings: the agents it may hand a call to, and how it collects
//! keypad digits.

use crate::ids::AgentId;
use crate::values::require_text;
use crate::ValidationError;
use serde::{Deserialize, Serialize};

/// The most agents one agent may hand a call to.
pub const MAX_HANDOFFS: usize = 10;

/// Another agent of the organization this one may hand a call to. The model sees a tool
/// `handoff_to_<that agent's name>` with `description` as its description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    /// The agent that takes over (same organization, not this agent).
    #[schema(value_type = String)]
    pub agent_id: AgentId,
    /// When to hand over, for the model: e.g. "Billing questions, refunds and invoices".
    pub description: String,
}

/// How `collect_digits` gathers keypad presses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DigitCollection {
    /// The most digits taken (1 to 32; default 16); the collection ends when reached.
    #[serde(default = "default_max_digits")]
    pub max_digits: u8,
    /// The key that ends the entry (`#`, `*`, or `null` for none; default `#`); not part of
    /// the digits.
    #[serde(default = "default_terminator")]
    pub terminator: Option<char>,
    /// Seconds without a key press that end the entry (1 to 60; default 5). The first key
    /// gets twice as long.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u8,
}

fn default_max_digits() -> u8 {
    16
}
fn default_terminator() -> Option<char> {
    Some('#')
}
fn default_timeout() -> u8 {
    5
}

impl Default for DigitCollection {
    fn default() -> Self {
        DigitCollection {
            max_digits: default_max_digits(),
            terminator: default_terminator(),
            timeout_seconds: default_timeout(),
        }
    }
}

impl DigitCollection {
    pub(crate) fn validate(&self) -> Result<(), ValidationError> {
        if !(1..=32).contains(&self.max_digits) {
            return Err(ValidationError::new(
                "max_digits",
                "must be between 1 and 32",
            ));
        }
        if !matches!(self.terminator, None | Some('#' | '*')) {
            return Err(ValidationError::new(
                "terminator",
                "must be `#`, `*` or null",
            ));
        }
        if !(1..=60).contains(&self.timeout_seconds) {
            return Err(ValidationError::new(
                "timeout_seconds",
                "must be between 1 and 60",
            ));
        }
        Ok(())
    }
}

/// Checks an agent's handoff list (the organization's agents are checked by the store).
pub(crate) fn validate_handoffs(me: &AgentId, list: &[Handoff]) -> Result<(), ValidationError> {
    if list.len() > MAX_HANDOFFS {
        return Err(ValidationError::new(
            "handoffs",
            format!("at most {MAX_HANDOFFS} agents"),
        ));
    }
    for (i, h) in list.iter().enumerate() {
        let at = format!("handoffs[{i}]");
        if &h.agent_id == me {
            return Err(ValidationError::new(
                format!("{at}.agent_id"),
                "an agent cannot hand a call to itself",
            ));
        }
        if list[..i].iter().any(|o| o.agent_id == h.agent_id) {
            return Err(ValidationError::new(
                format!("{at}.agent_id"),
                "listed twice",
            ));
        }
        require_text("description", &h.description, 1_000).map_err(|e| e.under(&at))?;
    }
    Ok(())
}

/// The model's tool name for handing a call to the agent `name`: `handoff_to_` and the name
/// in lowercase letters, digits and `_` (at most 64 characters in all). `taken` lists names
/// already used in the same call, so two agents with similar names get distinct tools.
pub fn handoff_tool_name(name: &str, taken: &[String]) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('_') && !slug.is_empty() {
            slug.push('_');
        }
    }
    let slug = slug.trim_end_matches('_');
    let base: String = format!(
        "handoff_to_{}",
        if slug.is_empty() { "agent" } else { slug }
    )
    .chars()
    .take(60)
    .collect();
    let base = base.trim_end_matches('_').to_owned();
    if !taken.contains(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}_{n}"))
        .find(|c| !taken.contains(c))
        .unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_and_rules() {
        assert_eq!(
            handoff_tool_name("Billing & Refunds", &[]),
            "handoff_to_billing_refunds"
        );
        assert_eq!(handoff_tool_name("  ", &[]), "handoff_to_agent");
        assert_eq!(
            handoff_tool_name("Billing", &["handoff_to_billing".into()]),
            "handoff_to_billing_2"
        );
        assert!(handoff_tool_name(&"x".repeat(200), &[]).len() <= 64);
        let me = AgentId::generate();
        let other = AgentId::generate();
        let h = |id: &AgentId| Handoff {
            agent_id: id.clone(),
            description: "Billing questions".into(),
        };
        assert!(validate_handoffs(&me, &[h(&other)]).is_ok());
        assert_eq!(
            validate_handoffs(&me, &[h(&me)]).expect_err("self").field,
            "handoffs[0].agent_id"
        );
        assert_eq!(
            validate_handoffs(&me, &[h(&other), h(&other)])
                .expect_err("twice")
                .field,
            "handoffs[1].agent_id"
        );
        let bad = DigitCollection {
            terminator: Some('5'),
            ..DigitCollection::default()
        };
        assert_eq!(bad.validate().expect_err("terminator").field, "terminator");
        assert!(DigitCollection::default().validate().is_ok());
    }
}
