//! PatchTST's channel-independent encoder (`TSTEncoder` / `TSTEncoderLayer`
//! / `_MultiheadAttention` in neuralforecast/models/patchtst.py), eval mode:
//! multi-head self-attention over the patches of each window, then a
//! Linear-activation-Linear feed-forward, each with a residual and a
//! BatchNorm1d over the hidden channels (PatchTST always builds BatchNorm),
//! after the residual (post-norm) or before the sublayer (`pre_norm`).
//!
//! With residual attention (`res_attention`, PatchTST's default) each layer
//! adds the previous layer's pre-softmax scores to its own and scales by the
//! stored `sdp_attn.scale`; without it the heads use
//! `F.scaled_dot_product_attention` (scale `1/sqrt(d_k)`).

use super::activation::Activation;
use super::attention::{scaled_scores, softmax_rows};
use super::batch_norm::BatchNorm1d;
use super::feed_forward::FeedForward;
use super::linear::Linear;
use crate::forecaster::{invalid, shape, BuildError, ForwardError};
use crate::tensors::TensorStore;
use ndarray::{Array2, ArrayView2, Axis, Slice};

#[derive(Debug, Clone)]
pub struct TstEncoderLayer {
    w_q: Linear,
    w_k: Linear,
    w_v: Linear,
    to_out: Linear,
    heads: usize,
    /// The stored scale of residual attention; None for plain attention.
    res_scale: Option<f32>,
    norm_attn: BatchNorm1d,
    norm_ffn: BatchNorm1d,
    ff: FeedForward,
    pre_norm: bool,
}

/// What every layer of one encoder shares.
#[derive(Debug, Clone, Copy)]
pub struct TstShape {
    pub hidden: usize,
    pub heads: usize,
    pub ff_hidden: usize,
    pub activation: Activation,
    pub res_attention: bool,
    pub pre_norm: bool,
}

/// Pre-softmax scores of every (window, head), passed from layer to layer.
pub type Scores = Vec<Array2<f32>>;

impl TstEncoderLayer {
    /// `<prefix>.self_attn.{W_Q,W_K,W_V,to_out.0}`, `.norm_attn.1`, `.norm_ffn.1`, `.ff.{0,3}`.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        s: TstShape,
    ) -> Result<TstEncoderLayer, BuildError> {
        if s.heads == 0 || !s.hidden.is_multiple_of(s.heads) {
            return Err(invalid!(
                "hidden_size {} is not divisible by n_heads {}",
                s.hidden,
                s.heads
            ));
        }
        let lin = |name: &str, i: usize, o: usize| {
            Linear::load(store, &format!("{prefix}.{name}"), i, o, true)
        };
        let bn =
            |name: &str| BatchNorm1d::load(store, &format!("{prefix}.{name}.1"), s.hidden, 1e-5);
        let res_scale = if s.res_attention {
            let t = store.get(&format!("{prefix}.self_attn.sdp_attn.scale"), &[])?;
            Some(
                *t.data
                    .first()
                    .ok_or_else(|| invalid!("sdp_attn.scale is empty"))?,
            )
        } else {
            None
        };
        Ok(TstEncoderLayer {
            w_q: lin("self_attn.W_Q", s.hidden, s.hidden)?,
            w_k: lin("self_attn.W_K", s.hidden, s.hidden)?,
            w_v: lin("self_attn.W_V", s.hidden, s.hidden)?,
            to_out: lin("self_attn.to_out.0", s.hidden, s.hidden)?,
            heads: s.heads,
            res_scale,
            norm_attn: bn("norm_attn")?,
            norm_ffn: bn("norm_ffn")?,
            ff: FeedForward::load(
                store,
                &format!("{prefix}.ff"),
                (0, 3),
                (s.hidden, s.ff_hidden, s.hidden),
                s.activation,
            )?,
            pre_norm: s.pre_norm,
        })
    }

    fn norm(bn: &BatchNorm1d, x: &mut Array2<f32>) -> Result<(), ForwardError> {
        for mut row in x.axis_iter_mut(Axis(0)) {
            bn.forward_inplace(
                row.as_slice_mut()
                    .ok_or_else(|| shape!("tokens are not contiguous"))?,
            )?;
        }
        Ok(())
    }

    /// Self-attention within each window of `q_len` consecutive tokens.
    fn attention(
        &self,
        x: ArrayView2<f32>,
        q_len: usize,
        prev: Option<&Scores>,
    ) -> Result<(Array2<f32>, Scores), ForwardError> {
        let q = self.w_q.forward(x)?;
        let k = self.w_k.forward(x)?;
        let v = self.w_v.forward(x)?;
        let e = q.ncols() / self.heads;
        let windows = x.nrows() / q_len;
        let scale = self
            .res_scale
            .unwrap_or_else(|| (1.0 / (e as f64).sqrt()) as f32);
        let mut heads_out = Array2::<f32>::zeros(q.raw_dim());
        let mut scores_out = Vec::with_capacity(windows * self.heads);
        for w in 0..windows {
            let rows = Slice::from(w * q_len..(w + 1) * q_len);
            for h in 0..self.heads {
                let cols = Slice::from(h * e..(h + 1) * e);
                fn part(a: &Array2<f32>, rows: Slice, cols: Slice) -> ArrayView2<'_, f32> {
                    a.slice_axis(Axis(0), rows).slice_axis_move(Axis(1), cols)
                }
                let mut scores = scaled_scores(part(&q, rows, cols), part(&k, rows, cols), scale)?;
                if let Some(p) = prev.and_then(|p| p.get(w * self.heads + h)) {
                    scores += p;
                }
                if self.res_scale.is_some() {
                    scores_out.push(scores.clone());
                }
                softmax_rows(&mut scores, None)?;
                heads_out
                    .slice_axis_mut(Axis(0), rows)
                    .slice_axis_mut(Axis(1), cols)
                    .assign(&scores.dot(&part(&v, rows, cols)));
            }
        }
        Ok((self.to_out.forward(heads_out.view())?, scores_out))
    }

    /// x [windows * q_len, hidden] -> the same shape, and this layer's scores.
    pub fn forward(
        &self,
        x: ArrayView2<f32>,
        q_len: usize,
        prev: Option<&Scores>,
    ) -> Result<(Array2<f32>, Scores), ForwardError> {
        let mut src = x.to_owned();
        if self.pre_norm {
            Self::norm(&self.norm_attn, &mut src)?;
        }
        let (attn, scores) = self.attention(src.view(), q_len, prev)?;
        src += &attn;
        if !self.pre_norm {
            Self::norm(&self.norm_attn, &mut src)?;
        }
        if self.pre_norm {
            Self::norm(&self.norm_ffn, &mut src)?;
        }
        src += &self.ff.forward(src.view())?;
        if !self.pre_norm {
            Self::norm(&self.norm_ffn, &mut src)?;
        }
        Ok((src, scores))
    }
}

#[derive(Debug, Clone)]
pub struct TstEncoder {
    layers: Vec<TstEncoderLayer>,
}

impl TstEncoder {
    /// `<prefix>.layers.{i}` for i < n_layers.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        n_layers: usize,
        shape: TstShape,
    ) -> Result<TstEncoder, BuildError> {
        if n_layers == 0 {
            return Err(invalid!("PatchTST needs at least one encoder layer"));
        }
        let layers = (0..n_layers)
            .map(|i| TstEncoderLayer::load(store, &format!("{prefix}.layers.{i}"), shape))
            .collect::<Result<_, _>>()?;
        Ok(TstEncoder { layers })
    }

    /// x [windows * q_len, hidden]: the patches of each window, consecutive.
    pub fn forward(&self, x: ArrayView2<f32>, q_len: usize) -> Result<Array2<f32>, ForwardError> {
        if q_len == 0 || !x.nrows().is_multiple_of(q_len) {
            return Err(shape!(
                "{} tokens are not whole windows of {q_len} patches",
                x.nrows()
            ));
        }
        let mut x = x.to_owned();
        let mut scores: Option<Scores> = None;
        for layer in &self.layers {
            let (y, s) = layer.forward(x.view(), q_len, scores.as_ref())?;
            x = y;
            scores = Some(s);
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Hidden 2, one head, identity projections and BatchNorms, zero feed-forward.
    fn layer(res_attention: bool, pre_norm: bool) -> TstEncoderLayer {
        let eye = vec![1.0, 0.0, 0.0, 1.0];
        let mut t: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
        for name in ["W_Q", "W_K", "W_V", "to_out.0"] {
            t.push((
                format!("l.self_attn.{name}.weight"),
                vec![2, 2],
                eye.clone(),
            ));
            t.push((format!("l.self_attn.{name}.bias"), vec![2], vec![0.0; 2]));
        }
        t.push(("l.self_attn.sdp_attn.scale".into(), vec![], vec![0.5]));
        for bn in ["norm_attn", "norm_ffn"] {
            for (name, v) in [
                ("weight", 1.0),
                ("bias", 0.0),
                ("running_mean", 0.0),
                ("running_var", 1.0),
            ] {
                t.push((format!("l.{bn}.1.{name}"), vec![2], vec![v; 2]));
            }
        }
        for ff in ["0", "3"] {
            t.push((format!("l.ff.{ff}.weight"), vec![2, 2], vec![0.0; 4]));
            t.push((format!("l.ff.{ff}.bias"), vec![2], vec![0.0; 2]));
        }
        let t: Vec<(&str, Vec<usize>, Vec<f32>)> = t
            .iter()
            .map(|(n, s, d)| (n.as_str(), s.clone(), d.clone()))
            .collect();
        let shape = TstShape {
            hidden: 2,
            heads: 1,
            ff_hidden: 2,
            activation: Activation::GELU,
            res_attention,
            pre_norm,
        };
        TstEncoderLayer::load(&TensorStore::from_tensors(&t), "l", shape).unwrap()
    }

    #[test]
    fn residual_scores_carry_to_the_next_layer() {
        // Two windows of two tokens. BatchNorm with unit stats scales by 1/sqrt(1 + eps).
        let bn = 1.0 / (1.0f32 + 1e-5).sqrt();
        let res = layer(true, false);
        let x = array![[1.0f32, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 0.0]];
        let (y, scores) = res.forward(x.view(), 2, None).unwrap();
        assert_eq!(scores.len(), 2);
        // Window 0 scores: x xᵀ * 0.5 (the stored scale).
        assert_eq!(scores[0], array![[0.5f32, 0.0], [0.0, 0.5]]);
        let p = 0.5f32.exp() / (0.5f32.exp() + 1.0);
        assert!((y[[0, 0]] - (1.0 + p) * bn * bn).abs() < 1e-5);
        assert!((y[[0, 1]] - (1.0 - p) * bn * bn).abs() < 1e-5);
        // Previous scores are added before the softmax.
        let (_, s2) = res.forward(x.view(), 2, Some(&scores)).unwrap();
        assert_eq!(s2[0], array![[1.0f32, 0.0], [0.0, 1.0]]);
        // Plain attention keeps no scores; 3 tokens are not whole windows.
        assert!(layer(false, true)
            .forward(x.view(), 2, None)
            .unwrap()
            .1
            .is_empty());
        let enc = TstEncoder { layers: vec![res] };
        assert!(enc
            .forward(x.slice_axis(Axis(0), Slice::from(..3)), 2)
            .is_err());
    }
}
