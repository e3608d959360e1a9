//! The conformal calibration of a bundle written before NeuralForecast 3.3:
//! `configuration.pkl` holds `prediction_intervals` (a pickled
//! `neuralforecast.utils.PredictionIntervals`) and `_cs_df`, the conformity
//! scores as a pickled pandas DataFrame. Read from the pickle's structure
//! (the [`super::pickle`] reader executes nothing, pandas included) into the
//! same [`Conformal`] a 3.3 bundle gives.
//!
//! The scores are the frame's float columns (one per point-loss model, named
//! as its prediction column), in row order (series, window, step); its other
//! columns (unique_id, ds, cutoff) and its row index are not read. A frame
//! pickles its `BlockManager`: blocks of columns (a 2-D array, one row per
//! column) and the positions of those columns in the column index. The
//! layouts read, as pandas 1.x-3.x write them:
//! - pandas 1.3 and later: `BlockManager(blocks, axes)` by `REDUCE`, each
//!   block `pandas._libs.internals._unpickle_block(values, placement, ndim)`,
//!   a placement a `slice` or an index array;
//! - pandas before 1.3: the manager built by `NEWOBJ` + `BUILD` whose state
//!   is `(axes, block values, block items, {'0.14.1': {'axes': [...],
//!   'blocks': [{'values', 'mgr_locs'}]}})`;
//! - the values of a block as a numpy array (`_reconstruct` + `BUILD`, in C
//!   or Fortran order, or protocol 5's `_frombuffer`) of float64 or float32
//!   in either byte order;
//! - column names as an object array (a list of str), pandas 3's pyarrow
//!   `ArrowStringArray` (`pyarrow.lib._restore_array` of an offsets and a
//!   UTF-8 data buffer, `py_buffer(bytearray(...))`), a `chunked_array` of
//!   those, pandas' python `StringArray`, or a numpy unicode array.

use super::conformal::Calibration;
use super::format::{malformed, FormatError};
use super::format_v1::Family;
use super::pickle::{self, NdArray, Value as Py};
use crate::intervals::{Conformal, Method, Style};

/// `prediction_intervals` and `_cs_df` of a legacy `configuration.pkl`
/// (`config` is the same file as JSON, `pickled` its bytes, `writer` the
/// release that wrote the bundle, as `Format::Pickle` names it).
pub(crate) fn read(
    config: &serde_json::Value,
    pickled: Option<&[u8]>,
    h: usize,
    writer: &str,
) -> Calibration {
    match config.get("prediction_intervals") {
        None | Some(serde_json::Value::Null) => Calibration::None,
        Some(_) => match parse(pickled, h, writer) {
            Ok(c) => Calibration::Conformal(c),
            Err(e) => Calibration::Unreadable(e.to_string()),
        },
    }
}

fn parse(pickled: Option<&[u8]>, h: usize, writer: &str) -> Result<Conformal, FormatError> {
    let bytes = pickled.ok_or_else(|| malformed!("configuration.pkl is missing"))?;
    let root = pickle::read(bytes, false).map_err(|e| {
        malformed!("its conformity scores in configuration.pkl cannot be read: {e}")
    })?;
    let (method, n_windows, step_size) = settings(
        root.get("prediction_intervals")
            .ok_or_else(|| malformed!("configuration.pkl has no prediction_intervals"))?,
    )?;
    // 1.x and 2.x computed intervals their own way (see `Style::Before3`).
    let style = if Family::of_writer(writer).is_some_and(|f| f <= Family::V2) {
        Style::Before3
    } else {
        Style::Current
    };
    let cs = root
        .get("_cs_df")
        .ok_or_else(|| malformed!("configuration.pkl has no _cs_df (the conformity scores)"))?;
    let scores = frame_scores(cs).map_err(|e| {
        malformed!("its conformity scores (configuration.pkl _cs_df, a pickled pandas DataFrame) cannot be read: {e}")
    })?;
    let c = Conformal {
        method,
        style,
        n_windows,
        step_size,
        h,
        scores,
    };
    c.check()?;
    Ok(c)
}

/// `PredictionIntervals`' method, n_windows and step_size (1.x-3.0 had no
/// step_size: their calibration windows were one step apart).
fn settings(pi: &Py) -> Result<(Method, usize, usize), FormatError> {
    let state = match pi {
        Py::Object {
            class,
            state: Some(state),
            ..
        } if class.ends_with("PredictionIntervals") => state.as_ref(),
        other => {
            return Err(malformed!(
                "prediction_intervals is {}, not a PredictionIntervals with its settings",
                describe(other)
            ))
        }
    };
    let positive = |key: &str| match state.get(key) {
        Some(Py::Int(v)) if *v > 0 => Ok(Some(*v as usize)),
        None => Ok(None),
        Some(other) => Err(malformed!(
            "prediction_intervals.{key} is {}, not a positive integer",
            describe(other)
        )),
    };
    let method = Method::parse(
        state
            .get("method")
            .and_then(Py::as_str)
            .ok_or_else(|| malformed!("prediction_intervals.method is not a string"))?,
    )?;
    let n_windows = positive("n_windows")?
        .ok_or_else(|| malformed!("prediction_intervals has no n_windows"))?;
    let step_size = positive("step_size")?.unwrap_or(1);
    Ok((method, n_windows, step_size))
}

/// A value, named for a message.
fn describe(v: &Py) -> String {
    match v {
        Py::Object { class, .. } => format!("a {class}"),
        Py::Class(c) => format!("the class {c}"),
        other => format!("a {}", other.kind()),
    }
}

/// One block of a `BlockManager`: its values and where its columns are.
struct Block<'a> {
    values: &'a Py,
    placement: &'a Py,
}

/// Name and values of every float column of a pickled DataFrame, in column
/// order.
pub(crate) fn frame_scores(df: &Py) -> Result<Vec<(String, Vec<f64>)>, FormatError> {
    let state = match df {
        Py::Object {
            class,
            state: Some(state),
            ..
        } if class.ends_with(".DataFrame") => state.as_ref(),
        other => return Err(malformed!("it is {}, not a DataFrame", describe(other))),
    };
    let mgr = state
        .get("_mgr")
        .or_else(|| state.get("_data"))
        .ok_or_else(|| malformed!("the DataFrame has no block manager (_mgr)"))?;
    let (axes, blocks) = manager(mgr)?;
    let names = column_names(
        axes.first()
            .ok_or_else(|| malformed!("the block manager has no axes"))?,
    )?;
    let mut by_column: Vec<Option<Vec<f64>>> = vec![None; names.len()];
    for b in blocks {
        // Object, datetime and extension blocks (unique_id, ds, cutoff)
        // are not scores.
        let Some(rows) = float_rows(b.values)? else {
            continue;
        };
        let at = placement(b.placement, rows.len())?;
        for (i, row) in at.into_iter().zip(rows) {
            let slot = by_column.get_mut(i).ok_or_else(|| {
                malformed!("a block is placed at column {i} of {} columns", names.len())
            })?;
            if slot.replace(row).is_some() {
                return Err(malformed!("two blocks hold column {i}"));
            }
        }
    }
    Ok(names
        .into_iter()
        .zip(by_column)
        .filter_map(|(name, v)| v.map(|v| (name, v)))
        .collect())
}

/// The items of a pickled list or tuple.
fn list<'a>(v: &'a Py, what: &str) -> Result<Vec<&'a Py>, FormatError> {
    match v {
        Py::List(items) => Ok(items.iter().collect()),
        other => Err(malformed!("{what} is {}, not a list", describe(other))),
    }
}

/// The axes (columns first) and blocks of a pickled `BlockManager`.
fn manager(mgr: &Py) -> Result<(Vec<&Py>, Vec<Block<'_>>), FormatError> {
    let Py::Object { class, args, state } = mgr else {
        return Err(malformed!(
            "the DataFrame's data is {}, not a BlockManager",
            describe(mgr)
        ));
    };
    if !class.ends_with(".BlockManager") {
        return Err(malformed!(
            "the DataFrame's data is a {class}, not a BlockManager"
        ));
    }
    match state.as_deref() {
        // pandas < 1.3: NEWOBJ + BUILD with __getstate__'s 4-tuple.
        Some(st) => {
            let extra = match st {
                Py::List(parts) => parts.get(3).and_then(|e| e.get("0.14.1")),
                _ => None,
            }
            .ok_or_else(|| malformed!("the block manager's state has no '0.14.1' entry"))?;
            let axes = list(
                extra
                    .get("axes")
                    .ok_or_else(|| malformed!("the block manager has no axes"))?,
                "its axes",
            )?;
            let mut blocks = Vec::new();
            for b in list(
                extra
                    .get("blocks")
                    .ok_or_else(|| malformed!("the block manager has no blocks"))?,
                "its blocks",
            )? {
                blocks.push(Block {
                    values: b
                        .get("values")
                        .ok_or_else(|| malformed!("a block without values"))?,
                    placement: b
                        .get("mgr_locs")
                        .ok_or_else(|| malformed!("a block without mgr_locs"))?,
                });
            }
            Ok((axes, blocks))
        }
        // pandas >= 1.3: BlockManager(blocks, axes) by REDUCE.
        None => {
            let [blocks, axes] = args.as_slice() else {
                return Err(malformed!(
                    "BlockManager rebuilt from {} arguments, not (blocks, axes)",
                    args.len()
                ));
            };
            let mut out = Vec::new();
            for b in list(blocks, "its blocks")? {
                match b {
                    Py::Object { class, args, .. } if class.ends_with("._unpickle_block") => {
                        let [values, placement, ..] = args.as_slice() else {
                            return Err(malformed!("_unpickle_block without (values, placement)"));
                        };
                        out.push(Block { values, placement });
                    }
                    other => return Err(malformed!("a block is {}", describe(other))),
                }
            }
            Ok((list(axes, "its axes")?, out))
        }
    }
}

/// The labels of a column index, as text.
fn column_names(index: &Py) -> Result<Vec<String>, FormatError> {
    match index {
        // pandas.core.indexes.base._new_Index(cls, {'data': ..., 'name': ...})
        Py::Object { class, args, .. } if class.ends_with("._new_Index") => {
            let data = args
                .get(1)
                .and_then(|d| d.get("data"))
                .ok_or_else(|| malformed!("the column index has no data"))?;
            strings(data).map_err(|e| malformed!("column names: {e}"))
        }
        other => Err(malformed!("the column index is {}", describe(other))),
    }
}

/// The items of a pickled array of text.
fn strings(v: &Py) -> Result<Vec<String>, FormatError> {
    match v {
        // An object ndarray.
        Py::List(items) => items
            .iter()
            .map(|x| match x {
                Py::Str(s) => Ok(s.clone()),
                Py::Int(i) => Ok(i.to_string()),
                other => Err(malformed!("a label is {}", describe(other))),
            })
            .collect(),
        Py::Array(a) => unicode_array(a),
        Py::Object { class, args, state } => {
            let short = class.rsplit('.').next().unwrap_or(class);
            match short {
                // pandas' pyarrow-backed strings: the arrow array is kept
                // as `_pa_array` (`_data` before pandas 2.0).
                "ArrowStringArray" | "ArrowStringArrayNumpySemantics" | "ArrowExtensionArray" => {
                    let st = state
                        .as_deref()
                        .ok_or_else(|| malformed!("an arrow string array without state"))?;
                    arrow_strings(
                        st.get("_pa_array")
                            .or_else(|| st.get("_data"))
                            .ok_or_else(|| malformed!("an arrow string array without _pa_array"))?,
                    )
                }
                // pandas' python StringArray: (ndarray, dtype, attributes).
                "__pyx_unpickle_NDArrayBacked" => match state.as_deref() {
                    Some(Py::List(parts)) if !parts.is_empty() => strings(&parts[0]),
                    _ => Err(malformed!("{class} without its array")),
                },
                "_restore_array" | "chunked_array" => arrow_strings(v),
                _ => Err(malformed!("held as a {class} ({} arguments)", args.len())),
            }
        }
        other => Err(malformed!("held as {}", describe(other))),
    }
}

/// A numpy `U<n>` array: UTF-32 code units, NUL padded.
fn unicode_array(a: &NdArray) -> Result<Vec<String>, FormatError> {
    let big = a.dtype.starts_with('>');
    let bare = a.dtype.trim_start_matches(['<', '>', '=', '|']);
    let chars: usize = bare
        .strip_prefix('U')
        .and_then(|n| n.parse().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| malformed!("an array of dtype {}, not text", a.dtype))?;
    let width = chars * 4;
    if !a.data.len().is_multiple_of(width) {
        return Err(malformed!("a unicode array of partial items"));
    }
    a.data
        .chunks_exact(width)
        .map(|item| {
            let mut s = String::new();
            for c in item.chunks_exact(4) {
                let mut u = [c[0], c[1], c[2], c[3]];
                if big {
                    u.reverse();
                }
                match u32::from_le_bytes(u) {
                    0 => break,
                    cp => s.push(
                        char::from_u32(cp)
                            .ok_or_else(|| malformed!("a label that is not Unicode"))?,
                    ),
                }
            }
            Ok(s)
        })
        .collect()
}

/// The strings of a pickled pyarrow string array (or chunked array).
fn arrow_strings(v: &Py) -> Result<Vec<String>, FormatError> {
    let Py::Object { class, args, .. } = v else {
        return Err(malformed!("an arrow array is {}", describe(v)));
    };
    match class.as_str() {
        "pyarrow.lib.chunked_array" => {
            let Some(Py::List(chunks)) = args.first() else {
                return Err(malformed!("a chunked_array without chunks"));
            };
            let mut out = Vec::new();
            for c in chunks {
                out.extend(arrow_strings(c)?);
            }
            Ok(out)
        }
        // _restore_array((type, length, null_count, offset, buffers,
        // children, dictionary))
        "pyarrow.lib._restore_array" => {
            let Some(Py::List(parts)) = args.first() else {
                return Err(malformed!("_restore_array without its state"));
            };
            let [ty, length, nulls, offset, Py::List(buffers), ..] = parts.as_slice() else {
                return Err(malformed!(
                    "_restore_array state is not (type, length, nulls, offset, buffers, ...)"
                ));
            };
            let alias = match ty {
                Py::Object { class, args, .. } if class == "pyarrow.lib.type_for_alias" => {
                    args.first().and_then(Py::as_str)
                }
                _ => None,
            }
            .ok_or_else(|| malformed!("an arrow array of type {}", describe(ty)))?;
            let width = match alias {
                "string" | "utf8" => 4,
                "large_string" | "large_utf8" => 8,
                other => return Err(malformed!("an arrow array of type {other}, not strings")),
            };
            let count = |v: &Py, what: &str| match v {
                Py::Int(n) if *n >= 0 => Ok(*n as usize),
                other => Err(malformed!("arrow {what} is {}", describe(other))),
            };
            let (length, offset) = (count(length, "length")?, count(offset, "offset")?);
            if count(nulls, "null count")? != 0 {
                return Err(malformed!("an arrow array holding nulls"));
            }
            let offsets = buffer_bytes(
                buffers
                    .get(1)
                    .ok_or_else(|| malformed!("arrow strings without offsets"))?,
            )?;
            let data = buffer_bytes(buffers.get(2).unwrap_or(&Py::None))?;
            let at = |i: usize| -> Result<usize, FormatError> {
                let b = offsets
                    .get(i * width..(i + 1) * width)
                    .ok_or_else(|| malformed!("arrow offsets shorter than the array"))?;
                let v = if width == 4 {
                    i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64
                } else {
                    i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                };
                usize::try_from(v).map_err(|_| malformed!("a negative arrow offset"))
            };
            let end = offset
                .checked_add(length)
                .ok_or_else(|| malformed!("arrow length overflows"))?;
            (offset..end)
                .map(|i| {
                    let bytes = data
                        .get(at(i)?..at(i + 1)?)
                        .ok_or_else(|| malformed!("arrow offsets beyond the data"))?;
                    String::from_utf8(bytes.to_vec())
                        .map_err(|_| malformed!("a label that is not UTF-8"))
                })
                .collect()
        }
        other => Err(malformed!("an arrow array is a {other}")),
    }
}

/// The bytes of a pickled arrow buffer: `py_buffer(bytearray(...))`, or
/// none (an absent buffer is empty).
fn buffer_bytes(v: &Py) -> Result<&[u8], FormatError> {
    match v {
        Py::None => Ok(&[]),
        Py::Bytes(b) => Ok(b),
        Py::Object { class, args, .. }
            if class == "pyarrow.lib.py_buffer" || class.ends_with(".bytearray") =>
        {
            match args.first() {
                Some(inner) => buffer_bytes(inner),
                None => Ok(&[]),
            }
        }
        other => Err(malformed!("an arrow buffer is {}", describe(other))),
    }
}

/// The rows (one per column) of a float block; `None` for any other block.
fn float_rows(values: &Py) -> Result<Option<Vec<Vec<f64>>>, FormatError> {
    let Py::Array(a) = values else {
        return Ok(None);
    };
    let big = a.dtype.starts_with('>');
    let width = match a.dtype.trim_start_matches(['<', '>', '=', '|']) {
        "f8" => 8,
        "f4" => 4,
        _ => return Ok(None),
    };
    let (k, n) = match a.shape.as_slice() {
        [n] => (1, *n as usize),
        [k, n] => (*k as usize, *n as usize),
        other => return Err(malformed!("a float block of shape {other:?}")),
    };
    let want = k
        .checked_mul(n)
        .and_then(|c| c.checked_mul(width))
        .ok_or_else(|| malformed!("a float block too large"))?;
    if a.data.len() != want {
        return Err(malformed!(
            "a float block of shape [{k}, {n}] holds {} bytes, not {want}",
            a.data.len()
        ));
    }
    let value = |at: usize| -> f64 {
        let b = &a.data[at * width..(at + 1) * width];
        if width == 8 {
            let mut x = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
            if big {
                x.reverse();
            }
            f64::from_le_bytes(x)
        } else {
            let mut x = [b[0], b[1], b[2], b[3]];
            if big {
                x.reverse();
            }
            f32::from_le_bytes(x) as f64
        }
    };
    // Element (i, j) of a [k, n] array: row-major, or column-major when
    // numpy pickled it in Fortran order.
    Ok(Some(
        (0..k)
            .map(|i| {
                (0..n)
                    .map(|j| value(if a.fortran { j * k + i } else { i * n + j }))
                    .collect()
            })
            .collect(),
    ))
}

/// The column positions of a block of `rows` columns: a `slice` or an index
/// array (`BlockPlacement.indexer`).
fn placement(p: &Py, rows: usize) -> Result<Vec<usize>, FormatError> {
    let out: Vec<usize> = match p {
        Py::Object { class, args, .. } if class.ends_with(".slice") => {
            let part = |i: usize, default: Option<i64>| match args.get(i) {
                Some(Py::Int(v)) => Ok(*v),
                Some(Py::None) | None => {
                    default.ok_or_else(|| malformed!("a block slice without a stop"))
                }
                Some(other) => Err(malformed!("a block slice bound is {}", describe(other))),
            };
            let (start, stop, step) = (part(0, Some(0))?, part(1, None)?, part(2, Some(1))?);
            if start < 0 || stop < start || step < 1 {
                return Err(malformed!(
                    "a block placed at slice({start}, {stop}, {step})"
                ));
            }
            let len = ((stop - start) as u64).div_ceil(step as u64);
            if len != rows as u64 {
                return Err(malformed!(
                    "a block of {rows} columns placed at slice({start}, {stop}, {step})"
                ));
            }
            (start..stop)
                .step_by(step as usize)
                .map(|v| v as usize)
                .collect()
        }
        Py::Array(a) => {
            let big = a.dtype.starts_with('>');
            let width = match a.dtype.trim_start_matches(['<', '>', '=', '|']) {
                "i8" => 8,
                "i4" => 4,
                other => return Err(malformed!("a block placement of dtype {other}")),
            };
            a.data
                .chunks_exact(width)
                .map(|c| {
                    let mut b = [0u8; 8];
                    let mut c = c.to_vec();
                    if big {
                        c.reverse();
                    }
                    b[..width].copy_from_slice(&c);
                    let v = if width == 4 {
                        i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64
                    } else {
                        i64::from_le_bytes(b)
                    };
                    usize::try_from(v).map_err(|_| malformed!("a block placed at column {v}"))
                })
                .collect::<Result<_, _>>()?
        }
        Py::List(items) => items
            .iter()
            .map(|x| match x {
                Py::Int(v) if *v >= 0 => Ok(*v as usize),
                other => Err(malformed!("a block placement holds {}", describe(other))),
            })
            .collect::<Result<_, _>>()?,
        Py::Int(v) if *v >= 0 => vec![*v as usize],
        other => return Err(malformed!("a block placement is {}", describe(other))),
    };
    if out.len() != rows {
        return Err(malformed!(
            "a block of {rows} columns placed at {} positions",
            out.len()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    fn legacy() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/legacy")
    }

    /// The same frame pickled by pandas 1.5, 2.0, 2.2 and 3.x, in each
    /// block layout (python/make_legacy_fixtures.py --cs-df-pickles), next
    /// to what pandas says its float columns hold.
    #[test]
    fn every_pandas_layout_gives_the_float_columns_in_order() {
        let dir = legacy().join("pandas");
        let mut seen = BTreeSet::new();
        let mut files = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().and_then(|e| e.to_str()) != Some("pkl") {
                continue;
            }
            files += 1;
            let want: serde_json::Value =
                serde_json::from_slice(&std::fs::read(p.with_extension("json")).unwrap()).unwrap();
            let bytes = std::fs::read(&p).unwrap();
            let df = pickle::read(&bytes, false).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let got = frame_scores(&df).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let want_scores: Vec<(String, Vec<f64>)> = want["scores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c[0].as_str().unwrap().to_string(),
                        c[1].as_array()
                            .unwrap()
                            .iter()
                            .map(|v| v.as_f64().unwrap())
                            .collect(),
                    )
                })
                .collect();
            assert_eq!(got.len(), want_scores.len(), "{}", p.display());
            for ((gn, gv), (wn, wv)) in got.iter().zip(&want_scores) {
                assert_eq!(gn, wn, "{}", p.display());
                assert_eq!(gv.len(), wv.len(), "{} {gn}", p.display());
                for (a, b) in gv.iter().zip(wv) {
                    assert_eq!(a.to_bits(), b.to_bits(), "{} {gn}: {a} vs {b}", p.display());
                }
            }
            let major = want["pandas"]
                .as_str()
                .unwrap()
                .split('.')
                .next()
                .unwrap()
                .to_string();
            seen.insert((major, want["layout"].as_str().unwrap().to_string()));
        }
        assert!(files >= 16, "{files} pickles in {}", dir.display());
        for major in ["1", "2", "3"] {
            for layout in ["reduce", "getstate"] {
                assert!(
                    seen.contains(&(major.to_string(), layout.to_string())),
                    "no pandas {major}.x pickle in the {layout} layout: {seen:?}"
                );
            }
        }
    }

    /// A configuration.pkl as a legacy bundle fitted with intervals holds.
    fn conformal_config(bundle: &str) -> Vec<u8> {
        std::fs::read(
            legacy()
                .join("bundles")
                .join(bundle)
                .join("configuration.pkl"),
        )
        .unwrap()
    }

    /// What format_v1 makes of it: prediction_intervals present.
    fn config_json() -> serde_json::Value {
        serde_json::json!({ "prediction_intervals": { "cls": "PredictionIntervals" } })
    }

    #[test]
    fn legacy_calibrations_read_as_the_3_3_layout() {
        // 3.2 (pandas 3, arrow strings), 3.0 written under pandas 2.2, 1.7.
        for (bundle, writer, models) in [
            (
                "v32_mlp_conformal_dist",
                "NeuralForecast 3.2",
                &["MLP", "NLinear"][..],
            ),
            (
                "v30_mlp_conformal_pandas2",
                "NeuralForecast 3.0",
                &["MLP", "NLinear"][..],
            ),
            (
                "v17_mlp_conformal_dist",
                "NeuralForecast 1.x",
                &["MLP", "NLinear"][..],
            ),
            ("v31_mlp_conformal_err", "NeuralForecast 3.1", &["MLP"][..]),
        ] {
            let bytes = conformal_config(bundle);
            let c = match read(&config_json(), Some(&bytes), 6, writer) {
                Calibration::Conformal(c) => c,
                other => panic!("{bundle}: {other:?}"),
            };
            assert_eq!((c.n_windows, c.step_size, c.h), (3, 1, 6), "{bundle}");
            assert_eq!(c.n_series(), 3, "{bundle}");
            let names: Vec<&str> = c.scores.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, models, "{bundle}");
            for (n, s) in &c.scores {
                assert!(s.iter().all(|v| *v >= 0.0), "{bundle} {n}: absolute errors");
            }
        }
    }

    #[test]
    fn releases_before_3_keep_their_own_interval_style() {
        for (bundle, writer, style) in [
            (
                "v17_mlp_conformal_err",
                "NeuralForecast 1.x (PyTorch Lightning 2.6.6)",
                Style::Before3,
            ),
            (
                "v20_mlp_conformal_err",
                "NeuralForecast 2.x",
                Style::Before3,
            ),
            (
                "v30_mlp_conformal_err",
                "NeuralForecast 3.0",
                Style::Current,
            ),
        ] {
            let bytes = conformal_config(bundle);
            match read(&config_json(), Some(&bytes), 6, writer) {
                Calibration::Conformal(c) => assert_eq!(c.style, style, "{bundle}"),
                other => panic!("{bundle}: {other:?}"),
            }
        }
    }

    #[test]
    fn damaged_scores_are_unreadable_not_fatal() {
        let bytes = conformal_config("v32_mlp_conformal_dist");
        let cfg = config_json();
        // Same length, so the pickle's frames stay valid: the DataFrame's
        // state then has no block manager.
        let renamed = replace(&bytes, b"_mgr", b"_xyz");
        match read(&cfg, Some(&renamed), 6, "NeuralForecast 3.2") {
            Calibration::Unreadable(why) => assert!(why.contains("block manager"), "{why}"),
            other => panic!("{other:?}"),
        }
        // A calibration for another horizon does not pass Conformal::check.
        assert!(matches!(
            read(&cfg, Some(&bytes), 5, "NeuralForecast 3.2"),
            Calibration::Unreadable(_)
        ));
        assert!(matches!(
            read(
                &serde_json::json!({}),
                Some(&bytes),
                6,
                "NeuralForecast 3.2"
            ),
            Calibration::None
        ));
        assert!(matches!(
            read(&cfg, None, 6, "NeuralForecast 3.2"),
            Calibration::Unreadable(_)
        ));
    }

    /// A bundle whose scores cannot be read loads and serves its point
    /// forecasts (the writer's), and refuses intervals with the reason.
    #[test]
    fn unreadable_scores_cost_the_intervals_not_the_bundle() {
        let name = "v32_mlp_conformal_dist";
        let dir = legacy().join("bundles").join(name);
        let mut files = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let mut bytes = std::fs::read(&p).unwrap();
            let file = p.file_name().unwrap().to_string_lossy().to_string();
            if file == "configuration.pkl" {
                bytes = replace(&bytes, b"_mgr", b"_xyz");
            }
            files.push((file, bytes));
        }
        let b = crate::bundle::Bundle::from_bytes(name, &dir, files).unwrap();
        let Calibration::Unreadable(why) = &b.intervals else {
            panic!("{:?}", b.intervals)
        };
        assert!(why.contains("block manager"), "{why}");
        assert!(b.unsupported_reason().is_none());
        let case: serde_json::Value = serde_json::from_slice(
            &std::fs::read(legacy().join(format!("cases/{name}__point.json"))).unwrap(),
        )
        .unwrap();
        let body = serde_json::to_vec(&case["request"]).unwrap();
        let req = crate::contract::PredictRequest::from_slice(&body).unwrap();
        let got: serde_json::Value =
            serde_json::from_str(&crate::pipeline::predict(&b, &req).unwrap().to_json(name))
                .unwrap();
        let (got, want) = (
            got["predictions"].as_array().unwrap(),
            case["expected"]["predictions"].as_array().unwrap(),
        );
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            for col in ["MLP", "NLinear"] {
                let (g, w) = (g[col].as_f64().unwrap(), w[col].as_f64().unwrap());
                assert!((g - w).abs() <= 1e-4 + 1e-5 * w.abs(), "{col}: {g} vs {w}");
            }
        }
        let mut with_level = case["request"].clone();
        with_level["level"] = serde_json::json!([80]);
        let body = serde_json::to_vec(&with_level).unwrap();
        let req = crate::contract::PredictRequest::from_slice(&body).unwrap();
        let e = crate::pipeline::predict(&b, &req).unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_level");
        assert!(e.to_string().contains("block manager"), "{e}");
    }

    #[test]
    fn truncated_or_flipped_configurations_never_panic() {
        for bundle in ["v32_mlp_conformal_dist", "v30_mlp_conformal_pandas2"] {
            let bytes = conformal_config(bundle);
            let cfg = config_json();
            for cut in 0..bytes.len() {
                assert!(matches!(
                    read(&cfg, Some(&bytes[..cut]), 6, "NeuralForecast 3.2"),
                    Calibration::Unreadable(_)
                ));
            }
            for at in 0..bytes.len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut b = bytes.clone();
                    b[at] ^= flip;
                    // Either reading: never a panic.
                    let _ = read(&cfg, Some(&b), 6, "NeuralForecast 3.2");
                }
            }
        }
    }

    fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        let at = out
            .windows(from.len())
            .position(|w| w == from)
            .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(from)));
        out[at..at + from.len()].copy_from_slice(to);
        out
    }
}
