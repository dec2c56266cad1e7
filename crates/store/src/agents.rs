//! Agents.

use crate::rows::{col, json, ts, Newest, Sql};
use crate::{Access, Scope, Store, StoreError};
use sqlx::any::AnyRow;
use switchboard_domain::agent::{
    Agent, AgentPatch, ContactScope, Handoff, LlmSettings, NewAgent, SttSettings, TtsSettings,
    VoicePipeline, VoicemailMode,
};
use switchboard_domain::entities::{Cursor, Page};
use switchboard_domain::ids::{AgentId, OrgId};
use switchboard_domain::transfer::{CallerIdPolicy, TransferMode, TransferTarget};
use switchboard_domain::{Timestamp, ValidationError};

const COLUMNS: &str = "id, name, instructions, greeting, voice, model, language, temperature, \
    turn_detection, tools, transfer_number, max_call_duration_seconds, analysis_fields, \
    business_hours, chat_model, voicemail, voicemail_message, record, handoffs, digits, \
    transfer_caller_id, transfer_message, transfer_mode, contact_scope, knowledge, \
    retell_agent_id, voice_pipeline, pipeline, created_at, updated_at";

/// Columns an insert or update writes, in the order [`bind_written`] binds them: the
/// changeable fields and `updated_at` ($1-$28), then `org_id` ($29) and `id` ($30).
const WRITTEN: &str = "name, instructions, greeting, voice, model, language, temperature, \
    turn_detection, tools, transfer_number, max_call_duration_seconds, analysis_fields, \
    business_hours, chat_model, voicemail, voicemail_message, record, handoffs, digits, \
    transfer_caller_id, transfer_message, transfer_mode, contact_scope, knowledge, \
    retell_agent_id, voice_pipeline, pipeline, updated_at, org_id, id";
/// How many of [`WRITTEN`] an update sets.
const CHANGED: usize = 28;
/// What a Retell agent id already connected elsewhere is refused with.
const RETELL_TAKEN: &str =
    "this Retell agent id is already connected to an agent (Retell's ids are unique)";

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds [`WRITTEN`] for `agent`, so inserts and updates cannot disagree on a field.
fn bind_written<'q>(
    q: AnyQuery<'q>,
    org: &OrgId,
    agent: &'q Agent,
) -> Result<AnyQuery<'q>, StoreError> {
    Ok(q.bind(agent.name.as_str())
        .bind(agent.instructions.as_str())
        .bind(agent.greeting.clone())
        .bind(agent.voice.as_str())
        .bind(agent.model.as_str())
        .bind(agent.language.clone())
        .bind(agent.temperature)
        .bind(crate::rows::to_json(&agent.turn_detection)?)
        .bind(crate::rows::to_json(&agent.tools)?)
        .bind(agent.transfer_number.as_ref().map(|n| n.to_string()))
        .bind(agent.max_call_duration_seconds)
        .bind(crate::rows::to_json(&agent.analysis_fields)?)
        .bind(crate::rows::to_json(&agent.business_hours)?)
        .bind(agent.chat_model.clone())
        .bind(agent.voicemail.as_str())
        .bind(agent.voicemail_message.clone())
        .bind(i64::from(agent.record))
        .bind(crate::rows::to_json(&agent.handoffs)?)
        .bind(crate::rows::to_json(&agent.digits)?)
        .bind(match agent.transfer_caller_id {
            CallerIdPolicy::OurNumber => "our_number",
            CallerIdPolicy::Caller => "caller",
        })
        .bind(agent.transfer_message.clone())
        .bind(agent.transfer_mode.as_str())
        .bind(agent.contact_scope.as_str())
        .bind(crate::rows::to_json(&agent.knowledge)?)
        .bind(agent.retell_agent_id.clone())
        .bind(agent.voice_pipeline.as_str())
        .bind(crate::rows::to_json(&Pipeline {
            stt: agent.stt.clone(),
            llm: agent.llm.clone(),
            tts: agent.tts.clone(),
        })?)
        .bind(agent.updated_at.millis())
        .bind(org.to_string())
        .bind(agent.id.to_string()))
}

/// The `pipeline` column: the cascaded pipeline's providers.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Pipeline {
    #[serde(default)]
    stt: Option<SttSettings>,
    #[serde(default)]
    llm: Option<LlmSettings>,
    #[serde(default)]
    tts: Option<TtsSettings>,
}

fn agent_from_row(row: &AnyRow) -> Result<Agent, StoreError> {
    // NULL: saved before the cascaded pipeline existed.
    let pipeline: Pipeline = crate::rows::json_opt(row, "pipeline")?.unwrap_or_default();
    Ok(Agent {
        id: AgentId::from_db(col(row, "id")?),
        name: col(row, "name")?,
        instructions: col(row, "instructions")?,
        greeting: col(row, "greeting")?,
        voice: col(row, "voice")?,
        model: col(row, "model")?,
        language: col(row, "language")?,
        temperature: col(row, "temperature")?,
        turn_detection: json(row, "turn_detection")?,
        tools: json(row, "tools")?,
        transfer_number: col::<Option<String>>(row, "transfer_number")?
            .map(TransferTarget::from_db),
        transfer_caller_id: match col::<Option<String>>(row, "transfer_caller_id")?.as_deref() {
            Some("caller") => CallerIdPolicy::Caller,
            _ => CallerIdPolicy::OurNumber,
        },
        transfer_message: col(row, "transfer_message")?,
        // NULL: saved before scoping existed, which is the safe default.
        contact_scope: col::<Option<String>>(row, "contact_scope")?
            .as_deref()
            .and_then(ContactScope::parse)
            .unwrap_or_default(),
        // NULL: saved before warm transfers existed.
        transfer_mode: match col::<Option<String>>(row, "transfer_mode")?.as_deref() {
            Some("warm") => TransferMode::Warm,
            _ => TransferMode::Cold,
        },
        max_call_duration_seconds: col(row, "max_call_duration_seconds")?,
        analysis_fields: json(row, "analysis_fields")?,
        // Agents saved before business hours existed get the defaults.
        business_hours: crate::rows::json_opt(row, "business_hours")?.unwrap_or_default(),
        chat_model: col(row, "chat_model")?,
        voicemail: crate::rows::parsed(row, "voicemail", VoicemailMode::parse)?,
        voicemail_message: col(row, "voicemail_message")?,
        record: col::<i64>(row, "record")? != 0,
        // Agents saved before call control existed: no handoffs, default digits.
        handoffs: crate::rows::json_opt(row, "handoffs")?.unwrap_or_default(),
        digits: crate::rows::json_opt(row, "digits")?.unwrap_or_default(),
        // Agents saved before knowledge existed answer from none.
        knowledge: crate::rows::json_opt(row, "knowledge")?.unwrap_or_default(),
        retell_agent_id: col(row, "retell_agent_id")?,
        voice_pipeline: col::<Option<String>>(row, "voice_pipeline")?
            .as_deref()
            .map(VoicePipeline::parse)
            .unwrap_or_default(),
        stt: pipeline.stt,
        llm: pipeline.llm,
        tts: pipeline.tts,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

impl Store {
    /// Creates an agent after validating it.
    pub async fn create_agent(&self, org: &OrgId, input: NewAgent) -> Result<Agent, StoreError> {
        let agent = Agent::create(input, Timestamp::now())?;
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        crate::accounts::ensure_org_exists(&mut tx, org).await?;
        crate::custom_tools::check_agent_tools(&mut tx, org, &agent.tools).await?;
        check_handoffs(&mut tx, org, &agent).await?;
        crate::knowledge::check_agent_sources(&mut tx, org, &agent.knowledge).await?;
        // Every written column, then `created_at`.
        let params: Vec<String> = (1..=CHANGED + 3).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO agents ({WRITTEN}, created_at) VALUES ({})",
            params.join(", ")
        );
        bind_written(sqlx::query(&sql), org, &agent)?
            .bind(agent.created_at.millis())
            .execute(&mut *tx)
            .await
            .map_err(crate::conflict_on_unique(RETELL_TAKEN))?;
        tx.commit().await?;
        Ok(agent)
    }

    /// One agent.
    pub async fn get_agent(&self, org: &OrgId, id: &AgentId) -> Result<Agent, StoreError> {
        let mut r = self.reader(Scope::Org(org)).await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM agents WHERE org_id = $1 AND id = $2"
        ))
        .bind(org.as_str())
        .bind(id.as_str())
        .fetch_optional(r.conn())
        .await?;
        r.finish().await?;
        row.as_ref()
            .map(agent_from_row)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    /// Lists agents, newest first.
    pub async fn list_agents(
        &self,
        org: &OrgId,
        limit: Option<u32>,
        cursor: Option<&Cursor>,
    ) -> Result<Page<Agent>, StoreError> {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM agents WHERE "));
        sql.push_arg("org_id = {}", org.to_string())?;
        let order = Newest {
            col: "created_at",
            key: |a: &Agent| Cursor {
                at: a.created_at.millis(),
                id: a.id.to_string(),
            },
        };
        self.list_newest(org, sql, order, limit, cursor, agent_from_row)
            .await
    }

    /// Applies a partial update; the whole agent is re-validated before anything is written.
    pub async fn update_agent(
        &self,
        org: &OrgId,
        id: &AgentId,
        patch: AgentPatch,
    ) -> Result<Agent, StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let current = fetch_agent(&mut tx, org, id, self.for_update()).await?;
        let agent = current.apply(patch, Timestamp::now())?;
        crate::custom_tools::check_agent_tools(&mut tx, org, &agent.tools).await?;
        check_handoffs(&mut tx, org, &agent).await?;
        crate::knowledge::check_agent_sources(&mut tx, org, &agent.knowledge).await?;
        let sets: Vec<String> = WRITTEN
            .split(", ")
            .map(str::trim)
            .take(CHANGED)
            .enumerate()
            .map(|(n, col)| format!("{col} = ${}", n + 1))
            .collect();
        let sql = format!(
            "UPDATE agents SET {} WHERE org_id = ${} AND id = ${}",
            sets.join(", "),
            CHANGED + 1,
            CHANGED + 2
        );
        bind_written(sqlx::query(&sql), org, &agent)?
            .execute(&mut *tx)
            .await
            .map_err(crate::conflict_on_unique(RETELL_TAKEN))?;
        tx.commit().await?;
        Ok(agent)
    }

    /// Deletes an agent. Numbers it answered become unrouted; past conversations keep their
    /// history without an agent; agents that could hand calls to it no longer can.
    pub async fn delete_agent(&self, org: &OrgId, id: &AgentId) -> Result<(), StoreError> {
        let mut tx = self.begin(Scope::Org(org), Access::Write).await?;
        let n = sqlx::query("DELETE FROM agents WHERE org_id = $1 AND id = $2")
            .bind(org.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        drop_from_agents(&mut tx, org, "handoffs", id.as_str(), |h: &Handoff| {
            &h.agent_id != id
        })
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Takes `needle` (an id) out of every agent's JSON list `column` (`handoffs`, `knowledge`)
/// that holds it, keeping the entries `keep` accepts, inside `tx`.
pub(crate) async fn drop_from_agents<T>(
    tx: &mut crate::Tx,
    org: &OrgId,
    column: &'static str,
    needle: &str,
    keep: impl Fn(&T) -> bool,
) -> Result<(), StoreError>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    // A cheap pre-filter; the JSON decides.
    let rows = sqlx::query(&format!(
        "SELECT id, {column} FROM agents WHERE org_id = $1 AND {column} LIKE $2"
    ))
    .bind(org.as_str())
    .bind(format!("%{needle}%"))
    .fetch_all(&mut **tx)
    .await?;
    for row in rows {
        let mut list: Vec<T> = json(&row, column)?;
        list.retain(&keep);
        sqlx::query(&format!(
            "UPDATE agents SET {column} = $1 WHERE org_id = $2 AND id = $3"
        ))
        .bind(crate::rows::to_json(&list)?)
        .bind(org.as_str())
        .bind(col::<String>(&row, "id")?)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Every agent an agent hands calls to exists in its organization.
async fn check_handoffs(tx: &mut crate::Tx, org: &OrgId, agent: &Agent) -> Result<(), StoreError> {
    for (i, h) in agent.handoffs.iter().enumerate() {
        if !agent_exists(tx, org, &h.agent_id).await? {
            return Err(StoreError::Invalid(ValidationError::new(
                format!("handoffs[{i}].agent_id"),
                "no such agent in this organization",
            )));
        }
    }
    Ok(())
}

/// Whether an agent exists in the organization (inside an open transaction).
pub(crate) async fn agent_exists(
    tx: &mut crate::Tx,
    org: &OrgId,
    id: &AgentId,
) -> Result<bool, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM agents WHERE org_id = $1 AND id = $2")
        .bind(org.as_str())
        .bind(id.as_str())
        .fetch_one(&mut **tx)
        .await?;
    Ok(n > 0)
}

async fn fetch_agent(
    tx: &mut crate::Tx,
    org: &OrgId,
    id: &AgentId,
    lock: &str,
) -> Result<Agent, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM agents WHERE org_id = $1 AND id = $2{lock}"
    ))
    .bind(org.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    row.as_ref()
        .map(agent_from_row)
        .transpose()?
        .ok_or(StoreError::NotFound)
}
