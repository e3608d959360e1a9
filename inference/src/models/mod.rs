//! Forward passes, one NeuralForecast model class per file, on the shared
//! blocks of `crate::nn`. Each takes the already-normalised window batch the
//! pipeline builds (as `BaseModel._parse_windows` does) and returns the
//! network output [batch, h, outputs] before the inverse scaling.

pub mod dlinear;
pub mod mlp;
pub mod nlinear;

use crate::bundle::spec::ModelSpec;
use crate::bundle::tensors::TensorStore;
use crate::nn::scalers::RevinAffine;
use ndarray::{Array2, Array3};
use std::sync::Arc;

/// The inputs of one forward pass for `batch` windows (one per series).
#[derive(Debug, Clone)]
pub struct WindowBatch {
    /// [batch, input_size], scaled.
    pub insample_y: Array2<f32>,
    /// [batch, input_size]: 1 where a value was observed, 0 for left padding.
    pub insample_mask: Array2<f32>,
    /// [batch, input_size, n_hist], scaled.
    pub hist_exog: Option<Array3<f32>>,
    /// [batch, input_size + h, n_futr], scaled.
    pub futr_exog: Option<Array3<f32>>,
    /// [batch, n_stat], as given.
    pub stat_exog: Option<Array2<f32>>,
}

pub trait Forecaster: Send + Sync {
    /// [batch, h, n_outputs] in the scaled space. An error means the batch
    /// does not have the shapes the model was built for (a bug upstream).
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, String>;
}

#[derive(Debug)]
pub enum BuildError {
    /// This service cannot run it (class, option): reported, not fatal to the bundle.
    Unsupported(String),
    /// The file contradicts its own hyperparameters: the bundle is refused.
    Invalid(String),
}

type Builder = fn(&ModelSpec, &TensorStore) -> Result<Arc<dyn Forecaster>, BuildError>;

/// Model class -> forward pass. One line per supported NeuralForecast class.
const REGISTRY: &[(&str, Builder)] = &[
    ("MLP", |s, t| Ok(Arc::new(mlp::Mlp::load(s, t)?))),
    ("DLinear", |s, t| {
        Ok(Arc::new(dlinear::DLinear::load(s, t)?))
    }),
    ("NLinear", |s, t| {
        Ok(Arc::new(nlinear::NLinear::load(s, t)?))
    }),
];

/// Classes this service can serve, in registry order.
pub fn supported() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|(name, _)| *name)
}

/// Builds the forward pass for a model file.
pub fn build(spec: &ModelSpec, store: &TensorStore) -> Result<Arc<dyn Forecaster>, BuildError> {
    match REGISTRY.iter().find(|(name, _)| *name == spec.class) {
        Some((_, builder)) => builder(spec, store),
        None => Err(BuildError::Unsupported(format!(
            "model class {} is not supported yet (supported: {})",
            spec.class,
            supported().collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Revin's learned terms of the target channel, when the model uses revin.
pub fn revin_affine(store: &TensorStore) -> Result<Option<RevinAffine>, String> {
    if !store.contains("scaler.revin_bias") {
        return Ok(None);
    }
    let shape = store.shape_of("scaler.revin_bias")?.to_vec();
    let bias = store.get("scaler.revin_bias", &shape)?;
    let weight = store.get("scaler.revin_weight", &shape)?;
    match (bias.data.first(), weight.data.first()) {
        (Some(b), Some(w)) => Ok(Some(RevinAffine {
            bias: *b,
            weight: *w,
        })),
        _ => Err("revin tensors are empty".into()),
    }
}

impl From<String> for BuildError {
    fn from(m: String) -> Self {
        BuildError::Invalid(m)
    }
}

/// Models that take no exogenous input refuse a spec that names some.
pub(crate) fn require_no_exog(spec: &ModelSpec) -> Result<(), BuildError> {
    if !(spec.futr_exog.is_empty() && spec.hist_exog.is_empty() && spec.stat_exog.is_empty()) {
        return Err(BuildError::Invalid(format!(
            "{} takes no exogenous variables",
            spec.class
        )));
    }
    Ok(())
}

/// Reshapes a [batch, h * outputs] head into [batch, h, outputs] (torch's reshape).
pub(crate) fn to_horizon(y: Array2<f32>, h: usize, outputs: usize) -> Result<Array3<f32>, String> {
    let b = y.nrows();
    y.as_standard_layout()
        .into_owned()
        .into_shape_with_order((b, h, outputs))
        .map_err(|e| format!("head output does not reshape to [{b}, {h}, {outputs}]: {e}"))
}
