//! The `layers` Sequential of an NBEATS / NBEATSx / NHITS block: a first
//! Linear with no activation after it, then per `mlp_units` pair a Linear and
//! the activation (plus a Dropout when `dropout_prob_theta > 0`: a no-op at
//! inference, but it takes a Sequential index and so shifts every later key),
//! then the Linear to theta. One activation module serves the whole block, so
//! PReLU has one learned weight per block.

use super::activation::{Activation, PRelu};
use super::linear::Linear;
use crate::forecaster::{invalid, BuildError, ForwardError};
use crate::tensors::TensorStore;
use ndarray::{Array2, ArrayView2};

/// The hyperparameters every block of the family reads.
#[derive(Debug, Clone)]
pub struct BlockMlpConfig {
    /// `mlp_units`: [in, out] of each hidden Linear after the first.
    pub units: Vec<(usize, usize)>,
    pub activation: String,
    pub dropout: bool,
}

impl BlockMlpConfig {
    /// From `mlp_units` ([in, out] pairs), `activation` and `dropout_prob_theta`.
    pub fn new(
        mlp_units: &[Vec<usize>],
        activation: &str,
        dropout_prob_theta: f64,
    ) -> Result<BlockMlpConfig, BuildError> {
        let units = mlp_units
            .iter()
            .map(|r| match r.as_slice() {
                [a, b] if *a > 0 && *b > 0 => Ok((*a, *b)),
                _ => Err(invalid!(
                    "mlp_units must list [in, out] pairs of positive integers"
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if units.is_empty() {
            return Err(invalid!("mlp_units is empty"));
        }
        Ok(BlockMlpConfig {
            units,
            activation: activation.to_string(),
            dropout: dropout_prob_theta > 0.0,
        })
    }
}

#[derive(Debug, Clone)]
enum BlockActivation {
    Fixed(Activation),
    PRelu(PRelu),
}

#[derive(Debug, Clone)]
pub struct BlockMlp {
    first: Linear,
    hidden: Vec<Linear>,
    activation: BlockActivation,
    out: Linear,
}

impl BlockMlp {
    /// Loads `<prefix>.<i>` for the Sequential positions the config implies.
    pub fn load(
        store: &TensorStore,
        prefix: &str,
        cfg: &BlockMlpConfig,
        in_features: usize,
        n_theta: usize,
    ) -> Result<BlockMlp, BuildError> {
        let (first_out, _) = cfg.units[0];
        let first = Linear::load(store, &format!("{prefix}.0"), in_features, first_out, true)?;
        let step = if cfg.dropout { 3 } else { 2 };
        let mut hidden = Vec::with_capacity(cfg.units.len());
        let mut width = first_out;
        for (i, &(a, b)) in cfg.units.iter().enumerate() {
            if a != width {
                return Err(invalid!(
                    "mlp_units[{i}] takes {a} inputs but the layer before gives {width}"
                ));
            }
            hidden.push(Linear::load(
                store,
                &format!("{prefix}.{}", 1 + i * step),
                a,
                b,
                true,
            )?);
            width = b;
        }
        let activation = if cfg.activation == "PReLU" {
            BlockActivation::PRelu(PRelu::load(store, &format!("{prefix}.2"))?)
        } else {
            // An unknown name here refuses the bundle, as it always has.
            BlockActivation::Fixed(Activation::parse(&cfg.activation).map_err(|e| invalid!("{e}"))?)
        };
        let out_idx = 1 + cfg.units.len() * step;
        let out = Linear::load(store, &format!("{prefix}.{out_idx}"), width, n_theta, true)?;
        Ok(BlockMlp {
            first,
            hidden,
            activation,
            out,
        })
    }

    pub fn in_features(&self) -> usize {
        self.first.in_features()
    }

    /// x: [batch, in_features] -> theta [batch, n_theta].
    pub fn forward(&self, x: ArrayView2<f32>) -> Result<Array2<f32>, ForwardError> {
        let mut h = self.first.forward(x)?;
        for layer in &self.hidden {
            h = layer.forward(h.view())?;
            match &self.activation {
                BlockActivation::Fixed(a) => a.apply_inplace(&mut h),
                BlockActivation::PRelu(p) => p.apply_inplace(&mut h)?,
            }
        }
        self.out.forward(h.view())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use safetensors::tensor::TensorView;
    use safetensors::Dtype;
    use std::collections::HashMap;

    /// A store with the given tensors and `shared` ties, as NeuralForecast saves.
    fn store(tensors: &[(&str, Vec<usize>, Vec<f32>)], shared: &str) -> TensorStore {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
            .iter()
            .map(|(n, s, d)| {
                (
                    n.to_string(),
                    s.clone(),
                    d.iter().flat_map(|v| v.to_le_bytes()).collect(),
                )
            })
            .collect();
        let views = bytes.iter().map(|(n, s, b)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
            )
        });
        let md = HashMap::from([("shared".to_string(), shared.to_string())]);
        TensorStore::from_bytes(&safetensors::serialize(views, Some(md)).unwrap()).unwrap()
    }

    /// 1 -> 1 -> [1, 1] -> 1 with dropout: Linear 0, Linear 1, PReLU 2, Dropout 3,
    /// Linear 4; the PReLU weight is saved once under the name it is tied to.
    #[test]
    fn dropout_shifts_keys_and_prelu_reads_tied_weight() {
        let s = store(
            &[
                ("l.0.weight", vec![1, 1], vec![1.0]),
                ("l.0.bias", vec![1], vec![-2.0]),
                ("l.1.weight", vec![1, 1], vec![3.0]),
                ("l.1.bias", vec![1], vec![0.0]),
                ("w.slope", vec![1], vec![0.5]),
                ("l.4.weight", vec![1, 1], vec![1.0]),
                ("l.4.bias", vec![1], vec![1.0]),
            ],
            r#"{"w.slope": ["l.2.weight"]}"#,
        );
        let cfg = BlockMlpConfig {
            units: vec![(1, 1)],
            activation: "PReLU".into(),
            dropout: true,
        };
        let mlp = BlockMlp::load(&s, "l", &cfg, 1, 1).unwrap();
        // x=1: first 1-2=-1 (no activation), hidden 3*-1=-3, PReLU -1.5, out -0.5.
        assert_eq!(
            mlp.forward(array![[1.0f32]].view()).unwrap(),
            array![[-0.5f32]]
        );
        let no_dropout = BlockMlpConfig {
            dropout: false,
            ..cfg
        };
        assert!(BlockMlp::load(&s, "l", &no_dropout, 1, 1).is_err());
    }
}
