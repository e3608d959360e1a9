//! TimeXer (neuralforecast/models/timexer.py) for one multivariate window.
//! Each series (optionally normalised) is cut into `input_size / patch_len`
//! patches, embedded with the positional table, plus a learned global token;
//! the exogenous side is iTransformer-style tokens (a Linear over time) of
//! every series, every (hist exog, series) pair and every static value.
//! Encoder layers: self-attention over a series' patches and global token,
//! then the global token attends to the exogenous tokens, then a
//! position-wise feed-forward; a final LayerNorm and a flatten head to
//! `h * outputs` per series.

use super::{
    channels_first, check_series, insample_y, n_series, series_rows, BuildError, Forecaster,
    Layout, Model, WindowBatch,
};
use crate::forecaster::{invalid, shape, ForwardError};
use crate::nn::activation::Activation;
use crate::nn::attention::MultiHeadAttention;
use crate::nn::embedding::PositionalEmbedding;
use crate::nn::instance_norm::{denormalized_output, normalized_window, InstanceNorm};
use crate::nn::layer_norm::LayerNorm;
use crate::nn::linear::Linear;
use crate::nn::transformer::PositionwiseFeedForward;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{concatenate, Array2, Array3, ArrayView2, Axis, Slice};
use serde::Deserialize;

/// TimeXer's `EncoderLayer`.
struct XerLayer {
    self_attention: MultiHeadAttention,
    cross_attention: MultiHeadAttention,
    norm1: LayerNorm,
    norm2: LayerNorm,
    ffn: PositionwiseFeedForward,
}

impl XerLayer {
    fn load(
        store: &TensorStore,
        prefix: &str,
        hidden: usize,
        heads: usize,
        d_ff: usize,
    ) -> Result<XerLayer, BuildError> {
        let attn = |name: &str| {
            MultiHeadAttention::load(store, &format!("{prefix}.{name}"), hidden, heads)
        };
        let norm = |name: &str| LayerNorm::load(store, &format!("{prefix}.{name}"), &[hidden]);
        Ok(XerLayer {
            self_attention: attn("self_attention")?,
            cross_attention: attn("cross_attention")?,
            norm1: norm("norm1")?,
            norm2: norm("norm2")?,
            ffn: PositionwiseFeedForward::load(
                store,
                prefix,
                "norm3",
                hidden,
                d_ff,
                Activation::ReLU,
            )?,
        })
    }

    /// seqs: per series [patches + 1, hidden] (the global token last);
    /// cross: the exogenous tokens [tokens, hidden].
    fn forward(
        &self,
        seqs: Vec<Array2<f32>>,
        cross: ArrayView2<f32>,
    ) -> Result<Vec<Array2<f32>>, ForwardError> {
        let mut seqs = seqs
            .into_iter()
            .map(|x| {
                let mut x = &x + &self.self_attention.forward(x.view())?;
                self.norm1.forward_inplace(&mut x)?;
                Ok(x)
            })
            .collect::<Result<Vec<_>, ForwardError>>()?;
        // The global tokens of all series query the exogenous tokens together.
        let last = |x: &Array2<f32>| x.nrows().saturating_sub(1);
        let glb = ndarray::stack(
            Axis(0),
            &seqs.iter().map(|x| x.row(last(x))).collect::<Vec<_>>(),
        )
        .map_err(|e| ForwardError::array("global tokens do not stack", e))?;
        let mut glb = &glb + &self.cross_attention.attend(glb.view(), cross, false)?;
        self.norm2.forward_inplace(&mut glb)?;
        for (x, g) in seqs.iter_mut().zip(glb.rows()) {
            let i = last(x);
            x.row_mut(i).assign(&g);
        }
        seqs.into_iter().map(|x| self.ffn.forward(x)).collect()
    }
}

/// TimeXer's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TimeXerHparams {
    pub use_norm: bool,
    pub patch_len: usize,
    pub hidden_size: usize,
    pub n_heads: usize,
    pub e_layers: usize,
    pub d_ff: usize,
}

impl Default for TimeXerHparams {
    fn default() -> Self {
        TimeXerHparams {
            use_norm: true,
            patch_len: 16,
            hidden_size: 512,
            n_heads: 8,
            e_layers: 2,
            d_ff: 2048,
        }
    }
}

pub struct TimeXer {
    norm: Option<InstanceNorm>,
    patch_len: usize,
    patch_embedding: Linear,
    position: PositionalEmbedding,
    /// [n_series, hidden]
    glb_token: Array2<f32>,
    ex_embedding: Linear,
    layers: Vec<XerLayer>,
    final_norm: LayerNorm,
    head: Linear,
    n_series: usize,
    input_size: usize,
    h: usize,
    outputs: usize,
    n_hist: usize,
    n_stat: usize,
    exclude_insample_y: bool,
}

impl Model for TimeXer {
    const CLASS: &'static str = "TimeXer";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = &["dropout", "factor"];
    type Hparams = TimeXerHparams;
    type Net = TimeXer;

    fn load(
        spec: &ModelSpec,
        hp: TimeXerHparams,
        store: &TensorStore,
    ) -> Result<TimeXer, BuildError> {
        if !spec.futr_exog.is_empty() {
            return Err(invalid!(
                "TimeXer takes historic and static exogenous variables only"
            ));
        }
        let n = n_series(spec)?;
        let (l, h, outputs) = (spec.input_size, spec.h, spec.n_outputs());
        let patch_len = hp.patch_len;
        let hidden = hp.hidden_size;
        let heads = hp.n_heads;
        let e_layers = hp.e_layers;
        let d_ff = hp.d_ff;
        if patch_len == 0 || l < patch_len {
            return Err(invalid!(
                "patch_len {patch_len} does not fit input_size {l}"
            ));
        }
        let patches = l / patch_len;
        let glb = store.array_dyn("en_embedding.glb_token", &[1, n, 1, hidden])?;
        Ok(TimeXer {
            norm: InstanceNorm::use_norm(hp.use_norm),
            patch_len,
            patch_embedding: Linear::load(
                store,
                "en_embedding.value_embedding",
                patch_len,
                hidden,
                false,
            )?,
            // One position per patch of the window: at most l.
            position: PositionalEmbedding::load(
                store,
                "en_embedding.position_embedding",
                hidden,
                l,
            )?,
            glb_token: glb
                .into_shape_with_order((n, hidden))
                .map_err(|e| invalid!("glb_token: {e}"))?,
            ex_embedding: Linear::load(store, "ex_embedding.value_embedding", l, hidden, true)?,
            layers: (0..e_layers)
                .map(|i| XerLayer::load(store, &format!("encoder.layers.{i}"), hidden, heads, d_ff))
                .collect::<Result<_, _>>()?,
            final_norm: LayerNorm::load(store, "encoder.norm", &[hidden])?,
            head: Linear::load(
                store,
                "head.linear",
                hidden * (patches + 1),
                h * outputs,
                true,
            )?,
            n_series: n,
            input_size: l,
            h,
            outputs,
            n_hist: spec.exog_widths().hist,
            n_stat: spec.exog_widths().stat,
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

impl TimeXer {
    /// Rows [series + hist * series + series * stat, input_size]: the
    /// normalised series, each (hist channel, series) and each static value
    /// held over the window, in torch's token order.
    fn exog_tokens(
        &self,
        x: &Array2<f32>,
        batch: &WindowBatch,
    ) -> Result<Array2<f32>, ForwardError> {
        let (n, l) = (self.n_series, self.input_size);
        let mut rows = vec![x.t().to_owned()];
        if self.n_hist > 0 {
            let hx = batch
                .hist_exog
                .as_ref()
                .ok_or_else(|| shape!("TimeXer needs hist_exog"))?;
            // [X, L, N] -> rows x * N + n.
            let hx = channels_first(hx, n)?;
            let (c, t, _) = hx.dim();
            if (c, t) != (self.n_hist, l) {
                return Err(shape!(
                    "hist_exog is [{c}, {t}], not [{}, {l}]",
                    self.n_hist
                ));
            }
            rows.push(Array2::from_shape_fn((c * n, l), |(k, s)| {
                hx[[k / n, s, k % n]]
            }));
        }
        if self.n_stat > 0 {
            let sx = batch
                .stat_exog
                .as_ref()
                .ok_or_else(|| shape!("TimeXer needs stat_exog"))?;
            if sx.dim() != (n, self.n_stat) {
                return Err(shape!(
                    "stat_exog is {:?}, not [{n}, {}]",
                    sx.dim(),
                    self.n_stat
                ));
            }
            let flat: Vec<f32> = sx.as_standard_layout().iter().copied().collect();
            rows.push(Array2::from_shape_fn((flat.len(), l), |(k, _)| flat[k]));
        }
        let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
        concatenate(Axis(0), &views)
            .map_err(|e| ForwardError::array("exogenous tokens do not stack", e))
    }
}

impl Forecaster for TimeXer {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let n = self.n_series;
        check_series(batch, n)?;
        if batch.insample_y.ncols() != self.input_size {
            return Err(shape!(
                "the window has {} steps, not {}",
                batch.insample_y.ncols(),
                self.input_size
            ));
        }
        // The window [time, series], normalised per series.
        let y = insample_y(batch, self.exclude_insample_y);
        let (x, stats) = normalized_window(self.norm.as_ref(), y.view())?;
        let cross = self
            .ex_embedding
            .forward(self.exog_tokens(&x, batch)?.view())?;
        let patches = self.input_size / self.patch_len;
        let pe = self.position.rows(patches)?;
        let mut seqs = (0..n)
            .map(|s| {
                let col = x.column(s);
                let p = Array2::from_shape_fn((patches, self.patch_len), |(i, j)| {
                    col[i * self.patch_len + j]
                });
                let emb = self.patch_embedding.forward(p.view())? + pe;
                concatenate(
                    Axis(0),
                    &[
                        emb.view(),
                        self.glb_token.slice_axis(Axis(0), Slice::from(s..s + 1)),
                    ],
                )
                .map_err(|e| ForwardError::array("patch tokens do not concatenate", e))
            })
            .collect::<Result<Vec<_>, ForwardError>>()?;
        for layer in &self.layers {
            seqs = layer.forward(seqs, cross.view())?;
        }
        // Per series: [tokens, hidden] -> flattened hidden-major -> head.
        let width = self.head.in_features();
        let mut flat = Array2::<f32>::zeros((n, width));
        for (s, mut seq) in seqs.into_iter().enumerate() {
            self.final_norm.forward_inplace(&mut seq)?;
            let t = seq.t();
            flat.row_mut(s).assign(
                &t.as_standard_layout()
                    .into_shape_with_order(width)
                    .map_err(|e| ForwardError::array("encoder output does not flatten", e))?,
            );
        }
        let head = self.head.forward(flat.view())?;
        let y = denormalized_output(self.norm.as_ref(), stats.as_ref(), head.view())?;
        series_rows(&y, self.h, n, self.outputs)
    }

    fn layout(&self) -> Layout {
        Layout::Multivariate {
            n_series: self.n_series,
        }
    }
}
