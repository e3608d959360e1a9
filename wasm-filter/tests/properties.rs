//! Property tests (proptest) of the filter's pure logic: the split, the
//! circuit breaker and the response comparator, over generated inputs.

use proptest::prelude::*;
use wasm_filter::breaker::{Admission, Breaker, BreakerConfig, State};
use wasm_filter::compare::{compare, rel_diff, within, Answer, Outcome, Tolerance};
use wasm_filter::config::Backend;
use wasm_filter::split::{backend_for, key_bucket, BUCKETS};

proptest! {
    /// Raising the weight never moves a sticky key from Rust back to Python.
    #[test]
    fn split_is_monotonic_in_the_weight(
        key in proptest::collection::vec(any::<u8>(), 0..64),
        w1 in 0u32..=10_000,
        w2 in 0u32..=10_000,
    ) {
        let (lo, hi) = (w1.min(w2), w1.max(w2));
        let bucket = key_bucket(&key);
        prop_assert!(bucket < BUCKETS);
        if backend_for(bucket, lo) == Backend::Rust {
            prop_assert_eq!(backend_for(bucket, hi), Backend::Rust);
        }
        prop_assert_eq!(backend_for(bucket, 0), Backend::Python);
        prop_assert_eq!(backend_for(bucket, 10_000), Backend::Rust);
    }
}

#[derive(Debug, Clone)]
enum Event {
    /// A request arrives `dt` ms after the previous event; if admitted, it
    /// ends in success (true) or failure (false), or is abandoned (None).
    Request { dt: u64, ok: Option<bool> },
}

fn config() -> impl Strategy<Value = BreakerConfig> {
    (1u32..8, 1u64..200, 1u32..4, 1u32..4).prop_map(|(t, r, p, s)| BreakerConfig {
        failure_threshold: t,
        recovery_ms: r,
        half_open_max_probes: p,
        half_open_successes: s,
    })
}

fn events() -> impl Strategy<Value = Vec<Event>> {
    proptest::collection::vec(
        (
            0u64..100,
            prop_oneof![Just(Some(true)), Just(Some(false)), Just(None)],
        )
            .prop_map(|(dt, ok)| Event::Request { dt, ok }),
        0..200,
    )
}

proptest! {
    /// Never open without `failure_threshold` consecutive failures (or a
    /// failed probe); half-open never has more than `half_open_max_probes`
    /// probes out within one window; the shared-data form round-trips.
    #[test]
    fn breaker_invariants(cfg in config(), events in events()) {
        let mut b = Breaker::default();
        let mut now = 1_000u64;
        let mut streak = 0u32; // consecutive failures reported while closed
        let mut out: Vec<bool> = Vec::new(); // probes admitted and not reported (true)
        for Event::Request { dt, ok } in events {
            now += dt;
            let before = b;
            let admission = b.admit(&cfg, now);
            if before.state == State::Closed {
                prop_assert_eq!(admission, Admission::Allow);
            }
            if before.state == State::Open && now < before.opened_at_ms + cfg.recovery_ms {
                prop_assert_eq!(admission, Admission::Deny);
            }
            if admission == Admission::Probe {
                out.push(true);
            }
            prop_assert!(b.state != State::HalfOpen || b.probes_in_flight <= cfg.half_open_max_probes);
            let probe = admission == Admission::Probe;
            if admission == Admission::Deny {
                continue;
            }
            let state_before = b.state;
            match ok {
                Some(true) => {
                    b.on_success(&cfg, probe);
                    if state_before == State::Closed { streak = 0; }
                }
                Some(false) => {
                    b.on_failure(&cfg, probe, now);
                    if state_before == State::Closed { streak += 1; }
                    if state_before == State::Closed && b.state == State::Open {
                        prop_assert!(streak >= cfg.failure_threshold,
                            "opened after {} failures, threshold {}", streak, cfg.failure_threshold);
                    }
                    if state_before == State::HalfOpen && probe {
                        prop_assert_eq!(b.state, State::Open);
                    }
                }
                None => b.on_abandoned(probe),
            }
            if probe { out.pop(); }
            if b.state == State::Closed && state_before != State::Closed {
                streak = 0;
                prop_assert_eq!(b, Breaker::default());
            }
            if b.state == State::Open && state_before == State::Closed {
                streak = 0;
            }
            prop_assert_eq!(Breaker::decode(&b.encode()), Some(b));
        }
    }

    /// Garbage in shared data is never trusted.
    #[test]
    fn breaker_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Some(b) = Breaker::decode(&bytes) {
            prop_assert_eq!(b.encode().to_vec(), bytes);
        }
    }
}

fn body(values: &[f64]) -> String {
    let rows: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                r#"{{"unique_id":"s{}","ds":"2024-01-{:02}","MLP":{v:?}}}"#,
                i % 3,
                i / 3 + 1
            )
        })
        .collect();
    format!(r#"{{"model":"m","predictions":[{}]}}"#, rows.join(","))
}

fn kind(o: &Outcome) -> u8 {
    match o {
        Outcome::Match { .. } => 0,
        Outcome::Mismatch { .. } => 1,
        Outcome::Error(_) => 2,
    }
}

proptest! {
    /// Swapping primary and shadow changes neither the verdict nor the
    /// largest relative difference.
    #[test]
    fn comparison_is_symmetric(
        values in proptest::collection::vec(-1e6f64..1e6, 1..20),
        noise in proptest::collection::vec(-1e-3f64..1e-3, 20),
        rel in 0.0f64..1e-3,
        abs in 0.0f64..1e-3,
    ) {
        let other: Vec<f64> = values.iter().zip(&noise).map(|(v, n)| v * (1.0 + n)).collect();
        let (a, b) = (body(&values), body(&other));
        let tol = Tolerance { abs, rel };
        let ab = compare(Answer { status: 200, body: a.as_bytes() }, Answer { status: 200, body: b.as_bytes() }, tol);
        let ba = compare(Answer { status: 200, body: b.as_bytes() }, Answer { status: 200, body: a.as_bytes() }, tol);
        prop_assert_eq!(kind(&ab), kind(&ba));
        let max_rel = |o: &Outcome| match o {
            Outcome::Match { max_rel } | Outcome::Mismatch { max_rel, .. } => *max_rel,
            Outcome::Error(_) => f64::NAN,
        };
        prop_assert_eq!(max_rel(&ab), max_rel(&ba));
        // Identical answers always match with 0 difference.
        let same = compare(Answer { status: 200, body: a.as_bytes() }, Answer { status: 200, body: a.as_bytes() }, tol);
        prop_assert_eq!(same, Outcome::Match { max_rel: 0.0 });
        // The verdict is exactly "every value within tolerance".
        let all_within = values.iter().zip(&other).all(|(x, y)| within(*x, *y, tol));
        prop_assert_eq!(kind(&ab) == 0, all_within);
    }

    /// Tolerance edges: symmetric, and a difference just inside the relative
    /// tolerance passes while one clearly outside fails.
    #[test]
    fn tolerance_edges(a in -1e9f64..1e9, rel in 1e-9f64..1e-2) {
        prop_assume!(a.abs() > 1e-3);
        let tol = Tolerance { abs: 0.0, rel };
        let inside = a * (1.0 + rel * 0.5);
        let outside = a * (1.0 + rel * 4.0);
        prop_assert!(within(a, inside, tol) && within(inside, a, tol));
        prop_assert!(!within(a, outside, tol) && !within(outside, a, tol));
        prop_assert_eq!(rel_diff(a, outside), rel_diff(outside, a));
        let exact = Tolerance { abs: 0.0, rel: 0.0 };
        prop_assert!(within(a, a, exact));
    }
}
