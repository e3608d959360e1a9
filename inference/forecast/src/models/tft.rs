//! TFT, the Temporal Fusion Transformer (neuralforecast/models/tft.py).
//! Every scalar input (static, future, historic, the target) gets its own
//! learned vector and bias. A static encoder (variable selection + context
//! GRNs, present only with static exog) yields the selection context, the
//! enrichment context and the recurrent initial states; otherwise these are
//! zeros. Variable selection over the window's historic inputs feeds an LSTM
//! or GRU encoder, over the horizon's future inputs a second one that starts
//! from the encoder's final state. A gated skip joins them, a static
//! enrichment GRN, causal interpretable attention, a gated skip, a
//! position-wise GRN and a last gated skip to the temporal features decode
//! the horizon steps, and a Linear gives the loss outputs.
//!
//! Without future exog the model uses the last insample value, repeated over
//! `input_size + h` steps, as its single future input (as NeuralForecast does).

use super::{insample_y, BuildError, Forecaster, Model, WindowBatch};
use crate::forecaster::{invalid, shape, ForwardError};
use crate::nn::activation::Activation;
use crate::nn::grn::{grn_activation, Context, Glu, Grn, GrnShape, TFT_LN_EPS};
use crate::nn::interpretable_attention::InterpretableAttention;
use crate::nn::layer_norm::LayerNorm;
use crate::nn::linear::Linear;
use crate::nn::recurrent::{CellKind, LayerShape, LayerState, RecurrentStack};
use crate::nn::temporal::c_order;
use crate::nn::variable_selection::VariableSelection;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{concatenate, Array2, Array3, ArrayView2, Axis};
use serde::Deserialize;

/// `TFTEmbedding`'s continuous embedding of one input kind: value * vector + bias.
struct Embedding {
    /// [n_vars, hidden]
    vectors: Array2<f32>,
    bias: Array2<f32>,
}

impl Embedding {
    fn load(
        store: &TensorStore,
        name: &str,
        n: usize,
        hidden: usize,
    ) -> Result<Embedding, BuildError> {
        Ok(Embedding {
            vectors: store.array2(&format!("embedding.{name}_vectors"), n, hidden)?,
            bias: store.array2(&format!("embedding.{name}_bias"), n, hidden)?,
        })
    }

    fn at(&self, value: f32, var: usize, j: usize) -> f32 {
        value * self.vectors[[var, j]] + self.bias[[var, j]]
    }
}

/// `StaticCovariateEncoder`: selection over the static embeddings, then one
/// ELU GRN per context.
struct StaticEncoder {
    vsn: VariableSelection,
    /// cs, ce, then the h states, then (LSTM) the c states.
    contexts: Vec<Grn>,
    n_states: usize,
}

/// What the static encoder (or its absence) hands to the rest.
struct StaticContexts {
    selection: Array2<f32>,
    enrichment: Array2<f32>,
    states: Vec<LayerState>,
}

/// TFT's own hyperparameters (its `__init__` arguments that shape the
/// forward pass), defaulted as NeuralForecast defaults them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TftHparams {
    pub hidden_size: usize,
    pub n_head: usize,
    pub n_rnn_layers: usize,
    pub tgt_size: usize,
    pub rnn_type: String,
    pub grn_activation: String,
    pub one_rnn_initial_state: bool,
}

impl Default for TftHparams {
    fn default() -> Self {
        TftHparams {
            hidden_size: 128,
            n_head: 4,
            n_rnn_layers: 1,
            tgt_size: 1,
            rnn_type: "lstm".into(),
            grn_activation: "ELU".into(),
            one_rnn_initial_state: false,
        }
    }
}

pub struct Tft {
    hidden: usize,
    input_size: usize,
    h: usize,
    outputs: usize,
    n_futr: usize,
    n_hist: usize,
    n_stat: usize,
    exclude_insample_y: bool,
    kind: CellKind,
    stat_emb: Option<Embedding>,
    futr_emb: Embedding,
    hist_emb: Option<Embedding>,
    tgt_emb: Embedding,
    static_encoder: Option<StaticEncoder>,
    history_vsn: VariableSelection,
    future_vsn: VariableSelection,
    history_rnn: RecurrentStack,
    future_rnn: RecurrentStack,
    input_gate: Glu,
    input_gate_ln: LayerNorm,
    enrichment: Grn,
    attention: InterpretableAttention,
    attention_gate: Glu,
    attention_ln: LayerNorm,
    positionwise: Grn,
    decoder_gate: Glu,
    decoder_ln: LayerNorm,
    output: Linear,
}

impl Model for Tft {
    const CLASS: &'static str = "TFT";
    const NON_ARCHITECTURE: &'static [&'static str] = &["attn_dropout", "dropout"];
    type Hparams = TftHparams;
    type Net = Tft;

    fn load(spec: &ModelSpec, hp: TftHparams, store: &TensorStore) -> Result<Tft, BuildError> {
        let hidden = hp.hidden_size;
        let heads = hp.n_head;
        let n_layers = hp.n_rnn_layers;
        let tgt_size = hp.tgt_size;
        if tgt_size != 1 {
            return Err(BuildError::Unsupported(format!(
                "TFT with tgt_size {tgt_size}: only one target is served"
            )));
        }
        let kind = match hp.rnn_type.as_str().to_lowercase().as_str() {
            "lstm" => CellKind::Lstm,
            "gru" => CellKind::Gru,
            other => return Err(invalid!("TFT rnn_type '{other}' is not lstm or gru")),
        };
        if n_layers == 0 {
            return Err(invalid!("TFT needs n_rnn_layers >= 1"));
        }
        let act = grn_activation(hp.grn_activation.as_str())?;
        let (n_futr, n_hist, n_stat) = (
            spec.exog_widths().futr,
            spec.exog_widths().hist,
            spec.exog_widths().stat,
        );
        let futr_vars = n_futr.max(1);
        let grn = |prefix: &str, context: bool, act: Activation| {
            Grn::load(
                store,
                prefix,
                GrnShape {
                    input: hidden,
                    hidden,
                    output: None,
                    context,
                },
                act,
            )
        };
        let ln = |prefix: &str| -> Result<LayerNorm, BuildError> {
            Ok(LayerNorm::load(store, prefix, &[hidden])?.with_eps(TFT_LN_EPS))
        };
        let static_encoder = if n_stat > 0 {
            let n_states = if hp.one_rnn_initial_state {
                1
            } else {
                n_layers
            };
            let n_contexts = match kind {
                CellKind::Lstm => 2 + 2 * n_states,
                _ => 2 + n_states,
            };
            Some(StaticEncoder {
                vsn: VariableSelection::load(store, "static_encoder.vsn", hidden, n_stat, act)?,
                contexts: (0..n_contexts)
                    .map(|i| {
                        grn(
                            &format!("static_encoder.context_grns.{i}"),
                            false,
                            Activation::ELU,
                        )
                    })
                    .collect::<Result<_, _>>()?,
                n_states,
            })
        } else {
            None
        };
        let rnn = |prefix: &str| {
            RecurrentStack::load(
                store,
                prefix,
                kind,
                LayerShape {
                    input: hidden,
                    hidden,
                    proj: 0,
                    bias: true,
                },
                n_layers,
            )
        };
        let d = "temporal_fusion_decoder";
        Ok(Tft {
            hidden,
            input_size: spec.input_size,
            h: spec.h,
            outputs: spec.n_outputs(),
            n_futr,
            n_hist,
            n_stat,
            exclude_insample_y: spec.exclude_insample_y,
            kind,
            stat_emb: (n_stat > 0)
                .then(|| Embedding::load(store, "stat_exog_embedding", n_stat, hidden))
                .transpose()?,
            futr_emb: Embedding::load(store, "futr_exog_embedding", futr_vars, hidden)?,
            hist_emb: (n_hist > 0)
                .then(|| Embedding::load(store, "hist_exog_embedding", n_hist, hidden))
                .transpose()?,
            tgt_emb: Embedding::load(store, "tgt_embedding", 1, hidden)?,
            static_encoder,
            history_vsn: VariableSelection::load(
                store,
                "temporal_encoder.history_vsn",
                hidden,
                n_hist + futr_vars + 1,
                act,
            )?,
            future_vsn: VariableSelection::load(
                store,
                "temporal_encoder.future_vsn",
                hidden,
                futr_vars,
                act,
            )?,
            history_rnn: rnn("temporal_encoder.history_encoder")?,
            future_rnn: rnn("temporal_encoder.future_encoder")?,
            input_gate: Glu::load(store, "temporal_encoder.input_gate", hidden, hidden)?,
            input_gate_ln: ln("temporal_encoder.input_gate_ln")?,
            enrichment: grn(&format!("{d}.enrichment_grn"), true, act)?,
            attention: InterpretableAttention::load(
                store,
                &format!("{d}.attention"),
                hidden,
                heads,
            )?,
            attention_gate: Glu::load(store, &format!("{d}.attention_gate"), hidden, hidden)?,
            attention_ln: ln(&format!("{d}.attention_ln"))?,
            positionwise: grn(&format!("{d}.positionwise_grn"), false, act)?,
            decoder_gate: Glu::load(store, &format!("{d}.decoder_gate"), hidden, hidden)?,
            decoder_ln: ln(&format!("{d}.decoder_ln"))?,
            output: Linear::load(store, "output_adapter", hidden, spec.n_outputs(), true)?,
        })
    }
}

impl Tft {
    /// Contexts and initial states from the static exog, or zeros without.
    fn static_contexts(
        &self,
        batch: &WindowBatch,
        b: usize,
    ) -> Result<StaticContexts, ForwardError> {
        let hd = self.hidden;
        let mut states = self.history_rnn.zero_state(b);
        let (Some(enc), Some(emb)) = (&self.static_encoder, &self.stat_emb) else {
            return Ok(StaticContexts {
                selection: Array2::zeros((b, hd)),
                enrichment: Array2::zeros((b, hd)),
                states,
            });
        };
        let stat = batch
            .stat_exog
            .as_ref()
            .ok_or_else(|| shape!("TFT needs stat_exog"))?;
        if stat.dim() != (b, self.n_stat) {
            return Err(shape!(
                "stat_exog is {:?}, TFT needs {:?}",
                stat.dim(),
                (b, self.n_stat)
            ));
        }
        let s_inp =
            Array3::from_shape_fn((b, self.n_stat, hd), |(i, v, j)| emb.at(stat[[i, v]], v, j));
        let selected = enc.vsn.forward(s_inp.view(), None)?;
        let ctx = |i: usize| -> Result<Array2<f32>, ForwardError> {
            enc.contexts
                .get(i)
                .ok_or_else(|| shape!("static context GRN {i} is missing"))?
                .forward(selected.view(), None)
        };
        // One state for every layer, or one per layer.
        let per_layer = |l: usize| if enc.n_states == 1 { 0 } else { l };
        for (l, st) in states.iter_mut().enumerate() {
            st.h = ctx(2 + per_layer(l))?;
            if self.kind == CellKind::Lstm {
                st.c = Some(ctx(2 + enc.n_states + per_layer(l))?);
            }
        }
        Ok(StaticContexts {
            selection: ctx(0)?,
            enrichment: ctx(1)?,
            states,
        })
    }
}

/// Rows [batch * steps, hidden] as [batch, steps, hidden].
fn per_batch(x: Array2<f32>, b: usize, steps: usize) -> Result<Array3<f32>, ForwardError> {
    let hd = x.ncols();
    c_order(x)
        .into_shape_with_order((b, steps, hd))
        .map_err(|e| ForwardError::array("TFT features do not reshape", e))
}

/// [batch, steps, hidden] as rows [batch * steps, hidden].
fn rows(x: Array3<f32>) -> Result<Array2<f32>, ForwardError> {
    let (b, t, hd) = x.dim();
    c_order(x)
        .into_shape_with_order((b * t, hd))
        .map_err(|e| ForwardError::array("TFT features do not flatten", e))
}

/// The rows of steps `from..steps` of every batch.
fn tail_rows(x: ArrayView2<f32>, steps: usize, from: usize) -> Array2<f32> {
    let keep = steps - from;
    Array2::from_shape_fn((x.nrows() / steps * keep, x.ncols()), |(r, j)| {
        x[[(r / keep) * steps + from + r % keep, j]]
    })
}

impl Forecaster for Tft {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        let (b, l) = batch.insample_y.dim();
        let (h, hd) = (self.h, self.hidden);
        if l != self.input_size {
            return Err(shape!(
                "TFT expects {} insample steps, got {l}",
                self.input_size
            ));
        }
        let t = l + h;
        let y = insample_y(batch, self.exclude_insample_y);
        // The known inputs over window and horizon [B, T, F]; without futr exog,
        // the last insample value repeated.
        let futr = match (self.n_futr, &batch.futr_exog) {
            (0, _) => Array3::from_shape_fn((b, t, 1), |(i, _, _)| y[[i, l - 1]]),
            (n, Some(f)) if f.dim() == (b, t, n) => f.clone(),
            (n, other) => {
                return Err(shape!(
                    "TFT needs futr_exog [{b}, {t}, {n}], got {:?}",
                    other.as_ref().map(|f| f.dim())
                ))
            }
        };
        let futr_vars = futr.dim().2;
        let hist = match (&self.hist_emb, &batch.hist_exog) {
            (None, _) => None,
            (Some(emb), Some(x)) if x.dim() == (b, l, self.n_hist) => Some((emb, x)),
            (Some(_), other) => {
                return Err(shape!(
                    "TFT needs hist_exog [{b}, {l}, {}], got {:?}",
                    self.n_hist,
                    other.as_ref().map(|x| x.dim())
                ))
            }
        };
        let ctx = self.static_contexts(batch, b)?;
        let selection = |per: usize| Context {
            values: ctx.selection.view(),
            rows_per_batch: per,
        };

        // Historic variables per window step: hist exog, known inputs, target.
        let n_hist = self.n_hist;
        let historical = Array3::from_shape_fn((b * l, n_hist + futr_vars + 1, hd), |(r, v, j)| {
            let (i, s) = (r / l, r % l);
            match (v, hist) {
                (v, Some((emb, x))) if v < n_hist => emb.at(x[[i, s, v]], v, j),
                (v, _) if v < n_hist + futr_vars => {
                    let f = v - n_hist;
                    self.futr_emb.at(futr[[i, s, f]], f, j)
                }
                _ => self.tgt_emb.at(y[[i, s]], 0, j),
            }
        });
        let future = Array3::from_shape_fn((b * h, futr_vars, hd), |(r, f, j)| {
            self.futr_emb.at(futr[[r / h, l + r % h, f]], f, j)
        });
        let hist_features = self
            .history_vsn
            .forward(historical.view(), Some(selection(l)))?;
        let futr_features = self.future_vsn.forward(future.view(), Some(selection(h)))?;
        let hist_features = per_batch(hist_features, b, l)?;
        let futr_features = per_batch(futr_features, b, h)?;
        let mut states = ctx.states;
        let encoded = self.history_rnn.run(hist_features.view(), &mut states)?;
        let decoded = self.future_rnn.run(futr_features.view(), &mut states)?;
        let cat = |a: &Array3<f32>, c: &Array3<f32>| {
            concatenate(Axis(1), &[a.view(), c.view()])
                .map_err(|e| ForwardError::array("TFT sequences do not concatenate", e))
        };
        let embedded = rows(cat(&hist_features, &futr_features)?)?;
        let temporal = rows(cat(&encoded, &decoded)?)?;
        let mut temporal = c_order(self.input_gate.forward(temporal.view())?) + &embedded;
        self.input_gate_ln.forward_inplace(&mut temporal)?;

        // Static enrichment, then causal attention over window + horizon; only
        // the horizon steps go on.
        let enriched = c_order(self.enrichment.forward(
            temporal.view(),
            Some(Context {
                values: ctx.enrichment.view(),
                rows_per_batch: t,
            }),
        )?);
        let mut attended = Array2::<f32>::zeros((b * h, hd));
        for i in 0..b {
            let seq = enriched.slice_axis(Axis(0), (i * t..(i + 1) * t).into());
            let a = self.attention.forward(seq, l)?;
            attended
                .slice_axis_mut(Axis(0), (i * h..(i + 1) * h).into())
                .assign(&a);
        }
        let mut x = c_order(self.attention_gate.forward(attended.view())?)
            + tail_rows(enriched.view(), t, l);
        self.attention_ln.forward_inplace(&mut x)?;
        let x = self.positionwise.forward(x.view(), None)?;
        let mut x =
            c_order(self.decoder_gate.forward(x.view())?) + tail_rows(temporal.view(), t, l);
        self.decoder_ln.forward_inplace(&mut x)?;
        let out = c_order(self.output.forward(x.view())?);
        out.into_shape_with_order((b, h, self.outputs))
            .map_err(|e| ForwardError::array("TFT output does not reshape", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn tail_rows_keep_the_horizon_of_each_batch() {
        let x = array![[0.0f32], [1.0], [2.0], [10.0], [11.0], [12.0]];
        assert_eq!(
            tail_rows(x.view(), 3, 1),
            array![[1.0f32], [2.0], [11.0], [12.0]]
        );
    }
}
