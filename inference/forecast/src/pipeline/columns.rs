//! The columns of the request against the bundle, before any check of
//! meaning: which columns some model reads, the type of every cell the body
//! holds, and NeuralForecast's own `available_mask` / `sample_weight`.

use super::cells::{kind_of, number};
use crate::bundle::Bundle;
use crate::contract::{Cell, PredictRequest, Row};
use crate::error::{ApiError, ErrorCode};

/// NeuralForecast's own column in `df` marking a row available (1) or not (0).
pub const AVAILABLE_MASK: &str = "available_mask";

/// NeuralForecast's training weight column: predict ignores it, but refuses
/// a missing or negative weight on an available row.
pub const SAMPLE_WEIGHT: &str = "sample_weight";

pub(super) fn too_many_series(max_series: usize) -> ApiError {
    ApiError::new(ErrorCode::TooManySeries, format!("df holds more than {max_series} series, the most one request may hold (split the request)"),
    )
}

/// The columns of each table some model of the bundle reads; `nf.predict`
/// ignores every other column, whatever it holds, and so does this service.
pub(super) struct UsedColumns {
    df: Vec<String>,
    futr_df: Vec<String>,
    static_df: Vec<String>,
}

impl UsedColumns {
    pub(super) fn of(b: &Bundle) -> UsedColumns {
        let c = &b.columns;
        let mut df = vec![
            c.id.clone(),
            c.time.clone(),
            c.target.clone(),
            AVAILABLE_MASK.to_string(),
        ];
        df.extend(b.df_exog());
        let mut futr_df = vec![c.id.clone(), c.time.clone()];
        futr_df.extend(b.futr_exog());
        let mut static_df = vec![c.id.clone()];
        static_df.extend(b.stat_exog());
        UsedColumns {
            df,
            futr_df,
            static_df,
        }
    }

    fn get(&self, table: &str) -> &[String] {
        match table {
            "df" => &self.df,
            "futr_df" => &self.futr_df,
            _ => &self.static_df,
        }
    }
}

/// A value in a column no model reads that `nf.predict` still takes:
/// NeuralForecast turns every `df` column into float32 (numbers, booleans,
/// numeric strings convert) and every `static_df` column into a float
/// tensor; `futr_df` keeps only the columns it needs. `null` passes here and
/// is refused with the other missing values (`Seen::unused_null`).
fn unused_ok(table: &str, v: &Cell) -> bool {
    match (table, v) {
        ("futr_df", _) => true,
        (_, Cell::Int(_) | Cell::Float(_) | Cell::Null) => true,
        ("df", Cell::Bool(_)) => true,
        ("df", Cell::Str(s)) => s.trim().parse::<f64>().is_ok_and(|x| !x.is_nan()),
        _ => false,
    }
}

/// What `check_types` saw that later checks need, so they need not read
/// every cell again.
#[derive(Default)]
pub(super) struct Seen {
    /// The first `null` in a `df` or `static_df` column no model reads:
    /// NeuralForecast refuses a missing value in every such column
    /// (`Found missing values in [...]`), in the order of the value checks.
    pub(super) unused_null: Option<ApiError>,
    /// Some `df` row has `available_mask` or `sample_weight`.
    pub(super) special: bool,
}

/// `available_mask` and `sample_weight` in `df`, row by row in the Python
/// reference's order (sample_weight, then available_mask): NeuralForecast
/// checks sample_weight on available rows only, and a mask given on some
/// rows must be given on all.
pub(super) fn check_mask_and_weight(df: &[Row]) -> Result<(), ApiError> {
    let with_mask = df.iter().any(|r| r.get(AVAILABLE_MASK).is_some());
    for (i, row) in df.iter().enumerate() {
        let unavailable = match row.get(AVAILABLE_MASK) {
            Some(Cell::Int(m)) => *m == 0,
            Some(Cell::Float(m)) => *m == 0.0,
            _ => false,
        };
        let weight = match row.get(SAMPLE_WEIGHT) {
            Some(Cell::Str(_)) => {
                return Err(ApiError::new(ErrorCode::InvalidValue, format!("df[{i}].{SAMPLE_WEIGHT} is a string: NeuralForecast compares it with 0 and refuses it"),
                ))
            }
            Some(Cell::Int(w)) => Some(*w as f64),
            Some(Cell::Float(w)) => Some(*w),
            _ => None,
        };
        if let Some(w) = weight.filter(|w| *w < 0.0 && !unavailable) {
            return Err(ApiError::new(ErrorCode::InvalidValue, format!("df[{i}].{SAMPLE_WEIGHT} = {w}: NeuralForecast refuses a negative sample_weight"),
            ));
        }
        if with_mask && row.get(AVAILABLE_MASK).is_none() {
            // NeuralForecast: "Found missing values in ['available_mask']".
            return Err(ApiError::new(
                ErrorCode::MissingColumn,
                format!("df[{i}] lacks {AVAILABLE_MASK}, which other rows have"),
            ));
        }
        if let Some(v) = row.get(AVAILABLE_MASK) {
            let m = number(v, AVAILABLE_MASK, "df", i)?;
            if m != 0.0 && m != 1.0 {
                return Err(ApiError::new(ErrorCode::InvalidValue, format!("df[{i}].{AVAILABLE_MASK} = {m}: it must be 1 (available) or 0 (unavailable)"),
                ));
            }
        }
    }
    Ok(())
}

/// The wrong-type checks over the whole body come before any check of
/// meaning, so a request with both faults gets the same answer from both
/// services. Columns no model uses are not checked (nor read).
pub(super) fn check_types(
    req: &PredictRequest,
    b: &Bundle,
    used: &UsedColumns,
) -> Result<Seen, ApiError> {
    let mut seen = Seen::default();
    let tables = [
        ("df", Some(&req.df)),
        ("futr_df", req.futr_df.as_ref()),
        ("static_df", req.static_df.as_ref()),
    ];
    let mut ignored = 0usize;
    for (table, rows) in tables {
        let used = used.get(table);
        for (i, row) in rows.into_iter().flatten().enumerate() {
            for (k, v) in row.iter() {
                if table == "df" && (k == AVAILABLE_MASK || k == SAMPLE_WEIGHT) {
                    seen.special = true;
                }
                if !used.iter().any(|u| u == k) {
                    if matches!(v, Cell::Null) && table != "futr_df" && seen.unused_null.is_none() {
                        seen.unused_null = Some(ApiError::new(ErrorCode::NonFiniteValue, format!("{table}[{i}].{k} is null: NeuralForecast refuses missing values in every {table} column, even one no model reads"),
                        ));
                    }
                    if !unused_ok(table, v) {
                        return Err(ApiError::invalid_request(format!(
                            "{table}[{i}].{k} is {}: no model reads it, but nf.predict converts every {table} column to numbers and refuses this",
                            kind_of(v)
                        )));
                    }
                    ignored += 1;
                    continue;
                }
                if !used_type_ok(b, table, k, v) {
                    return Err(ApiError::invalid_request(format!(
                        "{table}[{i}].{k} has the wrong type ({})",
                        kind_of(v)
                    )));
                }
            }
        }
    }
    if ignored > 0 {
        tracing::debug!(
            bundle = %b.name,
            cells = ignored,
            "ignored cells of columns no model uses"
        );
    }
    Ok(seen)
}

/// The types a column some model reads may hold.
fn used_type_ok(b: &Bundle, table: &str, k: &str, v: &Cell) -> bool {
    let cols = &b.columns;
    if k == cols.id {
        matches!(v, Cell::Str(_) | Cell::Int(_))
    } else if k == cols.time && table != "static_df" {
        matches!(v, Cell::Str(_) | Cell::Int(_) | Cell::Float(_))
    } else if b.vocab.get(k).is_some() {
        // A category: any value pandas can map (strings too).
        matches!(
            v,
            Cell::Str(_) | Cell::Int(_) | Cell::Float(_) | Cell::Bool(_) | Cell::Null
        )
    } else {
        matches!(v, Cell::Int(_) | Cell::Float(_) | Cell::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{bundle, err, request};
    use super::*;

    fn types(b: &Bundle, body: &str) -> Result<Seen, ApiError> {
        let req = request(body);
        check_types(&req, b, &UsedColumns::of(b))
    }

    #[test]
    fn used_columns_are_the_keys_and_each_models_exogenous() {
        let b = bundle("mlp_exog_static");
        let used = UsedColumns::of(&b);
        assert_eq!(
            &used.get("df")[..4],
            ["unique_id", "ds", "y", AVAILABLE_MASK]
        );
        assert_eq!(used.get("df")[4..].to_vec(), b.df_exog());
        assert_eq!(&used.get("futr_df")[..2], ["unique_id", "ds"]);
        assert_eq!(used.get("futr_df")[2..].to_vec(), b.futr_exog());
        assert_eq!(used.get("static_df")[1..].to_vec(), b.stat_exog());
        assert!(!b.stat_exog().is_empty());
    }

    #[test]
    fn unused_columns_take_what_nf_predict_converts() {
        assert!(unused_ok("df", &Cell::Bool(true)));
        assert!(unused_ok("df", &Cell::Str(" 2.5 ".into())));
        assert!(!unused_ok("df", &Cell::Str("nan".into())));
        assert!(!unused_ok("df", &Cell::Str("abc".into())));
        assert!(!unused_ok("static_df", &Cell::Bool(true)));
        assert!(unused_ok("static_df", &Cell::Null));
        assert!(unused_ok("futr_df", &Cell::Object));
    }

    #[test]
    fn wrong_types_are_refused_before_meaning() {
        let b = bundle("mlp_d_standard");
        let e = err(types(
            &b,
            r#"{"df": [{"unique_id": 1.5, "ds": 1, "y": 1}]}"#,
        ));
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert_eq!(e.message, "df[0].unique_id has the wrong type (a number)");
        let e = err(types(
            &b,
            r#"{"df": [{"unique_id": "a", "ds": true, "y": 1}]}"#,
        ));
        assert_eq!(e.message, "df[0].ds has the wrong type (a boolean)");
        let e = err(types(
            &b,
            r#"{"df": [{"unique_id": "a", "ds": 1, "y": "2"}]}"#,
        ));
        assert_eq!(e.message, "df[0].y has the wrong type (a string)");
        // An unused column is only converted: a numeric string passes.
        let ok = types(
            &b,
            r#"{"df": [{"unique_id": "a", "ds": 1, "y": 1, "x": "2"}]}"#,
        );
        assert!(ok.is_ok());
        let e = err(types(
            &b,
            r#"{"df": [{"unique_id": "a", "ds": 1, "y": 1, "x": []}]}"#,
        ));
        assert!(e
            .message
            .starts_with("df[0].x is an array: no model reads it"));
        let e = err(types(
            &b,
            r#"{"df": [{"unique_id": "a"}], "static_df": [{"unique_id": "a", "k": "s"}]}"#,
        ));
        assert!(
            e.message.starts_with("static_df[0].k is a string"),
            "{}",
            e.message
        );
    }

    #[test]
    fn categories_take_any_mappable_value() {
        let b = bundle("mlp_cat");
        let cat = b
            .df_exog()
            .into_iter()
            .find(|c| b.vocab.get(c).is_some())
            .unwrap();
        let body = format!(r#"{{"df": [{{"unique_id": "a", "{cat}": true}}]}}"#);
        assert!(types(&b, &body).is_ok());
        let body = format!(r#"{{"df": [{{"unique_id": "a", "{cat}": {{}}}}]}}"#);
        assert_eq!(err(types(&b, &body)).code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn seen_keeps_the_first_unused_null_and_the_special_columns() {
        let b = bundle("mlp_d_standard");
        let seen = types(&b, r#"{"df": [{"unique_id": "a", "ds": 1, "y": 1}]}"#).unwrap();
        assert!(seen.unused_null.is_none() && !seen.special);
        let seen = types(
            &b,
            r#"{"df": [{"y": 1, "p": null}, {"q": null, "sample_weight": 1}],
                "futr_df": [{"r": null}]}"#,
        )
        .unwrap();
        assert!(seen.special);
        let e = seen.unused_null.unwrap();
        assert_eq!(e.code, ErrorCode::NonFiniteValue);
        assert!(e.message.starts_with("df[0].p is null"), "{}", e.message);
        // futr_df keeps only the columns it needs: a null elsewhere is fine.
        let seen = types(&b, r#"{"df": [{"y": 1}], "futr_df": [{"r": null}]}"#).unwrap();
        assert!(seen.unused_null.is_none());
    }

    fn mask_check(body: &str) -> Result<(), ApiError> {
        check_mask_and_weight(&request(body).df)
    }

    #[test]
    fn mask_and_weight_follow_neuralforecast() {
        assert!(mask_check(r#"{"df": [{"available_mask": 1}, {"available_mask": 0.0}]}"#).is_ok());
        // A negative weight on an unavailable row is not checked.
        let ok = mask_check(r#"{"df": [{"available_mask": 0, "sample_weight": -1}]}"#);
        assert!(ok.is_ok());
        let e = mask_check(r#"{"df": [{"sample_weight": -1}]}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidValue);
        assert!(e.message.contains("negative sample_weight"));
        let e = mask_check(r#"{"df": [{"sample_weight": "1"}]}"#).unwrap_err();
        assert!(e.message.contains("is a string"));
        let e = mask_check(r#"{"df": [{"available_mask": 1}, {"y": 2}]}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::MissingColumn);
        assert_eq!(
            e.message,
            "df[1] lacks available_mask, which other rows have"
        );
        let e = mask_check(r#"{"df": [{"available_mask": 0.5}]}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidValue);
        let e = mask_check(r#"{"df": [{"available_mask": null}]}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::NonFiniteValue);
        // sample_weight is checked before the mask of the same row.
        let e = mask_check(r#"{"df": [{"available_mask": 2, "sample_weight": -1}]}"#);
        assert!(e.unwrap_err().message.contains("sample_weight"));
    }

    #[test]
    fn too_many_series_names_the_bound() {
        let e = too_many_series(3);
        assert_eq!(e.code, ErrorCode::TooManySeries);
        assert!(e.message.starts_with("df holds more than 3 series"));
    }
}
