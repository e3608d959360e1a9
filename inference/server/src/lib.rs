//! neuro-divergent: serves NeuralForecast saved models over the same
//! `/predict` contract as the Python reference service. The forecasting is
//! the `nd-forecast` library (`inference/forecast/`); this crate is the
//! service around it: the HTTP layer and its tower layers (`http`), the
//! bundle cache with hot reload (`cache`), configuration (`config`) and the
//! Prometheus metrics (`metrics`). Contract errors become HTTP responses
//! here and nowhere else (`http::error_response`).
#![forbid(unsafe_code)]

pub mod cache;
pub mod config;
pub mod http;
pub mod metrics;
