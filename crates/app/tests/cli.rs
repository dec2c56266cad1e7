//! The `switchboard` binary, run as a newcomer would: subcommands, doctor, bad settings, and
//! `serve` with its first-start output and graceful shutdown.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn workdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "switchboard-cli-{}",
        switchboard_domain::ids::random_token(10)
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

fn switchboard(dir: &PathBuf, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(args).current_dir(dir);
    // Only what the test sets: a developer's own SWITCHBOARD_* must not leak in.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run switchboard")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn org_and_apikey_create_print_ids_and_keys() {
    let dir = workdir();
    let out = switchboard(&dir, &["org", "create", "Acme Dental"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let org = stdout(&out).trim().to_owned();
    assert!(org.starts_with("org_") && !org.contains(' '), "{org}");
    assert!(
        dir.join("data/switchboard.db").exists(),
        "SQLite file under ./data/"
    );

    let out = switchboard(&dir, &["apikey", "create", "--org", &org], &[]);
    assert!(out.status.success());
    assert!(stdout(&out).trim().starts_with("sk_"));

    let out = switchboard(
        &dir,
        &["apikey", "create", "--org", "org_doesnotexist"],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no organization"));
    let out = switchboard(&dir, &["apikey", "create", "--org", "acme"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an organization id"));

    let out = switchboard(&dir, &["migrate"], &[]);
    assert!(stdout(&out).contains("up to date"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn doctor_names_missing_settings_and_fails() {
    let dir = workdir();
    let out = switchboard(&dir, &["doctor"], &[]);
    assert!(
        !out.status.success(),
        "doctor must exit non-zero when something is wrong"
    );
    let text = stdout(&out);
    assert!(
        text.contains("FAIL  public URL") && text.contains("SWITCHBOARD_PUBLIC_URL"),
        "{text}"
    );
    assert!(
        text.contains("FAIL  model key") && text.contains("SWITCHBOARD_OPENAI_API_KEY"),
        "{text}"
    );
    // Run where no database is, doctor says so instead of creating an empty one.
    assert!(
        text.contains("FAIL  database: no database at") && text.contains("SWITCHBOARD_DATA_DIR"),
        "{text}"
    );
    assert!(
        !dir.join("data/switchboard.db").exists(),
        "doctor created no database"
    );
    assert!(text.contains("fix:"));

    let out = switchboard(&dir, &["migrate"], &[("SWITCHBOARD_LOG_FORMAT", "text")]);
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(
        logs.contains("creating a new, empty one"),
        "a new database is announced: {logs}"
    );
    assert!(
        !logs.contains('\u{1b}'),
        "no colour codes in logs to a pipe: {logs:?}"
    );
    // The model endpoints at a closed local port: unreachable is a warning, not a failure.
    let good = [
        ("SWITCHBOARD_PUBLIC_URL", "https://voice.example.com"),
        ("SWITCHBOARD_OPENAI_API_KEY", "sk-test-key"),
        (
            "SWITCHBOARD_OPENAI_REALTIME_URL",
            "ws://127.0.0.1:9/v1/realtime",
        ),
        ("SWITCHBOARD_LLM_BASE_URL", "http://127.0.0.1:9/v1"),
        ("SWITCHBOARD_LLM_API_KEY", "sk-test-key"),
    ];
    let out = switchboard(&dir, &["doctor"], &good);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("no problems found"), "{text}");
    assert!(!text.contains("sk-test-key"), "secrets are not printed");

    let out = switchboard(
        &dir,
        &["doctor"],
        &[
            ("SWITCHBOARD_ENV", "production"),
            ("SWITCHBOARD_PUBLIC_URL", "http://voice.example.com"),
        ],
    );
    assert!(!out.status.success());
    assert!(stdout(&out).contains("SWITCHBOARD_PUBLIC_URL"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn invalid_settings_stop_the_server_with_the_setting_named() {
    let dir = workdir();
    let out = switchboard(&dir, &["serve"], &[("SWITCHBOARD_PORT", "http")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("SWITCHBOARD_PORT") && err.contains("port number"),
        "{err}"
    );
    std::fs::write(dir.join("switchboard.toml"), "log_format = \"yaml\"\n").expect("write");
    let out = switchboard(&dir, &["serve"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("log_format") && err.contains("switchboard.toml"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(unix)]
#[test]
fn serve_prints_first_start_credentials_and_stops_on_sigterm() {
    let dir = workdir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--port", "0", "--host", "127.0.0.1"])
        .current_dir(&dir)
        .env("SWITCHBOARD_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut printed = String::new();
    let started = Instant::now();
    while !printed.contains("Try it:") {
        let mut line = String::new();
        if out.read_line(&mut line).expect("read") == 0
            || started.elapsed() > Duration::from_secs(60)
        {
            break;
        }
        printed.push_str(&line);
    }
    for needle in [
        "Admin login",
        "admin@example.com",
        "API key (org)",
        "Operator key",
        "/api/v1/openapi.json",
    ] {
        assert!(printed.contains(needle), "missing {needle} in:\n{printed}");
    }
    let key = printed
        .lines()
        .find(|l| l.contains("API key (org)"))
        .and_then(|l| l.split_whitespace().last())
        .expect("key");
    assert!(key.starts_with("sk_"));
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut logs = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut logs)
        .expect("logs");
    assert!(exit.success(), "clean exit after SIGTERM ({exit}): {logs}");
    assert!(
        logs.lines().any(|l| l.starts_with('{')),
        "JSON logs: {logs}"
    );
    assert!(logs.contains("shut down cleanly"));
    assert!(!logs.contains(key), "secrets never reach the logs");

    // Second start: nothing is created or printed again.
    let again = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["doctor"])
        .current_dir(&dir)
        .output()
        .expect("doctor");
    assert!(stdout(&again).contains("migrations: up to date"));
    let _ = std::fs::remove_dir_all(dir);
}
