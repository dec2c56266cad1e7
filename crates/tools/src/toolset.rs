//! Which tools a conversation offers: resolved once when it starts from the agent's built-ins,
//! the organization's custom tools, the allowed tools of the MCP servers it lists, and (on
//! calls) a handoff tool per agent it may hand the call to.

use crate::{builtin, call_control, Registry, ToolDefinition};
use serde_json::{json, Value};
use std::sync::Arc;
use switchboard_domain::agent::Agent;
use switchboard_domain::custom_tool::CustomTool;
use switchboard_domain::ids::OrgId;
use switchboard_domain::mcp_server::{model_tool_name, McpServer, AGENT_PREFIX};
use switchboard_domain::values::Channel;
use switchboard_domain::Timestamp;
use switchboard_store::Store;

/// The tools one conversation offers, resolved once when it starts (a tool edited meanwhile
/// applies from the next call or text turn).
#[derive(Debug, Clone, Default)]
pub struct Toolset {
    pub(crate) definitions: Vec<ToolDefinition>,
    pub(crate) custom: Vec<CustomTool>,
    /// MCP server tools: (the model's name, the server, the server's own tool name).
    pub(crate) mcp: Vec<(String, Arc<McpServer>, String)>,
    /// Agents the call may be handed to.
    pub(crate) handoffs: Vec<call_control::HandoffTool>,
}

impl Toolset {
    /// What the model is offered, in the agent's order.
    pub fn definitions(&self) -> &[ToolDefinition] {
        &self.definitions
    }

    /// The tools as a chat-completions request offers them.
    pub fn chat_tools(&self) -> Vec<switchboard_llm::Tool> {
        self.definitions
            .iter()
            .map(|d| switchboard_llm::Tool {
                name: d.name.clone(),
                description: d.description.clone(),
                parameters: d.parameters.clone(),
            })
            .collect()
    }

    /// Whether the agent should say something while `name` runs on a call, and what
    /// (`Some(None)`: a few words of its own that it is checking).
    pub fn waiting_line(&self, name: &str) -> Option<Option<&str>> {
        self.custom_tool(name)
            .filter(|t| t.speak_while_waiting)
            .map(|t| t.waiting_message.as_deref())
    }

    pub(crate) fn custom_tool(&self, name: &str) -> Option<&CustomTool> {
        self.custom.iter().find(|t| t.name == name)
    }

    pub(crate) fn handoff_tool(&self, name: &str) -> Option<&call_control::HandoffTool> {
        self.handoffs.iter().find(|h| h.name == name)
    }

    pub(crate) fn mcp_tool(&self, name: &str) -> Option<(&McpServer, &str)> {
        self.mcp
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, s, t)| (s.as_ref(), t.as_str()))
    }
}

impl Registry {
    /// The agent's enabled tools that exist on `channel`, in the agent's order: built-ins
    /// and the organization's custom tools. A custom tool that cannot be read is left out
    /// (logged), never a failed conversation.
    pub async fn toolset(
        &self,
        store: &Store,
        org: &OrgId,
        agent: &Agent,
        channel: Channel,
    ) -> Toolset {
        let wants_custom = agent
            .tools
            .iter()
            .any(|t| !switchboard_domain::agent::BUILTIN_TOOLS.contains(&t.as_str()));
        let custom = if wants_custom {
            match store.list_custom_tools(org).await {
                Ok(all) => all,
                Err(e) => {
                    tracing::warn!(error = %e, org_id = %org, "cannot read the custom tools; they are not offered");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        let mut set = Toolset::default();
        if agent.tools.iter().any(|t| t.starts_with(AGENT_PREFIX)) {
            self.add_mcp_tools(store, org, agent, &mut set).await;
        }
        for name in &agent.tools {
            if name.starts_with(AGENT_PREFIX) {
                continue;
            }
            if let Some(t) = custom.iter().find(|t| &t.name == name) {
                set.definitions.push(ToolDefinition {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    parameters: t.parameters.clone(),
                });
                set.custom.push(t.clone());
            } else if name == "collect_digits" && self.implemented(name, channel) {
                set.definitions
                    .push(call_control::collect_digits_definition(agent));
            } else if self.implemented(name, channel) {
                if let Some(d) = builtin::definition(name) {
                    set.definitions.push(d);
                }
            } else {
                tracing::debug!(tool = %name, channel = channel.as_str(), "tool not available on this channel; not offered");
            }
        }
        // Knowledge comes with its search tool, unless a tool of that name is already there.
        if !agent.knowledge.is_empty()
            && !set
                .definitions
                .iter()
                .any(|d| d.name == crate::knowledge::NAME)
        {
            set.definitions.push(crate::knowledge::definition());
        }
        if channel == Channel::Voice && !agent.handoffs.is_empty() {
            for (definition, tool) in call_control::handoff_tools(store, org, agent).await {
                set.definitions.push(definition);
                set.handoffs.push(tool);
            }
        }
        set
    }

    /// Offers the allowed tools of the MCP servers the agent lists; a server that cannot be
    /// read or reached is left out (logged).
    async fn add_mcp_tools(&self, store: &Store, org: &OrgId, agent: &Agent, set: &mut Toolset) {
        let servers = match store.list_mcp_servers(org).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, org_id = %org, "cannot read the MCP servers; their tools are not offered");
                return;
            }
        };
        for server in servers {
            if !agent
                .tools
                .iter()
                .any(|t| t.strip_prefix(AGENT_PREFIX) == Some(server.name.as_str()))
            {
                continue;
            }
            let tools = match self.mcp.tools(self.reach(store, org), &server, false).await {
                Ok(t) => {
                    if server.last_error.is_some() {
                        if let Err(e) = store
                            .record_mcp_server_status(org, &server.id, None, Timestamp::now())
                            .await
                        {
                            tracing::warn!(error = %e, "cannot record the MCP server's status");
                        }
                    }
                    t
                }
                Err(why) => {
                    tracing::warn!(org_id = %org, server = %server.name, reason = %why, "MCP server unavailable; its tools are left out of this conversation");
                    // Shown on the dashboard and in the API until a later attempt succeeds.
                    if let Err(e) = store
                        .record_mcp_server_status(org, &server.id, Some(&why), Timestamp::now())
                        .await
                    {
                        tracing::warn!(error = %e, "cannot record the MCP server's status");
                    }
                    continue;
                }
            };
            let server = Arc::new(server);
            for t in tools.iter().filter(|t| server.allows(&t.name)) {
                let Some(model_name) = model_tool_name(&server.name, &t.name) else {
                    tracing::warn!(server = %server.name, tool = %t.name, "MCP tool name unusable by models; left out");
                    continue;
                };
                set.definitions.push(ToolDefinition {
                    name: model_name.clone(),
                    description: t.description.as_deref().unwrap_or_default().to_owned(),
                    parameters: Value::Object((*t.input_schema).clone()),
                });
                set.mcp
                    .push((model_name, server.clone(), t.name.to_string()));
            }
        }
    }

    /// A server's tools as it lists them now (name, title, description, schema, and whether
    /// the allow-list lets agents use it); `Err` says why the server could not be used.
    pub async fn mcp_server_tools(
        &self,
        store: &Store,
        org: &OrgId,
        server: &McpServer,
    ) -> Result<Vec<Value>, String> {
        let tools = self.mcp.tools(self.reach(store, org), server, true).await?;
        Ok(tools
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "title": t.title,
                    "description": t.description,
                    "input_schema": *t.input_schema,
                    "allowed": server.allows(&t.name),
                    "model_name": model_tool_name(&server.name, &t.name),
                })
            })
            .collect())
    }
}
