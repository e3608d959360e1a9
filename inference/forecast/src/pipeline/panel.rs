//! The request as a panel for one bundle: `df`'s rows grouped by series
//! (sorted by id, each sorted by ds, no ds twice), each series' future
//! stamps and exogenous values aligned with them, and the series-level
//! scaler refitted on the request's history.

use super::cells::{exog_value, missing, number, Kinds};
use super::columns::{check_mask_and_weight, too_many_series, Seen, AVAILABLE_MASK};
use super::exog::{scale_statics, ExogTables};
use crate::bundle::vocab::Vocab;
use crate::bundle::Bundle;
use crate::contract::{Cell, PredictRequest, Row, SeriesId};
use crate::dates::Stamp;
use crate::error::{ApiError, ErrorCode};
use crate::scaling::LocalStats;
use std::collections::HashMap;

/// One `df` row of a series: ds, y, exogenous values in `Panel::exog`
/// order, available_mask.
struct HistoryRow {
    ds: Stamp,
    y: f32,
    exog: Vec<f32>,
    available: f32,
}

/// One series of the request, sorted by ds, in the local scaler's space.
#[derive(Debug)]
pub(super) struct Series {
    pub(super) id: SeriesId,
    pub(super) future: Vec<Stamp>,
    pub(super) y: Vec<f32>,
    /// `available_mask` per history row when some row is 0 (else all 1).
    /// It masks the temporal scaler's statistics and the models' insample
    /// mask, as in NeuralForecast; the series-level scaler ignores it.
    pub(super) available: Option<Vec<f32>>,
    /// Per `Panel::exog` column, the history.
    pub(super) exog: Vec<Vec<f32>>,
    /// Per bundle futr column, the `h` future values.
    pub(super) futr: Vec<Vec<f32>>,
    /// Per bundle static column.
    pub(super) stat: Vec<f32>,
    pub(super) target_scaler: Option<LocalStats>,
}

/// The validated request for one bundle.
#[derive(Debug)]
pub(super) struct Panel {
    /// The `df` exogenous columns some model reads (historic and future).
    pub(super) exog: Vec<String>,
    pub(super) futr: Vec<String>,
    pub(super) stat: Vec<String>,
    pub(super) series: Vec<Series>,
}

/// The exogenous columns some model reads, per table, and the vocabulary of
/// each categorical `df` one.
struct Names<'b> {
    exog: Vec<String>,
    vocab: Vec<Option<&'b Vocab>>,
    futr: Vec<String>,
    stat: Vec<String>,
}

impl Names<'_> {
    fn of(b: &Bundle) -> Names<'_> {
        let exog = b.df_exog();
        Names {
            vocab: exog.iter().map(|c| b.vocab.get(c)).collect(),
            exog,
            futr: b.futr_exog(),
            stat: b.stat_exog(),
        }
    }
}

impl Panel {
    /// `horizon`: how many future stamps each series gets (at least the
    /// bundle's `h`, which is what futr_df must cover).
    /// The caller has run `check_types`, which returned `seen`.
    pub(super) fn from_request(
        b: &Bundle,
        req: &PredictRequest,
        seen: Seen,
        horizon: usize,
        max_series: usize,
    ) -> Result<Panel, ApiError> {
        if req.df.is_empty() {
            return Err(ApiError::new(ErrorCode::EmptyDf, "df has no rows"));
        }
        let names = Names::of(b);
        let mut kinds = Kinds::default();
        let groups = group_rows(b, req, &seen, &names, &mut kinds, max_series)?;
        if let Some(e) = seen.unused_null {
            return Err(e);
        }
        if seen.special {
            check_mask_and_weight(&req.df)?;
        }
        let mut tables = ExogTables::read(b, req, &names.futr, &names.stat, &mut kinds)?;
        let mut series = Vec::with_capacity(groups.len());
        for (id, rows) in groups {
            let s = Series::new(b, id, rows, horizon, &names, &mut tables)?;
            series.push(s.scaled(b, &names)?);
        }
        tables.finish(b)?;
        if let Some(kind) = b.local_static_scaler {
            let mut stats: Vec<&mut Vec<f32>> = series.iter_mut().map(|s| &mut s.stat).collect();
            scale_statics(kind, b, &names.stat, &mut stats)?;
        }
        Ok(Panel {
            exog: names.exog,
            futr: names.futr,
            stat: names.stat,
            series,
        })
    }
}

/// `df`'s rows grouped by series, in sorted id order (rows in body order).
fn group_rows(
    b: &Bundle,
    req: &PredictRequest,
    seen: &Seen,
    names: &Names,
    kinds: &mut Kinds,
    max_series: usize,
) -> Result<Vec<(SeriesId, Vec<HistoryRow>)>, ApiError> {
    let mut index: HashMap<SeriesId, usize> = HashMap::new();
    let mut groups: Vec<(SeriesId, Vec<HistoryRow>)> = Vec::new();
    for (i, row) in req.df.iter().enumerate() {
        let id = kinds.id(row, &b.columns.id, "df", i)?;
        let r = history_row(b, row, i, seen, names, kinds)?;
        let g = *index.entry(id.clone()).or_insert_with(|| {
            groups.push((id, Vec::new()));
            groups.len() - 1
        });
        // Stop at the first series over the bound, before grouping the rest.
        if groups.len() > max_series {
            return Err(too_many_series(max_series));
        }
        groups[g].1.push(r);
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(groups)
}

/// One `df` row past its id: ds, y, the exogenous values, the mask.
fn history_row(
    b: &Bundle,
    row: &Row,
    i: usize,
    seen: &Seen,
    names: &Names,
    kinds: &mut Kinds,
) -> Result<HistoryRow, ApiError> {
    let cols = &b.columns;
    let ds = kinds.ds(row, &cols.time, "df", i, b.freq.is_int())?;
    let y = number(
        row.get(&cols.target)
            .ok_or_else(|| missing(&cols.target, "df", i))?,
        &cols.target,
        "df",
        i,
    )?;
    let mut x = Vec::with_capacity(names.exog.len());
    for (c, vocab) in names.exog.iter().zip(&names.vocab) {
        x.push(exog_value(
            row.get(c).ok_or_else(|| missing(c, "df", i))?,
            c,
            "df",
            i,
            *vocab,
        )?);
    }
    // Checked later, with the other available_mask values.
    let available = match seen.special.then(|| row.get(AVAILABLE_MASK)).flatten() {
        Some(Cell::Int(k)) => *k as f32,
        Some(Cell::Float(f)) => *f as f32,
        _ => 1.0,
    };
    Ok(HistoryRow {
        ds,
        y,
        exog: x,
        available,
    })
}

impl Series {
    /// One series from its rows: sorted by ds, its `horizon` future stamps,
    /// its exogenous values; not yet scaled.
    fn new(
        b: &Bundle,
        id: SeriesId,
        mut rows: Vec<HistoryRow>,
        horizon: usize,
        names: &Names,
        tables: &mut ExogTables,
    ) -> Result<Series, ApiError> {
        rows.sort_by_key(|r| r.ds);
        if let Some(w) = rows.windows(2).find(|w| w[0].ds == w[1].ds) {
            return Err(ApiError::new(
                ErrorCode::DuplicateRows,
                format!("series '{id}' has two rows with ds {}", w[0].ds),
            ));
        }
        let last = rows
            .last()
            .map(|r| r.ds)
            .ok_or_else(|| ApiError::internal("a series without rows"))?;
        let future = b
            .freq
            .horizon(last, horizon)
            .map_err(|m| ApiError::new(ErrorCode::InvalidDs, format!("series '{id}': {m}")))?;
        let y: Vec<f32> = rows.iter().map(|r| r.y).collect();
        let available = rows
            .iter()
            .any(|r| r.available != 1.0)
            .then(|| rows.iter().map(|r| r.available).collect());
        let exog: Vec<Vec<f32>> = (0..names.exog.len())
            .map(|c| rows.iter().map(|r| r.exog[c]).collect())
            .collect();
        let futr = tables.futr_of(&id, &future, b.h, names.futr.len())?;
        let stat = tables.static_of(&id)?;
        Ok(Series {
            id,
            future,
            y,
            available,
            exog,
            futr,
            stat,
            target_scaler: None,
        })
    }

    /// Series-level scaler: fit on this request's history per column,
    /// applied to the future values of the same column.
    fn scaled(mut self, b: &Bundle, names: &Names) -> Result<Series, ApiError> {
        let Some(kind) = b.local_scaler else {
            return Ok(self);
        };
        let id = &self.id;
        let refit = |vals: &[f32], col: &str| {
            kind.fit(vals).map_err(|m| {
                ApiError::new(
                    ErrorCode::InvalidValue,
                    format!("series '{id}', column '{col}': {m}"),
                )
            })
        };
        let s = refit(&self.y, &b.columns.target)?;
        self.y.iter_mut().for_each(|v| *v = s.transform(*v));
        self.target_scaler = Some(s);
        for (c, col) in names.exog.iter().enumerate() {
            // Categories are not scaled (NeuralForecast skips its vocabulary's columns).
            if names.vocab[c].is_some() {
                continue;
            }
            let s = refit(&self.exog[c], col)?;
            self.exog[c].iter_mut().for_each(|v| *v = s.transform(*v));
            if let Some(f) = names.futr.iter().position(|n| n == col) {
                self.futr[f].iter_mut().for_each(|v| *v = s.transform(*v));
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{bundle, frame, panel_of, stamp, x_at, y_at};
    use super::*;
    use serde_json::json;

    #[test]
    fn series_are_grouped_sorted_by_id_then_ds() {
        let b = bundle("mlp_d_standard");
        let body = json!({"df": [
            {"unique_id": "b", "ds": "2024-01-03", "y": 3},
            {"unique_id": "a", "ds": "2024-01-02", "y": 2},
            {"unique_id": "b", "ds": "2024-01-01", "y": 1},
            {"unique_id": "a", "ds": "2024-01-01", "y": 5},
        ]});
        let p = panel_of(&b, &body, 14, 10).unwrap();
        let ids: Vec<String> = p.series.iter().map(|s| s.id.to_string()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(p.series[0].y, [5.0, 2.0]);
        assert_eq!(p.series[1].y, [1.0, 3.0]);
        // Each series' future starts after its own last ds.
        assert_eq!(p.series[0].future.len(), 14);
        assert_eq!(p.series[0].future[0], stamp(2));
        assert_eq!(p.series[1].future[0], stamp(3));
        assert!(p.series.iter().all(|s| s.available.is_none()));
        assert!(p.series.iter().all(|s| s.target_scaler.is_none()));
    }

    #[test]
    fn a_ds_twice_in_a_series_is_refused() {
        let b = bundle("mlp_d_standard");
        let body = json!({"df": [
            {"unique_id": "a", "ds": "2024-01-02", "y": 2},
            {"unique_id": "b", "ds": "2024-01-02", "y": 2},
            {"unique_id": "a", "ds": "2024-01-02", "y": 3},
        ]});
        let e = panel_of(&b, &body, 7, 10).unwrap_err();
        assert_eq!(e.code, ErrorCode::DuplicateRows);
        assert!(
            e.message
                .starts_with("series 'a' has two rows with ds 2024-01-02"),
            "{}",
            e.message
        );
    }

    #[test]
    fn rows_are_read_before_the_series_are_checked() {
        let b = bundle("mlp_d_standard");
        let e = panel_of(&b, &json!({"df": []}), 7, 10).unwrap_err();
        assert_eq!(e.code, ErrorCode::EmptyDf);
        let three = frame(&b, &["a", "b", "c"], 3);
        assert!(panel_of(&b, &three, 7, 3).is_ok());
        let e = panel_of(&b, &three, 7, 2).unwrap_err();
        assert_eq!(e.code, ErrorCode::TooManySeries);
        let body = json!({"df": [
            {"unique_id": "a", "ds": "2024-01-01", "y": 1, "x": null},
            {"unique_id": "a", "ds": "2024-01-02"},
        ]});
        // The missing y of row 1 comes before the null of an unused column.
        let e = panel_of(&b, &body, 7, 10).unwrap_err();
        assert_eq!(e.code, ErrorCode::MissingColumn);
        assert_eq!(e.message, "df[1] has no 'y' column");
        let body = json!({"df": [{"unique_id": "a", "ds": "2024-01-01", "y": 1, "x": null}]});
        let e = panel_of(&b, &body, 7, 10).unwrap_err();
        assert_eq!(e.code, ErrorCode::NonFiniteValue);
        let body = json!({"df": [{"unique_id": "a", "ds": 3, "y": 1}]});
        let e = panel_of(&b, &body, 7, 10).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidDs);
    }

    #[test]
    fn the_mask_is_kept_only_when_some_row_is_unavailable() {
        let b = bundle("mlp_d_standard");
        let mut body = frame(&b, &["a", "b"], 4);
        for (i, row) in body["df"].as_array_mut().unwrap().iter_mut().enumerate() {
            row["available_mask"] = json!(if i == 5 { 0 } else { 1 });
        }
        let p = panel_of(&b, &body, 7, 10).unwrap();
        assert!(p.series[0].available.is_none());
        assert_eq!(
            p.series[1].available.as_deref(),
            Some(&[1.0, 0.0, 1.0, 1.0][..])
        );
        body["df"][0]["available_mask"] = json!(0.5);
        let e = panel_of(&b, &body, 7, 10).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidValue);
    }

    #[test]
    fn the_series_scaler_is_refitted_on_the_request() {
        let mut b = bundle("mlp_cat");
        let body = frame(&b, &["a", "b"], 20);
        let scaled = panel_of(&b, &body, 7, 10).unwrap();
        b.local_scaler = None;
        let raw = panel_of(&b, &body, 7, 10).unwrap();
        assert_eq!(raw.series[1].y[3], y_at(1, 3) as f32);
        for (s, r) in scaled.series.iter().zip(&raw.series) {
            let ls = s.target_scaler.unwrap();
            let mean = s.y.iter().sum::<f32>() / s.y.len() as f32;
            assert!(mean.abs() < 1e-4, "{mean}");
            for (v, want) in s.y.iter().zip(&r.y) {
                assert!((ls.inverse(*v) - want).abs() < 1e-3);
            }
            for (c, col) in scaled.exog.iter().enumerate() {
                let category = b.vocab.get(col).is_some();
                // Categories keep their vocabulary numbers.
                assert_eq!(s.exog[c] == r.exog[c], category, "{col}");
                if let Some(f) = scaled.futr.iter().position(|n| n == col) {
                    assert_eq!(s.futr[f] == r.futr[f], category, "{col}");
                }
            }
        }
        assert_eq!(raw.exog, b.df_exog());
        assert_eq!(raw.series[0].exog[0][2], x_at(0, 0, 2) as f32);
    }
}
