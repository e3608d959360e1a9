//! LSTM (neuralforecast/models/lstm.py): a stacked LSTM encoder with the MLP
//! decoder (`recurrent=False`), or, with `recurrent=True`, an LSTM whose
//! `proj_size` is the number of outputs, rolled out over the horizon; see
//! `nn::recurrent_forecaster`.

use super::BuildError;
use crate::nn::recurrent::CellKind;
use crate::nn::recurrent_forecaster::RecurrentForecaster;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;

pub fn load(spec: &ModelSpec, store: &TensorStore) -> Result<RecurrentForecaster, BuildError> {
    RecurrentForecaster::load(spec, store, CellKind::Lstm, 128)
}
