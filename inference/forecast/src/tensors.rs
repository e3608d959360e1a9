//! The tensors of one `<alias>_<n>.safetensors` file, owned as f32, with the
//! checks that keep a broken file from ever reaching a forward pass.

use ndarray::{Array1, Array2, ArrayD, IxDyn};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;

/// Why a weights file, or one tensor of it, cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    #[error("invalid safetensors header: {0}")]
    Header(#[source] safetensors::SafeTensorError),
    #[error("invalid safetensors file: {0}")]
    File(#[source] safetensors::SafeTensorError),
    /// The layout contradicts the header (sizes, offsets, trailing bytes).
    #[error("{0}")]
    Layout(String),
    #[error("tensor '{name}' has dtype {dtype}; only F32 (and C64) are supported")]
    Dtype { name: String, dtype: String },
    #[error("tensor '{name}' holds a non-finite value at flat index {index}")]
    NonFinite { name: String, index: usize },
    #[error("tensor '{0}' is missing")]
    Missing(String),
    #[error("tensor '{name}' has shape {got:?}, the hyperparameters need {want:?}")]
    Shape {
        name: String,
        got: Vec<usize>,
        want: Vec<usize>,
    },
    #[error("tensor '{name}': {source}")]
    Array {
        name: String,
        #[source]
        source: ndarray::ShapeError,
    },
    #[error("metadata 'shared' is not a map of tied tensor names: {0}")]
    Shared(#[source] serde_json::Error),
}

#[derive(Debug, Clone)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// All tensors of one model file plus its `__metadata__` header.
#[derive(Debug, Default)]
pub struct TensorStore {
    tensors: HashMap<String, Tensor>,
    /// Tied parameters NeuralForecast saved once (`shared` in the metadata):
    /// dropped name -> the name that holds the data.
    aliases: HashMap<String, String>,
    pub metadata: HashMap<String, String>,
    pub bytes: usize,
}

impl TensorStore {
    /// Parses a safetensors buffer. Every tensor must be F32 (or C64, kept as
    /// f32 (re, im) pairs under its shape plus a last axis of 2, as
    /// `torch.view_as_real` lays it out: FEDformer's Fourier weights) and
    /// finite, except BatchNorm's I64 `num_batches_tracked`, a training
    /// counter eval never reads, the I64 `quantile_layer.integers` of an
    /// implicit-quantile loss (`arange(cos_embedding_dim)`, rebuilt by the
    /// head), and F32 `._mask` buffers (TFT's causal `triu(-inf)` attention
    /// mask, which the forward pass builds itself): all skipped.
    pub fn from_bytes(buf: &[u8]) -> Result<TensorStore, TensorError> {
        layout_check(buf)?;
        let (_, meta) = SafeTensors::read_metadata(buf).map_err(TensorError::Header)?;
        let st = SafeTensors::deserialize(buf).map_err(TensorError::File)?;
        let mut tensors = HashMap::new();
        let mut bytes = 0;
        for (name, view) in st.iter() {
            if (name.ends_with(".num_batches_tracked") && view.dtype() == Dtype::I64)
                || (name.ends_with(".quantile_layer.integers") && view.dtype() == Dtype::I64)
                || (name.ends_with("._mask") && view.dtype() == Dtype::F32)
            {
                continue;
            }
            let mut shape = view.shape().to_vec();
            match view.dtype() {
                Dtype::F32 => {}
                Dtype::C64 => shape.push(2),
                other => {
                    return Err(TensorError::Dtype {
                        name: name.to_string(),
                        dtype: format!("{other:?}"),
                    })
                }
            }
            let raw = view.data();
            let data: Vec<f32> = raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            bytes += admit(&mut tensors, name, shape, data)?;
        }
        let metadata = meta.metadata().clone().unwrap_or_default();
        Ok(TensorStore {
            aliases: tied_names(&metadata)?,
            tensors,
            metadata,
            bytes,
        })
    }

    /// A store from F32 tensors read elsewhere (a pre-3.3 checkpoint's
    /// state_dict), under the same rules as a safetensors file: finite
    /// values only, `._mask` buffers skipped.
    pub(crate) fn from_f32(
        named: Vec<(String, Vec<usize>, Vec<f32>)>,
    ) -> Result<TensorStore, TensorError> {
        let mut tensors = HashMap::new();
        let mut bytes = 0;
        for (name, shape, data) in named {
            if name.ends_with("._mask") {
                continue;
            }
            bytes += admit(&mut tensors, &name, shape, data)?;
        }
        Ok(TensorStore {
            tensors,
            bytes,
            ..TensorStore::default()
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }

    /// A tensor by its state_dict name, following ties to the saved copy.
    fn lookup(&self, name: &str) -> Option<&Tensor> {
        let name = self.aliases.get(name).map_or(name, String::as_str);
        self.tensors.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// A tensor that must exist with exactly this shape.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<&Tensor, TensorError> {
        let t = self
            .lookup(name)
            .ok_or_else(|| TensorError::Missing(name.to_string()))?;
        if t.shape != shape {
            return Err(TensorError::Shape {
                name: name.to_string(),
                got: t.shape.clone(),
                want: shape.to_vec(),
            });
        }
        Ok(t)
    }

    pub fn shape_of(&self, name: &str) -> Result<&[usize], TensorError> {
        self.lookup(name)
            .map(|t| t.shape.as_slice())
            .ok_or_else(|| TensorError::Missing(name.to_string()))
    }

    pub fn array1(&self, name: &str, len: usize) -> Result<Array1<f32>, TensorError> {
        Ok(Array1::from(self.get(name, &[len])?.data.clone()))
    }

    pub fn array2(&self, name: &str, rows: usize, cols: usize) -> Result<Array2<f32>, TensorError> {
        let t = self.get(name, &[rows, cols])?;
        Array2::from_shape_vec((rows, cols), t.data.clone()).map_err(|source| TensorError::Array {
            name: name.to_string(),
            source,
        })
    }

    pub fn array_dyn(&self, name: &str, shape: &[usize]) -> Result<ArrayD<f32>, TensorError> {
        let t = self.get(name, shape)?;
        ArrayD::from_shape_vec(IxDyn(shape), t.data.clone()).map_err(|source| TensorError::Array {
            name: name.to_string(),
            source,
        })
    }
}

/// Keeps one tensor after checking its values; returns the bytes it holds.
fn admit(
    tensors: &mut HashMap<String, Tensor>,
    name: &str,
    shape: Vec<usize>,
    data: Vec<f32>,
) -> Result<usize, TensorError> {
    if let Some(i) = data.iter().position(|v| !v.is_finite()) {
        return Err(TensorError::NonFinite {
            name: name.to_string(),
            index: i,
        });
    }
    let bytes = data.len() * 4;
    tensors.insert(name.to_string(), Tensor { shape, data });
    Ok(bytes)
}

/// The safetensors layout checked with messages that say what is wrong (the
/// crate's own errors do not name the tensor or the sizes): the header fits
/// the file, every tensor's data_offsets span matches dtype x shape, and the
/// data section is exactly as long as the header says.
fn layout_check(buf: &[u8]) -> Result<(), TensorError> {
    let Some(len_bytes) = buf.get(..8) else {
        return Err(TensorError::Layout(format!(
            "truncated: {} bytes, shorter than the 8-byte safetensors header length",
            buf.len()
        )));
    };
    let mut n = [0u8; 8];
    n.copy_from_slice(len_bytes);
    let header_len = u64::from_le_bytes(n);
    let available = buf.len() as u64 - 8;
    if header_len > available {
        return Err(TensorError::Layout(format!(
            "truncated or corrupt: the header length field says {header_len} bytes, the file holds {available} after it"
        )));
    }
    let header = &buf[8..8 + header_len as usize];
    let Ok(serde_json::Value::Object(entries)) =
        serde_json::from_slice::<serde_json::Value>(header)
    else {
        // The crate reports the JSON error itself.
        return Ok(());
    };
    let data_len = available - header_len;
    let mut end_max = 0u64;
    for (name, info) in &entries {
        if name == "__metadata__" {
            continue;
        }
        let dtype = info.get("dtype").and_then(|d| d.as_str()).unwrap_or("?");
        let shape: Option<Vec<u64>> = info
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(|d| d.as_u64()).collect());
        let offsets: Option<Vec<u64>> = info
            .get("data_offsets")
            .and_then(|s| s.as_array())
            .and_then(|a| a.iter().map(|d| d.as_u64()).collect());
        let (Some(shape), Some(offsets)) = (shape, offsets) else {
            return Err(TensorError::Layout(format!(
                "tensor '{name}': shape and data_offsets must be lists of non-negative integers"
            )));
        };
        let [start, end] = offsets[..] else {
            return Err(TensorError::Layout(format!(
                "tensor '{name}': data_offsets must be [start, end], got {offsets:?}"
            )));
        };
        if start > end || end > data_len {
            return Err(TensorError::Layout(format!(
                "tensor '{name}': data_offsets [{start}, {end}] lie outside the {data_len} data bytes of the file{}",
                if end > data_len { " (truncated?)" } else { "" }
            )));
        }
        let width: u64 = match dtype {
            "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
            "I16" | "U16" | "F16" | "BF16" => 2,
            "I32" | "U32" | "F32" => 4,
            "I64" | "U64" | "F64" | "C64" => 8,
            _ => 0,
        };
        let elements = shape.iter().try_fold(1u64, |acc, d| acc.checked_mul(*d));
        match elements.and_then(|e| e.checked_mul(width)) {
            Some(want) if width > 0 && want != end - start => {
                return Err(TensorError::Layout(format!(
                    "tensor '{name}': dtype {dtype} x shape {shape:?} is {want} bytes, its data_offsets span {} bytes",
                    end - start
                )))
            }
            None => {
                return Err(TensorError::Layout(format!(
                    "tensor '{name}': dtype {dtype} x shape {shape:?} overflows"
                )))
            }
            _ => {}
        }
        end_max = end_max.max(end);
    }
    if end_max < data_len {
        return Err(TensorError::Layout(format!(
            "{} bytes after the last tensor's data: not a file safetensors wrote",
            data_len - end_max
        )));
    }
    Ok(())
}

#[cfg(test)]
impl TensorStore {
    /// A store holding the given F32 tensors (unit tests of the blocks).
    pub(crate) fn from_tensors(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> TensorStore {
        TensorStore {
            tensors: tensors
                .iter()
                .map(|(n, shape, data)| {
                    (
                        n.to_string(),
                        Tensor {
                            shape: shape.clone(),
                            data: data.clone(),
                        },
                    )
                })
                .collect(),
            ..TensorStore::default()
        }
    }
}

/// `shared` metadata ({"kept": ["dropped", ...]}, written by NeuralForecast's
/// `save_tensors` because safetensors refuses tied tensors) as dropped -> kept.
fn tied_names(metadata: &HashMap<String, String>) -> Result<HashMap<String, String>, TensorError> {
    let Some(text) = metadata.get("shared") else {
        return Ok(HashMap::new());
    };
    let map: HashMap<String, Vec<String>> =
        serde_json::from_str(text).map_err(TensorError::Shared)?;
    Ok(map
        .into_iter()
        .flat_map(|(kept, dropped)| dropped.into_iter().map(move |d| (d, kept.clone())))
        .collect())
}
