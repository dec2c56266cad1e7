//! Helpers of the outbound-call suites: the API key, placing and reading calls, and waiting on
//! the fake Twilio's dials.

use super::*;

/// The number the suites call.
pub const CALLEE: &str = "+15557770100";

/// An organization's API key.
pub struct Api {
    pub key: String,
}

impl Env<'_> {
    /// An API key for the organization, and the fake Twilio told how to reach this server.
    pub async fn outbound(&self, org: &Org) -> Api {
        self.rest
            .connect_server(PUBLIC, &self.base, &self.ws, &org.token);
        let (_, key) = self
            .db
            .store
            .create_api_key(&org.id, "test")
            .await
            .expect("key");
        Api {
            key: key.expose().to_owned(),
        }
    }

    pub async fn post_call(&self, api: &Api, body: Value, key: Option<&str>) -> (u16, Value, bool) {
        let mut req = self
            .http
            .post(format!("{}/api/v1/calls", self.base))
            .bearer_auth(&api.key)
            .json(&body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        let res = req.send().await.expect("post");
        let status = res.status().as_u16();
        let replayed = res.headers().get("idempotent-replayed").is_some();
        (status, res.json().await.expect("json"), replayed)
    }

    pub async fn get_call(&self, api: &Api, id: &str) -> Value {
        self.http
            .get(format!("{}/api/v1/calls/{id}", self.base))
            .bearer_auth(&api.key)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json")
    }

    /// Waits until the call has ended; returns it as the API shows it.
    pub async fn wait_call_ended(&self, api: &Api, id: &str) -> Value {
        eventually("the call to end", WAIT, || async {
            let call = self.get_call(api, id).await;
            (!call["ended_at"].is_null()).then_some(call)
        })
        .await
    }

    /// Waits until the call has this status.
    pub async fn wait_status(&self, api: &Api, id: &str, status: &str) {
        eventually("the call's status", WAIT, || async {
            (self.get_call(api, id).await["status"] == status).then_some(())
        })
        .await;
    }

    /// Waits until the fake Twilio received `n` Calls create requests.
    pub async fn wait_created(
        &self,
        n: usize,
    ) -> Vec<(String, switchboard_testkit::twilio::RestRequest)> {
        eventually("the dial", WAIT, || async {
            let created = self.rest.created_calls();
            (created.len() >= n).then_some(created)
        })
        .await
    }
}

pub fn values<'a>(r: &'a switchboard_testkit::twilio::RestRequest, name: &str) -> Vec<&'a str> {
    r.form
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}
