//! `nn.Sequential(Linear, activation, [Dropout,] Linear)`: the two-layer
//! feed-forward blocks of TimeMixer (cross layers, multi-scale mixing),
//! StemGNN's head and XLinear's gates. The Sequential positions of the two
//! Linears name the keys (`.0`/`.2`, or `.0`/`.3` with a Dropout between).

use crate::forecaster::{BuildError, ForwardError};
use crate::nn::activation::Activation;
use crate::nn::linear::Linear;
use crate::nn::temporal::c_order;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3};

#[derive(Debug, Clone)]
pub struct FeedForward {
    first: Linear,
    second: Linear,
    activation: Activation,
}

impl FeedForward {
    /// `<prefix>.{positions.0}` [hidden, in] and `<prefix>.{positions.1}` [out, hidden].
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        positions: (usize, usize),
        (input, hidden, output): (usize, usize, usize),
        activation: Activation,
    ) -> Result<FeedForward, BuildError> {
        Ok(FeedForward {
            first: Linear::load(
                store,
                &format!("{prefix}.{}", positions.0),
                input,
                hidden,
                true,
            )?,
            second: Linear::load(
                store,
                &format!("{prefix}.{}", positions.1),
                hidden,
                output,
                true,
            )?,
            activation,
        })
    }

    /// x [rows, in] -> [rows, out].
    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let mut y = self.first.forward(x)?;
        self.activation.apply_inplace(&mut y);
        self.second.forward(y.view())
    }

    /// The block on the last axis of x [a, b, in] -> [a, b, out].
    pub fn forward3(&self, x: ArrayView3<f32>) -> Result<Array3<f32>, ForwardError> {
        let (a, b, c) = x.dim();
        let rows = x
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((a * b, c))
            .map_err(|e| ForwardError::array("feed-forward input does not reshape", e))?;
        let y = self.forward(rows.view())?;
        let out = y.ncols();
        c_order(y)
            .into_shape_with_order((a, b, out))
            .map_err(|e| ForwardError::array("feed-forward output does not reshape", e))
    }
}
