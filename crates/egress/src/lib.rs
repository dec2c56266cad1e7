//! Requests to addresses a tenant chose (webhook endpoints, custom tool endpoints, MCP
//! servers): every such request goes through a client whose resolver refuses private,
//! loopback and link-local addresses (server-side request forgery guard), follows no
//! redirects, and reads answers only up to a bound. Standard Webhooks signing lives here too,
//! since webhooks and custom tools sign the same way.

pub mod signing;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use switchboard_domain::webhooks::restricted_address;

/// How every refusal starts, so a caller can tell it from a transport failure.
pub const REFUSED: &str = "refused:";

/// Who is making requests, for the refusal message and the user agent.
#[derive(Debug, Clone, Copy)]
pub struct Purpose {
    /// What the targets are called in messages: `webhooks`, `custom tools`.
    pub what: &'static str,
    /// The setting an operator turns on to allow private targets.
    pub setting: &'static str,
    /// The `User-Agent` product name.
    pub agent: &'static str,
}

/// Webhook deliveries.
pub const WEBHOOKS: Purpose = Purpose {
    what: "webhooks",
    setting: "SWITCHBOARD_WEBHOOKS_ALLOW_PRIVATE",
    agent: "Switchboard-Webhooks",
};

/// Custom HTTP tools and MCP servers.
pub const TOOLS: Purpose = Purpose {
    what: "tools",
    setting: "SWITCHBOARD_TOOLS_ALLOW_PRIVATE",
    agent: "Switchboard-Tools",
};

/// Resolves names and refuses restricted addresses, so a name that resolves to a private
/// address (or is re-pointed there after a check) is never connected.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    /// Allow every address (an operator's explicit choice).
    pub allow_private: bool,
    /// Whose requests these are.
    pub purpose: Purpose,
}

impl GuardedResolver {
    /// The addresses of `host`, or why it is refused.
    pub async fn resolve_checked(&self, host: &str) -> Result<Vec<SocketAddr>, String> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("{host} has no address"));
        }
        if !self.allow_private {
            for a in &addrs {
                if let Some(kind) = restricted_address(a.ip()) {
                    return Err(refusal(self.purpose, host, a.ip(), kind));
                }
            }
        }
        Ok(addrs)
    }
}

fn refusal(p: Purpose, host: &str, ip: IpAddr, kind: &str) -> String {
    format!(
        "{REFUSED} {host} resolves to {ip}, a {kind} address; {} may only target public \
         addresses (an operator can allow private targets with {}=true)",
        p.what, p.setting
    )
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let me = self.clone();
        Box::pin(async move {
            let addrs = me.resolve_checked(name.as_str()).await?;
            let it: Addrs = Box::new(addrs.into_iter());
            Ok(it)
        })
    }
}

impl reqwest013::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest013::dns::Name) -> reqwest013::dns::Resolving {
        let me = self.clone();
        Box::pin(async move {
            let addrs = me.resolve_checked(name.as_str()).await?;
            let it: reqwest013::dns::Addrs = Box::new(addrs.into_iter());
            Ok(it)
        })
    }
}

/// [`client`] on reqwest 0.13, for the MCP SDK's transport (MCP servers).
pub fn client_013(
    purpose: Purpose,
    allow_private: bool,
    timeout: Duration,
) -> Result<reqwest013::Client, reqwest013::Error> {
    reqwest013::Client::builder()
        // See `client`: a proxy from the environment would resolve the target itself.
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest013::redirect::Policy::none())
        .user_agent(format!("{}/{}", purpose.agent, env!("CARGO_PKG_VERSION")))
        .dns_resolver(std::sync::Arc::new(GuardedResolver {
            allow_private,
            purpose,
        }))
        .build()
}

/// A client for tenant-chosen targets: the guard, no redirects (a 3xx is the owner's to fix,
/// and following one could lead to an internal address), and `timeout` for a whole request.
pub fn client(
    purpose: Purpose,
    allow_private: bool,
    timeout: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        // Never through HTTP(S)_PROXY / ALL_PROXY from the environment: the proxy would
        // resolve and connect to the target itself, past this guard's resolver.
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(format!("{}/{}", purpose.agent, env!("CARGO_PKG_VERSION")))
        .dns_resolver(std::sync::Arc::new(GuardedResolver {
            allow_private,
            purpose,
        }))
        .build()
}

/// Checks a literal-address target before a request (the client never resolves it, so its
/// resolver cannot refuse it); names are checked by that resolver while connecting.
pub fn check_literal(purpose: Purpose, url: &str, allow_private: bool) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(a)) => IpAddr::V4(a),
        Some(url::Host::Ipv6(a)) => IpAddr::V6(a),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err("the URL has no host".into()),
    };
    match (allow_private, restricted_address(ip)) {
        (false, Some(kind)) => Err(refusal(purpose, &ip.to_string(), ip, kind)),
        _ => Ok(()),
    }
}

/// Reads a body up to `limit` bytes: `Err(read_so_far)` when it is longer (the rest is never
/// read, so a huge answer costs at most `limit` of memory).
pub async fn read_limited(r: &mut reqwest::Response, limit: usize) -> Result<Vec<u8>, Overflow> {
    if r.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Overflow::TooLarge);
    }
    let mut buf: Vec<u8> = Vec::new();
    loop {
        match r.chunk().await {
            Ok(Some(c)) => {
                if buf.len() + c.len() > limit {
                    return Err(Overflow::TooLarge);
                }
                buf.extend_from_slice(&c);
            }
            Ok(None) => return Ok(buf),
            Err(e) => return Err(Overflow::Failed(describe(&e))),
        }
    }
}

/// Why [`read_limited`] stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overflow {
    /// The body is longer than the limit.
    TooLarge,
    /// Reading failed (timeout, reset): why.
    Failed(String),
}

/// A request failure in words: the guard's refusal when that was the cause, else what kind
/// of failure it was and its root cause.
pub fn describe(e: &reqwest::Error) -> String {
    describe_chain(e, e.is_timeout(), e.is_connect())
}

/// [`describe`] for the reqwest 0.13 client of [`client_013`].
pub fn describe_013(e: &reqwest013::Error) -> String {
    describe_chain(e, e.is_timeout(), e.is_connect())
}

fn describe_chain(e: &dyn std::error::Error, timeout: bool, connect: bool) -> String {
    // The resolver's refusal is inside the error chain; show it rather than "connect error".
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        let text = s.to_string();
        if text.starts_with(REFUSED) {
            return text;
        }
        source = s.source();
    }
    if timeout {
        "timed out".into()
    } else if connect {
        format!("could not connect: {}", root_cause(e))
    } else {
        format!("request failed: {}", root_cause(e))
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literal_and_resolved_private_targets_are_refused() {
        let e = check_literal(WEBHOOKS, "http://127.0.0.1:9/x", false).expect_err("loopback");
        assert!(e.contains("loopback"), "{e}");
        assert!(
            check_literal(WEBHOOKS, "http://localhost:9/x", false).is_ok(),
            "names go to the resolver"
        );
        let e = GuardedResolver {
            allow_private: false,
            purpose: TOOLS,
        }
        .resolve_checked("localhost")
        .await
        .expect_err("localhost");
        assert!(e.starts_with("refused: localhost resolves to"), "{e}");
        assert!(e.contains("SWITCHBOARD_TOOLS_ALLOW_PRIVATE"), "{e}");
        assert!(check_literal(WEBHOOKS, "http://127.0.0.1:9/x", true).is_ok());
    }
}
