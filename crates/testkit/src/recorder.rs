//! What the small HTTP fakes share: serving a router on a free loopback port, and a log of
//! what arrived that tests wait on (with a deadline) instead of sleeping.

use std::sync::Mutex;
use std::time::Duration;

/// Serves `app` on a free loopback port in the background; answers the port.
pub async fn serve(app: axum::Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

/// Everything a fake received, in order.
pub struct Recorder<T> {
    items: Mutex<Vec<T>>,
    notify: tokio::sync::Notify,
}

impl<T> Default for Recorder<T> {
    fn default() -> Self {
        Self {
            items: Mutex::new(Vec::new()),
            notify: tokio::sync::Notify::new(),
        }
    }
}

impl<T: Clone> Recorder<T> {
    /// Records one arrival and wakes the waiters.
    pub fn push(&self, item: T) {
        self.items.lock().unwrap().push(item);
        self.notify.notify_waiters();
    }

    /// Everything so far.
    pub fn all(&self) -> Vec<T> {
        self.items.lock().unwrap().clone()
    }

    /// Waits until at least `n` arrived (up to `timeout`); answers what arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            let got = self.all();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}
