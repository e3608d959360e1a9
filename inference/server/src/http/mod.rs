//! The HTTP service: hyper 1 + tower. Routes in `routes.rs`; cross-cutting
//! concerns as tower layers (`layers.rs`: observe/metrics + error mapping;
//! tower's load shedding, concurrency limit and timeout); the accept loop
//! and graceful drain in `server.rs`.

pub mod layers;
pub mod routes;
pub mod server;

use crate::cache::ModelCache;
use crate::config::Config;
use crate::metrics::Metrics;
use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::Full;
use nd_forecast::error::ApiError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub type Body = Full<Bytes>;

/// Shared by every request.
pub struct AppState {
    pub config: Config,
    pub cache: ModelCache,
    pub metrics: Arc<Metrics>,
    /// Initial load finished.
    pub loaded: AtomicBool,
    /// Shutdown started: /ready answers 503 so traffic moves away first.
    pub draining: AtomicBool,
    /// Forward passes running off the async workers. A request that timed
    /// out stops waiting but its blocking work runs to the end holding its
    /// permit, so timeouts cannot pile up unbounded work behind the
    /// concurrency limit.
    pub compute: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    pub fn new(config: Config) -> Arc<AppState> {
        let metrics = Arc::new(Metrics::new());
        let cache = ModelCache::new(
            config.model_path.clone(),
            config.cache_size,
            config.default_model.clone(),
            metrics.clone(),
        );
        let compute = Arc::new(tokio::sync::Semaphore::new(config.max_concurrency));
        Arc::new(AppState {
            compute,
            config,
            cache,
            metrics,
            loaded: AtomicBool::new(false),
            draining: AtomicBool::new(false),
        })
    }

    pub fn is_ready(&self) -> bool {
        self.loaded.load(Ordering::SeqCst)
            && !self.draining.load(Ordering::SeqCst)
            && (!self.config.eager || !self.cache.snapshot().bundles.is_empty())
    }
}

pub fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

/// The one place a contract error becomes HTTP: its code's status, its
/// body, and the code as a response extension (so the metrics layer counts
/// errors by code without parsing the body).
pub fn error_response(e: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json_response(status, e.body());
    r.extensions_mut().insert(e.code);
    r
}
