//! External MCP servers an organization registers so its agents can use their tools. An
//! agent lists a server in its `tools` as `mcp:<server name>`; the model then sees the
//! server's allowed tools as `mcp__<server name>__<tool>`, so they never collide with
//! built-in or custom tools.

use crate::custom_tool::{ToolHeaders, REDACTED};
use crate::ids::McpServerId;
use crate::{Secret, Timestamp, ValidationError};
use serde::{Deserialize, Serialize};

/// How an agent's `tools` names a server.
pub const AGENT_PREFIX: &str = "mcp:";
/// How the model's tool names start.
pub const TOOL_PREFIX: &str = "mcp__";

/// How Switchboard authenticates to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum McpAuth {
    /// No credentials.
    None,
    /// One static header, e.g. `Authorization: Bearer ...` (the value is a secret).
    Header {
        /// Header name.
        name: String,
        /// Header value; shown as `[redacted]`.
        #[schema(value_type = String)]
        #[serde(serialize_with = "redacted", deserialize_with = "secret")]
        value: Secret,
    },
    /// OAuth 2.1 as the MCP authorization specification describes it: an admin connects the
    /// server from the dashboard (discovery, dynamic client registration unless a client id
    /// is given, PKCE, consent at the server's authorization server); Switchboard keeps the
    /// tokens, refreshes them before they expire and when the server answers 401.
    Oauth {
        /// Scopes to ask for; empty asks for what the server's metadata advertises.
        #[serde(default)]
        scopes: Vec<String>,
        /// A client id registered with the authorization server beforehand; absent uses
        /// dynamic client registration.
        #[serde(default)]
        client_id: Option<String>,
        /// That client's secret, when it has one; shown as `[redacted]`.
        #[schema(value_type = Option<String>)]
        #[serde(
            default,
            serialize_with = "redacted_opt",
            deserialize_with = "secret_opt"
        )]
        client_secret: Option<Secret>,
    },
}

fn redacted_opt<S: serde::Serializer>(v: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(_) => s.serialize_str(REDACTED),
        None => s.serialize_none(),
    }
}

fn secret_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Option::<String>::deserialize(d).map(|v| v.filter(|v| !v.is_empty()).map(Secret::new))
}

/// Where an OAuth server's connection stands (output only).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct McpOAuthStatus {
    /// `connected` (tokens held), or `not_connected` (never connected, disconnected, the
    /// server's URL or credentials changed, or the authorization server refused to refresh:
    /// an admin connects it again from the dashboard).
    pub state: String,
    /// When an admin last completed the flow.
    pub connected_at: Option<Timestamp>,
    /// When the current access token expires (it is refreshed before then).
    pub access_expires_at: Option<Timestamp>,
}

impl McpOAuthStatus {
    /// No tokens held.
    pub fn not_connected() -> McpOAuthStatus {
        McpOAuthStatus {
            state: "not_connected".into(),
            connected_at: None,
            access_expires_at: None,
        }
    }
}

fn redacted<S: serde::Serializer>(_: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(REDACTED)
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    String::deserialize(d).map(Secret::new)
}

/// A registered server.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct McpServer {
    /// Id.
    pub id: McpServerId,
    /// Short name: the namespace of its tools (`mcp__<name>__<tool>`); agents list it as
    /// `mcp:<name>`.
    pub name: String,
    /// Its Streamable HTTP endpoint.
    pub url: String,
    /// `streamable_http` (the only transport).
    pub transport: String,
    /// Credentials (values never shown).
    pub auth: McpAuth,
    /// The server's tools agents may use (exact names; `["*"]` allows every tool).
    pub allowed_tools: Vec<String>,
    /// The OAuth connection, for `oauth` servers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth: Option<McpOAuthStatus>,
    /// Why the last conversation that wanted its tools could not get them (cleared by a
    /// later success).
    pub last_error: Option<String>,
    /// When that was.
    pub last_error_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// The body of `POST /api/v1/mcp-servers`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMcpServer {
    /// 1 to 32 lowercase letters, digits and `_`, starting with a letter; unique in the
    /// organization.
    pub name: String,
    /// `https://...` (public addresses only unless `SWITCHBOARD_TOOLS_ALLOW_PRIVATE`).
    pub url: String,
    /// `streamable_http` (default).
    #[serde(default)]
    pub transport: Option<String>,
    /// `{"type": "none"}` (default), `{"type": "header", "name", "value"}` or
    /// `{"type": "oauth", "scopes", "client_id", "client_secret"}` (connect it from the
    /// dashboard afterwards).
    #[serde(default)]
    pub auth: Option<McpAuth>,
    /// The tools agents may use; required (`["*"]` for all).
    pub allowed_tools: Vec<String>,
}

/// The body of `PATCH /api/v1/mcp-servers/{id}`: the fields given change. An `auth` header
/// value of `[redacted]` keeps the current value.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpServerPatch {
    /// New name (agents that list the server follow).
    pub name: Option<String>,
    /// New URL.
    pub url: Option<String>,
    /// New credentials.
    pub auth: Option<McpAuth>,
    /// New allow-list.
    pub allowed_tools: Option<Vec<String>>,
}

impl McpServer {
    /// A new server from validated input.
    pub fn create(
        input: NewMcpServer,
        allow_private: bool,
        now: Timestamp,
    ) -> Result<McpServer, ValidationError> {
        let auth = input.auth.unwrap_or(McpAuth::None);
        let s = McpServer {
            id: McpServerId::generate(),
            name: input.name,
            url: input.url,
            transport: input.transport.unwrap_or_else(|| "streamable_http".into()),
            oauth: matches!(auth, McpAuth::Oauth { .. }).then(McpOAuthStatus::not_connected),
            auth,
            allowed_tools: input.allowed_tools,
            last_error: None,
            last_error_at: None,
            created_at: now,
            updated_at: now,
        };
        s.validate(allow_private)?;
        Ok(s)
    }

    /// This server with `patch` applied, validated.
    pub fn apply(
        mut self,
        patch: McpServerPatch,
        allow_private: bool,
        now: Timestamp,
    ) -> Result<McpServer, ValidationError> {
        if let Some(v) = patch.name {
            self.name = v;
        }
        if let Some(v) = patch.url {
            self.url = v;
        }
        if let Some(v) = patch.auth {
            self.auth = match (v, &self.auth) {
                (McpAuth::Header { name, value }, McpAuth::Header { value: old, .. })
                    if value.expose() == REDACTED =>
                {
                    McpAuth::Header {
                        name,
                        value: old.clone(),
                    }
                }
                (
                    McpAuth::Oauth {
                        scopes,
                        client_id,
                        client_secret: Some(secret),
                    },
                    McpAuth::Oauth {
                        client_secret: old, ..
                    },
                ) if secret.expose() == REDACTED => McpAuth::Oauth {
                    scopes,
                    client_id,
                    client_secret: old.clone(),
                },
                (v, _) => v,
            };
        }
        if let Some(v) = patch.allowed_tools {
            self.allowed_tools = v;
        }
        self.updated_at = now;
        self.validate(allow_private)?;
        Ok(self)
    }

    /// Checks every field.
    pub fn validate(&self, allow_private: bool) -> Result<(), ValidationError> {
        if !is_server_name(&self.name) {
            return Err(ValidationError::new(
                "name",
                "must be 1 to 32 lowercase letters, digits and `_`, starting with a letter",
            ));
        }
        crate::webhooks::validate_target_url(
            &self.url,
            allow_private,
            "MCP servers",
            "SWITCHBOARD_TOOLS_ALLOW_PRIVATE",
        )?;
        if self.transport != "streamable_http" {
            return Err(ValidationError::new(
                "transport",
                "must be `streamable_http` (the only transport supported)",
            ));
        }
        if let McpAuth::Header { name, value } = &self.auth {
            let headers = ToolHeaders(vec![(name.clone(), value.clone())]);
            headers
                .check()
                .map_err(|e| ValidationError::new("auth", e.message))?;
        }
        if let McpAuth::Oauth {
            scopes,
            client_id,
            client_secret,
        } = &self.auth
        {
            if scopes.len() > 20
                || scopes
                    .iter()
                    .any(|s| s.is_empty() || s.len() > 200 || !s.bytes().all(is_scope_char))
            {
                return Err(ValidationError::new(
                    "auth.scopes",
                    "at most 20 scopes, each 1 to 200 printable characters without spaces or quotes",
                ));
            }
            if let Some(id) = client_id {
                if id.is_empty() || id.len() > 500 || id.chars().any(char::is_control) {
                    return Err(ValidationError::new(
                        "auth.client_id",
                        "must be 1 to 500 characters",
                    ));
                }
            }
            if client_secret.is_some() && client_id.is_none() {
                return Err(ValidationError::new(
                    "auth.client_secret",
                    "a client secret needs the client id it belongs to",
                ));
            }
        }
        if self.allowed_tools.len() > 200 {
            return Err(ValidationError::new("allowed_tools", "at most 200 tools"));
        }
        for (i, t) in self.allowed_tools.iter().enumerate() {
            let ok = t == "*"
                || (!t.is_empty()
                    && t.len() <= 128
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)));
            if !ok {
                return Err(ValidationError::new(
                    format!("allowed_tools[{i}]"),
                    "must be a tool name (letters, digits, `_`, `-`, `.`) or `*`",
                ));
            }
        }
        Ok(())
    }

    /// Whether agents may use the server's tool `name`.
    pub fn allows(&self, name: &str) -> bool {
        self.allowed_tools.iter().any(|t| t == "*" || t == name)
    }
}

/// RFC 6749 `scope-token` characters.
fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)
}

impl McpAuth {
    /// Whether tokens obtained under `self` stay valid under `other` (the same kind of OAuth
    /// with the same client and scopes).
    pub fn keeps_oauth_tokens(&self, other: &McpAuth) -> bool {
        match (self, other) {
            (
                McpAuth::Oauth {
                    scopes,
                    client_id,
                    client_secret,
                },
                McpAuth::Oauth {
                    scopes: s2,
                    client_id: c2,
                    client_secret: k2,
                },
            ) => {
                scopes == s2
                    && client_id == c2
                    && client_secret.as_ref().map(Secret::expose) == k2.as_ref().map(Secret::expose)
            }
            _ => false,
        }
    }
}

/// Whether `name` has the shape of a server name.
pub fn is_server_name(name: &str) -> bool {
    let mut b = name.bytes();
    !name.is_empty()
        && name.len() <= 32
        && b.next().is_some_and(|c| c.is_ascii_lowercase())
        && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        && !name.contains("__")
}

/// The model's name for a server's tool; `None` when the result would be too long for
/// models (64 characters).
pub fn model_tool_name(server: &str, tool: &str) -> Option<String> {
    let name = format!("{TOOL_PREFIX}{server}__{tool}");
    let ok = name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_values_and_allow_lists() {
        let input: NewMcpServer = serde_json::from_value(json!({"name": "crm", "url": "https://crm.example.com/mcp",
            "auth": {"type": "header", "name": "Authorization", "value": "Bearer k"}, "allowed_tools": ["lookup"]}))
        .expect("input");
        let s = McpServer::create(input, false, Timestamp::now()).expect("valid");
        let shown = serde_json::to_value(&s).expect("json");
        assert_eq!(shown["auth"]["value"], "[redacted]");
        assert!(!shown.to_string().contains("Bearer k"));
        assert!(s.allows("lookup") && !s.allows("delete_all"));
        let patch: McpServerPatch = serde_json::from_value(
            json!({"auth": {"type": "header", "name": "Authorization", "value": "[redacted]"}}),
        )
        .expect("patch");
        let s = s.apply(patch, false, Timestamp::now()).expect("kept");
        match &s.auth {
            McpAuth::Header { value, .. } => assert_eq!(value.expose(), "Bearer k"),
            other => panic!("lost the header: {other:?}"),
        }
        // OAuth: the client secret is redacted and kept the same way; a secret needs its
        // client id; scopes are RFC 6749 scope tokens.
        let to_oauth: McpServerPatch = serde_json::from_value(json!({"auth": {"type": "oauth",
            "scopes": ["crm.read"], "client_id": "abc", "client_secret": "sh-secret"}}))
        .expect("patch");
        let s = s.apply(to_oauth, false, Timestamp::now()).expect("oauth");
        let shown = serde_json::to_value(&s.auth).expect("json");
        assert_eq!(shown["client_secret"], "[redacted]");
        let before = s.auth.clone();
        let same: McpServerPatch = serde_json::from_value(json!({"auth": {"type": "oauth",
            "scopes": ["crm.read"], "client_id": "abc", "client_secret": "[redacted]"}}))
        .expect("patch");
        let s = s.apply(same, false, Timestamp::now()).expect("kept");
        assert!(before.keeps_oauth_tokens(&s.auth));
        let other_scopes = McpAuth::Oauth {
            scopes: vec!["crm.write".into()],
            client_id: Some("abc".into()),
            client_secret: None,
        };
        assert!(!s.auth.keeps_oauth_tokens(&other_scopes));
        assert!(!McpAuth::None.keeps_oauth_tokens(&McpAuth::None));
        for (auth, field) in [
            (
                json!({"type": "oauth", "client_secret": "x"}),
                "auth.client_secret",
            ),
            (json!({"type": "oauth", "scopes": ["a b"]}), "auth.scopes"),
            (
                json!({"type": "oauth", "scopes": ["say\"hi"]}),
                "auth.scopes",
            ),
            (json!({"type": "oauth", "client_id": ""}), "auth.client_id"),
        ] {
            let patch: McpServerPatch =
                serde_json::from_value(json!({ "auth": auth })).expect("patch");
            let err = s
                .clone()
                .apply(patch, false, Timestamp::now())
                .expect_err("refused");
            assert_eq!(err.field, field, "{auth}");
        }
        for bad in [
            "Crm",
            "1crm",
            "a__b",
            "",
            "this_name_is_far_too_long_for_a_server",
        ] {
            assert!(!is_server_name(bad), "{bad}");
        }
        assert_eq!(
            model_tool_name("crm", "lookup").as_deref(),
            Some("mcp__crm__lookup")
        );
        assert_eq!(model_tool_name("crm", "a.b"), None);
    }
}
