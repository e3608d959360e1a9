//! LSTM (neuralforecast/models/lstm.py): a stacked LSTM encoder with the MLP
//! decoder (`recurrent=False`), or, with `recurrent=True`, an LSTM whose
//! `proj_size` is the number of outputs, rolled out over the horizon; see
//! `nn::recurrent_forecaster`.

use super::{BuildError, Model};
use crate::nn::recurrent::CellKind;
use crate::nn::recurrent_forecaster::{
    RecurrentForecaster, RecurrentHparams, RECURRENT_NON_ARCHITECTURE,
};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;

pub struct Lstm;

impl Model for Lstm {
    const CLASS: &'static str = "LSTM";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = RECURRENT_NON_ARCHITECTURE;
    type Hparams = RecurrentHparams;
    type Net = RecurrentForecaster;

    fn load(
        spec: &ModelSpec,
        hp: Self::Hparams,
        store: &TensorStore,
    ) -> Result<RecurrentForecaster, BuildError> {
        RecurrentForecaster::load(spec, &hp, store, CellKind::Lstm, 128)
    }
}
