//! Multi-head attention as NeuralForecast's `AttentionLayer` + `FullAttention`
//! compute it (common/_modules.py): q/k/v projections split into heads,
//! `softmax(q kᵀ · scale) v` per head (torch's `scaled_dot_product_attention`,
//! scale `1/sqrt(d_head)`, softmax in f32), heads concatenated, output projection.
//! Dropout is off in eval mode; masks are not needed by the encoders served here.

use crate::bundle::tensors::TensorStore;
use crate::nn::linear::Linear;
use ndarray::{Array2, ArrayView2, Axis, Slice};

/// Softmax of one row in place, max-subtracted as torch does.
pub fn softmax_inplace(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f32;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// `softmax(q kᵀ · scale) v` for one head: q [L, E], k [S, E], v [S, D] -> [L, D].
pub fn scaled_dot_product(
    q: ArrayView2<f32>,
    k: ArrayView2<f32>,
    v: ArrayView2<f32>,
    scale: f32,
) -> Result<Array2<f32>, String> {
    if q.ncols() != k.ncols() || k.nrows() != v.nrows() {
        return Err(format!(
            "attention shapes do not agree: q {:?}, k {:?}, v {:?}",
            q.dim(),
            k.dim(),
            v.dim()
        ));
    }
    let mut scores = q.dot(&k.t());
    scores.mapv_inplace(|x| x * scale);
    for mut row in scores.axis_iter_mut(Axis(0)) {
        match row.as_slice_mut() {
            Some(r) => softmax_inplace(r),
            None => return Err("attention scores are not contiguous".into()),
        }
    }
    Ok(scores.dot(&v))
}

#[derive(Debug, Clone)]
pub struct MultiHeadAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    heads: usize,
}

impl MultiHeadAttention {
    /// `<prefix>.{query,key,value,out}_projection`, with NeuralForecast's
    /// default head width `hidden / heads`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        hidden: usize,
        heads: usize,
    ) -> Result<MultiHeadAttention, String> {
        if heads == 0 || hidden / heads == 0 {
            return Err(format!(
                "{heads} heads do not fit a hidden size of {hidden}"
            ));
        }
        let inner = (hidden / heads) * heads;
        let proj = |name: &str, fan_in: usize, fan_out: usize| {
            Linear::load(store, &format!("{prefix}.{name}"), fan_in, fan_out, true)
        };
        Ok(MultiHeadAttention {
            query: proj("query_projection", hidden, inner)?,
            key: proj("key_projection", hidden, inner)?,
            value: proj("value_projection", hidden, inner)?,
            out: proj("out_projection", inner, hidden)?,
            heads,
        })
    }

    /// Self-attention over the tokens of x [tokens, hidden].
    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, String> {
        let q = self.query.forward(x)?;
        let k = self.key.forward(x)?;
        let v = self.value.forward(x)?;
        let e = q.ncols() / self.heads;
        let scale = 1.0 / (e as f32).sqrt();
        let mut heads_out = Array2::<f32>::zeros((x.nrows(), q.ncols()));
        for h in 0..self.heads {
            let cols = Slice::from(h * e..(h + 1) * e);
            let o = scaled_dot_product(
                q.slice_axis(Axis(1), cols),
                k.slice_axis(Axis(1), cols),
                v.slice_axis(Axis(1), cols),
                scale,
            )?;
            heads_out.slice_axis_mut(Axis(1), cols).assign(&o);
        }
        self.out.forward(heads_out.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn softmax_matches_hand_computed_values() {
        let mut r = [1.0f32, 2.0, 3.0];
        softmax_inplace(&mut r);
        // e^-2, e^-1, 1 over their sum.
        let z = (-2f32).exp() + (-1f32).exp() + 1.0;
        let want = [(-2f32).exp() / z, (-1f32).exp() / z, 1.0 / z];
        for (g, w) in r.iter().zip(want) {
            assert!((g - w).abs() < 1e-7, "{g} vs {w}");
        }
        assert!((want[0] - 0.090_030_57).abs() < 1e-7);
        // Large logits do not overflow.
        let mut big = [1000.0f32, 1000.0];
        softmax_inplace(&mut big);
        assert_eq!(big, [0.5, 0.5]);
    }

    #[test]
    fn attention_weights_values_by_scaled_scores() {
        // One query against two keys; scores [0, 2] * 0.5 = [0, 1].
        let q = array![[1.0f32, 1.0]];
        let k = array![[0.0f32, 0.0], [1.0, 1.0]];
        let v = array![[10.0f32], [20.0]];
        let o = scaled_dot_product(q.view(), k.view(), v.view(), 0.5).unwrap();
        let p1 = 1f32.exp() / (1.0 + 1f32.exp());
        assert!((o[[0, 0]] - (10.0 * (1.0 - p1) + 20.0 * p1)).abs() < 1e-5);
        assert!(scaled_dot_product(q.view(), v.view(), v.view(), 1.0).is_err());
    }
}
