//! The agent briefs the person taking a warm transfer, in its own voice.
//!
//! When the person answers, their call is connected to a media stream of its own
//! (`role=whisper`, the transferred call's token). This task opens a model session with the
//! agent's model and voice whose only job is to tell the person what the call is about (the
//! transfer's summary), ask whether they will take it, and call `accept_call` or
//! `decline_call`; keys work too (1 accepts, 2 declines). Then the person's call is updated
//! through the REST API: they join the caller's conference, or hear goodbye while the caller
//! comes back to the agent. Nothing here touches the transferred call's own stream or task
//! (there is none while a transfer is in flight). If the model cannot be reached the socket
//! is closed and Twilio goes on to the TwiML after `<Connect>`: the summary read by
//! `<Say>` with the same keys (`web::twilio_warm`).

use crate::session::{MediaSocket, WsFrame};
use crate::VoiceServices;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use switchboard_domain::ids::{CallId, OrgId};
use switchboard_domain::transfer::TransferStatus;
use switchboard_realtime::events::{self as rt, ServerEvent};
use switchboard_realtime::{SessionConfig, ToolSpec};
use switchboard_twilio::media::{self, Inbound, Start};
use switchboard_twilio::rest::CallUpdate;
use switchboard_twilio::twiml;
use tokio_tungstenite::tungstenite::Message as ModelMessage;

/// How long the person has to decide once the briefing starts.
const DECIDE_WITHIN: Duration = Duration::from_secs(60);

/// Runs the briefing on `socket` (its `start` is read).
pub(crate) async fn run(svc: VoiceServices, mut socket: MediaSocket, start: Start) {
    let p = &start.custom_parameters;
    let (Some(org), Some(call), Some(tok)) = (
        p.get("org_id").and_then(|v| OrgId::parse(v)),
        p.get("call_id").and_then(|v| CallId::parse(v)),
        p.get("token"),
    ) else {
        tracing::warn!("whisper stream without call parameters; closing");
        let _ = socket.close().await;
        return;
    };
    if !crate::token::verify(&svc.token_secret, &org, &call, tok, svc.clock.now()) {
        tracing::warn!(call_id = %call, "whisper stream with a wrong or expired token; closing");
        let _ = socket.close().await;
        return;
    }
    let span =
        tracing::info_span!("whisper", org_id = %org, call_id = %call, leg_sid = %start.call_sid);
    let run = async {
        match brief(&svc, &org, &call, &mut socket, &start.stream_sid).await {
            Ok(Some(accepted)) => decide(&svc, &org, &call, &start.call_sid, accepted).await,
            Ok(None) => tracing::info!("the person left before deciding"),
            Err(why) => {
                // Twilio goes on to the TwiML after `<Connect>`: the `<Say>` briefing.
                tracing::warn!(error = %why, "the agent cannot brief the person; falling back to a spoken summary");
            }
        }
        let _ = tokio::time::timeout(svc.config.send_timeout, socket.close()).await;
    };
    tracing::Instrument::instrument(run, span).await;
}

/// The person's answer: `Some(true)` accepted, `Some(false)` declined (or no answer in
/// time), `None` they hung up; `Err` when the briefing could not run at all.
async fn brief(
    svc: &VoiceServices,
    org: &OrgId,
    call: &CallId,
    socket: &mut MediaSocket,
    stream_sid: &str,
) -> Result<Option<bool>, String> {
    let store_err = |e: switchboard_store::StoreError| e.to_string();
    let current = svc.store.get_call(org, call).await.map_err(store_err)?;
    let transfer = current
        .transfer
        .clone()
        .filter(|t| {
            t.mode == "warm" && t.status == TransferStatus::Answered && current.ended_at.is_none()
        })
        .ok_or("no warm transfer is waiting for this person")?;
    let agent_id = current
        .agents
        .last()
        .cloned()
        .or(transfer.agent_id.clone())
        .ok_or("the call has no agent")?;
    let agent = svc
        .store
        .get_agent(org, &agent_id)
        .await
        .map_err(store_err)?;
    let key = svc
        .config
        .api_key
        .as_ref()
        .ok_or("SWITCHBOARD_OPENAI_API_KEY is not set")?;
    let cfg = &svc.config;
    let mut model = tokio::time::timeout(
        cfg.setup_timeout,
        switchboard_realtime::connect(&cfg.realtime_url, &agent.model, key.expose(), cfg.shape),
    )
    .await
    .map_err(|_| "the model did not answer in time".to_owned())?
    .map_err(|e| e.to_string())?;
    let summary = transfer.summary.clone().unwrap_or_default();
    let config = SessionConfig {
        model: agent.model.clone(),
        instructions: format!(
            "You are {name}, an assistant of this business. You are on the phone with a member \
             of staff, not with a customer. A caller is on hold waiting to be transferred to \
             them. In a few sentences, tell them who is calling and what it is about: \
             {summary} Then ask whether they will take the call. When they agree, call \
             accept_call; when they refuse or cannot take it, call decline_call. Do not \
             discuss anything else.",
            name = agent.name
        ),
        voice: agent.voice.clone(),
        language: agent.language.clone(),
        turn_detection: agent.turn_detection.clone(),
        transcription_model: cfg.transcription_model.clone(),
        tools: ["accept_call", "decline_call"]
            .iter()
            .map(|name| ToolSpec {
                name: (*name).into(),
                description: if *name == "accept_call" {
                    "The person takes the call: the caller is put through to them.".into()
                } else {
                    "The person will not take the call: the caller goes back to the assistant."
                        .into()
                },
                parameters: serde_json::json!({"type": "object", "properties": {}}),
            })
            .collect(),
        temperature: agent.temperature,
    };
    let send = |text: String| ModelMessage::Text(text.into());
    model
        .send(send(rt::session_update(cfg.shape, &config)))
        .await
        .map_err(|e| e.to_string())?;
    let mut confirmed = false;
    let deadline = tokio::time::Instant::now() + cfg.setup_timeout + DECIDE_WITHIN;
    let answer = loop {
        tokio::select! {
            frame = socket.next() => {
                let text = match frame {
                    Some(Ok(WsFrame::Text(t))) => t,
                    Some(Ok(WsFrame::Other)) => continue,
                    _ => break None,
                };
                match media::parse(&text) {
                    Ok(Inbound::Media { payload, .. }) if confirmed => {
                        let sent = model.send(send(rt::append_audio(&payload))).await;
                        if sent.is_err() {
                            break Some(Err("the model connection dropped".to_owned()));
                        }
                    }
                    Ok(Inbound::Dtmf { digit }) if digit == "1" => break Some(Ok(true)),
                    Ok(Inbound::Dtmf { digit }) if digit == "2" => break Some(Ok(false)),
                    Ok(Inbound::Stop) => break None,
                    _ => {}
                }
            }
            msg = model.next() => {
                let text = match msg {
                    Some(Ok(ModelMessage::Text(t))) => t,
                    Some(Ok(ModelMessage::Close(_))) | Some(Err(_)) | None => {
                        break Some(Err("the model connection closed".to_owned()));
                    }
                    Some(Ok(_)) => continue,
                };
                match rt::parse(text.as_str()) {
                    Ok(ServerEvent::SessionUpdated { formats_ok, formats }) if !confirmed => {
                        if !formats_ok {
                            break Some(Err(format!("the model did not confirm mu-law audio ({formats})")));
                        }
                        confirmed = true;
                        // The agent speaks first: the briefing.
                        if model.send(send(rt::response_create(None))).await.is_err() {
                            break Some(Err("the model connection dropped".to_owned()));
                        }
                    }
                    Ok(ServerEvent::AudioDelta { delta, .. }) => {
                        let played = play(socket, stream_sid, &delta).await;
                        if played.is_err() {
                            break None;
                        }
                    }
                    Ok(ServerEvent::SpeechStarted { .. }) => {
                        // The person talks over the agent: what is queued at Twilio goes.
                        let _ = socket.send(media::clear(stream_sid)).await;
                    }
                    Ok(ServerEvent::ResponseDone { response }) => {
                        if let Some(decision) = decision_of(&response) {
                            break Some(Ok(decision));
                        }
                    }
                    Ok(ServerEvent::Error { code, message }) => {
                        tracing::warn!(code = %code, message = %message, "model error during a briefing");
                    }
                    _ => {}
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                tracing::info!("the person did not decide in time; the transfer is declined");
                break Some(Ok(false));
            }
        }
    };
    let _ = tokio::time::timeout(cfg.send_timeout, model.close(None)).await;
    match answer {
        None => Ok(None),
        Some(Ok(d)) => Ok(Some(d)),
        Some(Err(e)) if !confirmed => Err(e),
        // The briefing started and broke: the person heard part of it; treat as declined so
        // the caller is not left on hold.
        Some(Err(e)) => {
            tracing::warn!(error = %e, "the briefing broke off; the transfer is declined");
            Ok(Some(false))
        }
    }
}

/// Agent audio to the person, in 20 ms frames.
async fn play(socket: &mut MediaSocket, stream_sid: &str, delta: &str) -> Result<(), String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = b64.decode(delta.as_bytes()).map_err(|e| e.to_string())?;
    for chunk in bytes.chunks(media::FRAME_BYTES) {
        socket
            .feed(media::media(stream_sid, &b64.encode(chunk)))
            .await?;
    }
    socket.flush().await
}

/// `accept_call` or `decline_call` among a completed response's function calls.
fn decision_of(response: &serde_json::Value) -> Option<bool> {
    if response["status"] != "completed" {
        return None;
    }
    response["output"].as_array()?.iter().find_map(|item| {
        match (item["type"].as_str(), item["name"].as_str()) {
            (Some("function_call"), Some("accept_call")) => Some(true),
            (Some("function_call"), Some("decline_call")) => Some(false),
            _ => None,
        }
    })
}

/// Acts on the person's answer: they join the caller, or the caller comes back to the agent
/// and they hear goodbye.
async fn decide(svc: &VoiceServices, org: &OrgId, call: &CallId, leg_sid: &str, accepted: bool) {
    let twiml = if accepted {
        match crate::transfer::accept_warm(&svc.store, org, call, svc.clock.now()).await {
            Ok(true) => crate::transfer::join_twiml(call),
            Ok(false) => twiml::say_hangup("The caller is no longer waiting. Goodbye."),
            Err(e) => {
                tracing::error!(error = %e, "cannot settle an accepted transfer");
                twiml::say_hangup("The caller is no longer waiting. Goodbye.")
            }
        }
    } else {
        tracing::info!("warm transfer declined");
        if let Err(e) = crate::transfer::bring_back(svc, org, call, "declined").await {
            tracing::error!(error = %e, "the caller could not be brought back");
        }
        twiml::say_hangup(crate::transfer::DECLINED)
    };
    let creds = match svc.store.twilio_credentials(org).await {
        Ok(Some(c)) => c,
        _ => {
            tracing::error!("no Twilio credentials to move the person's call on");
            return;
        }
    };
    if let Err(e) = svc
        .twilio
        .at(creds.space.as_deref())
        .update_call(
            &creds.account_sid,
            creds.auth_token.expose(),
            leg_sid,
            &CallUpdate::Twiml(twiml),
        )
        .await
    {
        tracing::error!(error = %e, "cannot move the person's call on");
    }
}

#[cfg(test)]
mod tests {
    use super::decision_of;
    use serde_json::json;

    #[test]
    fn decisions() {
        let done = |name: &str| {
            json!({"status": "completed", "output": [
                {"type": "message", "content": []},
                {"type": "function_call", "name": name, "call_id": "c1", "arguments": "{}"}]})
        };
        assert_eq!(decision_of(&done("accept_call")), Some(true));
        assert_eq!(decision_of(&done("decline_call")), Some(false));
        assert_eq!(decision_of(&done("something_else")), None);
        let mut cancelled = done("accept_call");
        cancelled["status"] = json!("cancelled");
        assert_eq!(decision_of(&cancelled), None);
    }
}
