//! An MCP server that misbehaves the ways real ones do, one way per path: `/garbage/mcp`
//! answers the handshake with text that is not JSON, `/hang/mcp` never answers, `/huge/mcp`
//! completes the handshake and then lists tools in a body of several megabytes, and
//! `/slow/mcp` lists one tool (`slow`) whose call never finishes.

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

/// The running server.
pub struct BadMcp {
    /// `http://127.0.0.1:port` (add `/garbage/mcp`, `/hang/mcp`, `/huge/mcp`, `/slow/mcp`).
    pub base: String,
}

impl BadMcp {
    /// Starts on a free loopback port.
    pub async fn start() -> BadMcp {
        let port = crate::recorder::serve(Router::new().route("/{mode}/mcp", post(answer))).await;
        BadMcp {
            base: format!("http://127.0.0.1:{port}"),
        }
    }
}

fn rpc(id: &Value, result: Value) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (
                header::HeaderName::from_static("mcp-session-id"),
                "bad-session",
            ),
        ],
        json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
    )
        .into_response()
}

async fn answer(Path(mode): Path<String>, body: Bytes) -> Response {
    let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = msg["id"].clone();
    let method = msg["method"].as_str().unwrap_or_default();
    if mode == "hang" {
        // A peer that accepted the connection and never answers.
        std::future::pending::<()>().await;
    }
    if mode == "garbage" {
        return (
            [(header::CONTENT_TYPE, "application/json")],
            "<html>502 Bad Gateway</html>",
        )
            .into_response();
    }
    if id.is_null() {
        return StatusCode::ACCEPTED.into_response();
    }
    match method {
        "initialize" => rpc(
            &id,
            json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                "serverInfo": {"name": "bad", "version": "1.0.0"}}),
        ),
        "tools/list" if mode == "huge" => {
            let tools: Vec<Value> = (0..20_000)
                .map(|i| {
                    json!({"name": format!("tool_{i}"), "description": "x".repeat(200),
                    "inputSchema": {"type": "object"}})
                })
                .collect();
            rpc(&id, json!({"tools": tools}))
        }
        "tools/list" => rpc(
            &id,
            json!({"tools": [{"name": "slow", "description": "Never finishes", "inputSchema": {"type": "object"}}]}),
        ),
        "tools/call" => {
            std::future::pending::<()>().await;
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        _ => rpc(&id, json!({})),
    }
}
