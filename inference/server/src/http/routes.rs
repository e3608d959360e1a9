//! The routes of docs/contract.md.

use super::{error_response, json_response, AppState, Body};
use crate::metrics::Metrics;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use nd_forecast::bundle::conformal::Calibration;
use nd_forecast::contract::PredictRequest;
use nd_forecast::error::{ApiError, ErrorCode};
use nd_forecast::pipeline;
use nd_forecast::profile::ModelFrom;
use serde_json::json;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

/// Bodies up to this size are predicted inline on the async worker; larger
/// ones move to the blocking pool so they never stall other connections.
const INLINE_BODY_BYTES: usize = 64 * 1024;

pub async fn handle<B>(state: Arc<AppState>, req: Request<B>) -> Result<Response<Body>, Infallible>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let path = req.uri().path();
    let resp = match (req.method(), path) {
        (&Method::GET, "/health") => {
            json_response(StatusCode::OK, state.config.profile().health.to_string())
        }
        (&Method::GET, "/ready") => ready(&state),
        (&Method::GET, "/metrics") => metrics(&state),
        (&Method::GET, "/models") => json_response(StatusCode::OK, models(&state).to_string()),
        (&Method::POST, "/predict") => match predict(&state, req).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        },
        (_, "/health" | "/ready" | "/metrics" | "/models" | "/predict") => {
            error_response(&ApiError::new(
                ErrorCode::MethodNotAllowed,
                format!("{} is not allowed on {path}", req.method()),
            ))
        }
        _ => error_response(&ApiError::new(
            ErrorCode::NotFound,
            format!("no route {path}"),
        )),
    };
    Ok(resp)
}

fn ready(state: &AppState) -> Response<Body> {
    let profile = state.config.profile();
    if state.is_ready() {
        json_response(StatusCode::OK, profile.ready.to_string())
    } else {
        json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            profile.not_ready.to_string(),
        )
    }
}

fn metrics(state: &AppState) -> Response<Body> {
    if !state.config.metrics_enabled {
        return error_response(&ApiError::new(ErrorCode::NotFound, "metrics are disabled"));
    }
    let mut r = Response::new(Full::new(Bytes::from(state.metrics.render())));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    r
}

/// Every bundle: loaded ones with their models, refused ones with why.
pub fn models(state: &AppState) -> serde_json::Value {
    let snap = state.cache.snapshot();
    let mut out: Vec<serde_json::Value> = Vec::new();
    for (name, cached) in &snap.bundles {
        let b = &cached.bundle;
        out.push(json!({
            "name": name,
            "content_hash": b.content_hash,
            "format": b.format.name(),
            "writer": b.format.writer(),
            "h": b.h,
            "freq": b.freq_json,
            "local_scaler_type": b.local_scaler.map(|k| format!("{k:?}")),
            "memory_bytes": b.memory_bytes,
            "supported": b.unsupported_reason().is_none(),
            "reason": b.unsupported_reason(),
            // The files on disk hold a newer version that was refused; this
            // (previous) version keeps serving.
            "refused_version": state.cache.refusal(name),
            "intervals": intervals_json(&b.intervals),
            // Categorical columns and how many values their vocabulary holds
            // (any other value is "unseen": row 0 of the embedding).
            "categorical": b.vocab.iter().map(|(c, v)| json!({"column": c, "values": v.len()})).collect::<Vec<_>>(),
            "models": b.models.iter().map(|m| json!({
                "alias": m.name,
                "class": m.class,
                "input_size": m.spec.as_ref().map(|s| s.input_size),
                "scaler_type": m.spec.as_ref().map(|s| format!("{:?}", s.scaler).to_lowercase()),
                "loss": m.spec.as_ref().map(|s| s.loss.clone()),
                "columns": m.columns(),
                "categorical": m.spec.as_ref().map(|s| s.categorical.list.clone()).unwrap_or_default(),
                "supported": m.net.is_ok(),
                "reason": m.net.as_ref().err().map(|e| e.to_string()),
                // Keys of its hyper_parameters nothing reads (Rust only).
                "unknown_hyperparameters": m.unknown_hyperparameters,
            })).collect::<Vec<_>>(),
        }));
    }
    for (name, why) in &snap.failed {
        out.push(json!({"name": name, "supported": false, "error": why, "models": []}));
    }
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    json!({ "models": out })
}

/// The conformal calibration `level` / `quantiles` are computed from: null
/// without one; `n_series` is how many series a request asking for
/// intervals must hold (nf.predict pairs the scores with them by position).
fn intervals_json(c: &Calibration) -> serde_json::Value {
    match c {
        Calibration::None => serde_json::Value::Null,
        Calibration::Conformal(c) => json!({
            "method": c.method.name(),
            "n_windows": c.n_windows,
            "step_size": c.step_size,
            "n_series": c.n_series(),
        }),
        Calibration::Unreadable(why) => json!({ "error": why }),
    }
}

fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

/// Minimal %XX decoding for bundle names in the query string.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match s
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_json(req_ct: Option<&http::HeaderValue>) -> bool {
    req_ct
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
        .unwrap_or(false)
}

async fn predict<B>(state: &Arc<AppState>, req: Request<B>) -> Result<Response<Body>, ApiError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    // Timed from the request's headers: includes the body upload, as the
    // server sees a slow client (Istio's request duration does the same).
    let start = Instant::now();
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiError::new(
            ErrorCode::NotReady,
            "the service is shutting down",
        ));
    }
    if !is_json(req.headers().get(header::CONTENT_TYPE)) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Content-Type must be application/json",
        ));
    }
    let limit = state.config.max_body_bytes;
    let too_large = || {
        ApiError::new(
            ErrorCode::BodyTooLarge,
            format!("the body exceeds the limit of {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let profile = state.config.profile();
    let requested = match &profile.model {
        ModelFrom::Query(key) => query_param(req.uri().query(), key),
        ModelFrom::Header(name) => req
            .headers()
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        ModelFrom::Body(_) => None,
    };
    let mut incoming = std::pin::pin!(req.into_body());
    if declared.is_some_and(|len| len > limit as u64) {
        drain(&mut incoming).await;
        return Err(too_large());
    }
    let in_body = matches!(profile.model, ModelFrom::Body(_));
    let mut name = match in_body {
        false => state.cache.resolve(requested.as_deref())?,
        true => String::new(),
    };
    let mut body = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(frame) = incoming.frame().await {
        let frame = frame
            .map_err(|e| ApiError::invalid_request(format!("could not read the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if body.len() + data.len() > limit {
                drain(&mut incoming).await;
                return Err(too_large());
            }
            body.extend_from_slice(&data);
        }
    }
    let body = Bytes::from(body);
    // Another service's shape (an API profile): read as JSON, then as the
    // contract's body; the default profile keeps the typed fast path.
    let shaped = if state.config.custom_profile.is_none() {
        None
    } else {
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::malformed_json(format!("body is not valid JSON: {e}")))?;
        if in_body {
            name = state
                .cache
                .resolve(profile.model_in_body(&value).as_deref())?;
        }
        Some((value, state.clone()))
    };

    let cached = match state.cache.get_loaded(&name) {
        Some(b) => b,
        None => {
            let st = state.clone();
            let n = name.clone();
            tokio::task::spawn_blocking(move || st.cache.get(&n))
                .await
                .map_err(|e| ApiError::internal(format!("loader task failed: {e}")))??
        }
    };
    let inline = body.len() <= INLINE_BODY_BYTES;
    let max_series = state.config.max_series;
    let run = move || -> Result<String, ApiError> {
        let Some((value, st)) = shaped else {
            let request = PredictRequest::from_slice(&body)?;
            let forecast = pipeline::predict_with_limit(&cached.bundle, &request, max_series)?;
            return Ok(forecast.to_json(&cached.bundle.name));
        };
        let profile = st.config.profile();
        let contract = profile.to_contract(value, &cached.bundle.columns.time)?;
        let request = PredictRequest::from_value(&contract)?;
        let forecast = pipeline::predict_with_limit(&cached.bundle, &request, max_series)?;
        Ok(profile.answer(&forecast, &cached.bundle.name))
    };
    let out = if inline {
        run()?
    } else {
        let permit = state
            .compute
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ApiError::internal(format!("compute permits closed: {e}")))?;
        tokio::task::spawn_blocking(move || {
            let out = run();
            drop(permit);
            out
        })
        .await
        .map_err(|e| ApiError::internal(format!("prediction task failed: {e}")))??
    };
    let labels = Metrics::bundle(&name);
    state.metrics.predictions.get_or_create(&labels).inc();
    state
        .metrics
        .prediction_duration
        .get_or_create(&labels)
        .observe(start.elapsed().as_secs_f64());
    Ok(json_response(StatusCode::OK, out))
}

/// Reads and drops what is left of a refused body, bounded (1 MiB, 200 ms):
/// closing a connection with unread bytes makes the kernel reset it, and a
/// client still sending would lose the 413 (the lingering close HTTP
/// servers do). An endless body is cut off at the bound.
async fn drain<B>(body: &mut B)
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    const MAX_BYTES: usize = 1024 * 1024;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(200);
    let mut seen = 0usize;
    while seen < MAX_BYTES {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => seen += frame.data_ref().map_or(0, |d| d.len()),
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_content_type() {
        assert_eq!(query_param(Some("model=abc"), "model"), Some("abc".into()));
        assert_eq!(
            query_param(Some("x=1&model=a%20b"), "model"),
            Some("a b".into())
        );
        assert_eq!(query_param(Some("x=1"), "model"), None);
        assert_eq!(query_param(Some("model=%zz"), "model"), Some("%zz".into()));
        assert!(is_json(Some(&http::HeaderValue::from_static(
            "application/json; charset=utf-8"
        ))));
        assert!(is_json(Some(&http::HeaderValue::from_static(
            "Application/JSON"
        ))));
        assert!(!is_json(Some(&http::HeaderValue::from_static(
            "text/plain"
        ))));
        assert!(!is_json(None));
    }
}
