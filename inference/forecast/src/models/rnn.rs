//! RNN (neuralforecast/models/rnn.py): a stacked Elman RNN encoder with the
//! MLP decoder (`recurrent=False`) or a one-step Linear head rolled out over
//! the horizon (`recurrent=True`); see `nn::recurrent_forecaster`.
//!
//! 3.3.0 builds `nn.RNN` without passing `encoder_activation`, so the cell is
//! always tanh whatever the hyperparameter says; so is this one.

use super::BuildError;
use crate::nn::recurrent::CellKind;
use crate::nn::recurrent_forecaster::RecurrentForecaster;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;

pub fn load(spec: &ModelSpec, store: &TensorStore) -> Result<RecurrentForecaster, BuildError> {
    RecurrentForecaster::load(spec, store, CellKind::RnnTanh, 128)
}
