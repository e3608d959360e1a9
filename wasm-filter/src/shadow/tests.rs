use super::*;

fn start(id: u64) -> Message {
    Message::Start {
        id,
        target: Backend::Rust,
        request_id: "req-1".into(),
        headers: vec![
            (":method".into(), "POST".into()),
            (":path".into(), "/predict?model=a".into()),
        ],
        body: br#"{"df": []}"#.to_vec(),
    }
}

#[test]
fn messages_round_trip() {
    for m in [
        start(7),
        Message::Start {
            id: u64::MAX,
            target: Backend::Python,
            request_id: String::new(),
            headers: vec![],
            body: vec![],
        },
        Message::Primary {
            id: 9,
            status: 200,
            body: b"{}".to_vec(),
        },
        Message::Abandon {
            id: 3,
            reason: SkipReason::BodyTooLarge,
        },
        Message::Abandon {
            id: 4,
            reason: SkipReason::Queue,
        },
    ] {
        assert_eq!(Message::decode(&m.encode()), Some(m));
    }
}

#[test]
fn truncated_or_foreign_messages_are_refused() {
    let bytes = start(1).encode();
    for n in 0..bytes.len() {
        assert_eq!(Message::decode(&bytes[..n]), None, "prefix of {n} bytes");
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(Message::decode(&trailing), None);
    let mut bad_tag = bytes.clone();
    bad_tag[0] = 42;
    assert_eq!(Message::decode(&bad_tag), None);
    // A header count far beyond the input must not allocate for it.
    let mut huge = vec![1u8];
    huge.extend_from_slice(&1u64.to_le_bytes());
    huge.push(1);
    huge.extend_from_slice(&0u32.to_le_bytes());
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(Message::decode(&huge), None);
}

#[test]
fn pairs_in_either_order() {
    let mut t = Table::default();
    assert!(t.insert(1, 100, "a".into(), Backend::Rust, 0));
    assert!(t.insert(2, 200, "b".into(), Backend::Python, 0));
    assert_eq!(t.primary(1, 200, b"p".to_vec()), None);
    let r = t
        .shadow(
            100,
            ShadowAnswer::Response {
                status: 200,
                body: b"s".to_vec(),
            },
        )
        .unwrap();
    assert_eq!(
        (r.request_id.as_str(), r.target, r.primary_status),
        ("a", Backend::Rust, 200)
    );
    assert_eq!(t.shadow(200, ShadowAnswer::Failed("timeout".into())), None);
    let r = t.primary(2, 503, vec![]).unwrap();
    assert_eq!(r.shadow, ShadowAnswer::Failed("timeout".into()));
    assert!(t.is_empty());
}

#[test]
fn duplicates_and_unknowns_are_ignored() {
    let mut t = Table::default();
    assert!(t.insert(1, 100, "a".into(), Backend::Rust, 0));
    assert!(!t.insert(1, 101, "a".into(), Backend::Rust, 0));
    assert!(!t.insert(2, 100, "a".into(), Backend::Rust, 0));
    assert_eq!(t.primary(99, 200, vec![]), None);
    assert_eq!(t.shadow(999, ShadowAnswer::Failed(String::new())), None);
    assert_eq!(t.len(), 1);
}

#[test]
fn abandon_and_expiry_clean_up_both_indexes() {
    let mut t = Table::default();
    t.insert(1, 100, "a".into(), Backend::Rust, 1_000);
    t.insert(2, 200, "b".into(), Backend::Rust, 5_000);
    assert!(t.abandon(1));
    assert!(!t.abandon(1));
    // The late shadow answer of an abandoned comparison finds nothing.
    assert_eq!(t.shadow(100, ShadowAnswer::Failed(String::new())), None);
    assert_eq!(t.expire(10_000, 6_000), 0);
    assert_eq!(t.expire(11_001, 6_000), 1);
    assert!(t.is_empty());
    assert!(t.by_token.is_empty());
}

#[test]
fn shadow_headers_replace_authority_and_routing_and_drop_hop_by_hop() {
    let client: Vec<(String, String)> = [
        (":method", "POST"),
        (":path", "/predict"),
        (":authority", "gateway"),
        (":scheme", "http"),
        ("content-type", "application/json"),
        ("content-length", "12"),
        ("Transfer-Encoding", "chunked"),
        ("x-nd-backend", "python"),
        ("x-nd-shadow", "0"),
        ("x-request-id", "abc"),
        ("connection", "keep-alive"),
        ("Authorization", "Bearer secret"),
        ("cookie", "session=secret"),
        ("x-api-key", "secret"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let strip: Vec<String> = crate::config::DEFAULT_STRIP_HEADERS
        .iter()
        .map(|h| h.to_string())
        .chain(["x-api-key".to_string()])
        .collect();
    let h = shadow_headers(
        &client,
        "x-nd-backend",
        &strip,
        Backend::Rust,
        "rust.local:8080",
    );
    assert_eq!(
        h,
        vec![
            (":method", "POST"),
            (":path", "/predict"),
            (":scheme", "http"),
            ("content-type", "application/json"),
            ("x-request-id", "abc"),
            (":authority", "rust.local:8080"),
            ("x-nd-backend", "rust"),
            ("x-nd-shadow", "1"),
        ]
    );
    // With an empty list only the fixed hop-by-hop set is dropped.
    let kept = shadow_headers(&client, "x-nd-backend", &[], Backend::Rust, "r");
    assert!(kept.contains(&("Authorization", "Bearer secret")));
    assert!(kept.contains(&("cookie", "session=secret")));
}
