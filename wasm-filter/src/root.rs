//! The root context: validates the configuration, shares it with the HTTP
//! contexts, and owns the shadow calls (dispatched here, not from the HTTP
//! context, because Envoy cancels an HTTP context's calls when its stream ends).

use crate::breaker::store;
use crate::compare::{self, Answer, Tolerance};
use crate::config::{self, Backend, Config};
use crate::host::{self, HostShared, Metrics};
use crate::http::Filter;
use crate::metrics::{divergence_ppm, Metric, ShadowResult};
use crate::routing::Transition;
use crate::shadow::{self, Message, ShadowAnswer, SkipReason, Table};
use crate::split::Sequence;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, LogLevel, MapType};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// Shared queue carrying [`Message`]s from HTTP contexts to the root context
/// that registered it last (one per Envoy: queues are per `vm_id`).
pub const SHADOW_QUEUE: &str = "nd_filter/shadow";

/// Comparisons are dropped this long after their shadow call's timeout.
const EXPIRY_GRACE_MS: u64 = 10_000;

/// Tick of every root context: flushes counters, refreshes the breaker
/// cache, sweeps old comparisons. Also the longest a worker can route by a
/// breaker state another worker has changed (unless it fails itself first).
pub const TICK: Duration = Duration::from_millis(200);

/// One accepted configuration and what its HTTP contexts share.
pub struct Plugin {
    pub cfg: Config,
    pub metrics: Rc<Metrics>,
    pub split_seq: Cell<Sequence>,
    pub shadow_seq: Cell<Sequence>,
    pub shadow_queue: Option<u32>,
    /// Makes shadow ids unique within the VM.
    pub shadow_counter: Cell<u64>,
}

impl Plugin {
    pub fn record_transitions(&self, transitions: &[Transition]) {
        for (backend, before, after) in transitions {
            self.metrics
                .inc(Metric::BreakerTransition(*backend, after.state));
            self.metrics
                .record(Metric::BreakerState(*backend), after.state.gauge());
            host::log(
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
}

pub struct Root {
    plugin: Option<Rc<Plugin>>,
    table: Table,
    shadow_errors: u64,
    mismatches: u64,
}

impl Root {
    pub fn new() -> Root {
        Root {
            plugin: None,
            table: Table::default(),
            shadow_errors: 0,
            mismatches: 0,
        }
    }

    fn handle(&mut self, plugin: &Plugin, msg: Message) {
        match msg {
            Message::Start {
                id,
                target,
                request_id,
                headers,
                body,
            } => self.start(plugin, id, target, request_id, &headers, &body),
            Message::Primary { id, status, body } => {
                if let Some(ready) = self.table.primary(id, status, body) {
                    self.finish(plugin, ready);
                }
            }
            Message::Abandon { id, reason } => {
                if self.table.abandon(id) {
                    plugin.metrics.inc(Metric::ShadowSkipped(reason));
                }
            }
        }
    }

    fn start(
        &mut self,
        plugin: &Plugin,
        id: u64,
        target: Backend,
        request_id: String,
        headers: &[(String, String)],
        body: &[u8],
    ) {
        let cfg = &plugin.cfg;
        if self.table.len() >= cfg.shadow.max_in_flight {
            plugin
                .metrics
                .inc(Metric::ShadowSkipped(SkipReason::InFlightLimit));
            return;
        }
        let t = cfg.target(target);
        let hdrs = shadow::shadow_headers(
            headers,
            &cfg.routing_header,
            &cfg.shadow.strip_headers,
            target,
            &t.authority,
        );
        let timeout = Duration::from_millis(cfg.shadow.timeout_ms);
        match hostcalls::dispatch_http_call(&t.cluster, hdrs, Some(body), vec![], timeout) {
            Ok(token) => {
                if self
                    .table
                    .insert(id, token, request_id, target, host::now_ms().unwrap_or(0))
                {
                    plugin.metrics.inc(Metric::ShadowSent(target));
                }
            }
            Err(status) => self.shadow_error(&plugin.metrics, target, LogLevel::Warn, || {
                format!(
                    "nd-filter: shadow call to cluster {:?} failed: {status:?} (unknown cluster?) request_id={request_id}",
                    t.cluster
                )
            }),
        }
    }

    /// Counts a shadow error and logs it, rate-limited (`host::should_log`).
    fn shadow_error(
        &mut self,
        metrics: &Metrics,
        target: Backend,
        level: LogLevel,
        message: impl FnOnce() -> String,
    ) {
        metrics.inc(Metric::ShadowResult(target, ShadowResult::Error));
        self.shadow_errors += 1;
        if host::should_log(self.shadow_errors) {
            host::log(level, &message());
        }
    }

    fn finish(&mut self, plugin: &Plugin, ready: shadow::Ready) {
        let target = ready.target;
        let primary = target.other();
        let m = &plugin.metrics;
        let (status, body) = match ready.shadow {
            ShadowAnswer::Response { status, body } => (status, body),
            ShadowAnswer::Failed(why) => {
                self.shadow_error(m, target, LogLevel::Info, || {
                    format!(
                        "nd-filter: shadow error request_id={} target={}: {why}",
                        ready.request_id,
                        target.as_str()
                    )
                });
                return;
            }
        };
        let tol = Tolerance {
            abs: plugin.cfg.shadow.abs_tolerance,
            rel: plugin.cfg.shadow.rel_tolerance,
        };
        let outcome = compare::compare_shaped(
            Answer {
                status: ready.primary_status,
                body: &ready.primary_body,
            },
            Answer {
                status,
                body: &body,
            },
            tol,
            &plugin.cfg.shadow.answer,
        );
        match outcome {
            compare::Outcome::Match { max_rel } => {
                m.inc(Metric::ShadowResult(target, ShadowResult::Match));
                m.record(Metric::ShadowDivergence(target), divergence_ppm(max_rel));
            }
            compare::Outcome::Mismatch {
                field,
                detail,
                max_rel,
            } => {
                m.inc(Metric::ShadowResult(target, ShadowResult::Mismatch));
                m.record(Metric::ShadowDivergence(target), divergence_ppm(max_rel));
                self.mismatches += 1;
                if host::should_log(self.mismatches) {
                    host::log(
                        LogLevel::Warn,
                        &format!(
                            "nd-filter: shadow mismatch request_id={} primary={} shadow={} field={field}: {detail}; max_rel_ppm={}",
                            ready.request_id,
                            primary.as_str(),
                            target.as_str(),
                            divergence_ppm(max_rel)
                        ),
                    );
                }
            }
            compare::Outcome::Error(why) => {
                self.shadow_error(m, target, LogLevel::Info, || {
                    format!(
                        "nd-filter: shadow not comparable request_id={}: {why}",
                        ready.request_id
                    )
                });
            }
        }
    }
}

impl Default for Root {
    fn default() -> Self {
        Root::new()
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(plugin) = self.plugin.clone() else {
            return;
        };
        let cap = plugin.cfg.shadow.max_body_bytes;
        let answer = if num_headers == 0 {
            ShadowAnswer::Failed("no response (timeout, reset or connection failure)".into())
        } else if body_size > cap {
            ShadowAnswer::Failed(format!(
                "response body of {body_size} bytes is over max_body_bytes {cap}"
            ))
        } else {
            let status = host::status(MapType::HttpCallResponseHeaders);
            let body = if body_size == 0 {
                Vec::new()
            } else {
                host::buffer(BufferType::HttpCallResponseBody, body_size).unwrap_or_default()
            };
            ShadowAnswer::Response { status, body }
        };
        if let Some(ready) = self.table.shadow(token_id, answer) {
            self.finish(&plugin, ready);
        }
        plugin
            .metrics
            .record(Metric::ShadowInFlight, self.table.len() as u64);
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let metrics = Metrics::for_vm();
        let bytes = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let cfg = match config::parse(&bytes) {
            Ok(cfg) => cfg,
            Err(e) => {
                metrics.inc(Metric::Config(false));
                // A refused root context never ticks: flush now.
                metrics.flush();
                host::log(
                    LogLevel::Error,
                    &format!("nd-filter: refusing plugin configuration: {e}"),
                );
                return false;
            }
        };
        metrics.inc(Metric::Config(true));
        metrics.flush();
        metrics.record(Metric::RustWeight, u64::from(cfg.rust_weight_bp));
        if cfg.breaker.is_some() {
            for b in Backend::ALL {
                let key = store::key(b);
                store::ensure(&HostShared, key);
                // Breaker state lives in shared data: it survives this reconfiguration.
                let state = store::load(&HostShared, key).breaker.state;
                metrics.record(Metric::BreakerState(b), state.gauge());
            }
        }
        let shadow_queue = hostcalls::register_shared_queue(SHADOW_QUEUE).ok();
        let _ = hostcalls::set_tick_period(TICK);
        host::log(
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
        self.plugin = Some(Rc::new(Plugin {
            cfg,
            metrics,
            split_seq: Cell::new(Sequence::golden(0)),
            shadow_seq: Cell::new(Sequence::silver(0)),
            shadow_queue,
            shadow_counter: Cell::new(0),
        }));
        true
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        let Some(plugin) = self.plugin.clone() else {
            return;
        };
        // Bounded so one call cannot starve the event loop.
        for _ in 0..10_000 {
            match hostcalls::dequeue_shared_queue(queue_id) {
                Ok(Some(bytes)) => {
                    if let Some(msg) = Message::decode(&bytes) {
                        self.handle(&plugin, msg);
                    }
                }
                _ => break,
            }
        }
        plugin
            .metrics
            .record(Metric::ShadowInFlight, self.table.len() as u64);
    }

    fn on_tick(&mut self) {
        let Some(plugin) = self.plugin.clone() else {
            return;
        };
        plugin.metrics.flush();
        host::with_shared(|shared| shared.clear());
        if self.table.is_empty() {
            return;
        }
        let Some(now) = host::now_ms() else { return };
        let ttl = plugin.cfg.shadow.timeout_ms.saturating_add(EXPIRY_GRACE_MS);
        let expired = self.table.expire(now, ttl);
        plugin
            .metrics
            .add(Metric::ShadowSkipped(SkipReason::Expired), expired as u64);
        plugin
            .metrics
            .record(Metric::ShadowInFlight, self.table.len() as u64);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter::new(self.plugin.clone(), context_id)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
