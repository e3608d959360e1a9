//! One request through the filter: sets the routing header, reports the
//! outcome to the breaker and the metrics, and captures what a shadow
//! comparison needs. It never pauses a stream except to answer 503 when both
//! circuits are open and the configuration says so.
//!
//! Plain Rust over [`Host`]: `http.rs` maps each proxy-wasm callback to one
//! method here, and the native tests (`glue_tests`) drive the same methods
//! against the fake host.
//!
//! Methods are `#[inline]` for the module's size (see `host`).

use crate::capture::{Capture, Stage};
use crate::config::Backend;
use crate::host::Host;
use crate::metrics::{BothOpenAction, Metric, Outcome};
use crate::plugin::Plugin;
use crate::routing::{self, Route, Ticket};
use crate::shadow::{Message, SkipReason};
use crate::split;
use proxy_wasm::types::{Action, BufferType, LogLevel, MapType};
use std::rc::Rc;

pub struct Filter<H> {
    plugin: Option<Rc<Plugin<H>>>,
    context_id: u32,
    ticket: Option<Ticket>,
    rejected: bool,
    reported: bool,
    shadow: Option<Capture>,
}

impl<H: Host> Filter<H> {
    #[inline]
    pub fn new(plugin: Option<Rc<Plugin<H>>>, context_id: u32) -> Filter<H> {
        Filter {
            plugin,
            context_id,
            ticket: None,
            rejected: false,
            reported: false,
            shadow: None,
        }
    }

    /// `on_http_request_headers`: routes the request.
    #[inline]
    pub fn request_headers(&mut self, end_of_stream: bool) -> Action {
        let Some(p) = self.plugin.clone() else {
            return Action::Continue;
        };
        let preferred = self.preferred(&p);
        let mut transitions = Vec::new();
        let route = p.host.with_cached_shared(|shared| {
            routing::decide(&p.cfg, preferred, shared, &p.clock(), &mut transitions)
        });
        p.record_transitions(&transitions);
        let ticket = match route {
            Route::Reject { preferred } => return self.reject(&p, preferred),
            Route::To(t) => t,
        };
        if ticket.failed_open {
            p.inc(Metric::BothOpen(BothOpenAction::FailOpen));
        }
        if let Some(from) = ticket.fallback_from {
            p.inc(Metric::Fallback(from));
        }
        // Always overwritten: a client cannot pick the backend by sending it.
        if !p.host.set_header(
            MapType::HttpRequestHeaders,
            &p.cfg.routing_header,
            ticket.backend.as_str(),
        ) {
            p.host.log(
                LogLevel::Warn,
                "nd-filter: could not set the routing header",
            );
        }
        self.ticket = Some(ticket);
        self.maybe_start_shadow(&p, &ticket, end_of_stream);
        Action::Continue
    }

    /// `on_http_request_body`: collects the request body of a mirrored request.
    #[inline]
    pub fn request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(c) = self.shadow.as_mut() else {
            return Action::Continue;
        };
        if !matches!(c.stage, Stage::Request) {
            return Action::Continue;
        }
        let Some(p) = self.plugin.clone() else {
            return Action::Continue;
        };
        if !c.fits(body_size, p.cfg.shadow.max_body_bytes) {
            p.inc(Metric::ShadowSkipped(SkipReason::BodyTooLarge));
            self.shadow = None;
            return Action::Continue;
        }
        if body_size > 0 {
            match p.host.buffer(BufferType::HttpRequestBody, body_size) {
                Some(chunk) => c.push(&chunk),
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

    /// `on_http_request_trailers`: trailers end the request.
    #[inline]
    pub fn request_trailers(&mut self) -> Action {
        if let (Some(p), Some(c)) = (self.plugin.clone(), &self.shadow) {
            if matches!(c.stage, Stage::Request) {
                self.send_start(&p);
            }
        }
        Action::Continue
    }

    /// `on_http_response_headers`: reports the outcome, marks a fallback,
    /// starts collecting the primary's answer.
    #[inline]
    pub fn response_headers(&mut self, end_of_stream: bool) -> Action {
        if self.rejected {
            return Action::Continue;
        }
        let Some(p) = self.plugin.clone() else {
            return Action::Continue;
        };
        let status = p.host.status(MapType::HttpResponseHeaders);
        self.report(&p, status);
        if let Some(from) = self.ticket.and_then(|t| t.fallback_from) {
            let marker = format!("{}->{}", from.as_str(), from.other().as_str());
            let _ = p.host.set_header(
                MapType::HttpResponseHeaders,
                &p.cfg.fallback_header,
                &marker,
            );
        }
        match self.shadow.as_mut() {
            Some(c) if matches!(c.stage, Stage::AwaitingPrimary) => {
                if end_of_stream {
                    let msg = c.primary(status);
                    self.shadow = None;
                    let _ = Self::enqueue(&p, &msg);
                } else {
                    c.stage = Stage::Response { status };
                }
            }
            // The primary answered before the request ended: nothing to mirror.
            Some(_) => {
                self.shadow = None;
                p.inc(Metric::ShadowSkipped(SkipReason::AnsweredEarly));
            }
            None => {}
        }
        Action::Continue
    }

    /// `on_http_response_body`: collects the primary's answer and hands it to the root.
    #[inline]
    pub fn response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(c) = self.shadow.as_mut() else {
            return Action::Continue;
        };
        let Stage::Response { status } = c.stage else {
            return Action::Continue;
        };
        let Some(p) = self.plugin.clone() else {
            return Action::Continue;
        };
        if !c.fits(body_size, p.cfg.shadow.max_body_bytes) {
            // Counted by the root when it drops the comparison.
            self.abandon(&p, SkipReason::BodyTooLarge);
            return Action::Continue;
        }
        if body_size > 0 {
            if let Some(chunk) = p.host.buffer(BufferType::HttpResponseBody, body_size) {
                c.push(&chunk);
            }
        }
        if end_of_stream {
            let msg = c.primary(status);
            self.shadow = None;
            let _ = Self::enqueue(&p, &msg);
        }
        Action::Continue
    }

    /// `on_log`: a request that never got response headers was aborted.
    #[inline]
    pub fn done(&mut self) {
        let Some(p) = self.plugin.clone() else { return };
        if let (Some(ticket), false, false) = (self.ticket, self.reported, self.rejected) {
            p.inc(Metric::Requests(ticket.backend, Outcome::Aborted));
            let mut transitions = Vec::new();
            p.host.with_cached_shared(|shared| {
                routing::report(
                    &p.cfg,
                    &ticket,
                    routing::Outcome::Abandoned,
                    shared,
                    &p.clock(),
                    &mut transitions,
                )
            });
            p.record_transitions(&transitions);
        }
        self.abandon(&p, SkipReason::Abandoned);
    }

    /// The split's choice: the override header (if enabled), else the sticky
    /// key's bucket, else the next value of the VM's sequence.
    #[inline]
    fn preferred(&self, p: &Plugin<H>) -> Backend {
        let cfg = &p.cfg;
        if let Some(h) = &cfg.override_header {
            if let Some(b) = p
                .host
                .header(MapType::HttpRequestHeaders, h)
                .and_then(|v| Backend::parse(&v))
            {
                return b;
            }
        }
        let keyed = cfg
            .sticky_header
            .as_ref()
            .and_then(|h| p.host.header(MapType::HttpRequestHeaders, h))
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

    #[inline]
    fn reject(&mut self, p: &Plugin<H>, preferred: Backend) -> Action {
        self.rejected = true;
        p.inc(Metric::Requests(preferred, Outcome::Rejected));
        p.inc(Metric::BothOpen(BothOpenAction::Reject));
        let marker = format!("{}->none", preferred.as_str());
        let headers = vec![
            ("content-type", "application/json"),
            (p.cfg.fallback_header.as_str(), marker.as_str()),
        ];
        if !p.host.send_http_response(
            routing::BOTH_OPEN_STATUS,
            headers,
            Some(routing::BOTH_OPEN_BODY),
        ) {
            return Action::Continue;
        }
        Action::Pause
    }

    #[inline]
    fn maybe_start_shadow(&mut self, p: &Plugin<H>, ticket: &Ticket, end_of_stream: bool) {
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
        let path = p
            .host
            .header(MapType::HttpRequestHeaders, ":path")
            .unwrap_or_default();
        if !path.starts_with(s.path_prefix.as_bytes()) {
            return;
        }
        let target = ticket.backend.other();
        if let Some(bcfg) = &p.cfg.breaker {
            let key = crate::breaker::store::key(target);
            let b = p
                .host
                .with_cached_shared(|shared| crate::breaker::store::load(shared, key))
                .breaker;
            if b.needs_clock() && !p.host.now_ms().is_some_and(|now| b.would_admit(bcfg, now)) {
                p.inc(Metric::ShadowSkipped(SkipReason::BreakerOpen));
                return;
            }
        }
        if p.shadow_queue.is_none() {
            p.inc(Metric::ShadowSkipped(SkipReason::Queue));
            return;
        }
        let request_id = p
            .host
            .header(MapType::HttpRequestHeaders, "x-request-id")
            .and_then(|v| String::from_utf8(v).ok())
            .unwrap_or_default();
        let n = p.shadow_counter.get().wrapping_add(1);
        p.shadow_counter.set(n);
        let id = split::mix64(
            p.host.now_nanos()
                ^ (u64::from(self.context_id) << 32)
                ^ n
                ^ split::mix64(u64::from(split::key_bucket(request_id.as_bytes()))),
        );
        self.shadow = Some(Capture::new(
            id,
            target,
            request_id,
            p.host.headers(MapType::HttpRequestHeaders),
        ));
        if end_of_stream {
            self.send_start(p);
        }
    }

    #[inline]
    fn enqueue(p: &Plugin<H>, msg: &Message) -> bool {
        match p.shadow_queue {
            Some(q) => p.host.enqueue_shared_queue(q, &msg.encode()),
            None => false,
        }
    }

    #[inline]
    fn send_start(&mut self, p: &Plugin<H>) {
        let Some(c) = self.shadow.as_mut() else {
            return;
        };
        if Self::enqueue(p, &c.start()) {
            c.stage = Stage::AwaitingPrimary;
        } else {
            p.inc(Metric::ShadowSkipped(SkipReason::Queue));
            self.shadow = None;
        }
    }

    /// Ends this request's comparison early (the root counts `reason` if it had started).
    #[inline]
    fn abandon(&mut self, p: &Plugin<H>, reason: SkipReason) {
        if let Some(msg) = self.shadow.take().and_then(|c| c.abandon(reason)) {
            let _ = Self::enqueue(p, &msg);
        }
    }

    #[inline]
    fn report(&mut self, p: &Plugin<H>, status: u32) {
        let Some(ticket) = self.ticket else { return };
        self.reported = true;
        let failed = routing::backend_failed(status);
        let outcome = if failed {
            Outcome::Error
        } else {
            Outcome::Success
        };
        p.inc(Metric::Requests(ticket.backend, outcome));
        let result = if failed {
            routing::Outcome::Failure
        } else {
            routing::Outcome::Success
        };
        let mut transitions = Vec::new();
        p.host.with_cached_shared(|shared| {
            routing::report(
                &p.cfg,
                &ticket,
                result,
                shared,
                &p.clock(),
                &mut transitions,
            )
        });
        p.record_transitions(&transitions);
    }
}
