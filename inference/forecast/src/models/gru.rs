//! GRU (neuralforecast/models/gru.py): a stacked GRU encoder with the MLP
//! decoder (`recurrent=False`) or a one-step Linear head rolled out over the
//! horizon (`recurrent=True`); see `nn::recurrent_forecaster`.
//! `encoder_activation` is deprecated and unused in 3.3.0.

use super::BuildError;
use crate::nn::recurrent::CellKind;
use crate::nn::recurrent_forecaster::RecurrentForecaster;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;

pub fn load(spec: &ModelSpec, store: &TensorStore) -> Result<RecurrentForecaster, BuildError> {
    RecurrentForecaster::load(spec, store, CellKind::Gru, 200)
}
