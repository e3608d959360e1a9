//! tests/filter/test_routing.py: split, stickiness, override, the routing header.

use super::*;
use crate::metrics::Outcome;
use crate::split;

#[test]
fn split_ratio_without_key() {
    // test_split_ratio_without_key
    let mut w = World::new(config(json!({"rust_weight_bp": 2500})));
    let seen = w.served_by(400, &[]);
    // The keyless sequence hits the weight within a few requests, not just on average.
    assert!(seen[1].abs_diff(100) <= 2, "{seen:?}");
    assert_eq!(seen[0] + seen[1], 400);
    assert_eq!(
        w.metric(Metric::Requests(Backend::Rust, Outcome::Success)),
        seen[1] as u64
    );
    assert_eq!(
        w.metric(Metric::Requests(Backend::Python, Outcome::Success)),
        seen[0] as u64
    );
    // Any window is close to the weight too.
    let mut w = World::new(config(json!({"rust_weight_bp": 2500})));
    assert!(w.served_by(20, &[])[1].abs_diff(5) <= 1);
}

#[test]
fn split_extremes() {
    // test_split_extremes
    let mut w = World::new(config(json!({"rust_weight_bp": 0})));
    assert_eq!(w.served_by(50, &[]), all(Backend::Python, 50));
    let mut w = World::new(config(json!({"rust_weight_bp": 10000})));
    assert_eq!(w.served_by(50, &[]), all(Backend::Rust, 50));
}

/// Where each of `keys` lands at `weight` (asserting each key lands on one backend).
fn assignment(weight: u32, keys: &[String]) -> Vec<Backend> {
    let mut w = World::new(config(
        json!({"rust_weight_bp": weight, "sticky_header": "x-user-id"}),
    ));
    keys.iter()
        .map(|k| {
            let a = w.post(&[("x-user-id", k)]).upstream;
            let b = w.post(&[("x-user-id", k)]).upstream;
            assert_eq!(a, b, "key {k} was served by both backends");
            a.unwrap()
        })
        .collect()
}

#[test]
fn sticky_key_lands_on_one_backend_and_only_moves_to_rust() {
    // test_sticky_key_lands_on_one_backend_and_only_moves_to_rust
    let keys: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
    let low = assignment(2000, &keys);
    let high = assignment(5000, &keys);
    let share = |a: &[Backend]| a.iter().filter(|b| **b == Backend::Rust).count() as f64 / 200.0;
    assert!((0.12..=0.28).contains(&share(&low)), "{}", share(&low));
    assert!((0.40..=0.60).contains(&share(&high)), "{}", share(&high));
    for (i, k) in keys.iter().enumerate() {
        // The key's bucket decides, nothing else.
        let expect = split::backend_for(split::key_bucket(k.as_bytes()), 2000);
        assert_eq!(low[i], expect, "{k}");
        assert!(
            !(low[i] == Backend::Rust && high[i] == Backend::Python),
            "raising the weight moved {k} back to python"
        );
    }
    assert!((0..200).any(|i| low[i] == Backend::Python && high[i] == Backend::Rust));
}

#[test]
fn requests_without_the_sticky_header_still_split() {
    // test_requests_without_the_sticky_header_still_split
    let mut w = World::new(config(
        json!({"rust_weight_bp": 5000, "sticky_header": "x-user-id"}),
    ));
    let seen = w.served_by(100, &[]);
    assert!((45..=55).contains(&seen[1]), "{seen:?}");
    // An empty key is no key.
    let seen = w.served_by(100, &[("x-user-id", "")]);
    assert!((45..=55).contains(&seen[1]), "{seen:?}");
}

#[test]
fn override_header_only_when_enabled() {
    // test_override_header_only_when_enabled
    let mut off = World::new(config(json!({"rust_weight_bp": 0})));
    assert_eq!(
        off.served_by(20, &[("x-nd-override", "rust")]),
        all(Backend::Python, 20)
    );
    let mut on = World::new(config(
        json!({"rust_weight_bp": 0, "override": {"enabled": true}}),
    ));
    assert_eq!(
        on.served_by(20, &[("x-nd-override", "rust")]),
        all(Backend::Rust, 20)
    );
    assert_eq!(
        on.served_by(20, &[("x-nd-override", "RUST")]),
        all(Backend::Rust, 20)
    );
    assert_eq!(
        on.served_by(10, &[("x-nd-override", "go")]),
        all(Backend::Python, 10),
        "invalid values are ignored"
    );
    // The override beats stickiness.
    let mut sticky = World::new(config(json!({
        "rust_weight_bp": 10000, "sticky_header": "x-user-id", "override": {"enabled": true}
    })));
    assert_eq!(
        sticky.served_by(10, &[("x-user-id", "u1"), ("x-nd-override", "python")]),
        all(Backend::Python, 10)
    );
    assert_eq!(
        sticky.served_by(10, &[("x-user-id", "u1")]),
        all(Backend::Rust, 10)
    );
}

#[test]
fn forged_routing_header_is_overwritten() {
    // test_forged_routing_header_is_overwritten
    let mut w = World::new(config(json!({"rust_weight_bp": 0})));
    let mut req = w.stream(0);
    req.request_headers(&[("x-nd-backend", "rust")], false);
    assert_eq!(
        req.request_header("x-nd-backend").as_deref(),
        Some("python")
    );
    let headers = w.envoy.stream(req.id).request_headers;
    assert_eq!(
        headers.iter().filter(|(k, _)| k == "x-nd-backend").count(),
        1,
        "the upstream sees only the filter's value: {headers:?}"
    );
    let mut w = World::new(config(json!({"rust_weight_bp": 10000})));
    assert_eq!(
        w.served_by(30, &[("x-nd-backend", "python")]),
        all(Backend::Rust, 30)
    );
}

#[test]
fn custom_routing_header_name() {
    // test_custom_routing_header_name
    let mut w = World::new(config(
        json!({"rust_weight_bp": 10000, "routing_header": "x-route-to"}),
    ));
    let mut req = w.stream(0);
    req.request_headers(&[], true);
    assert_eq!(req.request_header("x-route-to").as_deref(), Some("rust"));
    assert_eq!(req.request_header("x-nd-backend"), None);
}

#[test]
fn without_a_configuration_the_filter_does_nothing() {
    // Envoy refused every configuration (test_validate): requests pass untouched.
    let envoy = FakeEnvoy::new();
    let host = envoy.vm();
    *envoy.plugin_config.borrow_mut() = b"{}".to_vec();
    let mut root = Root::new(host);
    assert!(!RootContext::on_configure(&mut root, 2));
    let mut req = Req {
        filter: root.filter(1),
        id: 1,
        envoy: envoy.clone(),
    };
    assert_eq!(req.request_headers(&[], false), Action::Continue);
    assert_eq!(req.request_body(PREDICT, true), Action::Continue);
    assert_eq!(req.response_headers(Some(500), &[], true), Action::Continue);
    req.done();
    assert_eq!(req.request_header("x-nd-backend"), None);
    assert_eq!(envoy.queued(), 0);
}
