//! `switchboard secrets`: the first start generates a master key into the data directory
//! (mode 0600) and says so; `secrets rotate` re-encrypts every stored credential under a new
//! key while the server keeps answering requests that need them, and the running server
//! picks the new key up by itself; production refuses to start without a key.

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchboard_testkit::eventually;
use switchboard_testkit::process::ServerProcess;
use switchboard_testkit::twilio::try_post_signed;

const PUBLIC: &str = "https://sms.example.test";
const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "auth-token-of-the-rotation-test";
const NUMBER: &str = "+15550007007";

fn cli(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
        cmd.env_remove(k);
    }
    cmd.env("SWITCHBOARD_DATA_DIR", data);
    cmd.envs(env.iter().copied());
    cmd.output().expect("run switchboard")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

async fn api(
    http: &reqwest::Client,
    server: &ServerProcess,
    key: &str,
    m: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let mut req = http
        .request(m, format!("{}/api/v1{path}", server.base))
        .bearer_auth(key);
    if !body.is_null() {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The key ids `secrets status` lists with their counts, and the current one.
fn status(data: &Path) -> (Vec<(String, u64)>, String) {
    let out = cli(data, &["secrets", "status"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut keys = Vec::new();
    let mut current = String::new();
    for line in printed.lines() {
        let Some(rest) = line.trim().strip_prefix("key ") else {
            continue;
        };
        let (id, n) = rest.split_once(':').expect("key line");
        let id = id.trim();
        if let Some(id) = id.strip_suffix(" (current)") {
            current = id.to_owned();
        }
        let id = id.trim_end_matches(" (current)").to_owned();
        keys.push((id, n.trim().parse().expect("count")));
    }
    (keys, current)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_re_encrypts_everything_while_the_server_keeps_answering() {
    let data = std::env::temp_dir().join(format!(
        "switchboard-secrets-{}",
        switchboard_domain::ids::random_token(10)
    ));
    let data_s = data.display().to_string();
    let server = ServerProcess::start(
        env!("CARGO_BIN_EXE_switchboard"),
        &[
            ("SWITCHBOARD_DATA_DIR", data_s.clone()),
            ("SWITCHBOARD_PUBLIC_URL", PUBLIC.to_owned()),
        ],
    )
    .await;
    // The first start generated the key file, private to its owner, and said so.
    let key_file = data.join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(server
        .stderr
        .lock()
        .expect("logs")
        .contains("generated a master key at"));
    let key = server.printed("API key (org)").await;
    let http = reqwest::Client::new();
    let (s, body) = api(
        &http,
        &server,
        &key,
        reqwest::Method::PUT,
        "/settings",
        json!({"twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = api(
        &http,
        &server,
        &key,
        reqwest::Method::POST,
        "/phone-numbers",
        json!({"number": NUMBER, "channel": "sms"}),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = api(
        &http,
        &server,
        &key,
        reqwest::Method::POST,
        "/webhook-endpoints",
        json!({"url": "https://hooks.example.test/in"}),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let (before, first_key) = status(&data);
    assert_eq!(
        before,
        vec![(first_key.clone(), 3)],
        "token, webhook secret, media key"
    );

    // Requests that need the stored credentials keep going during the rotation: signed
    // Twilio webhooks (the auth token checks the signature).
    let done = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (done, ok, failed, base) = (
            done.clone(),
            ok.clone(),
            failed.clone(),
            server.base.clone(),
        );
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut n, mut after) = (0u32, 0u32);
            // Until the rotation is over, and ten more with the new key.
            while after < 10 {
                if done.load(Ordering::Relaxed) {
                    after += 1;
                }
                n += 1;
                let sid = format!("SM{n:032}");
                let res = try_post_signed(
                    &http,
                    &base,
                    PUBLIC,
                    "/twilio/messaging",
                    TOKEN,
                    &[
                        ("MessageSid", &sid),
                        ("AccountSid", ACCOUNT),
                        ("From", "+15559990000"),
                        ("To", NUMBER),
                        ("Body", "hello"),
                        ("NumMedia", "0"),
                    ],
                )
                .await;
                match res {
                    Ok(r) if r.status().is_success() => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };
    eventually(
        "requests flow before the rotation",
        Duration::from_secs(30),
        || {
            let ok = ok.clone();
            async move { (ok.load(Ordering::Relaxed) >= 5).then_some(()) }
        },
    )
    .await;
    let data2 = data.clone();
    let out = tokio::task::spawn_blocking(move || cli(&data2, &["secrets", "rotate"], &[]))
        .await
        .expect("rotate");
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    assert!(printed.contains("re-encrypted 3 secrets"), "{printed}");
    done.store(true, Ordering::Relaxed);
    load.await.expect("load");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "no request failed during the rotation"
    );
    assert!(ok.load(Ordering::Relaxed) >= 15);

    // Everything is under the new key; the old one stays in the file, decrypting.
    let (after, current) = status(&data);
    assert_ne!(current, first_key);
    assert_eq!(after, vec![(current.clone(), 3)]);
    let file = std::fs::read_to_string(&key_file).expect("key file");
    assert_eq!(file.lines().filter(|l| !l.starts_with('#')).count(), 2);
    // The server now writes with the new key too (it re-read the file when it met the new
    // key id).
    let (s, body) = api(
        &http,
        &server,
        &key,
        reqwest::Method::POST,
        "/webhook-endpoints",
        json!({"url": "https://hooks.example.test/second"}),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let (after, _) = status(&data);
    assert_eq!(after, vec![(current, 4)]);
    drop(server);
    let _ = std::fs::remove_dir_all(data);
}

#[test]
fn production_needs_an_explicit_key_and_new_key_prints_one() {
    let data = std::env::temp_dir().join(format!(
        "switchboard-secrets-{}",
        switchboard_domain::ids::random_token(10)
    ));
    let prod = [
        ("SWITCHBOARD_ENV", "production"),
        ("SWITCHBOARD_PUBLIC_URL", "https://voice.example.test"),
    ];
    let out = cli(&data, &["migrate"], &prod);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("SWITCHBOARD_MASTER_KEY"),
        "{}",
        text(&out)
    );
    assert!(
        !data.join("master.key").exists(),
        "never generated in production"
    );
    // `new-key` works without any configuration.
    let out = cli(&data, &["secrets", "new-key"], &prod);
    assert!(out.status.success(), "{}", text(&out));
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(key.len(), 44, "{key}");
    let mut with_key = prod.to_vec();
    with_key.push(("SWITCHBOARD_MASTER_KEY", &key));
    let out = cli(&data, &["migrate"], &with_key);
    assert!(out.status.success(), "{}", text(&out));
    // A wrong key is named.
    with_key.pop();
    with_key.push(("SWITCHBOARD_MASTER_KEY", "c2hvcnQ="));
    let out = cli(&data, &["migrate"], &with_key);
    assert!(!out.status.success());
    assert!(text(&out).contains("not a master key"), "{}", text(&out));
    let _ = std::fs::remove_dir_all(data);
}
