//! Compares the primary's and the shadow's answers to one /predict request
//! (docs/contract.md): both bodies JSON; same status; for 2xx the same `model` and the same
//! `(unique_id, ds)` rows in any order, every other column numerically within
//! tolerance; for errors the same `error.code` (messages may differ).

use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub abs: f64,
    pub rel: f64,
}

/// One side of the comparison.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u32,
    pub body: &'a [u8],
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `max_rel`: the largest relative difference of any compared number.
    Match { max_rel: f64 },
    /// `field` names the first difference in a fixed order (status, model,
    /// rows by key, columns by name); `detail` says what differs.
    Mismatch {
        field: String,
        detail: String,
        max_rel: f64,
    },
    /// The answers could not be compared: a body is not JSON (Envoy's own
    /// reply to a timeout or reset), or the primary's has not the contract's shape.
    Error(String),
}

/// `|a - b| / max(|a|, |b|)`, 0 when both are 0.
pub fn rel_diff(a: f64, b: f64) -> f64 {
    let scale = a.abs().max(b.abs());
    if scale == 0.0 {
        0.0
    } else {
        (a - b).abs() / scale
    }
}

/// A relative difference in parts per million, rounded, saturating.
pub fn ppm(rel: f64) -> u64 {
    if rel.is_nan() || rel <= 0.0 {
        0
    } else {
        (rel * 1e6).round().min(u64::MAX as f64) as u64
    }
}

/// Python's `math.isclose`: within the relative OR the absolute tolerance.
pub fn within(a: f64, b: f64, tol: Tolerance) -> bool {
    let diff = (a - b).abs();
    diff <= tol.abs || diff <= tol.rel * a.abs().max(b.abs())
}

struct Diff {
    first: Option<(String, String)>,
    max_rel: f64,
}

impl Diff {
    fn note(&mut self, field: impl FnOnce() -> String, detail: impl FnOnce() -> String) {
        if self.first.is_none() {
            self.first = Some((field(), detail()));
        }
    }

    fn finish(self) -> Outcome {
        match self.first {
            None => Outcome::Match {
                max_rel: self.max_rel,
            },
            Some((field, detail)) => Outcome::Mismatch {
                field,
                detail,
                max_rel: self.max_rel,
            },
        }
    }
}

pub fn compare(primary: Answer<'_>, shadow: Answer<'_>, tol: Tolerance) -> Outcome {
    // Bodies first: both services answer JSON, errors included, so a body
    // that is not JSON is no answer of theirs (typically Envoy's own 503/504
    // for a reset or a timeout): a shadow error, not a difference.
    let p: Value = match serde_json::from_slice(primary.body) {
        Ok(v) => v,
        Err(e) => {
            return Outcome::Error(format!(
                "primary body (status {}) is not JSON: {e}",
                primary.status
            ))
        }
    };
    let s: Value = match serde_json::from_slice(shadow.body) {
        Ok(v) => v,
        Err(e) => {
            return Outcome::Error(format!(
                "shadow body (status {}) is not JSON: {e}",
                shadow.status
            ))
        }
    };
    if primary.status != shadow.status {
        return Outcome::Mismatch {
            field: "status".into(),
            detail: format!("primary {} shadow {}", primary.status, shadow.status),
            max_rel: 0.0,
        };
    }
    let mut diff = Diff {
        first: None,
        max_rel: 0.0,
    };
    if (200..300).contains(&primary.status) {
        if let Err(e) = compare_predictions(&p, &s, tol, &mut diff) {
            return Outcome::Error(e);
        }
    } else {
        let code = |v: &Value| v.pointer("/error/code").cloned().unwrap_or(Value::Null);
        let (pc, sc) = (code(&p), code(&s));
        if pc != sc {
            diff.note(
                || "error.code".into(),
                || format!("primary {pc} shadow {sc}"),
            );
        }
    }
    diff.finish()
}

type RowKey = (String, String);

/// Rows by `(unique_id, ds)`, each written as JSON so `1` and `"1"` differ.
/// `Err` names the first row without a key or a duplicated key.
fn rows_by_key(v: &Value) -> Result<BTreeMap<RowKey, &Map<String, Value>>, String> {
    let rows = v
        .get("predictions")
        .and_then(Value::as_array)
        .ok_or_else(|| "no \"predictions\" array".to_string())?;
    let mut out = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let obj = row
            .as_object()
            .ok_or_else(|| format!("predictions[{i}] is not an object"))?;
        let (Some(id), Some(ds)) = (obj.get("unique_id"), obj.get("ds")) else {
            return Err(format!("predictions[{i}] lacks unique_id or ds"));
        };
        let key = (id.to_string(), ds.to_string());
        if out.insert(key, obj).is_some() {
            return Err(format!("predictions[{i}] repeats unique_id {id} ds {ds}"));
        }
    }
    Ok(out)
}

fn row_name(key: &RowKey) -> String {
    let bare = |s: &str| s.trim_matches('"').to_string();
    format!(
        "predictions[unique_id={},ds={}]",
        bare(&key.0),
        bare(&key.1)
    )
}

fn compare_predictions(
    p: &Value,
    s: &Value,
    tol: Tolerance,
    diff: &mut Diff,
) -> Result<(), String> {
    let prows = rows_by_key(p).map_err(|e| format!("primary body: {e}"))?;
    let srows = match rows_by_key(s) {
        Ok(r) => r,
        Err(e) => {
            diff.note(|| "predictions".into(), || format!("shadow body: {e}"));
            return Ok(());
        }
    };
    if p.get("model") != s.get("model") {
        let show = |v: &Value| {
            v.get("model")
                .map_or("(none)".to_string(), Value::to_string)
        };
        diff.note(
            || "model".into(),
            || format!("primary {} shadow {}", show(p), show(s)),
        );
    }
    let mut keys: Vec<&RowKey> = prows.keys().chain(srows.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (pr, sr) = match (prows.get(key), srows.get(key)) {
            (Some(pr), Some(sr)) => (*pr, *sr),
            (Some(_), None) => {
                diff.note(|| row_name(key), || "row missing in shadow".into());
                continue;
            }
            (None, _) => {
                diff.note(|| row_name(key), || "row missing in primary".into());
                continue;
            }
        };
        let mut cols: Vec<&String> = pr
            .keys()
            .chain(sr.keys())
            .filter(|c| *c != "unique_id" && *c != "ds")
            .collect();
        cols.sort();
        cols.dedup();
        for col in cols {
            let field = || format!("{}.{col}", row_name(key));
            match (pr.get(col), sr.get(col)) {
                (Some(a), Some(b)) => match (a.as_f64(), b.as_f64()) {
                    (Some(x), Some(y)) => {
                        let rel = rel_diff(x, y);
                        diff.max_rel = diff.max_rel.max(rel);
                        if !within(x, y, tol) {
                            // Numbers are shown as they came (JSON text), the
                            // difference in ppm: no float formatting code in the module.
                            diff.note(field, || {
                                format!("primary {a} shadow {b} (rel {} ppm)", ppm(rel))
                            });
                        }
                    }
                    _ if a != b => diff.note(field, || format!("primary {a} shadow {b}")),
                    _ => {}
                },
                (Some(_), None) => diff.note(field, || "column missing in shadow".into()),
                (None, _) => diff.note(field, || "column missing in primary".into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
