//! GRU (neuralforecast/models/gru.py): a stacked GRU encoder with the MLP
//! decoder (`recurrent=False`) or a one-step Linear head rolled out over the
//! horizon (`recurrent=True`); see `nn::recurrent_forecaster`.
//! `encoder_activation` is deprecated and unused in 3.3.0.

use super::{BuildError, Model};
use crate::nn::recurrent::CellKind;
use crate::nn::recurrent_forecaster::{
    RecurrentForecaster, RecurrentHparams, RECURRENT_NON_ARCHITECTURE,
};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;

pub struct Gru;

impl Model for Gru {
    const CLASS: &'static str = "GRU";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = RECURRENT_NON_ARCHITECTURE;
    type Hparams = RecurrentHparams;
    type Net = RecurrentForecaster;

    fn load(
        spec: &ModelSpec,
        hp: Self::Hparams,
        store: &TensorStore,
    ) -> Result<RecurrentForecaster, BuildError> {
        RecurrentForecaster::load(spec, &hp, store, CellKind::Gru, 200)
    }
}
