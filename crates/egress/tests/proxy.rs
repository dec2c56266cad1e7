//! An `HTTP_PROXY` in the environment cannot route a guarded request around the resolver's
//! check: the guarded clients never use a proxy, so a name resolving to a private address is
//! still refused and the proxy sees no connection. (Its own test binary: it sets the process
//! environment.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use switchboard_egress::{client, client_013, describe, describe_013, WEBHOOKS};

#[tokio::test]
async fn environment_proxies_do_not_bypass_the_guard() {
    // A "proxy" that would happily forward anything: it only counts who connects.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let proxy = format!("http://{}", listener.local_addr().expect("addr"));
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = connections.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        std::env::set_var(var, &proxy);
    }
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");

    let http = client(WEBHOOKS, false, Duration::from_secs(5)).expect("client");
    let e = http
        .post("http://localhost:9/hook")
        .send()
        .await
        .expect_err("a private target is refused");
    assert!(
        describe(&e).contains("refused: localhost resolves to"),
        "{}",
        describe(&e)
    );
    let http = client_013(WEBHOOKS, false, Duration::from_secs(5)).expect("client");
    let e = http
        .post("http://localhost:9/mcp")
        .send()
        .await
        .expect_err("a private target is refused");
    assert!(
        describe_013(&e).contains("refused: localhost resolves to"),
        "{}",
        describe_013(&e)
    );
    assert_eq!(connections.load(Ordering::SeqCst), 0, "the proxy was used");
}
