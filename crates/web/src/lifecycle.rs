//! The instance's lifecycle: serving, draining (no new calls, live calls go on), closing (the
//! HTTP server stops; long-lived streams end so they do not hold it), and the heartbeat that
//! tells other instances this one is alive and whether it takes calls.

use std::sync::Arc;
use std::time::Duration;
use switchboard_domain::{Clock, Timestamp};
use switchboard_store::Store;
use tokio::sync::watch;

/// Shared lifecycle flags (cheap to clone).
#[derive(Debug, Clone)]
pub struct Lifecycle {
    id: Arc<str>,
    draining: Arc<watch::Sender<bool>>,
    closing: Arc<watch::Sender<bool>>,
    lease: Duration,
}

impl Lifecycle {
    /// A serving instance called `id`, whose heartbeat lease is `lease`.
    pub fn new(id: Arc<str>, lease: Duration) -> Lifecycle {
        Lifecycle {
            id,
            draining: Arc::new(watch::channel(false).0),
            closing: Arc::new(watch::channel(false).0),
            lease,
        }
    }

    /// This instance's id in the registry.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How long a heartbeat counts.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Starts draining; `false` when it had already started.
    pub fn begin_drain(&self) -> bool {
        !self.draining.send_replace(true)
    }

    /// Whether the instance is draining (or closing).
    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Resolves once draining has started.
    pub async fn drain_started(&self) {
        let mut rx = self.draining.subscribe();
        // The sender lives in `self`, so the channel cannot close while this waits.
        let _ = rx.wait_for(|d| *d).await;
    }

    /// Stops the HTTP server: event streams end and in-flight requests finish.
    pub fn close(&self) {
        self.draining.send_replace(true);
        self.closing.send_replace(true);
    }

    /// Resolves once the instance is closing (for long-lived responses such as SSE).
    pub async fn closing(&self) {
        let mut rx = self.closing.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Renews the heartbeat now.
    pub async fn beat(&self, store: &Store, clock: &Clock) {
        let at = clock.now();
        if let Err(e) = store
            .heartbeat_instance(&self.id, at, self.is_draining())
            .await
        {
            tracing::warn!(error = %e, "cannot renew the instance heartbeat");
        }
    }

    /// Renews the heartbeat every third of the lease, and at once when draining starts, until
    /// the instance closes.
    pub async fn run_heartbeat(self, store: Store, clock: Clock) {
        let every = (self.lease / 3).max(Duration::from_millis(100));
        let mut draining = self.draining.subscribe();
        loop {
            self.beat(&store, &clock).await;
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = draining.changed() => {}
                _ = self.closing() => return,
            }
        }
    }

    /// Whether another instance is serving calls now.
    pub async fn peers_serving(&self, store: &Store, clock: &Clock) -> bool {
        let since = Timestamp::from_millis(clock.now().millis() - self.lease.as_millis() as i64);
        match store.other_serving_instances(&self.id, since).await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the instance registry");
                false
            }
        }
    }
}
