//! HTTP hardening: security headers on pages and API answers, `__Host-` cookies over https,
//! the sign-in limiter keyed by the real client behind a trusted proxy (and not fooled by a
//! client's own `X-Forwarded-For`), and provider error text kept out of API answers.

mod voice_env;

use switchboard_web::security::TrustedProxies;
use voice_env::tools::set_cookie;
use voice_env::*;

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

backend_test!(
    pages_are_locked_down_and_https_cookies_are_host_bound,
    |db| {
        let mut env = env_with(db, Behavior::default(), |c| {
            c.dashboard.secure_cookies = true;
        })
        .await;
        let org = env.org("Alpha", "+15550001001", &[], None).await;
        let page = env
            .http
            .get(format!("{}/login", env.base))
            .send()
            .await
            .expect("login page");
        let csp = header(&page, "content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(directive), "{directive} in {csp}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert_eq!(header(&page, "x-frame-options"), "DENY");
        assert_eq!(header(&page, "x-content-type-options"), "nosniff");
        assert_eq!(header(&page, "referrer-policy"), "same-origin");
        // Over https the cookies are `__Host-`: Secure, path `/`, no domain.
        let raw: Vec<String> = page
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let login = raw
            .iter()
            .find(|c| c.starts_with("__Host-sb_login="))
            .unwrap_or_else(|| panic!("{raw:?}"));
        for attr in ["; Path=/", "; Secure", "; HttpOnly", "; SameSite=Lax"] {
            assert!(login.contains(attr), "{attr} in {login}");
        }
        assert!(!login.contains("Domain="), "{login}");
        assert!(set_cookie(&page, "sb_login").is_none());
        let html = page.text().await.expect("html");
        assert!(
            !html.contains("<script>") && !html.contains(" style="),
            "no inline script or style"
        );

        // Signed in, the session works under its `__Host-` name only.
        let admin = env.dashboard_admin(&org, "admin@alpha.test").await;
        assert!(
            admin.cookie.starts_with("__Host-sb_session="),
            "{}",
            admin.cookie
        );
        let home = admin.get("/").await;
        assert_eq!(home.status, 200, "{}", home.body);
        let plain = admin.cookie.replacen("__Host-", "", 1);
        let res = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .get(format!("{}/", env.base))
            .header(reqwest::header::COOKIE, plain)
            .send()
            .await
            .expect("page");
        assert_eq!(
            res.status(),
            303,
            "the unprefixed name is not a session over https"
        );
        assert!(header(&res, "location").starts_with("/login"));

        // API answers: no sniffing, no referrer.
        let key = env.key(&org).await;
        let res = env
            .http
            .get(format!("{}/api/v1/agents", env.base))
            .bearer_auth(&key)
            .send()
            .await
            .expect("api");
        assert_eq!(res.status(), 200);
        assert_eq!(header(&res, "x-content-type-options"), "nosniff");
        assert_eq!(header(&res, "referrer-policy"), "same-origin");
        env.shutdown();
    }
);

/// Fails sign-in `n` times as the client `xff` (unknown e-mails, so only the address counts);
/// answers the status of one more attempt.
async fn failures(env: &Env<'_>, xff: &str, n: usize, tag: &str) -> u16 {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut last = 0;
    for i in 0..=n {
        let page = http
            .get(format!("{}/login", env.base))
            .header("x-forwarded-for", xff)
            .send()
            .await
            .expect("login page");
        let cookie = set_cookie(&page, "sb_login").expect("cookie");
        let html = page.text().await.expect("html");
        let res = http
            .post(format!("{}/login", env.base))
            .header(reqwest::header::COOKIE, cookie)
            .header("x-forwarded-for", xff)
            .form(&[
                (
                    "_csrf",
                    voice_env::tools::form_field(&html, "_csrf").as_str(),
                ),
                ("email", format!("nobody{i}-{tag}@example.test").as_str()),
                ("password", "wrong password"),
            ])
            .send()
            .await
            .expect("sign in");
        last = res.status().as_u16();
    }
    last
}

fn strict_limits(c: &mut WebConfig, trusted: &str) {
    // One failure per e-mail, four per client address.
    c.dashboard.login_attempts = 1;
    c.dashboard.trusted_proxies = TrustedProxies::parse(trusted).expect("proxies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_sign_in_limit_is_per_client() {
    let db = TestDb::sqlite().await.expect("db");
    let mut env = env_with(&db, Behavior::default(), |c| strict_limits(c, "127.0.0.1")).await;
    let org = env.org("Alpha", "+15550001001", &[], None).await;
    // One client behind the proxy uses up its attempts...
    assert_eq!(failures(&env, "198.51.100.1", 4, "x").await, 429);
    // ...and another client behind the same proxy still signs in.
    let admin = env.dashboard_admin(&org, "admin@alpha.test").await;
    assert_eq!(admin.get("/").await.status, 200);
    assert_eq!(failures(&env, "198.51.100.2", 0, "y").await, 401);
    env.shutdown();
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_client_cannot_escape_the_limit_with_its_own_header() {
    let db = TestDb::sqlite().await.expect("db");
    // The proxy list does not include the test's own address.
    let mut env = env_with(&db, Behavior::default(), |c| strict_limits(c, "10.0.0.0/8")).await;
    for i in 0..4 {
        assert_eq!(
            failures(&env, &format!("198.51.100.{i}"), 0, &i.to_string()).await,
            401
        );
    }
    // A fifth "client" is the same peer: refused.
    assert_eq!(failures(&env, "198.51.100.9", 0, "z").await, 429);
    env.shutdown();
    db.drop_db().await;
}
