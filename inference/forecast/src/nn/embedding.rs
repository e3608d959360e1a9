//! NeuralForecast's sequence embeddings (common/_modules.py) on
//! [batch, time, channels] arrays: `TokenEmbedding` (a kernel-3 `Conv1d`
//! with circular padding and no bias), `PositionalEmbedding` (the sin/cos
//! table, read from its saved `pe` buffer so the values are torch's own),
//! `TimeFeatureEmbedding` (a bias-free Linear over exogenous features) and
//! `DataEmbedding`, their sum.

use crate::forecaster::{invalid, shape, BuildError, ForwardError};
use crate::nn::conv1d::{Conv1d, ConvShape};
use crate::nn::linear::Linear;
use crate::nn::temporal::per_step;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis, Slice};

/// `TokenEmbedding`: channels -> hidden at every step, seeing one step on
/// either side, the series wrapped around at its ends.
#[derive(Debug, Clone)]
pub struct TokenEmbedding {
    conv: Conv1d,
}

impl TokenEmbedding {
    /// `<prefix>.tokenConv.weight` [hidden, c_in, 3].
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        c_in: usize,
        hidden: usize,
    ) -> Result<TokenEmbedding, BuildError> {
        let shape = ConvShape {
            in_channels: c_in,
            out_channels: hidden,
            kernel: 3,
            dilation: 1,
            pad_left: 0,
            pad_right: 0,
        };
        Ok(TokenEmbedding {
            conv: Conv1d::load_unbiased(store, &format!("{prefix}.tokenConv"), shape)?,
        })
    }

    /// x [batch, time, c_in] -> [batch, time, hidden].
    pub fn forward(&self, x: ArrayView3<f32>) -> Result<Array3<f32>, ForwardError> {
        let (b, t, c) = x.dim();
        if t == 0 {
            return Err(shape!("token embedding of an empty sequence"));
        }
        // padding_mode="circular", padding=1: [x[t-1], x, x[0]].
        let mut padded = Array3::<f32>::zeros((b, t + 2, c));
        padded
            .slice_axis_mut(Axis(1), Slice::from(1..t + 1))
            .assign(&x);
        padded
            .index_axis_mut(Axis(1), 0)
            .assign(&x.index_axis(Axis(1), t - 1));
        padded
            .index_axis_mut(Axis(1), t + 1)
            .assign(&x.index_axis(Axis(1), 0));
        self.conv.forward(padded.view())
    }
}

/// `PositionalEmbedding`: row p of the table is added to step p.
#[derive(Debug, Clone)]
pub struct PositionalEmbedding {
    /// [max_len, hidden]
    pe: Array2<f32>,
}

impl PositionalEmbedding {
    /// `<prefix>.pe` [1, max_len, hidden], of which only the first `keep`
    /// rows are kept: NeuralForecast saves a 5000-row table, a model reads
    /// at most its window's length (the caller's bound).
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        hidden: usize,
        keep: usize,
    ) -> Result<PositionalEmbedding, BuildError> {
        Self::load_table(store, &format!("{prefix}.pe"), hidden, keep)
    }

    /// The table saved as `name` [1, max_len, hidden], first `keep` rows.
    pub fn load_table(
        store: &TensorStore,
        name: &str,
        hidden: usize,
        keep: usize,
    ) -> Result<PositionalEmbedding, BuildError> {
        let max_len = match store.shape_of(name)? {
            [1, m, _] => *m,
            other => return Err(invalid!("tensor '{name}' has shape {other:?}")),
        };
        let pe = store
            .array_dyn(name, &[1, max_len, hidden])?
            .into_shape_with_order((max_len, hidden))
            .map_err(|e| invalid!("{name}: {e}"))?;
        let pe = pe
            .slice_axis(Axis(0), Slice::from(..keep.min(max_len)))
            .to_owned();
        Ok(PositionalEmbedding { pe })
    }

    /// The first `len` rows [len, hidden].
    pub fn rows(&self, len: usize) -> Result<ArrayView2<'_, f32>, ForwardError> {
        if len > self.pe.nrows() {
            return Err(shape!(
                "{len} positions exceed the table of {}",
                self.pe.nrows()
            ));
        }
        Ok(self.pe.slice_axis(Axis(0), Slice::from(..len)))
    }

    /// Adds the table to every sequence of x [batch, time, hidden].
    pub fn add_to(&self, x: &mut Array3<f32>) -> Result<(), ForwardError> {
        let rows = self.rows(x.dim().1)?;
        for mut seq in x.outer_iter_mut() {
            seq += &rows;
        }
        Ok(())
    }
}

/// `DataEmbedding(c_in, exog_input_size, hidden_size, pos_embedding)`.
#[derive(Debug, Clone)]
pub struct DataEmbedding {
    value: TokenEmbedding,
    position: Option<PositionalEmbedding>,
    /// `TimeFeatureEmbedding` when there are exogenous features.
    temporal: Option<Linear>,
}

impl DataEmbedding {
    /// `<prefix>.value_embedding`, `.position_embedding` (when `positional`)
    /// and `.temporal_embedding.embed` (when `exog > 0`).
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        c_in: usize,
        exog: usize,
        hidden: usize,
        positions: Option<usize>,
    ) -> Result<DataEmbedding, BuildError> {
        Ok(DataEmbedding {
            value: TokenEmbedding::load(store, &format!("{prefix}.value_embedding"), c_in, hidden)?,
            position: positions
                .map(|keep| {
                    PositionalEmbedding::load(
                        store,
                        &format!("{prefix}.position_embedding"),
                        hidden,
                        keep,
                    )
                })
                .transpose()?,
            temporal: (exog > 0)
                .then(|| {
                    Linear::load(
                        store,
                        &format!("{prefix}.temporal_embedding.embed"),
                        exog,
                        hidden,
                        false,
                    )
                })
                .transpose()?,
        })
    }

    /// x [batch, time, c_in], marks [batch, time, exog] -> [batch, time, hidden].
    pub fn forward(
        &self,
        x: ArrayView3<f32>,
        marks: Option<ArrayView3<f32>>,
    ) -> Result<Array3<f32>, ForwardError> {
        let mut y = self.value.forward(x)?;
        if let Some(pe) = &self.position {
            pe.add_to(&mut y)?;
        }
        match (&self.temporal, marks) {
            (Some(lin), Some(m)) => y += &per_step(m, lin)?,
            (Some(_), None) => return Err(shape!("the embedding needs the exogenous features")),
            (None, _) => {}
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensors::TensorStore;

    #[test]
    fn token_embedding_wraps_around() {
        // One channel in and out, weight [1, 2, 4] over (previous, current, next).
        let w: Vec<u8> = [1.0f32, 2.0, 4.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let st = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1, 1, 3], &w)
            .unwrap();
        let buf = safetensors::serialize([("e.tokenConv.weight", st)], None).unwrap();
        let store = TensorStore::from_bytes(&buf).unwrap();
        let emb = TokenEmbedding::load(&store, "e", 1, 1).unwrap();
        let x = Array3::from_shape_vec((1, 3, 1), vec![1.0f32, 10.0, 100.0]).unwrap();
        let y = emb.forward(x.view()).unwrap();
        // t=0 sees x[2] as its previous step, t=2 sees x[0] as its next.
        assert_eq!(
            y.iter().copied().collect::<Vec<_>>(),
            vec![100.0 + 2.0 + 40.0, 1.0 + 20.0 + 400.0, 10.0 + 200.0 + 4.0]
        );
    }
}
