//! Property tests (proptest) of the filter's pure logic: the split, the
//! circuit breaker and the response comparator, over generated inputs.

use proptest::prelude::*;
use wasm_filter::breaker::{Admission, Breaker, BreakerConfig, State};
use wasm_filter::compare::{
    compare, compare_shaped, rel_diff, within, Answer, AnswerShape, Orient, Outcome, Tolerance,
};
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

fn ok(body: &str) -> Answer<'_> {
    Answer {
        status: 200,
        body: body.as_bytes(),
    }
}

/// One answer row: series id, time stamp (JSON text: epoch ms or ISO), value.
type Rec = (String, String, f64);

/// `rows` in `orient` at `/forecast`, taken in the order `order`.
fn render(orient: &Orient, rows: &[Rec], order: &[usize]) -> String {
    let rows: Vec<&Rec> = order.iter().map(|&i| &rows[i]).collect();
    let cells = |(id, ts, y): &Rec| format!(r#""{id}",{ts},{y:?}"#);
    let frame = match orient {
        Orient::Records => {
            let items: Vec<String> = rows
                .iter()
                .map(|(id, ts, y)| format!(r#"{{"y":{y:?},"series":"{id}","timestamp":{ts}}}"#))
                .collect();
            format!("[{}]", items.join(","))
        }
        Orient::Columns => {
            let col = |f: &dyn Fn(&Rec) -> String| {
                rows.iter().map(|r| f(r)).collect::<Vec<_>>().join(",")
            };
            format!(
                r#"{{"series":[{}],"timestamp":[{}],"y":[{}]}}"#,
                col(&|r| format!("\"{}\"", r.0)),
                col(&|r| r.1.clone()),
                col(&|r| format!("{:?}", r.2)),
            )
        }
        Orient::Split => {
            let data: Vec<String> = rows.iter().map(|r| format!("[{}]", cells(r))).collect();
            let index: Vec<String> = order.iter().map(|i| i.to_string()).collect();
            format!(
                r#"{{"columns":["series","timestamp","y"],"index":[{}],"data":[{}]}}"#,
                index.join(","),
                data.join(",")
            )
        }
        Orient::Values(_) => {
            let data: Vec<String> = rows.iter().map(|r| format!("[{}]", cells(r))).collect();
            format!("[{}]", data.join(","))
        }
    };
    format!(r#"{{"model":"m","forecast":{frame}}}"#)
}

/// Up to 12 rows with distinct (id, time) keys, and a permutation of them.
fn records() -> impl Strategy<Value = (Vec<Rec>, Vec<usize>)> {
    (1usize..12, any::<bool>())
        .prop_flat_map(|(n, epoch)| {
            (
                proptest::collection::vec(-1e6f64..1e6, n),
                Just((0..n).collect::<Vec<usize>>()).prop_shuffle(),
                Just(epoch),
            )
        })
        .prop_map(|(values, order, epoch)| {
            let rows = values
                .into_iter()
                .enumerate()
                .map(|(i, y)| {
                    let day = (i / 3) as u64;
                    let ts = if epoch {
                        (1_706_659_200_000 + day * 86_400_000).to_string()
                    } else {
                        format!("\"2024-01-{:02}\"", day + 1)
                    };
                    (format!("s{}", i % 3), ts, y)
                })
                .collect();
            (rows, order)
        })
}

proptest! {
    /// In every orient, an answer matches its rows in any order, and a value
    /// moved far outside the tolerance is a mismatch naming its row.
    #[test]
    fn every_orient_matches_any_row_order_and_catches_a_change(
        (rows, order) in records(),
        pick in any::<proptest::sample::Index>(),
    ) {
        let tol = Tolerance { abs: 1e-6, rel: 1e-4 };
        let orients = [
            Orient::Records,
            Orient::Columns,
            Orient::Split,
            Orient::Values(vec!["series".into(), "timestamp".into(), "y".into()]),
        ];
        let identity: Vec<usize> = (0..rows.len()).collect();
        let k = pick.index(rows.len());
        let mut changed = rows.clone();
        changed[k].2 += 1.0 + changed[k].2.abs();
        for orient in orients {
            let shape = AnswerShape {
                at: "/forecast".into(),
                orient: orient.clone(),
                id: Some("series".into()),
                time: Some("timestamp".into()),
                model_at: "/model".into(),
            };
            let (a, b) = (render(&orient, &rows, &identity), render(&orient, &rows, &order));
            prop_assert_eq!(compare_shaped(ok(&a), ok(&b), tol, &shape), Outcome::Match { max_rel: 0.0 });
            let c = render(&orient, &changed, &order);
            let (id, ts, _) = &rows[k];
            let field = format!("forecast[series={id},timestamp={}].y", ts.trim_matches('"'));
            match compare_shaped(ok(&a), ok(&c), tol, &shape) {
                Outcome::Mismatch { field: f, .. } => prop_assert_eq!(f, field),
                other => prop_assert!(false, "{:?}: {:?}", orient, other),
            }
        }
    }
}
