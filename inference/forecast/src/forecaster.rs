//! What a model is to the pipeline: the window batch it reads, the layout of
//! series it wants, the [`Forecaster`] trait, why building one can fail, and
//! the reshaping helpers the blocks of `nn` and the models of `models` share.
//! It sits below both, so they depend one way: `models -> nn -> forecaster`.

use crate::spec::{ModelSpec, SpecError};
use crate::tensors::TensorError;
use ndarray::{Array2, Array3};

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

/// How the pipeline lays the series of a request out for a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One window per series (NeuralForecast's `MULTIVARIATE = False`).
    Univariate,
    /// All series in ONE window (`MULTIVARIATE = True`): the request must hold
    /// exactly the `n_series` series the model was trained on. The batch rows
    /// are those series in NeuralForecast's order (sorted unique_id), each
    /// scaled on its own as `TemporalNorm` does per series and channel, and
    /// `forward` still returns one row per series.
    Multivariate { n_series: usize },
}

pub trait Forecaster: Send + Sync {
    /// [batch, h, n_outputs] in the scaled space. An error means the batch
    /// does not have the shapes the model was built for (a bug upstream).
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError>;

    /// Univariate unless the model mixes series.
    fn layout(&self) -> Layout {
        Layout::Univariate
    }

    /// Insample steps per window when not the spec's `input_size`: recurrent
    /// models (`RECURRENT = True`) read `inference_input_size + 1`.
    fn insample_steps(&self) -> Option<usize> {
        None
    }

    /// Recurrent decoders (`RECURRENT = True`) roll any horizon out of one
    /// window, which is how NeuralForecast predicts beyond the trained `h`
    /// with them; other models are run again on their own forecasts.
    fn rolls_out(&self) -> bool {
        false
    }

    /// `forward` for a horizon of `h` steps; only for models that roll out.
    fn forward_rollout(&self, _batch: &WindowBatch, h: usize) -> Result<Array3<f32>, ForwardError> {
        Err(ForwardError::TrainedHorizonOnly(h))
    }
}

/// Why a model could not be built from its bundle.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// This service cannot run it (class, option): reported, not fatal to the bundle.
    #[error("{0}")]
    Unsupported(String),
    /// The file contradicts its own hyperparameters: the bundle is refused.
    #[error("{0}")]
    Invalid(String),
    /// A weight is missing, misshapen or not finite: the bundle is refused.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// A hyperparameter the model reads is absent or of the wrong kind.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Preparing the weights for the forward pass failed (the same shape
    /// checks a forward pass makes): the file contradicts itself.
    #[error(transparent)]
    Shape(#[from] ForwardError),
}

impl BuildError {
    /// Whether the bundle is still served (without this model) rather than refused.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, BuildError::Unsupported(_))
    }
}

/// Why a forward pass could not run: the batch does not have the shapes the
/// model was built for. The pipeline builds every batch from the model's own
/// spec, so this is a bug upstream, answered as an internal error.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Two shapes that must agree do not.
    #[error("{0}")]
    Shape(String),
    /// An array did not reshape, concatenate or broadcast.
    #[error("{what}: {source}")]
    Array {
        what: &'static str,
        #[source]
        source: ndarray::ShapeError,
    },
    /// A horizon other than the trained one for a model that cannot roll out.
    #[error("this model forecasts its trained horizon only, not {0} steps")]
    TrainedHorizonOnly(usize),
}

impl ForwardError {
    /// `map_err(|e| ForwardError::array("what failed", e))` for ndarray's errors.
    pub(crate) fn array(what: &'static str, source: ndarray::ShapeError) -> ForwardError {
        ForwardError::Array { what, source }
    }
}

/// `BuildError::Invalid(format!(..))`: what in the file contradicts its hyperparameters.
macro_rules! invalid {
    ($($arg:tt)*) => {
        $crate::forecaster::BuildError::Invalid(format!($($arg)*))
    };
}
/// `ForwardError::Shape(format!(..))`: which shapes of the batch disagree.
macro_rules! shape {
    ($($arg:tt)*) => {
        $crate::forecaster::ForwardError::Shape(format!($($arg)*))
    };
}
pub(crate) use {invalid, shape};

/// Reshapes a [batch, h * outputs] head into [batch, h, outputs] (torch's reshape).
pub(crate) fn to_horizon(
    y: Array2<f32>,
    h: usize,
    outputs: usize,
) -> Result<Array3<f32>, ForwardError> {
    let b = y.nrows();
    y.as_standard_layout()
        .into_owned()
        .into_shape_with_order((b, h, outputs))
        .map_err(|e| shape!("head output does not reshape to [{b}, {h}, {outputs}]: {e}"))
}

/// The target window as the model sees it: zeroed when it was trained with
/// `exclude_insample_y` (`_parse_windows` multiplies it by 0).
pub(crate) fn insample_y(batch: &WindowBatch, exclude: bool) -> Array2<f32> {
    if exclude {
        Array2::zeros(batch.insample_y.raw_dim())
    } else {
        batch.insample_y.clone()
    }
}

/// `[y | hist exog | futr exog | static]` per window, each exogenous block
/// flattened time-major (torch's `reshape(batch, -1)`): the input of MLP and KAN.
pub(crate) fn flat_inputs(batch: &WindowBatch, exclude: bool) -> Result<Array2<f32>, ForwardError> {
    fn flatten(x: &Array3<f32>) -> Result<Array2<f32>, ForwardError> {
        let (b, t, c) = x.dim();
        x.as_standard_layout()
            .into_owned()
            .into_shape_with_order((b, t * c))
            .map_err(|e| ForwardError::array("cannot flatten exogenous block", e))
    }
    let mut parts = vec![insample_y(batch, exclude)];
    if let Some(hx) = &batch.hist_exog {
        parts.push(flatten(hx)?);
    }
    if let Some(fx) = &batch.futr_exog {
        parts.push(flatten(fx)?);
    }
    if let Some(sx) = &batch.stat_exog {
        parts.push(sx.clone());
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    ndarray::concatenate(ndarray::Axis(1), &views)
        .map_err(|e| ForwardError::array("inputs do not concatenate", e))
}

/// `n_series` of a multivariate model, which fixes its weight shapes.
pub(crate) fn n_series(spec: &ModelSpec) -> Result<usize, BuildError> {
    match spec.n_series.unwrap_or(0) {
        0 => Err(invalid!(
            "{} is multivariate but its hyperparameters have no n_series",
            spec.class
        )),
        n => Ok(n),
    }
}

/// A multivariate batch must be the `n_series` series of one window.
pub(crate) fn check_series(batch: &WindowBatch, n_series: usize) -> Result<(), ForwardError> {
    let rows = batch.insample_y.nrows();
    if rows != n_series {
        return Err(shape!(
            "the model forecasts {n_series} series in one window, the batch has {rows}"
        ));
    }
    Ok(())
}

/// An exogenous block [n_series, time, channels] in torch's multivariate
/// layout [channels, time, n_series].
pub(crate) fn channels_first(
    x: &Array3<f32>,
    n_series: usize,
) -> Result<Array3<f32>, ForwardError> {
    if x.dim().0 != n_series {
        return Err(shape!(
            "exogenous block holds {} series, the model {n_series}",
            x.dim().0
        ));
    }
    Ok(x.view()
        .permuted_axes([2, 1, 0])
        .as_standard_layout()
        .into_owned())
}

/// One window's multivariate output, [h, n_series * outputs] in torch's memory
/// order, as rows [n_series, h, outputs]: `domain_map` reads the last axis as
/// [n_series, outputs] and `predict` puts the series first.
pub(crate) fn series_rows(
    y: &Array2<f32>,
    h: usize,
    n_series: usize,
    outputs: usize,
) -> Result<Array3<f32>, ForwardError> {
    if y.len() != h * n_series * outputs {
        return Err(shape!(
            "multivariate output of {} values is not [{h}, {n_series} * {outputs}]",
            y.len()
        ));
    }
    let flat = y.as_standard_layout();
    let flat = flat
        .as_slice()
        .ok_or_else(|| shape!("multivariate output is not contiguous"))?;
    Ok(Array3::from_shape_fn(
        (n_series, h, outputs),
        |(n, t, q)| flat[(t * n_series + n) * outputs + q],
    ))
}
