//! The /predict request and response bodies (docs/contract.md), independent
//! of HTTP: the server, the `predict` subcommand and the tests share them.

use crate::dates::Stamp;
use crate::error::ApiError;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// One JSON value of a row, borrowed from the body where possible. The
/// pipeline decides what is valid for which column (it depends on the bundle).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl Cell<'_> {
    pub fn kind(&self) -> &'static str {
        match self {
            Cell::Null => "null",
            Cell::Bool(_) => "a boolean",
            Cell::Int(_) | Cell::Float(_) => "a number",
            Cell::Str(_) => "a string",
            Cell::Array => "an array",
            Cell::Object => "an object",
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Cell<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<Cell<'a>>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Cell<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Cell<'a>, E> {
                Ok(Cell::Null)
            }
            fn visit_none<E>(self) -> Result<Cell<'a>, E> {
                Ok(Cell::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Cell<'a>, E> {
                Ok(Cell::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Cell<'a>, E> {
                Ok(Cell::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Cell<'a>, E> {
                Ok(i64::try_from(v)
                    .map(Cell::Int)
                    .unwrap_or(Cell::Float(v as f64)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Cell<'a>, E> {
                Ok(Cell::Float(v))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cell<'a>, E> {
                Ok(Cell::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Cell<'a>, E> {
                Ok(Cell::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Cell<'a>, E> {
                Ok(Cell::Str(Cow::Owned(v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Cell<'a>, A::Error> {
                // Nested values go through the parser's depth limit (128).
                while a.next_element::<Cell<'a>>()?.is_some() {}
                Ok(Cell::Array)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Cell<'a>, A::Error> {
                while a.next_entry::<IgnoredAny, Cell<'a>>()?.is_some() {}
                Ok(Cell::Object)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A column name, borrowed when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<Key<'a>>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a column name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// One row object: its columns in body order. A repeated key keeps the last
/// value, as JSON parsers commonly do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row<'a>(Vec<(Cow<'a, str>, Cell<'a>)>);

impl<'a> Row<'a> {
    pub fn get(&self, key: &str) -> Option<&Cell<'a>> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Cell<'a>)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_ref())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Row<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<Row<'a>>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Row<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a row object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Row<'a>, A::Error> {
                let mut cols = Vec::with_capacity(a.size_hint().unwrap_or(4));
                while let Some((k, v)) = a.next_entry::<Key<'a>, Cell<'a>>()? {
                    cols.push((k.0, v));
                }
                Ok(Row(cols))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A parsed body: rows typed only as JSON values, because which columns are
/// valid depends on the bundle. Borrows strings from the body.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest<'a> {
    /// Required: a missing `df` is `invalid_request`, an empty one `empty_df`.
    #[serde(borrow = "'a")]
    pub df: Vec<Row<'a>>,
    #[serde(borrow = "'a", default)]
    pub futr_df: Option<Vec<Row<'a>>>,
    #[serde(borrow = "'a", default)]
    pub static_df: Option<Vec<Row<'a>>>,
    /// Forecast horizon; absent or null = the bundle's `h`. Below it the
    /// forecast is truncated, above it predicted recursively as
    /// `NeuralForecast.predict(h=...)` does.
    #[serde(default)]
    pub h: Option<i64>,
    /// `nf.predict(level=...)`: interval levels (0 to 100 in practice).
    #[serde(default)]
    pub level: Option<Vec<PyNumber>>,
    /// `nf.predict(quantiles=...)`: quantiles (0 to 1).
    #[serde(default)]
    pub quantiles: Option<Vec<PyNumber>>,
}

impl<'a> PredictRequest<'a> {
    /// Syntax errors are `malformed_json`; valid JSON of the wrong shape is
    /// `invalid_request`.
    pub fn from_slice(body: &'a [u8]) -> Result<PredictRequest<'a>, ApiError> {
        if !body.iter().any(|b| !b.is_ascii_whitespace()) {
            return Err(ApiError::malformed_json("the body is empty"));
        }
        serde_json::from_slice(body).map_err(|e| {
            // The typed parse stops at the first shape error; a syntax error
            // later in the body still makes it malformed JSON (checked only on
            // this error path).
            if e.classify() != serde_json::error::Category::Data {
                return ApiError::malformed_json(format!("body is not valid JSON: {e}"));
            }
            // Into a Value, not IgnoredAny: serde_json skips ignored values
            // without its nesting limit, and nesting past 128 is malformed
            // JSON for both services (error path only).
            match serde_json::from_slice::<serde_json::Value>(body) {
                Err(s) => ApiError::malformed_json(format!("body is not valid JSON: {s}")),
                Ok(_) => ApiError::invalid_request(format!("{e}")),
            }
        })
    }
}

impl<'a> PredictRequest<'a> {
    /// A body already read as JSON (an API profile's, turned into the
    /// contract's shape by `Profile::to_contract`); strings are borrowed
    /// from it. Its shape errors are `invalid_request`.
    pub fn from_value(body: &'a serde_json::Value) -> Result<PredictRequest<'a>, ApiError> {
        PredictRequest::deserialize(body).map_err(|e| ApiError::invalid_request(format!("{e}")))
    }
}

/// A JSON number of `level` / `quantiles` with the text Python prints for
/// it: NeuralForecast names interval columns after the values as given
/// (`80` -> `-lo-80`, `80.0` -> `-lo-80.0`, `0.1` -> `_ql0.1`).
#[derive(Debug, Clone, PartialEq)]
pub struct PyNumber {
    pub value: f64,
    pub repr: String,
}

impl PyNumber {
    pub fn int(v: i64) -> PyNumber {
        PyNumber {
            value: v as f64,
            repr: v.to_string(),
        }
    }
    pub fn float(v: f64) -> PyNumber {
        PyNumber {
            value: v,
            repr: python_float_repr(v),
        }
    }
}

impl<'de> Deserialize<'de> for PyNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PyNumber;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E>(self, v: i64) -> Result<PyNumber, E> {
                Ok(PyNumber::int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<PyNumber, E> {
                Ok(PyNumber {
                    value: v as f64,
                    repr: v.to_string(),
                })
            }
            fn visit_f64<E>(self, v: f64) -> Result<PyNumber, E> {
                Ok(PyNumber::float(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// `repr(float)` as Python writes it: the shortest text that round-trips,
/// positional for exponents -4..16 (always with a fraction part),
/// scientific otherwise with a signed two-digit exponent (`1e-05`).
pub fn python_float_repr(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "nan".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    // `{:e}` is the shortest round-trip mantissa: "-1.25e-5", "8e1".
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let (int, frac) = if point <= 0 {
            (
                "0".to_string(),
                format!("{}{digits}", "0".repeat((-point) as usize)),
            )
        } else if point as usize >= digits.len() {
            (
                format!("{digits}{}", "0".repeat(point as usize - digits.len())),
                String::new(),
            )
        } else {
            let (a, b) = digits.split_at(point as usize);
            (a.to_string(), b.to_string())
        };
        let frac = if frac.is_empty() {
            "0".to_string()
        } else {
            frac
        };
        format!("{sign}{int}.{frac}")
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{rest}e{esign}{:02}", exp.abs())
    }
}

/// A series key: strings or integers, one kind per request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SeriesId {
    Int(i64),
    Str(String),
}

impl SeriesId {
    pub fn from_cell(v: &Cell) -> Option<SeriesId> {
        match v {
            Cell::Str(s) => Some(SeriesId::Str(s.to_string())),
            Cell::Int(i) => Some(SeriesId::Int(*i)),
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
        // Each name once, at its first position, with its last column's value:
        // what `fc.to_dict("records")` gives when nf.predict names two
        // columns alike (IQLoss levels 99.9 and 100 both write `-lo-100`).
        let mut keys: Vec<(String, usize)> = Vec::with_capacity(self.columns.len());
        for (j, c) in self.columns.iter().enumerate() {
            if self.columns[..j].contains(c) {
                continue;
            }
            let last = self.columns.iter().rposition(|o| o == c).unwrap_or(j);
            let mut k = String::new();
            write_json_str(&mut k, c);
            keys.push((k, last));
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
                Stamp::Time(_) => {
                    out.push('"');
                    ds.write_iso(&mut out);
                    out.push('"');
                }
            }
            for (k, j) in &keys {
                out.push(',');
                out.push_str(k);
                out.push(':');
                write_f32(&mut out, vals.get(*j).copied().unwrap_or(f32::NAN));
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
                .map(|e| e.code.as_str())
        };
        assert_eq!(code("{"), Some("malformed_json"));
        assert_eq!(code("{\"df\": [{\"y\": NaN}]}"), Some("malformed_json"));
        // A shape error first and a syntax error later: still malformed JSON.
        assert_eq!(code("{\"x\": 1, \"y\": NaN}"), Some("malformed_json"));
        assert_eq!(code("{\"df\": [{\"y\": 1e999}]}"), Some("malformed_json"));
        assert_eq!(code("  "), Some("malformed_json"));
        assert_eq!(code("{\"df\": null}"), Some("invalid_request"));
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
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["predictions"][0]["MLP"], 1.5);
    }

    #[test]
    fn numbers_keep_the_text_python_prints() {
        for (v, want) in [
            (80.0, "80.0"),
            (0.1, "0.1"),
            (99.5, "99.5"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (123456789012345.6, "123456789012345.6"),
            (-2.5, "-2.5"),
            (0.30000000000000004, "0.30000000000000004"),
        ] {
            assert_eq!(python_float_repr(v), want, "{v}");
        }
        let r: PredictRequest =
            serde_json::from_str(r#"{"df": [], "level": [80, 80.0, 0.5]}"#).unwrap();
        let reprs: Vec<&str> = r.level.iter().flatten().map(|n| n.repr.as_str()).collect();
        assert_eq!(reprs, ["80", "80.0", "0.5"]);
    }

    #[test]
    fn a_repeated_column_name_is_written_once_with_its_last_value() {
        let f = Forecast {
            id_col: "unique_id".into(),
            time_col: "ds".into(),
            columns: vec!["M-lo-100".into(), "M-lo-100".into(), "M".into()],
            rows: vec![(SeriesId::Int(1), Stamp::Int(7), vec![1.0, 2.0, 3.0])],
        };
        assert_eq!(
            f.to_json("m"),
            r#"{"model":"m","predictions":[{"unique_id":1,"ds":7,"M-lo-100":2.0,"M":3.0}]}"#
        );
    }

    #[test]
    fn f32_prints_as_python_float() {
        let mut s = String::new();
        write_f32(&mut s, 118.3f32);
        // float(np.float32(118.3)) == 118.30000305175781
        assert_eq!(s, "118.30000305175781");
    }
}
