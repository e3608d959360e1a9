//! tests/filter/test_reconfig.py and test_validate.py: configurations taken
//! and refused by `on_configure`, a new root context per update (ECDS),
//! breaker state surviving it.

use super::*;
use crate::breaker::store;
use crate::plugin::{SHADOW_QUEUE, TICK};
use proxy_wasm::types::LogLevel;

#[test]
fn new_weight_applies_without_restart() {
    // test_new_weight_applies_without_restart
    let mut w = World::new(config(json!({"rust_weight_bp": 0})));
    assert_eq!(w.served_by(20, &[]), all(Backend::Python, 20));
    assert_eq!(w.metric(Metric::RustWeight), 0);
    // A stream that started before the update finishes under the old configuration.
    let mut old = w.stream(0);
    assert!(w.reconfigure(config(json!({"rust_weight_bp": 10000}))));
    assert_eq!(w.served_by(20, &[]), all(Backend::Rust, 20));
    assert_eq!(w.metric(Metric::RustWeight), 10000);
    old.request_headers(&[], true);
    assert_eq!(old.routed(), Some(Backend::Python));
    assert!(w.reconfigure(config(json!({"rust_weight_bp": 5000}))));
    let seen = w.served_by(100, &[]);
    assert!((45..=55).contains(&seen[1]), "{seen:?}");
    assert_eq!(w.metric(Metric::RustWeight), 5000);
    // Same VM: the stats were defined once.
    assert!(w.envoy.stats().iter().all(|s| s.defined == 1));
}

#[test]
fn sticky_keys_only_move_to_rust_when_the_weight_rises_live() {
    // test_sticky_keys_only_move_to_rust_when_the_weight_rises_live
    let mut w = World::new(config(
        json!({"rust_weight_bp": 2000, "sticky_header": "x-user-id"}),
    ));
    let keys: Vec<String> = (0..100).map(|i| format!("user-{i}")).collect();
    let assignment = |w: &mut World| -> Vec<Option<Backend>> {
        keys.iter()
            .map(|k| w.post(&[("x-user-id", k)]).upstream)
            .collect()
    };
    let low = assignment(&mut w);
    assert!(w.reconfigure(config(
        json!({"rust_weight_bp": 6000, "sticky_header": "x-user-id"})
    )));
    let high = assignment(&mut w);
    let rust = |a: &[Option<Backend>]| a.iter().filter(|b| **b == Some(Backend::Rust)).count();
    assert!(low
        .iter()
        .zip(&high)
        .all(|(l, h)| !(*l == Some(Backend::Rust) && *h == Some(Backend::Python))));
    assert!(rust(&high) > rust(&low), "{} {}", rust(&low), rust(&high));
}

#[test]
fn breaker_state_survives_reconfiguration() {
    // test_breaker_state_survives_reconfiguration
    let cfg = |weight: u32| {
        config(json!({"rust_weight_bp": weight,
            "breaker": {"failure_threshold": 2, "recovery_ms": 60000}}))
    };
    let mut w = World::new(cfg(10000));
    w.upstream[Backend::Rust.index()] = Upstream::status(500);
    assert_eq!([w.post(&[]).status, w.post(&[]).status], [500, 500]);
    assert_eq!(w.served_by(2, &[]), all(Backend::Python, 2));
    // The gauge is recorded again from shared data by the new configuration.
    w.envoy
        .stat(&Metric::BreakerState(Backend::Rust).name())
        .unwrap();
    assert!(w.reconfigure(cfg(9999)));
    assert_eq!(w.metric(Metric::BreakerState(Backend::Rust)), 2);
    let r = w.post(&[]);
    assert_eq!(
        (r.upstream, r.fallback.as_deref()),
        (Some(Backend::Python), Some("rust->python"))
    );
    assert_eq!(w.metric(Metric::Requests(Backend::Rust, Outcome::Error)), 2);
}

#[test]
fn a_new_configuration_creates_the_breaker_keys_and_reads_their_state() {
    // on_configure: store::ensure for both keys, the gauge from what is stored.
    let envoy = FakeEnvoy::new();
    let host = envoy.vm();
    let open = crate::breaker::Breaker {
        state: crate::breaker::State::Open,
        consecutive_failures: 5,
        opened_at_ms: 1,
        ..Default::default()
    };
    use crate::breaker::store::SharedData;
    envoy
        .store
        .set(store::key(Backend::Python), &open.encode(), None)
        .unwrap();
    *envoy.plugin_config.borrow_mut() = config(json!({})).to_string().into_bytes();
    let mut root = Root::new(host.clone());
    assert!(RootContext::on_configure(&mut root, 0));
    let stored = envoy.store.map.borrow().clone();
    assert!(stored.contains_key(store::key(Backend::Rust)), "created");
    let gauge = |b: Backend| envoy.stat(&Metric::BreakerState(b).name()).unwrap().value;
    assert_eq!((gauge(Backend::Python), gauge(Backend::Rust)), (2, 0));
    assert_eq!(envoy.tick_period.get(), Some(TICK));
    // Without a breaker the keys are not touched.
    let envoy = FakeEnvoy::new();
    *envoy.plugin_config.borrow_mut() = config(json!({"breaker": {"enabled": false}}))
        .to_string()
        .into_bytes();
    let mut root = Root::new(envoy.vm());
    assert!(RootContext::on_configure(&mut root, 0));
    assert!(envoy.store.map.borrow().is_empty());
}

#[test]
fn invalid_configuration_is_refused_and_the_old_one_keeps_serving() {
    // test_invalid_configuration_is_refused_and_the_old_one_keeps_serving
    let cfg = config(json!({"rust_weight_bp": 10000}));
    let mut w = World::new(cfg.clone());
    let mut bad = cfg.clone();
    bad["rust_weight_bp"] = json!(20000);
    assert!(!w.reconfigure(bad));
    assert_eq!(
        w.envoy.logs().iter().filter(|(l, m)| *l == LogLevel::Error
            && m == "nd-filter: refusing plugin configuration: rust_weight_bp: 20000 is outside 0..=10000").count(),
        1
    );
    assert_eq!(w.served_by(10, &[]), all(Backend::Rust, 10));
    let mut typo = cfg.clone();
    typo["shadow"] = json!({"shara_bp": 1});
    assert!(!w.reconfigure(typo));
    assert_eq!(w.envoy.logged("unknown field `shara_bp` in shadow"), 1);
    assert_eq!(w.served_by(10, &[]), all(Backend::Rust, 10));
    // The same root context refusing an update keeps its configuration too.
    *w.envoy.plugin_config.borrow_mut() = b"{not json".to_vec();
    assert!(!RootContext::on_configure(w.current_root(0), 0));
    assert_eq!(w.served_by(10, &[]), all(Backend::Rust, 10));
    // A valid one after that is taken.
    let mut good = cfg.clone();
    good["rust_weight_bp"] = json!(0);
    assert!(w.reconfigure(good));
    assert_eq!(w.served_by(10, &[]), all(Backend::Python, 10));
    assert_eq!(
        w.metric(Metric::Config(false)),
        3,
        "counted at once: a refused root never ticks"
    );
    assert_eq!(w.metric(Metric::Config(true)), 2);
}

#[test]
fn refusals_are_counted_without_a_tick() {
    let envoy = FakeEnvoy::new();
    *envoy.plugin_config.borrow_mut() = b"[]".to_vec();
    let mut root = Root::new(envoy.vm());
    assert!(!RootContext::on_configure(&mut root, 0));
    assert_eq!(envoy.stat(&Metric::Config(false).name()).unwrap().value, 1);
    assert_eq!(envoy.stat(&Metric::Config(true).name()).unwrap().value, 0);
    assert_eq!(
        envoy.tick_period.get(),
        None,
        "a refused root context does not tick"
    );
}

#[test]
fn mirroring_switched_on_and_off_live() {
    // test_mirroring_switched_on_and_off_live
    let cfg = config(json!({"rust_weight_bp": 0}));
    let mut w = World::new(cfg.clone());
    w.served_by(5, &[]);
    assert!(w.pending_calls().is_empty());
    let mut on = cfg.clone();
    on["shadow"] = json!({"share_bp": 10000});
    assert!(w.reconfigure(on));
    w.served_by(10, &[]);
    w.answer_shadows();
    assert_eq!(
        w.metric(Metric::ShadowResult(
            Backend::Rust,
            crate::metrics::ShadowResult::Match
        )),
        10
    );
    assert!(w.reconfigure(cfg));
    w.served_by(10, &[]);
    assert!(w.pending_calls().is_empty());
    assert_eq!(w.envoy.calls().len(), 10);
}

#[test]
fn comparisons_started_under_the_old_configuration_finish_under_it() {
    // The old root context still owns the shadow calls it dispatched.
    let cfg = config(json!({"rust_weight_bp": 0, "shadow": mirror(json!({}))}));
    let mut w = World::new(cfg.clone());
    w.served_by(3, &[]);
    assert!(w.reconfigure(cfg));
    w.served_by(2, &[]);
    w.answer_shadows();
    assert_eq!(
        w.metric(Metric::ShadowResult(
            Backend::Rust,
            crate::metrics::ShadowResult::Match
        )),
        5
    );
    assert_eq!(w.root(0, 0).in_flight(), 0);
    assert_eq!(w.root(0, 1).in_flight(), 0);
}

/// The plugin configuration embedded in a shipped Envoy YAML: the block
/// scalar after `value: |`, as deep as its first line.
fn embedded_plugin_config(yaml: &str) -> Option<String> {
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let mut lines = yaml
        .lines()
        .skip_while(|l| !l.trim_end().ends_with("value: |"));
    lines.next()?;
    let mut lines = lines.peekable();
    let indent = indent_of(lines.peek()?);
    let json: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || indent_of(l) >= indent)
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect();
    Some(json.join("\n"))
}

#[test]
fn shipped_configurations_are_accepted() {
    // test_shipped_bootstrap_validates / test_shipped_ecds_resource_validates:
    // on_configure with every plugin configuration deploy/local/envoy ships.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/envoy");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let Some(json) = embedded_plugin_config(&text) else {
            continue;
        };
        let envoy = FakeEnvoy::new();
        *envoy.plugin_config.borrow_mut() = json.into_bytes();
        let mut root = Root::new(envoy.vm());
        assert!(
            RootContext::on_configure(&mut root, 0),
            "{path:?}: {:?}",
            envoy.logs()
        );
        assert_eq!(envoy.logged("nd-filter: configured rust_weight_bp="), 1);
        names.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    names.sort();
    assert_eq!(names, ["envoy.yaml", "nd_filter.ecds.yaml"]);
}

#[test]
fn configured_log_line() {
    // What test_validate looks for ("nd-filter: configured"), in full.
    let envoy = FakeEnvoy::new();
    *envoy.plugin_config.borrow_mut() = include_bytes!("../../config.example.json").to_vec();
    let mut root = Root::new(envoy.vm());
    assert!(RootContext::on_configure(&mut root, 0));
    assert_eq!(
        envoy.logs(),
        vec![(
            LogLevel::Info,
            "nd-filter: configured rust_weight_bp=2500 sticky_header=Some(\"x-user-id\") \
             override=None breaker=on shadow_share_bp=500"
                .to_string()
        )]
    );
    let queue = root.plugin().unwrap().shadow_queue;
    assert!(queue.is_some());
    assert_eq!(queue, envoy.queue_id(SHADOW_QUEUE));
}

#[test]
fn invalid_plugin_configuration_is_refused() {
    // test_invalid_plugin_configuration_fails_validation
    let envoy = FakeEnvoy::new();
    let mut cfg: Value =
        serde_json::from_slice(include_bytes!("../../config.example.json")).unwrap();
    cfg["breaker"]["both_open"] = json!("shrug");
    *envoy.plugin_config.borrow_mut() = cfg.to_string().into_bytes();
    let mut root = Root::new(envoy.vm());
    assert!(!RootContext::on_configure(&mut root, 0));
    assert_eq!(
        envoy.logged(
            "nd-filter: refusing plugin configuration: breaker.both_open: \"shrug\" is not one of"
        ),
        1
    );
    assert!(root.plugin().is_none());
}

use crate::metrics::Outcome;
