//! tests/filter/test_shadow.py: shadow capture, dispatch and comparison.

use super::*;
use crate::compare;
use crate::metrics::{Outcome, ShadowResult};
use crate::shadow::SkipReason;
use std::time::Duration;

/// `[match, mismatch, error]` for shadows sent to `target`.
fn results(w: &mut World, target: Backend) -> [u64; 3] {
    [
        ShadowResult::Match,
        ShadowResult::Mismatch,
        ShadowResult::Error,
    ]
    .map(|r| w.metric(Metric::ShadowResult(target, r)))
}

fn skipped(w: &mut World, reason: SkipReason) -> u64 {
    w.metric(Metric::ShadowSkipped(reason))
}

fn call_header<'a>(c: &'a Call, name: &str) -> Option<&'a str> {
    c.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn matching_shadow() {
    // test_matching_shadow
    let mut w = World::new(config(
        json!({"rust_weight_bp": 0, "shadow": mirror(json!({}))}),
    ));
    assert_eq!(w.served_by(20, &[]), all(Backend::Python, 20));
    let calls = w.pending_calls();
    assert_eq!(calls.len(), 20);
    for c in &calls {
        assert_eq!(c.cluster, "rust");
        assert_eq!(c.body, PREDICT);
        assert_eq!(c.timeout, Duration::from_millis(5000));
        assert_eq!(call_header(c, "x-nd-backend"), Some("rust"));
        assert_eq!(call_header(c, "x-nd-shadow"), Some("1"));
        assert_eq!(call_header(c, ":authority"), Some("127.0.0.1:8080"));
        assert_eq!(call_header(c, ":path"), Some("/predict"));
        assert_eq!(call_header(c, "content-type"), Some("application/json"));
    }
    assert_eq!(w.current_root(0).in_flight(), 20, "waiting for the shadows");
    assert_eq!(w.metric(Metric::ShadowInFlight), 20);
    assert_eq!(results(&mut w, Backend::Rust), [0, 0, 0]);
    w.answer_shadows();
    assert_eq!(results(&mut w, Backend::Rust), [20, 0, 0]);
    assert_eq!(w.metric(Metric::ShadowSent(Backend::Rust)), 20);
    assert_eq!(w.metric(Metric::ShadowSent(Backend::Python)), 0);
    assert_eq!(
        w.samples(Metric::ShadowDivergence(Backend::Rust)),
        vec![0; 20]
    );
    assert_eq!(w.metric(Metric::ShadowInFlight), 0);
    assert_eq!(w.current_root(0).in_flight(), 0);
}

#[test]
fn the_shadow_can_answer_before_the_primary() {
    // Both orders pair up (the Envoy tests race them).
    let mut w = World::new(config(
        json!({"rust_weight_bp": 0, "shadow": mirror(json!({}))}),
    ));
    let mut req = w.stream(0);
    req.request_headers(&[], false);
    req.request_body(PREDICT, true);
    w.pump();
    w.answer_shadows();
    assert_eq!(results(&mut w, Backend::Rust), [0, 0, 0]);
    req.response_headers(Some(200), &[], false);
    req.response_body(&prediction(0.0), true);
    req.done();
    w.pump();
    assert_eq!(results(&mut w, Backend::Rust), [1, 0, 0]);
    assert_eq!(w.current_root(0).in_flight(), 0);
}

#[test]
fn credentials_are_stripped_from_shadow_requests() {
    // test_credentials_are_stripped_from_shadow_requests
    let secret = [
        ("authorization", "Bearer s3cret"),
        ("cookie", "session=s3cret"),
        ("proxy-authorization", "Basic s3cret"),
        ("x-api-key", "s3cret"),
        ("x-tenant", "t1"),
    ];
    let mut w = World::new(config(
        json!({"rust_weight_bp": 0, "shadow": mirror(json!({}))}),
    ));
    let mut req = w.stream(0);
    req.request_headers(&secret, false);
    req.request_body(PREDICT, true);
    w.pump();
    // The primary keeps them.
    assert_eq!(
        req.request_header("authorization").as_deref(),
        Some("Bearer s3cret")
    );
    let c = &w.pending_calls()[0];
    assert_eq!(call_header(c, "x-tenant"), Some("t1"));
    assert_eq!(
        call_header(c, "x-api-key"),
        Some("s3cret"),
        "not in the default list"
    );
    for h in ["authorization", "cookie", "proxy-authorization"] {
        assert_eq!(call_header(c, h), None, "{h}");
    }
    // A configured list replaces the default, in both directions.
    let mut w = World::new(config(json!({
        "rust_weight_bp": 10000,
        "shadow": mirror(json!({"strip_headers": ["X-Api-Key", "cookie"]}))
    })));
    w.post(&secret);
    let c = &w.pending_calls()[0];
    assert_eq!(c.cluster, "python");
    assert_eq!(call_header(c, "x-nd-backend"), Some("python"));
    assert_eq!(call_header(c, "x-api-key"), None);
    assert_eq!(call_header(c, "cookie"), None);
    assert_eq!(call_header(c, "authorization"), Some("Bearer s3cret"));
    w.answer_shadows();
    assert_eq!(results(&mut w, Backend::Python), [1, 0, 0]);
}

#[test]
fn diverging_shadow_is_a_mismatch_with_request_id_and_field() {
    // test_diverging_shadow_is_a_mismatch_with_request_id_and_field
    let mut w = World::new(config(json!({
        "rust_weight_bp": 0, "shadow": mirror(json!({"rel_tolerance": 1e-3}))
    })));
    w.upstream[Backend::Rust.index()] = Upstream::body(prediction(0.01));
    for i in 0..5 {
        w.post(&[("x-request-id", &format!("req-diverge-{i}"))]);
    }
    w.answer_shadows();
    assert_eq!(results(&mut w, Backend::Rust), [0, 5, 0]);
    for i in 0..5 {
        assert_eq!(
            w.envoy.logged(&format!(
                "nd-filter: shadow mismatch request_id=req-diverge-{i} primary=python shadow=rust \
                 field=predictions[unique_id=s1,ds=2024-02-29T00:00:00].MLP"
            )),
            1
        );
    }
    // 1 % relative difference = ~9901 ppm, in the (5000, 10000] bucket.
    let expect = compare::ppm(0.01 / 1.01);
    assert!((5001..=10000).contains(&expect));
    assert_eq!(
        w.samples(Metric::ShadowDivergence(Backend::Rust)),
        vec![expect; 5]
    );
}

#[test]
fn mismatches_are_counted_and_their_logs_rate_limited() {
    // Mismatch counting: every one counted, the first ten logged, then every hundredth.
    let mut w = World::new(config(
        json!({"rust_weight_bp": 0, "shadow": mirror(json!({}))}),
    ));
    w.upstream[Backend::Rust.index()] = Upstream::body(prediction(0.5));
    for _ in 0..100 {
        w.post(&[]);
        w.answer_shadows();
    }
    assert_eq!(results(&mut w, Backend::Rust), [0, 100, 0]);
    assert_eq!(w.envoy.logged("nd-filter: shadow mismatch"), 11);
    // Errors have their own count.
    w.upstream[Backend::Rust.index()] = Upstream::body(b"not json".to_vec());
    for _ in 0..12 {
        w.post(&[]);
    }
    w.answer_shadows();
    assert_eq!(results(&mut w, Backend::Rust), [0, 100, 12]);
    assert_eq!(w.envoy.logged("nd-filter: shadow not comparable"), 10);
}

#[test]
fn custom_id_and_time_columns_are_compared() {
    // test_custom_id_and_time_columns_are_compared
    // Written by hand: the key is the first two columns as written (json!
    // would sort them).
    let air = |f: f64| {
        format!(
            r#"{{"model": "mlp_air_columns", "predictions": [
              {{"airline": "a1", "month": "1961-01-31T00:00:00", "MLP": {}}},
              {{"airline": "a1", "month": "1961-02-28T00:00:00", "MLP": {}}},
              {{"airline": "a2", "month": "1961-01-31T00:00:00", "MLP": {}}}]}}"#,
            482.4868 * (1.0 + f),
            493.447 * (1.0 + f),
            655.1 * (1.0 + f)
        )
        .into_bytes()
    };
    let mut w = World::new(config(json!({
        "rust_weight_bp": 0, "shadow": mirror(json!({"rel_tolerance": 1e-3}))
    })));
    w.upstream = [Upstream::body(air(0.0)), Upstream::body(air(0.0))];
    w.served_by(5, &[]);
    w.answer_shadows();
    assert_eq!(results(&mut w, Backend::Rust), [5, 0, 0]);
    w.upstream[Backend::Rust.index()] = Upstream::body(air(0.01));
    for i in 0..3 {
        w.post(&[("x-request-id", &format!("req-air-{i}"))]);
    }
    w.answer_shadows();
    assert_eq!(results(&mut w, Backend::Rust), [5, 3, 0]);
    assert_eq!(
        w.envoy.logged(
            "shadow mismatch request_id=req-air-0 primary=python shadow=rust \
             field=predictions[airline=a1,month=1961-01-31T00:00:00].MLP"
        ),
        1
    );
}

#[test]
fn small_differences_within_tolerance_match() {
    // test_small_differences_within_tolerance_match
    let mut w = World::new(config(json!({
        "rust_weight_bp": 0, "shadow": mirror(json!({"rel_tolerance": 1e-4}))
    })));
    w.upstream[Backend::Rust.index()] = Upstream::body(prediction(1e-6));
    w.served_by(5, &[]);
    w.answer_shadows();
    assert_eq!(results(&mut w, Backend::Rust), [5, 0, 0]);
    assert_eq!(
        w.samples(Metric::ShadowDivergence(Backend::Rust)),
        vec![1; 5]
    );
}

#[test]
fn mirrors_rust_to_python_too() {
    // test_mirrors_rust_to_python_too
    let mut w = World::new(config(
        json!({"rust_weight_bp": 10000, "shadow": mirror(json!({}))}),
    ));
    assert_eq!(w.served_by(10, &[]), all(Backend::Rust, 10));
    assert!(w.pending_calls().iter().all(|c| c.cluster == "python"));
    w.answer_shadows();
    assert_eq!(results(&mut w, Backend::Python), [10, 0, 0]);
    assert_eq!(results(&mut w, Backend::Rust), [0, 0, 0]);
    assert_eq!(w.metric(Metric::ShadowSent(Backend::Python)), 10);
}

#[test]
fn direction_and_share() {
    // test_direction_and_share
    let mut one_way = World::new(config(json!({
        "rust_weight_bp": 10000, "shadow": mirror(json!({"direction": "python_to_rust"}))
    })));
    one_way.served_by(10, &[]);
    assert!(one_way.pending_calls().is_empty());
    assert_eq!(one_way.envoy.queued(), 0, "nothing captured");
    let mut quarter = World::new(config(json!({
        "rust_weight_bp": 0, "shadow": mirror(json!({"share_bp": 2500}))
    })));
    quarter.served_by(100, &[]);
    quarter.answer_shadows();
    let sent = quarter.metric(Metric::ShadowSent(Backend::Rust));
    assert!((22..=28).contains(&sent), "{sent}");
    assert_eq!(results(&mut quarter, Backend::Rust), [sent, 0, 0]);
    // Only requests under the path prefix.
    let mut w = World::new(config(
        json!({"rust_weight_bp": 0, "shadow": mirror(json!({}))}),
    ));
    let mut req = w.stream(0);
    req.request_headers_at("/health", &[], true);
    w.pump();
    assert!(w.pending_calls().is_empty());
    let mut req = w.stream(0);
    req.request_headers_at("/predict/batch", &[], true);
    w.pump();
    assert_eq!(w.pending_calls().len(), 1);
}

#[test]
fn status_difference_is_a_mismatch() {
    // test_status_difference_is_a_mismatch
    let mut w = World::new(config(
        json!({"rust_weight_bp": 0, "shadow": mirror(json!({}))}),
    ));
    w.upstream[Backend::Rust.index()] = Upstream::status(500);
    assert_eq!(w.served_by(3, &[]), all(Backend::Python, 3));
    w.answer_shadows();
    assert_eq!(results(&mut w, Backend::Rust), [0, 3, 0]);
    assert_eq!(w.envoy.logged("field=status: primary 200 shadow 500"), 3);
}

#[test]
fn slow_shadow_never_delays_the_client_and_times_out_as_error() {
    // test_slow_shadow_never_delays_the_client_and_times_out_as_error
    let mut w = World::new(config(json!({
        "rust_weight_bp": 0, "shadow": mirror(json!({"timeout_ms": 500}))
    })));
    for i in 0..3 {
        let r = w.post(&[("x-request-id", &format!("slow-{i}"))]);
        // The client's stream is never paused for the shadow.
        assert!(
            r.actions.iter().all(|a| *a == Action::Continue),
            "{:?}",
            r.actions
        );
        assert_eq!((r.status, r.upstream), (200, Some(Backend::Python)));
    }
    let calls = w.pending_calls();
    assert!(calls
        .iter()
        .all(|c| c.timeout == Duration::from_millis(500)));
    w.fail_shadows();
    assert_eq!(results(&mut w, Backend::Rust), [0, 0, 3]);
    assert_eq!(
        w.envoy.logged(
            "nd-filter: shadow error request_id=slow-1 target=rust: \
             no response (timeout, reset or connection failure)"
        ),
        1
    );
    assert_eq!(w.metric(Metric::ShadowInFlight), 0);
}

#[test]
fn shadow_answer_over_the_cap_is_an_error() {
    // The shadow side of test_bodies_over_the_cap_are_not_mirrored.
    let mut w = World::new(config(json!({
        "rust_weight_bp": 0, "shadow": mirror(json!({"max_body_bytes": 1000}))
    })));
    w.post(&[("x-request-id", "big-shadow")]);
    let token = w.pending_calls()[0].token;
    w.answer_call(token, 200, vec![b' '; 1001]);
    assert_eq!(results(&mut w, Backend::Rust), [0, 0, 1]);
    assert_eq!(
        w.envoy.logged(
            "shadow error request_id=big-shadow target=rust: \
             response body of 1001 bytes is over max_body_bytes 1000"
        ),
        1
    );
}

#[test]
fn unknown_shadow_cluster_is_a_shadow_error() {
    // test_unknown_shadow_cluster_is_a_shadow_error
    let mut w = World::new(config(
        json!({"rust_weight_bp": 0, "shadow": mirror(json!({}))}),
    ));
    w.envoy.unknown_clusters.borrow_mut().push("rust".into());
    assert_eq!(
        w.served_by(5, &[("x-request-id", "r1")]),
        all(Backend::Python, 5)
    );
    assert_eq!(results(&mut w, Backend::Rust), [0, 0, 5]);
    assert_eq!(w.metric(Metric::ShadowSent(Backend::Rust)), 0);
    assert_eq!(
        w.envoy.logged(
            "nd-filter: shadow call to cluster \"rust\" failed: BadArgument (unknown cluster?) request_id=r1"
        ),
        5
    );
    assert_eq!(w.current_root(0).in_flight(), 0);
}

#[test]
fn bodies_over_the_cap_are_not_mirrored() {
    // test_bodies_over_the_cap_are_not_mirrored
    let mut w = World::new(config(json!({
        "rust_weight_bp": 0, "shadow": mirror(json!({"max_body_bytes": 1000}))
    })));
    let rows: Vec<Value> = (0..100)
        .map(|i| json!({"unique_id": format!("s{i}"), "ds": "2024-01-31", "y": 1.0}))
        .collect();
    let big = json!({ "df": rows }).to_string().into_bytes();
    assert!(big.len() > 1000);
    for _ in 0..3 {
        assert_eq!(w.post_on(0, &[], &big).status, 200);
    }
    assert_eq!(skipped(&mut w, SkipReason::BodyTooLarge), 3);
    assert!(
        w.pending_calls().is_empty(),
        "an oversized request is never sent"
    );
    assert_eq!(w.envoy.queued(), 0);
    // A response over the cap: the comparison is dropped after the shadow went out.
    let answers: Vec<Value> = (0..100)
        .map(|i| json!({"unique_id": format!("s{i}"), "ds": i, "MLP": 1.0}))
        .collect();
    w.upstream[Backend::Python.index()] = Upstream::body(
        json!({"model": "air", "predictions": answers})
            .to_string()
            .into_bytes(),
    );
    w.served_by(2, &[]);
    assert_eq!(skipped(&mut w, SkipReason::BodyTooLarge), 5);
    assert_eq!(w.metric(Metric::ShadowSent(Backend::Rust)), 2);
    assert_eq!(w.current_root(0).in_flight(), 0, "dropped at once");
    // Their shadow answers arrive later: nothing to compare them with.
    w.answer_shadows();
    assert_eq!(results(&mut w, Backend::Rust), [0, 0, 0]);
    assert_eq!(w.metric(Metric::ShadowInFlight), 0);
}

#[test]
fn the_body_cap_counts_every_chunk_and_is_inclusive() {
    let mut w = World::new(config(json!({
        "rust_weight_bp": 0, "shadow": mirror(json!({"max_body_bytes": 10}))
    })));
    // Two chunks that only together exceed the cap.
    let mut req = w.stream(0);
    req.request_headers(&[], false);
    req.request_body(b"123456", false);
    req.request_body(b"78901", true);
    w.pump();
    assert!(w.pending_calls().is_empty());
    assert_eq!(skipped(&mut w, SkipReason::BodyTooLarge), 1);
    // Exactly at the cap, in chunks: mirrored whole.
    let mut req = w.stream(0);
    req.request_headers(&[], false);
    req.request_body(b"12345", false);
    req.request_body(b"", false);
    req.request_body(b"67890", true);
    w.pump();
    assert_eq!(w.pending_calls()[0].body, b"1234567890");
    // The primary's answer in chunks, exactly at the cap: compared.
    req.response_headers(Some(200), &[], false);
    req.response_body(b"{\"a\":", false);
    req.response_body(b"12}", true);
    req.done();
    w.pump();
    let token = w.pending_calls()[0].token;
    w.answer_call(token, 200, b"{\"a\":12}".to_vec());
    // Not the contract's shape, but both answered the same status and
    // neither is comparable: one result either way.
    let r = results(&mut w, Backend::Rust);
    assert_eq!(r.iter().sum::<u64>(), 1, "{r:?}");
    assert_eq!(skipped(&mut w, SkipReason::BodyTooLarge), 1);
    // One byte over, in the second chunk of the response: dropped.
    let mut req = w.stream(0);
    req.request_headers(&[], true);
    w.pump();
    req.response_headers(Some(200), &[], false);
    req.response_body(b"12345", false);
    req.response_body(b"678901", true);
    req.done();
    w.pump();
    assert_eq!(skipped(&mut w, SkipReason::BodyTooLarge), 2);
    assert_eq!(w.current_root(0).in_flight(), 0);
}

#[test]
fn request_trailers_end_the_request() {
    let mut w = World::new(config(
        json!({"rust_weight_bp": 0, "shadow": mirror(json!({}))}),
    ));
    let mut req = w.stream(0);
    req.request_headers(&[], false);
    req.request_body(b"abc", false);
    w.pump();
    assert!(
        w.pending_calls().is_empty(),
        "not before the request is complete"
    );
    req.request_trailers();
    w.pump();
    assert_eq!(w.pending_calls()[0].body, b"abc");
    // A second trailers call (or a late body chunk) changes nothing.
    req.request_trailers();
    req.request_body(b"def", true);
    w.pump();
    assert_eq!(w.pending_calls().len(), 1);
    // A primary answering with headers only (no body) is compared with an empty body.
    req.response_headers(Some(204), &[], true);
    req.done();
    w.pump();
    let token = w.pending_calls()[0].token;
    w.answer_call(token, 204, Vec::new());
    assert_eq!(results(&mut w, Backend::Rust).iter().sum::<u64>(), 1);
    assert_eq!(w.current_root(0).in_flight(), 0);
}

#[test]
fn in_flight_comparisons_are_bounded() {
    // test_in_flight_comparisons_are_bounded
    let mut w = World::new(config(json!({
        "rust_weight_bp": 0, "shadow": mirror(json!({"max_in_flight": 2, "timeout_ms": 4000}))
    })));
    // Six concurrent requests: all started before any answer.
    let mut reqs: Vec<Req> = (0..6).map(|_| w.stream(0)).collect();
    for r in &mut reqs {
        r.request_headers(&[], false);
        r.request_body(PREDICT, true);
    }
    w.pump();
    assert_eq!(skipped(&mut w, SkipReason::InFlightLimit), 4);
    assert_eq!(w.metric(Metric::ShadowSent(Backend::Rust)), 2);
    assert_eq!(w.metric(Metric::ShadowInFlight), 2);
    for r in &mut reqs {
        assert_eq!(r.response_headers(Some(200), &[], false), Action::Continue);
        r.response_body(&prediction(0.0), true);
        r.done();
    }
    w.pump();
    w.answer_shadows();
    assert_eq!(results(&mut w, Backend::Rust), [2, 0, 0]);
    assert_eq!(w.metric(Metric::ShadowInFlight), 0);
    // Room again.
    w.post(&[]);
    assert_eq!(w.metric(Metric::ShadowSent(Backend::Rust)), 3);
}

#[test]
fn client_gone_before_the_primary_answers_is_cleaned_up() {
    // test_client_gone_before_the_primary_answers_is_cleaned_up
    let mut w = World::new(config(
        json!({"rust_weight_bp": 0, "shadow": mirror(json!({}))}),
    ));
    for _ in 0..2 {
        w.post_abandoned(&[]);
    }
    assert_eq!(skipped(&mut w, SkipReason::Abandoned), 2);
    assert_eq!(w.metric(Metric::ShadowInFlight), 0);
    assert_eq!(w.current_root(0).in_flight(), 0);
    assert_eq!(
        w.metric(Metric::Requests(Backend::Python, Outcome::Aborted)),
        2
    );
    assert_eq!(
        w.metric(Metric::Requests(Backend::Python, Outcome::Success)),
        0
    );
    // The shadows still answer: nothing to pair them with.
    w.answer_shadows();
    assert_eq!(results(&mut w, Backend::Rust), [0, 0, 0]);
}

#[test]
fn a_stream_gone_before_the_start_went_out_is_not_counted() {
    // Abandoned while the request body was still coming: the root never heard of it.
    let mut w = World::new(config(
        json!({"rust_weight_bp": 0, "shadow": mirror(json!({}))}),
    ));
    let mut req = w.stream(0);
    req.request_headers(&[], false);
    req.request_body(b"{", false);
    req.done();
    w.pump();
    assert_eq!(w.envoy.queued(), 0);
    assert!(w.pending_calls().is_empty());
    assert_eq!(skipped(&mut w, SkipReason::Abandoned), 0);
    assert_eq!(
        w.metric(Metric::Requests(Backend::Python, Outcome::Aborted)),
        1
    );
}

#[test]
fn primary_answering_before_the_body_arrives_is_a_counted_skip() {
    // test_primary_answering_before_the_body_arrives_is_a_counted_skip
    let mut w = World::new(config(
        json!({"rust_weight_bp": 0, "shadow": mirror(json!({}))}),
    ));
    w.upstream[Backend::Python.index()] = Upstream::Early;
    let r = w.post(&[]);
    assert_eq!(r.status, 400);
    assert_eq!(skipped(&mut w, SkipReason::AnsweredEarly), 1);
    assert_eq!(w.metric(Metric::ShadowSent(Backend::Rust)), 0);
    assert_eq!(w.metric(Metric::ShadowInFlight), 0);
    assert!(w.pending_calls().is_empty());
    assert_eq!(w.envoy.queued(), 0);
    assert_eq!(
        w.metric(Metric::Requests(Backend::Python, Outcome::Success)),
        1
    );
}

#[test]
fn no_shadow_to_an_open_circuit_or_from_a_fallback() {
    // test_no_shadow_to_an_open_circuit_or_from_a_fallback
    let mut w = World::new(config(json!({
        "rust_weight_bp": 0, "override": {"enabled": true}, "shadow": mirror(json!({})),
        "breaker": {"failure_threshold": 2, "recovery_ms": 60000}
    })));
    w.upstream[Backend::Rust.index()] = Upstream::status(500);
    // Rust primaries (override) fail twice: rust's circuit opens. Both were mirrored to python.
    for _ in 0..2 {
        assert_eq!(w.post(&[("x-nd-override", "rust")]).status, 500);
    }
    w.answer_shadows();
    w.tick();
    // A fallback is not mirrored (its other side is the open circuit).
    assert_eq!(
        w.served_by(2, &[("x-nd-override", "rust")]),
        all(Backend::Python, 2)
    );
    // Python primaries are not mirrored to the open circuit.
    assert_eq!(w.served_by(3, &[]), all(Backend::Python, 3));
    assert_eq!(w.metric(Metric::ShadowSent(Backend::Rust)), 0);
    assert_eq!(w.metric(Metric::ShadowSent(Backend::Python)), 2);
    assert_eq!(skipped(&mut w, SkipReason::BreakerOpen), 3);
    // Once the circuit may admit again (recovery passed), mirroring resumes.
    w.envoy.advance(60_001);
    w.post(&[]);
    assert_eq!(w.metric(Metric::ShadowSent(Backend::Rust)), 1);
}

#[test]
fn a_refused_enqueue_is_a_queue_skip() {
    let mut w = World::new(config(
        json!({"rust_weight_bp": 0, "shadow": mirror(json!({}))}),
    ));
    w.envoy.fail_enqueue.set(true);
    let r = w.post(&[]);
    assert_eq!(r.status, 200);
    assert_eq!(skipped(&mut w, SkipReason::Queue), 1);
    assert!(w.pending_calls().is_empty());
}

#[test]
fn an_unreadable_body_chunk_drops_the_capture_quietly() {
    let mut w = World::new(config(
        json!({"rust_weight_bp": 0, "shadow": mirror(json!({}))}),
    ));
    let mut req = w.stream(0);
    req.request_headers(&[], false);
    w.envoy.fail_body_reads.set(true);
    req.request_body(PREDICT, true);
    w.envoy.fail_body_reads.set(false);
    w.pump();
    assert!(w.pending_calls().is_empty());
    req.response_headers(Some(200), &[], false);
    req.response_body(&prediction(0.0), true);
    req.done();
    w.pump();
    assert_eq!(w.envoy.queued(), 0);
    assert_eq!(
        w.metric(Metric::Requests(Backend::Python, Outcome::Success)),
        1
    );
}

#[test]
fn comparisons_without_a_primary_expire() {
    // A primary that never reports (its worker went away): swept by age on a tick.
    let mut w = World::new(config(json!({
        "rust_weight_bp": 0, "shadow": mirror(json!({"timeout_ms": 1000}))
    })));
    let mut req = w.stream(0);
    req.request_headers(&[], false);
    req.request_body(PREDICT, true);
    w.pump();
    w.answer_shadows();
    assert_eq!(w.current_root(0).in_flight(), 1);
    w.envoy.advance(1000 + 10_000);
    w.tick();
    assert_eq!(
        w.current_root(0).in_flight(),
        1,
        "not before timeout + grace"
    );
    w.envoy.advance(1);
    w.tick();
    assert_eq!(w.current_root(0).in_flight(), 0);
    // Counted on that tick, flushed on the next.
    assert_eq!(skipped(&mut w, SkipReason::Expired), 1);
    assert_eq!(w.metric(Metric::ShadowInFlight), 0);
}

#[test]
fn without_the_shadow_queue_nothing_is_captured() {
    // register_shared_queue failed in on_configure: counted as a queue skip.
    let envoy = FakeEnvoy::new();
    envoy.fail_register.set(true);
    *envoy.plugin_config.borrow_mut() = config(json!({"shadow": mirror(json!({}))}))
        .to_string()
        .into_bytes();
    let mut root = Root::new(envoy.vm());
    assert!(RootContext::on_configure(&mut root, 0));
    let mut req = Req {
        filter: root.filter(7),
        id: 7,
        envoy: envoy.clone(),
    };
    req.request_headers(&[], false);
    req.request_body(PREDICT, true);
    req.response_headers(Some(200), &[], true);
    req.done();
    RootContext::on_tick(&mut root);
    let skipped = envoy.stat(&Metric::ShadowSkipped(SkipReason::Queue).name());
    assert_eq!(skipped.unwrap().value, 1);
    assert!(envoy.calls().is_empty());
}
