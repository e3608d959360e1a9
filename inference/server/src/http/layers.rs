//! Tower layers of the service.
//! `ObserveLayer` is the outermost one: it maps errors from the inner layers
//! to contract responses (load shedding -> 503 `overloaded`, timeout -> 504
//! `timeout`), counts requests by route and status, times them, and logs.

use super::{error_response, Body};
use crate::metrics::{HttpLabels, Metrics, RouteLabels};
use http::{Request, Response};
use nd_forecast::error::ApiError;
use nd_forecast::error::ErrorCode;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tower::{BoxError, Layer, Service};

#[derive(Clone)]
pub struct ObserveLayer {
    metrics: Arc<Metrics>,
}

impl ObserveLayer {
    pub fn new(metrics: Arc<Metrics>) -> ObserveLayer {
        ObserveLayer { metrics }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// A bounded route label: known paths, everything else `other`.
pub fn route_label(path: &str) -> &'static str {
    match path {
        "/predict" => "/predict",
        "/health" => "/health",
        "/ready" => "/ready",
        "/metrics" => "/metrics",
        "/models" => "/models",
        _ => "other",
    }
}

fn map_error(e: &BoxError) -> ApiError {
    if e.is::<tower::load_shed::error::Overloaded>() {
        ApiError::new(
            ErrorCode::Overloaded,
            "too many requests in flight; retry later",
        )
    } else if e.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            ErrorCode::Timeout,
            "the request took longer than the configured timeout",
        )
    } else {
        ApiError::internal(format!("{e}"))
    }
}

impl<S, B> Service<Request<B>> for Observe<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is decided inside (load shedding answers instead of waiting).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let route = route_label(req.uri().path());
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let metrics = self.metrics.clone();
        let inner = self.inner.clone();
        let start = Instant::now();
        Box::pin(async move {
            metrics.in_flight.inc();
            let result = tower::ServiceExt::oneshot(inner, req).await;
            metrics.in_flight.dec();
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    let e: BoxError = e.into();
                    let api = map_error(&e);
                    error_response(&api)
                }
            };
            let status = resp.status();
            let elapsed = start.elapsed();
            let code = resp.extensions().get::<ErrorCode>().map(|c| c.as_str());
            if let Some(code) = code {
                metrics.error(code);
            }
            metrics
                .http_requests
                .get_or_create(&HttpLabels {
                    route: route.to_string(),
                    status: status.as_u16().to_string(),
                })
                .inc();
            metrics
                .http_duration
                .get_or_create(&RouteLabels {
                    route: route.to_string(),
                })
                .observe(elapsed.as_secs_f64());
            if status.is_server_error() {
                tracing::warn!(%method, %path, status = status.as_u16(), code = code.unwrap_or(""), micros = elapsed.as_micros() as u64, "request failed");
            } else {
                tracing::debug!(%method, %path, status = status.as_u16(), code = code.unwrap_or(""), micros = elapsed.as_micros() as u64, "request");
            }
            Ok(resp)
        })
    }
}
