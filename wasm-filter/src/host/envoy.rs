//! [`Host`] over proxy-wasm hostcalls: the implementation the module runs.
//!
//! Methods are `#[inline]` for the module's size (see `host`).

use super::Host;
use crate::breaker::store::{Cached, HostError, SetError, SharedData, Stored};
use crate::metrics::{Kind, Metrics};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType, Status};
use std::cell::OnceCell;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

/// The Envoy host (zero-sized: the current context is Envoy's).
#[derive(Debug, Clone, Copy, Default)]
pub struct Envoy;

/// Envoy shared data (per `vm_id`, seen by every worker).
pub struct HostShared;

impl SharedData for HostShared {
    #[inline]
    fn get(&self, key: &str) -> Result<Stored, HostError> {
        hostcalls::get_shared_data(key).map_err(|_| HostError)
    }

    #[inline]
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(SetError::CasMismatch),
            Err(_) => Err(SetError::Host),
        }
    }
}

thread_local! {
    // One Wasm VM is one thread: these are per VM, shared by its root contexts.
    static METRICS: OnceCell<Rc<Metrics>> = const { OnceCell::new() };
    static SHARED: Cached<HostShared> = const { Cached::new(HostShared) };
}

impl Host for Envoy {
    type Shared = HostShared;

    // Always: two callers (now_ms, now_nanos), each smaller with it inlined.
    #[inline(always)]
    fn current_time(&self) -> Option<SystemTime> {
        hostcalls::get_current_time().ok()
    }

    #[inline]
    fn log(&self, level: LogLevel, msg: &str) {
        let _ = hostcalls::log(level, msg);
    }

    #[inline]
    fn header(&self, map: MapType, name: &str) -> Option<Vec<u8>> {
        hostcalls::get_map_value_bytes(map, name).ok().flatten()
    }

    #[inline]
    fn set_header(&self, map: MapType, name: &str, value: &str) -> bool {
        hostcalls::set_map_value_bytes(map, name, Some(value.as_bytes())).is_ok()
    }

    #[inline]
    fn header_pairs(&self, map: MapType) -> Vec<(String, Vec<u8>)> {
        hostcalls::get_map_bytes(map).unwrap_or_default()
    }

    #[inline]
    fn buffer(&self, kind: BufferType, size: usize) -> Option<Vec<u8>> {
        hostcalls::get_buffer(kind, 0, size).ok().flatten()
    }

    #[inline]
    fn send_http_response(
        &self,
        status: u32,
        headers: Vec<(&str, &str)>,
        body: Option<&[u8]>,
    ) -> bool {
        hostcalls::send_http_response(status, headers, body).is_ok()
    }

    #[inline]
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: Vec<(&str, &str)>,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, Status> {
        hostcalls::dispatch_http_call(cluster, headers, body, vec![], timeout)
    }

    #[inline]
    fn register_shared_queue(&self, name: &str) -> Option<u32> {
        hostcalls::register_shared_queue(name).ok()
    }

    #[inline]
    fn enqueue_shared_queue(&self, queue_id: u32, value: &[u8]) -> bool {
        hostcalls::enqueue_shared_queue(queue_id, Some(value)).is_ok()
    }

    #[inline]
    fn dequeue_shared_queue(&self, queue_id: u32) -> Option<Vec<u8>> {
        hostcalls::dequeue_shared_queue(queue_id).ok().flatten()
    }

    #[inline]
    fn set_tick_period(&self, period: Duration) {
        let _ = hostcalls::set_tick_period(period);
    }

    #[inline]
    fn shared(&self) -> &HostShared {
        &HostShared
    }

    #[inline]
    fn with_cached_shared<R>(&self, f: impl FnOnce(&Cached<HostShared>) -> R) -> R {
        SHARED.with(f)
    }

    #[inline]
    fn vm_metrics(&self) -> Rc<Metrics> {
        METRICS.with(|cell| cell.get_or_init(|| Rc::new(Metrics::define(self))).clone())
    }

    #[inline]
    fn define_metric(&self, kind: Kind, name: &str) -> Option<u32> {
        let t = match kind {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge => MetricType::Gauge,
            Kind::Histogram => MetricType::Histogram,
        };
        hostcalls::define_metric(t, name).ok()
    }

    #[inline]
    fn increment_metric(&self, id: u32, offset: i64) {
        let _ = hostcalls::increment_metric(id, offset);
    }

    #[inline]
    fn record_metric(&self, id: u32, value: u64) {
        let _ = hostcalls::record_metric(id, value);
    }
}
