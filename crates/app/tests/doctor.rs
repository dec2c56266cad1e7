//! `switchboard doctor` asking the outside world, against local fakes: a self-hosted text
//! model without a key is fine (not "missing"), a refused key is a failure, an unreachable
//! endpoint a warning; call e-mails with recipients but no SMTP server fail, a fake SMTP server
//! that greets us passes and a closed port fails.

use std::process::{Command, Output};
use switchboard_domain::settings::SettingsUpdate;
use switchboard_store::testing::{TestDb, TEST_MASTER_KEY};
use switchboard_testkit::chat::FakeChatModel;
use switchboard_testkit::smtp::FakeSmtp;

/// Runs `switchboard doctor` on `db` with `env`, off the runtime's threads (the fakes answer
/// on them); answers whether it passed and what it printed.
async fn doctor(db: &TestDb, env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.arg("doctor");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
        cmd.env_remove(k);
    }
    cmd.env("SWITCHBOARD_DATABASE_URL", &db.url)
        .env("SWITCHBOARD_MASTER_KEY", TEST_MASTER_KEY)
        .env("SWITCHBOARD_PUBLIC_URL", "https://voice.example.com")
        // The voice endpoint at a closed local port: a warning, never the internet.
        .env(
            "SWITCHBOARD_OPENAI_REALTIME_URL",
            "ws://127.0.0.1:9/v1/realtime",
        );
    cmd.envs(env.iter().copied());
    let out: Output = tokio::task::spawn_blocking(move || cmd.output().expect("run doctor"))
        .await
        .expect("joined");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_asks_the_model_and_the_mail_server() {
    let db = TestDb::sqlite().await.expect("db");
    let model = FakeChatModel::start().await;

    // A local server without keys (llama.cpp, Ollama): the text model is fine; calls need a
    // voice key, which is a warning here, not "no model".
    let (ok, text) = doctor(&db, &[("SWITCHBOARD_LLM_BASE_URL", &model.url)]).await;
    assert!(ok, "{text}");
    assert!(
        text.contains("ok    text model") && text.contains("no key: a self-hosted server"),
        "{text}"
    );
    assert!(
        text.contains("WARN  model key") && !text.contains("FAIL  model key"),
        "{text}"
    );

    // A server that wants a key: none given, then the wrong one.
    model.require_key("sk-right");
    let (ok, text) = doctor(&db, &[("SWITCHBOARD_LLM_BASE_URL", &model.url)]).await;
    assert!(!ok);
    assert!(
        text.contains("FAIL  text model") && text.contains("wants a key"),
        "{text}"
    );
    let (ok, text) = doctor(
        &db,
        &[
            ("SWITCHBOARD_LLM_BASE_URL", &model.url),
            ("SWITCHBOARD_LLM_API_KEY", "sk-wrong"),
        ],
    )
    .await;
    assert!(!ok);
    assert!(
        text.contains("FAIL  text model") && text.contains("refused the key"),
        "{text}"
    );
    let right = [
        ("SWITCHBOARD_LLM_BASE_URL", model.url.as_str()),
        ("SWITCHBOARD_LLM_API_KEY", "sk-right"),
        ("SWITCHBOARD_OPENAI_API_KEY", "sk-voice"),
    ];
    let (ok, text) = doctor(&db, &right).await;
    assert!(ok, "{text}");
    assert!(text.contains("ok    text model"), "{text}");
    assert!(
        text.contains("WARN  model key") && text.contains("could not be reached"),
        "the voice endpoint is down: {text}"
    );
    assert!(text.contains("ok    e-mail: off"), "{text}");

    // Call e-mails with recipients and no SMTP server.
    let org = db.store.create_org("Acme").await.expect("org");
    db.store
        .update_settings(
            &org.id,
            SettingsUpdate {
                notification_emails: Some(vec!["owner@acme.test".into()]),
                ..SettingsUpdate::default()
            },
        )
        .await
        .expect("settings");
    let (ok, text) = doctor(&db, &right).await;
    assert!(!ok);
    assert!(
        text.contains("FAIL  e-mail")
            && text.contains("1 organization(s) have call e-mail recipients"),
        "{text}"
    );

    // An SMTP server that greets us, then one that is not there.
    let smtp = FakeSmtp::start().await;
    let mut with_smtp = right.to_vec();
    with_smtp.push(("SWITCHBOARD_SMTP_URL", &smtp.url));
    with_smtp.push(("SWITCHBOARD_SMTP_FROM", "Switchboard <calls@acme.test>"));
    let (ok, text) = doctor(&db, &with_smtp).await;
    assert!(ok, "{text}");
    assert!(
        text.contains("ok    e-mail: SMTP server 127.0.0.1"),
        "{text}"
    );
    let mut dead = right.to_vec();
    dead.push(("SWITCHBOARD_SMTP_URL", "smtp://127.0.0.1:9?tls=none"));
    dead.push(("SWITCHBOARD_SMTP_FROM", "calls@acme.test"));
    let (ok, text) = doctor(&db, &dead).await;
    assert!(!ok);
    assert!(
        text.contains("FAIL  e-mail") && text.contains("does not take us"),
        "{text}"
    );
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_asks_retell_about_each_organizations_key() {
    let db = TestDb::sqlite().await.expect("db");
    let model = FakeChatModel::start().await;
    let retell = switchboard_testkit::retell::FakeRetellApi::start().await;
    let env = [
        ("SWITCHBOARD_LLM_BASE_URL", model.url.as_str()),
        ("SWITCHBOARD_RETELL_API_URL", retell.url.as_str()),
    ];
    // No organization uses Retell: nothing to say.
    let (ok, text) = doctor(&db, &env).await;
    assert!(ok && !text.contains("retell api key"), "{text}");
    let org = db.store.create_org("Acme").await.expect("org");
    db.store
        .update_settings(
            &org.id,
            SettingsUpdate {
                retell_api_key: Some(Some(switchboard_domain::Secret::new("key_acme"))),
                ..SettingsUpdate::default()
            },
        )
        .await
        .expect("settings");
    let (ok, text) = doctor(&db, &env).await;
    assert!(!ok, "{text}");
    assert!(
        text.contains("FAIL  retell api key") && text.contains("Retell refused its API key"),
        "{text}"
    );
    retell.add_key("key_acme");
    let (ok, text) = doctor(&db, &env).await;
    assert!(ok, "{text}");
    assert!(
        text.contains("ok    retell api key") && text.contains("1 organization(s)"),
        "{text}"
    );
    // Retell out of reach: a warning.
    let (ok, text) = doctor(
        &db,
        &[
            ("SWITCHBOARD_LLM_BASE_URL", model.url.as_str()),
            ("SWITCHBOARD_RETELL_API_URL", "http://127.0.0.1:9"),
        ],
    )
    .await;
    assert!(ok, "{text}");
    assert!(text.contains("WARN  retell api key"), "{text}");
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_speech_providers_of_cascaded_agents() {
    const VOICE: &str = "21m00Tcm4TlvDq8ikWAM";
    let db = TestDb::sqlite().await.expect("db");
    let model = FakeChatModel::start().await;
    let speech = switchboard_testkit::speech::FakeSpeech::start().await;
    speech.add_deepgram_key("dg-good");
    speech.add_elevenlabs_key("el-good", &[VOICE]);
    let urls = [
        ("SWITCHBOARD_LLM_BASE_URL", model.url.as_str()),
        ("SWITCHBOARD_DEEPGRAM_API_URL", speech.url.as_str()),
        ("SWITCHBOARD_ELEVENLABS_API_URL", speech.url.as_str()),
    ];
    let with = |keys: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        urls.iter().copied().chain(keys.iter().copied()).collect()
    };
    // No cascaded agent and no speech keys: nothing to say.
    let (ok, text) = doctor(&db, &with(&[])).await;
    assert!(ok && !text.contains("speech providers"), "{text}");
    let org = db.store.create_org("Acme").await.expect("org");
    let agent: switchboard_domain::agent::NewAgent = serde_json::from_value(serde_json::json!({
        "name": "Reception", "instructions": "Be kind.", "voice_pipeline": "cascaded",
        "stt": {"provider": "deepgram"},
        "tts": {"provider": "elevenlabs", "voice": "AAAAAAAAAAAAAAAAAAAA"},
    }))
    .expect("agent json");
    let agent = db.store.create_agent(&org.id, agent).await.expect("agent");
    // The agent needs keys the server does not have.
    let (ok, text) = doctor(&db, &with(&[])).await;
    assert!(!ok, "{text}");
    assert!(
        text.contains("FAIL  speech providers")
            && text.contains("SWITCHBOARD_DEEPGRAM_API_KEY is not set")
            && text.contains("SWITCHBOARD_ELEVENLABS_API_KEY is not set"),
        "{text}"
    );
    // A key Deepgram refuses, and a voice ElevenLabs does not have.
    let (ok, text) = doctor(
        &db,
        &with(&[
            ("SWITCHBOARD_DEEPGRAM_API_KEY", "dg-bad"),
            ("SWITCHBOARD_ELEVENLABS_API_KEY", "el-good"),
        ]),
    )
    .await;
    assert!(!ok, "{text}");
    assert!(
        text.contains("Deepgram refused SWITCHBOARD_DEEPGRAM_API_KEY"),
        "{text}"
    );
    assert!(
        text.contains("ElevenLabs has no voice `AAAAAAAAAAAAAAAAAAAA`"),
        "{text}"
    );
    // Fixed: all is well.
    let patch: switchboard_domain::agent::AgentPatch = serde_json::from_value(serde_json::json!({
        "tts": {"provider": "elevenlabs", "voice": VOICE},
    }))
    .expect("patch json");
    db.store
        .update_agent(&org.id, &agent.id, patch)
        .await
        .expect("patch");
    let good = with(&[
        ("SWITCHBOARD_DEEPGRAM_API_KEY", "dg-good"),
        ("SWITCHBOARD_ELEVENLABS_API_KEY", "el-good"),
    ]);
    let (ok, text) = doctor(&db, &good).await;
    assert!(ok, "{text}");
    assert!(
        text.contains("ok    speech providers") && text.contains("1 cascaded agent(s)"),
        "{text}"
    );
    db.drop_db().await;
}
