//! tests/filter/test_breaker.py: outcomes reported to the circuit breaker
//! through the response callbacks, fallback, half-open probes, both open.

use super::*;
use crate::breaker::State;
use crate::metrics::{BothOpenAction, Outcome};
use proxy_wasm::types::LogLevel;

fn breaker(threshold: u32, recovery_ms: u64) -> Value {
    json!({"failure_threshold": threshold, "recovery_ms": recovery_ms})
}

fn transitions(w: &mut World, b: Backend) -> [u64; 3] {
    [State::Open, State::HalfOpen, State::Closed].map(|s| w.metric(Metric::BreakerTransition(b, s)))
}

#[test]
fn opens_after_n_failures_and_falls_back() {
    // test_opens_after_n_failures_and_falls_back
    let mut w = World::new(config(
        json!({"rust_weight_bp": 10000, "breaker": breaker(3, 60000)}),
    ));
    w.upstream[Backend::Rust.index()] = Upstream::status(500);
    for _ in 0..3 {
        let r = w.post(&[]);
        assert_eq!((r.status, r.upstream), (500, Some(Backend::Rust)));
        assert_eq!(r.fallback, None);
    }
    for _ in 0..5 {
        let r = w.post(&[]);
        assert_eq!((r.status, r.upstream), (200, Some(Backend::Python)));
        assert_eq!(r.fallback.as_deref(), Some("rust->python"));
        assert_eq!(
            r.routed,
            Some(Backend::Python),
            "the routing header names the fallback"
        );
    }
    assert_eq!(w.metric(Metric::Requests(Backend::Rust, Outcome::Error)), 3);
    assert_eq!(
        w.metric(Metric::Requests(Backend::Python, Outcome::Success)),
        5
    );
    assert_eq!(w.metric(Metric::Fallback(Backend::Rust)), 5);
    assert_eq!(w.metric(Metric::Fallback(Backend::Python)), 0);
    assert_eq!(transitions(&mut w, Backend::Rust), [1, 0, 0]);
    assert_eq!(w.metric(Metric::BreakerState(Backend::Rust)), 2);
    assert_eq!(w.metric(Metric::BreakerState(Backend::Python)), 0);
    assert_eq!(
        w.envoy
            .logs()
            .iter()
            .filter(|(l, m)| *l == LogLevel::Info
                && m == "nd-filter: circuit for rust closed -> open (consecutive failures 3)")
            .count(),
        1
    );
}

#[test]
fn a_success_resets_the_consecutive_count() {
    // test_a_success_resets_the_consecutive_count
    let mut w = World::new(config(
        json!({"rust_weight_bp": 10000, "breaker": breaker(3, 60000)}),
    ));
    for _ in 0..3 {
        w.upstream[Backend::Rust.index()] = Upstream::status(503);
        assert_eq!(w.post(&[]).status, 503);
        assert_eq!(w.post(&[]).status, 503);
        w.upstream[Backend::Rust.index()] = Upstream::ok();
        assert_eq!(w.post(&[]).upstream, Some(Backend::Rust));
    }
    assert_eq!(transitions(&mut w, Backend::Rust), [0, 0, 0]);
    // And without the successes the same failures open it.
    w.upstream[Backend::Rust.index()] = Upstream::status(503);
    w.served_by(3, &[]);
    assert_eq!(transitions(&mut w, Backend::Rust), [1, 0, 0]);
}

#[test]
fn status_zero_and_5xx_are_failures_4xx_are_not() {
    // test_4xx_is_not_a_failure, and the status-0 case of report()
    for (upstream, failure) in [
        (Upstream::status(422), false),
        (Upstream::status(404), false),
        (Upstream::status(499), false),
        (Upstream::status(500), true),
        (Upstream::status(599), true),
        (Upstream::NoStatus, true),
    ] {
        let mut w = World::new(config(
            json!({"rust_weight_bp": 10000, "breaker": breaker(2, 60000)}),
        ));
        w.upstream[Backend::Rust.index()] = upstream.clone();
        for _ in 0..5 {
            w.post(&[]);
        }
        let (ok, err) = (
            w.metric(Metric::Requests(Backend::Rust, Outcome::Success)),
            w.metric(Metric::Requests(Backend::Rust, Outcome::Error)),
        );
        if failure {
            // Two failures open the circuit; the other three fall back.
            assert_eq!((ok, err), (0, 2), "{upstream:?}");
            assert_eq!(w.metric(Metric::Fallback(Backend::Rust)), 3, "{upstream:?}");
            assert_eq!(w.metric(Metric::BreakerState(Backend::Rust)), 2);
        } else {
            assert_eq!((ok, err), (5, 0), "{upstream:?}");
            assert_eq!(
                transitions(&mut w, Backend::Rust),
                [0, 0, 0],
                "{upstream:?}"
            );
        }
    }
}

#[test]
fn state_is_shared_across_workers() {
    // test_state_is_shared_across_workers: one circuit in shared data; a
    // worker that did not fail itself sees the change by its next tick.
    let mut w = World::with_workers(
        2,
        config(json!({"rust_weight_bp": 10000, "breaker": breaker(4, 60000)})),
    );
    // Worker 1 has read (and cached) the closed circuit.
    assert_eq!(w.post_on(1, &[], PREDICT).upstream, Some(Backend::Rust));
    w.upstream[Backend::Rust.index()] = Upstream::status(500);
    for i in 0..4 {
        // Failures on both workers add up in the one circuit.
        assert_eq!(w.post_on(i % 2, &[], PREDICT).status, 500);
    }
    assert_eq!(
        transitions(&mut w, Backend::Rust),
        [1, 0, 0],
        "one circuit, opened once"
    );
    for i in 0..40 {
        assert_eq!(
            w.post_on(i % 2, &[], PREDICT).upstream,
            Some(Backend::Python)
        );
    }
    assert_eq!(w.metric(Metric::Requests(Backend::Rust, Outcome::Error)), 4);

    // Staleness bound: worker 1 only read the circuit, worker 0 opened it.
    let mut w = World::with_workers(
        2,
        config(json!({"rust_weight_bp": 10000, "breaker": breaker(2, 60000)})),
    );
    assert_eq!(w.post_on(1, &[], PREDICT).upstream, Some(Backend::Rust));
    w.upstream[Backend::Rust.index()] = Upstream::status(500);
    w.post_on(0, &[], PREDICT);
    w.post_on(0, &[], PREDICT);
    assert_eq!(w.post_on(0, &[], PREDICT).upstream, Some(Backend::Python));
    w.upstream[Backend::Rust.index()] = Upstream::ok();
    assert_eq!(
        w.post_on(1, &[], PREDICT).upstream,
        Some(Backend::Rust),
        "worker 1 routes by its cached read until its tick"
    );
    w.tick();
    assert_eq!(w.post_on(1, &[], PREDICT).upstream, Some(Backend::Python));
}

#[test]
fn resets_and_timeouts_count_as_failures() {
    // test_resets_and_timeouts_count_as_failures
    let mut w = World::new(config(
        json!({"rust_weight_bp": 10000, "breaker": breaker(4, 60000)}),
    ));
    w.upstream[Backend::Rust.index()] = Upstream::Gone { envoy_status: 503 };
    assert_eq!([w.post(&[]).status, w.post(&[]).status], [503, 503]);
    w.upstream[Backend::Rust.index()] = Upstream::Gone { envoy_status: 504 };
    assert_eq!([w.post(&[]).status, w.post(&[]).status], [504, 504]);
    w.upstream[Backend::Rust.index()] = Upstream::ok();
    let r = w.post(&[]);
    assert_eq!(
        (r.upstream, r.fallback.as_deref()),
        (Some(Backend::Python), Some("rust->python"))
    );
    assert_eq!(w.metric(Metric::Requests(Backend::Rust, Outcome::Error)), 4);
}

#[test]
fn dead_backend_opens_and_falls_back() {
    // test_dead_backend_opens_and_falls_back
    let mut w = World::new(config(
        json!({"rust_weight_bp": 10000, "breaker": breaker(2, 60000)}),
    ));
    assert_eq!(w.served_by(3, &[]), all(Backend::Rust, 3));
    w.upstream[Backend::Rust.index()] = Upstream::Gone { envoy_status: 503 };
    assert_eq!([w.post(&[]).status, w.post(&[]).status], [503, 503]);
    let r = w.post(&[]);
    assert_eq!(
        (r.status, r.upstream, r.fallback.as_deref()),
        (200, Some(Backend::Python), Some("rust->python"))
    );
}

#[test]
fn half_open_probe_recovers() {
    // test_half_open_probe_recovers: closed -> open -> half-open -> open -> half-open -> closed
    let mut w = World::new(config(
        json!({"rust_weight_bp": 10000, "breaker": breaker(2, 1000)}),
    ));
    w.upstream[Backend::Rust.index()] = Upstream::status(500);
    assert_eq!([w.post(&[]).status, w.post(&[]).status], [500, 500]);
    assert_eq!(w.post(&[]).upstream, Some(Backend::Python));
    assert_eq!(w.metric(Metric::BreakerState(Backend::Rust)), 2);
    // Probe fails: open again, with a new recovery time.
    w.envoy.advance(1100);
    let r = w.post(&[]);
    assert_eq!((r.status, r.upstream), (500, Some(Backend::Rust)));
    assert_eq!(w.post(&[]).upstream, Some(Backend::Python));
    // Backend healthy again: the next probe closes the circuit.
    w.upstream[Backend::Rust.index()] = Upstream::ok();
    assert_eq!(
        w.post(&[]).upstream,
        Some(Backend::Python),
        "still open before recovery"
    );
    w.envoy.advance(1100);
    let r = w.post(&[]);
    assert_eq!(
        (r.status, r.upstream, r.fallback),
        (200, Some(Backend::Rust), None)
    );
    assert_eq!(w.served_by(20, &[]), all(Backend::Rust, 20));
    assert_eq!(transitions(&mut w, Backend::Rust), [2, 2, 1]);
    assert_eq!(w.metric(Metric::BreakerState(Backend::Rust)), 0);
    for line in [
        "circuit for rust closed -> open (consecutive failures 2)",
        "circuit for rust open -> half_open",
        "circuit for rust half_open -> open",
        "circuit for rust half_open -> closed (consecutive failures 0)",
    ] {
        assert!(w.envoy.logged(line) >= 1, "{line}: {:?}", w.envoy.logs());
    }
}

#[test]
fn half_open_admits_limited_probes() {
    // test_half_open_admits_limited_probes: while the probe is in flight,
    // other requests still fall back.
    let mut w = World::new(config(json!({"rust_weight_bp": 10000,
        "breaker": {"failure_threshold": 1, "recovery_ms": 1500, "half_open_max_probes": 1}})));
    w.upstream[Backend::Rust.index()] = Upstream::status(500);
    assert_eq!(w.post(&[]).status, 500);
    w.envoy.advance(1600);
    w.upstream[Backend::Rust.index()] = Upstream::ok();
    let mut probe = w.stream(0);
    probe.request_headers(&[], false);
    assert_eq!(probe.routed(), Some(Backend::Rust));
    for _ in 0..5 {
        assert_eq!(w.post(&[]).upstream, Some(Backend::Python));
    }
    probe.request_body(PREDICT, true);
    probe.response_headers(Some(200), &[], false);
    probe.response_body(&prediction(0.0), true);
    probe.done();
    assert_eq!(
        w.post(&[]).upstream,
        Some(Backend::Rust),
        "the probe closed it"
    );
    assert_eq!(w.metric(Metric::BreakerState(Backend::Rust)), 0);
}

#[test]
fn an_abandoned_probe_frees_its_slot() {
    // The client of a probe goes away (on_log without a response): the
    // outcome says nothing, the next request may probe.
    let mut w = World::new(config(json!({"rust_weight_bp": 10000,
        "breaker": {"failure_threshold": 1, "recovery_ms": 1500, "half_open_max_probes": 1}})));
    w.upstream[Backend::Rust.index()] = Upstream::status(500);
    w.post(&[]);
    w.envoy.advance(1600);
    let probe = w.post_abandoned(&[]);
    assert_eq!(probe.routed(), Some(Backend::Rust));
    assert_eq!(
        w.metric(Metric::Requests(Backend::Rust, Outcome::Aborted)),
        1
    );
    assert_eq!(
        w.metric(Metric::BreakerState(Backend::Rust)),
        1,
        "still half-open"
    );
    w.upstream[Backend::Rust.index()] = Upstream::ok();
    assert_eq!(w.post(&[]).upstream, Some(Backend::Rust), "a new probe");
    assert_eq!(w.metric(Metric::BreakerState(Backend::Rust)), 0);
}

#[test]
fn both_open_fails_open() {
    // test_both_open_fails_open
    let mut w = World::new(config(
        json!({"rust_weight_bp": 10000, "breaker": breaker(2, 60000)}),
    ));
    w.upstream = [Upstream::status(500), Upstream::status(500)];
    assert_eq!([w.post(&[]).status, w.post(&[]).status], [500, 500]);
    let two: Vec<_> = (0..2).map(|_| w.post(&[]).upstream).collect();
    assert_eq!(
        two,
        vec![Some(Backend::Python); 2],
        "rust open: fallback (python opens)"
    );
    let r = w.post(&[]);
    assert_eq!(
        (r.status, r.upstream),
        (500, Some(Backend::Rust)),
        "fail_open: the split's choice"
    );
    assert_eq!(r.fallback, None);
    assert_eq!(w.metric(Metric::BothOpen(BothOpenAction::FailOpen)), 1);
    assert_eq!(w.metric(Metric::BothOpen(BothOpenAction::Reject)), 0);
}

#[test]
fn both_open_rejects_when_configured() {
    // test_both_open_rejects_when_configured
    let mut w = World::new(config(json!({"rust_weight_bp": 10000,
        "breaker": {"failure_threshold": 2, "recovery_ms": 60000, "both_open": "reject"}})));
    w.upstream = [Upstream::status(500), Upstream::status(500)];
    for _ in 0..4 {
        w.post(&[]);
    }
    let r = w.post(&[]);
    assert_eq!(r.status, 503);
    assert_eq!(
        r.actions[0],
        Action::Pause,
        "the request stops at the filter"
    );
    assert_eq!(r.upstream, None);
    assert_eq!(r.routed, None, "no routing header");
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["error"]["code"], "not_ready");
    assert_eq!(
        r.body,
        br#"{"error": {"code": "not_ready", "message": "both backends are unavailable (circuits open)"}}"#
    );
    assert_eq!(r.fallback.as_deref(), Some("rust->none"));
    let reply = w
        .envoy
        .stream(w.envoy.stream_ids().last().copied().unwrap())
        .local_reply
        .unwrap();
    assert_eq!(
        reply.headers,
        vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("x-nd-fallback".to_string(), "rust->none".to_string()),
        ]
    );
    assert_eq!(w.metric(Metric::BothOpen(BothOpenAction::Reject)), 1);
    assert_eq!(
        w.metric(Metric::Requests(Backend::Rust, Outcome::Rejected)),
        1
    );
    // The local reply passing the response callbacks is not an outcome.
    assert_eq!(w.metric(Metric::Requests(Backend::Rust, Outcome::Error)), 2);
    assert_eq!(
        w.metric(Metric::Requests(Backend::Rust, Outcome::Aborted)),
        0
    );
    assert_eq!(
        w.metric(Metric::Requests(Backend::Python, Outcome::Error)),
        2
    );
}

#[test]
fn a_clean_success_costs_no_shared_data_write() {
    // The data path's cost claim: closed circuit, successes: no writes, and
    // reads come from the VM's cache until the tick drops it.
    let mut w = World::new(config(
        json!({"rust_weight_bp": 5000, "breaker": breaker(3, 60000)}),
    ));
    let (sets, gets) = (*w.envoy.store.sets.borrow(), *w.envoy.store.gets.borrow());
    w.served_by(20, &[]);
    assert_eq!(*w.envoy.store.sets.borrow(), sets);
    assert_eq!(
        *w.envoy.store.gets.borrow(),
        gets + 2,
        "one read per backend"
    );
    w.tick();
    w.served_by(20, &[]);
    assert_eq!(*w.envoy.store.gets.borrow(), gets + 4);
    // A failure writes (and the next success, resetting the count, too).
    w.upstream = [Upstream::status(500), Upstream::status(500)];
    w.post(&[]);
    assert_eq!(*w.envoy.store.sets.borrow(), sets + 1);
}
