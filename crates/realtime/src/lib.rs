//! Speech-to-speech model sessions. OpenAI Realtime over WebSocket, in the GA event shape by
//! default and the older beta shape on request. The call session sees one normalised set of
//! server events whichever shape is on the wire.

pub mod client;
pub mod events;
pub mod link;

pub use client::{connect, ConnectError, ModelSocket};
pub use events::{ServerEvent, SessionConfig, Shape, ToolSpec};
pub use link::{LocalPeer, ModelLink};
