//! GRU, LSTM and RNN (neuralforecast/models/gru.py, lstm.py, rnn.py): a
//! stacked recurrent encoder with the MLP decoder (`recurrent=False`), or a
//! one-step head rolled out over the horizon (`recurrent=True`); see
//! `nn::recurrent_forecaster`. The three classes differ only in their cell
//! and their default `encoder_hidden_size`:
//! - GRU: `encoder_activation` is deprecated and unused in 3.3.0.
//! - LSTM: with `recurrent=True`, the LSTM's `proj_size` is the number of
//!   outputs.
//! - RNN: 3.3.0 builds `nn.RNN` without passing `encoder_activation`, so the
//!   cell is always tanh whatever the hyperparameter says; so is this one.

use super::{BuildError, Model};
use crate::nn::recurrent::CellKind;
use crate::nn::recurrent_forecaster::{
    RecurrentForecaster, RecurrentHparams, RECURRENT_NON_ARCHITECTURE,
};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use std::marker::PhantomData;

/// One of NeuralForecast's plain recurrent classes.
pub trait RecurrentClass {
    const CLASS: &'static str;
    const CELL: CellKind;
    /// `encoder_hidden_size` when the hyperparameters do not say.
    const HIDDEN_SIZE: usize;
}

/// The [`Model`] of a [`RecurrentClass`].
pub struct Recurrent<C>(PhantomData<C>);

impl<C: RecurrentClass> Model for Recurrent<C> {
    const CLASS: &'static str = C::CLASS;
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = RECURRENT_NON_ARCHITECTURE;
    type Hparams = RecurrentHparams;
    type Net = RecurrentForecaster;

    fn load(
        spec: &ModelSpec,
        hp: Self::Hparams,
        store: &TensorStore,
    ) -> Result<RecurrentForecaster, BuildError> {
        RecurrentForecaster::load(spec, &hp, store, C::CELL, C::HIDDEN_SIZE)
    }
}

pub struct Gru;

impl RecurrentClass for Gru {
    const CLASS: &'static str = "GRU";
    const CELL: CellKind = CellKind::Gru;
    const HIDDEN_SIZE: usize = 200;
}

pub struct Lstm;

impl RecurrentClass for Lstm {
    const CLASS: &'static str = "LSTM";
    const CELL: CellKind = CellKind::Lstm;
    const HIDDEN_SIZE: usize = 128;
}

pub struct Rnn;

impl RecurrentClass for Rnn {
    const CLASS: &'static str = "RNN";
    const CELL: CellKind = CellKind::RnnTanh;
    const HIDDEN_SIZE: usize = 128;
}
