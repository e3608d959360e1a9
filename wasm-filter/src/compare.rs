//! Compares the primary's and the shadow's answers to one /predict request
//! (docs/contract.md): both bodies JSON; same status; for 2xx the same `model` and the same
//! rows by key in any order, every other column numerically within
//! tolerance; for errors the same `error.code` (messages may differ).
//!
//! A row's key is its series id and time stamp: `unique_id` and `ds` when the
//! row has both, else its first two columns as written: `nf.predict` writes
//! the bundle's `id_col` and `time_col` first, whatever they are called
//! (`airline`, `month`), and both services keep that order.

use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

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
    let p: Body = match serde_json::from_slice(primary.body) {
        Ok(v) => v,
        Err(e) => {
            return Outcome::Error(format!(
                "primary body (status {}) is not JSON: {e}",
                primary.status
            ))
        }
    };
    let s: Body = match serde_json::from_slice(shadow.body) {
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
        let code = |b: &Body| {
            b.error
                .as_ref()
                .and_then(|e| e.get("code"))
                .cloned()
                .unwrap_or(Value::Null)
        };
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

/// What the comparison reads of a body, in one pass over it.
#[derive(Default)]
struct Body {
    model: Option<Value>,
    /// `None`: no `predictions` member; `Some(Err)`: not an array of objects.
    predictions: Option<Result<Vec<Row>, String>>,
    error: Option<Value>,
}

/// A prediction row as written: columns in document order.
struct Row(Vec<(String, Value)>);

impl Row {
    fn get(&self, col: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == col).map(|(_, v)| v)
    }
}

/// Visits any JSON value; `Some` only for what `on_map`/`on_seq` keep.
/// Anything else is skipped.
trait Shape<'de>: Sized {
    type Out;
    const WHAT: &'static str;
    fn other() -> Self::Out;
    fn on_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Out, A::Error>;
    fn on_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Out, A::Error> {
        while a.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Self::other())
    }
}

struct ShapeVisitor<S>(S);

impl<'de, S: Shape<'de>> Visitor<'de> for ShapeVisitor<S> {
    type Value = S::Out;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(S::WHAT)
    }
    fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<S::Out, A::Error> {
        self.0.on_map(a)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<S::Out, A::Error> {
        self.0.on_seq(a)
    }
    fn visit_bool<E>(self, _: bool) -> Result<S::Out, E> {
        Ok(S::other())
    }
    fn visit_i64<E>(self, _: i64) -> Result<S::Out, E> {
        Ok(S::other())
    }
    fn visit_u64<E>(self, _: u64) -> Result<S::Out, E> {
        Ok(S::other())
    }
    fn visit_f64<E>(self, _: f64) -> Result<S::Out, E> {
        Ok(S::other())
    }
    fn visit_str<E>(self, _: &str) -> Result<S::Out, E> {
        Ok(S::other())
    }
    fn visit_unit<E>(self) -> Result<S::Out, E> {
        Ok(S::other())
    }
}

/// The whole body: a non-object body reads as empty.
struct BodyShape;

impl<'de> Shape<'de> for BodyShape {
    type Out = Body;
    const WHAT: &'static str = "a JSON value";
    fn other() -> Body {
        Body::default()
    }
    fn on_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Body, A::Error> {
        let mut body = Body::default();
        while let Some(key) = a.next_key::<String>()? {
            match key.as_str() {
                "model" => body.model = Some(a.next_value()?),
                "error" => body.error = Some(a.next_value()?),
                "predictions" => {
                    body.predictions = Some(a.next_value_seed(Seed(PredictionsShape))?)
                }
                _ => {
                    a.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(body)
    }
}

/// `predictions`: an array of rows, else the shape error.
struct PredictionsShape;

impl<'de> Shape<'de> for PredictionsShape {
    type Out = Result<Vec<Row>, String>;
    const WHAT: &'static str = "a JSON value";
    fn other() -> Self::Out {
        Err("no \"predictions\" array".into())
    }
    fn on_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Self::Out, A::Error> {
        while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Self::other())
    }
    fn on_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Self::Out, A::Error> {
        let mut rows = Vec::new();
        let mut bad = None;
        while let Some(row) = a.next_element_seed(Seed(RowShape))? {
            match row {
                Some(r) => rows.push(r),
                None => bad = bad.or(Some(rows.len())),
            }
        }
        Ok(match bad {
            Some(i) => Err(format!("predictions[{i}] is not an object")),
            None => Ok(rows),
        })
    }
}

/// One element of `predictions`: `None` when it is not an object.
struct RowShape;

impl<'de> Shape<'de> for RowShape {
    type Out = Option<Row>;
    const WHAT: &'static str = "a JSON value";
    fn other() -> Option<Row> {
        None
    }
    fn on_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Option<Row>, A::Error> {
        let mut cols = Vec::new();
        while let Some(entry) = a.next_entry::<String, Value>()? {
            cols.push(entry);
        }
        Ok(Some(Row(cols)))
    }
}

struct Seed<S>(S);

impl<'de, S: Shape<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Out;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Out, D::Error> {
        d.deserialize_any(ShapeVisitor(self.0))
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Body, D::Error> {
        Seed(BodyShape).deserialize(d)
    }
}

/// A row's key columns and values, each value written as JSON so `1` and
/// `"1"` differ.
type RowKey = Vec<(String, String)>;

/// The key columns of a row (see the module doc).
fn key_columns(row: &Row) -> Option<[&str; 2]> {
    if row.get("unique_id").is_some() && row.get("ds").is_some() {
        return Some(["unique_id", "ds"]);
    }
    match row.0.as_slice() {
        [(a, _), (b, _), ..] => Some([a.as_str(), b.as_str()]),
        _ => None,
    }
}

/// Rows by key. `Err` names the first row without a key or a duplicated key.
fn rows_by_key(body: &Body) -> Result<BTreeMap<RowKey, &Row>, String> {
    let rows = match &body.predictions {
        None => return Err("no \"predictions\" array".into()),
        Some(Err(e)) => return Err(e.clone()),
        Some(Ok(rows)) => rows,
    };
    let mut out = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let cols = key_columns(row).ok_or_else(|| {
            format!("predictions[{i}] lacks unique_id or ds (or any two columns)")
        })?;
        let key: RowKey = cols
            .iter()
            .map(|c| {
                (
                    c.to_string(),
                    row.get(c).map(Value::to_string).unwrap_or_default(),
                )
            })
            .collect();
        if out.contains_key(&key) {
            return Err(format!("predictions[{i}] repeats {}", row_name(&key)));
        }
        out.insert(key, row);
    }
    Ok(out)
}

fn row_name(key: &RowKey) -> String {
    let cols: Vec<String> = key
        .iter()
        .map(|(c, v)| format!("{c}={}", v.trim_matches('"')))
        .collect();
    format!("predictions[{}]", cols.join(","))
}

fn compare_predictions(p: &Body, s: &Body, tol: Tolerance, diff: &mut Diff) -> Result<(), String> {
    let prows = rows_by_key(p).map_err(|e| format!("primary body: {e}"))?;
    let srows = match rows_by_key(s) {
        Ok(r) => r,
        Err(e) => {
            diff.note(|| "predictions".into(), || format!("shadow body: {e}"));
            return Ok(());
        }
    };
    if p.model != s.model {
        let show = |b: &Body| {
            b.model
                .as_ref()
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
        let is_key = |c: &str| key.iter().any(|(k, _)| k == c);
        let mut cols: Vec<&String> =
            pr.0.iter()
                .chain(sr.0.iter())
                .map(|(c, _)| c)
                .filter(|c| !is_key(c))
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
