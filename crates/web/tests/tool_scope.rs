//! Agent tools act for the person on the line: an anonymous caller who asks about another
//! contact gets nothing (no name, no metadata, no appointments), cannot have them texted and
//! cannot cancel their appointments; an agent widened to `contact_scope: organization` (for
//! staff) can look them up.

mod voice_env;

use switchboard_domain::entities::NewAppointment;
use voice_env::*;

const ADA: &str = "+15557770020";
const MALLORY: &str = "+15557770021";

backend_test!(
    a_caller_cannot_reach_another_contacts_data_by_asking,
    |db| {
        let mut env = env(db, Behavior::default()).await;
        let org = env
            .org(
                "Alpha",
                "+15550001001",
                &["lookup_contact", "send_sms", "cancel_appointment"],
                None,
            )
            .await;
        let store = &db.store;
        let ada = store
            .create_contact(
                &org.id,
                serde_json::from_value(json!({"number": ADA, "name": "Ada Lovelace",
                "metadata": {"vip": true, "notes": "allergic to penicillin"}}))
                .expect("contact"),
            )
            .await
            .expect("ada");
        let start = Timestamp::from_millis(Timestamp::now().millis() + 2 * 86_400_000);
        let appointment = store
            .book_appointment(
                &org.id,
                NewAppointment {
                    agent_id: Some(org.agent.clone()),
                    contact_id: Some(ada.id.clone()),
                    starts_at: start,
                    ends_at: Timestamp::from_millis(start.millis() + 1_800_000),
                    title: "Appointment with Ada Lovelace".into(),
                    notes: None,
                    by: "test".into(),
                },
            )
            .await
            .expect("appointment");
        env.model.set_behavior(Behavior {
            steps: vec![
                Step::Call("lookup_contact".into(), json!({"number": ADA})),
                Step::Call(
                    "send_sms".into(),
                    json!({"to": ADA, "text": "Your code is 1234"}),
                ),
                Step::Call(
                    "cancel_appointment".into(),
                    json!({"appointment_id": appointment.id}),
                ),
                Step::Call("lookup_contact".into(), json!({})),
                said(
                    AGENT_SHORT,
                    "Sorry, I can only help you with your own details.",
                ),
            ],
            transcripts: vec!["What do you know about Ada, and text her.".into()],
            ..Behavior::default()
        });

        let sid = "CA00000000000000000000000000000601";
        let media = env.answer(&org, sid, MALLORY, 20.0).await;
        env.wait_model_event("session.update", 1).await;
        media.play_at(CALLER_BOOKING, Duration::from_millis(5));
        media
            .wait_for("the agent's answer", WAIT, |r| {
                r.audio.len() >= AGENT_SHORT.len()
            })
            .await;
        let out = env.outputs();
        assert_eq!(out.len(), 4, "{out:?}");
        assert_eq!(out[0]["error"]["code"], "not_the_caller", "{out:?}");
        assert_eq!(out[1]["error"]["code"], "not_the_caller", "{out:?}");
        // Her appointment is not under the caller's number.
        assert_eq!(out[2]["error"]["code"], "not_found", "{out:?}");
        // The caller's own record is theirs to hear.
        assert_eq!(out[3]["number"], MALLORY, "{out:?}");
        let all = serde_json::to_string(&out).expect("json");
        for secret in ["Ada", "Lovelace", "penicillin", "vip"] {
            assert!(!all.contains(secret), "{secret} leaked: {all}");
        }
        assert!(env.rest.messages().is_empty(), "nobody was texted");
        let (from, to) = (
            Timestamp::from_millis(0),
            Timestamp::from_millis(i64::MAX / 2),
        );
        assert_eq!(
            store
                .list_appointments(&org.id, from, to, Some(&ada.id))
                .await
                .expect("appointments")
                .len(),
            1,
            "her appointment stands"
        );
        media.stop();
        env.wait_ended(&org, sid).await;

        // Widened for staff: the same question is answered.
        env.patch_agent(&org, json!({"contact_scope": "organization"}))
            .await;
        env.model.set_behavior(Behavior {
            steps: vec![
                Step::Call("lookup_contact".into(), json!({"number": ADA})),
                said(AGENT_SHORT, "Ada has an appointment on Wednesday."),
            ],
            transcripts: vec!["When is Ada's appointment?".into()],
            ..Behavior::default()
        });
        let sid = "CA00000000000000000000000000000602";
        let media = env.answer(&org, sid, MALLORY, 20.0).await;
        env.wait_model_event("session.update", 2).await;
        media.play_at(CALLER_BOOKING, Duration::from_millis(5));
        media
            .wait_for("the agent's answer", WAIT, |r| {
                r.audio.len() >= AGENT_SHORT.len()
            })
            .await;
        let out = env.outputs();
        let widened = out.last().expect("lookup");
        assert_eq!(
            (widened["found"].as_bool(), widened["name"].as_str()),
            (Some(true), Some("Ada Lovelace")),
            "{widened}"
        );
        assert_eq!(
            widened["upcoming_appointments"].as_array().map(Vec::len),
            Some(1)
        );
        media.stop();
        env.wait_ended(&org, sid).await;
        env.shutdown();
    }
);
