//! What `doctor` asks about the cascaded pipeline's providers: whether Deepgram and
//! ElevenLabs take the server's keys, whether every cascaded agent has the keys its
//! providers need, and whether each ElevenLabs voice id it names exists.

use super::{Level, Report};
use crate::config::Config;
use std::time::Duration;
use switchboard_cascade::{check_deepgram_key, check_elevenlabs_voice, KeyCheck, Providers};
use switchboard_domain::agent::{Agent, SttProvider, TtsProvider, VoicePipeline};
use switchboard_domain::entities::Cursor;
use switchboard_store::Store;

const CHECK: &str = "speech providers";

fn providers(config: &Config) -> Option<Providers> {
    Some(Providers {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(4))
            .build()
            .ok()?,
        chat: None,
        openai_url: config.openai_api_url.clone(),
        openai_key: config.openai_api_key.clone(),
        deepgram_url: config.deepgram_api_url.clone(),
        deepgram_key: config.deepgram_api_key.clone(),
        elevenlabs_url: config.elevenlabs_api_url.clone(),
        elevenlabs_key: config.elevenlabs_api_key.clone(),
        connect_timeout: Duration::from_secs(4),
        stats: Default::default(),
        local: std::sync::Arc::new(switchboard_cascade::offline::Local::new(
            config.offline.clone(),
        )),
    })
}

/// Every cascaded agent of every organization, with its organization's id.
async fn cascaded_agents(store: &Store) -> Vec<(String, Agent)> {
    let mut out = Vec::new();
    let Ok(orgs) = store.all_org_ids().await else {
        return out;
    };
    for org in orgs {
        let mut cursor = None;
        loop {
            let Ok(page) = store.list_agents(&org, Some(200), cursor.as_ref()).await else {
                break;
            };
            out.extend(
                page.data
                    .into_iter()
                    .filter(|a| a.voice_pipeline == VoicePipeline::Cascaded)
                    .map(|a| (org.to_string(), a)),
            );
            match page.next_cursor.as_deref().and_then(Cursor::decode) {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    out
}

/// The settings each of `agent`'s providers needs, and whether the server has it.
fn needs_of(agent: &Agent, p: &Providers) -> Vec<(&'static str, bool)> {
    let whisper = switchboard_cascade::offline::WHISPER_BUILT;
    let local = p.local.config();
    let mut needs = Vec::new();
    for choice in agent
        .stt
        .iter()
        .flat_map(|s| std::iter::once(s.primary()).chain(s.fallback.clone()))
    {
        needs.push(match choice.provider {
            SttProvider::Deepgram => ("SWITCHBOARD_DEEPGRAM_API_KEY", p.deepgram_key.is_some()),
            SttProvider::Openai => ("SWITCHBOARD_OPENAI_API_KEY", p.openai_key.is_some()),
            SttProvider::Whisper => (
                "SWITCHBOARD_WHISPER_MODEL (and a build with --features whisper)",
                whisper && local.whisper_model.is_some(),
            ),
        });
    }
    for choice in agent.tts.iter().flat_map(|t| t.choices()) {
        needs.push(match choice.provider {
            TtsProvider::Elevenlabs => {
                ("SWITCHBOARD_ELEVENLABS_API_KEY", p.elevenlabs_key.is_some())
            }
            TtsProvider::Openai => ("SWITCHBOARD_OPENAI_API_KEY", p.openai_key.is_some()),
            TtsProvider::Piper => (
                "SWITCHBOARD_PIPER_VOICES_DIR and SWITCHBOARD_ONNXRUNTIME_LIB",
                local.piper_voices.is_some() && local.onnxruntime.is_some(),
            ),
        });
    }
    needs.dedup();
    needs
}

/// The offline models the server is configured with: each must load (and each voice speak).
async fn check_offline(p: &Providers, r: &mut Report) {
    let local = p.local.clone();
    let Ok(results) = tokio::task::spawn_blocking(move || local.check()).await else {
        return;
    };
    for (what, result) in results {
        match result {
            Ok(detail) => r.line(
                Level::Ok,
                "offline models",
                &format!("{what}: {detail}"),
                None,
            ),
            Err(e) => r.line(
                Level::Fail,
                "offline models",
                &format!("{what}: {e}"),
                Some("see the README's offline mode for where to get models and ONNX Runtime"),
            ),
        }
    }
}

/// The providers' keys, and what each cascaded agent needs of them.
pub(super) async fn check_speech(config: &Config, store: &Store, r: &mut Report) {
    let Some(p) = providers(config) else {
        return;
    };
    check_offline(&p, r).await;
    let agents = cascaded_agents(store).await;
    let mut fails = 0;
    if let Some(key) = &p.deepgram_key {
        match check_deepgram_key(&p, key.expose()).await {
            KeyCheck::Ok | KeyCheck::NoSuchVoice => {}
            KeyCheck::KeyRefused => {
                fails += 1;
                r.line(
                    Level::Fail,
                    CHECK,
                    "Deepgram refused SWITCHBOARD_DEEPGRAM_API_KEY",
                    Some("copy the key again from the Deepgram console"),
                );
            }
            KeyCheck::Unreachable(e) => r.line(
                Level::Warn,
                CHECK,
                &e,
                Some("check that this machine reaches SWITCHBOARD_DEEPGRAM_API_URL"),
            ),
        }
    }
    for (org, agent) in &agents {
        let who = format!("agent {} ({}) of organization {org}", agent.id, agent.name);
        let needs = needs_of(agent, &p);
        for choice in agent.tts.iter().flat_map(|t| t.choices()) {
            match choice.provider {
                TtsProvider::Openai => {}
                TtsProvider::Piper => {
                    if p.local.has_voice(&choice.voice) == Some(false) {
                        fails += 1;
                        r.line(
                            Level::Fail,
                            CHECK,
                            &format!(
                                "{who}: no Piper voice `{}` in SWITCHBOARD_PIPER_VOICES_DIR",
                                choice.voice
                            ),
                            Some("put <name>.onnx and <name>.onnx.json in the voices folder"),
                        );
                    }
                }
                TtsProvider::Elevenlabs => {
                    let Some(key) = &p.elevenlabs_key else {
                        continue;
                    };
                    match check_elevenlabs_voice(&p, key.expose(), &choice.voice).await {
                        KeyCheck::Ok => {}
                        KeyCheck::NoSuchVoice => {
                            fails += 1;
                            r.line(Level::Fail, CHECK, &format!("{who}: ElevenLabs has no voice `{}`", choice.voice), Some("set the agent's tts.voice to an id from ElevenLabs' voice library"));
                        }
                        KeyCheck::KeyRefused => {
                            fails += 1;
                            r.line(
                                Level::Fail,
                                CHECK,
                                "ElevenLabs refused SWITCHBOARD_ELEVENLABS_API_KEY",
                                Some("copy the key again from the ElevenLabs dashboard"),
                            );
                        }
                        KeyCheck::Unreachable(e) => r.line(
                            Level::Warn,
                            CHECK,
                            &e,
                            Some("check that this machine reaches SWITCHBOARD_ELEVENLABS_API_URL"),
                        ),
                    }
                }
            }
        }
        for (var, set) in needs {
            if !set {
                fails += 1;
                r.line(
                    Level::Fail,
                    CHECK,
                    &format!("{who} runs the cascaded pipeline but {var} is not set"),
                    Some("set the key, or change the agent's providers"),
                );
            }
        }
    }
    if fails == 0 && (!agents.is_empty() || p.deepgram_key.is_some() || p.elevenlabs_key.is_some())
    {
        r.line(
            Level::Ok,
            CHECK,
            &format!("the configured providers take their keys; {} cascaded agent(s) have what they need", agents.len()),
            None,
        );
    }
}
