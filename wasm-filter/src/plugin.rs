//! One accepted configuration and what the HTTP contexts of its root context
//! share: the host, the metrics, the split and shadow sequences, the shadow
//! queue. `configure` is the body of `on_configure`; `tick` the VM-wide part
//! of `on_tick`.
//!
//! Methods are `#[inline]` for the module's size (see `host`).

use crate::breaker::store;
use crate::config::{self, Backend, Config};
use crate::host::Host;
use crate::metrics::{Metric, Metrics};
use crate::routing::Transition;
use crate::split::Sequence;
use proxy_wasm::types::{BufferType, LogLevel};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// Shared queue carrying shadow messages from HTTP contexts to the root
/// context that registered it last (one per Envoy: queues are per `vm_id`).
pub const SHADOW_QUEUE: &str = "nd_filter/shadow";

/// Tick of every root context: flushes counters, refreshes the breaker
/// cache, sweeps old comparisons. Also the longest a worker can route by a
/// breaker state another worker has changed (unless it fails itself first).
pub const TICK: Duration = Duration::from_millis(200);

pub struct Plugin<H> {
    pub host: H,
    pub cfg: Config,
    pub metrics: Rc<Metrics>,
    pub split_seq: Cell<Sequence>,
    pub shadow_seq: Cell<Sequence>,
    pub shadow_queue: Option<u32>,
    /// Makes shadow ids unique within the VM.
    pub shadow_counter: Cell<u64>,
}

impl<H: Host> Plugin<H> {
    /// Reads and validates the plugin configuration; `None` (logged, counted)
    /// when it is refused.
    #[inline]
    pub fn configure(host: H) -> Option<Plugin<H>> {
        let metrics = host.vm_metrics();
        let bytes = host
            .buffer(BufferType::PluginConfiguration, usize::MAX)
            .unwrap_or_default();
        let cfg = match config::parse(&bytes) {
            Ok(cfg) => cfg,
            Err(e) => {
                metrics.inc(Metric::Config(false));
                // A refused root context never ticks: flush now.
                metrics.flush(&host);
                host.log(
                    LogLevel::Error,
                    &format!("nd-filter: refusing plugin configuration: {e}"),
                );
                return None;
            }
        };
        metrics.inc(Metric::Config(true));
        metrics.flush(&host);
        metrics.record(&host, Metric::RustWeight, u64::from(cfg.rust_weight_bp));
        if cfg.breaker.is_some() {
            for b in Backend::ALL {
                let key = store::key(b);
                store::ensure(host.shared(), key);
                // Breaker state lives in shared data: it survives this reconfiguration.
                let state = store::load(host.shared(), key).breaker.state;
                metrics.record(&host, Metric::BreakerState(b), state.gauge());
            }
        }
        let shadow_queue = host.register_shared_queue(SHADOW_QUEUE);
        host.set_tick_period(TICK);
        host.log(
            LogLevel::Info,
            &format!(
                "nd-filter: configured rust_weight_bp={} sticky_header={:?} override={:?} breaker={} shadow_share_bp={}",
                cfg.rust_weight_bp,
                cfg.sticky_header,
                cfg.override_header,
                if cfg.breaker.is_some() { "on" } else { "off" },
                cfg.shadow.share_bp
            ),
        );
        Some(Plugin {
            host,
            cfg,
            metrics,
            split_seq: Cell::new(Sequence::golden(0)),
            shadow_seq: Cell::new(Sequence::silver(0)),
            shadow_queue,
            shadow_counter: Cell::new(0),
        })
    }

    /// The clock as the host-independent modules take it (one closure type:
    /// one copy in the module).
    #[inline]
    pub fn clock(&self) -> impl Fn() -> Option<u64> + '_ {
        || self.host.now_ms()
    }

    #[inline]
    pub fn inc(&self, m: Metric) {
        self.metrics.inc(m);
    }

    /// Sets a gauge or records a histogram sample.
    #[inline]
    pub fn record(&self, m: Metric, value: u64) {
        self.metrics.record(&self.host, m, value);
    }

    /// Counts, records and logs breaker state changes.
    #[inline]
    pub fn record_transitions(&self, transitions: &[Transition]) {
        for (backend, before, after) in transitions {
            self.inc(Metric::BreakerTransition(*backend, after.state));
            self.record(Metric::BreakerState(*backend), after.state.gauge());
            self.host.log(
                LogLevel::Info,
                &format!(
                    "nd-filter: circuit for {} {} -> {} (consecutive failures {})",
                    backend.as_str(),
                    before.state.as_str(),
                    after.state.as_str(),
                    after.consecutive_failures
                ),
            );
        }
    }

    /// The VM-wide part of a tick: flushes counters, drops the breaker cache.
    #[inline]
    pub fn tick(&self) {
        self.metrics.flush(&self.host);
        self.host.with_cached_shared(|shared| shared.clear());
    }
}
