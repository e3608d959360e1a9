//! SOFTS's STAD (STar Aggregate Dispatch, neuralforecast/models/softs.py) in
//! eval mode, the token mixer of its encoder layers: an MLP maps every series
//! token to `d_core` values, a softmax over the series weights them into one
//! core (training samples it instead; eval is deterministic), and a second
//! MLP fuses each token with the core. SOFTSSharp's STADSharp is the same
//! module reading its tokens shifted by a scaled positional table.

use crate::forecaster::{invalid, BuildError, ForwardError};
use crate::nn::activation::Activation;
use crate::nn::attention::softmax_inplace;
use crate::nn::embedding::PositionalEmbedding;
use crate::nn::linear::Linear;
use crate::nn::transformer::TokenMixer;
use crate::tensors::TensorStore;
use ndarray::{Array2, ArrayView2, Axis};

#[derive(Debug, Clone)]
pub struct Stad {
    gen1: Linear,
    gen2: Linear,
    gen3: Linear,
    gen4: Linear,
    /// SOFTSSharp's variable-position encoding: row p of the table, times
    /// the factor, is added to series token p before the module reads it.
    positions: Option<(PositionalEmbedding, f32)>,
}

impl Stad {
    /// `<prefix>.gen{1,2,3,4}` for tokens of width `d_series`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        d_series: usize,
        d_core: usize,
    ) -> Result<Stad, BuildError> {
        let lin = |name: &str, i: usize, o: usize| {
            Linear::load(store, &format!("{prefix}.{name}"), i, o, true)
        };
        Ok(Stad {
            gen1: lin("gen1", d_series, d_series)?,
            gen2: lin("gen2", d_series, d_core)?,
            gen3: lin("gen3", d_series + d_core, d_series)?,
            gen4: lin("gen4", d_series, d_series)?,
            positions: None,
        })
    }

    /// SOFTSSharp's `STADSharp` in eval mode: STAD reading its tokens plus
    /// `pe_keep_prob * pe_scale` times the sinusoidal table
    /// `<prefix>.positional_embedding.position_embedding` (one row per
    /// series token; the first `tokens` of the saved 5000 are kept).
    pub fn load_sharp(
        store: &TensorStore,
        prefix: &str,
        d_series: usize,
        d_core: usize,
        tokens: usize,
        pe_keep_prob: f32,
    ) -> Result<Stad, BuildError> {
        let table = PositionalEmbedding::load_table(
            store,
            &format!("{prefix}.positional_embedding.position_embedding"),
            d_series,
            tokens,
        )?;
        let scale_name = format!("{prefix}.pe_scale");
        let scale = store
            .array_dyn(&scale_name, &[])?
            .iter()
            .next()
            .copied()
            .ok_or_else(|| invalid!("tensor '{scale_name}' is empty"))?;
        Ok(Stad {
            positions: Some((table, pe_keep_prob * scale)),
            ..Self::load(store, prefix, d_series, d_core)?
        })
    }
}

impl TokenMixer for Stad {
    fn mix(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let shifted;
        let x = match &self.positions {
            None => x,
            Some((table, factor)) => {
                let rows = table.rows(x.nrows())?;
                shifted = &x + &rows.mapv(|v| v * factor);
                shifted.view()
            }
        };
        let mut core = self.gen1.forward(x)?;
        Activation::GELU.apply_inplace(&mut core);
        let core = self.gen2.forward(core.view())?;
        // Per core feature: the series' values weighted by their softmax.
        let mut pooled = Vec::with_capacity(core.ncols());
        for col in core.axis_iter(Axis(1)) {
            let mut w: Vec<f32> = col.to_vec();
            softmax_inplace(&mut w);
            pooled.push(col.iter().zip(&w).fold(0f32, |s, (v, w)| s + v * w));
        }
        let (tokens, width) = x.dim();
        let joined = Array2::from_shape_fn((tokens, width + pooled.len()), |(t, j)| {
            if j < width {
                x[[t, j]]
            } else {
                pooled[j - width]
            }
        });
        let mut y = self.gen3.forward(joined.view())?;
        Activation::GELU.apply_inplace(&mut y);
        self.gen4.forward(y.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::activation::gelu;
    use crate::nn::linear::tests::from_parts;
    use ndarray::array;

    #[test]
    fn core_is_the_softmax_weighted_mean_over_series() {
        let eye = |n: usize| Array2::from_shape_fn((n, n), |(i, j)| f32::from(u8::from(i == j)));
        // gen1 = identity (then GELU), gen2 picks feature 0; gen3 keeps only the
        // core column, gen4 = identity: every output row is GELU(core).
        let stad = Stad {
            gen1: from_parts(eye(2), None),
            gen2: from_parts(array![[1.0, 0.0]], None),
            gen3: from_parts(array![[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]], None),
            gen4: from_parts(eye(2), None),
            positions: None,
        };
        let x = array![[1.0f32, 5.0], [3.0, -1.0]];
        let y = stad.mix(x.view()).unwrap();
        let (a, b) = (gelu(1.0), gelu(3.0));
        let (wa, wb) = (1.0 / (1.0 + (b - a).exp()), 1.0 / (1.0 + (a - b).exp()));
        let core = gelu(a * wa + b * wb);
        for v in y.iter() {
            assert!((v - core).abs() < 1e-6, "{v} vs {core}");
        }
    }
}
