//! The team over plain HTTP, on both backends: invitations (a single-use link that expires,
//! shown for copying when the server cannot send e-mail, e-mailed with the public URL when
//! it can), role changes and removals with their rules, the signed-in user's password
//! change, "forgot password" by e-mail, and the audit trail that records all of it.

mod dash_client;

use dash_client::*;
use reqwest::header::{CONTENT_TYPE, COOKIE};
use std::time::Duration;
use switchboard_domain::values::Role;
use switchboard_domain::{Clock, Secret};
use switchboard_store::backend_test;
use switchboard_testkit::smtp::{mail_header, parts, FakeSmtp};

const PW: &str = "a long enough password";

/// The `/invite/...` or `/reset-password/...` path in a page or an e-mail.
fn link_path(text: &str, prefix: &str) -> String {
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} in {text}"));
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '/' || *c == '-' || *c == '_')
        .collect()
}

/// A form posted without a session (invitation and reset pages), with the page's
/// double-submit cookie.
async fn post_public(c: &Client, path: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
    let page = c
        .http
        .get(format!("{}{path}", c.base))
        .send()
        .await
        .expect("page");
    let cookie = cookie_value(&page, "sb_login").expect("double-submit cookie");
    let csrf = csrf_of(&page.text().await.expect("html"));
    let mut all = vec![("_csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(all)
        .finish();
    let res = c
        .http
        .post(format!("{}{path}", c.base))
        .header(COOKIE, format!("sb_login={cookie}"))
        .header(CONTENT_TYPE, FORM)
        .body(body)
        .send()
        .await
        .expect("post");
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, location, res.text().await.expect("body"))
}

fn user_id_of(html: &str, email: &str) -> String {
    let row = html
        .find(&format!("data-email=\"{email}\""))
        .unwrap_or_else(|| panic!("no row for {email}"));
    let at = row + html[row..].find("/team/users/").expect("user action") + 12;
    html[at..at + html[at..].find('/').expect("end")].to_owned()
}

backend_test!(invitations_roles_passwords_and_the_audit_trail, |db| {
    let clock = Clock::adjustable();
    let c2 = clock.clone();
    let (base, _stop) = serve_with(db, move |c| c.clock = c2).await;
    let alpha = org_with_users(
        db,
        "Alpha",
        &[
            ("admin@alpha.test", Role::Admin),
            ("member@alpha.test", Role::Member),
            ("ops@alpha.test", Role::Operator),
        ],
    )
    .await;
    let beta = org_with_users(db, "Beta", &[("admin@beta.test", Role::Admin)]).await;

    let mut admin = Client::new(&base);
    assert_eq!(admin.sign_in("admin@alpha.test", PW).await, 303);
    let mut member = Client::new(&base);
    assert_eq!(member.sign_in("member@alpha.test", PW).await, 303);

    // Members neither see nor use the team page.
    let (status, html) = member.get("/calls").await;
    assert_eq!(status, 200);
    assert!(!html.contains("href=\"/team\""), "no Team link for members");
    assert_eq!(member.get("/team").await.0, 403);
    let csrf = member.csrf().await;
    let (status, _, _) = member
        .post(
            "/team/invite",
            &[
                ("_csrf", &csrf),
                ("email", "x@alpha.test"),
                ("role", "member"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 403);

    // Every invalid field at once; an operator role is not an admin's to give.
    let csrf = admin.csrf().await;
    let (status, _, html) = admin
        .post(
            "/team/invite",
            &[
                ("_csrf", &csrf),
                ("email", "not an e-mail"),
                ("role", "operator"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 422);
    assert!(html.contains("id=\"error-email\""), "{html}");
    assert!(html.contains("id=\"error-role\""), "{html}");
    let (status, _, html) = admin
        .post(
            "/team/invite",
            &[
                ("_csrf", &csrf),
                ("email", "member@alpha.test"),
                ("role", "member"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 422);
    assert!(html.contains("already exists"), "{html}");

    // Without SMTP the link is shown for copying, with the reason.
    let (status, _, html) = admin
        .post(
            "/team/invite",
            &[
                ("_csrf", &csrf),
                ("email", "New@Alpha.test"),
                ("role", "admin"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"invite-not-mailed\""), "{html}");
    assert!(html.contains("SWITCHBOARD_SMTP_URL"), "{html}");
    assert!(html.contains(&format!("{base}/invite/")), "{html}");
    let invite = link_path(&html, "/invite/");

    // The link opens without a session; the form shows every error at once.
    let anon = Client::new(&base);
    let (status, page) = anon.get(&invite).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("new@alpha.test") && page.contains("Alpha"),
        "{page}"
    );
    let (status, _, page) = post_public(
        &anon,
        &invite,
        &[("password", "short"), ("confirm", "different")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"error-password\"") && page.contains("id=\"error-confirm\""));
    let (status, location, _) = post_public(
        &anon,
        &invite,
        &[
            ("password", "the newcomer's password"),
            ("confirm", "the newcomer's password"),
        ],
    )
    .await;
    assert_eq!((status, location.as_str()), (303, "/login?notice=joined"));
    // Once only.
    let (status, page) = anon.get(&invite).await;
    assert_eq!(status, 410);
    assert!(page.contains("data-code=\"link_used\""), "{page}");
    assert_eq!(anon.get("/invite/notarealtoken").await.0, 404);
    let (_, page) = anon.get("/login?notice=joined").await;
    assert!(page.contains("id=\"login-notice\""));
    let mut newcomer = Client::new(&base);
    assert_eq!(
        newcomer
            .sign_in("new@alpha.test", "the newcomer's password")
            .await,
        303
    );
    assert_eq!(newcomer.get("/team").await.0, 200, "invited as an admin");

    // A withdrawn invitation's link stops working.
    let (_, _, html) = admin
        .post(
            "/team/invite",
            &[
                ("_csrf", &csrf),
                ("email", "w@alpha.test"),
                ("role", "member"),
            ],
            &[],
        )
        .await;
    let withdrawn = link_path(&html, "/invite/");
    let (_, team) = admin.get("/team").await;
    let row = team
        .find("data-email=\"w@alpha.test\"")
        .expect("open invitation");
    let at = row + team[row..].find("/team/invites/").expect("withdraw") + 14;
    let id = &team[at..at + team[at..].find('/').expect("end")];
    let (status, _, _) = admin
        .post(
            &format!("/team/invites/{id}/revoke"),
            &[("_csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(status, 303);
    let (status, page) = anon.get(&withdrawn).await;
    assert_eq!(status, 410);
    assert!(page.contains("data-code=\"link_revoked\""));

    // Roles: not one's own; the member becomes an admin and back.
    let (_, team) = admin.get("/team").await;
    let member_id = user_id_of(&team, "member@alpha.test");
    let own = team
        .find("data-email=\"admin@alpha.test\"")
        .expect("own row");
    let own_row = &team[own..own + team[own..].find("</tr>").expect("row end")];
    assert!(
        own_row.contains("(you)") && !own_row.contains("/team/users/"),
        "no role change or removal of oneself: {own_row}"
    );
    let (status, location, _) = admin
        .post(
            &format!("/team/users/{member_id}/role"),
            &[("_csrf", &csrf), ("role", "admin")],
            &[],
        )
        .await;
    assert_eq!(status, 303, "{location}");
    assert_eq!(member.get("/team").await.0, 200, "now an admin");
    admin
        .post(
            &format!("/team/users/{member_id}/role"),
            &[("_csrf", &csrf), ("role", "member")],
            &[],
        )
        .await;
    assert_eq!(member.get("/team").await.0, 403);
    // Another organization's login is not found; an operator is not an admin's to change.
    let beta_admin = db.store.list_users(&beta).await.expect("users")[0]
        .id
        .clone();
    let (status, _, _) = admin
        .post(
            &format!("/team/users/{beta_admin}/role"),
            &[("_csrf", &csrf), ("role", "member")],
            &[],
        )
        .await;
    assert_eq!(status, 404);
    let ops_id = db
        .store
        .list_users(&alpha)
        .await
        .expect("users")
        .into_iter()
        .find(|u| u.email == "ops@alpha.test")
        .expect("operator")
        .id;
    let (status, _, _) = admin
        .post(
            &format!("/team/users/{ops_id}/remove"),
            &[("_csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(status, 403);

    // An operator acting in Beta cannot demote its only admin.
    let mut ops = Client::new(&base);
    assert_eq!(ops.sign_in("ops@alpha.test", PW).await, 303);
    let ops_csrf = ops.csrf().await;
    let (status, _, _) = ops
        .post(
            "/switch-org",
            &[("_csrf", &ops_csrf), ("org_id", beta.as_str())],
            &[],
        )
        .await;
    assert_eq!(status, 303);
    let (status, location, _) = ops
        .post(
            &format!("/team/users/{beta_admin}/role"),
            &[("_csrf", &ops_csrf), ("role", "member")],
            &[],
        )
        .await;
    assert_eq!(status, 303);
    assert!(location.contains("only+admin"), "{location}");
    let beta_users = db.store.list_users(&beta).await.expect("users");
    assert_eq!(beta_users[0].role, Role::Admin, "still an admin");

    // Removing someone signs them out and stops their sign-in.
    let (status, _, _) = admin
        .post(
            &format!("/team/users/{member_id}/remove"),
            &[("_csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        member.get("/calls").await.0,
        303,
        "the removed member's session ended"
    );
    let mut again = Client::new(&base);
    assert_eq!(again.sign_in("member@alpha.test", PW).await, 401);

    // Changing one's own password: every error at once, then the other sessions end.
    let mut elsewhere = Client::new(&base);
    assert_eq!(elsewhere.sign_in("admin@alpha.test", PW).await, 303);
    let (status, _, page) = admin
        .post(
            "/account/password",
            &[
                ("_csrf", &csrf),
                ("current", "wrong"),
                ("password", "short"),
                ("confirm", "x"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 422);
    for f in ["current", "password", "confirm"] {
        assert!(page.contains(&format!("id=\"error-{f}\"")), "{f}: {page}");
    }
    let (status, location, _) = admin
        .post(
            "/account/password",
            &[
                ("_csrf", &csrf),
                ("current", PW),
                ("password", "a brand new password"),
                ("confirm", "a brand new password"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 303, "{location}");
    assert_eq!(admin.get("/calls").await.0, 200, "this session stays");
    assert_eq!(
        elsewhere.get("/calls").await.0,
        303,
        "the other session ended"
    );
    assert_eq!(
        Client::new(&base).sign_in("admin@alpha.test", PW).await,
        401
    );
    assert_eq!(
        Client::new(&base)
            .sign_in("admin@alpha.test", "a brand new password")
            .await,
        303
    );

    // An invitation expires after 7 days.
    let (_, _, html) = admin
        .post(
            "/team/invite",
            &[
                ("_csrf", &csrf),
                ("email", "late@alpha.test"),
                ("role", "member"),
            ],
            &[],
        )
        .await;
    let late = link_path(&html, "/invite/");
    clock.advance(Duration::from_secs(7 * 24 * 3600 + 1));
    let (status, page) = anon.get(&late).await;
    assert_eq!(status, 410);
    assert!(page.contains("data-code=\"link_expired\""));

    // The trail names who did what to whom.
    let mut admin = Client::new(&base);
    assert_eq!(
        admin
            .sign_in("admin@alpha.test", "a brand new password")
            .await,
        303
    );
    let (_, team) = admin.get("/team").await;
    for action in [
        "user.invited",
        "user.joined",
        "user.invite_revoked",
        "user.role_changed",
        "user.removed",
        "user.password_changed",
    ] {
        assert!(
            team.contains(&format!("data-action=\"{action}\"")),
            "{action}"
        );
    }
    assert!(team.contains("member -&gt; admin"), "role change detail");
    assert!(team.contains("badge") && team.contains("expired"));
    let trail = db.store.audit_log(&beta, 10).await.expect("beta trail");
    assert!(
        trail.is_empty(),
        "Beta's trail holds none of Alpha's changes: {trail:?}"
    );
});

backend_test!(invitations_and_password_resets_by_email, |db| {
    let smtp = FakeSmtp::start().await;
    let url = smtp.url.clone();
    let (base, _stop) = serve_with(db, move |c| {
        c.public_url = Some("https://dash.example.test".into());
        c.jobs.smtp = Some((Secret::new(&url), "Switchboard <team@example.test>".into()));
    })
    .await;
    org_with_users(db, "Alpha", &[("admin@alpha.test", Role::Admin)]).await;
    let mut admin = Client::new(&base);
    assert_eq!(admin.sign_in("admin@alpha.test", PW).await, 303);
    let csrf = admin.csrf().await;

    // The invitation goes by e-mail, with a link on the public URL (never the request's Host).
    let (status, _, html) = admin
        .post(
            "/team/invite",
            &[
                ("_csrf", &csrf),
                ("email", "new@alpha.test"),
                ("role", "member"),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 200);
    assert!(html.contains("An invitation was e-mailed to"), "{html}");
    let mails = smtp.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(mails[0].to, vec!["new@alpha.test".to_owned()]);
    assert!(mail_header(&mails[0].data, "Subject")
        .expect("subject")
        .contains("Alpha"));
    let text = parts(&mails[0].data)
        .into_iter()
        .find(|p| p.content_type.starts_with("text/plain"))
        .expect("text part")
        .body;
    assert!(text.contains("https://dash.example.test/invite/"), "{text}");
    let invite = link_path(&text, "/invite/");
    assert_eq!(
        invite,
        link_path(&html, "/invite/"),
        "the page shows the same link"
    );
    let anon = Client::new(&base);
    let (status, _, _) = post_public(
        &anon,
        &invite,
        &[
            ("password", "the newcomer's password"),
            ("confirm", "the newcomer's password"),
        ],
    )
    .await;
    assert_eq!(status, 303);

    // "Forgot password": the same answer whether or not the login exists; one e-mail.
    let answer = "If a login with that e-mail exists";
    let (status, _, page) =
        post_public(&anon, "/forgot-password", &[("email", "nobody@alpha.test")]).await;
    assert_eq!(status, 200);
    assert!(page.contains(answer));
    let (status, _, page) =
        post_public(&anon, "/forgot-password", &[("email", "Admin@Alpha.test")]).await;
    assert_eq!(status, 200);
    assert!(page.contains(answer));
    let mails = smtp.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(mails.len(), 2, "no e-mail for an unknown login");
    assert_eq!(mails[1].to, vec!["admin@alpha.test".to_owned()]);
    let text = parts(&mails[1].data)
        .into_iter()
        .find(|p| p.content_type.starts_with("text/plain"))
        .expect("text part")
        .body;
    let first = link_path(&text, "/reset-password/");
    assert!(text.contains("https://dash.example.test/reset-password/"));

    // A second request replaces the first link.
    post_public(&anon, "/forgot-password", &[("email", "admin@alpha.test")]).await;
    let mails = smtp.wait_for(3, Duration::from_secs(20)).await;
    let text = parts(&mails[2].data)
        .into_iter()
        .find(|p| p.content_type.starts_with("text/plain"))
        .expect("text part")
        .body;
    let reset = link_path(&text, "/reset-password/");
    let (status, page) = anon.get(&first).await;
    assert_eq!(status, 410);
    assert!(page.contains("data-code=\"link_revoked\""));

    // The reset sets the password and signs the login out everywhere.
    let (status, page) = anon.get(&reset).await;
    assert_eq!(status, 200);
    assert!(page.contains("admin@alpha.test"));
    let (status, location, _) = post_public(
        &anon,
        &reset,
        &[
            ("password", "a recovered password"),
            ("confirm", "a recovered password"),
        ],
    )
    .await;
    assert_eq!((status, location.as_str()), (303, "/login?notice=reset"));
    assert_eq!(admin.get("/calls").await.0, 303, "signed out everywhere");
    assert_eq!(
        Client::new(&base).sign_in("admin@alpha.test", PW).await,
        401
    );
    let mut admin = Client::new(&base);
    assert_eq!(
        admin
            .sign_in("admin@alpha.test", "a recovered password")
            .await,
        303
    );
    assert_eq!(anon.get(&reset).await.0, 410, "once only");
    let (_, team) = admin.get("/team").await;
    assert!(team.contains("data-action=\"user.password_reset_requested\""));
    assert!(team.contains("data-action=\"user.password_reset\""));

    // The form cannot flood an inbox: the sign-in allowance (3 here) applies per e-mail.
    let (status, _, _) =
        post_public(&anon, "/forgot-password", &[("email", "admin@alpha.test")]).await;
    assert_eq!(status, 200, "the third request");
    let (status, _, page) =
        post_public(&anon, "/forgot-password", &[("email", "admin@alpha.test")]).await;
    assert_eq!(status, 429);
    assert!(page.contains("Too many requests"));
});
