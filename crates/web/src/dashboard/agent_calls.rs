//! The agent page's "Call control" card: the agents this one may hand a call to (each with
//! when to do it), how a transfer presents itself (whose number the person called sees, a
//! line before it dials), and how `collect_digits` reads the keypad. Saved on its own, so the main
//! form's fields and these never overwrite each other.

use super::layout::{self, field};
use super::{redirect_with_flash, Dash, DashError, FieldErrors, Fields};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use switchboard_domain::agent::{Agent, AgentPatch, DigitCollection, Handoff};
use switchboard_domain::ids::AgentId;
use switchboard_domain::transfer::{CallerIdPolicy, TransferMode};
use switchboard_store::StoreError;

/// The card: the agent's settings, or what a refused save submitted (`draft`) with its
/// `errors`, so nothing typed is lost.
pub(crate) async fn card(
    st: &AppState,
    dash: &Dash,
    a: &Agent,
    draft: Option<&Submitted>,
    errors: &FieldErrors,
) -> Result<Markup, DashError> {
    let own = Submitted {
        handoffs: a.handoffs.clone(),
        digits: a.digits,
        caller_id: a.transfer_caller_id,
        message: a.transfer_message.clone().unwrap_or_default(),
        mode: a.transfer_mode,
    };
    let draft = draft.unwrap_or(&own);
    let (handoffs, d) = (&draft.handoffs, draft.digits);
    let others: Vec<Agent> = st
        .store
        .list_agents(&dash.org, Some(100), None)
        .await?
        .data
        .into_iter()
        .filter(|o| o.id != a.id)
        .collect();
    let terminator = d.terminator.map(String::from).unwrap_or_default();
    Ok(html! {
        section.card #call-control {
            h2 { "Call control" }
            form method="post" action={ "/agents/" (a.id) "/call-control" } novalidate #call-control-form {
                (layout::csrf(dash))
                fieldset disabled[!dash.can_manage()] {
                    (field("Hand calls to", "handoffs", errors, Some("Tick the agents this one may pass a call to and say when; the model gets a handoff_to_<name> tool each. The conversation goes with the call; the voice stays the same for the rest of the call."), html! {
                        @if others.is_empty() { p.muted { "No other agents yet." } }
                        @for o in &others {
                            @let current = handoffs.iter().find(|h| h.agent_id == o.id);
                            div.handoff {
                                label {
                                    input type="checkbox" name="handoff" value=(o.id) checked[current.is_some()];
                                    " " (o.name)
                                }
                                input name={ "when_" (o.id) } value=(current.map(|h| h.description.as_str()).unwrap_or_default())
                                    placeholder="When, e.g. billing questions and refunds" aria-label={ "When to hand calls to " (o.name) };
                            }
                        }
                    }))
                    (field("Transfers", "transfer", errors, Some("Cold puts the caller through at once; warm keeps the caller on hold while the person hears what the call is about and accepts (press 1 or say yes) or declines (the caller comes back to the agent). Also whose number the person sees, and what the caller hears before it dials (optional)."), html! {
                        div.row {
                            select #transfer_mode name="transfer_mode" aria-label="Kind of transfer" {
                                option value="cold" selected[draft.mode == TransferMode::Cold] { "Cold" }
                                option value="warm" selected[draft.mode == TransferMode::Warm] { "Warm" }
                            }
                            select #transfer_caller_id name="transfer_caller_id" aria-label="Caller id shown" {
                                option value="our_number" selected[draft.caller_id == CallerIdPolicy::OurNumber] { "Our number" }
                                option value="caller" selected[draft.caller_id == CallerIdPolicy::Caller] { "The caller's number" }
                            }
                            input #transfer_message name="transfer_message" value=(draft.message) placeholder="Please hold while I connect you." aria-label="Line before the transfer";
                        }
                    }))
                    (field("Keypad entry (collect_digits)", "digits", errors, Some("The most digits, the key that ends an entry (# or *, empty for none), and the seconds without a key that end it."), html! {
                        div.row {
                            input #max_digits name="max_digits" type="number" min="1" max="32" value=(d.max_digits) aria-label="Most digits";
                            input #terminator name="terminator" value=(terminator) maxlength="1" aria-label="Terminator";
                            input #digit_timeout name="timeout_seconds" type="number" min="1" max="60" value=(d.timeout_seconds) aria-label="Timeout in seconds";
                        }
                    }))
                    @if dash.can_manage() { button.primary type="submit" #save-call-control { "Save call control" } }
                }
            }
        }
    })
}

/// What the card's form submitted.
pub(crate) struct Submitted {
    handoffs: Vec<Handoff>,
    digits: DigitCollection,
    caller_id: CallerIdPolicy,
    message: String,
    mode: TransferMode,
}

/// The form's settings; a malformed number is an error beside its field.
fn parse(f: &Fields, errors: &mut FieldErrors) -> Submitted {
    let mut handoffs = Vec::new();
    for raw in f.all("handoff") {
        let Some(id) = AgentId::parse(&raw) else {
            errors.add("handoffs", "unknown agent");
            continue;
        };
        let description = f.raw(&format!("when_{id}")).trim().to_owned();
        if description.is_empty() {
            errors.add(
                "handoffs",
                "each ticked agent needs a description of when to hand calls to it",
            );
        }
        handoffs.push(Handoff {
            agent_id: id,
            description,
        });
    }
    let mut number = |name: &str, field: &str| -> Option<u8> {
        match f.raw(name).trim().parse::<u8>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.add(field, "must be whole numbers");
                None
            }
        }
    };
    let max_digits = number("max_digits", "digits");
    let timeout_seconds = number("timeout_seconds", "digits");
    let terminator = f.raw("terminator").trim().chars().next();
    let defaults = DigitCollection::default();
    Submitted {
        handoffs,
        digits: DigitCollection {
            max_digits: max_digits.unwrap_or(defaults.max_digits),
            terminator,
            timeout_seconds: timeout_seconds.unwrap_or(defaults.timeout_seconds),
        },
        caller_id: if f.raw("transfer_caller_id") == "caller" {
            CallerIdPolicy::Caller
        } else {
            CallerIdPolicy::OurNumber
        },
        message: f.raw("transfer_message").trim().to_owned(),
        mode: if f.raw("transfer_mode") == "warm" {
            TransferMode::Warm
        } else {
            TransferMode::Cold
        },
    }
}

/// `POST /agents/{id}/call-control` (admins and operators).
pub async fn save(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let id = AgentId::parse(&id).ok_or(DashError::NotFound)?;
    let mut errors = FieldErrors::default();
    let submitted = parse(&f, &mut errors);
    if errors.is_empty() {
        let patch = AgentPatch {
            handoffs: Some(submitted.handoffs.clone()),
            digits: Some(submitted.digits),
            transfer_caller_id: Some(submitted.caller_id),
            transfer_mode: Some(submitted.mode),
            transfer_message: Some(Some(submitted.message.clone()).filter(|m| !m.is_empty())),
            ..AgentPatch::default()
        };
        match st.store.update_agent(&dash.org, &id, patch).await {
            Ok(_) => {
                return Ok(redirect_with_flash(
                    &format!("/agents/{id}"),
                    "Call control saved",
                ))
            }
            Err(StoreError::Invalid(v)) => {
                let at = if v.field.starts_with("digits") {
                    "digits"
                } else if v.field.starts_with("transfer") {
                    "transfer"
                } else {
                    "handoffs"
                };
                errors.add(at, v.message);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let a = st.store.get_agent(&dash.org, &id).await?;
    let body = html! {
        p { a href={ "/agents/" (a.id) } { "← Back to the agent" } }
        (card(&st, &dash, &a, Some(&submitted), &errors).await?)
    };
    let page = layout::render(&st, &dash, "agents", &a.name, None, body).await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}
