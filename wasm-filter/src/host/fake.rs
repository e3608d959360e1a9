//! An in-memory Envoy for native tests of the glue (`glue_tests`).
//!
//! [`FakeEnvoy`] is what all workers of one Envoy share: shared data, shared
//! queues, stats, the log, dispatched http calls, the clock, and the streams
//! (header maps and body chunks per HTTP context, with the "current
//! context" a test selects before each callback, as Envoy does). Each
//! [`FakeHost`] is one worker's VM on it: its own metric ids and its own
//! breaker read cache, like a Wasm VM per Envoy worker thread.

use super::Host;
use crate::breaker::store::{Cached, HostError, SetError, SharedData, Stored};
use crate::metrics::{Kind, Metrics};
use crate::testutil::FakeStore;
use proxy_wasm::types::{BufferType, LogLevel, MapType, Status};
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub type Headers = Vec<(String, Vec<u8>)>;

/// One HTTP stream's host-side state.
#[derive(Debug, Default, Clone)]
pub struct Stream {
    pub request_headers: Headers,
    /// The chunk passed to the current `on_http_request_body`.
    pub request_body: Vec<u8>,
    pub response_headers: Headers,
    pub response_body: Vec<u8>,
    /// What `send_http_response` answered.
    pub local_reply: Option<LocalReply>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A `dispatch_http_call`.
#[derive(Debug, Clone)]
pub struct Call {
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    pub name: String,
    pub kind: Kind,
    /// Counter total or last gauge value.
    pub value: u64,
    /// Histogram samples.
    pub samples: Vec<u64>,
    /// How many VMs defined it.
    pub defined: u32,
}

#[derive(Default)]
pub struct FakeEnvoy {
    pub store: FakeStore,
    queues: RefCell<Vec<(String, VecDeque<Vec<u8>>)>>,
    /// Envoy refuses every enqueue (queue gone).
    pub fail_enqueue: Cell<bool>,
    /// Envoy refuses to register queues.
    pub fail_register: Cell<bool>,
    stats: RefCell<Vec<Stat>>,
    logs: RefCell<Vec<(LogLevel, String)>>,
    calls: RefCell<Vec<Call>>,
    /// Clusters `dispatch_http_call` does not know (it fails with BadArgument).
    pub unknown_clusters: RefCell<Vec<String>>,
    /// Milliseconds since the epoch; `None`: the clock hostcall fails.
    pub clock_ms: Cell<Option<u64>>,
    pub tick_period: Cell<Option<Duration>>,
    pub plugin_config: RefCell<Vec<u8>>,
    streams: RefCell<BTreeMap<u32, Stream>>,
    current: Cell<u32>,
    /// Body reads of the current stream fail.
    pub fail_body_reads: Cell<bool>,
    /// The answer `on_http_call_response` is reading.
    pub call_response: RefCell<(Headers, Vec<u8>)>,
}

impl FakeEnvoy {
    pub fn new() -> Rc<FakeEnvoy> {
        let e = FakeEnvoy::default();
        e.clock_ms.set(Some(1_700_000_000_000));
        Rc::new(e)
    }

    /// A new worker VM on this Envoy.
    pub fn vm(self: &Rc<Self>) -> FakeHost {
        FakeHost {
            envoy: self.clone(),
            vm: Rc::new(Vm {
                metrics: OnceCell::new(),
                cache: Cached::new(Store(self.clone())),
            }),
            store: Store(self.clone()),
        }
    }

    pub fn advance(&self, ms: u64) {
        self.clock_ms.set(self.clock_ms.get().map(|t| t + ms));
    }

    // ---- streams

    /// Makes `context_id` the current stream (created empty if new).
    pub fn enter(&self, context_id: u32) {
        self.current.set(context_id);
        self.streams.borrow_mut().entry(context_id).or_default();
    }

    pub fn stream(&self, context_id: u32) -> Stream {
        self.streams
            .borrow()
            .get(&context_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Every stream's context id, in order.
    pub fn stream_ids(&self) -> Vec<u32> {
        self.streams.borrow().keys().copied().collect()
    }

    pub fn with_stream<R>(&self, f: impl FnOnce(&mut Stream) -> R) -> R {
        let mut streams = self.streams.borrow_mut();
        f(streams.entry(self.current.get()).or_default())
    }

    // ---- what the filter did

    pub fn logs(&self) -> Vec<(LogLevel, String)> {
        self.logs.borrow().clone()
    }

    /// Log lines containing `needle`.
    pub fn logged(&self, needle: &str) -> usize {
        self.logs
            .borrow()
            .iter()
            .filter(|(_, l)| l.contains(needle))
            .count()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    pub fn stats(&self) -> Vec<Stat> {
        self.stats.borrow().clone()
    }

    pub fn stat(&self, name: &str) -> Option<Stat> {
        self.stats.borrow().iter().find(|s| s.name == name).cloned()
    }

    /// The id `register_shared_queue` gave `name`.
    pub fn queue_id(&self, name: &str) -> Option<u32> {
        let queues = self.queues.borrow();
        let i = queues.iter().position(|(n, _)| n == name)?;
        Some(i as u32 + 1)
    }

    pub fn queued(&self) -> usize {
        self.queues.borrow().iter().map(|(_, q)| q.len()).sum()
    }
}

fn map_get(map: &Headers, name: &str) -> Option<Vec<u8>> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

fn map_set(map: &mut Headers, name: &str, value: &str) {
    map.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    map.push((name.to_string(), value.as_bytes().to_vec()));
}

/// Shared data of the whole Envoy.
#[derive(Clone)]
pub struct Store(Rc<FakeEnvoy>);

impl SharedData for Store {
    fn get(&self, key: &str) -> Result<Stored, HostError> {
        self.0.store.get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SetError> {
        self.0.store.set(key, value, cas)
    }
}

struct Vm {
    metrics: OnceCell<Rc<Metrics>>,
    cache: Cached<Store>,
}

/// One worker's VM on a [`FakeEnvoy`].
#[derive(Clone)]
pub struct FakeHost {
    pub envoy: Rc<FakeEnvoy>,
    vm: Rc<Vm>,
    store: Store,
}

impl FakeHost {
    fn map(&self, map: MapType) -> Option<Headers> {
        let e = &self.envoy;
        match map {
            MapType::HttpCallResponseHeaders => Some(e.call_response.borrow().0.clone()),
            MapType::HttpRequestHeaders => Some(e.with_stream(|s| s.request_headers.clone())),
            MapType::HttpResponseHeaders => Some(e.with_stream(|s| s.response_headers.clone())),
            _ => None,
        }
    }
}

impl Host for FakeHost {
    type Shared = Store;

    fn current_time(&self) -> Option<SystemTime> {
        self.envoy
            .clock_ms
            .get()
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
    }

    fn log(&self, level: LogLevel, msg: &str) {
        self.envoy.logs.borrow_mut().push((level, msg.to_string()));
    }

    fn header(&self, map: MapType, name: &str) -> Option<Vec<u8>> {
        map_get(&self.map(map)?, name)
    }

    fn set_header(&self, map: MapType, name: &str, value: &str) -> bool {
        self.envoy.with_stream(|s| match map {
            MapType::HttpRequestHeaders => {
                map_set(&mut s.request_headers, name, value);
                true
            }
            MapType::HttpResponseHeaders => {
                map_set(&mut s.response_headers, name, value);
                true
            }
            _ => false,
        })
    }

    fn header_pairs(&self, map: MapType) -> Vec<(String, Vec<u8>)> {
        self.map(map).unwrap_or_default()
    }

    fn buffer(&self, kind: BufferType, size: usize) -> Option<Vec<u8>> {
        let e = &self.envoy;
        let all = match kind {
            BufferType::PluginConfiguration => e.plugin_config.borrow().clone(),
            BufferType::HttpCallResponseBody => e.call_response.borrow().1.clone(),
            BufferType::HttpRequestBody | BufferType::HttpResponseBody => {
                if e.fail_body_reads.get() {
                    return None;
                }
                e.with_stream(|s| {
                    if matches!(kind, BufferType::HttpRequestBody) {
                        s.request_body.clone()
                    } else {
                        s.response_body.clone()
                    }
                })
            }
            _ => return None,
        };
        if all.is_empty() {
            // Envoy answers an empty buffer with "not found".
            return None;
        }
        Some(all.into_iter().take(size).collect())
    }

    fn send_http_response(
        &self,
        status: u32,
        headers: Vec<(&str, &str)>,
        body: Option<&[u8]>,
    ) -> bool {
        self.envoy.with_stream(|s| {
            s.local_reply = Some(LocalReply {
                status,
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                body: body.unwrap_or_default().to_vec(),
            });
        });
        true
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: Vec<(&str, &str)>,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<u32, Status> {
        let e = &self.envoy;
        if e.unknown_clusters.borrow().iter().any(|c| c == cluster) {
            return Err(Status::BadArgument);
        }
        let mut calls = e.calls.borrow_mut();
        let token = calls.len() as u32 + 1;
        calls.push(Call {
            token,
            cluster: cluster.to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.unwrap_or_default().to_vec(),
            timeout,
        });
        Ok(token)
    }

    fn register_shared_queue(&self, name: &str) -> Option<u32> {
        if self.envoy.fail_register.get() {
            return None;
        }
        let mut queues = self.envoy.queues.borrow_mut();
        let i = match queues.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                queues.push((name.to_string(), VecDeque::new()));
                queues.len() - 1
            }
        };
        Some(i as u32 + 1)
    }

    fn enqueue_shared_queue(&self, queue_id: u32, value: &[u8]) -> bool {
        if self.envoy.fail_enqueue.get() {
            return false;
        }
        let mut queues = self.envoy.queues.borrow_mut();
        match queues.get_mut((queue_id as usize).wrapping_sub(1)) {
            Some((_, q)) => {
                q.push_back(value.to_vec());
                true
            }
            None => false,
        }
    }

    fn dequeue_shared_queue(&self, queue_id: u32) -> Option<Vec<u8>> {
        let mut queues = self.envoy.queues.borrow_mut();
        queues
            .get_mut((queue_id as usize).wrapping_sub(1))?
            .1
            .pop_front()
    }

    fn set_tick_period(&self, period: Duration) {
        self.envoy.tick_period.set(Some(period));
    }

    fn shared(&self) -> &Store {
        &self.store
    }

    fn with_cached_shared<R>(&self, f: impl FnOnce(&Cached<Store>) -> R) -> R {
        f(&self.vm.cache)
    }

    fn vm_metrics(&self) -> Rc<Metrics> {
        self.vm
            .metrics
            .get_or_init(|| Rc::new(Metrics::define(self)))
            .clone()
    }

    fn define_metric(&self, kind: Kind, name: &str) -> Option<u32> {
        let mut stats = self.envoy.stats.borrow_mut();
        // Envoy keeps one stat per name: a second VM defining it gets the same.
        let i = match stats.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                stats.push(Stat {
                    name: name.to_string(),
                    kind,
                    value: 0,
                    samples: Vec::new(),
                    defined: 0,
                });
                stats.len() - 1
            }
        };
        stats[i].defined += 1;
        Some(i as u32)
    }

    fn increment_metric(&self, id: u32, offset: i64) {
        if let Some(s) = self.envoy.stats.borrow_mut().get_mut(id as usize) {
            assert_eq!(s.kind, Kind::Counter, "{} incremented", s.name);
            s.value = s.value.saturating_add_signed(offset);
        }
    }

    fn record_metric(&self, id: u32, value: u64) {
        if let Some(s) = self.envoy.stats.borrow_mut().get_mut(id as usize) {
            match s.kind {
                Kind::Gauge => s.value = value,
                Kind::Histogram => s.samples.push(value),
                Kind::Counter => panic!("{} recorded", s.name),
            }
        }
    }
}
