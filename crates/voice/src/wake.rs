//! What a live call waits for, and the writes it owes (issue 22).
//!
//! One poll looks at the Twilio socket, the model socket, running tools, staff actions, the
//! drain signal and a single timer that stands for all of the call's deadlines. Nothing is
//! rebuilt per message: the timer is re-armed only when the earliest deadline moves, and the
//! drain signal (shared by every call) is polled only when it fires.
//!
//! The two hot writes (caller audio to the model, agent audio and its mark to Twilio) are fed
//! without a flush; the socket is flushed once nothing else is ready to read, so a wake-up that
//! finds several messages costs one write per socket instead of one per message, and a single
//! message still goes out before the task sleeps (no latency added). Every other send
//! (`send_model`, `send_twilio_frames`) flushes at once, and a wake-up that may wait on
//! something slow (a tool's outcome, a staff action, a timer) flushes what is owed first.

use crate::actions::ActionCommand;
use crate::live::{Live, Step, ToolFuture};
use crate::session::{Exit, MediaSocket, WsFrame};
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{Sink, SinkExt, StreamExt};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use switchboard_domain::call::EndReason;
use switchboard_domain::Timestamp;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::{Error as ModelError, Message as ModelMessage};

/// How often the call's duration limit is checked (it is in whole seconds).
const LIMIT_CHECK: Duration = Duration::from_secs(1);

/// What woke the call.
pub(crate) enum Wake {
    Twilio(Option<Result<WsFrame, String>>),
    Model(Option<Result<ModelMessage, ModelError>>),
    Tool(<ToolFuture as Future>::Output),
    Action(ActionCommand),
    /// The server is going away.
    Stop,
    /// The earliest deadline passed.
    Timer(Due),
    /// A flush did not complete at once: wait for it, bounded.
    Blocked(Peer),
    /// A flush failed.
    WriteFailed(String),
}

/// One side of the call.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Peer {
    Twilio,
    Model,
}

/// The call's deadlines, one of which the timer is armed for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Due {
    /// Poll the answering-machine result (an outbound call holding the agent).
    Amd,
    /// The model session is due for replacement.
    Rollover,
    /// Keys pressed outside a collection go to the model.
    Keys,
    /// Check the call's maximum duration.
    Limit,
    /// The model session did not confirm its configuration in time.
    Setup,
    /// The agent did not finish speaking in time after ending the call.
    Ending,
}

/// The deadlines that are not fields of [`Live`], and the timer armed for the earliest.
pub(crate) struct Timers {
    pub(crate) setup: Instant,
    pub(crate) next_limit_check: Instant,
    pub(crate) next_amd_check: Instant,
    timer: Pin<Box<Sleep>>,
    armed: Due,
    /// The drain signal, as a set of one: polled only once its waker fired.
    stopping: FuturesUnordered<BoxFuture<'static, ()>>,
}

impl Timers {
    pub(crate) fn new(now: Instant, setup_timeout: Duration, stop: watch::Receiver<bool>) -> Self {
        let stopping = FuturesUnordered::new();
        stopping.push(Box::pin(drain_requested(stop)) as BoxFuture<'static, ()>);
        Timers {
            setup: now + setup_timeout,
            next_limit_check: now + LIMIT_CHECK,
            // The first look at the answering-machine result is at once.
            next_amd_check: now,
            timer: Box::pin(tokio::time::sleep_until(now + LIMIT_CHECK)),
            armed: Due::Limit,
            stopping,
        }
    }

    /// Re-arms the timer when the earliest deadline moved.
    fn arm(&mut self, at: Instant, due: Due) {
        self.armed = due;
        if self.timer.deadline() != at {
            self.timer.as_mut().reset(at);
        }
    }

    /// A limit check happened at `now`: the next one is a second later.
    pub(crate) fn limit_checked(&mut self, now: Instant) {
        self.next_limit_check = now + LIMIT_CHECK;
    }
}

/// Resolves when the server asks live calls to end (or the signal's sender is gone).
async fn drain_requested(mut stop: watch::Receiver<bool>) {
    loop {
        if stop.changed().await.is_err() || *stop.borrow() {
            return;
        }
    }
}

impl Live {
    /// The earliest of the call's deadlines.
    fn next_due(&self, t: &Timers) -> (Instant, Due) {
        let mut best = (t.next_limit_check, Due::Limit);
        let mut consider = |at: Option<Instant>, due: Due| {
            if let Some(at) = at.filter(|at| *at < best.0) {
                best = (at, due);
            }
        };
        consider(self.amd_pending.then_some(t.next_amd_check), Due::Amd);
        consider(
            (!self.rollover_due).then_some(self.session_started + self.svc.config.session_limit),
            Due::Rollover,
        );
        consider(self.keys_due, Due::Keys);
        consider((!self.confirmed).then_some(t.setup), Due::Setup);
        consider(self.ending.as_ref().map(|(_, at)| *at), Due::Ending);
        best
    }

    /// Waits for the next thing to handle; flushes what is owed once nothing is ready.
    pub(crate) async fn wait(&mut self, socket: &mut MediaSocket, t: &mut Timers) -> Wake {
        let (at, due) = self.next_due(t);
        t.arm(at, due);
        // Neither socket may starve the other: who is looked at first alternates.
        self.model_first = !self.model_first;
        let model_first = self.model_first;
        std::future::poll_fn(|cx| {
            for side in 0..2 {
                if (side == 0) == model_first {
                    if let Poll::Ready(m) = self.model.poll_next_unpin(cx) {
                        return Poll::Ready(Wake::Model(m));
                    }
                } else if let Poll::Ready(f) = socket.poll_next_unpin(cx) {
                    return Poll::Ready(Wake::Twilio(f));
                }
            }
            if !self.tools.is_empty() {
                if let Poll::Ready(Some(done)) = self.tools.poll_next_unpin(cx) {
                    return Poll::Ready(Wake::Tool(done));
                }
            }
            if let Some(rx) = self.actions.as_mut() {
                if let Poll::Ready(Some(cmd)) = rx.poll_recv(cx) {
                    return Poll::Ready(Wake::Action(cmd));
                }
            }
            if let Poll::Ready(Some(())) = t.stopping.poll_next_unpin(cx) {
                return Poll::Ready(Wake::Stop);
            }
            if t.timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Timer(t.armed));
            }
            // Nothing more to read now: what the messages above caused goes out together.
            if self.owed.model {
                match self.model.poll_flush_unpin(cx) {
                    Poll::Ready(Ok(())) => self.owed.model = false,
                    Poll::Ready(Err(e)) => return Poll::Ready(Wake::WriteFailed(e.to_string())),
                    Poll::Pending => return Poll::Ready(Wake::Blocked(Peer::Model)),
                }
            }
            if self.owed.twilio {
                match socket.as_mut().poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.owed.twilio = false,
                    Poll::Ready(Err(e)) => return Poll::Ready(Wake::WriteFailed(e)),
                    Poll::Pending => return Poll::Ready(Wake::Blocked(Peer::Twilio)),
                }
            }
            Poll::Pending
        })
        .await
    }

    /// A flush that could not complete at once, bounded like every send.
    pub(crate) async fn finish_flush(&mut self, socket: &mut MediaSocket, peer: Peer) -> Step {
        let limit = self.svc.config.send_timeout;
        let flushed = match peer {
            Peer::Model => {
                let r = tokio::time::timeout(limit, self.model.flush()).await;
                bounded(r, &mut self.stuck, "the model")
            }
            Peer::Twilio => {
                let r = tokio::time::timeout(limit, socket.flush()).await;
                bounded(r, &mut self.stuck, "Twilio")
            }
        };
        match flushed {
            Ok(()) => {
                match peer {
                    Peer::Model => self.owed.model = false,
                    Peer::Twilio => self.owed.twilio = false,
                }
                Step::Go
            }
            Err(e) => Step::Exit(Exit::Fail(EndReason::ModelDisconnected, e)),
        }
    }

    /// Flushes what the hot paths fed, before anything that may wait.
    pub(crate) async fn flush_owed(&mut self, socket: &mut MediaSocket) -> Step {
        if self.owed.model {
            if let Step::Exit(e) = self.finish_flush(socket, Peer::Model).await {
                return Step::Exit(e);
            }
        }
        if self.owed.twilio {
            return self.finish_flush(socket, Peer::Twilio).await;
        }
        Step::Go
    }

    /// The deadline the timer was armed for has passed.
    pub(crate) async fn on_due(
        &mut self,
        due: Due,
        t: &mut Timers,
        started: Timestamp,
        max_ms: i64,
    ) -> Step {
        let now = Instant::now();
        match due {
            Due::Amd => {
                t.next_amd_check = now + crate::answer::AMD_POLL;
                self.check_answered_by().await
            }
            Due::Rollover => {
                tracing::info!("the model session is due for replacement");
                self.rollover_due = true;
                Step::Go
            }
            Due::Keys => self.flush_keys().await,
            Due::Limit => {
                t.limit_checked(now);
                if self.svc.clock.now().millis() - started.millis() >= max_ms {
                    Step::Exit(Exit::Fail(
                        EndReason::MaxDuration,
                        format!(
                            "the agent's maximum call duration ({} s) was reached",
                            self.ready.agent.max_call_duration_seconds
                        ),
                    ))
                } else {
                    Step::Go
                }
            }
            Due::Setup => Step::Exit(Exit::Fail(
                EndReason::ModelError,
                "the model session did not confirm its configuration in time".into(),
            )),
            Due::Ending => {
                tracing::warn!(
                    response_active = self.response_active,
                    awaiting_response = self.awaiting_response,
                    tools_running = self.batch_pending,
                    audible = self.playback.audible(),
                    "agent did not finish speaking in time; ending now"
                );
                Step::Exit(self.ending_exit())
            }
        }
    }

    /// Queues a message for the model; [`Live::wait`] flushes it.
    pub(crate) async fn feed_model(&mut self, text: String) -> Result<(), String> {
        let limit = self.svc.config.send_timeout;
        let fed =
            tokio::time::timeout(limit, self.model.feed(ModelMessage::Text(text.into()))).await;
        self.owed.model = true;
        bounded(fed, &mut self.stuck, "the model")
    }

    /// Queues frames for Twilio; [`Live::wait`] flushes them.
    pub(crate) async fn feed_twilio<S>(
        &mut self,
        socket: &mut S,
        frames: [String; 2],
    ) -> Result<(), String>
    where
        S: Sink<String> + Unpin,
        <S as Sink<String>>::Error: std::fmt::Display,
    {
        let limit = self.svc.config.send_timeout;
        let feed = async {
            for f in frames {
                socket.feed(f).await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        };
        let fed = tokio::time::timeout(limit, feed).await;
        self.owed.twilio = true;
        bounded(fed, &mut self.stuck, "Twilio")
    }
}

/// The outcome of a send bounded by the send timeout: one that timed out names `peer` as the
/// one that stopped reading.
pub(crate) fn bounded<E: std::fmt::Display>(
    outcome: Result<Result<(), E>, tokio::time::error::Elapsed>,
    stuck: &mut Option<&'static str>,
    peer: &'static str,
) -> Result<(), String> {
    match outcome {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => {
            *stuck = Some(peer);
            let name = if peer == "Twilio" { peer } else { "model" };
            Err(format!("{name} send timed out"))
        }
    }
}

/// Writes fed but not yet flushed, per socket.
#[derive(Debug, Default)]
pub(crate) struct Owed {
    pub(crate) model: bool,
    pub(crate) twilio: bool,
}
