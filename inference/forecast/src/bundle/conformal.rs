//! The conformal calibration a bundle fitted with `prediction_intervals`
//! carries: `configuration.prediction_intervals` (method, windows, step) and
//! the conformity scores `configuration._cs_df`, whose numeric columns
//! NeuralForecast 3.3 writes to `configuration.safetensors`.

use super::format::{malformed, FormatError};
use crate::intervals::{Conformal, Method};
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;

const TAG: &str = "__nf__";

/// What the configuration says about intervals: none, a calibration this
/// service computes from, or one it cannot read (refused when asked for).
#[derive(Debug, Clone)]
pub enum Calibration {
    None,
    Conformal(Conformal),
    Unreadable(String),
}

impl Calibration {
    pub fn is_some(&self) -> bool {
        !matches!(self, Calibration::None)
    }
}

/// `prediction_intervals` and `_cs_df` of a 3.3 configuration.
pub(crate) fn read(config: &Value, tensors: Option<&[u8]>, h: usize) -> Calibration {
    match config.get("prediction_intervals") {
        None | Some(Value::Null) => Calibration::None,
        Some(pi) => match parse(pi, config.get("_cs_df"), tensors, h) {
            Ok(c) => Calibration::Conformal(c),
            Err(e) => Calibration::Unreadable(e.to_string()),
        },
    }
}

fn parse(
    pi: &Value,
    cs: Option<&Value>,
    tensors: Option<&[u8]>,
    h: usize,
) -> Result<Conformal, FormatError> {
    let field = |k: &str| {
        pi.get(k)
            .and_then(Value::as_u64)
            .filter(|v| *v > 0)
            .map(|v| v as usize)
            .ok_or_else(|| malformed!("prediction_intervals.{k} is not a positive integer"))
    };
    let method = Method::parse(
        pi.get("method")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed!("prediction_intervals.method is not a string"))?,
    )?;
    let (n_windows, step_size) = (field("n_windows")?, field("step_size")?);
    let cs = match cs {
        Some(v @ Value::Object(_)) if v.get(TAG).and_then(Value::as_str) == Some("dataframe") => v,
        _ => {
            return Err(malformed!(
                "_cs_df (the conformity scores) is missing or not a data frame"
            ))
        }
    };
    let tensors = match tensors {
        Some(b) => Some(
            SafeTensors::deserialize(b)
                .map_err(|e| malformed!("configuration.safetensors is unreadable: {e}"))?,
        ),
        None => None,
    };
    let columns = cs
        .get("columns")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed!("_cs_df has no columns"))?;
    let mut scores = Vec::new();
    for col in columns {
        let (Some(name), Some(series)) = (col.get(0).and_then(Value::as_str), col.get(1)) else {
            return Err(malformed!("_cs_df columns are not [name, series] pairs"));
        };
        // unique_id, ds and cutoff say where each score came from; the
        // model columns (floats) are the scores.
        let dtype = series.get("dtype").and_then(Value::as_str).unwrap_or("");
        if !dtype.starts_with("float") && !dtype.starts_with("Float") {
            continue;
        }
        let data = series.get("data").unwrap_or(series);
        scores.push((
            name.to_string(),
            numbers(data, tensors.as_ref())
                .map_err(|e| malformed!("_cs_df column '{name}': {e}"))?,
        ));
    }
    let c = Conformal {
        method,
        style: crate::intervals::Style::Current,
        n_windows,
        step_size,
        h,
        scores,
    };
    c.check()?;
    Ok(c)
}

/// The values of an encoded array: a sidecar tensor, or inline values.
fn numbers(v: &Value, tensors: Option<&SafeTensors>) -> Result<Vec<f64>, FormatError> {
    if let Some(list) = v.as_array() {
        return list
            .iter()
            .map(|x| {
                x.as_f64()
                    .ok_or_else(|| malformed!("holds {x}, not a number"))
            })
            .collect();
    }
    match v.get(TAG).and_then(Value::as_str) {
        Some("tensor") => {
            let key = v
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed!("a tensor without a key"))?;
            let t = tensors
                .ok_or_else(|| malformed!("configuration.safetensors is missing"))?
                .tensor(key)
                .map_err(|e| malformed!("tensor {key}: {e}"))?;
            let bytes = t.data();
            match t.dtype() {
                Dtype::F64 => Ok(bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect()),
                Dtype::F32 => Ok(bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                    .collect()),
                other => Err(malformed!("tensor {key} has dtype {other:?}, not a float")),
            }
        }
        Some("array") | Some("index") => numbers(
            v.get("values")
                .ok_or_else(|| malformed!("an array without values"))?,
            tensors,
        ),
        _ => match v.get("data") {
            Some(d) => numbers(d, tensors),
            None => Err(malformed!("not an encoded array")),
        },
    }
}
