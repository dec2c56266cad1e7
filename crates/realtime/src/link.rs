//! The model side of a call as the call actor sees it: either OpenAI Realtime's WebSocket or a
//! session running in this process (the cascaded pipeline) that speaks the same events over a
//! pair of channels. The actor reads and writes both alike.

use crate::client::ModelSocket;
use futures_channel::mpsc;
use futures_util::{Sink, Stream};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Events a local session may have queued before the actor reads them (a turn's worth of
/// audio deltas); a session that outruns the actor waits.
const LOCAL_BUFFER: usize = 256;

/// The actor's end of a model session.
pub enum ModelLink {
    /// OpenAI Realtime over WebSocket.
    Socket(Box<ModelSocket>),
    /// A session in this process: client events go out on `to`, server events come in on
    /// `from`, both as the Realtime protocol's JSON text.
    Local {
        /// Client events to the session.
        to: mpsc::Sender<String>,
        /// Server events from the session.
        from: mpsc::Receiver<String>,
    },
}

/// The session's end of a local link: the actor's client events in, server events out.
pub struct LocalPeer {
    /// Client events from the actor (ends when the actor closes the link).
    pub events: mpsc::Receiver<String>,
    /// Server events to the actor.
    pub replies: mpsc::Sender<String>,
}

impl ModelLink {
    /// A link to a session in this process, and the session's end of it.
    pub fn local() -> (ModelLink, LocalPeer) {
        let (to, events) = mpsc::channel(LOCAL_BUFFER);
        let (replies, from) = mpsc::channel(LOCAL_BUFFER);
        (ModelLink::Local { to, from }, LocalPeer { events, replies })
    }
}

impl From<ModelSocket> for ModelLink {
    fn from(socket: ModelSocket) -> Self {
        ModelLink::Socket(Box::new(socket))
    }
}

/// A local session that went away reads like a closed socket.
fn gone() -> WsError {
    WsError::ConnectionClosed
}

impl Stream for ModelLink {
    type Item = Result<Message, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut() {
            ModelLink::Socket(s) => Pin::new(s.as_mut()).poll_next(cx),
            ModelLink::Local { from, .. } => Pin::new(from)
                .poll_next(cx)
                .map(|m| m.map(|text| Ok(Message::Text(text.into())))),
        }
    }
}

impl Sink<Message> for ModelLink {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        match self.get_mut() {
            ModelLink::Socket(s) => Pin::new(s.as_mut()).poll_ready(cx),
            ModelLink::Local { to, .. } => to.poll_ready(cx).map_err(|_| gone()),
        }
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
        match self.get_mut() {
            ModelLink::Socket(s) => Pin::new(s.as_mut()).start_send(item),
            ModelLink::Local { to, .. } => match item {
                Message::Text(t) => to.start_send(t.to_string()).map_err(|_| gone()),
                // The session ends when its event channel closes.
                Message::Close(_) => {
                    to.close_channel();
                    Ok(())
                }
                _ => Ok(()),
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        match self.get_mut() {
            ModelLink::Socket(s) => Pin::new(s.as_mut()).poll_flush(cx),
            ModelLink::Local { to, .. } => Pin::new(to).poll_flush(cx).map_err(|_| gone()),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        match self.get_mut() {
            ModelLink::Socket(s) => Pin::new(s.as_mut()).poll_close(cx),
            ModelLink::Local { to, .. } => {
                to.close_channel();
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl ModelLink {
    /// Closes the link (a WebSocket close frame, or the local session's event channel).
    pub async fn close(&mut self) -> Result<(), WsError> {
        match self {
            ModelLink::Socket(s) => s.close(None).await,
            ModelLink::Local { to, .. } => {
                to.close_channel();
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};

    #[tokio::test]
    async fn a_local_link_carries_text_both_ways_and_closes() {
        let (mut link, mut peer) = ModelLink::local();
        link.send(Message::Text("hello".into()))
            .await
            .expect("send");
        assert_eq!(peer.events.next().await.as_deref(), Some("hello"));
        peer.replies.send("back".into()).await.expect("reply");
        match link.next().await {
            Some(Ok(Message::Text(t))) => assert_eq!(t.as_str(), "back"),
            other => panic!("unexpected {other:?}"),
        }
        link.close().await.expect("close");
        assert_eq!(peer.events.next().await, None);
        drop(peer);
        assert!(link.next().await.is_none());
    }
}
