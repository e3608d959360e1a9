//! Shared building blocks of the forward passes, one concern per file, like
//! NeuralForecast's `common/`: linear layers, activations, the temporal
//! scalers, series decomposition.

pub mod activation;
pub mod attention;
pub mod autocorrelation;
pub mod basis;
pub mod batch_norm;
pub mod block_mlp;
pub mod categorical;
pub mod conv1d;
pub mod conv2d;
pub mod decomp;
pub mod decomp_transformer;
pub mod embedding;
pub mod exog;
pub mod feed_forward;
pub mod fft;
pub mod fourier_attention;
pub mod grn;
pub mod implicit_quantile;
pub mod instance_norm;
pub mod interpolate;
pub mod interpretable_attention;
pub mod kan;
pub mod layer_norm;
pub mod linear;
pub mod mixing;
pub mod mlp_decoder;
pub mod patching;
pub mod pooling;
pub mod recurrent;
pub mod recurrent_forecaster;
pub mod residual_stack;
pub mod scalers;
pub mod seq2seq;
pub mod stad;
pub mod temporal;
pub mod topk;
pub mod transformer;
pub mod tst_encoder;
pub mod variable_selection;
