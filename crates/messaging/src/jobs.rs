//! The durable reply job. Its steps are recorded so a rerun (after a crash, a restart or a
//! failed attempt) resumes instead of repeating: the reply parts are stored with the job's
//! progress in one transaction, then each part is sent once.

use crate::delivery::SendError;
use crate::{bump, Messaging, MessagingError, REPLY_JOB};
use serde_json::{json, Value};
use std::sync::Arc;
use switchboard_domain::entities::{Conversation, Message};
use switchboard_domain::ids::{ConversationId, MessageId, OrgId};
use switchboard_domain::messaging::{split_body, MAX_BODY_CHARS};
use switchboard_domain::values::{Channel, MessageKind, MessageRole};
use switchboard_domain::Timestamp;
use switchboard_store::{Job, StoreError};
use tokio::sync::{Mutex, Notify};

/// Where an inline reply meets the webhook waiting for it.
#[derive(Default)]
pub(crate) struct Rendezvous {
    pub(crate) slot: Mutex<Slot>,
    pub(crate) ready: Notify,
}

/// What the webhook finds.
#[derive(Default)]
pub(crate) enum Slot {
    /// The webhook is still waiting.
    #[default]
    Waiting,
    /// The reply, stored as handed to the webhook's TwiML.
    Ready(Vec<Message>),
    /// Nothing to send now (failed, or opted out meanwhile).
    Nothing,
    /// The webhook answered without it: send through the REST API.
    Gone,
}

impl Rendezvous {
    async fn nothing(&self) {
        let mut slot = self.slot.lock().await;
        if matches!(*slot, Slot::Waiting) {
            *slot = Slot::Nothing;
        }
        self.ready.notify_one();
    }
}

enum ReplyError {
    /// Try again later.
    Retry(String),
    /// Give up.
    Stop(String),
}

impl From<StoreError> for ReplyError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => {
                ReplyError::Stop("the conversation or agent no longer exists".into())
            }
            other => ReplyError::Retry(format!("database: {other}")),
        }
    }
}

fn backoff_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

impl Messaging {
    /// Claims and runs the due reply jobs (those whose time came, and those whose worker's
    /// lease expired), no organization beyond its cap of replies in flight. Returns how many
    /// ran.
    pub async fn run_jobs_once(&self) -> Result<usize, StoreError> {
        let inner = &self.inner;
        let jobs = inner
            .store
            .claim_jobs_per_org(
                &inner.owner,
                REPLY_JOB,
                inner.clock.now(),
                backoff_ms(inner.config.lease),
                32,
                inner.config.max_replies_per_org,
            )
            .await?;
        let n = jobs.len();
        futures_util::future::join_all(jobs.into_iter().map(|j| self.run_guarded(j, None, None)))
            .await;
        Ok(n)
    }

    /// Closes idle sessions in every organization and publishes `conversation.closed`.
    pub async fn close_idle_once(&self) -> Result<usize, StoreError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let mut n = 0;
        for org in inner.store.all_org_ids().await? {
            for c in inner.store.close_idle_conversations(&org, now).await? {
                inner
                    .events
                    .conversation("conversation.closed", &org, &c, now);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Runs a claimed job; on shutdown it stops and hands the job back. `fresh` is the
    /// conversation as the transaction that queued the job left it (the inline path), which
    /// spares re-reading it and re-checking the opt-out that transaction just decided.
    pub(crate) async fn run_guarded(
        &self,
        job: Job,
        rv: Option<Arc<Rendezvous>>,
        fresh: Option<Conversation>,
    ) {
        let inner = &self.inner;
        let Ok(_permit) = inner.running.acquire().await else {
            return;
        };
        let mut stop = inner.stop.clone();
        let stopping = *stop.borrow();
        if !stopping {
            tokio::select! {
                _ = self.run_reply(&job, rv.as_deref(), fresh) => {}
                _ = stop.changed() => {
                    tracing::info!(job_id = %job.id, "shutting down: reply handed back to the queue");
                    if let Err(e) = inner.store.release_job(&job.id, &inner.owner).await {
                        tracing::warn!(error = %e, "cannot hand a job back; its lease will expire");
                    }
                }
            }
        } else if let Err(e) = inner.store.release_job(&job.id, &inner.owner).await {
            tracing::warn!(error = %e, "cannot hand a job back; its lease will expire");
        }
        if let Some(rv) = rv {
            rv.nothing().await;
        }
    }

    async fn run_reply(&self, job: &Job, rv: Option<&Rendezvous>, fresh: Option<Conversation>) {
        let inner = &self.inner;
        let res = self.reply_steps(job, rv, fresh).await;
        let now = inner.clock.now();
        let outcome = match res {
            Ok(()) => return,
            Err(ReplyError::Retry(why)) => {
                let attempt = usize::try_from(job.attempts.max(1) - 1).unwrap_or(usize::MAX);
                match inner.config.retry_backoff.get(attempt) {
                    Some(delay) => {
                        let at = Timestamp::from_millis(now.millis() + backoff_ms(*delay));
                        tracing::warn!(job_id = %job.id, org_id = %job.org_id, attempt = job.attempts, retry_in_ms = backoff_ms(*delay), error = %why, "reply failed; retrying later");
                        inner.store.retry_job(&job.id, &inner.owner, at, &why).await
                    }
                    None => {
                        tracing::error!(job_id = %job.id, org_id = %job.org_id, attempts = job.attempts, error = %why, "reply failed; giving up");
                        inner.store.fail_job(&job.id, &inner.owner, &why, now).await
                    }
                }
            }
            Err(ReplyError::Stop(why)) => {
                tracing::warn!(job_id = %job.id, org_id = %job.org_id, error = %why, "reply abandoned");
                inner.store.fail_job(&job.id, &inner.owner, &why, now).await
            }
        };
        if let Err(e) = outcome {
            tracing::error!(error = %e, job_id = %job.id, "cannot record the job's outcome; its lease will expire");
        }
    }

    async fn reply_steps(
        &self,
        job: &Job,
        rv: Option<&Rendezvous>,
        fresh: Option<Conversation>,
    ) -> Result<(), ReplyError> {
        let inner = &self.inner;
        let org = &job.org_id;
        let field = |name: &str| {
            job.payload
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let (Some(conv_id), Some(msg_id)) = (field("conversation_id"), field("message_id")) else {
            return Err(ReplyError::Stop("the job has no conversation".into()));
        };
        let conv_id = ConversationId::from_db(conv_id);
        let (conv, fresh) = match fresh {
            Some(c) if c.id == conv_id => (c, true),
            _ => (inner.store.get_conversation(org, &conv_id).await?, false),
        };
        let parts = match job.payload.get("reply_ids").and_then(Value::as_array) {
            Some(ids) => {
                let mut parts = Vec::new();
                for id in ids.iter().filter_map(Value::as_str) {
                    parts.push(
                        inner
                            .store
                            .get_message(org, &MessageId::from_db(id.to_owned()))
                            .await?,
                    );
                }
                parts
            }
            None => {
                let texting = matches!(conv.channel, Channel::Sms | Channel::Whatsapp);
                // A fresh conversation comes from the inbound transaction, which has just
                // decided the contact may be answered.
                if texting
                    && !fresh
                    && inner
                        .store
                        .contact_opted_out(org, &conv.contact_number)
                        .await?
                {
                    tracing::info!(org_id = %org, "contact opted out before the reply was sent; dropped");
                    inner
                        .store
                        .complete_job(&job.id, &inner.owner, inner.clock.now())
                        .await?;
                    return Ok(());
                }
                let Some(agent_id) = conv.agent_id.clone() else {
                    return Err(ReplyError::Stop("the conversation has no agent".into()));
                };
                let agent = inner.store.get_agent(org, &agent_id).await?;
                let generated = match self.generate(org, &conv, &agent).await {
                    Ok(g) => g,
                    Err(e) => {
                        let why = e.to_string();
                        if let Err(se) = inner
                            .store
                            .set_conversation_error(org, &conv.id, Some(&why))
                            .await
                        {
                            tracing::error!(error = %se, "cannot record the conversation's error");
                        }
                        return Err(match e {
                            MessagingError::NotFound(_) => ReplyError::Stop(why),
                            _ => ReplyError::Retry(why),
                        });
                    }
                };
                let now = inner.clock.now();
                let mut parts: Vec<Message> = split_body(&generated.text, MAX_BODY_CHARS)
                    .into_iter()
                    .map(|text| Message {
                        id: MessageId::generate(),
                        conversation_id: conv.id.clone(),
                        role: MessageRole::Assistant,
                        kind: MessageKind::Message,
                        content: json!({"text": text, "reply_to": msg_id}),
                        external_id: None,
                        delivery_status: Some("pending".into()),
                        delivery_error: None,
                        created_at: now,
                    })
                    .collect();
                if let Some(rv) = rv {
                    let mut slot = rv.slot.lock().await;
                    if matches!(*slot, Slot::Waiting) {
                        // The webhook is still waiting: the reply rides on its TwiML, and the
                        // job is done in the same transaction that stores the reply.
                        for p in &mut parts {
                            p.delivery_status = Some("sending".into());
                        }
                        inner
                            .store
                            .store_outbound(
                                org,
                                &conv.id,
                                &parts,
                                conv.error.is_some(),
                                Some((&job.id, &inner.owner, None)),
                            )
                            .await?;
                        for p in &parts {
                            inner.events.message("message.sent", org, p, now);
                        }
                        bump(&inner.stats.replies_twiml);
                        *slot = Slot::Ready(parts);
                        rv.ready.notify_one();
                        return Ok(());
                    }
                }
                let mut payload = job.payload.clone();
                payload["reply_ids"] =
                    json!(parts.iter().map(|p| p.id.as_str()).collect::<Vec<_>>());
                inner
                    .store
                    .store_outbound(
                        org,
                        &conv.id,
                        &parts,
                        conv.error.is_some(),
                        Some((&job.id, &inner.owner, Some(&payload))),
                    )
                    .await?;
                parts
            }
        };
        self.send_parts(org, &conv, parts).await?;
        inner
            .store
            .complete_job(&job.id, &inner.owner, inner.clock.now())
            .await?;
        Ok(())
    }

    /// Sends the parts not sent yet; a part interrupted mid-send is failed, not resent.
    async fn send_parts(
        &self,
        org: &OrgId,
        conv: &Conversation,
        parts: Vec<Message>,
    ) -> Result<(), ReplyError> {
        let inner = &self.inner;
        let mut sent_any = false;
        for part in parts {
            match part.delivery_status.as_deref() {
                Some("pending") => match inner.delivery.send_stored(org, conv, &part, None).await {
                    Ok(_) => sent_any = true,
                    Err(SendError::Retry(why)) => return Err(ReplyError::Retry(why)),
                    Err(SendError::Failed(_)) => {}
                },
                Some("sending") => {
                    let why = "interrupted while sending; not resent to avoid a duplicate";
                    inner.delivery.failed(org, &part, why).await;
                }
                _ => {}
            }
        }
        if sent_any {
            bump(&inner.stats.replies_rest);
        }
        Ok(())
    }
}
