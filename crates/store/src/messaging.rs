//! Text conversations: per-contact sessions decided inside one transaction (and guarded by
//! the `conversations_open_session` unique index), inbound dedupe by provider id, compliance
//! opt-outs, the reply job queued with the message it answers, and delivery statuses.

use crate::conversations::{
    conversation_from_row, insert_conversation, insert_message, message_from_row, CONV_COLUMNS,
    MSG_COLUMNS,
};
use crate::jobs::{insert_job, Job, NewJob};
use crate::rows::{col, flag, to_json, ts_opt, Sql};
use crate::{Access, Expect, Scope, Store, StoreError};
use serde_json::Value;
use switchboard_domain::entities::{Conversation, Message, NewConversation};
use switchboard_domain::ids::{AgentId, ContactId, ConversationId, MessageId, OrgId};
use switchboard_domain::messaging::{delivery_advances, delivery_failed, Keyword};
use switchboard_domain::settings::OrgSettings;
use switchboard_domain::values::{
    Channel, ConversationStatus, Direction, MessageKind, MessageRole,
};
use switchboard_domain::Timestamp;

/// Attempts of the session transaction when a concurrent writer wins a unique race.
const SESSION_ATTEMPTS: usize = 4;

/// An inbound text (SMS, WhatsApp or web chat) to store.
#[derive(Debug, Clone)]
pub struct InboundText {
    /// `sms`, `whatsapp` or `web`.
    pub channel: Channel,
    /// The contact's E.164 number (on `web`, the chat session id).
    pub contact: String,
    /// Our number (on `web`, the agent's id: one session per agent and session id).
    pub our_number: String,
    /// The agent the number routes to.
    pub agent_id: Option<AgentId>,
    /// Unique per organization (e.g. `twilio:SM...`): a repeat stores nothing.
    pub dedupe_key: Option<String>,
    /// Provider id shown with the message (the MessageSid).
    pub external_id: Option<String>,
    /// `{"text": ..., "media": [...]}`.
    pub content: Value,
    /// A compliance keyword the body is.
    pub keyword: Option<Keyword>,
    /// Whether a contact record exists for `contact` (SMS/WhatsApp; not web sessions).
    pub track_contact: bool,
    /// Variables for a conversation this message starts.
    pub variables: Value,
    /// Received.
    pub at: Timestamp,
    /// The reply job to queue when the agent should answer (no keyword, not opted out, an
    /// agent assigned); its payload gets `conversation_id` and `message_id`.
    pub reply: Option<NewJob>,
    /// At most this many jobs of the reply's kind running at once in the organization: a
    /// reply asking for a lease when that many are running is queued without it instead, for
    /// the worker to claim when a slot frees ([`Received::reply_waits`]).
    pub reply_cap: Option<i64>,
}

/// What storing an inbound text did.
#[derive(Debug, Clone)]
pub enum InboundResult {
    /// The provider id was seen before: nothing stored.
    Duplicate {
        /// Where the first copy went.
        conversation_id: ConversationId,
        /// The first copy.
        message_id: MessageId,
    },
    /// Stored.
    Stored(Box<Received>),
}

/// A stored inbound text and its session.
#[derive(Debug, Clone)]
pub struct Received {
    /// The conversation it joined or started.
    pub conversation: Conversation,
    /// The stored message.
    pub message: Message,
    /// The conversation was started by this message.
    pub started: bool,
    /// An idle session this message closed to start a new one.
    pub closed: Option<Conversation>,
    /// The contact was opted out before this message.
    pub was_opted_out: bool,
    /// The contact is opted out after it (keywords applied).
    pub opted_out: bool,
    /// The keyword that took effect (an opt-in word from a contact who is not opted out is
    /// an ordinary message: "Yes" answers the agent's question).
    pub keyword: Option<Keyword>,
    /// The queued reply job.
    pub job: Option<Job>,
    /// The reply job was queued without the lease it asked for: the organization is at its
    /// cap of replies in flight.
    pub reply_waits: bool,
}

/// The identity of a text session.
struct SessionKey<'a> {
    channel: Channel,
    contact: &'a str,
    our_number: &'a str,
}

fn window_ms(settings: &OrgSettings, direction: Direction) -> i64 {
    1000 * match direction {
        Direction::Inbound => settings.session_window_seconds,
        Direction::Outbound => settings.business_session_window_seconds,
    }
}

fn unique_violation(e: &StoreError) -> bool {
    matches!(e, StoreError::Database(sqlx::Error::Database(db)) if db.is_unique_violation())
}

/// The open session for `key`, locked; closed first when idle longer than its window.
async fn open_session(
    tx: &mut crate::Tx,
    store: &Store,
    org: &OrgId,
    key: &SessionKey<'_>,
    settings: &OrgSettings,
    at: Timestamp,
) -> Result<(Option<Conversation>, Option<Conversation>), StoreError> {
    let mut sql = session_sql(store, org, key);
    let row = sql.query().fetch_optional(&mut **tx).await?;
    let conv = row.as_ref().map(conversation_from_row).transpose()?;
    decide_session(tx, org, conv, settings, at).await
}

/// The look-up of the open session for `key` (locked on PostgreSQL).
fn session_sql(store: &Store, org: &OrgId, key: &SessionKey<'_>) -> Sql {
    Sql::new(&format!(
        // `channel <> 'voice'` repeats the partial index's condition so the planner can use it.
        "SELECT {CONV_COLUMNS} FROM conversations WHERE org_id = $1 AND channel = $2 \
         AND contact_number = $3 AND our_number = $4 AND status = 'active' \
         AND channel <> 'voice'{}",
        store.for_update()
    ))
    .bind(org.to_string())
    .bind(key.channel.as_str().to_owned())
    .bind(key.contact.to_owned())
    .bind(key.our_number.to_owned())
}

/// Keeps the open session when it is inside its window; closes it otherwise.
async fn decide_session(
    tx: &mut crate::Tx,
    org: &OrgId,
    conv: Option<Conversation>,
    settings: &OrgSettings,
    at: Timestamp,
) -> Result<(Option<Conversation>, Option<Conversation>), StoreError> {
    let Some(conv) = conv else {
        return Ok((None, None));
    };
    let idle = at.millis() - conv.last_message_at.millis();
    if idle < window_ms(settings, conv.direction) {
        return Ok((Some(conv), None));
    }
    let closed = close_conversation(tx, org, conv, at, settings).await?;
    Ok((None, Some(closed)))
}

/// Closes an active conversation; it ended when its window ran out (or now, if earlier).
async fn close_conversation(
    tx: &mut crate::Tx,
    org: &OrgId,
    mut conv: Conversation,
    now: Timestamp,
    settings: &OrgSettings,
) -> Result<Conversation, StoreError> {
    let ended = (conv.last_message_at.millis() + window_ms(settings, conv.direction))
        .min(now.millis())
        .max(conv.last_message_at.millis());
    sqlx::query(
        "UPDATE conversations SET status = 'closed', ended_at = $1 \
         WHERE org_id = $2 AND id = $3 AND status = 'active'",
    )
    .bind(ended)
    .bind(org.as_str())
    .bind(conv.id.as_str())
    .execute(&mut **tx)
    .await?;
    conv.status = ConversationStatus::Closed;
    conv.ended_at = Some(Timestamp::from_millis(ended));
    crate::outbox::conversation_closed(tx, org, &conv, now).await?;
    Ok(conv)
}

impl Store {
    /// Stores an inbound text in its session, in one transaction: dedupe, session join or
    /// start (closing an idle one), contact opt-out keywords, the message, and the reply job.
    /// A concurrent writer that wins a unique race (the same MessageSid, or the first message
    /// of the same session) makes this attempt start over and see the winner's rows.
    pub async fn receive_text(
        &self,
        org: &OrgId,
        input: &InboundText,
    ) -> Result<InboundResult, StoreError> {
        let mut last = None;
        for _ in 0..SESSION_ATTEMPTS {
            match self.receive_text_once(org, input).await {
                Err(e) if unique_violation(&e) => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or(StoreError::Conflict("session contention".into())))
    }

    async fn receive_text_once(
        &self,
        org: &OrgId,
        input: &InboundText,
    ) -> Result<InboundResult, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        // What the session decision needs, in one round trip where the engine allows it: a
        // previous copy of this provider message, the organization's windows, the
        // contact's opt-out state, and the open session.
        let key = SessionKey {
            channel: input.channel,
            contact: &input.contact,
            our_number: &input.our_number,
        };
        let pre = Sql::new(
            "SELECT (SELECT id FROM messages WHERE org_id = $1 AND dedupe_key = $2) AS dup_id, \
             (SELECT conversation_id FROM messages WHERE org_id = $3 AND dedupe_key = $4) AS dup_conv, \
             (SELECT session_window_seconds FROM org_settings WHERE org_id = $5) AS w_in, \
             (SELECT business_session_window_seconds FROM org_settings WHERE org_id = $6) AS w_out, \
             (SELECT opted_out FROM contacts WHERE org_id = $7 AND number = $8) AS opted",
        )
        .bind(org.to_string())
        .bind(input.dedupe_key.clone())
        .bind(org.to_string())
        .bind(input.dedupe_key.clone())
        .bind(org.to_string())
        .bind(org.to_string())
        .bind(org.to_string())
        .bind(input.contact.clone());
        let (pre, session) = tx.run_two(pre, session_sql(self, org, &key)).await?;
        let Some(pre) = pre.first() else {
            return Err(StoreError::Corrupt("session read returned no row".into()));
        };
        let open = session.first().map(conversation_from_row).transpose()?;
        if let (Some(id), Some(conv)) = (
            col::<Option<String>>(pre, "dup_id")?,
            col::<Option<String>>(pre, "dup_conv")?,
        ) {
            tx.commit().await?;
            return Ok(InboundResult::Duplicate {
                conversation_id: ConversationId::from_db(conv),
                message_id: MessageId::from_db(id),
            });
        }
        let mut settings = OrgSettings::default();
        if let Some(w) = col::<Option<i64>>(pre, "w_in")? {
            settings.session_window_seconds = w;
        }
        if let Some(w) = col::<Option<i64>>(pre, "w_out")? {
            settings.business_session_window_seconds = w;
        }
        let (was_opted_out, opted_out) =
            match (input.track_contact, col::<Option<i64>>(pre, "opted")?) {
                (false, _) => (false, false),
                (true, known) => {
                    apply_contact(&mut tx, org, &input.contact, input.keyword, input.at, known)
                        .await?
                }
            };
        let keyword = match input.keyword {
            Some(Keyword::OptIn) if !was_opted_out => None,
            k => k,
        };
        let (open, closed) = decide_session(&mut tx, org, open, &settings, input.at).await?;
        let (conversation, started) = match open {
            Some(c) => (c, false),
            None => {
                let conv = insert_conversation(
                    &mut tx,
                    org,
                    NewConversation {
                        channel: input.channel,
                        direction: Direction::Inbound,
                        contact_number: input.contact.clone(),
                        our_number: Some(input.our_number.clone()),
                        agent_id: input.agent_id.clone(),
                        variables: input.variables.clone(),
                        started_at: input.at,
                    },
                )
                .await?;
                (conv, true)
            }
        };
        let mut content = input.content.clone();
        if let (Some(k), Some(obj)) = (keyword, content.as_object_mut()) {
            obj.insert("keyword".into(), Value::from(k.as_str()));
        }
        let message = Message {
            id: MessageId::generate(),
            conversation_id: conversation.id.clone(),
            role: MessageRole::User,
            kind: MessageKind::Message,
            content,
            external_id: input.external_id.clone(),
            delivery_status: None,
            delivery_error: None,
            created_at: input.at,
        };
        insert_message(&mut tx, org, &message, input.dedupe_key.as_deref()).await?;
        let answer = keyword.is_none() && !opted_out && conversation.agent_id.is_some();
        let mut reply_waits = false;
        let job = match (&input.reply, answer) {
            (Some(reply), true) => {
                let mut job = reply.clone();
                if let Some(obj) = job.payload.as_object_mut() {
                    obj.insert("conversation_id".into(), conversation.id.as_str().into());
                    obj.insert("message_id".into(), message.id.as_str().into());
                }
                if let (Some(cap), Some(_)) = (input.reply_cap, &job.lease) {
                    // Under the organization's lock, as the worker's claim counts, so the
                    // cap holds across instances.
                    self.lock_org(&mut tx, org).await?;
                    if Self::running_jobs(&mut tx, org, &job.kind, input.at).await? >= cap {
                        job.lease = None;
                        reply_waits = true;
                    }
                }
                Some(insert_job(&mut tx, org, &job, input.at).await?)
            }
            _ => None,
        };
        let mut events = Vec::with_capacity(2);
        if started {
            events.push(crate::outbox::conversation_event(
                "conversation.started",
                &conversation,
            ));
        }
        events.push(crate::outbox::message_event("message.received", &message));
        crate::outbox::emit(&mut tx, org, &events, input.at).await?;
        self.commit_events(tx).await?;
        Ok(InboundResult::Stored(Box::new(Received {
            conversation,
            message,
            started,
            closed,
            was_opted_out,
            opted_out,
            keyword,
            job,
            reply_waits,
        })))
    }

    /// Starts a business-initiated conversation with its first message (already sent, or to
    /// be sent: `first.delivery_status` says which), closing any open session with the same
    /// contact on the same number first. Returns the conversation and the closed one.
    pub async fn start_outbound_conversation(
        &self,
        org: &OrgId,
        input: NewConversation,
        first: Option<&Message>,
    ) -> Result<(Conversation, Option<Conversation>), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let settings = crate::settings::read_windows(&mut tx, org).await?;
        let our = input.our_number.clone().unwrap_or_default();
        let key = SessionKey {
            channel: input.channel,
            contact: &input.contact_number,
            our_number: &our,
        };
        let at = input.started_at;
        let (open, mut closed) = open_session(&mut tx, self, org, &key, &settings, at).await?;
        if let Some(open) = open {
            closed = Some(close_conversation(&mut tx, org, open, at, &settings).await?);
        }
        let mut conv = insert_conversation(&mut tx, org, input).await?;
        if let Some(first) = first {
            let mut first = first.clone();
            first.conversation_id = conv.id.clone();
            insert_message(&mut tx, org, &first, None).await?;
            conv.last_message_at = first.created_at.max(conv.last_message_at);
        }
        let ev = crate::outbox::conversation_event("conversation.started", &conv);
        crate::outbox::emit(&mut tx, org, &[ev], at).await?;
        self.commit_events(tx).await?;
        Ok((conv, closed))
    }

    /// The open session with this contact on our number, or a new business-started one
    /// (`input.direction`), closing an idle one first. Returns (conversation, started, closed).
    pub async fn join_or_start_session(
        &self,
        org: &OrgId,
        input: NewConversation,
    ) -> Result<(Conversation, bool, Option<Conversation>), StoreError> {
        let mut last = None;
        for _ in 0..SESSION_ATTEMPTS {
            let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
            let settings = crate::settings::read_windows(&mut tx, org).await?;
            let our = input.our_number.clone().unwrap_or_default();
            let key = SessionKey {
                channel: input.channel,
                contact: &input.contact_number,
                our_number: &our,
            };
            let (open, closed) =
                open_session(&mut tx, self, org, &key, &settings, input.started_at).await?;
            if let Some(open) = open {
                self.commit_events(tx).await?;
                return Ok((open, false, closed));
            }
            match insert_conversation(&mut tx, org, input.clone()).await {
                Ok(conv) => {
                    let ev = crate::outbox::conversation_event("conversation.started", &conv);
                    crate::outbox::emit(&mut tx, org, &[ev], input.started_at).await?;
                    self.commit_events(tx).await?;
                    return Ok((conv, true, closed));
                }
                Err(e) if unique_violation(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(StoreError::Conflict("session contention".into())))
    }

    /// Marks a conversation failed with the reason (its first message could not be sent).
    pub async fn fail_conversation(
        &self,
        org: &OrgId,
        id: &ConversationId,
        error: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let done = sqlx::query(
            "UPDATE conversations SET status = 'failed', error = $1, ended_at = $2 \
             WHERE org_id = $3 AND id = $4 AND status = 'active'",
        )
        .bind(error)
        .bind(at.millis())
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            let conv = crate::conversations::fetch_conversation(&mut tx, org, id).await?;
            let ev = crate::outbox::conversation_event("conversation.closed", &conv);
            crate::outbox::emit(&mut tx, org, &[ev], at).await?;
        }
        self.commit_events(tx).await?;
        Ok(())
    }

    /// Appends messages written by us (agent reply parts, a human's message, a compliance
    /// answer, tool items) in one transaction; `clear_error` also clears the conversation's
    /// recorded failure (an answer finally went out). With a job (id, owner), the same
    /// transaction records its progress (`Some(payload)`) or completes it (`None`), only while
    /// `owner` still holds it.
    pub async fn store_outbound(
        &self,
        org: &OrgId,
        conversation: &ConversationId,
        messages: &[Message],
        clear_error: bool,
        job: Option<(&str, &str, Option<&Value>)>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        // All of it goes out with the flush before commit (one round trip on SQLite).
        if clear_error {
            tx.defer(
                Sql::new("UPDATE conversations SET error = NULL WHERE org_id = $1 AND id = $2")
                    .bind(org.to_string())
                    .bind(conversation.to_string()),
                Expect::Any,
            )
            .await?;
        }
        if let Some((id, owner, payload)) = job {
            let sql = match payload {
                Some(p) => Sql::new(
                    "UPDATE jobs SET payload = $1 WHERE id = $2 AND lease_owner = $3 \
                     AND status = 'running'",
                )
                .bind(to_json(p)?),
                None => Sql::new(
                    "UPDATE jobs SET status = 'done', lease_owner = NULL, lease_until = NULL, \
                     updated_at = $1 WHERE id = $2 AND lease_owner = $3 AND status = 'running'",
                )
                .bind(
                    messages
                        .first()
                        .map(|m| m.created_at.millis())
                        .unwrap_or_default(),
                ),
            }
            .bind(id.to_owned())
            .bind(owner.to_owned());
            // Another worker took the job over (our lease expired): its copy wins, and
            // nothing of this transaction is kept.
            tx.defer(
                sql,
                Expect::Changed(|| StoreError::Conflict("job lease lost".into())),
            )
            .await?;
        }
        for m in messages {
            if &m.conversation_id != conversation {
                return Err(StoreError::Corrupt(
                    "message of another conversation".into(),
                ));
            }
            insert_message(&mut tx, org, m, None).await?;
        }
        // Parts handed over in the webhook's TwiML (`sending`) or needing no carrier (web
        // chat) count as sent now; parts for the REST sender when the provider accepts them.
        let events: Vec<_> = messages
            .iter()
            .filter(|m| {
                m.role != MessageRole::User
                    && m.kind == MessageKind::Message
                    && matches!(m.delivery_status.as_deref(), None | Some("sending"))
            })
            .map(|m| crate::outbox::message_event("message.sent", m))
            .collect();
        let at = messages
            .first()
            .map(|m| m.created_at)
            .unwrap_or_else(Timestamp::now);
        crate::outbox::emit(&mut tx, org, &events, at).await?;
        self.commit_events(tx).await?;
        Ok(())
    }

    /// One message.
    pub async fn get_message(&self, org: &OrgId, id: &MessageId) -> Result<Message, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let msg = fetch_message(&mut tx, org, id).await?;
        tx.commit().await?;
        Ok(msg)
    }

    /// The last `n` transcript items of a conversation, oldest first (the model's context).
    pub async fn recent_messages(
        &self,
        org: &OrgId,
        conversation: &ConversationId,
        n: i64,
    ) -> Result<Vec<Message>, StoreError> {
        let mut r = self.reader(Scope::Org(org)).await?;
        let rows = sqlx::query(&format!(
            "SELECT {MSG_COLUMNS} FROM messages WHERE org_id = $1 AND conversation_id = $2 \
             ORDER BY seq DESC LIMIT $3"
        ))
        .bind(org.as_str())
        .bind(conversation.as_str())
        .bind(n)
        .fetch_all(r.conn())
        .await?;
        r.finish().await?;
        let mut items = rows
            .iter()
            .map(|r| message_from_row(r).map(|(_, m)| m))
            .collect::<Result<Vec<_>, _>>()?;
        items.reverse();
        Ok(items)
    }

    /// Sets an outbound message's delivery state as we move it (`sending`, `queued` with the
    /// provider id, `failed` with a reason). Unconditional: only our own sender calls it.
    pub async fn set_delivery(
        &self,
        org: &OrgId,
        id: &MessageId,
        status: &str,
        external_id: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let done = sqlx::query(
            "UPDATE messages SET delivery_status = $1, \
             external_id = COALESCE($2, external_id), delivery_error = COALESCE($3, delivery_error) \
             WHERE org_id = $4 AND id = $5",
        )
        .bind(status)
        .bind(external_id.map(str::to_owned))
        .bind(error.map(str::to_owned))
        .bind(org.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let kind = match (status, external_id) {
            ("failed", _) => Some("message.failed"),
            (_, Some(_)) => Some("message.sent"),
            _ => None,
        };
        if let Some(kind) = kind {
            let msg = fetch_message(&mut tx, org, id).await?;
            let ev = crate::outbox::message_event(kind, &msg);
            crate::outbox::emit(&mut tx, org, &[ev], Timestamp::now()).await?;
        }
        self.commit_events(tx).await?;
        Ok(())
    }

    /// Merges a provider delivery report, forward-only (reports arrive late and out of order).
    /// Finds the message by our id when the callback URL carried it, else by provider id.
    /// Returns the message after the merge and whether it changed; `None` if unknown.
    pub async fn apply_delivery_report(
        &self,
        org: &OrgId,
        id: Option<&MessageId>,
        external_id: &str,
        status: &str,
        error: Option<&str>,
    ) -> Result<Option<(Message, bool)>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let (filter, key) = match id {
            Some(id) => ("id = $2", id.as_str().to_owned()),
            None => ("external_id = $2", external_id.to_owned()),
        };
        let row = sqlx::query(&format!(
            "SELECT {MSG_COLUMNS} FROM messages WHERE org_id = $1 AND {filter} \
             AND role <> 'user'{}",
            self.for_update()
        ))
        .bind(org.as_str())
        .bind(key)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        let (_, mut msg) = message_from_row(&row)?;
        let advances = delivery_advances(msg.delivery_status.as_deref(), status);
        let learn_sid = msg.external_id.is_none();
        if advances || learn_sid {
            let new_status = if advances {
                status.to_owned()
            } else {
                msg.delivery_status.clone().unwrap_or_default()
            };
            let new_error = if advances {
                error.map(str::to_owned).or(msg.delivery_error.clone())
            } else {
                msg.delivery_error.clone()
            };
            sqlx::query(
                "UPDATE messages SET delivery_status = $1, delivery_error = $2, \
                 external_id = COALESCE(external_id, $3) WHERE org_id = $4 AND id = $5",
            )
            .bind(new_status.clone())
            .bind(new_error.clone())
            .bind(external_id)
            .bind(org.as_str())
            .bind(msg.id.as_str())
            .execute(&mut *tx)
            .await?;
            msg.delivery_status = Some(new_status);
            msg.delivery_error = new_error;
            if learn_sid {
                msg.external_id = Some(external_id.to_owned());
            }
        }
        if advances && delivery_failed(status) {
            let ev = crate::outbox::message_event("message.failed", &msg);
            crate::outbox::emit(&mut tx, org, &[ev], Timestamp::now()).await?;
        }
        self.commit_events(tx).await?;
        Ok(Some((msg, advances)))
    }

    /// Records (or clears) the failure of a conversation's last answer.
    pub async fn set_conversation_error(
        &self,
        org: &OrgId,
        id: &ConversationId,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        sqlx::query("UPDATE conversations SET error = $1 WHERE org_id = $2 AND id = $3")
            .bind(error.map(str::to_owned))
            .bind(org.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// When the contact last wrote to us on `channel` (the WhatsApp 24-hour rule).
    pub async fn last_inbound_at(
        &self,
        org: &OrgId,
        channel: Channel,
        contact: &str,
    ) -> Result<Option<Timestamp>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let row = sqlx::query(
            // CROSS JOIN makes SQLite start from the contact's conversations (PostgreSQL plans
            // it as an inner join either way) instead of every message of the organization.
            "SELECT MAX(m.created_at) AS last_at FROM conversations c CROSS JOIN messages m \
             WHERE m.conversation_id = c.id AND c.org_id = $1 AND c.channel = $2 \
             AND c.contact_number = $3 AND m.org_id = $4 AND m.role = 'user'",
        )
        .bind(org.as_str())
        .bind(channel.as_str())
        .bind(contact)
        .bind(org.as_str())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        ts_opt(&row, "last_at")
    }

    /// Closes the organization's text conversations idle longer than their window; returns
    /// the ones it closed.
    pub async fn close_idle_conversations(
        &self,
        org: &OrgId,
        now: Timestamp,
    ) -> Result<Vec<Conversation>, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let settings = crate::settings::read_windows(&mut tx, org).await?;
        // The shorter window bounds the scan; each candidate is checked against its own.
        let shortest =
            window_ms(&settings, Direction::Inbound).min(window_ms(&settings, Direction::Outbound));
        let rows = sqlx::query(&format!(
            "SELECT {CONV_COLUMNS} FROM conversations WHERE org_id = $1 AND status = 'active' \
             AND channel <> 'voice' AND last_message_at < $2 LIMIT 500{}",
            self.for_update()
        ))
        .bind(org.as_str())
        .bind(now.millis() - shortest)
        .fetch_all(&mut *tx)
        .await?;
        let mut closed = Vec::new();
        for row in &rows {
            let conv = conversation_from_row(row)?;
            if now.millis() - conv.last_message_at.millis() >= window_ms(&settings, conv.direction)
            {
                closed.push(close_conversation(&mut tx, org, conv, now, &settings).await?);
            }
        }
        self.commit_events(tx).await?;
        Ok(closed)
    }

    /// Whether the contact with this number has opted out (false when unknown).
    pub async fn contact_opted_out(&self, org: &OrgId, number: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let row = sqlx::query("SELECT opted_out FROM contacts WHERE org_id = $1 AND number = $2")
            .bind(org.as_str())
            .bind(number)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        row.map(|r| flag(&r, "opted_out"))
            .transpose()
            .map(|o| o.unwrap_or(false))
    }
}

async fn fetch_message(
    tx: &mut crate::Tx,
    org: &OrgId,
    id: &MessageId,
) -> Result<Message, StoreError> {
    crate::rows::fetch_scoped(tx, "messages", MSG_COLUMNS, org, id.as_str(), "", |r| {
        message_from_row(r).map(|(_, m)| m)
    })
    .await
}

/// Ensures the texter is a contact and applies an opt-out/opt-in keyword. `known` is the
/// contact's opt-out flag when it exists (read already). Returns the state before and after.
async fn apply_contact(
    tx: &mut crate::Tx,
    org: &OrgId,
    number: &str,
    keyword: Option<Keyword>,
    at: Timestamp,
    known: Option<i64>,
) -> Result<(bool, bool), StoreError> {
    // Known texters are the common case: write only for a new one.
    let before = match known {
        Some(v) => v != 0,
        None => {
            sqlx::query(
                "INSERT INTO contacts (org_id, id, number, name, metadata, opted_out, created_at, \
                 updated_at) VALUES ($1, $2, $3, NULL, '{}', 0, $4, $5) \
                 ON CONFLICT (org_id, number) DO NOTHING",
            )
            .bind(org.as_str())
            .bind(ContactId::generate().to_string())
            .bind(number)
            .bind(at.millis())
            .bind(at.millis())
            .execute(&mut **tx)
            .await?;
            let v: i64 = sqlx::query_scalar(
                "SELECT opted_out FROM contacts WHERE org_id = $1 AND number = $2",
            )
            .bind(org.as_str())
            .bind(number)
            .fetch_one(&mut **tx)
            .await?;
            v != 0
        }
    };
    let after = match keyword {
        Some(Keyword::OptOut) => true,
        Some(Keyword::OptIn) => false,
        _ => before,
    };
    if after != before {
        sqlx::query(
            "UPDATE contacts SET opted_out = $1, updated_at = $2 WHERE org_id = $3 AND number = $4",
        )
        .bind(i64::from(after))
        .bind(at.millis())
        .bind(org.as_str())
        .bind(number)
        .execute(&mut **tx)
        .await?;
    }
    Ok((before, after))
}
