//! Deciding a proposed action: confirming carries it out once, cancelling discards it. Both
//! come from the page's buttons, the API, or the chat (the model's `confirm_action`, only in
//! a later message than the one that proposed it). A confirmation builds the preview again:
//! if what the action changes has changed since, the action becomes stale and the person is
//! shown the new preview to confirm instead.

use super::preview;
use super::tools::{audited, Ran};
use super::{Ctx, Principal};
use crate::error::ApiError;
use crate::AppState;
use serde_json::{json, Map, Value};
use switchboard_domain::assistant::{
    may_decide, spoken_yes, ActionStatus, AssistantAction, Refusal,
};
use switchboard_domain::Timestamp;
use switchboard_store::{NewAction, StoreError, StoredAction};

/// How a decision ended.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Decided: carried out (`done` or `failed`) or cancelled.
    Decided(AssistantAction),
    /// Refused; a stale action comes with the preview that replaces it.
    Refused {
        /// Why.
        refusal: Refusal,
        /// More about why, when there is more.
        detail: Option<String>,
        /// The new preview (stale actions).
        replacement: Option<AssistantAction>,
    },
}

fn refused(refusal: Refusal) -> Decision {
    Decision::Refused {
        refusal,
        detail: None,
        replacement: None,
    }
}

impl Decision {
    /// What the model is told.
    pub(crate) fn for_model(self) -> Ran {
        match self {
            Decision::Decided(a) => {
                let ok = a.status != ActionStatus::Failed;
                let mut output = json!({"ok": ok, "action": {"id": a.id, "status": a.status, "summary": a.summary, "result": a.result}});
                if !ok {
                    output["error"] = a
                        .result
                        .as_ref()
                        .map(|r| r["error"].clone())
                        .unwrap_or(Value::Null);
                }
                Ran {
                    status: if ok { "ok" } else { "error" },
                    output,
                    action: None,
                }
            }
            Decision::Refused {
                refusal,
                detail,
                replacement,
            } => {
                let message = match &detail {
                    Some(d) => format!("{} ({d})", refusal.message()),
                    None => refusal.message().to_owned(),
                };
                let mut output =
                    json!({"ok": false, "error": {"code": refusal.code(), "message": message}});
                if let Some(r) = &replacement {
                    output["pending_action"] = json!({"id": r.id, "summary": r.summary, "preview": r.preview, "expires_at": r.expires_at});
                }
                Ran {
                    status: "error",
                    output,
                    action: replacement,
                }
            }
        }
    }
}

async fn load(st: &AppState, who: &Principal, id: &str) -> Result<Option<StoredAction>, ApiError> {
    match st
        .store
        .get_assistant_action(&who.org, id, Timestamp::now())
        .await
    {
        Ok(a) => Ok(Some(a)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The action as decided now.
async fn decided(st: &AppState, who: &Principal, id: &str) -> Result<Decision, ApiError> {
    Ok(match load(st, who, id).await? {
        Some(a) => Decision::Decided(a.action),
        None => refused(Refusal::NotFound),
    })
}

/// Why a decision that lost a race (or found the action decided) is refused now.
async fn after_race(st: &AppState, who: &Principal, id: &str) -> Result<Decision, ApiError> {
    Ok(match load(st, who, id).await? {
        None => refused(Refusal::NotFound),
        Some(a) => match may_decide(a.action.status, &a.principal, &who.id) {
            Err(r) => refused(r),
            // Pending again cannot happen; say it was decided.
            Ok(()) => refused(Refusal::AlreadyDone),
        },
    })
}

/// Where a confirmation comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Via<'a> {
    /// A button or the API: the person saw the preview.
    Button,
    /// The model's `confirm_action` in a chat turn, which must come after the one that
    /// proposed the action.
    Chat {
        /// The session turn asking.
        turn: i64,
    },
    /// The model's `confirm_action` in a spoken conversation: a later turn too, and the
    /// person's latest words must be an explicit yes ([`spoken_yes`]).
    Voice {
        /// The session turn asking.
        turn: i64,
        /// The person's latest words, when transcribed.
        words: Option<&'a str>,
    },
}

/// Confirms action `id` as `who`.
pub(crate) async fn confirm(
    st: &AppState,
    who: &Principal,
    id: &str,
    via: Via<'_>,
) -> Result<Decision, ApiError> {
    if !who.can_manage {
        return Ok(refused(Refusal::ReadOnly));
    }
    let Some(stored) = load(st, who, id).await? else {
        return Ok(refused(Refusal::NotFound));
    };
    if let Err(r) = may_decide(stored.action.status, &stored.principal, &who.id) {
        return Ok(refused(r));
    }
    let chat_turn = match via {
        Via::Button => None,
        Via::Chat { turn } | Via::Voice { turn, .. } => Some(turn),
    };
    if chat_turn.is_some_and(|t| t <= stored.turn) {
        return Ok(refused(Refusal::NotShownYet));
    }
    if let Via::Voice { words, .. } = via {
        if !words.is_some_and(spoken_yes) {
            tracing::info!(org_id = %who.org, action = id, "spoken confirmation refused: no explicit yes");
            return Ok(refused(Refusal::NotSpoken));
        }
    }
    let turn = chat_turn.unwrap_or(stored.turn);
    let ctx = Ctx {
        st,
        who,
        session_id: stored.session_id.clone(),
        turn,
        today: String::new(),
        timezone: String::new(),
        spoken: None,
    };
    let tool = stored.action.tool.clone();
    let args: Map<String, Value> = stored.arguments.as_object().cloned().unwrap_or_default();
    let now = Timestamp::now();
    let fresh = preview::build(&ctx, &tool, &args).await;
    let stale = match &fresh {
        Err(_) => true,
        Ok(p) => p.fingerprint != stored.fingerprint,
    };
    if stale {
        if !st
            .store
            .decide_assistant_action(&who.org, id, &who.id, ActionStatus::Stale, &who.actor, now)
            .await?
        {
            return after_race(st, who, id).await;
        }
        return Ok(match fresh {
            // What it would change is gone or can no longer be changed this way.
            Err((_, why)) => Decision::Refused {
                refusal: Refusal::Stale,
                detail: Some(why),
                replacement: None,
            },
            Ok(p) => {
                let input = NewAction {
                    session_id: stored.session_id.clone(),
                    principal: who.id.clone(),
                    tool: tool.clone(),
                    arguments: stored.arguments.clone(),
                    summary: p.summary,
                    preview: p.detail,
                    fingerprint: p.fingerprint,
                    turn,
                };
                let replacement = st
                    .store
                    .create_assistant_action(&who.org, &who.actor, &input, now)
                    .await?;
                tracing::info!(org_id = %who.org, action = id, replacement = %replacement.id, "assistant action stale; previewed again");
                Decision::Refused {
                    refusal: Refusal::Stale,
                    detail: None,
                    replacement: Some(replacement),
                }
            }
        });
    }
    // The one conditional update: of two confirmations at once, one carries it out.
    if !st
        .store
        .decide_assistant_action(
            &who.org,
            id,
            &who.id,
            ActionStatus::Running,
            &who.actor,
            now,
        )
        .await?
    {
        return after_race(st, who, id).await;
    }
    let ran = audited(&ctx, &tool, &stored.arguments, async {
        match preview::execute(&ctx, &tool, &args).await {
            Ok(v) => Ran::ok(json!({"ok": true, "result": v})),
            Err((code, message)) => Ran::error(&code, message),
        }
    })
    .await;
    let ok = ran.status == "ok";
    st.store
        .finish_assistant_action(&who.org, id, ok, &ran.output, &who.actor, Timestamp::now())
        .await?;
    tracing::info!(org_id = %who.org, action = id, tool = %tool, ok, "assistant action carried out");
    decided(st, who, id).await
}

/// Cancels action `id` as `who`.
pub(crate) async fn cancel(st: &AppState, who: &Principal, id: &str) -> Result<Decision, ApiError> {
    let Some(stored) = load(st, who, id).await? else {
        return Ok(refused(Refusal::NotFound));
    };
    if let Err(r) = may_decide(stored.action.status, &stored.principal, &who.id) {
        return Ok(refused(r));
    }
    if !st
        .store
        .decide_assistant_action(
            &who.org,
            id,
            &who.id,
            ActionStatus::Canceled,
            &who.actor,
            Timestamp::now(),
        )
        .await?
    {
        return after_race(st, who, id).await;
    }
    decided(st, who, id).await
}
