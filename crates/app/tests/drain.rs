//! Draining a real server process: SIGTERM (or `switchboard drain`) with live calls. The calls
//! keep talking, `/readyz` turns 503, new calls are refused, and the calls left at the drain
//! timeout hear a goodbye and end as `completed` / `shutdown`; the process exits 0 without an
//! error logged. Both backends.

mod process_env;

use process_env::*;
use serde_json::Value;
use std::time::{Duration, Instant};
use switchboard_store::backend_test;

backend_test!(sigterm_drains_live_calls_then_says_goodbye, |db| {
    let (rig, mut server) =
        Rig::start(db, &[("SWITCHBOARD_DRAIN_TIMEOUT_SECONDS", "8".into())]).await;
    assert_eq!(rig.ready_status(&server).await, 200);
    let sids = [
        "CA00000000000000000000000000000d01",
        "CA00000000000000000000000000000d02",
        "CA00000000000000000000000000000d03",
    ];
    let mut calls = Vec::new();
    for sid in sids {
        calls.push(rig.live_call(&server, sid).await);
    }
    // An open event stream must not hold the shutdown.
    let stream = rig
        .http
        .get(format!("{}/api/v1/events/stream", server.base))
        .bearer_auth(&rig.key)
        .send()
        .await
        .expect("event stream");
    assert_eq!(stream.status(), 200);
    let signalled = Instant::now();
    server.signal("TERM");
    rig.wait_ready_status(&server, 503).await;
    let body: Value = rig
        .http
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("json");
    assert_eq!(body["error"]["code"], "draining");
    // A new call is refused politely (the only instance), and nothing is stored for it.
    let twiml = rig
        .incoming(&server, "CA00000000000000000000000000000d04")
        .await;
    assert!(
        twiml.contains("<Say>") && twiml.contains("<Hangup/>") && !twiml.contains("<Connect>"),
        "{twiml}"
    );
    // The live calls keep talking until the drain timeout, then hear the goodbye.
    for sid in sids {
        let twiml = &rig.wait_redirect(sid).await;
        assert!(
            twiml.contains("maintenance") && twiml.contains("<Hangup/>"),
            "a goodbye, not the failure apology: {twiml}"
        );
    }
    for media in &calls {
        let got = media.snapshot();
        let last = got.media.last().expect("audio").0;
        assert!(
            last.duration_since(signalled) >= Duration::from_secs(5),
            "audio was still relayed 5 s after the signal"
        );
    }
    let status = server.wait_exit(WAIT).await;
    assert!(status.success(), "exit status {status}");
    drop(stream);
    assert!(
        !server
            .log_lines("WARN")
            .iter()
            .any(|l| l.to_string().contains("did not finish in time")),
        "every request, the event stream too, ended within the grace period"
    );
    assert!(
        server.log_lines("ERROR").is_empty(),
        "errors logged: {:?}",
        server.log_lines("ERROR")
    );
    for sid in sids {
        let call = call_of(db, sid).await;
        assert_eq!(call.status.as_str(), "completed", "{sid}");
        assert_eq!(call.end_reason.as_deref(), Some("shutdown"), "{sid}");
    }
    assert!(db
        .store
        .find_call_by_sid("CA00000000000000000000000000000d04")
        .await
        .expect("lookup")
        .is_none());
    assert_eq!(rig.model.sessions().len(), 3);
});

backend_test!(drain_command_waits_for_calls_to_end_by_themselves, |db| {
    let (rig, mut server) = Rig::start(db, &[]).await;
    let sid = "CA00000000000000000000000000000d11";
    let media = rig.live_call(&server, sid).await;
    // `switchboard drain` asks the running server to drain through the operator API.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["drain", "--url", &server.base])
        .env("SWITCHBOARD_OPERATOR_KEY", OPERATOR)
        .output()
        .expect("drain");
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(printed.contains("is draining: 1 live call(s)"), "{printed}");
    rig.wait_ready_status(&server, 503).await;
    // Without an operator key the command says what is missing.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["drain", "--url", &server.base])
        .env_remove("SWITCHBOARD_OPERATOR_KEY")
        .output()
        .expect("drain");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SWITCHBOARD_OPERATOR_KEY"));
    // The call is still live and relayed; when the caller hangs up, the server exits.
    let before = media.snapshot().audio.len();
    media
        .wait_for("more audio while draining", WAIT, |r| {
            r.audio.len() > before + 8000
        })
        .await;
    media.stop();
    let status = server.wait_exit(WAIT).await;
    assert!(status.success(), "exit status {status}");
    let call = call_of(db, sid).await;
    assert_eq!(call.status.as_str(), "completed");
    assert_eq!(call.end_reason.as_deref(), Some("caller_hung_up"));
    assert!(rig.redirects(sid).is_empty(), "no goodbye was needed");
});
