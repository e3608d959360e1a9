//! Metric names, types and labels: the contract with Prometheus alerts and
//! Flagger MetricTemplates (documented in README.md).
//!
//! Envoy stats have no labels; each label is a `.name.value` pair in the stat
//! name (`nd_filter_requests_total.backend.rust.outcome.success`), and the
//! bootstrap's `stats_config.stats_tags` regexes (README) turn the pairs into
//! Prometheus labels. Every combination is defined up front, so the shim holds
//! one id per entry of [`all`] and the data path never formats a name.

use crate::breaker::State;
use crate::config::Backend;
use crate::shadow::SkipReason;
use std::cell::Cell;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// How a request through the filter ended, from the client's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The backend answered below 500.
    Success,
    /// 5xx, reset or timeout (what opens a circuit).
    Error,
    /// Both circuits open and `both_open: reject`: the filter answered 503.
    Rejected,
    /// The client went away before an answer.
    Aborted,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Success,
        Outcome::Error,
        Outcome::Rejected,
        Outcome::Aborted,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Error => "error",
            Outcome::Rejected => "rejected",
            Outcome::Aborted => "aborted",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShadowResult {
    Match,
    Mismatch,
    Error,
}

impl ShadowResult {
    pub const ALL: [ShadowResult; 3] = [
        ShadowResult::Match,
        ShadowResult::Mismatch,
        ShadowResult::Error,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ShadowResult::Match => "match",
            ShadowResult::Mismatch => "mismatch",
            ShadowResult::Error => "error",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BothOpenAction {
    FailOpen,
    Reject,
}

impl BothOpenAction {
    pub const ALL: [BothOpenAction; 2] = [BothOpenAction::FailOpen, BothOpenAction::Reject];
    pub fn as_str(self) -> &'static str {
        match self {
            BothOpenAction::FailOpen => "fail_open",
            BothOpenAction::Reject => "reject",
        }
    }
}

/// One Envoy stat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Counter `nd_filter_requests_total{backend, outcome}`: `backend` is where the request went.
    Requests(Backend, Outcome),
    /// Counter `nd_filter_fallbacks_total{from, to}`: sent to `to` because `from`'s circuit was open.
    Fallback(Backend),
    /// Counter `nd_filter_both_open_total{action}`.
    BothOpen(BothOpenAction),
    /// Gauge `nd_filter_breaker_state{backend}`: 0 closed, 1 half-open, 2 open.
    BreakerState(Backend),
    /// Counter `nd_filter_breaker_transitions_total{backend, to}`.
    BreakerTransition(Backend, State),
    /// Counter `nd_filter_shadow_sent_total{target}`: shadow calls dispatched to `target`.
    ShadowSent(Backend),
    /// Counter `nd_filter_shadow_results_total{target, result}`.
    ShadowResult(Backend, ShadowResult),
    /// Counter `nd_filter_shadow_skipped_total{reason}`.
    ShadowSkipped(SkipReason),
    /// Histogram `nd_filter_shadow_divergence_ppm{target}`: the largest relative
    /// difference of a compared answer, in parts per million.
    ShadowDivergence(Backend),
    /// Gauge `nd_filter_shadow_in_flight`: comparisons waiting for an answer.
    ShadowInFlight,
    /// Gauge `nd_filter_rust_weight_bp`: the configured Rust weight.
    RustWeight,
    /// Counter `nd_filter_config_total{result}`: `accepted` / `rejected`
    /// configurations, counted once per root context (main thread + each worker).
    Config(bool),
}

const B: usize = 2;
const OUTCOMES: usize = Outcome::ALL.len();
const STATES: usize = State::ALL.len();
const RESULTS: usize = ShadowResult::ALL.len();
const REASONS: usize = SkipReason::ALL.len();

// Offsets of each metric family in `all()`.
const REQUESTS: usize = 0;
const FALLBACK: usize = REQUESTS + B * OUTCOMES;
const BOTH_OPEN: usize = FALLBACK + B;
const BREAKER_STATE: usize = BOTH_OPEN + 2;
const TRANSITION: usize = BREAKER_STATE + B;
const SHADOW_SENT: usize = TRANSITION + B * STATES;
const SHADOW_RESULT: usize = SHADOW_SENT + B;
const SHADOW_SKIPPED: usize = SHADOW_RESULT + B * RESULTS;
const SHADOW_DIVERGENCE: usize = SHADOW_SKIPPED + REASONS;
const SHADOW_IN_FLIGHT: usize = SHADOW_DIVERGENCE + B;
const RUST_WEIGHT: usize = SHADOW_IN_FLIGHT + 1;
const CONFIG: usize = RUST_WEIGHT + 1;
/// Number of stats the filter defines.
pub const COUNT: usize = CONFIG + 2;

fn state_index(s: State) -> usize {
    match s {
        State::Closed => 0,
        State::HalfOpen => 1,
        State::Open => 2,
    }
}

fn index_in<T: PartialEq + Copy>(all: &[T], x: T) -> usize {
    all.iter().position(|&y| y == x).unwrap_or(0)
}

impl Metric {
    /// Position in [`all`]: the shim's id table is indexed by it.
    pub fn index(self) -> usize {
        match self {
            Metric::Requests(b, o) => REQUESTS + b.index() * OUTCOMES + index_in(&Outcome::ALL, o),
            Metric::Fallback(from) => FALLBACK + from.index(),
            Metric::BothOpen(a) => BOTH_OPEN + index_in(&BothOpenAction::ALL, a),
            Metric::BreakerState(b) => BREAKER_STATE + b.index(),
            Metric::BreakerTransition(b, s) => TRANSITION + b.index() * STATES + state_index(s),
            Metric::ShadowSent(b) => SHADOW_SENT + b.index(),
            Metric::ShadowResult(b, r) => {
                SHADOW_RESULT + b.index() * RESULTS + index_in(&ShadowResult::ALL, r)
            }
            Metric::ShadowSkipped(r) => SHADOW_SKIPPED + index_in(&SkipReason::ALL, r),
            Metric::ShadowDivergence(b) => SHADOW_DIVERGENCE + b.index(),
            Metric::ShadowInFlight => SHADOW_IN_FLIGHT,
            Metric::RustWeight => RUST_WEIGHT,
            Metric::Config(accepted) => CONFIG + usize::from(!accepted),
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            Metric::BreakerState(_) | Metric::ShadowInFlight | Metric::RustWeight => Kind::Gauge,
            Metric::ShadowDivergence(_) => Kind::Histogram,
            _ => Kind::Counter,
        }
    }

    /// The Envoy stat name.
    pub fn name(self) -> String {
        match self {
            Metric::Requests(b, o) => format!(
                "nd_filter_requests_total.backend.{}.outcome.{}",
                b.as_str(),
                o.as_str()
            ),
            Metric::Fallback(from) => {
                format!(
                    "nd_filter_fallbacks_total.from.{}.to.{}",
                    from.as_str(),
                    from.other().as_str()
                )
            }
            Metric::BothOpen(a) => format!("nd_filter_both_open_total.action.{}", a.as_str()),
            Metric::BreakerState(b) => format!("nd_filter_breaker_state.backend.{}", b.as_str()),
            Metric::BreakerTransition(b, s) => {
                format!(
                    "nd_filter_breaker_transitions_total.backend.{}.to.{}",
                    b.as_str(),
                    s.as_str()
                )
            }
            Metric::ShadowSent(b) => format!("nd_filter_shadow_sent_total.target.{}", b.as_str()),
            Metric::ShadowResult(b, r) => {
                format!(
                    "nd_filter_shadow_results_total.target.{}.result.{}",
                    b.as_str(),
                    r.as_str()
                )
            }
            Metric::ShadowSkipped(r) => {
                format!("nd_filter_shadow_skipped_total.reason.{}", r.as_str())
            }
            Metric::ShadowDivergence(b) => {
                format!("nd_filter_shadow_divergence_ppm.target.{}", b.as_str())
            }
            Metric::ShadowInFlight => "nd_filter_shadow_in_flight".into(),
            Metric::RustWeight => "nd_filter_rust_weight_bp".into(),
            Metric::Config(accepted) => {
                format!(
                    "nd_filter_config_total.result.{}",
                    if accepted { "accepted" } else { "rejected" }
                )
            }
        }
    }
}

/// Every stat, in index order.
pub fn all() -> Vec<Metric> {
    let mut v = Vec::with_capacity(COUNT);
    for b in Backend::ALL {
        v.extend(Outcome::ALL.map(|o| Metric::Requests(b, o)));
    }
    v.extend(Backend::ALL.map(Metric::Fallback));
    v.extend(BothOpenAction::ALL.map(Metric::BothOpen));
    v.extend(Backend::ALL.map(Metric::BreakerState));
    for b in Backend::ALL {
        v.extend(State::ALL.map(|s| Metric::BreakerTransition(b, s)));
    }
    v.extend(Backend::ALL.map(Metric::ShadowSent));
    for b in Backend::ALL {
        v.extend(ShadowResult::ALL.map(|r| Metric::ShadowResult(b, r)));
    }
    v.extend(SkipReason::ALL.map(Metric::ShadowSkipped));
    v.extend(Backend::ALL.map(Metric::ShadowDivergence));
    v.push(Metric::ShadowInFlight);
    v.push(Metric::RustWeight);
    v.push(Metric::Config(true));
    v.push(Metric::Config(false));
    v
}

/// Histogram value for a relative difference: parts per million, saturating.
pub use crate::compare::ppm as divergence_ppm;

/// The `stats_config.stats_tags` entries that turn the dotted pairs into
/// labels (README shows them as YAML; the tests compare both).
pub const LABELS: [&str; 8] = [
    "backend", "outcome", "from", "to", "action", "target", "result", "reason",
];

/// The tag regex for one label: the whole `.label.value` pair is removed from
/// the name and `value` becomes the label. Envoy stores Wasm metrics under
/// the `wasmcustom.` prefix (and drops it in /stats/prometheus), so the
/// regex, which sees the stored name, starts with it.
pub fn tag_regex(label: &str) -> String {
    format!(r"^wasmcustom\.nd_filter_[a-z_]+(?:\.[a-z_]+\.[a-z_]+)*?(\.{label}\.([a-z_]+))(?:\.|$)")
}

/// Where stats go: the host's stat hostcalls (every `Host` is one, see
/// host.rs), so this module needs nothing of the host but these three.
pub(crate) trait StatSink {
    fn define_metric(&self, kind: Kind, name: &str) -> Option<u32>;
    fn increment_metric(&self, id: u32, offset: i64);
    fn record_metric(&self, id: u32, value: u64);
}

/// Envoy stat ids for every entry of [`all`], defined once per VM.
/// Counters are added up in the VM and flushed to Envoy on the root
/// context's tick: a request costs no metric hostcall.
pub(crate) struct Metrics {
    ids: Vec<Option<u32>>,
    pending: Vec<Cell<u64>>,
}

impl Metrics {
    /// Defines every stat with the host (the host keeps one per VM: `Host::vm_metrics`).
    #[inline]
    pub fn define<H: StatSink>(host: &H) -> Metrics {
        let all = all();
        let ids = all
            .iter()
            .map(|m| host.define_metric(m.kind(), &m.name()))
            .collect();
        Metrics {
            ids,
            pending: all.iter().map(|_| Cell::new(0)).collect(),
        }
    }

    #[inline]
    fn id(&self, m: Metric) -> Option<u32> {
        self.ids.get(m.index()).copied().flatten()
    }

    #[inline]
    pub fn inc(&self, m: Metric) {
        self.add(m, 1);
    }

    /// Adds to a counter (flushed on the next tick).
    #[inline]
    pub fn add(&self, m: Metric, n: u64) {
        if let Some(c) = self.pending.get(m.index()) {
            c.set(c.get().saturating_add(n));
        }
    }

    /// Hands the added-up counters to the host.
    #[inline]
    pub fn flush<H: StatSink>(&self, host: &H) {
        for (c, id) in self.pending.iter().zip(&self.ids) {
            let n = c.replace(0);
            if let (Some(id), Ok(n)) = (id, i64::try_from(n)) {
                if n > 0 {
                    host.increment_metric(*id, n);
                }
            }
        }
    }

    /// Sets a gauge or records a histogram sample (at once: rare events).
    #[inline]
    pub fn record<H: StatSink>(&self, host: &H, m: Metric, value: u64) {
        if let Some(id) = self.id(m) {
            host.record_metric(id, value);
        }
    }
}

#[cfg(test)]
mod tests;
