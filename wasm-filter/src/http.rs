//! The HTTP context: sets the routing header, reports the outcome to the
//! breaker and the metrics, and captures what a shadow comparison needs.
//! It never pauses a stream except to answer 503 when both circuits are open
//! and the configuration says so.

use crate::config::Backend;
use crate::host;
use crate::metrics::{BothOpenAction, Metric, Outcome};
use crate::root::Plugin;
use crate::routing::{self, Route, Ticket};
use crate::shadow::{Message, SkipReason};
use crate::split;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, LogLevel, MapType};
use std::rc::Rc;

enum Stage {
    /// Collecting the request body.
    Request,
    /// Start sent; waiting for the primary's response headers.
    AwaitingPrimary,
    /// Collecting the primary's response body.
    Response { status: u32 },
}

struct Capture {
    id: u64,
    target: Backend,
    request_id: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    stage: Stage,
}

pub struct Filter {
    plugin: Option<Rc<Plugin>>,
    context_id: u32,
    ticket: Option<Ticket>,
    rejected: bool,
    reported: bool,
    shadow: Option<Capture>,
}

impl Filter {
    pub fn new(plugin: Option<Rc<Plugin>>, context_id: u32) -> Filter {
        Filter {
            plugin,
            context_id,
            ticket: None,
            rejected: false,
            reported: false,
            shadow: None,
        }
    }

    /// The split's choice: the override header (if enabled), else the sticky
    /// key's bucket, else the next value of the VM's sequence.
    fn preferred(&self, p: &Plugin) -> Backend {
        let cfg = &p.cfg;
        if let Some(h) = &cfg.override_header {
            if let Some(b) =
                host::header(MapType::HttpRequestHeaders, h).and_then(|v| Backend::parse(&v))
            {
                return b;
            }
        }
        let keyed = cfg
            .sticky_header
            .as_ref()
            .and_then(|h| host::header(MapType::HttpRequestHeaders, h))
            .filter(|v| !v.is_empty())
            .map(|v| split::key_bucket(&v));
        let bucket = keyed.unwrap_or_else(|| {
            let mut seq = p.split_seq.get();
            let b = seq.next_bucket();
            p.split_seq.set(seq);
            b
        });
        split::backend_for(bucket, cfg.rust_weight_bp)
    }

    fn reject(&mut self, p: &Plugin, preferred: Backend) -> Action {
        self.rejected = true;
        p.metrics
            .inc(Metric::Requests(preferred, Outcome::Rejected));
        p.metrics.inc(Metric::BothOpen(BothOpenAction::Reject));
        let marker = format!("{}->none", preferred.as_str());
        let body = br#"{"error": {"code": "not_ready", "message": "both backends are unavailable (circuits open)"}}"#;
        let headers = vec![
            ("content-type", "application/json"),
            (p.cfg.fallback_header.as_str(), marker.as_str()),
        ];
        if hostcalls::send_http_response(503, headers, Some(body)).is_err() {
            return Action::Continue;
        }
        Action::Pause
    }

    fn maybe_start_shadow(&mut self, p: &Plugin, ticket: &Ticket, end_of_stream: bool) {
        let s = &p.cfg.shadow;
        if s.share_bp == 0
            || ticket.fallback_from.is_some()
            || ticket.failed_open
            || !s.direction.mirrors(ticket.backend)
        {
            return;
        }
        let mut seq = p.shadow_seq.get();
        let sampled = seq.next_bucket() < s.share_bp;
        p.shadow_seq.set(seq);
        if !sampled {
            return;
        }
        let path = host::header(MapType::HttpRequestHeaders, ":path").unwrap_or_default();
        if !path.starts_with(s.path_prefix.as_bytes()) {
            return;
        }
        let target = ticket.backend.other();
        if let Some(bcfg) = &p.cfg.breaker {
            let key = crate::breaker::store::key(target);
            let b = host::with_shared(|shared| crate::breaker::store::load(shared, key)).breaker;
            if b.needs_clock() && !host::now_ms().is_some_and(|now| b.would_admit(bcfg, now)) {
                p.metrics
                    .inc(Metric::ShadowSkipped(SkipReason::BreakerOpen));
                return;
            }
        }
        if p.shadow_queue.is_none() {
            p.metrics.inc(Metric::ShadowSkipped(SkipReason::Queue));
            return;
        }
        let request_id = host::header(MapType::HttpRequestHeaders, "x-request-id")
            .and_then(|v| String::from_utf8(v).ok())
            .unwrap_or_default();
        let n = p.shadow_counter.get().wrapping_add(1);
        p.shadow_counter.set(n);
        let id = split::mix64(
            host::now_nanos()
                ^ (u64::from(self.context_id) << 32)
                ^ n
                ^ split::mix64(u64::from(split::key_bucket(request_id.as_bytes()))),
        );
        self.shadow = Some(Capture {
            id,
            target,
            request_id,
            headers: host::headers(MapType::HttpRequestHeaders),
            body: Vec::new(),
            stage: Stage::Request,
        });
        if end_of_stream {
            self.send_start(p);
        }
    }

    fn enqueue(p: &Plugin, msg: &Message) -> bool {
        match p.shadow_queue {
            Some(q) => hostcalls::enqueue_shared_queue(q, Some(&msg.encode())).is_ok(),
            None => false,
        }
    }

    fn send_start(&mut self, p: &Plugin) {
        let Some(c) = self.shadow.as_mut() else {
            return;
        };
        let msg = Message::Start {
            id: c.id,
            target: c.target,
            request_id: std::mem::take(&mut c.request_id),
            headers: std::mem::take(&mut c.headers),
            body: std::mem::take(&mut c.body),
        };
        if Self::enqueue(p, &msg) {
            c.stage = Stage::AwaitingPrimary;
        } else {
            p.metrics.inc(Metric::ShadowSkipped(SkipReason::Queue));
            self.shadow = None;
        }
    }

    /// Ends this request's comparison early (the root counts `reason` if it had started).
    fn abandon(&mut self, p: &Plugin, reason: SkipReason) {
        if let Some(c) = self.shadow.take() {
            if !matches!(c.stage, Stage::Request) {
                let _ = Self::enqueue(p, &Message::Abandon { id: c.id, reason });
            }
        }
    }

    fn report(&mut self, p: &Plugin, status: u32) {
        let Some(ticket) = self.ticket else { return };
        self.reported = true;
        let failed = status == 0 || status >= 500;
        let outcome = if failed {
            Outcome::Error
        } else {
            Outcome::Success
        };
        p.metrics.inc(Metric::Requests(ticket.backend, outcome));
        let result = if failed {
            routing::Outcome::Failure
        } else {
            routing::Outcome::Success
        };
        let mut transitions = Vec::new();
        host::with_shared(|shared| {
            routing::report(
                &p.cfg,
                &ticket,
                result,
                shared,
                &host::now_ms,
                &mut transitions,
            )
        });
        p.record_transitions(&transitions);
    }
}

impl Context for Filter {}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(p) = self.plugin.clone() else {
            return Action::Continue;
        };
        let preferred = self.preferred(&p);
        let mut transitions = Vec::new();
        let route = host::with_shared(|shared| {
            routing::decide(&p.cfg, preferred, shared, &host::now_ms, &mut transitions)
        });
        p.record_transitions(&transitions);
        let ticket = match route {
            Route::Reject { preferred } => return self.reject(&p, preferred),
            Route::To(t) => t,
        };
        if ticket.failed_open {
            p.metrics.inc(Metric::BothOpen(BothOpenAction::FailOpen));
        }
        if let Some(from) = ticket.fallback_from {
            p.metrics.inc(Metric::Fallback(from));
        }
        // Always overwritten: a client cannot pick the backend by sending it.
        if !host::set_header(
            MapType::HttpRequestHeaders,
            &p.cfg.routing_header,
            ticket.backend.as_str(),
        ) {
            host::log(
                LogLevel::Warn,
                "nd-filter: could not set the routing header",
            );
        }
        self.ticket = Some(ticket);
        self.maybe_start_shadow(&p, &ticket, end_of_stream);
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(c) = self.shadow.as_mut() else {
            return Action::Continue;
        };
        if !matches!(c.stage, Stage::Request) {
            return Action::Continue;
        }
        let Some(p) = self.plugin.clone() else {
            return Action::Continue;
        };
        if c.body.len().saturating_add(body_size) > p.cfg.shadow.max_body_bytes {
            p.metrics
                .inc(Metric::ShadowSkipped(SkipReason::BodyTooLarge));
            self.shadow = None;
            return Action::Continue;
        }
        if body_size > 0 {
            match host::buffer(BufferType::HttpRequestBody, body_size) {
                Some(chunk) => c.body.extend_from_slice(&chunk),
                None => {
                    self.shadow = None;
                    return Action::Continue;
                }
            }
        }
        if end_of_stream {
            self.send_start(&p);
        }
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if let (
            Some(p),
            Some(Capture {
                stage: Stage::Request,
                ..
            }),
        ) = (self.plugin.clone(), &self.shadow)
        {
            self.send_start(&p);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        if self.rejected {
            return Action::Continue;
        }
        let Some(p) = self.plugin.clone() else {
            return Action::Continue;
        };
        let status = host::status(MapType::HttpResponseHeaders);
        self.report(&p, status);
        if let Some(from) = self.ticket.and_then(|t| t.fallback_from) {
            let marker = format!("{}->{}", from.as_str(), from.other().as_str());
            let _ = host::set_header(
                MapType::HttpResponseHeaders,
                &p.cfg.fallback_header,
                &marker,
            );
        }
        match self.shadow.as_mut() {
            Some(c) if matches!(c.stage, Stage::AwaitingPrimary) => {
                if end_of_stream {
                    let msg = Message::Primary {
                        id: c.id,
                        status,
                        body: Vec::new(),
                    };
                    self.shadow = None;
                    let _ = Self::enqueue(&p, &msg);
                } else {
                    c.stage = Stage::Response { status };
                }
            }
            // The primary answered before the request ended: nothing to mirror.
            Some(_) => {
                self.shadow = None;
                p.metrics
                    .inc(Metric::ShadowSkipped(SkipReason::AnsweredEarly));
            }
            None => {}
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(c) = self.shadow.as_mut() else {
            return Action::Continue;
        };
        let Stage::Response { status } = c.stage else {
            return Action::Continue;
        };
        let Some(p) = self.plugin.clone() else {
            return Action::Continue;
        };
        if c.body.len().saturating_add(body_size) > p.cfg.shadow.max_body_bytes {
            // Counted by the root when it drops the comparison.
            self.abandon(&p, SkipReason::BodyTooLarge);
            return Action::Continue;
        }
        if body_size > 0 {
            if let Some(chunk) = host::buffer(BufferType::HttpResponseBody, body_size) {
                c.body.extend_from_slice(&chunk);
            }
        }
        if end_of_stream {
            let msg = Message::Primary {
                id: c.id,
                status,
                body: std::mem::take(&mut c.body),
            };
            self.shadow = None;
            let _ = Self::enqueue(&p, &msg);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let Some(p) = self.plugin.clone() else { return };
        if let (Some(ticket), false, false) = (self.ticket, self.reported, self.rejected) {
            p.metrics
                .inc(Metric::Requests(ticket.backend, Outcome::Aborted));
            let mut transitions = Vec::new();
            host::with_shared(|shared| {
                routing::report(
                    &p.cfg,
                    &ticket,
                    routing::Outcome::Abandoned,
                    shared,
                    &host::now_ms,
                    &mut transitions,
                )
            });
            p.record_transitions(&transitions);
        }
        self.abandon(&p, SkipReason::Abandoned);
    }
}
