//! The root context's side of shadow mirroring: takes the HTTP contexts'
//! messages off the shared queue, dispatches the shadow calls (from the root
//! context, because Envoy cancels an HTTP context's calls when its stream
//! ends), pairs each shadow answer with its primary's, compares them and
//! counts the result. Plain Rust over [`Host`]: `root.rs` delegates to it.
//!
//! Methods are `#[inline]` for the module's size (see `host`).

use crate::compare::{self, Answer, Tolerance};
use crate::config::Backend;
use crate::host::{should_log, Host};
use crate::metrics::{divergence_ppm, Metric, ShadowResult};
use crate::plugin::Plugin;
use crate::shadow::{self, Message, ShadowAnswer, SkipReason, Table};
use proxy_wasm::types::{BufferType, LogLevel, MapType};
use std::time::Duration;

/// Comparisons are dropped this long after their shadow call's timeout.
pub const EXPIRY_GRACE_MS: u64 = 10_000;

/// Most messages taken off the queue per `on_queue_ready`, so one call
/// cannot starve the event loop.
pub const MAX_DEQUEUE: usize = 10_000;

/// Comparisons in flight and the counters that rate-limit their logs.
#[derive(Default)]
pub struct Mirror {
    table: Table,
    shadow_errors: u64,
    mismatches: u64,
}

impl Mirror {
    #[cfg(test)]
    #[inline]
    pub fn in_flight(&self) -> usize {
        self.table.len()
    }

    /// `on_queue_ready`: handles the queued messages.
    #[inline]
    pub fn queue_ready<H: Host>(&mut self, plugin: &Plugin<H>, queue_id: u32) {
        for _ in 0..MAX_DEQUEUE {
            match plugin.host.dequeue_shared_queue(queue_id) {
                Some(bytes) => {
                    if let Some(msg) = Message::decode(&bytes) {
                        self.handle(plugin, msg);
                    }
                }
                None => break,
            }
        }
        plugin.record(Metric::ShadowInFlight, self.table.len() as u64);
    }

    /// `on_http_call_response`: the shadow's answer (or its absence).
    #[inline]
    pub fn call_response<H: Host>(
        &mut self,
        plugin: &Plugin<H>,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
    ) {
        let cap = plugin.cfg.shadow.max_body_bytes;
        let answer = if num_headers == 0 {
            ShadowAnswer::Failed("no response (timeout, reset or connection failure)".into())
        } else if body_size > cap {
            ShadowAnswer::Failed(format!(
                "response body of {body_size} bytes is over max_body_bytes {cap}"
            ))
        } else {
            let status = plugin.host.status(MapType::HttpCallResponseHeaders);
            let body = if body_size == 0 {
                Vec::new()
            } else {
                plugin
                    .host
                    .buffer(BufferType::HttpCallResponseBody, body_size)
                    .unwrap_or_default()
            };
            ShadowAnswer::Response { status, body }
        };
        if let Some(ready) = self.table.shadow(token_id, answer) {
            self.finish(plugin, ready);
        }
        plugin.record(Metric::ShadowInFlight, self.table.len() as u64);
    }

    /// The comparisons' part of `on_tick`: drops those older than the
    /// shadow timeout plus [`EXPIRY_GRACE_MS`].
    #[inline]
    pub fn expire<H: Host>(&mut self, plugin: &Plugin<H>) {
        if self.table.is_empty() {
            return;
        }
        let Some(now) = plugin.host.now_ms() else {
            return;
        };
        let ttl = plugin.cfg.shadow.timeout_ms.saturating_add(EXPIRY_GRACE_MS);
        let expired = self.table.expire(now, ttl);
        plugin
            .metrics
            .add(Metric::ShadowSkipped(SkipReason::Expired), expired as u64);
        plugin.record(Metric::ShadowInFlight, self.table.len() as u64);
    }

    #[inline]
    fn handle<H: Host>(&mut self, plugin: &Plugin<H>, msg: Message) {
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
                    plugin.inc(Metric::ShadowSkipped(reason));
                }
            }
        }
    }

    #[inline]
    fn start<H: Host>(
        &mut self,
        plugin: &Plugin<H>,
        id: u64,
        target: Backend,
        request_id: String,
        headers: &[(String, String)],
        body: &[u8],
    ) {
        let cfg = &plugin.cfg;
        if self.table.len() >= cfg.shadow.max_in_flight {
            plugin.inc(Metric::ShadowSkipped(SkipReason::InFlightLimit));
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
        match plugin
            .host
            .dispatch_http_call(&t.cluster, hdrs, Some(body), timeout)
        {
            Ok(token) => {
                if self.table.insert(
                    id,
                    token,
                    request_id,
                    target,
                    plugin.host.now_ms().unwrap_or(0),
                ) {
                    plugin.inc(Metric::ShadowSent(target));
                }
            }
            Err(status) => self.shadow_error(plugin, target, LogLevel::Warn, || {
                format!(
                    "nd-filter: shadow call to cluster {:?} failed: {status:?} (unknown cluster?) request_id={request_id}",
                    t.cluster
                )
            }),
        }
    }

    /// Counts a shadow error and logs it, rate-limited ([`should_log`]).
    #[inline]
    fn shadow_error<H: Host>(
        &mut self,
        plugin: &Plugin<H>,
        target: Backend,
        level: LogLevel,
        message: impl FnOnce() -> String,
    ) {
        plugin.inc(Metric::ShadowResult(target, ShadowResult::Error));
        self.shadow_errors += 1;
        if should_log(self.shadow_errors) {
            plugin.host.log(level, &message());
        }
    }

    #[inline]
    fn finish<H: Host>(&mut self, plugin: &Plugin<H>, ready: shadow::Ready) {
        let target = ready.target;
        let primary = target.other();
        let (status, body) = match ready.shadow {
            ShadowAnswer::Response { status, body } => (status, body),
            ShadowAnswer::Failed(why) => {
                self.shadow_error(plugin, target, LogLevel::Info, || {
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
                plugin.inc(Metric::ShadowResult(target, ShadowResult::Match));
                plugin.record(Metric::ShadowDivergence(target), divergence_ppm(max_rel));
            }
            compare::Outcome::Mismatch {
                field,
                detail,
                max_rel,
            } => {
                plugin.inc(Metric::ShadowResult(target, ShadowResult::Mismatch));
                plugin.record(Metric::ShadowDivergence(target), divergence_ppm(max_rel));
                self.mismatches += 1;
                if should_log(self.mismatches) {
                    plugin.host.log(
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
                self.shadow_error(plugin, target, LogLevel::Info, || {
                    format!(
                        "nd-filter: shadow not comparable request_id={}: {why}",
                        ready.request_id
                    )
                });
            }
        }
    }
}
