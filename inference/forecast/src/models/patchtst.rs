//! PatchTST (neuralforecast/models/patchtst.py), channel-independent with
//! one channel per window as 3.3.0 builds it (`c_in = 1`): optional RevIN
//! (its own, on the window: mean or last value, optional affine terms),
//! patching with end replication padding, a Linear patch embedding plus the
//! stored positional table, the TST encoder, and a flatten head (hidden-major
//! over the patches) to `h * outputs`, RevIN undone on all of them.

use super::{insample_y, require_no_exog, to_horizon, BuildError, Forecaster, WindowBatch};
use crate::nn::activation::Activation;
use crate::nn::instance_norm::InstanceNorm;
use crate::nn::linear::Linear;
use crate::nn::patching::Patching;
use crate::nn::tst_encoder::{TstEncoder, TstShape};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3, Axis};

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

impl PatchTst {
    pub fn load(spec: &ModelSpec, store: &TensorStore) -> Result<PatchTst, BuildError> {
        require_no_exog(spec)?;
        let l = spec.input_size;
        let stride = spec.usize_param("stride", 8)?;
        // The constructor shortens patches longer than the padded window.
        let patch_len = spec.usize_param("patch_len", 16)?.min(l + stride);
        let hidden = spec.usize_param("hidden_size", 128)?;
        let activation = match spec
            .str_param("activation", "gelu")?
            .to_lowercase()
            .as_str()
        {
            "gelu" => Activation::GELU,
            "relu" => Activation::ReLU,
            other => {
                return Err(BuildError::Invalid(format!(
                    "PatchTST activation '{other}' is not relu or gelu"
                )))
            }
        };
        let patching = Patching::new(patch_len, stride)?;
        let n_patches = patching.count(l)?;
        let revin = if spec.bool_param("revin", true)? {
            let norm = if spec.bool_param("revin_affine", false)? {
                InstanceNorm::load_revin(store, "model.revin_layer", 1)?
            } else {
                InstanceNorm::plain()
            };
            Some(if spec.bool_param("revin_subtract_last", true)? {
                norm.subtract_last()
            } else {
                norm
            })
        } else {
            None
        };
        let shape = TstShape {
            hidden,
            heads: spec.usize_param("n_heads", 16)?,
            ff_hidden: spec.usize_param("linear_hidden_size", 256)?,
            activation,
            res_attention: spec.bool_param("res_attention", true)?,
            pre_norm: spec.bool_param("batch_normalization", false)?,
        };
        let b = "model.backbone";
        Ok(PatchTst {
            revin,
            patching,
            n_patches,
            w_p: Linear::load(store, &format!("{b}.W_P"), patch_len, hidden, true)?,
            w_pos: store.array2(&format!("{b}.W_pos"), n_patches, hidden)?,
            encoder: TstEncoder::load(
                store,
                &format!("{b}.encoder"),
                spec.usize_param("encoder_layers", 3)?,
                shape,
            )?,
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
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, String> {
        let y = insample_y(batch, self.exclude_insample_y);
        let (b, l) = y.dim();
        if l != self.input_size {
            return Err(format!(
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
