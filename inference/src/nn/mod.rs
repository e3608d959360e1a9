//! Shared building blocks of the forward passes, one concern per file, like
//! NeuralForecast's `common/`: linear layers, activations, the temporal
//! scalers, series decomposition.

pub mod activation;
pub mod attention;
pub mod basis;
pub mod batch_norm;
pub mod block_mlp;
pub mod conv1d;
pub mod decomp;
pub mod exog;
pub mod instance_norm;
pub mod interpolate;
pub mod layer_norm;
pub mod linear;
pub mod mixing;
pub mod mlp_decoder;
pub mod pooling;
pub mod recurrent;
pub mod recurrent_forecaster;
pub mod residual_stack;
pub mod scalers;
pub mod temporal;
pub mod transformer;
