//! One custom-LLM socket from Retell (`/retell/llm/{call_id}`), from the handshake to the
//! close. Retell dials it when a call starts and again with the same call id when it
//! reconnects. Frames are handled as they come: pings are answered at once even while an
//! answer is being written (Retell reconnects after a few seconds without a pong), and each
//! answer runs in its own task ([`super::turn`]) that a newer request makes stale.
//!
//! A call the webhooks have not introduced is proven before anything is answered: Retell is
//! asked for its call details (`config.call_details`), the agent id they name leads to an
//! organization, and Retell's API, asked with that organization's key, must know the call
//! under the same agent. Anything else is closed with 1008.

use super::turn::{Turn, TurnEnd, TURN_APOLOGY};
use super::{RetellFront, RouteError};
use crate::WsFrame;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use switchboard_domain::agent::{substitute, Agent};
use switchboard_domain::call::retell_call_sid;
use switchboard_domain::entities::Call;
use switchboard_domain::ids::OrgId;
use switchboard_domain::values::{Channel, PhoneNumber};
use switchboard_retell::socket::{self, After};
use switchboard_retell::{Interaction, RetellApiError, RetellCall, Utterance};
use switchboard_tools::ToolContext;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// A frame for Retell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetellOut {
    /// A JSON text frame.
    Text(String),
    /// Close with this code and reason.
    Close(u16, String),
}

/// Retell's socket, whatever the server library.
pub trait RetellIo:
    Stream<Item = Result<WsFrame, String>> + Sink<RetellOut, Error = String> + Send
{
}
impl<T> RetellIo for T where
    T: Stream<Item = Result<WsFrame, String>> + Sink<RetellOut, Error = String> + Send
{
}

/// The socket a Retell session reads and writes.
pub type RetellSocket = Pin<Box<dyn RetellIo>>;

/// The call is not one this server may answer (unknown, unproven, another's).
const CLOSE_POLICY: u16 = 1008;
/// Something failed on our side.
const CLOSE_ERROR: u16 = 1011;
/// The server is restarting: Retell reconnects (to another instance).
const CLOSE_AWAY: u16 = 1001;
/// The call is over.
const CLOSE_DONE: u16 = 1000;

/// A request that came before the call was proven, answered once it is.
type Early = (i64, bool, Vec<Utterance>);

struct Opened {
    org: OrgId,
    call: Call,
    agent: Agent,
    /// Retell reconnected to a call already under way: no greeting again.
    reconnect: bool,
    early: Option<Early>,
}

/// Serves one Retell socket until it closes.
pub async fn serve_socket(front: RetellFront, call_id: String, socket: RetellSocket) {
    let span = tracing::info_span!("retell", retell_call_id = %call_id);
    tracing::Instrument::instrument(run(front, call_id, socket), span).await;
}

async fn run(front: RetellFront, call_id: String, mut socket: RetellSocket) {
    let stats = front.svc.stats.clone();
    stats.active.fetch_add(1, Ordering::Relaxed);
    let opened = open(&front, &call_id, &mut socket).await;
    match opened {
        Ok(o) => {
            super::bump(&front.stats.sockets);
            converse(&front, o, &mut socket).await
        }
        Err(Some((code, why))) => {
            if code != CLOSE_DONE {
                super::bump(&front.stats.refused_sockets);
            }
            tracing::warn!(code, reason = %why, "Retell socket closed");
            close(&front, &mut socket, code, &why).await;
        }
        Err(None) => tracing::info!("Retell closed the socket before the call was known"),
    }
    stats.active.fetch_sub(1, Ordering::Relaxed);
}

async fn send(front: &RetellFront, socket: &mut RetellSocket, frame: RetellOut) -> bool {
    matches!(
        timeout(front.svc.config.send_timeout, socket.send(frame)).await,
        Ok(Ok(()))
    )
}

async fn close(front: &RetellFront, socket: &mut RetellSocket, code: u16, why: &str) {
    send(front, socket, RetellOut::Close(code, why.to_owned())).await;
}

/// The handshake: `config`, then the call (known, or proven from its details).
async fn open(
    front: &RetellFront,
    call_id: &str,
    socket: &mut RetellSocket,
) -> Result<Opened, Option<(u16, String)>> {
    let refuse = |code: u16, why: &str| Some((code, why.to_owned()));
    if !switchboard_retell::valid_id(call_id) {
        return Err(refuse(CLOSE_POLICY, "invalid call id"));
    }
    if !send(front, socket, RetellOut::Text(socket::config(true, true))).await {
        return Err(None);
    }
    let store = &front.svc.store;
    let known = store
        .find_call_by_sid(&retell_call_sid(call_id))
        .await
        .map_err(|e| refuse(CLOSE_ERROR, &e.to_string()))?;
    if let Some((org, id)) = known {
        let call = store
            .get_call(&org, &id)
            .await
            .map_err(|e| refuse(CLOSE_ERROR, &e.to_string()))?;
        if call.ended_at.is_some() {
            return Err(refuse(CLOSE_DONE, "the call is over"));
        }
        let agent = agent_of(front, &org, &call).await?;
        tracing::info!(org_id = %org, call_id = %call.id, "Retell socket for a known call");
        // A call with words stored is under way: this is a reconnect.
        let reconnect = store
            .recent_messages(&org, &call.conversation_id, 1)
            .await
            .map(|m| !m.is_empty())
            .unwrap_or(true);
        return Ok(Opened {
            org,
            call,
            agent,
            reconnect,
            early: None,
        });
    }
    // Unknown: wait for Retell's call details, answering pings meanwhile.
    let mut early = None;
    let wait = timeout(front.svc.config.setup_timeout, async {
        loop {
            let frame = match socket.next().await {
                Some(Ok(WsFrame::Text(t))) => t,
                Some(Ok(WsFrame::Other)) => continue,
                _ => return None,
            };
            match Interaction::parse(&frame) {
                Ok(Interaction::CallDetails { call }) => return Some(call),
                Ok(Interaction::PingPong { timestamp }) => {
                    if !send(
                        front,
                        socket,
                        RetellOut::Text(socket::ping_pong(&timestamp)),
                    )
                    .await
                    {
                        return None;
                    }
                }
                Ok(Interaction::ResponseRequired {
                    response_id,
                    transcript,
                }) => early = Some((response_id, false, transcript)),
                Ok(Interaction::ReminderRequired {
                    response_id,
                    transcript,
                }) => early = Some((response_id, true, transcript)),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "unreadable frame from Retell"),
            }
        }
    })
    .await;
    let details = match wait {
        Ok(Some(d)) => d,
        Ok(None) => return Err(None),
        Err(_) => return Err(refuse(CLOSE_POLICY, "no call details came")),
    };
    let details = RetellCall::from_value(&details)
        .filter(|d| d.call_id == call_id)
        .ok_or_else(|| refuse(CLOSE_POLICY, "the call details do not name this call"))?;
    let routed = match front.route(&details).await {
        Ok(r) => r,
        Err(RouteError::Unknown) => {
            return Err(refuse(
                CLOSE_POLICY,
                "no agent is connected to this Retell agent",
            ))
        }
        Err(RouteError::Store(m)) => return Err(refuse(CLOSE_ERROR, &m)),
    };
    if !routed.org_active {
        return Err(refuse(CLOSE_POLICY, "the organization is disabled"));
    }
    let Some(key) = &routed.key else {
        tracing::warn!(org_id = %routed.org, "a Retell call came for an organization without a Retell API key: set it in Settings");
        return Err(refuse(
            CLOSE_POLICY,
            "the organization has no Retell API key",
        ));
    };
    match front.api.get_call(key.expose(), call_id).await {
        Ok(Some(c)) if c.agent_id == details.agent_id => {}
        Ok(_) => return Err(refuse(CLOSE_POLICY, "Retell does not know this call")),
        Err(RetellApiError::Unauthorized(s)) => {
            tracing::error!(org_id = %routed.org, status = s, "Retell refused the organization's API key");
            return Err(refuse(CLOSE_POLICY, "the call could not be verified"));
        }
        Err(e) => {
            tracing::error!(org_id = %routed.org, error = %e, "cannot verify a Retell call");
            return Err(refuse(CLOSE_ERROR, "the call could not be verified"));
        }
    }
    let call = front
        .ensure_call(&routed, &details)
        .await
        .map_err(|e| match e {
            switchboard_store::StoreError::Conflict(m) => refuse(CLOSE_POLICY, &m),
            other => refuse(CLOSE_ERROR, &other.to_string()),
        })?;
    let agent = agent_of(front, &routed.org, &call).await?;
    Ok(Opened {
        org: routed.org,
        call,
        agent,
        reconnect: false,
        early,
    })
}

async fn agent_of(
    front: &RetellFront,
    org: &OrgId,
    call: &Call,
) -> Result<Agent, Option<(u16, String)>> {
    let id = call
        .agents
        .last()
        .ok_or_else(|| Some((CLOSE_ERROR, "the call has no agent".to_owned())))?;
    front
        .agent(org, id)
        .await
        .map_err(|e| Some((CLOSE_ERROR, format!("the call's agent: {e}"))))
}

/// The conversation: requests answered by turns, pings echoed, utterances recorded.
async fn converse(front: &RetellFront, o: Opened, socket: &mut RetellSocket) {
    let Opened {
        org,
        call,
        mut agent,
        reconnect,
        early,
    } = o;
    let store = &front.svc.store;
    let conversation = match store.get_conversation(&org, &call.conversation_id).await {
        Ok(c) => c,
        Err(e) => {
            close(front, socket, CLOSE_ERROR, &e.to_string()).await;
            return;
        }
    };
    let variables = conversation.variables.clone();
    let toolset = front
        .svc
        .tools
        .toolset(store, &org, &agent, Channel::Voice)
        .await;
    let mut ctx = ToolContext {
        store: store.clone(),
        org: org.clone(),
        agent: agent.clone(),
        conversation_id: call.conversation_id.clone(),
        call_id: Some(call.id.clone()),
        contact_number: PhoneNumber::parse(&conversation.contact_number).ok(),
        channel: Channel::Voice,
        toolset: Arc::new(toolset),
        passed_agents: call.agents.clone(),
        // Retell presses keys itself (`digit_to_press`); there is no keypad to read.
        keypad: None,
    };
    tracing::info!(org_id = %org, call_id = %call.id, reconnect, "Retell conversation open");
    if !reconnect {
        // The begin message: the greeting, or nothing (the caller speaks first).
        let (text, after) = match (&front.llm, &agent.greeting) {
            (None, _) => {
                tracing::error!(
                    "a Retell call came but no chat model is configured (SWITCHBOARD_LLM_*)"
                );
                (TURN_APOLOGY.to_owned(), After::EndCall)
            }
            (Some(_), Some(g)) => (substitute(g, &variables), After::Nothing),
            (Some(_), None) => (String::new(), After::Nothing),
        };
        if !send(
            front,
            socket,
            RetellOut::Text(socket::response(0, &text, true, &after)),
        )
        .await
        {
            return;
        }
    }
    let (latest_tx, _) = watch::channel(-1_i64);
    let (out_tx, mut out_rx) = mpsc::channel::<String>(64);
    let mut running: Option<JoinHandle<TurnEnd>> = None;
    let mut latencies: Vec<i64> = Vec::new();
    let mut stop = front.svc.stop.clone();
    let mut pending = early;
    loop {
        if let Some((response_id, reminder, transcript)) = pending.take() {
            latest_tx.send_replace(response_id);
            if let Err(e) = front.record_utterances(&org, &call, &transcript).await {
                tracing::error!(error = %e, "cannot record the call's transcript");
            }
            let turn = Turn {
                front: front.clone(),
                org: org.clone(),
                call: call.clone(),
                agent: agent.clone(),
                variables: variables.clone(),
                ctx: ctx.clone(),
                response_id,
                reminder,
                latest: latest_tx.subscribe(),
                out: out_tx.clone(),
            };
            running = Some(tokio::spawn(turn.run()));
        }
        tokio::select! {
            frame = socket.next() => {
                let text = match frame {
                    Some(Ok(WsFrame::Text(t))) => t,
                    Some(Ok(WsFrame::Other)) => continue,
                    Some(Ok(WsFrame::Close)) | None => break,
                    Some(Err(e)) => {
                        tracing::info!(error = %e, "Retell socket failed");
                        break;
                    }
                };
                match Interaction::parse(&text) {
                    Ok(Interaction::PingPong { timestamp }) => {
                        if !send(front, socket, RetellOut::Text(socket::ping_pong(&timestamp))).await {
                            break;
                        }
                    }
                    Ok(Interaction::ResponseRequired { response_id, transcript }) => {
                        pending = Some((response_id, false, transcript));
                    }
                    Ok(Interaction::ReminderRequired { response_id, transcript }) => {
                        pending = Some((response_id, true, transcript));
                    }
                    Ok(Interaction::UpdateOnly { transcript }) => {
                        // The last utterance may still be growing; the ones before are final.
                        let done = transcript.len().saturating_sub(1);
                        if let Err(e) = front.record_utterances(&org, &call, &transcript[..done]).await {
                            tracing::error!(error = %e, "cannot record the call's transcript");
                        }
                    }
                    Ok(Interaction::CallDetails { .. } | Interaction::Other) => {}
                    Err(e) => tracing::warn!(error = %e, "unreadable frame from Retell"),
                }
            }
            Some(frame) = out_rx.recv() => {
                if !send(front, socket, RetellOut::Text(frame)).await {
                    tracing::warn!("Retell stopped reading; closing");
                    break;
                }
            }
            done = async { running.as_mut().ok_or(())?.await.map_err(|_| ()) }, if running.is_some() => {
                running = None;
                if let Ok(end) = done {
                    latencies.extend(end.latency_ms);
                    if let Some(next) = end.handoff {
                        ctx = ToolContext {
                            agent: next.clone(),
                            toolset: Arc::new(front.svc.tools.toolset(store, &org, &next, Channel::Voice).await),
                            passed_agents: { let mut p = ctx.passed_agents.clone(); p.push(next.id.clone()); p },
                            ..ctx
                        };
                        agent = next;
                    }
                }
            }
            _ = async { drop(stop.wait_for(|s| *s).await) } => {
                // The drain timed out: Retell reconnects on the same call id, to an instance
                // that is not stopping.
                close(front, socket, CLOSE_AWAY, "server restarting").await;
                break;
            }
        }
    }
    // Stale from here on: a turn still running stops at its next step.
    latest_tx.send_replace(i64::MIN);
    if !latencies.is_empty() {
        let mut all = store
            .get_call(&org, &call.id)
            .await
            .map(|c| c.turn_latencies_ms)
            .unwrap_or_default();
        all.extend(latencies);
        if let Err(e) = store.set_call_latencies(&org, &call.id, &all).await {
            tracing::error!(error = %e, "cannot store the call's latencies");
        }
    }
    tracing::info!("Retell socket closed");
}
