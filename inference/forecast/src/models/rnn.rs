//! RNN (neuralforecast/models/rnn.py): a stacked Elman RNN encoder with the
//! MLP decoder (`recurrent=False`) or a one-step Linear head rolled out over
//! the horizon (`recurrent=True`); see `nn::recurrent_forecaster`.
//!
//! 3.3.0 builds `nn.RNN` without passing `encoder_activation`, so the cell is
//! always tanh whatever the hyperparameter says; so is this one.

use super::{BuildError, Model};
use crate::nn::recurrent::CellKind;
use crate::nn::recurrent_forecaster::{
    RecurrentForecaster, RecurrentHparams, RECURRENT_NON_ARCHITECTURE,
};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;

pub struct Rnn;

impl Model for Rnn {
    const CLASS: &'static str = "RNN";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = RECURRENT_NON_ARCHITECTURE;
    type Hparams = RecurrentHparams;
    type Net = RecurrentForecaster;

    fn load(
        spec: &ModelSpec,
        hp: Self::Hparams,
        store: &TensorStore,
    ) -> Result<RecurrentForecaster, BuildError> {
        RecurrentForecaster::load(spec, &hp, store, CellKind::RnnTanh, 128)
    }
}
