//! The production PostgreSQL setup the README documents, end to end: the server refuses to
//! serve through a superuser login (it could `RESET ROLE` past row-level security); the
//! operator migrates with one; a plain login that is only a member of the application role
//! then runs the commands and serves, its pre-tenant look-ups (API keys) going through the
//! SECURITY DEFINER functions. Runs when `SWITCHBOARD_TEST_POSTGRES` is set.

use sqlx::{Connection, Executor};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use switchboard_domain::ids::random_token;
use switchboard_store::testing::{postgres_url, replace_database, TEST_MASTER_KEY};
use switchboard_testkit::process::ServerProcess;

const PUBLIC: &str = "https://voice.example.test";

/// `url` with its user replaced (no password: the test server trusts local logins).
fn with_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme");
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
}

fn production(data: &Path, url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SWITCHBOARD_ENV", "production".into()),
        ("SWITCHBOARD_PUBLIC_URL", PUBLIC.into()),
        ("SWITCHBOARD_MASTER_KEY", TEST_MASTER_KEY.into()),
        ("SWITCHBOARD_DATA_DIR", data.display().to_string()),
        ("SWITCHBOARD_DATABASE_URL", url.into()),
    ]
}

/// Runs a subcommand to its end (within a minute) and answers its status and output.
async fn run(args: &[&str], env: &[(&'static str, String)]) -> (bool, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    cmd.args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("SWITCHBOARD_")) {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("`switchboard {args:?}` did not finish"))
        .expect("run");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_serves_through_a_plain_login_and_refuses_a_superuser() {
    let Some(admin_url) = postgres_url() else {
        return;
    };
    sqlx::any::install_default_drivers();
    let name = format!("switchboard_test_{}", random_token(12)).to_lowercase();
    let login = format!("sb_web_{}", random_token(8)).to_lowercase();
    let mut admin = sqlx::AnyConnection::connect(&admin_url)
        .await
        .expect("admin");
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("database");
    let url = replace_database(&admin_url, &name);
    let data = std::env::temp_dir().join(format!("switchboard-pg-{}", random_token(10)));

    // The server refuses to run through the superuser login.
    let (ok, out) = run(&["serve", "--port", "0"], &production(&data, &url)).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("must not be a superuser or have BYPASSRLS"),
        "{out}"
    );
    // The operator migrates with it (creating the application and look-up roles).
    let (ok, out) = run(&["migrate"], &production(&data, &url)).await;
    assert!(ok, "{out}");
    // A login that is only a member of the application role.
    admin
        .execute(format!("CREATE ROLE {login} LOGIN IN ROLE switchboard_app").as_str())
        .await
        .expect("login");
    let web = with_user(&url, &login);
    let (ok, org) = run(&["org", "create", "Acme"], &production(&data, &web)).await;
    assert!(ok, "{org}");
    let org = org.trim().lines().last().expect("org id").to_owned();
    let (ok, key) = run(
        &["apikey", "create", "--org", &org],
        &production(&data, &web),
    )
    .await;
    assert!(ok, "{key}");
    let key = key.trim().lines().last().expect("key").to_owned();
    assert!(key.starts_with("sk_"), "{key}");

    // It serves; API keys are found through the look-up function.
    let server =
        ServerProcess::start(env!("CARGO_BIN_EXE_switchboard"), &production(&data, &web)).await;
    let http = reqwest::Client::new();
    let res = http
        .get(format!("{}/api/v1/agents", server.base))
        .bearer_auth(&key)
        .send()
        .await
        .expect("agents");
    assert_eq!(res.status(), 200);
    let res = http
        .get(format!("{}/api/v1/agents", server.base))
        .bearer_auth("sk_not_a_key_of_anyone_0123456789")
        .send()
        .await
        .expect("agents");
    assert_eq!(res.status(), 401);
    drop(server);

    admin
        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .expect("drop database");
    admin
        .execute(format!("DROP ROLE IF EXISTS {login}").as_str())
        .await
        .expect("drop role");
    let _ = admin.close().await;
    let _ = std::fs::remove_dir_all(data);
}
