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

/// The providers' keys, and what each cascaded agent needs of them.
pub(super) async fn check_speech(config: &Config, store: &Store, r: &mut Report) {
    let Some(p) = providers(config) else {
        return;
    };
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
        let mut needs: Vec<(&str, bool)> = Vec::new();
        if let Some(stt) = &agent.stt {
            for choice in std::iter::once(stt.primary()).chain(stt.fallback.clone()) {
                needs.push(match choice.provider {
                    SttProvider::Deepgram => {
                        ("SWITCHBOARD_DEEPGRAM_API_KEY", p.deepgram_key.is_some())
                    }
                    SttProvider::Openai => ("SWITCHBOARD_OPENAI_API_KEY", p.openai_key.is_some()),
                });
            }
        }
        for choice in agent.tts.iter().flat_map(|t| t.choices()) {
            match choice.provider {
                TtsProvider::Openai => {
                    needs.push(("SWITCHBOARD_OPENAI_API_KEY", p.openai_key.is_some()))
                }
                TtsProvider::Elevenlabs => {
                    needs.push(("SWITCHBOARD_ELEVENLABS_API_KEY", p.elevenlabs_key.is_some()));
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
