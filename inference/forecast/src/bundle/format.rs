//! What a bundle's files say, in one shape for both on-disk formats: the
//! rest of the loader never knows which format it read.

use crate::intervals::CalibrationError;
use crate::tensors::{TensorError, TensorStore};
use serde_json::Value;

/// Why a bundle's files do not hold what NeuralForecast writes there.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// A file is missing, or one of its entries is absent or of another kind.
    #[error("{0}")]
    Invalid(String),
    /// The conformal calibration contradicts itself.
    #[error(transparent)]
    Calibration(#[from] CalibrationError),
    /// The weights of a model file.
    #[error(transparent)]
    Tensor(#[from] TensorError),
}

/// `FormatError::Invalid(format!(..))`.
macro_rules! malformed {
    ($($arg:tt)*) => {
        $crate::bundle::format::FormatError::Invalid(format!($($arg)*))
    };
}
pub(crate) use malformed;

/// The on-disk format of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// NeuralForecast 3.3+: safetensors + `configuration.json` (`nf_format` "2").
    Safetensors,
    /// NeuralForecast before 3.3: `<alias>_<n>.ckpt` PyTorch zip
    /// checkpoints + `configuration.pkl` + `alias_to_model.pkl`.
    Pickle {
        /// The writing NeuralForecast release family as the files tell it
        /// (e.g. "3.x before 3.3", "2.x"), with the PyTorch Lightning
        /// version where the checkpoint records one.
        writer: String,
    },
}

impl Format {
    /// The name /models reports.
    pub fn name(&self) -> &'static str {
        match self {
            Format::Safetensors => "safetensors",
            Format::Pickle { .. } => "pickle",
        }
    }

    pub fn writer(&self) -> &str {
        match self {
            Format::Safetensors => "NeuralForecast 3.3 or later",
            Format::Pickle { writer } => writer,
        }
    }
}

/// One model file, read.
pub(crate) struct ParsedModel {
    pub file: String,
    /// The NeuralForecast class name (`MLP`, `NHITS`, ...).
    pub class: String,
    /// The hyperparameters as NeuralForecast 3.3 writes them in JSON: plain
    /// values, and the loss as `{"cls": ..., "state": {"output_names": [...]}}`.
    pub hparams: Value,
    pub store: TensorStore,
    /// The output column name when the format fixes it (v1: from the file
    /// name, as NeuralForecast.load sets `alias`); None: from the alias.
    pub name: Option<String>,
}

/// A bundle directory, read.
pub(crate) struct Parsed {
    pub format: Format,
    /// The `configuration` object (h, freq, scaler types, column names...).
    pub config: Value,
    /// Model files in NeuralForecast.load's order.
    pub models: Vec<ParsedModel>,
    /// A reason the whole bundle cannot be served although it was read.
    pub unsupported: Option<String>,
}
