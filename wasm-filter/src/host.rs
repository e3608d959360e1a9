//! Hostcalls the filter uses, wrapped so that every failure is a value:
//! a failed hostcall degrades one request or one metric, never the VM.

use crate::breaker::store::{Cached, HostError, SetError, SharedData, Stored};
use crate::metrics::{self, Kind, Metric};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType, Status};
use std::cell::{Cell, OnceCell};
use std::rc::Rc;

pub fn log(level: LogLevel, msg: &str) {
    let _ = hostcalls::log(level, msg);
}

/// Logs the first ten occurrences, then every hundredth: bounded log volume
/// for things that can happen on every request.
pub fn should_log(nth: u64) -> bool {
    nth <= 10 || nth.is_multiple_of(100)
}

pub fn now_ms() -> Option<u64> {
    let t = hostcalls::get_current_time().ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(d.as_millis()).ok()
}

pub fn now_nanos() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A header value as bytes (a `String` read would panic on non-UTF-8).
pub fn header(map: MapType, name: &str) -> Option<Vec<u8>> {
    hostcalls::get_map_value_bytes(map, name).ok().flatten()
}

pub fn set_header(map: MapType, name: &str, value: &str) -> bool {
    hostcalls::set_map_value_bytes(map, name, Some(value.as_bytes())).is_ok()
}

/// All headers of a map that are valid UTF-8 (others are skipped).
pub fn headers(map: MapType) -> Vec<(String, String)> {
    hostcalls::get_map_bytes(map)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| String::from_utf8(v).ok().map(|v| (k, v)))
        .collect()
}

pub fn status(map: MapType) -> u32 {
    header(map, ":status")
        .and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse().ok())
        .unwrap_or(0)
}

pub fn buffer(kind: BufferType, size: usize) -> Option<Vec<u8>> {
    hostcalls::get_buffer(kind, 0, size).ok().flatten()
}

/// Envoy shared data (per `vm_id`, seen by every worker).
pub struct HostShared;

impl SharedData for HostShared {
    fn get(&self, key: &str) -> Result<Stored, HostError> {
        hostcalls::get_shared_data(key).map_err(|_| HostError)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(SetError::CasMismatch),
            Err(_) => Err(SetError::Host),
        }
    }
}

/// Envoy stat ids for every entry of [`metrics::all`], defined once per VM.
/// Counters are added up in the VM and flushed to Envoy on the root
/// context's tick: a request costs no metric hostcall.
pub struct Metrics {
    ids: Vec<Option<u32>>,
    pending: Vec<Cell<u64>>,
}

thread_local! {
    // One Wasm VM is one thread: these are per VM, shared by its root contexts.
    static METRICS: OnceCell<Rc<Metrics>> = const { OnceCell::new() };
    static SHARED: Cached<HostShared> = const { Cached::new(HostShared) };
}

/// Runs `f` with the VM's cached view of shared data.
pub fn with_shared<R>(f: impl FnOnce(&Cached<HostShared>) -> R) -> R {
    SHARED.with(f)
}

impl Metrics {
    pub fn for_vm() -> Rc<Metrics> {
        METRICS.with(|cell| cell.get_or_init(|| Rc::new(Metrics::define())).clone())
    }

    fn define() -> Metrics {
        let all = metrics::all();
        let ids = all
            .iter()
            .map(|m| {
                let t = match m.kind() {
                    Kind::Counter => MetricType::Counter,
                    Kind::Gauge => MetricType::Gauge,
                    Kind::Histogram => MetricType::Histogram,
                };
                hostcalls::define_metric(t, &m.name()).ok()
            })
            .collect();
        Metrics {
            ids,
            pending: all.iter().map(|_| Cell::new(0)).collect(),
        }
    }

    fn id(&self, m: Metric) -> Option<u32> {
        self.ids.get(m.index()).copied().flatten()
    }

    pub fn inc(&self, m: Metric) {
        self.add(m, 1);
    }

    /// Adds to a counter (flushed on the next tick).
    pub fn add(&self, m: Metric, n: u64) {
        if let Some(c) = self.pending.get(m.index()) {
            c.set(c.get().saturating_add(n));
        }
    }

    /// Hands the added-up counters to Envoy.
    pub fn flush(&self) {
        for (c, id) in self.pending.iter().zip(&self.ids) {
            let n = c.replace(0);
            if let (Some(id), Ok(n)) = (id, i64::try_from(n)) {
                if n > 0 {
                    let _ = hostcalls::increment_metric(*id, n);
                }
            }
        }
    }

    /// Sets a gauge or records a histogram sample (at once: rare events).
    pub fn record(&self, m: Metric, value: u64) {
        if let Some(id) = self.id(m) {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}
