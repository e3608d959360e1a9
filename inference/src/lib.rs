//! neuro-divergent: serves NeuralForecast 3.x saved models (the directories
//! `nf.save()` writes) with the same numbers as PyTorch, over the same
//! `/predict` contract as the Python reference service.
#![forbid(unsafe_code)]

pub mod bundle;
pub mod cache;
pub mod config;
pub mod contract;
pub mod dates;
pub mod error;
pub mod http;
pub mod intervals;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod pipeline;
pub mod profile;
pub mod scaling;
