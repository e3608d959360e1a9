//! Native tests of the glue: the proxy-wasm callbacks of [`Root`] and
//! [`Filter`], driven in the order Envoy calls them, against the fake host
//! (`host::fake`). One submodule per Envoy test file in `tests/filter/`;
//! each test names the Envoy test it mirrors.
//!
//! The harness: a [`World`] is one Envoy with one or more workers (a VM and
//! a root context each) and two stand-in upstreams whose answers the test
//! sets, like `tests/filter/upstream.py`. `post` runs one whole request
//! through a worker's filter (headers, body, the upstream's answer, `on_log`)
//! and delivers the shadow queue to the root context that owns it; shadow
//! calls stay pending until `answer_shadows` / `fail_shadows`.

use crate::config::Backend;
use crate::filter::Filter;
use crate::host::fake::{Call, FakeEnvoy, FakeHost, LocalReply};
use crate::metrics::Metric;
use crate::root::Root;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::Action;
use serde_json::{json, Value};
use std::rc::Rc;

mod breaker;
mod metrics;
mod reconfig;
mod routing;
mod shadow;

/// The canned answer of the stand-in upstreams (`upstream.py`'s PREDICTION),
/// every model column times `1 + factor`.
pub fn prediction(factor: f64) -> Vec<u8> {
    let row = |id: &str, ds: &str, mlp: f64, nhits: f64| json!({"unique_id": id, "ds": ds, "MLP": mlp * (1.0 + factor), "NHITS": nhits * (1.0 + factor)});
    json!({"model": "air", "predictions": [
        row("s1", "2024-02-29T00:00:00", 118.3, 120.25),
        row("s1", "2024-03-31T00:00:00", 119.0, 121.5),
        row("s2", "2024-02-29T00:00:00", 42.0, 41.75),
    ]})
    .to_string()
    .into_bytes()
}

/// The request body the Envoy tests send (`harness.PREDICT`).
pub const PREDICT: &[u8] = br#"{"df": [{"unique_id": "s1", "ds": "2024-01-31", "y": 112.0}]}"#;

/// What a stand-in upstream does with a request (`upstream.py` modes).
#[derive(Debug, Clone)]
pub enum Upstream {
    /// Answers with this status and body (`x-upstream: <name>`).
    Answer { status: u32, body: Vec<u8> },
    /// No answer (reset, refused, timeout): Envoy answers the client with
    /// this status itself (503, 504) and fails a shadow call.
    Gone { envoy_status: u32 },
    /// Response headers without a `:status` (the filter reads status 0).
    NoStatus,
    /// Answers 400 from the headers alone, before the request body arrives.
    Early,
}

impl Upstream {
    pub fn ok() -> Upstream {
        Upstream::Answer {
            status: 200,
            body: prediction(0.0),
        }
    }

    pub fn status(status: u32) -> Upstream {
        Upstream::Answer {
            status,
            body: br#"{"error": {"code": "boom", "message": "failing on purpose"}}"#.to_vec(),
        }
    }

    pub fn body(body: Vec<u8>) -> Upstream {
        Upstream::Answer { status: 200, body }
    }
}

/// The plugin configuration `harness.filter_config` builds: clusters named
/// `python` / `rust`, weight 0, `overrides` merged one level deep.
pub fn config(overrides: Value) -> Value {
    let mut cfg = json!({
        "rust_weight_bp": 0,
        "backends": {
            "python": {"cluster": "python", "authority": "127.0.0.1:8000"},
            "rust": {"cluster": "rust", "authority": "127.0.0.1:8080"},
        },
    });
    if let (Some(base), Some(over)) = (cfg.as_object_mut(), overrides.as_object()) {
        for (k, v) in over {
            match (base.get_mut(k), v) {
                (Some(Value::Object(b)), Value::Object(o)) => {
                    for (kk, vv) in o {
                        b.insert(kk.clone(), vv.clone());
                    }
                }
                _ => {
                    base.insert(k.clone(), v.clone());
                }
            }
        }
    }
    cfg
}

/// `shadow` settings mirroring everything (`test_shadow.mirror`).
pub fn mirror(overrides: Value) -> Value {
    let mut m = json!({"share_bp": 10000});
    if let (Some(m), Some(o)) = (m.as_object_mut(), overrides.as_object()) {
        for (k, v) in o {
            m.insert(k.clone(), v.clone());
        }
    }
    m
}

/// One request's HTTP context, with the fake's current context set before
/// each callback.
pub struct Req {
    pub filter: Filter<FakeHost>,
    pub id: u32,
    envoy: Rc<FakeEnvoy>,
}

impl Req {
    fn enter(&self) {
        self.envoy.enter(self.id);
    }

    /// `on_http_request_headers` for a POST to `path` with `headers`.
    pub fn request_headers_at(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        end: bool,
    ) -> Action {
        self.enter();
        let mut map = vec![
            (":method".to_string(), b"POST".to_vec()),
            (":path".to_string(), path.as_bytes().to_vec()),
            (":authority".to_string(), b"envoy.local".to_vec()),
            ("content-type".to_string(), b"application/json".to_vec()),
        ];
        map.extend(
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
        );
        self.envoy.with_stream(|s| s.request_headers = map);
        HttpContext::on_http_request_headers(&mut self.filter, headers.len() + 4, end)
    }

    pub fn request_headers(&mut self, headers: &[(&str, &str)], end: bool) -> Action {
        self.request_headers_at("/predict", headers, end)
    }

    pub fn request_body(&mut self, chunk: &[u8], end: bool) -> Action {
        self.enter();
        self.envoy.with_stream(|s| s.request_body = chunk.to_vec());
        HttpContext::on_http_request_body(&mut self.filter, chunk.len(), end)
    }

    pub fn request_trailers(&mut self) -> Action {
        self.enter();
        HttpContext::on_http_request_trailers(&mut self.filter, 1)
    }

    /// `on_http_response_headers`; `status` `None`: no `:status` header.
    pub fn response_headers(
        &mut self,
        status: Option<u32>,
        headers: &[(&str, &str)],
        end: bool,
    ) -> Action {
        self.enter();
        let mut map: Vec<(String, Vec<u8>)> = status
            .map(|s| (":status".to_string(), s.to_string().into_bytes()))
            .into_iter()
            .collect();
        map.extend(
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
        );
        let n = map.len();
        self.envoy.with_stream(|s| s.response_headers = map);
        HttpContext::on_http_response_headers(&mut self.filter, n, end)
    }

    pub fn response_body(&mut self, chunk: &[u8], end: bool) -> Action {
        self.enter();
        self.envoy.with_stream(|s| s.response_body = chunk.to_vec());
        HttpContext::on_http_response_body(&mut self.filter, chunk.len(), end)
    }

    /// `on_log`: the stream is over.
    pub fn done(&mut self) {
        self.enter();
        HttpContext::on_log(&mut self.filter);
    }

    /// A request header as the upstream would see it.
    pub fn request_header(&self, name: &str) -> Option<String> {
        header(&self.envoy.stream(self.id).request_headers, name)
    }

    /// A response header as the client would see it.
    pub fn response_header(&self, name: &str) -> Option<String> {
        header(&self.envoy.stream(self.id).response_headers, name)
    }

    /// The backend the routing header names.
    pub fn routed(&self) -> Option<Backend> {
        self.request_header("x-nd-backend")
            .and_then(|v| Backend::parse(v.as_bytes()))
    }

    pub fn local_reply(&self) -> Option<LocalReply> {
        self.envoy.stream(self.id).local_reply
    }
}

fn header(map: &[(String, Vec<u8>)], name: &str) -> Option<String> {
    map.iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| String::from_utf8(v.clone()).ok())
}

/// What the client got.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u32,
    /// The upstream that answered (`x-upstream`); `None` for Envoy's own answers.
    pub upstream: Option<Backend>,
    /// The backend the filter routed to (`None`: rejected).
    pub routed: Option<Backend>,
    pub fallback: Option<String>,
    pub body: Vec<u8>,
    /// The Actions the filter returned, in callback order.
    pub actions: Vec<Action>,
}

pub struct Worker {
    pub host: FakeHost,
    /// Root contexts in creation order; the last configured one serves.
    roots: Vec<Root<FakeHost>>,
    current: Option<usize>,
}

pub struct World {
    pub envoy: Rc<FakeEnvoy>,
    pub workers: Vec<Worker>,
    /// (worker, root) that registered the shadow queue last.
    queue_owner: Option<(usize, usize)>,
    /// Shadow calls not answered yet: (token, worker, root).
    pending: Vec<(u32, usize, usize)>,
    next_context: u32,
    /// The stand-ins, by [`Backend::index`].
    pub upstream: [Upstream; 2],
}

impl World {
    /// An Envoy with one worker running the filter with `cfg`.
    pub fn new(cfg: Value) -> World {
        World::with_workers(1, cfg)
    }

    pub fn with_workers(n: usize, cfg: Value) -> World {
        let envoy = FakeEnvoy::new();
        let mut w = World {
            workers: (0..n)
                .map(|_| Worker {
                    host: envoy.vm(),
                    roots: Vec::new(),
                    current: None,
                })
                .collect(),
            envoy,
            queue_owner: None,
            pending: Vec::new(),
            next_context: 100,
            upstream: [Upstream::ok(), Upstream::ok()],
        };
        for i in 0..n {
            assert!(w.configure(i, &cfg), "refused: {cfg}\n{:?}", w.envoy.logs());
        }
        w
    }

    /// A new root context on worker `w` with `cfg` (what an ECDS update does);
    /// `false` if the filter refused it, and the previous one keeps serving.
    pub fn configure(&mut self, w: usize, cfg: &Value) -> bool {
        *self.envoy.plugin_config.borrow_mut() = cfg.to_string().into_bytes();
        let worker = &mut self.workers[w];
        let mut root = Root::new(worker.host.clone());
        if !RootContext::on_configure(&mut root, 0) {
            return false;
        }
        worker.roots.push(root);
        let r = worker.roots.len() - 1;
        worker.current = Some(r);
        self.queue_owner = Some((w, r));
        true
    }

    /// [`configure`](Self::configure) on every worker.
    pub fn reconfigure(&mut self, cfg: Value) -> bool {
        (0..self.workers.len()).all(|w| self.configure(w, &cfg))
    }

    /// Root context `r` of worker `w`.
    pub fn root(&mut self, w: usize, r: usize) -> &mut Root<FakeHost> {
        &mut self.workers[w].roots[r]
    }

    /// The serving root context of worker `w`.
    pub fn current_root(&mut self, w: usize) -> &mut Root<FakeHost> {
        let r = self.workers[w].current.unwrap_or(0);
        self.root(w, r)
    }

    /// A new stream on worker `w`.
    pub fn stream(&mut self, w: usize) -> Req {
        self.next_context += 1;
        let id = self.next_context;
        let filter = self.current_root(w).filter(id);
        Req {
            filter,
            id,
            envoy: self.envoy.clone(),
        }
    }

    /// Delivers the shadow queue to its owner (Envoy's `on_queue_ready`).
    pub fn pump(&mut self) {
        let Some((w, r)) = self.queue_owner else {
            return;
        };
        if self.envoy.queued() == 0 {
            return;
        }
        let Some(queue) = self.root(w, r).plugin().and_then(|p| p.shadow_queue) else {
            return;
        };
        let before = self.envoy.calls().len();
        RootContext::on_queue_ready(self.root(w, r), queue);
        for c in &self.envoy.calls()[before..] {
            self.pending.push((c.token, w, r));
        }
    }

    /// `on_tick` on every root context.
    pub fn tick(&mut self) {
        for w in &mut self.workers {
            for r in &mut w.roots {
                RootContext::on_tick(r);
            }
        }
    }

    /// A metric as Envoy's stats show it after the next tick (counters are
    /// flushed on ticks).
    pub fn metric(&mut self, m: Metric) -> u64 {
        self.tick();
        self.envoy
            .stat(&m.name())
            .map_or_else(|| panic!("{} not defined", m.name()), |s| s.value)
    }

    /// Histogram samples.
    pub fn samples(&mut self, m: Metric) -> Vec<u64> {
        self.envoy
            .stat(&m.name())
            .map(|s| s.samples)
            .unwrap_or_default()
    }

    /// Shadow calls dispatched and not answered yet.
    pub fn pending_calls(&self) -> Vec<Call> {
        let calls = self.envoy.calls();
        self.pending
            .iter()
            .filter_map(|(t, _, _)| calls.iter().find(|c| c.token == *t).cloned())
            .collect()
    }

    fn respond_call(&mut self, token: u32, answer: Option<(u32, Vec<u8>)>) {
        let Some(i) = self.pending.iter().position(|(t, _, _)| *t == token) else {
            panic!("no pending call {token}");
        };
        let (_, w, r) = self.pending.remove(i);
        let (headers, body_size) = match &answer {
            Some((status, body)) => {
                *self.envoy.call_response.borrow_mut() = (
                    vec![
                        (":status".into(), status.to_string().into_bytes()),
                        ("content-type".into(), b"application/json".to_vec()),
                    ],
                    body.clone(),
                );
                (2, body.len())
            }
            None => {
                *self.envoy.call_response.borrow_mut() = Default::default();
                (0, 0)
            }
        };
        Context::on_http_call_response(self.root(w, r), token, headers, body_size, 0);
    }

    /// Answers the shadow call `token` with `status` and `body`.
    pub fn answer_call(&mut self, token: u32, status: u32, body: Vec<u8>) {
        self.respond_call(token, Some((status, body)));
    }

    /// The shadow call `token` failed (timeout, reset: no headers).
    pub fn fail_call(&mut self, token: u32) {
        self.respond_call(token, None);
    }

    /// Answers every pending shadow call as its target's stand-in would.
    pub fn answer_shadows(&mut self) {
        for c in self.pending_calls() {
            let backend = match c.cluster.as_str() {
                "python" => Backend::Python,
                "rust" => Backend::Rust,
                other => panic!("call to cluster {other}"),
            };
            match self.upstream[backend.index()].clone() {
                Upstream::Answer { status, body } => self.answer_call(c.token, status, body),
                Upstream::Early => self.answer_call(c.token, 400, b"{}".to_vec()),
                Upstream::Gone { .. } | Upstream::NoStatus => self.fail_call(c.token),
            }
        }
    }

    /// Fails every pending shadow call (they all time out).
    pub fn fail_shadows(&mut self) {
        for c in self.pending_calls() {
            self.fail_call(c.token);
        }
    }

    /// One POST /predict on worker 0 (see [`post_on`](Self::post_on)).
    pub fn post(&mut self, headers: &[(&str, &str)]) -> Response {
        self.post_on(0, headers, PREDICT)
    }

    /// One whole request on worker `w`: headers, the body in one chunk, the
    /// routed upstream's answer (or Envoy's, or the filter's local reply)
    /// through the response callbacks, `on_log`, then the shadow queue.
    pub fn post_on(&mut self, w: usize, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let mut req = self.stream(w);
        let mut actions = vec![req.request_headers(headers, false)];
        let resp = self.finish(&mut req, body, &mut actions);
        self.pump();
        resp
    }

    fn finish(&mut self, req: &mut Req, body: &[u8], actions: &mut Vec<Action>) -> Response {
        if let Some(reply) = req.local_reply() {
            // The filter answered: Envoy runs the reply through the encoder callbacks.
            let hdrs: Vec<(&str, &str)> = reply
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            actions.push(req.response_headers(Some(reply.status), &hdrs, false));
            actions.push(req.response_body(&reply.body, true));
            req.done();
            return Response {
                status: reply.status,
                upstream: None,
                routed: req.routed(),
                fallback: req.response_header("x-nd-fallback"),
                body: reply.body,
                actions: actions.clone(),
            };
        }
        let routed = req.routed().unwrap_or(Backend::Python);
        let upstream = self.upstream[routed.index()].clone();
        if matches!(upstream, Upstream::Early) {
            actions.push(req.response_headers(
                Some(400),
                &[("x-upstream", routed.as_str())],
                false,
            ));
            actions.push(req.response_body(b"{}", true));
        }
        actions.push(req.request_body(body, true));
        let (status, answered_by, resp_body) = match upstream {
            Upstream::Answer { status, body } => {
                actions.push(req.response_headers(
                    Some(status),
                    &[("x-upstream", routed.as_str())],
                    false,
                ));
                actions.push(req.response_body(&body, true));
                (status, Some(routed), body)
            }
            Upstream::Gone { envoy_status } => {
                let body = b"upstream connect error or disconnect/reset before headers".to_vec();
                actions.push(req.response_headers(Some(envoy_status), &[], false));
                actions.push(req.response_body(&body, true));
                (envoy_status, None, body)
            }
            Upstream::NoStatus => {
                actions.push(req.response_headers(None, &[("x-upstream", routed.as_str())], true));
                (0, Some(routed), Vec::new())
            }
            Upstream::Early => (400, Some(routed), b"{}".to_vec()),
        };
        req.done();
        Response {
            status,
            upstream: answered_by,
            routed: req.routed(),
            fallback: req.response_header("x-nd-fallback"),
            body: resp_body,
            actions: actions.clone(),
        }
    }

    /// A request whose client goes away before any answer: headers and body,
    /// then `on_log` without response callbacks.
    pub fn post_abandoned(&mut self, headers: &[(&str, &str)]) -> Req {
        let mut req = self.stream(0);
        req.request_headers(headers, false);
        req.request_body(PREDICT, true);
        self.pump();
        req.done();
        self.pump();
        req
    }

    /// `n` requests on worker 0: how many each upstream served (by routing).
    pub fn served_by(&mut self, n: usize, headers: &[(&str, &str)]) -> [usize; 2] {
        let mut seen = [0; 2];
        for _ in 0..n {
            let r = self.post(headers);
            if let Some(b) = r.upstream {
                seen[b.index()] += 1;
            }
        }
        seen
    }
}

/// `[python, rust]` counts of `n` requests all served by `b`.
pub fn all(b: Backend, n: usize) -> [usize; 2] {
    let mut v = [0; 2];
    v[b.index()] = n;
    v
}

#[test]
fn the_harness_runs_requests_through_the_callbacks() {
    let mut w = World::new(config(json!({})));
    let r = w.post(&[]);
    assert_eq!(
        (r.status, r.upstream, r.routed),
        (200, Some(Backend::Python), Some(Backend::Python))
    );
    assert!(
        r.actions.iter().all(|a| *a == Action::Continue),
        "{:?}",
        r.actions
    );
    assert_eq!(r.body, prediction(0.0));
    assert_eq!(
        w.envoy
            .stream(*w.envoy.stream_ids().last().unwrap())
            .request_headers
            .iter()
            .filter(|(k, _)| k == "x-nd-backend")
            .count(),
        1
    );
}
