//! Building an agent: from a create request with defaults, or by applying a partial update;
//! either way the whole agent is validated before it is returned.

use super::{Agent, AgentPatch, NewAgent, DEFAULT_MAX_CALL_SECONDS, DEFAULT_MODEL, DEFAULT_VOICE};
use crate::ids::AgentId;
use crate::{Timestamp, ValidationError};

impl Agent {
    /// Builds a validated agent from a create request.
    pub fn create(input: NewAgent, now: Timestamp) -> Result<Agent, ValidationError> {
        let agent = Agent {
            id: AgentId::generate(),
            name: input.name,
            instructions: input.instructions,
            greeting: input.greeting,
            voice: input.voice.unwrap_or_else(|| DEFAULT_VOICE.to_owned()),
            model: input.model.unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            language: input.language,
            temperature: input.temperature,
            turn_detection: input.turn_detection.unwrap_or_default(),
            tools: input.tools.unwrap_or_default(),
            transfer_number: input.transfer_number,
            transfer_caller_id: input.transfer_caller_id.unwrap_or_default(),
            transfer_message: input.transfer_message,
            transfer_mode: input.transfer_mode.unwrap_or_default(),
            max_call_duration_seconds: input
                .max_call_duration_seconds
                .unwrap_or(DEFAULT_MAX_CALL_SECONDS),
            analysis_fields: input.analysis_fields.unwrap_or_default(),
            business_hours: input.business_hours.unwrap_or_default(),
            chat_model: input.chat_model,
            voicemail: input.voicemail.unwrap_or_default(),
            voicemail_message: input.voicemail_message,
            record: input.record.unwrap_or(false),
            contact_scope: input.contact_scope.unwrap_or_default(),
            handoffs: input.handoffs.unwrap_or_default(),
            digits: input.digits.unwrap_or_default(),
            knowledge: input.knowledge.unwrap_or_default(),
            retell_agent_id: input.retell_agent_id,
            voice_pipeline: input.voice_pipeline.unwrap_or_default(),
            stt: input.stt,
            llm: input.llm,
            tts: input.tts,
            created_at: now,
            updated_at: now,
        };
        agent.validate()?;
        Ok(agent)
    }

    /// Applies a partial update and re-validates the whole agent.
    pub fn apply(mut self, p: AgentPatch, now: Timestamp) -> Result<Agent, ValidationError> {
        if let Some(v) = p.name {
            self.name = v;
        }
        if let Some(v) = p.instructions {
            self.instructions = v;
        }
        if let Some(v) = p.greeting {
            self.greeting = v;
        }
        if let Some(v) = p.voice {
            self.voice = v;
        }
        if let Some(v) = p.model {
            self.model = v;
        }
        if let Some(v) = p.language {
            self.language = v;
        }
        if let Some(v) = p.temperature {
            self.temperature = v;
        }
        if let Some(v) = p.turn_detection {
            self.turn_detection = v;
        }
        if let Some(v) = p.tools {
            self.tools = v;
        }
        if let Some(v) = p.transfer_number {
            self.transfer_number = v;
        }
        if let Some(v) = p.transfer_caller_id {
            self.transfer_caller_id = v;
        }
        if let Some(v) = p.transfer_mode {
            self.transfer_mode = v;
        }
        if let Some(v) = p.transfer_message {
            self.transfer_message = v;
        }
        if let Some(v) = p.max_call_duration_seconds {
            self.max_call_duration_seconds = v;
        }
        if let Some(v) = p.analysis_fields {
            self.analysis_fields = v;
        }
        if let Some(v) = p.business_hours {
            self.business_hours = v;
        }
        if let Some(v) = p.chat_model {
            self.chat_model = v;
        }
        if let Some(v) = p.voicemail {
            self.voicemail = v;
        }
        if let Some(v) = p.contact_scope {
            self.contact_scope = v;
        }
        if let Some(v) = p.voicemail_message {
            self.voicemail_message = v;
        }
        if let Some(v) = p.record {
            self.record = v;
        }
        if let Some(v) = p.handoffs {
            self.handoffs = v;
        }
        if let Some(v) = p.digits {
            self.digits = v;
        }
        if let Some(v) = p.knowledge {
            self.knowledge = v;
        }
        if let Some(v) = p.retell_agent_id {
            self.retell_agent_id = v;
        }
        if let Some(v) = p.voice_pipeline {
            self.voice_pipeline = v;
        }
        if let Some(v) = p.stt {
            self.stt = v;
        }
        if let Some(v) = p.llm {
            self.llm = v;
        }
        if let Some(v) = p.tts {
            self.tts = v;
        }
        self.updated_at = now;
        self.validate()?;
        Ok(self)
    }
}
