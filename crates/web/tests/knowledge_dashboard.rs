//! The knowledge pages over plain HTTP, on both backends: an admin adds text and uploads a
//! file (a multipart form with its CSRF token), watches them get indexed, tries a question,
//! edits and deletes a source, and ticks it on an agent's form; a member reads but changes
//! nothing.

mod dash_client;

use dash_client::*;
use std::time::Duration;
use switchboard_domain::values::Role;
use switchboard_store::backend_test;
use switchboard_store::corpus::HANDBOOK;
use switchboard_testkit::eventually;

const PW: &str = "a long enough password";
const WAIT: Duration = Duration::from_secs(20);

/// Posts a multipart form: `fields`, then the file.
async fn post_multipart(
    c: &Client,
    path: &str,
    fields: &[(&str, &str)],
    file: (&str, &[u8]),
) -> (u16, String, String) {
    let (content_type, body) = switchboard_testkit::multipart::form(fields, file.0, file.1);
    c.post_body(path, &content_type, body, &[]).await
}

/// The `kns_...` id linked from the sources table for `name`.
fn source_link(html: &str, name: &str) -> String {
    let at = html.find(&format!("\">{name}</a>")).expect("listed");
    let start = html[..at].rfind("/knowledge/").expect("link") + "/knowledge/".len();
    html[start..at].to_owned()
}

backend_test!(admins_manage_knowledge_and_members_read_it, |db| {
    let (base, _stop) = serve_with(db, |c| {
        c.jobs.poll_interval = Some(Duration::from_millis(200));
    })
    .await;
    let org = org_with_users(
        db,
        "Salon",
        &[
            ("admin@salon.test", Role::Admin),
            ("member@salon.test", Role::Member),
        ],
    )
    .await;
    let agent = db
        .store
        .create_agent(
            &org,
            serde_json::from_value(serde_json::json!({"name": "Desk", "instructions": "Help."}))
                .expect("agent"),
        )
        .await
        .expect("agent");
    let mut admin = Client::new(&base);
    assert_eq!(admin.sign_in("admin@salon.test", PW).await, 303);
    let (status, page) = admin.get("/knowledge").await;
    assert_eq!(status, 200);
    assert!(page.contains("No sources yet"));
    let csrf = csrf_of(&page);

    // Bad input is shown at its field; nothing is added.
    let (status, _, page) = admin
        .post(
            "/knowledge",
            &[
                ("_csrf", &csrf),
                ("name", "Handbook"),
                ("format", "markdown"),
                ("content", "  "),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 422);
    assert!(page.contains("holds no text"), "{page}");
    let (status, location, _) = admin
        .post(
            "/knowledge",
            &[
                ("_csrf", &csrf),
                ("name", "Handbook"),
                ("format", "markdown"),
                ("content", HANDBOOK),
            ],
            &[],
        )
        .await;
    assert_eq!(
        (status, location.starts_with("/knowledge?flash=")),
        (303, true)
    );
    // An upload needs the form's token; with it, the PDF is read.
    let pdf = switchboard_testkit::pdf::with_text(&["Gift vouchers are valid for two years."]);
    let (status, _, _) = post_multipart(
        &admin,
        "/knowledge/upload",
        &[("name", "Vouchers")],
        ("v.pdf", &pdf),
    )
    .await;
    assert_eq!(status, 400, "no CSRF token");
    let (status, _, page) = post_multipart(
        &admin,
        "/knowledge/upload",
        &[("_csrf", &csrf)],
        ("scan.pdf", &switchboard_testkit::pdf::without_text()),
    )
    .await;
    assert_eq!(status, 422);
    assert!(page.contains("no text to read"), "{page}");
    let (status, _, _) = post_multipart(
        &admin,
        "/knowledge/upload",
        &[("_csrf", &csrf), ("name", "Vouchers")],
        ("v.pdf", &pdf),
    )
    .await;
    assert_eq!(status, 303);
    // Both get indexed; the page says so.
    let page = eventually("both sources are ready", WAIT, || async {
        let (_, page) = admin.get("/knowledge").await;
        (page.matches(">ready<").count() == 2).then_some(page)
    })
    .await;
    let handbook = source_link(&page, "Handbook");
    let vouchers = source_link(&page, "Vouchers");
    // Trying a question shows the passage an agent would get.
    let (_, page) = admin
        .get("/knowledge?q=How+much+is+a+colour+treatment%3F")
        .await;
    assert!(
        page.contains("A full colour treatment costs 95 euros"),
        "{page}"
    );
    assert!(page.contains("Studio Lumen &gt; Prices &gt; Colour"));
    let (_, page) = admin.get("/knowledge?q=voucher+valid").await;
    assert!(page.contains("valid for two years"));

    // Editing the text indexes it again.
    let (status, page) = admin.get(&format!("/knowledge/{vouchers}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("v.pdf"));
    let (status, _, _) = admin
        .post(
            &format!("/knowledge/{vouchers}"),
            &[
                ("_csrf", &csrf),
                ("name", "Vouchers"),
                ("content", "Gift vouchers are valid for three years."),
            ],
            &[],
        )
        .await;
    assert_eq!(status, 303);
    eventually("the new text is searchable", WAIT, || async {
        let (_, page) = admin.get("/knowledge?q=voucher").await;
        page.contains("three years").then_some(())
    })
    .await;

    // The agent's form offers the sources; ticking one attaches it.
    let (_, page) = admin.get(&format!("/agents/{}", agent.id)).await;
    assert!(
        page.contains(&format!("name=\"knowledge\" value=\"{handbook}\"")),
        "the agent form lists sources"
    );
    let form = [
        ("_csrf", csrf.as_str()),
        ("name", "Desk"),
        ("instructions", "Help."),
        ("voice", "marin"),
        ("model", "gpt-realtime"),
        ("vad", "server_vad"),
        ("max_call_duration_seconds", "1800"),
        ("analysis_fields", "[]"),
        ("voicemail", "hangup"),
        ("knowledge", handbook.as_str()),
    ];
    let (status, _, page) = admin
        .post(&format!("/agents/{}", agent.id), &form, &[])
        .await;
    assert_eq!(status, 303, "{page}");
    let got = db.store.get_agent(&org, &agent.id).await.expect("agent");
    assert_eq!(
        got.knowledge
            .iter()
            .map(|k| k.to_string())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&handbook)
    );
    let (_, page) = admin.get(&format!("/agents/{}", agent.id)).await;
    assert!(
        page.contains(&format!("value=\"{handbook}\" checked")),
        "ticked on the form"
    );

    // A member reads and searches but cannot change anything.
    let mut member = Client::new(&base);
    assert_eq!(member.sign_in("member@salon.test", PW).await, 303);
    let (status, page) = member.get("/knowledge?q=colour").await;
    assert_eq!(status, 200);
    assert!(page.contains("95 euros"));
    assert!(!page.contains("id=\"add-source\""));
    let mcsrf = csrf_of(&page);
    let (status, _, _) = member
        .post(
            "/knowledge",
            &[("_csrf", &mcsrf), ("name", "Mine"), ("content", "Text.")],
            &[],
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = member
        .post(
            &format!("/knowledge/{handbook}/delete"),
            &[("_csrf", &mcsrf)],
            &[],
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = post_multipart(
        &member,
        "/knowledge/upload",
        &[("_csrf", &mcsrf)],
        ("v.pdf", &pdf),
    )
    .await;
    assert_eq!(status, 403);

    // Deleting a source removes it from the list and from search.
    let (status, _, _) = admin
        .post(
            &format!("/knowledge/{vouchers}/delete"),
            &[("_csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(status, 303);
    let (_, page) = admin.get("/knowledge?q=three+years").await;
    assert!(!page.contains("three years."));
    assert!(page.contains("id=\"no-results\""));
});
