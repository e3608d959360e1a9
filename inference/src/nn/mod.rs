//! Shared building blocks of the forward passes, one concern per file, like
//! NeuralForecast's `common/`: linear layers, activations, the temporal
//! scalers, series decomposition.

pub mod activation;
pub mod decomp;
pub mod linear;
pub mod scalers;
