//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, installed by
//! `.ci/install-npm-tools`) against `/mcp`. The suite connects without credentials (it has
//! no option for them), so it talks to a small proxy that adds an organization API key and
//! forwards everything else untouched, `Host` and `Origin` included. The scenarios that do
//! not apply to this server (prompts, logging, completion, sampling, elicitation, the
//! reference server's own test tools and resources) are listed, with why, in
//! `crates/testkit/npm/conformance-baseline.yml`; the suite fails if one of them passes
//! unexpectedly, or if any other scenario fails.
//!
//! Without the npm tools the test says it skipped, except under `CI=true`, where it fails.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use switchboard_domain::agent::NewAgent;
use switchboard_store::testing::TestDb;
use switchboard_web::{Application, WebConfig};

fn npm_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testkit/npm")
}

#[derive(Clone)]
struct Upstream {
    base: String,
    key: String,
    http: reqwest::Client,
}

/// Forwards a request to the server with the API key added.
async fn forward(State(up): State<Upstream>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .expect("request body");
    let mut out = up
        .http
        .request(parts.method.clone(), format!("{}{path}", up.base))
        .bearer_auth(&up.key)
        .body(body.to_vec());
    for (k, v) in &parts.headers {
        if k != "authorization" && k != "content-length" {
            out = out.header(k, v);
        }
    }
    let res = out.send().await.expect("forward");
    let mut builder = Response::builder().status(res.status().as_u16());
    for (k, v) in res.headers() {
        if k != "content-length" && k != "transfer-encoding" {
            builder = builder.header(k, v);
        }
    }
    builder
        .body(Body::from_stream(res.bytes_stream()))
        .expect("response")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_conformance_suite_passes() {
    let dir = npm_dir();
    let node = dir.join("node_modules/.bin/node");
    let suite = dir.join("node_modules/@modelcontextprotocol/conformance/dist/index.js");
    if !node.exists() || !suite.exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the MCP conformance suite is not installed (run .ci/install-npm-tools)"
        );
        eprintln!("skipped: the MCP conformance suite is not installed (.ci/install-npm-tools)");
        return;
    }
    let db = TestDb::sqlite().await.expect("db");
    let store = &db.store;
    let org = store.create_org("Conformance").await.expect("org");
    let agent: NewAgent =
        serde_json::from_value(json!({"name": "Desk", "instructions": "Answer calls."}))
            .expect("agent");
    store.create_agent(&org.id, agent).await.expect("agent");
    let (_, key) = store
        .create_api_key(&org.id, "conformance")
        .await
        .expect("key");
    let app = Application::build(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        store.clone(),
        &WebConfig::default(),
    )
    .await
    .expect("bind");
    let base = format!("http://{}", app.local_addr().expect("addr"));
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(app.run_until_stopped(
        async move {
            let _ = rx.await;
        },
        Duration::from_secs(5),
    ));
    let proxy = axum::Router::new().fallback(forward).with_state(Upstream {
        base,
        key: key.expose().to_owned(),
        http: reqwest::Client::new(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("proxy");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, proxy).await;
    });
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("mcp-conformance");
    let output = tokio::process::Command::new(&node)
        .arg(&suite)
        .arg("server")
        .arg("--url")
        .arg(format!("http://localhost:{port}/mcp"))
        .arg("--expected-failures")
        .arg(dir.join("conformance-baseline.yml"))
        .arg("-o")
        .arg(&out_dir)
        .output()
        .await
        .expect("run the suite");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "the conformance suite failed (results in {}):\n{stdout}\n{stderr}",
        out_dir.display()
    );
    let _ = stop.send(());
    done.await.expect("join").expect("server");
}
