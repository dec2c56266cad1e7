//! The campaign runner: every running campaign gets a pass whenever this instance commits
//! events (a call ended, a campaign started) and at least every second, so pause and resume
//! take effect within a second and a freed slot is refilled at once. A pass places the due
//! recipients' calls (each a durable dial job, committed with the recipient's `calling`
//! state), so a restart continues where it stopped and never calls a recipient twice.

use std::future::Future;
use std::time::Duration;
use switchboard_domain::Clock;
use switchboard_store::{Store, StoreError};

/// How long the runner waits for a signal before looking again.
const IDLE: Duration = Duration::from_secs(1);

/// The runner (cheap to clone).
#[derive(Debug, Clone)]
pub struct CampaignRunner {
    store: Store,
    clock: Clock,
}

impl CampaignRunner {
    /// A runner over `store`'s campaigns.
    pub fn new(store: Store, clock: Clock) -> CampaignRunner {
        CampaignRunner { store, clock }
    }

    /// One pass over every running campaign; returns how many calls were placed.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let mut placed = 0;
        for (org, id) in self.store.running_campaigns(now).await? {
            match self.store.campaign_pass(&org, &id, now).await {
                Ok(n) => placed += n,
                Err(e) => {
                    tracing::warn!(org_id = %org, campaign_id = %id, error = %e, "campaign pass failed")
                }
            }
        }
        Ok(placed)
    }

    /// Runs passes until `stop`.
    pub async fn run_worker(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let signal = self.store.outbox_signal();
        loop {
            let notified = signal.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = %e, "campaign runner could not list campaigns");
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(IDLE) => {}
                _ = &mut stop => return,
            }
        }
    }
}
