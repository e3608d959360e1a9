//! A PyTorch zip checkpoint (`<alias>_<n>.ckpt` of NeuralForecast before
//! 3.3): `<archive>/data.pkl`, read by [`super::pickle`], plus one entry per
//! tensor storage under `<archive>/data/<key>`.
//!
//! Every size the pickle declares is checked against the bytes the archive
//! really holds before anything is allocated for it.

use super::pickle::{self, PickleError, StorageDtype, TensorRef, Value};
use std::collections::HashMap;
use std::io::{Cursor, Read};

/// Largest `data.pkl` read (NeuralForecast's are a few KB).
const MAX_PICKLE_BYTES: u64 = 64 * 1024 * 1024;
/// Most elements one tensor view may have (a stride-0 view can declare far
/// more than its storage holds).
const MAX_TENSOR_ELEMENTS: u64 = 1 << 28;

/// Why a checkpoint was refused.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("not a PyTorch zip checkpoint: {0}")]
    NotZip(String),
    #[error("data.pkl {0}")]
    Pickle(#[from] PickleError),
    #[error("{0}")]
    Layout(String),
}

/// A read checkpoint: the pickled object, and its archive for the storages.
pub struct Checkpoint<'a> {
    pub root: Value,
    archive: zip::ZipArchive<Cursor<&'a [u8]>>,
    prefix: String,
    storages: HashMap<String, Vec<u8>>,
}

impl<'a> Checkpoint<'a> {
    pub fn read(bytes: &'a [u8]) -> Result<Checkpoint<'a>, CheckpointError> {
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
            .map_err(|e| CheckpointError::NotZip(e.to_string()))?;
        let pickles: Vec<String> = archive
            .file_names()
            .filter_map(Result::ok)
            .filter(|n| n == "data.pkl" || n.ends_with("/data.pkl"))
            .map(|n| n.into_owned())
            .collect();
        let [data_pkl] = pickles.as_slice() else {
            return Err(CheckpointError::Layout(format!(
                "the archive holds {} data.pkl entries, not one",
                pickles.len()
            )));
        };
        let prefix = data_pkl.trim_end_matches("data.pkl").to_string();
        let data = read_entry(&mut archive, data_pkl, MAX_PICKLE_BYTES)?;
        let root = pickle::read(&data, true)?;
        Ok(Checkpoint {
            root,
            archive,
            prefix,
            storages: HashMap::new(),
        })
    }

    /// A tensor's elements as f32, from its storage's bytes.
    pub fn f32_values(&mut self, name: &str, t: &TensorRef) -> Result<Vec<f32>, CheckpointError> {
        let width = t.dtype.width();
        let want = t.numel.checked_mul(width).ok_or_else(|| {
            CheckpointError::Layout(format!("tensor '{name}': storage size overflows"))
        })?;
        if !self.storages.contains_key(&t.key) {
            let entry = format!("{}data/{}", self.prefix, t.key);
            let raw = read_entry(&mut self.archive, &entry, want)?;
            if raw.len() as u64 != want {
                return Err(CheckpointError::Layout(format!(
                    "tensor '{name}': storage '{}' holds {} bytes, its header declares {} elements of {width} bytes ({want} bytes)",
                    t.key,
                    raw.len(),
                    t.numel
                )));
            }
            self.storages.insert(t.key.clone(), raw);
        }
        let raw = self
            .storages
            .get(&t.key)
            .ok_or_else(|| CheckpointError::Layout(format!("storage '{}' vanished", t.key)))?;
        let idx = view_indices(name, t)?;
        let at = |i: u64| -> [u8; 8] {
            let s = (i * width) as usize;
            let mut a = [0u8; 8];
            a[..width as usize].copy_from_slice(&raw[s..s + width as usize]);
            a
        };
        Ok(match t.dtype {
            StorageDtype::F32 => idx
                .into_iter()
                .map(|i| {
                    let a = at(i);
                    f32::from_le_bytes([a[0], a[1], a[2], a[3]])
                })
                .collect(),
            // Each element is an (re, im) pair, as torch.view_as_real lays it out.
            StorageDtype::C64 => idx
                .into_iter()
                .flat_map(|i| {
                    let a = at(i);
                    [
                        f32::from_le_bytes([a[0], a[1], a[2], a[3]]),
                        f32::from_le_bytes([a[4], a[5], a[6], a[7]]),
                    ]
                })
                .collect(),
            other => {
                return Err(CheckpointError::Layout(format!(
                    "tensor '{name}' has dtype {other:?}; only F32 and C64 are read"
                )))
            }
        })
    }
}

/// The storage indices of a view's elements in row-major order, after
/// checking that the view stays inside its storage.
fn view_indices(name: &str, t: &TensorRef) -> Result<Vec<u64>, CheckpointError> {
    let bad = |m: String| CheckpointError::Layout(format!("tensor '{name}': {m}"));
    let count = t
        .size
        .iter()
        .try_fold(1u64, |a, d| a.checked_mul(*d))
        .filter(|c| *c <= MAX_TENSOR_ELEMENTS)
        .ok_or_else(|| bad(format!("shape {:?} is too large", t.size)))?;
    if count == 0 {
        return Ok(vec![]);
    }
    let mut last = t.offset;
    for (d, s) in t.size.iter().zip(&t.stride) {
        last = (d - 1)
            .checked_mul(*s)
            .and_then(|x| x.checked_add(last))
            .ok_or_else(|| bad("strides overflow".into()))?;
    }
    if last >= t.numel {
        return Err(bad(format!(
            "view (offset {}, shape {:?}, stride {:?}) reaches element {last} of a storage of {}",
            t.offset, t.size, t.stride, t.numel
        )));
    }
    let mut out = Vec::with_capacity(count as usize);
    let mut pos = vec![0u64; t.size.len()];
    for _ in 0..count {
        out.push(t.offset + pos.iter().zip(&t.stride).map(|(p, s)| p * s).sum::<u64>());
        for ax in (0..pos.len()).rev() {
            pos[ax] += 1;
            if pos[ax] < t.size[ax] {
                break;
            }
            pos[ax] = 0;
        }
    }
    Ok(out)
}

/// One archive entry, refused if it declares more than `limit` bytes.
fn read_entry(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>, CheckpointError> {
    let mut f = archive
        .by_name(name)
        .map_err(|e| CheckpointError::Layout(format!("entry {name}: {e}")))?;
    if f.size() > limit {
        return Err(CheckpointError::Layout(format!(
            "entry {name} declares {} bytes, more than the {limit} expected",
            f.size()
        )));
    }
    let mut out = Vec::with_capacity(f.size() as usize);
    (&mut f)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| CheckpointError::Layout(format!("entry {name}: {e}")))?;
    Ok(out)
}
