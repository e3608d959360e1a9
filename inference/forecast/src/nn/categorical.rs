//! Categorical exogenous features as NeuralForecast 3.3 feeds them
//! (`BaseModel._embed_stream`): in each exogenous block the continuous
//! columns come first, in list order, then every categorical column's
//! embedding row, in `cat_exog_list` order. Index 0 (a value not seen at fit,
//! and the zeros that pad a short history) reads the mean of the learned
//! rows, not its own untrained row (`_lookup_embedding`).
//!
//! Applied once to the batch before any model's forward pass, so every model
//! that takes categoricals gets them the same way.

use crate::forecaster::{invalid, shape, BuildError, ForwardError, WindowBatch};
use crate::spec::{CatFeature, ModelSpec};
use crate::tensors::TensorStore;
use ndarray::{Array1, Array2, Array3, Axis, Slice};

/// One `nn.Embedding(cardinality + 1, dim)` and its out-of-vocabulary row.
#[derive(Debug, Clone)]
struct Table {
    pos: usize,
    weight: Array2<f32>,
    oov: Array1<f32>,
}

/// The embeddings of one exogenous block (hist, futr or stat).
#[derive(Debug, Clone)]
struct Block {
    n_in: usize,
    continuous: Vec<usize>,
    tables: Vec<Table>,
    n_out: usize,
}

impl Block {
    fn load(
        store: &TensorStore,
        prefix: &str,
        n_in: usize,
        cats: &[CatFeature],
    ) -> Result<Option<Block>, BuildError> {
        if cats.is_empty() {
            return Ok(None);
        }
        let mut tables = Vec::with_capacity(cats.len());
        for (i, c) in cats.iter().enumerate() {
            let weight = store.array2(&format!("{prefix}.{i}.weight"), c.cardinality + 1, c.dim)?;
            let oov = weight
                .slice_axis(Axis(0), Slice::from(1..))
                .mean_axis(Axis(0))
                .ok_or_else(|| invalid!("{prefix}.{i}.weight has no learned rows"))?;
            tables.push(Table {
                pos: c.pos,
                weight,
                oov,
            });
        }
        let continuous: Vec<usize> = (0..n_in)
            .filter(|p| !cats.iter().any(|c| c.pos == *p))
            .collect();
        let n_out = continuous.len() + cats.iter().map(|c| c.dim).sum::<usize>();
        Ok(Some(Block {
            n_in,
            continuous,
            tables,
            n_out,
        }))
    }

    /// One step's raw values (categoricals as their vocabulary index) into
    /// `out` (`n_out` wide).
    fn embed_into(&self, x: &[f32], out: &mut [f32]) -> Result<(), ForwardError> {
        for (o, &c) in out.iter_mut().zip(&self.continuous) {
            *o = x.get(c).copied().unwrap_or(0.0);
        }
        let mut k = self.continuous.len();
        for t in &self.tables {
            let v = x.get(t.pos).copied().unwrap_or(0.0);
            // torch's `.long()` truncates; the pipeline only writes whole numbers.
            let idx = v as i64;
            let row = match idx {
                0 => t.oov.as_slice(),
                i if i > 0 && (i as usize) < t.weight.nrows() => {
                    t.weight.row(i as usize).to_slice()
                }
                _ => return Err(shape!("category index {v} outside the embedding table")),
            }
            .ok_or_else(|| shape!("embedding table is not contiguous"))?;
            let dst = out
                .get_mut(k..k + row.len())
                .ok_or_else(|| shape!("embedding output is narrower than its tables"))?;
            dst.copy_from_slice(row);
            k += row.len();
        }
        Ok(())
    }

    /// Every row of `x` (`n_in` wide, contiguous) embedded into `out`
    /// (`n_out` wide).
    fn embed_rows(&self, x: &[f32], out: &mut [f32], what: &str) -> Result<(), ForwardError> {
        let (n_in, n_out) = (self.n_in.max(1), self.n_out.max(1));
        if !x.len().is_multiple_of(n_in) || x.len() / n_in * n_out != out.len() {
            return Err(shape!(
                "{what} block has {} values, not rows of the model's {} columns",
                x.len(),
                self.n_in
            ));
        }
        for (xs, os) in x.chunks_exact(n_in).zip(out.chunks_exact_mut(n_out)) {
            self.embed_into(xs, os)?;
        }
        Ok(())
    }

    fn embed3(&self, x: &Array3<f32>) -> Result<Array3<f32>, ForwardError> {
        let (b, t, n) = x.dim();
        if n != self.n_in {
            return Err(shape!(
                "exogenous block has {n} columns, the model lists {}",
                self.n_in
            ));
        }
        let mut out = Array3::<f32>::zeros((b, t, self.n_out));
        let src = x.as_standard_layout();
        self.embed_rows(
            src.as_slice()
                .ok_or_else(|| shape!("exogenous block is not contiguous"))?,
            out.as_slice_mut()
                .ok_or_else(|| shape!("embedding output is not contiguous"))?,
            "exogenous",
        )?;
        Ok(out)
    }

    fn embed2(&self, x: &Array2<f32>) -> Result<Array2<f32>, ForwardError> {
        let (b, n) = x.dim();
        if n != self.n_in {
            return Err(shape!(
                "static block has {n} columns, the model lists {}",
                self.n_in
            ));
        }
        let mut out = Array2::<f32>::zeros((b, self.n_out));
        let src = x.as_standard_layout();
        self.embed_rows(
            src.as_slice()
                .ok_or_else(|| shape!("static block is not contiguous"))?,
            out.as_slice_mut()
                .ok_or_else(|| shape!("embedding output is not contiguous"))?,
            "static",
        )?;
        Ok(out)
    }
}

/// A model's categorical embeddings (`hist_cat_embeddings`,
/// `futr_cat_embeddings`, `stat_cat_embeddings`).
#[derive(Debug, Clone)]
pub struct CategoricalEmbeddings {
    hist: Option<Block>,
    futr: Option<Block>,
    stat: Option<Block>,
}

impl CategoricalEmbeddings {
    /// `None` when the model has no categorical column.
    pub fn load(spec: &ModelSpec, store: &TensorStore) -> Result<Option<Self>, BuildError> {
        let c = &spec.categorical;
        if c.is_empty() {
            return Ok(None);
        }
        Ok(Some(CategoricalEmbeddings {
            hist: Block::load(store, "hist_cat_embeddings", spec.hist_exog.len(), &c.hist)?,
            futr: Block::load(store, "futr_cat_embeddings", spec.futr_exog.len(), &c.futr)?,
            stat: Block::load(store, "stat_cat_embeddings", spec.stat_exog.len(), &c.stat)?,
        }))
    }

    /// What a raw hist row of zeros becomes (the recurrent decoders feed it
    /// past the window): zeros, and each categorical column's unseen row.
    pub fn hist_pad(&self) -> Option<Array1<f32>> {
        let b = self.hist.as_ref()?;
        let mut out = Array1::<f32>::zeros(b.n_out);
        let zeros = Array1::<f32>::zeros(b.n_in);
        b.embed_into(zeros.as_slice()?, out.as_slice_mut()?).ok()?;
        Some(out)
    }

    /// The batch as the network reads it: categorical indices replaced by
    /// their embeddings.
    pub fn apply(&self, batch: &WindowBatch) -> Result<WindowBatch, ForwardError> {
        let three = |block: &Option<Block>, x: &Option<Array3<f32>>| match (block, x) {
            (Some(b), Some(x)) => b.embed3(x).map(Some),
            (_, x) => Ok(x.clone()),
        };
        Ok(WindowBatch {
            insample_y: batch.insample_y.clone(),
            insample_mask: batch.insample_mask.clone(),
            hist_exog: three(&self.hist, &batch.hist_exog)?,
            futr_exog: three(&self.futr, &batch.futr_exog)?,
            stat_exog: match (&self.stat, &batch.stat_exog) {
                (Some(b), Some(x)) => Some(b.embed2(x)?),
                (_, x) => x.clone(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn block() -> Block {
        // Columns [cat, cont]; a table of 2 categories (+ the OOV row 0), dim 2.
        Block {
            n_in: 2,
            continuous: vec![1],
            tables: vec![Table {
                pos: 0,
                weight: array![[100.0f32, 100.0], [1.0, 2.0], [3.0, 6.0]],
                oov: array![2.0f32, 4.0],
            }],
            n_out: 3,
        }
    }

    #[test]
    fn continuous_first_then_embeddings_and_unseen_reads_the_mean() {
        let x = array![[[1.0f32, 0.5], [2.0, -1.0], [0.0, 7.0]]];
        let out = block().embed3(&x).unwrap();
        assert_eq!(
            out,
            array![[[0.5f32, 1.0, 2.0], [-1.0, 3.0, 6.0], [7.0, 2.0, 4.0]]]
        );
        assert!(block().embed3(&array![[[3.0f32, 0.0]]]).is_err());
        assert!(block().embed2(&array![[1.0f32]]).is_err());
    }
}
