//! The overview's success rate: analysed calls judged a success over those judged at all; a
//! call where the other party never spoke is not judged, so it counts neither way.

use serde_json::json;
use switchboard_domain::entities::{NewCall, NewConversation};
use switchboard_domain::values::{CallStatus, Channel, Direction};
use switchboard_domain::Timestamp;
use switchboard_store::backend_test;

backend_test!(silent_calls_do_not_count_against_the_success_rate, |db| {
    let store = &db.store;
    let org = store.create_org("Clinic").await.expect("org");
    let now = Timestamp::now();
    let analyses = [
        json!({"status": "completed", "outcome": {"success": true, "reason": "booked"}, "source": "model"}),
        json!({"status": "completed", "outcome": {"success": false, "reason": "no slot"}, "source": "model"}),
        json!({"status": "completed", "outcome": {"success": false, "reason": "no conversation took place"}, "source": "no_transcript"}),
    ];
    for (i, a) in analyses.iter().enumerate() {
        let call = store
            .start_call(
                &org.id,
                NewConversation {
                    channel: Channel::Voice,
                    direction: Direction::Inbound,
                    contact_number: format!("+1555000000{i}"),
                    our_number: Some("+15550001000".into()),
                    agent_id: None,
                    variables: json!({}),
                    started_at: now,
                },
                NewCall {
                    conversation_id: switchboard_domain::ids::ConversationId::generate(),
                    call_sid: format!("CA{}", switchboard_domain::ids::random_token(32)),
                    direction: Direction::Inbound,
                    from_number: format!("+1555000000{i}"),
                    to_number: "+15550001000".into(),
                    agent_id: None,
                    status: CallStatus::InProgress,
                    started_at: now,
                },
            )
            .await
            .expect("call");
        store
            .store_call_analysis(&org.id, &call.id, a, now)
            .await
            .expect("analysis");
    }
    let o = store
        .overview(&org.id, Timestamp::from_millis(now.millis() - 60_000))
        .await
        .expect("overview");
    assert_eq!(o.calls, 3);
    assert_eq!(
        (o.successes, o.analysed),
        (1, 2),
        "the silent call is not judged"
    );
});
