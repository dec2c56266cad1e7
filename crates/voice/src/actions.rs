//! Staff actions on live calls, from the request to the call's task and back: the registry of
//! calls this instance holds, delivery (at once when the call is here; otherwise the holding
//! instance is woken by a database notification and also polls), and waiting for the task's
//! acknowledgement. The task carries the action out in `staff.rs`.

use crate::VoiceServices;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use switchboard_domain::call_action::{CallAction, NewCallAction};
use switchboard_domain::ids::{CallActionId, CallId, OrgId};
use switchboard_store::{ActionNews, StoreError};
use tokio::sync::{broadcast, mpsc, oneshot};

/// How often an instance looks for actions addressed to it besides the notifications.
const POLL: Duration = Duration::from_millis(500);
/// How often a requester looks for the acknowledgement besides the notifications.
const ACK_POLL: Duration = Duration::from_millis(100);

/// An action for a call's task.
#[derive(Debug)]
pub(crate) struct ActionCommand {
    pub(crate) id: CallActionId,
    pub(crate) request: NewCallAction,
    pub(crate) actor: String,
}

/// The calls whose tasks run in this instance, and acknowledgements as they happen.
#[derive(Debug)]
pub struct LiveCalls {
    calls: Mutex<HashMap<CallId, mpsc::Sender<ActionCommand>>>,
    acked: broadcast::Sender<CallActionId>,
    /// Calls whose task waits for Twilio to reconnect their stream (keys sent, digits.rs).
    parked: Mutex<HashMap<CallId, oneshot::Sender<crate::digits::Handover>>>,
}

impl Default for LiveCalls {
    fn default() -> Self {
        LiveCalls {
            calls: Mutex::default(),
            acked: broadcast::channel(256).0,
            parked: Mutex::default(),
        }
    }
}

impl LiveCalls {
    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<CallId, mpsc::Sender<ActionCommand>>> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A call's task starts taking actions.
    pub(crate) fn register(&self, call: &CallId) -> mpsc::Receiver<ActionCommand> {
        let (tx, rx) = mpsc::channel(32);
        self.calls().insert(call.clone(), tx);
        rx
    }

    /// A call's task has ended.
    pub(crate) fn unregister(&self, call: &CallId) {
        self.calls().remove(call);
    }

    /// Whether this instance runs the call's task.
    pub fn holds(&self, call: &CallId) -> bool {
        self.calls().contains_key(call)
    }

    /// The call's task waits for its next stream: a stream that arrives for it here is
    /// handed over through the receiver.
    pub(crate) fn park(&self, call: &CallId) -> oneshot::Receiver<crate::digits::Handover> {
        let (tx, rx) = oneshot::channel();
        self.parked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(call.clone(), tx);
        rx
    }

    /// The waiting task of `call`, taken (once).
    pub(crate) fn unpark(&self, call: &CallId) -> Option<oneshot::Sender<crate::digits::Handover>> {
        self.parked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(call)
    }

    /// Tells waiters that an action was acknowledged.
    pub(crate) fn acknowledged(&self, id: &CallActionId) {
        let _ = self.acked.send(id.clone());
    }
}

/// Delivers a recorded action to its call's task in this instance (once, whichever of the
/// requester, the notification or the poll gets there first). An action for a call this
/// instance no longer runs is failed with the reason.
pub async fn deliver(
    svc: &VoiceServices,
    org: &OrgId,
    id: &CallActionId,
    call: &CallId,
) -> Result<(), StoreError> {
    let now = svc.clock.now();
    if !svc.store.mark_call_action_delivered(org, id, now).await? {
        return Ok(());
    }
    let action = svc.store.get_call_action(org, id).await?;
    let request: Result<NewCallAction, _> = serde_json::from_value(action.request.clone());
    let sender = svc.live.calls().get(call).cloned();
    let refused = match (request, sender) {
        (Err(e), _) => Some((
            "bad_request",
            format!("the stored action cannot be read: {e}"),
        )),
        (Ok(_), None) => Some((
            "call_not_live",
            "the call ended before the action could be carried out".to_owned(),
        )),
        (Ok(request), Some(tx)) => {
            let cmd = ActionCommand {
                id: id.clone(),
                request,
                actor: action.actor,
            };
            match tx.try_send(cmd) {
                Ok(()) => None,
                Err(mpsc::error::TrySendError::Full(_)) => Some((
                    "busy",
                    "too many actions are waiting for this call; try again".to_owned(),
                )),
                Err(mpsc::error::TrySendError::Closed(_)) => Some((
                    "call_not_live",
                    "the call ended before the action could be carried out".to_owned(),
                )),
            }
        }
    };
    if let Some((code, message)) = refused {
        let result = serde_json::json!({"ok": false, "error": {"code": code, "message": message}});
        svc.store
            .finish_call_action(org, id, false, &result, svc.clock.now())
            .await?;
        svc.live.acknowledged(id);
    }
    Ok(())
}

/// Waits (up to `limit`) for the call to carry the action out; answers the action as it
/// stands then (still `pending` when the limit passed).
pub async fn wait_acknowledged(
    svc: &VoiceServices,
    org: &OrgId,
    id: &CallActionId,
    limit: Duration,
) -> Result<CallAction, StoreError> {
    let mut acked = svc.live.acked.subscribe();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let action = svc.store.get_call_action(org, id).await?;
        if action.status != "pending" || tokio::time::Instant::now() >= deadline {
            return Ok(action);
        }
        // Woken by an acknowledgement here or, through the dispatcher's notification, on
        // another instance; polling besides.
        let _ = tokio::time::timeout_at(
            deadline.min(tokio::time::Instant::now() + ACK_POLL),
            async {
                loop {
                    match acked.recv().await {
                        Ok(done) if &done == id => return,
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => {
                            return std::future::pending().await;
                        }
                    }
                }
            },
        )
        .await;
    }
}

/// Delivers the actions addressed to this instance until `until` resolves: woken by the
/// database's notification (PostgreSQL), and polling besides.
pub async fn run_dispatcher(svc: VoiceServices, until: impl Future<Output = ()> + Send) {
    let mut signal = match svc.store.call_action_signal().await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for call actions; polling only");
            None
        }
    };
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(until);
    let instance = svc.instance_id.to_string();
    loop {
        tokio::select! {
            _ = &mut until => return,
            news = async {
                match signal.as_mut() {
                    Some(s) => s.next(&instance).await,
                    None => std::future::pending().await,
                }
            } => {
                if let ActionNews::Done(id) = news {
                    // Acknowledged on another instance: wake a requester waiting here.
                    svc.live.acknowledged(&id);
                    continue;
                }
            }
            _ = tick.tick() => {}
        }
        let due = match svc.store.undelivered_call_actions(&instance).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the call actions addressed here");
                continue;
            }
        };
        for a in due {
            if let Err(e) = deliver(&svc, &a.org, &a.id, &a.call_id).await {
                tracing::warn!(error = %e, action_id = %a.id, "cannot deliver a call action");
            }
        }
    }
}
