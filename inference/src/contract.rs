//! The /predict request and response bodies (docs/contract.md), independent
//! of HTTP: the server, the `predict` subcommand and the tests share them.

use crate::dates::Stamp;
use crate::error::ApiError;
use serde_json::{Map, Value};
use std::fmt::Write as _;

pub type Row = Map<String, Value>;

/// A parsed body: rows still untyped, because which columns are valid
/// depends on the bundle.
#[derive(Debug, Clone, Default)]
pub struct PredictRequest {
    pub df: Vec<Row>,
    pub futr_df: Option<Vec<Row>>,
    pub static_df: Option<Vec<Row>>,
}

impl PredictRequest {
    pub fn from_slice(body: &[u8]) -> Result<PredictRequest, ApiError> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::malformed_json(format!("body is not valid JSON: {e}")))?;
        PredictRequest::from_value(v)
    }

    pub fn from_value(v: Value) -> Result<PredictRequest, ApiError> {
        let Value::Object(obj) = v else {
            return Err(ApiError::invalid_request(
                "body must be a JSON object with a 'df' array",
            ));
        };
        let mut req = PredictRequest::default();
        let mut have_df = false;
        for (k, v) in obj {
            match k.as_str() {
                "df" => {
                    req.df = rows(v, "df")?;
                    have_df = true;
                }
                "futr_df" => req.futr_df = optional_rows(v, "futr_df")?,
                "static_df" => req.static_df = optional_rows(v, "static_df")?,
                other => {
                    return Err(ApiError::invalid_request(format!(
                        "unknown key '{other}' (expected df, futr_df, static_df)"
                    )))
                }
            }
        }
        if !have_df {
            return Err(ApiError::invalid_request("'df' is required"));
        }
        Ok(req)
    }
}

fn optional_rows(v: Value, name: &str) -> Result<Option<Vec<Row>>, ApiError> {
    if v.is_null() {
        Ok(None)
    } else {
        rows(v, name).map(Some)
    }
}

fn rows(v: Value, name: &str) -> Result<Vec<Row>, ApiError> {
    let Value::Array(items) = v else {
        return Err(ApiError::invalid_request(format!(
            "'{name}' must be an array of row objects"
        )));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, r)| match r {
            Value::Object(m) => Ok(m),
            _ => Err(ApiError::invalid_request(format!(
                "{name}[{i}] must be an object"
            ))),
        })
        .collect()
}

/// A series key: strings or integers, one kind per request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SeriesId {
    Int(i64),
    Str(String),
}

impl SeriesId {
    pub fn from_json(v: &Value) -> Option<SeriesId> {
        match v {
            Value::String(s) => Some(SeriesId::Str(s.clone())),
            Value::Number(n) => n.as_i64().map(SeriesId::Int),
            _ => None,
        }
    }
    fn write_json(&self, out: &mut String) {
        match self {
            SeriesId::Int(i) => {
                let _ = write!(out, "{i}");
            }
            SeriesId::Str(s) => write_json_str(out, s),
        }
    }
}

impl std::fmt::Display for SeriesId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeriesId::Int(i) => write!(f, "{i}"),
            SeriesId::Str(s) => write!(f, "{s}"),
        }
    }
}

/// Forecast rows, sorted by series then ds, one value per column.
#[derive(Debug, Clone, Default)]
pub struct Forecast {
    pub id_col: String,
    pub time_col: String,
    pub columns: Vec<String>,
    pub rows: Vec<(SeriesId, Stamp, Vec<f32>)>,
}

impl Forecast {
    /// `{"model": ..., "predictions": [...]}`, written directly: key order
    /// matters to readers and a `Value` tree would cost an allocation per cell.
    pub fn to_json(&self, model: &str) -> String {
        let mut out = String::with_capacity(64 + self.rows.len() * (48 + 24 * self.columns.len()));
        out.push_str("{\"model\":");
        write_json_str(&mut out, model);
        out.push_str(",\"predictions\":[");
        let mut keys: Vec<String> = Vec::with_capacity(self.columns.len());
        for c in &self.columns {
            let mut k = String::new();
            write_json_str(&mut k, c);
            keys.push(k);
        }
        let mut id_key = String::new();
        write_json_str(&mut id_key, &self.id_col);
        let mut ds_key = String::new();
        write_json_str(&mut ds_key, &self.time_col);
        for (i, (id, ds, vals)) in self.rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('{');
            out.push_str(&id_key);
            out.push(':');
            id.write_json(&mut out);
            out.push(',');
            out.push_str(&ds_key);
            out.push(':');
            match ds {
                Stamp::Int(v) => {
                    let _ = write!(out, "{v}");
                }
                Stamp::Time(t) => {
                    let _ = write!(out, "\"{}\"", t.format("%Y-%m-%dT%H:%M:%S"));
                }
            }
            for (k, v) in keys.iter().zip(vals) {
                out.push(',');
                out.push_str(k);
                out.push(':');
                write_f32(&mut out, *v);
            }
            out.push('}');
        }
        out.push_str("]}");
        out
    }
}

/// The float32 value as the shortest f64 text that round-trips, as Python's
/// `float(np.float32(x))` prints it. Non-finite values cannot be JSON; the
/// pipeline never lets them through, and `null` is the safe rendering.
fn write_f32(out: &mut String, v: f32) {
    let d = v as f64;
    if d.is_finite() {
        let mut buf = ryu_like(d);
        if !buf.contains(['.', 'e', 'E']) {
            buf.push_str(".0");
        }
        out.push_str(&buf);
    } else {
        out.push_str("null");
    }
}

fn ryu_like(d: f64) -> String {
    // serde_json formats f64 with the shortest round-trip representation.
    serde_json::Number::from_f64(d)
        .map(|n| n.to_string())
        .unwrap_or_else(|| "null".into())
}

fn write_json_str(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(q) => out.push_str(&q),
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_shape_errors() {
        let code = |b: &str| {
            PredictRequest::from_slice(b.as_bytes())
                .err()
                .map(|e| e.code)
        };
        assert_eq!(code("{"), Some("malformed_json"));
        assert_eq!(code("{\"df\": [{\"y\": NaN}]}"), Some("malformed_json"));
        assert_eq!(code("[]"), Some("invalid_request"));
        assert_eq!(code("{}"), Some("invalid_request"));
        assert_eq!(code("{\"df\": 3}"), Some("invalid_request"));
        assert_eq!(code("{\"df\": [1]}"), Some("invalid_request"));
        assert_eq!(code("{\"df\": [], \"extra\": 1}"), Some("invalid_request"));
        assert_eq!(code("{\"df\": [], \"futr_df\": null}"), None);
    }

    #[test]
    fn forecast_json_keeps_key_order_and_kinds() {
        let f = Forecast {
            id_col: "unique_id".into(),
            time_col: "ds".into(),
            columns: vec!["MLP".into(), "MLP-lo-90".into()],
            rows: vec![(SeriesId::Str("a\"b".into()), Stamp::Int(7), vec![1.5, 2.0])],
        };
        let s = f.to_json("m");
        assert_eq!(
            s,
            r#"{"model":"m","predictions":[{"unique_id":"a\"b","ds":7,"MLP":1.5,"MLP-lo-90":2.0}]}"#
        );
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["predictions"][0]["MLP"], 1.5);
    }

    #[test]
    fn f32_prints_as_python_float() {
        let mut s = String::new();
        write_f32(&mut s, 118.3f32);
        // float(np.float32(118.3)) == 118.30000305175781
        assert_eq!(s, "118.30000305175781");
    }
}
