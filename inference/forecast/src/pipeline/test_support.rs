//! Fixtures for the pipeline's unit tests: the golden bundles and requests
//! written in the tests.

use crate::bundle::Bundle;
use crate::contract::PredictRequest;
use std::path::PathBuf;

pub(super) fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// A golden bundle of `tests/fixtures/bundles`.
pub(super) fn bundle(name: &str) -> Bundle {
    Bundle::load(&fixtures().join("bundles").join(name)).unwrap()
}

pub(super) fn request(body: &str) -> PredictRequest<'_> {
    PredictRequest::from_slice(body.as_bytes()).unwrap()
}

/// The error of a result whose value has no `Debug`.
pub(super) fn err<T>(r: Result<T, crate::error::ApiError>) -> crate::error::ApiError {
    match r {
        Err(e) => e,
        Ok(_) => panic!("expected an error"),
    }
}

/// `ds` of day `d` after 2024-01-01.
pub(super) fn day(d: u64) -> String {
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    (start + chrono::Days::new(d))
        .format("%Y-%m-%d")
        .to_string()
}

pub(super) fn stamp(d: u64) -> crate::dates::Stamp {
    crate::dates::Stamp::parse_str(&day(d)).unwrap()
}

/// y of series `k` at day `t` in `frame`.
pub(super) fn y_at(k: usize, t: usize) -> f64 {
    100.0 * (k + 1) as f64 + t as f64 + ((t * 7) % 5) as f64
}

/// Exogenous column `c` of series `k` at day `t` (future days too).
pub(super) fn x_at(k: usize, c: usize, t: usize) -> f64 {
    10.0 * k as f64 + c as f64 + 0.5 * t as f64 + ((t * 3) % 4) as f64
}

/// A daily request for bundle `b`: `n` df rows per id (days 0..n), futr_df
/// with the next `b.h` days, static_df one row per id; every column of the
/// bundle filled by `y_at` / `x_at` (static column `c`: `k + c + 1`).
pub(super) fn frame(b: &Bundle, ids: &[&str], n: usize) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let (exog, futr, stat) = (b.df_exog(), b.futr_exog(), b.stat_exog());
    let row = |id: &str, t: usize| {
        let mut r = Map::new();
        r.insert("unique_id".into(), json!(id));
        r.insert("ds".into(), json!(day(t as u64)));
        r
    };
    let (mut df, mut fd, mut sd) = (vec![], vec![], vec![]);
    for (k, id) in ids.iter().enumerate() {
        for t in 0..n {
            let mut r = row(id, t);
            r.insert("y".into(), json!(y_at(k, t)));
            for (c, col) in exog.iter().enumerate() {
                r.insert(col.clone(), json!(x_at(k, c, t)));
            }
            df.push(Value::Object(r));
        }
        for t in n..n + b.h {
            let mut r = row(id, t);
            for col in &futr {
                let c = exog.iter().position(|e| e == col).unwrap();
                r.insert(col.clone(), json!(x_at(k, c, t)));
            }
            fd.push(Value::Object(r));
        }
        let mut r = Map::new();
        r.insert("unique_id".into(), json!(id));
        for (c, col) in stat.iter().enumerate() {
            r.insert(col.clone(), json!((k + c + 1) as f64));
        }
        sd.push(Value::Object(r));
    }
    let mut out = json!({ "df": df });
    if !futr.is_empty() {
        out["futr_df"] = json!(fd);
    }
    if !stat.is_empty() {
        out["static_df"] = json!(sd);
    }
    out
}

/// The panel `predict` builds of `body` (types checked first).
pub(super) fn panel_of(
    b: &Bundle,
    body: &serde_json::Value,
    horizon: usize,
    max_series: usize,
) -> Result<super::panel::Panel, crate::error::ApiError> {
    let text = body.to_string();
    let req = request(&text);
    let seen = super::columns::check_types(&req, b, &super::columns::UsedColumns::of(b))?;
    super::panel::Panel::from_request(b, &req, seen, horizon, max_series)
}
