//! The hostcalls the filter makes, behind one trait ([`Host`]), so that the
//! glue (`filter`, `plugin`, `mirror`) runs against Envoy in the module and
//! against an in-memory fake in native tests. Every failure is a value: a
//! failed hostcall degrades one request or one metric, never the VM.
//!
//! One real implementation, [`Envoy`] (`host/envoy.rs`), a zero-sized type:
//! the glue is generic over `H: Host` and monomorphised once, so the module
//! pays nothing for the indirection. The fake is `host/fake.rs` (tests only).
//!
//! Module size: the glue's generic methods (`filter`, `mirror`, `plugin`,
//! `metrics::Metrics`, the provided methods here) and `Envoy`'s methods are
//! `#[inline]`. At opt-level "z" rustc shares generic instantiations with
//! downstream crates (share-generics), which keeps LLVM from folding a
//! function with one caller into it; `#[inline]` makes them local copies
//! again. Without it the module is ~1.4 KB larger (build.sh measures it).

use crate::breaker::store::{Cached, SharedData};
use crate::metrics::{Kind, Metrics, StatSink};
use proxy_wasm::types::{BufferType, LogLevel, MapType, Status};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

mod envoy;
#[cfg(test)]
pub mod fake;

pub use envoy::Envoy;

/// What the filter asks of its host. Methods mirror proxy-wasm hostcalls
/// (the current context is the host's business: the callback being run).
pub trait Host: Clone + 'static {
    /// Shared data as the host keeps it (per `vm_id`, seen by every worker).
    type Shared: SharedData;

    // ---- clock and logging

    /// The host's wall clock; `None` if the hostcall failed.
    fn current_time(&self) -> Option<SystemTime>;
    fn log(&self, level: LogLevel, msg: &str);

    // ---- header maps and bodies of the current stream (or http call)

    /// A header value as bytes (a `String` read would panic on non-UTF-8).
    fn header(&self, map: MapType, name: &str) -> Option<Vec<u8>>;
    fn set_header(&self, map: MapType, name: &str, value: &str) -> bool;
    /// Every header of a map as bytes; empty if the hostcall failed.
    fn header_pairs(&self, map: MapType) -> Vec<(String, Vec<u8>)>;
    /// The first `size` bytes of a buffer (`usize::MAX`: all of it).
    fn buffer(&self, kind: BufferType, size: usize) -> Option<Vec<u8>>;
    /// Answers the current request from the filter; `false` if refused.
    fn send_http_response(
        &self,
        status: u32,
        headers: Vec<(&str, &str)>,
        body: Option<&[u8]>,
    ) -> bool;

    // ---- root context: http calls, shared queue, timer

    /// Sends a request to `cluster`; the answer comes to `on_http_call_response` with the token.
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: Vec<(&str, &str)>,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, Status>;
    fn register_shared_queue(&self, name: &str) -> Option<u32>;
    fn enqueue_shared_queue(&self, queue_id: u32, value: &[u8]) -> bool;
    /// The next message; `None` when empty or on failure.
    fn dequeue_shared_queue(&self, queue_id: u32) -> Option<Vec<u8>>;
    fn set_tick_period(&self, period: Duration);

    // ---- shared data

    /// Shared data without a cache: every read and write is a hostcall.
    fn shared(&self) -> &Self::Shared;
    /// Runs `f` with the VM's cached view of shared data (the data path's).
    fn with_cached_shared<R>(&self, f: impl FnOnce(&Cached<Self::Shared>) -> R) -> R;

    // ---- metrics

    /// The VM's stat ids and pending counters (defined on first use).
    fn vm_metrics(&self) -> Rc<Metrics>;
    fn define_metric(&self, kind: Kind, name: &str) -> Option<u32>;
    fn increment_metric(&self, id: u32, offset: i64);
    fn record_metric(&self, id: u32, value: u64);

    // ---- derived

    /// Milliseconds since the epoch by the host's clock.
    #[inline]
    fn now_ms(&self) -> Option<u64> {
        let d = self
            .current_time()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        u64::try_from(d.as_millis()).ok()
    }

    /// Nanoseconds since the epoch (0 without a clock): a seed, not a time.
    #[inline]
    fn now_nanos(&self) -> u64 {
        self.current_time()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64)
    }

    /// All headers of a map that are valid UTF-8 (others are skipped).
    #[inline]
    fn headers(&self, map: MapType) -> Vec<(String, String)> {
        self.header_pairs(map)
            .into_iter()
            .filter_map(|(k, v)| String::from_utf8(v).ok().map(|v| (k, v)))
            .collect()
    }

    /// The `:status` of a map; 0 when absent or not a number.
    #[inline]
    fn status(&self, map: MapType) -> u32 {
        self.header(map, ":status")
            .and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl<H: Host> StatSink for H {
    #[inline]
    fn define_metric(&self, kind: Kind, name: &str) -> Option<u32> {
        Host::define_metric(self, kind, name)
    }
    #[inline]
    fn increment_metric(&self, id: u32, offset: i64) {
        Host::increment_metric(self, id, offset);
    }
    #[inline]
    fn record_metric(&self, id: u32, value: u64) {
        Host::record_metric(self, id, value);
    }
}

/// Logs the first ten occurrences, then every hundredth: bounded log volume
/// for things that can happen on every request.
pub fn should_log(nth: u64) -> bool {
    nth <= 10 || nth.is_multiple_of(100)
}
