//! HTTP hardening: security headers on every response (a strict content policy on pages), and
//! the client's address as seen through the reverse proxies the operator trusts.

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Admission control settings (see the README's list of limits).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Calls under way per organization (every instance); an incoming call over it hears a
    /// busy message (`SWITCHBOARD_MAX_CONCURRENT_CALLS_PER_ORG`).
    pub max_calls_per_org: i64,
    /// Open media-stream WebSockets on this instance (`SWITCHBOARD_MAX_WEBSOCKETS`).
    pub max_websockets: usize,
    /// Requests handled at once on this instance; more get 503 with `Retry-After`
    /// (`SWITCHBOARD_MAX_INFLIGHT_REQUESTS`).
    pub max_inflight_requests: usize,
    /// Password hashes computed at once (argon2 is deliberately expensive): sign-ins queue for
    /// these instead of taking every core.
    pub password_hashing: usize,
    /// Requests per API key (`SWITCHBOARD_API_RATE_PER_MINUTE`, `SWITCHBOARD_API_BURST`);
    /// shared by every instance on PostgreSQL.
    pub api_rate: switchboard_store::Rate,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_calls_per_org: 100,
            max_websockets: 4096,
            max_inflight_requests: 2048,
            password_hashing: std::thread::available_parallelism()
                .map_or(1, |n| (n.get() / 2).max(1)),
            api_rate: switchboard_store::Rate {
                burst: 120,
                per_minute: 1200,
            },
        }
    }
}

/// The slots [`Limits`] hand out, and what was refused.
#[derive(Debug)]
pub struct Admission {
    /// The settings.
    pub limits: Limits,
    requests: Arc<Semaphore>,
    websockets: Arc<Semaphore>,
    passwords: Arc<Semaphore>,
    /// Requests answered 503 because too many were in flight.
    pub refused_requests: AtomicU64,
    /// Media streams refused because too many were open.
    pub refused_websockets: AtomicU64,
    /// Incoming calls that heard the busy message (their organization was at its cap).
    pub refused_calls: AtomicU64,
    /// API requests answered 429 (their key over its rate).
    pub rate_limited: AtomicU64,
}

impl Admission {
    /// Slots for `limits`.
    pub fn new(limits: &Limits) -> Admission {
        Admission {
            requests: Arc::new(Semaphore::new(limits.max_inflight_requests.max(1))),
            websockets: Arc::new(Semaphore::new(limits.max_websockets.max(1))),
            passwords: Arc::new(Semaphore::new(limits.password_hashing.max(1))),
            limits: limits.clone(),
            refused_requests: AtomicU64::new(0),
            refused_websockets: AtomicU64::new(0),
            refused_calls: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
        }
    }

    /// A media-stream slot, held for the connection's life; `None` when all are taken.
    pub fn websocket(&self) -> Option<OwnedSemaphorePermit> {
        let permit = self.websockets.clone().try_acquire_owned().ok();
        if permit.is_none() {
            self.refused_websockets.fetch_add(1, Ordering::Relaxed);
        }
        permit
    }

    /// Waits for a password-hashing slot.
    pub async fn password_slot(&self) -> Option<OwnedSemaphorePermit> {
        self.passwords.clone().acquire_owned().await.ok()
    }

    /// Prometheus text for the refusals.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, help, v) in [
            (
                "switchboard_refused_requests_total",
                "Requests answered 503 because too many were in flight.",
                &self.refused_requests,
            ),
            (
                "switchboard_refused_websockets_total",
                "Media streams refused because too many were open.",
                &self.refused_websockets,
            ),
            (
                "switchboard_rate_limited_total",
                "API requests answered 429 because their key was over its rate.",
                &self.rate_limited,
            ),
            (
                "switchboard_voice_refused_busy_total",
                "Incoming calls that heard the busy message (organization at its call cap).",
                &self.refused_calls,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

/// Sheds load: a request over `max_inflight_requests` is answered 503 `overloaded` with
/// `Retry-After: 1` at once instead of queueing. Health and metrics are always answered.
pub(crate) async fn admit(
    State(admission): State<Arc<Admission>>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return next.run(req).await;
    }
    let Ok(_permit) = admission.requests.clone().try_acquire_owned() else {
        admission.refused_requests.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(path, "request refused: too many in flight");
        let mut e = crate::error::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the server is handling too many requests; retry in a moment",
        );
        e.retry_after = Some(1);
        return e.into_response();
    };
    next.run(req).await
}

/// The pages' content policy: everything from this origin only, no inline script or style,
/// no plugins, no framing. `form-action` is left open on purpose: OAuth consent and "connect
/// this MCP server" are forms whose answer redirects to another origin, which the directive
/// would block.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; media-src 'self'; connect-src 'self'; \
    font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Adds the security headers a handler did not set itself.
pub(crate) async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        h.entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
        h.entry(header::X_FRAME_OPTIONS)
            .or_insert(HeaderValue::from_static("DENY"));
    }
    res
}

/// An address or network (`10.0.0.0/8`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen through an IPv6 socket (`::ffff:a.b.c.d`) is that IPv4 client.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let bits = u32::from(self.prefix.min(32));
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let bits = u32::from(self.prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed (`SWITCHBOARD_TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Net>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR networks.
    pub fn parse(text: &str) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, prefix) = match item.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (item, None),
            };
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| format!("`{item}` is not an IP address or CIDR network"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) => p
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| format!("`{item}`: the prefix must be 0 to {max}"))?,
            };
            nets.push(Net { addr, prefix });
        }
        Ok(TrustedProxies(nets))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted proxy; then the
    /// right-most `X-Forwarded-For` entry that is not a trusted proxy (entries further left
    /// were written by the client and prove nothing).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            client = hop;
            if !self.trusts(hop) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_over_the_in_flight_cap_are_shed_with_retry_after() {
        use axum::routing::get;
        use tower::ServiceExt as _;
        let admission = Arc::new(Admission::new(&Limits {
            max_inflight_requests: 1,
            ..Limits::default()
        }));
        let release = Arc::new(tokio::sync::Notify::new());
        let (entered_tx, entered) = tokio::sync::oneshot::channel::<()>();
        let entered_tx = Arc::new(std::sync::Mutex::new(Some(entered_tx)));
        let hold = release.clone();
        let app = axum::Router::new()
            .route(
                "/slow",
                get(move || {
                    let (hold, entered_tx) = (hold.clone(), entered_tx.clone());
                    async move {
                        if let Some(tx) = entered_tx.lock().ok().and_then(|mut g| g.take()) {
                            let _ = tx.send(());
                        }
                        hold.notified().await;
                        "done"
                    }
                }),
            )
            .route("/healthz", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(
                admission.clone(),
                admit,
            ));
        let req = |path: &str| {
            axum::http::Request::get(path)
                .body(axum::body::Body::empty())
                .expect("request")
        };
        let first = tokio::spawn(app.clone().oneshot(req("/slow")));
        entered.await.expect("the first request is in flight");
        let second = app.clone().oneshot(req("/slow")).await.expect("answer");
        assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            second
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
        let health = app.clone().oneshot(req("/healthz")).await.expect("answer");
        assert_eq!(health.status(), StatusCode::OK, "health is always answered");
        release.notify_one();
        let first = first.await.expect("join").expect("answer");
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(admission.refused_requests.load(Ordering::Relaxed), 1);
        // The slot is back.
        release.notify_one();
        let again = app.oneshot(req("/slow")).await.expect("answer");
        assert_eq!(again.status(), StatusCode::OK);
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).expect("header"));
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn the_client_is_found_through_trusted_proxies_only() {
        let t = TrustedProxies::parse("10.0.0.0/8, 192.168.1.5, ::1").expect("parse");
        // Straight from the client: its own header is ignored.
        assert_eq!(
            t.client(ip("203.0.113.9"), &xff("1.2.3.4")),
            ip("203.0.113.9")
        );
        // Through a trusted proxy: the right-most untrusted hop.
        assert_eq!(
            t.client(ip("10.1.2.3"), &xff("1.2.3.4, 198.51.100.7")),
            ip("198.51.100.7")
        );
        // Through two trusted proxies.
        assert_eq!(
            t.client(ip("192.168.1.5"), &xff("198.51.100.7, 10.9.9.9")),
            ip("198.51.100.7")
        );
        // A trusted proxy that sent no header is the client.
        assert_eq!(t.client(ip("::1"), &HeaderMap::new()), ip("::1"));
        // IPv4 through an IPv6 socket.
        assert_eq!(
            t.client(ip("::ffff:10.0.0.1"), &xff("198.51.100.7")),
            ip("198.51.100.7")
        );
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.local").is_err());
        assert!(TrustedProxies::parse("").expect("empty").is_empty());
    }
}
