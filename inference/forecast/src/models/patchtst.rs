//! PatchTST (neuralforecast/models/patchtst.py), channel-independent with
//! one channel per window as 3.3.0 builds it (`c_in = 1`): optional RevIN
//! (its own, on the window: mean or last value, optional affine terms),
//! patching with end replication padding, a Linear patch embedding plus the
//! stored positional table, the TST encoder, and a flatten head (hidden-major
//! over the patches) to `h * outputs`, RevIN undone on all of them.

use super::{insample_y, require_no_exog, to_horizon, BuildError, Forecaster, Model, WindowBatch};
use crate::forecaster::{invalid, shape, ForwardError};
use crate::nn::activation::Activation;
use crate::nn::instance_norm::InstanceNorm;
use crate::nn::linear::Linear;
use crate::nn::patching::Patching;
use crate::nn::tst_encoder::{TstEncoder, TstShape};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3, Axis};
use serde::Deserialize;

/// PatchTST's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PatchTstHparams {
    pub stride: usize,
    pub patch_len: usize,
    pub hidden_size: usize,
    pub activation: String,
    pub revin: bool,
    pub revin_affine: bool,
    pub revin_subtract_last: bool,
    pub n_heads: usize,
    pub linear_hidden_size: usize,
    pub res_attention: bool,
    pub batch_normalization: bool,
    pub encoder_layers: usize,
}

impl Default for PatchTstHparams {
    fn default() -> Self {
        PatchTstHparams {
            stride: 8,
            patch_len: 16,
            hidden_size: 128,
            activation: "gelu".into(),
            revin: true,
            revin_affine: false,
            revin_subtract_last: true,
            n_heads: 16,
            linear_hidden_size: 256,
            res_attention: true,
            batch_normalization: false,
            encoder_layers: 3,
        }
    }
}

pub struct PatchTst {
    revin: Option<InstanceNorm>,
    patching: Patching,
    n_patches: usize,
    w_p: Linear,
    /// [n_patches, hidden]
    w_pos: Array2<f32>,
    encoder: TstEncoder,
    head: Linear,
    hidden: usize,
    input_size: usize,
    h: usize,
    outputs: usize,
    exclude_insample_y: bool,
}

impl Model for PatchTst {
    const CLASS: &'static str = "PatchTST";
    const NON_ARCHITECTURE: &'static [&'static str] = &[
        "attn_dropout",
        "dropout",
        "fc_dropout",
        "head_dropout",
        "learn_pos_embed",
    ];
    type Hparams = PatchTstHparams;
    type Net = PatchTst;

    fn load(
        spec: &ModelSpec,
        hp: PatchTstHparams,
        store: &TensorStore,
    ) -> Result<PatchTst, BuildError> {
        require_no_exog(spec)?;
        let l = spec.input_size;
        let stride = hp.stride;
        // The constructor shortens patches longer than the padded window.
        let patch_len = hp.patch_len.min(l + stride);
        let hidden = hp.hidden_size;
        let activation = match hp.activation.as_str().to_lowercase().as_str() {
            "gelu" => Activation::GELU,
            "relu" => Activation::ReLU,
            other => {
                return Err(invalid!(
                    "PatchTST activation '{other}' is not relu or gelu"
                ))
            }
        };
        let patching = Patching::new(patch_len, stride)?;
        let n_patches = patching.count(l)?;
        let revin = if hp.revin {
            let norm = if hp.revin_affine {
                InstanceNorm::load_revin(store, "model.revin_layer", 1)?
            } else {
                InstanceNorm::plain()
            };
            Some(if hp.revin_subtract_last {
                norm.subtract_last()
            } else {
                norm
            })
        } else {
            None
        };
        let shape = TstShape {
            hidden,
            heads: hp.n_heads,
            ff_hidden: hp.linear_hidden_size,
            activation,
            res_attention: hp.res_attention,
            pre_norm: hp.batch_normalization,
        };
        let b = "model.backbone";
        Ok(PatchTst {
            revin,
            patching,
            n_patches,
            w_p: Linear::load(store, &format!("{b}.W_P"), patch_len, hidden, true)?,
            w_pos: store.array2(&format!("{b}.W_pos"), n_patches, hidden)?,
            encoder: TstEncoder::load(store, &format!("{b}.encoder"), hp.encoder_layers, shape)?,
            head: Linear::load(
                store,
                "model.head.linear",
                hidden * n_patches,
                spec.h * spec.n_outputs(),
                true,
            )?,
            hidden,
            input_size: l,
            h: spec.h,
            outputs: spec.n_outputs(),
            exclude_insample_y: spec.exclude_insample_y,
        })
    }
}

impl Forecaster for PatchTst {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let y = insample_y(batch, self.exclude_insample_y);
        let (b, l) = y.dim();
        if l != self.input_size {
            return Err(shape!(
                "PatchTST expects {} insample steps, got {l}",
                self.input_size
            ));
        }
        let (n, p, hd) = (self.n_patches, self.patching.patch_len, self.hidden);
        let mut patches = Array2::<f32>::zeros((b * n, p));
        let mut stats = Vec::with_capacity(b);
        for (i, row) in y.axis_iter(Axis(0)).enumerate() {
            let mut x = row.to_owned().insert_axis(Axis(1));
            if let Some(norm) = &self.revin {
                stats.push(norm.normalize(&mut x)?);
            }
            let ps = self.patching.patches(x.column(0))?;
            patches
                .slice_axis_mut(Axis(0), (i * n..(i + 1) * n).into())
                .assign(&ps);
        }
        let mut tokens = self.w_p.forward(patches.view())?;
        for (r, mut row) in tokens.axis_iter_mut(Axis(0)).enumerate() {
            row += &self.w_pos.row(r % n);
        }
        let z = self.encoder.forward(tokens.view(), n)?;
        // Flatten [hidden, patches] per window, hidden-major.
        let flat = Array2::from_shape_fn((b, hd * n), |(i, k)| z[[i * n + k % n, k / n]]);
        let mut out = crate::nn::temporal::c_order(self.head.forward(flat.view())?);
        if let Some(norm) = &self.revin {
            for (mut row, st) in out.axis_iter_mut(Axis(0)).zip(&stats) {
                let mut col = row.to_owned().insert_axis(Axis(1));
                norm.denormalize(&mut col, st)?;
                row.assign(&col.column(0));
            }
        }
        to_horizon(out, self.h, self.outputs)
    }
}
