//! Conversations, their transcript items (messages) and calls.

use crate::rows::{
    col, into_page, json, json_opt, page_size, parsed, push_range, to_json, ts, ts_opt, Newest, Sql,
};
use crate::{conflict_on_unique, Access, Expect, Scope, Store, StoreError};
use sqlx::any::AnyRow;
use switchboard_domain::entities::{
    Call, CallFilter, CallRecording, Conversation, ConversationFilter, Cursor, Message, NewCall,
    NewConversation, NewMessage, Page,
};
use switchboard_domain::ids::{AgentId, CallId, ConversationId, MessageId, OrgId};
use switchboard_domain::values::{
    CallStatus, Channel, ConversationStatus, Direction, MessageKind, MessageRole,
};

/// A page of a thread read backwards from its newest message (see
/// [`Store::list_messages_before`]).
#[derive(Debug, Clone)]
pub struct EarlierPage {
    /// The messages, oldest first.
    pub data: Vec<Message>,
    /// The cursor for the page before these, when there is one.
    pub earlier: Option<String>,
    /// The cursor of the last message here (`?after=` pages forward from it).
    pub last: Option<String>,
}

pub(crate) const CONV_COLUMNS: &str = "id, channel, direction, contact_number, our_number, \
    agent_id, status, started_at, last_message_at, ended_at, variables, error, analysis";
pub(crate) const MSG_COLUMNS: &str = "seq, id, conversation_id, role, kind, content, external_id, \
    delivery_status, delivery_error, created_at";
pub(crate) const CALL_COLUMNS: &str =
    "id, conversation_id, call_sid, direction, from_number, to_number, \
    agent_id, status, started_at, answered_at, ended_at, duration_seconds, end_reason, \
    disposition, recording_url, analysis, turn_latencies_ms, error, metadata, dial_at, \
    sip_response_code, twilio_error_code, answered_by, record, recording_sid, recording_status, \
    recording_duration_seconds, recording_channels, recording_deleted_at, campaign_id, handoffs, transfer, provider_analysis";

fn agent_col(row: &AnyRow) -> Result<Option<AgentId>, StoreError> {
    Ok(col::<Option<String>>(row, "agent_id")?.map(AgentId::from_db))
}

pub(crate) fn conversation_from_row(row: &AnyRow) -> Result<Conversation, StoreError> {
    Ok(Conversation {
        id: ConversationId::from_db(col(row, "id")?),
        channel: parsed(row, "channel", Channel::parse)?,
        direction: parsed(row, "direction", Direction::parse)?,
        contact_number: col(row, "contact_number")?,
        our_number: col(row, "our_number")?,
        agent_id: agent_col(row)?,
        status: parsed(row, "status", ConversationStatus::parse)?,
        started_at: ts(row, "started_at")?,
        last_message_at: ts(row, "last_message_at")?,
        ended_at: ts_opt(row, "ended_at")?,
        variables: json(row, "variables")?,
        error: col(row, "error")?,
        analysis: json_opt(row, "analysis")?,
    })
}

pub(crate) fn message_from_row(row: &AnyRow) -> Result<(i64, Message), StoreError> {
    Ok((
        col(row, "seq")?,
        Message {
            id: MessageId::from_db(col(row, "id")?),
            conversation_id: ConversationId::from_db(col(row, "conversation_id")?),
            role: parsed(row, "role", MessageRole::parse)?,
            kind: parsed(row, "kind", MessageKind::parse)?,
            content: json(row, "content")?,
            external_id: col(row, "external_id")?,
            delivery_status: col(row, "delivery_status")?,
            delivery_error: col(row, "delivery_error")?,
            created_at: ts(row, "created_at")?,
        },
    ))
}

pub(crate) fn call_from_row(row: &AnyRow) -> Result<Call, StoreError> {
    let mut call = Call {
        id: CallId::from_db(col(row, "id")?),
        conversation_id: ConversationId::from_db(col(row, "conversation_id")?),
        call_sid: {
            // A call not dialled yet has a placeholder sid; clients see an empty one.
            let sid: String = col(row, "call_sid")?;
            if sid.starts_with(crate::outbound::PENDING_SID) {
                String::new()
            } else {
                sid
            }
        },
        direction: parsed(row, "direction", Direction::parse)?,
        from_number: col(row, "from_number")?,
        to_number: col(row, "to_number")?,
        agent_id: agent_col(row)?,
        status: parsed(row, "status", CallStatus::parse)?,
        started_at: ts(row, "started_at")?,
        answered_at: ts_opt(row, "answered_at")?,
        ended_at: ts_opt(row, "ended_at")?,
        duration_seconds: col(row, "duration_seconds")?,
        end_reason: col(row, "end_reason")?,
        disposition: col(row, "disposition")?,
        recording_url: None,
        recording: None,
        analysis: json_opt(row, "analysis")?,
        provider_analysis: json_opt(row, "provider_analysis")?,
        turn_latencies_ms: json_opt(row, "turn_latencies_ms")?.unwrap_or_default(),
        error: col(row, "error")?,
        metadata: json_opt(row, "metadata")?,
        scheduled_at: ts_opt(row, "dial_at")?,
        sip_response_code: col(row, "sip_response_code")?,
        twilio_error_code: col(row, "twilio_error_code")?,
        answered_by: col(row, "answered_by")?,
        campaign_id: col(row, "campaign_id")?,
        agents: Vec::new(),
        handoffs: json_opt(row, "handoffs")?.unwrap_or_default(),
        transfer: json_opt(row, "transfer")?,
    };
    call.agents = call
        .agent_id
        .iter()
        .cloned()
        .chain(call.handoffs.iter().map(|h| h.to_agent_id.clone()))
        .collect();
    recording_of(row, &mut call)?;
    if switchboard_domain::call::is_retell_call(&call.call_sid) {
        call.recording_url = col(row, "recording_url")?;
    }
    Ok(call)
}

/// The recording part of a call row: what the API shows of it, and the URL it is served at
/// once Twilio finished it. Twilio's own `RecordingUrl` stays in the database.
fn recording_of(row: &AnyRow, call: &mut Call) -> Result<(), StoreError> {
    let sid: Option<String> = col(row, "recording_sid")?;
    let record = col::<i64>(row, "record")? != 0;
    if sid.is_none() && !record {
        return Ok(());
    }
    let deleted_at = ts_opt(row, "recording_deleted_at")?;
    let status = match (&deleted_at, col::<Option<String>>(row, "recording_status")?) {
        (Some(_), _) => "deleted".to_owned(),
        (None, Some(s)) => s,
        (None, None) => "requested".to_owned(),
    };
    if status == "completed" {
        call.recording_url = Some(format!("/api/v1/calls/{}/recording", call.id));
    }
    call.recording = Some(CallRecording {
        status,
        duration_seconds: col(row, "recording_duration_seconds")?,
        channels: col(row, "recording_channels")?,
        deleted_at,
    });
    Ok(())
}

impl Store {
    /// Starts a conversation.
    pub async fn create_conversation(
        &self,
        org: &OrgId,
        input: NewConversation,
    ) -> Result<Conversation, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let conv = insert_conversation(&mut tx, org, input).await?;
        tx.commit().await?;
        Ok(conv)
    }

    /// One conversation.
    pub async fn get_conversation(
        &self,
        org: &OrgId,
        id: &ConversationId,
    ) -> Result<Conversation, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let conv = fetch_conversation(&mut tx, org, id).await?;
        tx.commit().await?;
        Ok(conv)
    }

    /// Lists conversations, newest first, with filters and a keyset cursor.
    pub async fn list_conversations(
        &self,
        org: &OrgId,
        filter: &ConversationFilter,
        limit: Option<u32>,
        cursor: Option<&Cursor>,
    ) -> Result<Page<Conversation>, StoreError> {
        let mut sql = Sql::new(&format!("SELECT {CONV_COLUMNS} FROM conversations WHERE "));
        sql.push_arg("org_id = {}", org.to_string())?;
        if let Some(c) = filter.channel {
            sql.push_arg(" AND channel = {}", c.as_str().to_owned())?;
        }
        if let Some(s) = filter.status {
            sql.push_arg(" AND status = {}", s.as_str().to_owned())?;
        }
        if let Some(a) = &filter.agent_id {
            sql.push_arg(" AND agent_id = {}", a.to_string())?;
        }
        if let Some(c) = &filter.contact {
            sql.push_arg(" AND contact_number = {}", c.clone())?;
        }
        push_range(&mut sql, "started_at", filter.from, filter.to)?;
        let order = Newest {
            col: "started_at",
            key: |c: &Conversation| Cursor {
                at: c.started_at.millis(),
                id: c.id.to_string(),
            },
        };
        self.list_newest(org, sql, order, limit, cursor, conversation_from_row)
            .await
    }

    /// Appends a transcript item and moves the conversation's last-message time forward.
    pub async fn append_message(
        &self,
        org: &OrgId,
        input: NewMessage,
    ) -> Result<Message, StoreError> {
        let msg = Message {
            id: MessageId::generate(),
            conversation_id: input.conversation_id,
            role: input.role,
            kind: input.kind,
            content: input.content,
            external_id: input.external_id,
            delivery_status: input.delivery_status,
            delivery_error: None,
            created_at: input.created_at,
        };
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        insert_message(&mut tx, org, &msg, None).await?;
        tx.commit().await?;
        Ok(msg)
    }

    /// A conversation's transcript in the order it was written, oldest first.
    /// A read transaction on a thread that exists in `org` (`NotFound` otherwise), and the
    /// start of a query over its messages.
    async fn thread_query(
        &self,
        org: &OrgId,
        conversation: &ConversationId,
    ) -> Result<(crate::Tx, Sql), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let exists: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM conversations WHERE org_id = $1 AND id = $2")
                .bind(org.as_str())
                .bind(conversation.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if exists == 0 {
            return Err(StoreError::NotFound);
        }
        let mut sql = Sql::new(&format!("SELECT {MSG_COLUMNS} FROM messages WHERE "));
        sql.push_arg("conversation_id = {}", conversation.to_string())?;
        sql.push_arg(" AND org_id = {}", org.to_string())?;
        Ok((tx, sql))
    }

    /// The `limit` messages of a thread just before `before` (or its newest), oldest first,
    /// with the cursor of the page before them (`earlier`, when there is one) and of their
    /// last message (`last`, to page forward with [`Store::list_messages`]): a long thread
    /// opens at its newest message.
    pub async fn list_messages_before(
        &self,
        org: &OrgId,
        conversation: &ConversationId,
        limit: Option<u32>,
        before: Option<&Cursor>,
    ) -> Result<EarlierPage, StoreError> {
        let limit = page_size(limit);
        let (mut tx, mut sql) = self.thread_query(org, conversation).await?;
        if let Some(c) = before {
            sql.push_arg(" AND seq < {}", c.at)?;
        }
        sql.push_arg(" ORDER BY seq DESC LIMIT {}", i64::from(limit) + 1)?;
        let rows = sql.query().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let mut items = rows
            .iter()
            .map(message_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        items.reverse();
        let cursor = |(seq, m): &(i64, Message)| {
            Cursor {
                at: *seq,
                id: m.id.to_string(),
            }
            .encode()
        };
        Ok(EarlierPage {
            earlier: if more {
                items.first().map(cursor)
            } else {
                None
            },
            last: items.last().map(cursor),
            data: items.into_iter().map(|(_, m)| m).collect(),
        })
    }

    pub async fn list_messages(
        &self,
        org: &OrgId,
        conversation: &ConversationId,
        limit: Option<u32>,
        cursor: Option<&Cursor>,
    ) -> Result<Page<Message>, StoreError> {
        let limit = page_size(limit);
        let (mut tx, mut sql) = self.thread_query(org, conversation).await?;
        if let Some(c) = cursor {
            sql.push_arg(" AND seq > {}", c.at)?;
        }
        sql.push_arg(" ORDER BY seq LIMIT {}", i64::from(limit) + 1)?;
        let rows = sql.query().fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let items = rows
            .iter()
            .map(message_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let page = into_page(items, limit, |(seq, m)| Cursor {
            at: *seq,
            id: m.id.to_string(),
        });
        Ok(Page {
            data: page.data.into_iter().map(|(_, m)| m).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Creates a call record (CallSid is unique platform-wide).
    pub async fn create_call(&self, org: &OrgId, input: NewCall) -> Result<Call, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let call = insert_call(&mut tx, org, input).await?;
        tx.commit().await?;
        Ok(call)
    }

    /// One call.
    pub async fn get_call(&self, org: &OrgId, id: &CallId) -> Result<Call, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Read).await?;
        let row = sqlx::query(&format!(
            "SELECT {CALL_COLUMNS} FROM calls WHERE org_id = $1 AND id = $2"
        ))
        .bind(org.as_str())
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.as_ref()
            .map(call_from_row)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    /// Lists calls, newest first.
    pub async fn list_calls(
        &self,
        org: &OrgId,
        filter: &CallFilter,
        limit: Option<u32>,
        cursor: Option<&Cursor>,
    ) -> Result<Page<Call>, StoreError> {
        let mut sql = Sql::new(&format!("SELECT {CALL_COLUMNS} FROM calls WHERE "));
        sql.push_arg("org_id = {}", org.to_string())?;
        if let Some(s) = filter.status {
            sql.push_arg(" AND status = {}", s.as_str().to_owned())?;
        }
        if let Some(a) = &filter.agent_id {
            sql.push_arg(" AND agent_id = {}", a.to_string())?;
        }
        if let Some(d) = filter.direction {
            sql.push_arg(" AND direction = {}", d.as_str().to_owned())?;
        }
        if let Some(n) = &filter.number {
            sql.push_arg(" AND (from_number = {}", n.clone())?;
            sql.push_arg(" OR to_number = {})", n.clone())?;
        }
        push_range(&mut sql, "started_at", filter.from, filter.to)?;
        if filter.open {
            sql.push(" AND ended_at IS NULL");
        }
        let order = Newest {
            col: "started_at",
            key: |c: &Call| Cursor {
                at: c.started_at.millis(),
                id: c.id.to_string(),
            },
        };
        self.list_newest(org, sql, order, limit, cursor, call_from_row)
            .await
    }
}

/// Inserts a transcript item inside an open transaction. The conversation must exist in
/// `org` (else `NotFound`: an id from another organization writes nothing); a trigger moves
/// the conversation's last-message time forward (never back: items may be written slightly
/// out of order). `dedupe_key` is unique per organization; a repeat is a unique violation.
pub(crate) async fn insert_message(
    tx: &mut crate::Tx,
    org: &OrgId,
    msg: &Message,
    dedupe_key: Option<&str>,
) -> Result<(), StoreError> {
    // Deferred to the flush before commit: nothing reads a message back in the transaction
    // that appends it. A conversation of another organization (or none) inserts nothing and
    // fails the flush with `NotFound`; a repeated dedupe key fails it as a unique violation.
    let sql = Sql::new(
        "INSERT INTO messages (id, org_id, conversation_id, role, kind, content, external_id, \
         delivery_status, delivery_error, created_at, dedupe_key) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 WHERE EXISTS \
         (SELECT 1 FROM conversations WHERE org_id = $12 AND id = $13)",
    )
    .bind(msg.id.to_string())
    .bind(org.to_string())
    .bind(msg.conversation_id.to_string())
    .bind(msg.role.as_str().to_owned())
    .bind(msg.kind.as_str().to_owned())
    .bind(to_json(&msg.content)?)
    .bind(msg.external_id.clone())
    .bind(msg.delivery_status.clone())
    .bind(msg.delivery_error.clone())
    .bind(msg.created_at.millis())
    .bind(dedupe_key.map(str::to_owned))
    .bind(org.to_string())
    .bind(msg.conversation_id.to_string());
    tx.defer(sql, Expect::Changed(|| StoreError::NotFound))
        .await?;
    Ok(())
}

/// Inserts a conversation inside an open transaction.
pub(crate) async fn insert_conversation(
    tx: &mut crate::Tx,
    org: &OrgId,
    input: NewConversation,
) -> Result<Conversation, StoreError> {
    let conv = Conversation {
        id: ConversationId::generate(),
        channel: input.channel,
        direction: input.direction,
        contact_number: input.contact_number,
        our_number: input.our_number,
        agent_id: input.agent_id,
        status: ConversationStatus::Active,
        started_at: input.started_at,
        last_message_at: input.started_at,
        ended_at: None,
        variables: input.variables,
        error: None,
        analysis: None,
    };
    crate::accounts::ensure_org_exists(tx, org).await?;
    if let Some(agent) = &conv.agent_id {
        if !crate::agents::agent_exists(tx, org, agent).await? {
            return Err(StoreError::NotFound);
        }
    }
    sqlx::query(&format!(
        "INSERT INTO conversations (org_id, {CONV_COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL)"
    ))
    .bind(org.as_str())
    .bind(conv.id.as_str())
    .bind(conv.channel.as_str())
    .bind(conv.direction.as_str())
    .bind(conv.contact_number.as_str())
    .bind(conv.our_number.clone())
    .bind(conv.agent_id.as_ref().map(|a| a.to_string()))
    .bind(conv.status.as_str())
    .bind(conv.started_at.millis())
    .bind(conv.last_message_at.millis())
    .bind(None::<i64>)
    .bind(to_json(&conv.variables)?)
    .bind(None::<String>)
    .execute(&mut **tx)
    .await?;
    Ok(conv)
}

/// Inserts a call record inside an open transaction.
pub(crate) async fn insert_call(
    tx: &mut crate::Tx,
    org: &OrgId,
    input: NewCall,
) -> Result<Call, StoreError> {
    let agents: Vec<AgentId> = input.agent_id.iter().cloned().collect();
    let call = Call {
        id: CallId::generate(),
        conversation_id: input.conversation_id,
        call_sid: input.call_sid,
        direction: input.direction,
        from_number: input.from_number,
        to_number: input.to_number,
        agent_id: input.agent_id,
        status: input.status,
        started_at: input.started_at,
        answered_at: None,
        ended_at: None,
        recording: None,
        campaign_id: None,
        duration_seconds: None,
        end_reason: None,
        disposition: None,
        recording_url: None,
        analysis: None,
        provider_analysis: None,
        turn_latencies_ms: Vec::new(),
        error: None,
        metadata: None,
        scheduled_at: None,
        sip_response_code: None,
        twilio_error_code: None,
        answered_by: None,
        agents,
        handoffs: Vec::new(),
        transfer: None,
    };
    let exists: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM conversations WHERE org_id = $1 AND id = $2")
            .bind(org.as_str())
            .bind(call.conversation_id.as_str())
            .fetch_one(&mut **tx)
            .await?;
    if exists == 0 {
        return Err(StoreError::NotFound);
    }
    sqlx::query(
        "INSERT INTO calls (id, org_id, conversation_id, call_sid, direction, from_number, \
         to_number, agent_id, status, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(call.id.as_str())
    .bind(org.as_str())
    .bind(call.conversation_id.as_str())
    .bind(call.call_sid.as_str())
    .bind(call.direction.as_str())
    .bind(call.from_number.as_str())
    .bind(call.to_number.as_str())
    .bind(call.agent_id.as_ref().map(|a| a.to_string()))
    .bind(call.status.as_str())
    .bind(call.started_at.millis())
    .execute(&mut **tx)
    .await
    .map_err(conflict_on_unique(
        "a call with this CallSid already exists",
    ))?;
    Ok(call)
}

/// One conversation, inside an open transaction.
pub(crate) async fn fetch_conversation(
    tx: &mut crate::Tx,
    org: &OrgId,
    id: &ConversationId,
) -> Result<Conversation, StoreError> {
    crate::rows::fetch_scoped(
        tx,
        "conversations",
        CONV_COLUMNS,
        org,
        id.as_str(),
        "",
        conversation_from_row,
    )
    .await
}
