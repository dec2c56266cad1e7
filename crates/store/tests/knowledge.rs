//! Knowledge search on both backends: the same questions find the same passages first, only
//! in the asking organization and the chosen sources; re-indexing is version-checked, and
//! deleting a source removes its passages and detaches it from agents.

use serde_json::json;
use switchboard_domain::agent::{AgentPatch, NewAgent};
use switchboard_domain::knowledge::{
    chunk, search_terms, source_text, KnowledgeFormat, KnowledgeStatus,
};
use switchboard_domain::Timestamp;
use switchboard_store::corpus::{add_indexed, DIRECTIONS, FOREIGN, HANDBOOK, QUESTIONS};
use switchboard_store::{backend_test, StoreError};

backend_test!(the_same_questions_find_the_same_passages, |db| {
    let store = &db.store;
    let a = store.create_org("Salon").await.expect("org").id;
    let b = store.create_org("Barber").await.expect("org").id;
    let handbook = add_indexed(store, &a, "Handbook", KnowledgeFormat::Markdown, HANDBOOK)
        .await
        .expect("handbook");
    let directions = add_indexed(store, &a, "Directions", KnowledgeFormat::Text, DIRECTIONS)
        .await
        .expect("directions");
    add_indexed(store, &b, "Prices", KnowledgeFormat::Markdown, FOREIGN)
        .await
        .expect("foreign");
    for (question, expected) in QUESTIONS {
        let hits = store
            .search_knowledge(&a, &search_terms(question), None, 3)
            .await
            .expect("search");
        assert!(
            hits.first().is_some_and(|h| h.text.contains(expected)),
            "{question}: {hits:#?}"
        );
        assert!(hits
            .iter()
            .all(|h| h.source_id == handbook || h.source_id == directions));
    }
    let colour = store
        .search_knowledge(&a, &search_terms("colour price"), None, 1)
        .await
        .expect("search");
    assert_eq!(colour[0].source, "Handbook");
    assert_eq!(
        colour[0].heading.as_deref(),
        Some("Studio Lumen > Prices > Colour")
    );
    // Only the chosen sources; none, nothing.
    let only = store
        .search_knowledge(
            &a,
            &search_terms("parking colour"),
            Some(std::slice::from_ref(&directions)),
            5,
        )
        .await
        .expect("search");
    assert!(!only.is_empty() && only.iter().all(|h| h.source_id == directions));
    assert!(store
        .search_knowledge(&a, &search_terms("colour"), Some(&[]), 5)
        .await
        .expect("search")
        .is_empty());
    assert!(store
        .search_knowledge(&a, &[], None, 5)
        .await
        .expect("search")
        .is_empty());
    // The other organization sees only its own, even naming the salon's source.
    let theirs = store
        .search_knowledge(
            &b,
            &search_terms("colour treatment cost"),
            Some(std::slice::from_ref(&handbook)),
            5,
        )
        .await
        .expect("search");
    assert!(theirs.is_empty(), "{theirs:?}");
    let theirs = store
        .search_knowledge(&b, &search_terms("colour treatment cost"), None, 5)
        .await
        .expect("search");
    assert_eq!(theirs.len(), 1);
    assert!(theirs[0].text.contains("Barber Nord"));
    assert!(matches!(
        store.get_knowledge_source(&b, &handbook).await,
        Err(StoreError::NotFound)
    ));
});

backend_test!(reindexing_is_versioned_and_deleting_detaches, |db| {
    let store = &db.store;
    let org = store.create_org("Salon").await.expect("org").id;
    let id = add_indexed(store, &org, "Directions", KnowledgeFormat::Text, DIRECTIONS)
        .await
        .expect("source");
    let (s, _) = store.get_knowledge_source(&org, &id).await.expect("get");
    assert_eq!(s.status, KnowledgeStatus::Ready);
    assert_eq!(s.version, 1);
    assert_eq!(s.chunks, 1, "short paragraphs share a passage");
    // New text: a new version to index; the old passages answer meanwhile.
    let text = source_text("content", "Parking is now at the Bahnhof garage.").expect("text");
    let s = store
        .update_knowledge_source(&org, &id, None, Some(text), Timestamp::now())
        .await
        .expect("update");
    assert_eq!((s.version, s.status), (2, KnowledgeStatus::Indexing));
    let hits = store
        .search_knowledge(&org, &search_terms("parking"), None, 5)
        .await
        .expect("search");
    assert!(hits[0].text.contains("Rathaus"));
    // A job for the old version changes nothing; the current one replaces the passages.
    let stale = chunk("old", KnowledgeFormat::Text);
    assert!(!store
        .store_knowledge_chunks(&org, &id, 1, &stale, Timestamp::now())
        .await
        .expect("stale"));
    let (format, text) = store
        .knowledge_text_to_index(&org, &id, 2)
        .await
        .expect("read")
        .expect("current");
    assert!(store
        .knowledge_text_to_index(&org, &id, 1)
        .await
        .expect("read")
        .is_none());
    assert!(store
        .store_knowledge_chunks(&org, &id, 2, &chunk(&text, format), Timestamp::now())
        .await
        .expect("index"));
    let hits = store
        .search_knowledge(&org, &search_terms("parking"), None, 5)
        .await
        .expect("search");
    assert_eq!(hits.len(), 1);
    assert!(hits[0].text.contains("Bahnhof"));
    // A failure is recorded for its own version only.
    store
        .fail_knowledge_index(&org, &id, 1, "old")
        .await
        .expect("fail");
    let (s, _) = store.get_knowledge_source(&org, &id).await.expect("get");
    assert_eq!(s.status, KnowledgeStatus::Ready);
    // Agents list sources of their organization only; deleting one detaches it.
    let other = store.create_org("Other").await.expect("org").id;
    let foreign = add_indexed(
        store,
        &other,
        "X",
        KnowledgeFormat::Text,
        "Some words here.",
    )
    .await
    .expect("foreign");
    let agent: NewAgent =
        serde_json::from_value(json!({"name": "Desk", "instructions": "Help.", "knowledge": [id]}))
            .expect("agent");
    let agent = store.create_agent(&org, agent).await.expect("agent");
    assert_eq!(agent.knowledge, vec![id.clone()]);
    let bad = AgentPatch {
        knowledge: Some(vec![id.clone(), foreign.clone()]),
        ..AgentPatch::default()
    };
    match store.update_agent(&org, &agent.id, bad).await {
        Err(StoreError::Invalid(v)) => assert_eq!(v.field, "knowledge[1]"),
        other => panic!("expected invalid, got {other:?}"),
    }
    store
        .delete_knowledge_source(&org, &id)
        .await
        .expect("delete");
    assert!(store
        .search_knowledge(&org, &search_terms("parking"), None, 5)
        .await
        .expect("search")
        .is_empty());
    let agent = store.get_agent(&org, &agent.id).await.expect("agent");
    assert!(agent.knowledge.is_empty());
    assert!(matches!(
        store.delete_knowledge_source(&org, &id).await,
        Err(StoreError::NotFound)
    ));
});

backend_test!(common_words_only_rank_what_rarer_words_find, |db| {
    let store = &db.store;
    let org = store.create_org("Big").await.expect("org").id;
    // 2,100 passages (one per paragraph, each past the passage target) all saying
    // "appointment", each with its own code word.
    let filler = "appointment ".repeat(80);
    for part in 0..3 {
        let text: String = (0..700)
            .map(|i| format!("{filler}code{}.\n\n", part * 700 + i))
            .collect();
        add_indexed(
            store,
            &org,
            &format!("Log {part}"),
            KnowledgeFormat::Text,
            &text,
        )
        .await
        .expect("source");
    }
    add_indexed(store, &org, "Handbook", KnowledgeFormat::Markdown, HANDBOOK)
        .await
        .expect("handbook");
    // A common word with a rare one: the rare one chooses.
    let hits = store
        .search_knowledge(&org, &search_terms("appointment code1234"), None, 3)
        .await
        .expect("search");
    assert!(hits[0].text.ends_with("code1234."), "{:?}", hits[0].text);
    let hits = store
        .search_knowledge(&org, &search_terms("appointment cancellation fee"), None, 3)
        .await
        .expect("search");
    assert!(hits[0].text.contains("late cancellation"), "{hits:?}");
    // Common words alone still answer.
    let hits = store
        .search_knowledge(&org, &search_terms("appointment"), None, 5)
        .await
        .expect("search");
    assert_eq!(hits.len(), 5);
    assert!(hits.iter().all(|h| h.text.contains("appointment")));
});
