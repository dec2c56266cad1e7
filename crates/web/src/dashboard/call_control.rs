//! The live call page's controls for staff: say a sentence through the agent, give it a
//! private instruction, mute or unmute it, hang up. Each goes to the call's own task like
//! `POST /api/v1/calls/{id}/actions` and lands on the call's timeline.

use super::layout;
use super::{redirect_with_flash, Dash, DashError, Fields};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use maud::{html, Markup};
use switchboard_domain::call_action::NewCallAction;
use switchboard_domain::entities::Call;
use switchboard_domain::ids::CallId;

/// The card, for a live call and staff who may act.
pub(crate) fn card(dash: &Dash, call: &Call) -> Markup {
    let action = format!("/calls/{}/act", call.id);
    html! {
        section.card #call-control {
            h2 { "Live call control" }
            form.row method="post" action=(action) {
                (layout::csrf(dash))
                input type="hidden" name="action" value="say";
                input #say-text name="text" placeholder="A sentence the agent says next" aria-label="Sentence to say" required;
                button.small type="submit" #say { "Say" }
            }
            form.row method="post" action=(action) {
                (layout::csrf(dash))
                input type="hidden" name="action" value="instruct";
                input #instruct-text name="text" placeholder="A private instruction, e.g. offer a 10% discount" aria-label="Instruction" required;
                button.small type="submit" #instruct { "Instruct" }
            }
            div.row {
                @for (value, label, id) in [("mute_agent", "Mute agent", "mute"), ("unmute", "Unmute", "unmute")] {
                    form.inline method="post" action=(action) {
                        (layout::csrf(dash))
                        input type="hidden" name="action" value=(value);
                        button.small type="submit" id=(id) { (label) }
                    }
                }
                form.inline method="post" action=(action) data-confirm="Transfer the caller to the agent's transfer number now?" {
                    (layout::csrf(dash))
                    input type="hidden" name="action" value="transfer";
                    button.small type="submit" #transfer { "Transfer" }
                }
                form.inline method="post" action=(action) data-confirm="Put the caller on hold and call the agent's transfer number, who hears what the call is about and accepts or declines?" {
                    (layout::csrf(dash))
                    input type="hidden" name="action" value="transfer";
                    input type="hidden" name="mode" value="warm";
                    button.small type="submit" #warm-transfer { "Warm transfer" }
                }
                form.inline method="post" action=(action) data-confirm="Hang up this call now?" {
                    (layout::csrf(dash))
                    input type="hidden" name="action" value="hangup";
                    button.small.danger type="submit" #hangup { "Hang up" }
                }
            }
        }
    }
}

/// `POST /calls/{id}/act` (admins and operators).
pub async fn act(
    State(st): State<AppState>,
    dash: Dash,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, DashError> {
    let f = Fields::managing(&dash, &body)?;
    let id = CallId::parse(&id).ok_or(DashError::NotFound)?;
    st.store.get_call(&dash.org, &id).await?;
    let text = f.raw("text").trim().to_owned();
    let request = match f.raw("action") {
        "say" => NewCallAction::Say { text },
        "instruct" => NewCallAction::Instruct { text },
        "mute_agent" => NewCallAction::MuteAgent {},
        "unmute" => NewCallAction::Unmute {},
        "hangup" => NewCallAction::Hangup {},
        "transfer" => NewCallAction::Transfer {
            to: None,
            mode: (f.raw("mode") == "warm").then(|| "warm".to_owned()),
            summary: None,
        },
        _ => {
            return Ok(redirect_with_flash(
                &format!("/calls/{id}"),
                "Unknown action",
            ))
        }
    };
    let actor = format!("user:{}", dash.session.user.id);
    let page = format!("/calls/{id}");
    let flash = match crate::api::call_actions::act(&st, &dash.org, &id, &request, &actor).await {
        Ok(a) if a.status == "done" => "Done".to_owned(),
        Ok(a) if a.status == "pending" => "Sent; the call has not confirmed it yet".to_owned(),
        Ok(a) => format!(
            "Not done: {}",
            a.result
                .as_ref()
                .and_then(|r| r["error"]["message"].as_str())
                .unwrap_or("the call refused it")
        ),
        Err(e) => format!("Not done: {}", e.message),
    };
    Ok(redirect_with_flash(&page, &flash))
}
