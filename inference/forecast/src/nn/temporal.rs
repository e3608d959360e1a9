//! Linear maps on [batch, time, channels] sequences: over the time axis
//! (NeuralForecast's `context_adapter` window -> horizon, the RNN family's
//! `upsample_sequence`, BiTCN's `temporal_lin*`: torch permutes to
//! [batch, channels, time], applies the Linear, permutes back) and over the
//! channels of every step.

use super::linear::Linear;
use crate::forecaster::ForwardError;
use ndarray::{Array, Array3, ArrayView3, Dimension};

/// The array in row-major order: a GEMM may hand back a column-major result
/// (ndarray picks it when both operands are column-major, e.g. one row or
/// one output), and reshapes need row-major.
pub fn c_order<D: Dimension>(a: Array<f32, D>) -> Array<f32, D> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

/// [B, L, C] -> Linear over time -> [B, h, C]: each channel's series mapped by `lin`.
pub fn over_time(x: ArrayView3<f32>, lin: &Linear) -> Result<Array3<f32>, ForwardError> {
    let (b, l, c) = x.dim();
    let rows = x
        .permuted_axes([0, 2, 1])
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((b * c, l))
        .map_err(|e| ForwardError::array("sequence does not reshape", e))?;
    let y = lin.forward(rows.view())?;
    let h = y.ncols();
    Ok(c_order(y)
        .into_shape_with_order((b, c, h))
        .map_err(|e| ForwardError::array("sequence does not reshape", e))?
        .permuted_axes([0, 2, 1]))
}

/// [B, T, in] -> [B, T, out]: `lin` applied to every step.
pub fn per_step(x: ArrayView3<f32>, lin: &Linear) -> Result<Array3<f32>, ForwardError> {
    let (b, t, c) = x.dim();
    let rows = x
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((b * t, c))
        .map_err(|e| ForwardError::array("sequence does not reshape", e))?;
    let y = lin.forward(rows.view())?;
    let out = y.ncols();
    c_order(y)
        .into_shape_with_order((b, t, out))
        .map_err(|e| ForwardError::array("sequence does not reshape", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::linear::tests::from_parts;
    use ndarray::array;

    #[test]
    fn maps_each_channel_over_time() {
        // L = 2 -> h = 3; two channels.
        let lin = from_parts(array![[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], None);
        let x = array![[[1.0f32, 10.0], [2.0, 20.0]]];
        let y = over_time(x.view(), &lin).unwrap();
        assert_eq!(y, array![[[1.0f32, 10.0], [2.0, 20.0], [3.0, 30.0]]]);
    }
}
