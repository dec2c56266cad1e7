//! Helpers of the tool suites (custom tools, MCP): an organization's API key, API calls that
//! answer the status and the JSON, and a server with a fake chat model whose tools may reach
//! loopback endpoints.

use super::*;
use switchboard_testkit::chat::FakeChatModel;

impl Env<'_> {
    /// A new API key of the organization.
    pub async fn key(&self, org: &Org) -> String {
        let (_, key) = self
            .db
            .store
            .create_api_key(&org.id, "tools")
            .await
            .expect("key");
        key.expose().to_owned()
    }

    /// `method path` with `key` and an optional JSON body: the status and the JSON answer
    /// (`null` when there is none).
    pub async fn call_api(
        &self,
        method: reqwest::Method,
        key: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// A server whose tools may call loopback endpoints, with `chat` as its chat model.
pub async fn env_with_chat<'a>(
    db: &'a TestDb,
    behavior: Behavior,
    chat: &FakeChatModel,
) -> Env<'a> {
    let url = chat.url.clone();
    env_with(db, behavior, |c| {
        c.tools_allow_private = true;
        c.llm.base_url = url;
        c.llm.api_key = Some(Secret::new("sk-test-chat-key"));
        c.llm.model = "fake-chat-1".into();
    })
    .await
}
