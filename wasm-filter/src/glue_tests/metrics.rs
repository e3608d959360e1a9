//! tests/filter/test_metrics.py: the stats the filter defines and their values.

use super::*;
use crate::metrics::{self, Kind, Outcome};

#[test]
fn every_stat_is_defined_once_per_vm_with_its_type() {
    // test_every_documented_family_is_exported_with_its_labels (names and
    // types; the labels come from the names, tested in metrics/tests.rs).
    let cfg = config(json!({"rust_weight_bp": 5000, "shadow": {"share_bp": 10000}}));
    let mut w = World::with_workers(2, cfg.clone());
    let defined = w.envoy.stats();
    let expected = metrics::all();
    assert_eq!(defined.len(), expected.len());
    for (s, m) in defined.iter().zip(&expected) {
        assert_eq!((s.name.as_str(), s.kind), (m.name().as_str(), m.kind()));
        assert_eq!(s.defined, 2, "{}: once per worker VM", s.name);
    }
    assert!(w.reconfigure(cfg));
    assert!(
        w.envoy.stats().iter().all(|s| s.defined == 2),
        "not again on reconfiguration"
    );
    // Traffic touches every kind.
    w.served_by(10, &[]);
    w.answer_shadows();
    assert_eq!(
        w.metric(Metric::ShadowResult(
            Backend::Rust,
            metrics::ShadowResult::Match
        )) + w.metric(Metric::ShadowResult(
            Backend::Python,
            metrics::ShadowResult::Match
        )),
        10
    );
    let histograms: usize = w
        .envoy
        .stats()
        .iter()
        .filter(|s| s.kind == Kind::Histogram)
        .map(|s| s.samples.len())
        .sum();
    assert_eq!(histograms, 10);
}

#[test]
fn values_follow_the_traffic() {
    // test_values_follow_the_traffic
    let cfg = config(json!({"rust_weight_bp": 10000,
        "breaker": {"failure_threshold": 2, "recovery_ms": 60000}}));
    let mut w = World::with_workers(2, cfg.clone());
    // The main thread's root context (Envoy configures one there too).
    w.workers.push(Worker {
        host: w.envoy.vm(),
        roots: Vec::new(),
        current: None,
    });
    assert!(w.configure(2, &cfg));
    w.upstream[Backend::Rust.index()] = Upstream::status(500);
    let codes: Vec<u32> = (0..6).map(|_| w.post(&[]).status).collect();
    assert_eq!(codes, [500, 500, 200, 200, 200, 200]);
    assert_eq!(w.metric(Metric::Requests(Backend::Rust, Outcome::Error)), 2);
    assert_eq!(
        w.metric(Metric::Requests(Backend::Python, Outcome::Success)),
        4
    );
    assert_eq!(w.metric(Metric::Fallback(Backend::Rust)), 4);
    assert_eq!(
        w.metric(Metric::BreakerTransition(
            Backend::Rust,
            crate::breaker::State::Open
        )),
        1
    );
    assert_eq!(w.metric(Metric::BreakerState(Backend::Rust)), 2);
    assert_eq!(w.metric(Metric::RustWeight), 10000);
    assert_eq!(w.metric(Metric::Config(true)), 3, "one per root context");
    assert_eq!(w.metric(Metric::Config(false)), 0);
}

#[test]
fn counters_reach_envoy_on_the_tick() {
    // A request costs no metric hostcall: counters are added up in the VM and
    // flushed by the root context's tick; gauges and histograms go at once.
    let mut w = World::new(config(json!({"rust_weight_bp": 10000,
        "breaker": {"failure_threshold": 1, "recovery_ms": 60000}})));
    let name = Metric::Requests(Backend::Rust, Outcome::Error).name();
    w.upstream[Backend::Rust.index()] = Upstream::status(500);
    w.post(&[]);
    assert_eq!(w.envoy.stat(&name).unwrap().value, 0);
    assert_eq!(
        w.envoy
            .stat(&Metric::BreakerState(Backend::Rust).name())
            .unwrap()
            .value,
        2,
        "the gauge at once"
    );
    w.tick();
    assert_eq!(w.envoy.stat(&name).unwrap().value, 1);
    w.tick();
    assert_eq!(w.envoy.stat(&name).unwrap().value, 1, "flushed once");
}
