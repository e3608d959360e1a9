//! Autoformer (neuralforecast/models/autoformer.py): the progressive
//! decomposition encoder-decoder of `nn::decomp_transformer` with
//! auto-correlation (period-based lag aggregation) in place of attention.

use super::{require_futr_exog_only, BuildError, Forecaster};
use crate::nn::autocorrelation::AutoCorrelation;
use crate::nn::decomp_transformer::{moving_avg_window, DecompForecaster, DecompShape};
use crate::nn::seq2seq::Seq2Seq;
use crate::nn::transformer::ff_activation;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;

pub fn load(spec: &ModelSpec, store: &TensorStore) -> Result<impl Forecaster, BuildError> {
    require_futr_exog_only(spec)?;
    let seq = Seq2Seq::from_spec(spec)?;
    let hidden = spec.usize_param("hidden_size", 128)?;
    let shape = DecompShape {
        hidden,
        heads: spec.usize_param("n_head", 4)?,
        ff_hidden: spec.usize_param("conv_hidden_size", 32)?,
        moving_avg: moving_avg_window(spec.usize_param("MovingAvg_window", 25)?)?,
        activation: ff_activation(spec)?,
    };
    let ac = AutoCorrelation {
        factor: spec.usize_param("factor", 3)?,
    };
    Ok(DecompForecaster::load(
        store,
        spec,
        seq,
        shape,
        |_, _| Ok(ac),
        |_, _| Ok((ac, ac)),
    )?)
}
