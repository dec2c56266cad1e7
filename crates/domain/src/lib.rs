//! Switchboard's domain: ids, validated newtypes, entities and pure rules. No I/O lives here.

pub mod agent;
pub mod analysis;
pub mod analytics;
pub mod assistant;
pub mod auth;
pub mod call;
pub mod call_action;
pub mod campaign;
pub mod carrier;
pub mod custom_tool;
pub mod entities;
pub mod error;
pub mod ids;
pub mod knowledge;
pub mod mcp_server;
pub mod messaging;
pub mod numbering;
pub mod oauth;
pub mod schedule;
pub mod secret;
pub mod settings;
pub mod team;
pub mod time;
pub mod transfer;
pub mod values;
pub mod webhooks;

pub use error::ValidationError;
pub use secret::Secret;
pub use time::{Clock, Timestamp};
