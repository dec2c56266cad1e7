//! Post-conversation analysis: the chat model reads the transcript and fills a JSON schema
//! (summary, intent, outcome, sentiment and the agent's own fields). Output that does not
//! match is asked for again with the reason, then stored as an error; an unreachable model
//! is retried with backoff by the job queue.

use crate::{transcript, Jobs};
use serde_json::{json, Value};
use switchboard_domain::analysis::{parse_output, response_schema};
use switchboard_domain::entities::Call;
use switchboard_domain::ids::{CallId, ConversationId, OrgId};
use switchboard_domain::values::Channel;
use switchboard_llm::{LlmError, Request};
use switchboard_store::{Job, StoreError};

/// Transcript items the analysis reads at most (the newest are kept).
const MAX_ITEMS: i64 = 400;

/// How a job run ended.
pub(crate) enum RunError {
    /// Try the job again later.
    Retry(String),
    /// Give up on the job.
    Stop(String),
}

impl From<StoreError> for RunError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => {
                RunError::Stop("the call or conversation no longer exists".into())
            }
            other => RunError::Retry(format!("database: {other}")),
        }
    }
}

impl Jobs {
    /// Runs one analysis job.
    pub(crate) async fn analyse(&self, job: &Job) -> Result<(), RunError> {
        let inner = &self.inner;
        let org = &job.org_id;
        let conv_id = crate::payload_id(job, "conversation_id", ConversationId::parse)
            .ok_or_else(|| RunError::Stop("job without a conversation".into()))?;
        let call_id = crate::payload_id(job, "call_id", CallId::parse);
        let conv = inner.store.get_conversation(org, &conv_id).await?;
        let call = match &call_id {
            Some(id) => Some(inner.store.get_call(org, id).await?),
            None => None,
        };
        let items = inner
            .store
            .recent_messages(org, &conv_id, MAX_ITEMS)
            .await?;
        let agent = match &conv.agent_id {
            Some(a) => match inner.store.get_agent(org, a).await {
                Ok(a) => Some(a),
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let fields = agent
            .as_ref()
            .map(|a| a.analysis_fields.clone())
            .unwrap_or_default();
        let label = contact_label(conv.channel);
        let lines = transcript::lines(&items, label);
        let now = inner.clock.now();
        let result = if lines.iter().all(|l| l.speaker != label) {
            // Nothing from the other side: there is nothing to judge, and asking a model to
            // summarise silence invites invention.
            let nulls: serde_json::Map<String, Value> = fields
                .iter()
                .map(|f| (f.name.clone(), Value::Null))
                .collect();
            json!({
                "status": "completed",
                "summary": "The conversation ended before the other party said anything.",
                "intent": "unknown",
                "outcome": {"success": false, "reason": "no conversation took place"},
                "sentiment": "neutral",
                "fields": nulls,
                "source": "no_transcript",
                "analyzed_at": now,
            })
        } else {
            let Some(chat) = &inner.chat else {
                return self
                    .store_analysis(org, call.as_ref(), &conv_id, failed("no chat model is configured (SWITCHBOARD_LLM_API_KEY or SWITCHBOARD_LLM_BASE_URL)", now))
                    .await;
            };
            let model = agent
                .as_ref()
                .and_then(|a| a.chat_model.clone())
                .or_else(|| inner.config.analysis_model.clone())
                .unwrap_or_default();
            let context = context_text(
                call.as_ref(),
                conv.channel,
                agent.as_ref().map(|a| a.name.as_str()),
            );
            let mut messages = vec![
                json!({"role": "system", "content": SYSTEM_PROMPT}),
                json!({"role": "user", "content": format!("{context}\n\nTranscript:\n{}", transcript::plain(&lines))}),
            ];
            let schema = response_schema(&fields);
            let mut outcome = None;
            let mut last_problem = String::new();
            for attempt in 1..=inner.config.analysis_attempts.max(1) {
                let req = Request {
                    model: model.clone(),
                    messages: messages.clone(),
                    temperature: inner.config.analysis_temperature,
                    response_format: Some(json!({"type": "json_schema", "json_schema": {
                        "name": "conversation_analysis", "strict": true, "schema": schema}})),
                    ..Request::default()
                };
                let completion = match chat.complete(&req).await {
                    Ok(c) => c,
                    Err(e) if transient(&e) => return Err(RunError::Retry(e.to_string())),
                    Err(e) => {
                        last_problem = e.to_string();
                        break;
                    }
                };
                let text = completion.content.clone().unwrap_or_default();
                match parse_output(&text, &fields) {
                    Ok(mut v) => {
                        v["status"] = json!("completed");
                        v["model"] = json!(completion.model);
                        v["analyzed_at"] = json!(now);
                        outcome = Some(v);
                        break;
                    }
                    Err(problem) => {
                        tracing::warn!(org_id = %org, conversation_id = %conv_id, attempt, problem = %problem,
                            "analysis output invalid; asking again");
                        messages.push(json!({"role": "assistant", "content": text}));
                        messages.push(json!({"role": "user", "content": format!(
                            "That answer is invalid: {problem}. Answer again with only the JSON object the schema describes.")}));
                        last_problem = format!("invalid model output: {problem}");
                    }
                }
            }
            outcome.unwrap_or_else(|| failed(&last_problem, now))
        };
        self.store_analysis(org, call.as_ref(), &conv_id, result)
            .await
    }

    async fn store_analysis(
        &self,
        org: &OrgId,
        call: Option<&Call>,
        conv: &ConversationId,
        result: Value,
    ) -> Result<(), RunError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let ok = result.get("status").and_then(Value::as_str) == Some("completed");
        match call {
            Some(c) => {
                inner
                    .store
                    .store_call_analysis(org, &c.id, &result, now)
                    .await?
            }
            None => {
                inner
                    .store
                    .store_conversation_analysis(org, conv, &result, now)
                    .await?
            }
        }
        if ok {
            inner
                .stats
                .analyses
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else {
            inner
                .stats
                .analyses_failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(org_id = %org, conversation_id = %conv, error = ?result.get("error"), "analysis stored as failed");
        }
        Ok(())
    }
}

const SYSTEM_PROMPT: &str = "You analyse a finished conversation between a business's AI agent \
and a person (a phone call or a text thread). Read the transcript and answer with one JSON \
object that follows the given schema exactly: a short factual summary, the person's intent, \
whether their need was met (outcome.success) and why, the overall sentiment of the person, \
and each requested field. Use null for a field the conversation does not reveal; never guess. \
Answer with the JSON object only.";

fn context_text(call: Option<&Call>, channel: Channel, agent: Option<&str>) -> String {
    let mut parts = vec![format!("Channel: {}", channel.as_str())];
    if let Some(a) = agent {
        parts.push(format!("Agent: {a}"));
    }
    if let Some(c) = call {
        parts.push(format!("Call status: {}", c.status.as_str()));
        if let Some(d) = c.duration_seconds {
            parts.push(format!("Duration: {d} s"));
        }
        if let Some(r) = &c.end_reason {
            parts.push(format!("Ended because: {r}"));
        }
    }
    parts.join("\n")
}

fn failed(error: &str, now: switchboard_domain::Timestamp) -> Value {
    json!({"status": "failed", "error": error, "analyzed_at": now})
}

fn transient(e: &LlmError) -> bool {
    match e {
        LlmError::Transport(_) => true,
        LlmError::Status { status, .. } => *status == 429 || *status >= 500,
        LlmError::Malformed(_) => false,
    }
}

/// Whether an analysis judged the conversation unsuccessful (`None`: no analysis to judge).
pub(crate) fn unsuccessful(analysis: Option<&Value>) -> Option<bool> {
    let a = analysis?;
    if a.get("status").and_then(Value::as_str) != Some("completed") {
        return None;
    }
    a.pointer("/outcome/success")
        .and_then(Value::as_bool)
        .map(|s| !s)
}

/// How the other party is named in transcripts.
pub(crate) fn contact_label(channel: Channel) -> &'static str {
    if channel == Channel::Voice {
        "Caller"
    } else {
        "Contact"
    }
}
