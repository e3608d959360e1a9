//! nd-forecast: runs NeuralForecast 3.x saved models (the directories
//! `nf.save()` writes, safetensors since 3.3 and pickled checkpoints before)
//! with the same numbers as PyTorch, and answers `nf.predict` as the
//! `/predict` contract states it. No HTTP, no async runtime: the server in
//! `inference/server/` is one user of it; a batch job or a notebook binding
//! can be another.
//!
//! Load a bundle directory, forecast a frame:
//!
//! ```
//! use nd_forecast::{bundle::Bundle, contract::PredictRequest, pipeline};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/bundles");
//! # let dir = std::path::Path::new(fixtures).join("mlp_d_standard");
//! let bundle = Bundle::load(&dir)?;
//! let body = br#"{"df": [{"unique_id": "a", "ds": "2024-01-01", "y": 1.0},
//!                         {"unique_id": "a", "ds": "2024-01-02", "y": 2.0}]}"#;
//! let request = PredictRequest::from_slice(body)?;
//! let forecast = pipeline::predict(&bundle, &request)?;
//! let answer: serde_json::Value = serde_json::from_str(&forecast.to_json(&bundle.name))?;
//! assert_eq!(answer["predictions"].as_array().map(Vec::len), Some(bundle.h));
//! # Ok(())
//! # }
//! ```
//!
//! `examples/forecast.rs` does the same from the command line.
//!
//! The layers, bottom up (a module imports only from the ones above it in
//! this list): `error`, `dates`, `scaling` -> `contract`, `intervals` ->
//! `spec`, `tensors` -> `forecaster` -> `nn` -> `models` -> `bundle` ->
//! `pipeline`, `profile`. docs/ARCHITECTURE.md draws the whole picture.
#![forbid(unsafe_code)]
// Tensor shapes are written as PyTorch's documentation writes them
// (`[batch, h, outputs]`), which rustdoc would read as links.
#![allow(rustdoc::broken_intra_doc_links)]

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
