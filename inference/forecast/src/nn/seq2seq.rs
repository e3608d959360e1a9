//! The window split shared by NeuralForecast's encoder-decoder transformers
//! (VanillaTransformer, Informer, Autoformer, FEDformer): the encoder reads
//! the `input_size` window, the decoder `label_len = ceil(input_size *
//! decoder_input_size_multiplier)` steps of its end followed by the `h`
//! horizon steps; future exog are their calendar marks (the first
//! `input_size` steps for the encoder, the last `label_len + h` for the decoder).
//! `TransSeq2Seq` is what VanillaTransformer and Informer share around their encoders.

use crate::forecaster::{insample_y, invalid, shape, BuildError, ForwardError, WindowBatch};
use crate::nn::embedding::DataEmbedding;
use crate::nn::transformer::{DecoderAttention, TransDecoder, TransDecoderLayer, TransShape};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::{Array2, Array3, ArrayView2, Axis, Slice};

/// The encoder's and the decoder's future-exog marks.
pub type Marks = (Array3<f32>, Array3<f32>);

/// `enc_embedding` and `dec_embedding`: one value channel plus the future
/// marks, with the positional table (VanillaTransformer, Informer) or
/// without (Autoformer, FEDformer).
#[derive(Debug, Clone)]
pub struct Embeddings {
    enc: DataEmbedding,
    dec: DataEmbedding,
}

#[derive(Debug, Clone, Copy)]
pub struct Seq2Seq {
    pub input_size: usize,
    pub h: usize,
    pub label_len: usize,
    pub n_futr: usize,
}

impl Seq2Seq {
    /// `mult` is `decoder_input_size_multiplier` (NeuralForecast's default 0.5).
    pub fn new(spec: &ModelSpec, mult: f64) -> Result<Seq2Seq, BuildError> {
        let key = "decoder_input_size_multiplier";
        let label_len = (spec.input_size as f64 * mult).ceil();
        // The models' own check: 0 < label_len < input_size.
        if !(label_len > 0.0 && label_len < spec.input_size as f64) {
            return Err(invalid!(
                "{key} {mult} gives a decoder window of {label_len} steps outside 1..{}",
                spec.input_size
            ));
        }
        Ok(Seq2Seq {
            input_size: spec.input_size,
            h: spec.h,
            label_len: label_len as usize,
            n_futr: spec.exog_widths().futr,
        })
    }

    /// The model's `enc_embedding` and `dec_embedding` to `hidden`.
    pub fn embeddings(
        &self,
        store: &TensorStore,
        hidden: usize,
        positional: bool,
    ) -> Result<Embeddings, BuildError> {
        // Encoder and decoder read at most input_size + h positions.
        let positions = positional.then_some(self.input_size + self.h);
        let emb = |p: &str| DataEmbedding::load(store, p, 1, self.n_futr, hidden, positions);
        Ok(Embeddings {
            enc: emb("enc_embedding")?,
            dec: emb("dec_embedding")?,
        })
    }

    /// Steps the decoder reads: `label_len + h`.
    pub fn decoder_len(&self) -> usize {
        self.label_len + self.h
    }

    /// The checked target window [batch, input_size].
    pub fn insample<'a>(
        &self,
        batch: &'a WindowBatch,
    ) -> Result<ArrayView2<'a, f32>, ForwardError> {
        let l = batch.insample_y.ncols();
        if l != self.input_size {
            return Err(shape!(
                "the model expects {} insample steps, got {l}",
                self.input_size
            ));
        }
        Ok(batch.insample_y.view())
    }

    /// The encoder's and decoder's marks, [batch, input_size, F] and
    /// [batch, label_len + h, F], when the model has future exog.
    pub fn marks(&self, batch: &WindowBatch) -> Result<Option<Marks>, ForwardError> {
        if self.n_futr == 0 {
            return Ok(None);
        }
        let t = self.input_size + self.h;
        let fx = batch
            .futr_exog
            .as_ref()
            .ok_or_else(|| shape!("the model needs futr_exog"))?;
        let (b, steps, f) = fx.dim();
        if (steps, f) != (t, self.n_futr) || b != batch.insample_y.nrows() {
            return Err(shape!(
                "futr_exog is {:?}, the model needs [{}, {t}, {}]",
                fx.dim(),
                batch.insample_y.nrows(),
                self.n_futr
            ));
        }
        let enc = fx.slice_axis(Axis(1), Slice::from(..self.input_size));
        let dec = fx.slice_axis(Axis(1), Slice::from(t - self.decoder_len()..));
        Ok(Some((enc.to_owned(), dec.to_owned())))
    }

    /// The last `label_len` steps of each row of x [batch, input_size], then
    /// `h` steps of `fill(row)`: [batch, label_len + h].
    pub fn label_then(&self, x: ArrayView2<f32>, fill: impl Fn(usize) -> f32) -> Array2<f32> {
        let from = self.input_size - self.label_len.min(self.input_size);
        Array2::from_shape_fn((x.nrows(), self.decoder_len()), |(i, s)| {
            if s < self.label_len {
                x[[i, from + s]]
            } else {
                fill(i)
            }
        })
    }
}

impl Seq2Seq {
    /// Embeds the window y [batch, input_size] and the decoder's values
    /// [batch, label_len + h], each with its marks: [batch, steps, hidden].
    pub fn embed(
        &self,
        batch: &WindowBatch,
        y: Array2<f32>,
        dec: Array2<f32>,
        embeddings: &Embeddings,
    ) -> Result<(Array3<f32>, Array3<f32>), ForwardError> {
        let marks = self.marks(batch)?;
        let (enc_marks, dec_marks) = match &marks {
            Some((e, d)) => (Some(e.view()), Some(d.view())),
            None => (None, None),
        };
        Ok((
            embeddings.enc.forward(channel(y).view(), enc_marks)?,
            embeddings.dec.forward(channel(dec).view(), dec_marks)?,
        ))
    }

    /// `window(i, encoder input, decoder input)` gives window i's decoder
    /// output [label_len + h, outputs]; its last `h` steps of every window
    /// are the forecast [batch, h, outputs].
    pub fn per_window(
        &self,
        enc: &Array3<f32>,
        dec: &Array3<f32>,
        outputs: usize,
        window: impl Fn(usize, ArrayView2<f32>, ArrayView2<f32>) -> Result<Array2<f32>, ForwardError>,
    ) -> Result<Array3<f32>, ForwardError> {
        let b = enc.dim().0;
        let mut out = Array3::<f32>::zeros((b, self.h, outputs));
        for i in 0..b {
            let y = window(i, enc.index_axis(Axis(0), i), dec.index_axis(Axis(0), i))?;
            if y.dim() != (self.decoder_len(), outputs) {
                return Err(shape!(
                    "decoder output {:?} is not [{}, {outputs}]",
                    y.dim(),
                    self.decoder_len()
                ));
            }
            out.index_axis_mut(Axis(0), i)
                .assign(&y.slice_axis(Axis(0), Slice::from(self.label_len..)));
        }
        Ok(out)
    }
}

/// VanillaTransformer's and Informer's pass around their encoders: both
/// sides embedded with positions, the `decoder` (`decoder_layers`
/// `TransDecoderLayer`s, its norm and projection) over the encoder's memory.
pub struct TransSeq2Seq {
    seq: Seq2Seq,
    embeddings: Embeddings,
    decoder: TransDecoder,
    outputs: usize,
    exclude_insample_y: bool,
}

impl TransSeq2Seq {
    pub fn load(
        store: &TensorStore,
        spec: &ModelSpec,
        seq: Seq2Seq,
        shape: TransShape,
        mode: DecoderAttention,
        decoder_layers: usize,
    ) -> Result<TransSeq2Seq, BuildError> {
        let TransShape {
            hidden,
            heads,
            ff_hidden,
            activation,
        } = shape;
        Ok(TransSeq2Seq {
            embeddings: seq.embeddings(store, hidden, true)?,
            decoder: TransDecoder::load(
                store,
                "decoder",
                decoder_layers,
                hidden,
                spec.n_outputs(),
                |p| TransDecoderLayer::load(store, p, hidden, heads, ff_hidden, activation, mode),
            )?,
            seq,
            outputs: spec.n_outputs(),
            exclude_insample_y: spec.exclude_insample_y,
        })
    }

    /// The encoder reads the window (zeroed for `exclude_insample_y`), the
    /// decoder its last `label_len` values then zeros, each embedded;
    /// `encode` maps a window's encoder input to the decoder's memory.
    pub fn forward(
        &self,
        batch: &WindowBatch,
        encode: impl Fn(ArrayView2<f32>) -> Result<Array2<f32>, ForwardError>,
    ) -> Result<Array3<f32>, ForwardError> {
        self.seq.insample(batch)?;
        let y = insample_y(batch, self.exclude_insample_y);
        let dec = self.seq.label_then(y.view(), |_| 0.0);
        let (enc, dec) = self.seq.embed(batch, y, dec, &self.embeddings)?;
        self.seq.per_window(&enc, &dec, self.outputs, |_, e, d| {
            let memory = encode(e)?;
            self.decoder.forward(d, memory.view())
        })
    }
}

/// One channel per step: [batch, time] -> [batch, time, 1].
pub fn channel(x: Array2<f32>) -> Array3<f32> {
    x.insert_axis(Axis(2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn decoder_reads_the_window_end_then_the_horizon() {
        let s = Seq2Seq {
            input_size: 4,
            h: 2,
            label_len: 2,
            n_futr: 1,
        };
        let y = array![[1.0f32, 2.0, 3.0, 4.0]];
        assert_eq!(
            s.label_then(y.view(), |_| 0.0),
            array![[3.0f32, 4.0, 0.0, 0.0]]
        );
        let batch = WindowBatch {
            insample_y: y.clone(),
            insample_mask: Array2::ones((1, 4)),
            hist_exog: None,
            futr_exog: Some(Array3::from_shape_fn((1, 6, 1), |(_, t, _)| t as f32)),
            stat_exog: None,
        };
        let (enc, dec) = s.marks(&batch).unwrap().unwrap();
        assert_eq!(
            enc.iter().copied().collect::<Vec<_>>(),
            vec![0.0, 1.0, 2.0, 3.0]
        );
        assert_eq!(
            dec.iter().copied().collect::<Vec<_>>(),
            vec![2.0, 3.0, 4.0, 5.0]
        );
    }
}
