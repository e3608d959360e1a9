//! nd-forecast: runs NeuralForecast 3.x saved models (the directories
//! `nf.save()` writes, safetensors since 3.3 and pickled checkpoints before)
//! with the same numbers as PyTorch, and answers `nf.predict` as the
//! `/predict` contract states it. No HTTP, no async runtime: the server in
//! `inference/server/` is one user of it; a batch job or a notebook binding
//! can be another.
//!
//! Load a bundle directory, forecast a frame:
//!
//! ```no_run
//! use nd_forecast::{bundle::Bundle, contract::PredictRequest, pipeline};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bundle = Bundle::load(std::path::Path::new("tests/fixtures/bundles/mlp"))?;
//! let body = br#"{"df": [{"unique_id": "a", "ds": 1, "y": 1.0},
//!                         {"unique_id": "a", "ds": 2, "y": 2.0}]}"#;
//! let request = PredictRequest::from_slice(body)?;
//! let forecast = pipeline::predict(&bundle, &request)?;
//! println!("{}", forecast.to_json(&bundle.name));
//! # Ok(())
//! # }
//! ```
//!
//! The layers, bottom up (a module imports only from the ones above it in
//! this list): `error`, `dates`, `scaling` -> `contract`, `intervals` ->
//! `spec`, `tensors` -> `forecaster` -> `nn` -> `models` -> `bundle` ->
//! `pipeline`, `profile`. docs/ARCHITECTURE.md draws the whole picture.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod contract;
pub mod dates;
pub mod error;
pub mod forecaster;
pub mod intervals;
pub mod models;
pub mod nn;
pub mod pipeline;
pub mod profile;
pub mod scaling;
pub mod spec;
pub mod tensors;
