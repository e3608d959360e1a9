//! The exogenous tables beside `df`: `futr_df` aligned with each series'
//! future stamps, `static_df` with its series, and the static scaler fitted
//! across the request's series. (Historic exogenous come with `df`'s rows.)

use super::cells::{exog_value, missing, Kinds};
use crate::bundle::vocab::Vocab;
use crate::bundle::Bundle;
use crate::contract::{PredictRequest, Row, SeriesId};
use crate::dates::Stamp;
use crate::error::{ApiError, ErrorCode};
use crate::scaling::LocalScalerKind;
use std::collections::HashMap;

type KeyedRows = HashMap<(SeriesId, Option<Stamp>), Vec<f32>>;

/// `futr_df` and `static_df` read and keyed, and how many of their rows the
/// series used.
pub(super) struct ExogTables {
    futr: Option<KeyedRows>,
    stat: Option<KeyedRows>,
    futr_used: usize,
    static_used: usize,
}

impl ExogTables {
    /// futr_df, when given, must cover the horizon grid of every series
    /// (rows beyond it, or for series not in df, are ignored as nf.predict
    /// drops them); static_df exactly one row per series (NeuralForecast
    /// matches static rows by sorted position, so an extra or missing
    /// series would silently shift the statics: refused).
    pub(super) fn read(
        b: &Bundle,
        req: &PredictRequest,
        futr: &[String],
        stat: &[String],
        kinds: &mut Kinds,
    ) -> Result<ExogTables, ApiError> {
        let int_freq = b.freq.is_int();
        let futr_rows = match &req.futr_df {
            None if !futr.is_empty() => return Err(required("futr_df", "future", b, futr)),
            None => None,
            Some(rows) => Some(keyed_rows(rows, futr, "futr_df", b, kinds, int_freq, true)?),
        };
        let static_rows = match &req.static_df {
            None if !stat.is_empty() => return Err(required("static_df", "static", b, stat)),
            None => None,
            Some(rows) => Some(keyed_rows(
                rows,
                stat,
                "static_df",
                b,
                kinds,
                int_freq,
                false,
            )?),
        };
        Ok(ExogTables {
            futr: futr_rows,
            stat: static_rows,
            futr_used: 0,
            static_used: 0,
        })
    }

    /// Per futr column, series `id`'s values at the first `h` of its
    /// `future` stamps (empty columns without futr_df).
    pub(super) fn futr_of(
        &mut self,
        id: &SeriesId,
        future: &[Stamp],
        h: usize,
        width: usize,
    ) -> Result<Vec<Vec<f32>>, ApiError> {
        let mut fut: Vec<Vec<f32>> = vec![Vec::with_capacity(h); width];
        if let Some(frows) = &self.futr {
            for ds in future.iter().take(h) {
                let r = frows.get(&(id.clone(), Some(*ds))).ok_or_else(|| {
                    ApiError::new(ErrorCode::InvalidExogenous, format!("futr_df has no row for series '{id}' at ds {ds}; it must hold the next {h} ds of every series"),
                    )
                })?;
                self.futr_used += 1;
                for (c, v) in r.iter().enumerate() {
                    fut[c].push(*v);
                }
            }
        }
        Ok(fut)
    }

    /// Series `id`'s static values (none without static_df).
    pub(super) fn static_of(&mut self, id: &SeriesId) -> Result<Vec<f32>, ApiError> {
        match &self.stat {
            None => Ok(Vec::new()),
            Some(srows) => {
                self.static_used += 1;
                srows.get(&(id.clone(), None)).cloned().ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidExogenous,
                        format!("static_df has no row for series '{id}'"),
                    )
                })
            }
        }
    }

    /// Once every series took its rows: futr_df rows left over are
    /// dropped, static_df rows left over refused.
    pub(super) fn finish(&self, b: &Bundle) -> Result<(), ApiError> {
        if let Some(extra) = self.futr.as_ref().filter(|r| r.len() > self.futr_used) {
            // nf.predict drops them too ("Dropped N unused rows from futr_df").
            tracing::debug!(
                bundle = %b.name,
                rows = extra.len() - self.futr_used,
                "futr_df rows beyond the horizon grid ignored"
            );
        }
        if let Some(extra) = self.stat.as_ref().filter(|r| r.len() > self.static_used) {
            return Err(ApiError::new(
                ErrorCode::InvalidExogenous,
                format!(
                    "static_df has {} rows for series that are not in df",
                    extra.len() - self.static_used
                ),
            ));
        }
        Ok(())
    }
}

fn required(table: &str, kind: &str, b: &Bundle, cols: &[String]) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidExogenous,
        format!(
            "{table} is required: bundle '{}' uses {kind} exogenous {}",
            b.name,
            cols.join(", ")
        ),
    )
}

/// futr_df (keyed by id and ds) or static_df (keyed by id) rows, holding the
/// wanted columns in order.
fn keyed_rows(
    rows: &[Row],
    wanted: &[String],
    table: &str,
    b: &Bundle,
    kinds: &mut Kinds,
    int_freq: bool,
    with_ds: bool,
) -> Result<KeyedRows, ApiError> {
    let cols = &b.columns;
    let vocab: Vec<Option<&Vocab>> = wanted.iter().map(|c| b.vocab.get(c)).collect();
    let mut out = HashMap::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let id = kinds.id(row, &cols.id, table, i)?;
        let ds = if with_ds {
            Some(kinds.ds(row, &cols.time, table, i, int_freq)?)
        } else {
            None
        };
        let vals = wanted
            .iter()
            .zip(&vocab)
            .map(|(c, v)| {
                exog_value(
                    row.get(c).ok_or_else(|| missing(c, table, i))?,
                    c,
                    table,
                    i,
                    *v,
                )
            })
            .collect::<Result<Vec<f32>, _>>()?;
        if out.insert((id.clone(), ds), vals).is_some() {
            return Err(ApiError::new(
                ErrorCode::DuplicateRows,
                format!(
                    "{table} has two rows for series '{id}'{}",
                    ds.map(|d| format!(" at ds {d}")).unwrap_or_default()
                ),
            ));
        }
    }
    Ok(out)
}

/// The bundle's static scaler, fitted across all series of the request per
/// static column (`names`, in the order of each series' `stats`).
pub(super) fn scale_statics(
    kind: LocalScalerKind,
    b: &Bundle,
    names: &[String],
    stats: &mut [&mut Vec<f32>],
) -> Result<(), ApiError> {
    for (c, name) in names.iter().enumerate() {
        if b.vocab.get(name).is_some() {
            continue;
        }
        let col: Vec<f32> = stats.iter().map(|s| s[c]).collect();
        let st = kind.fit(&col).map_err(|m| {
            ApiError::new(
                ErrorCode::InvalidValue,
                format!("static column '{name}': {m}"),
            )
        })?;
        stats.iter_mut().for_each(|s| s[c] = st.transform(s[c]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{bundle, day, frame, panel_of, stamp, x_at};
    use super::*;
    use serde_json::{json, Value};

    fn rows<'v>(body: &'v mut Value, table: &str) -> &'v mut Vec<Value> {
        body[table].as_array_mut().unwrap()
    }

    #[test]
    fn the_tables_a_model_reads_are_required() {
        let b = bundle("mlp_exog");
        let mut body = frame(&b, &["s1", "s2"], 20);
        body.as_object_mut().unwrap().remove("futr_df");
        let e = panel_of(&b, &body, b.h, 10).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidExogenous);
        assert_eq!(
            e.message,
            "futr_df is required: bundle 'mlp_exog' uses future exogenous promo, wave"
        );
        let mut body = frame(&b, &["s1", "s2"], 20);
        body.as_object_mut().unwrap().remove("static_df");
        let e = panel_of(&b, &body, b.h, 10).unwrap_err();
        assert!(
            e.message.starts_with("static_df is required"),
            "{}",
            e.message
        );
    }

    #[test]
    fn futr_rows_align_with_each_series_future() {
        let mut b = bundle("mlp_exog");
        b.local_scaler = None;
        let mut body = frame(&b, &["s1", "s2"], 20);
        rows(&mut body, "futr_df").reverse();
        // A row past the horizon grid, and one of a series not in df: dropped.
        let extra = json!({"unique_id": "s1", "ds": day(40), "promo": 1, "wave": 1});
        rows(&mut body, "futr_df").push(extra);
        let other = json!({"unique_id": "zz", "ds": day(20), "promo": 1, "wave": 1});
        rows(&mut body, "futr_df").push(other);
        let p = panel_of(&b, &body, b.h, 10).unwrap();
        assert_eq!(p.futr, ["promo", "wave"]);
        for (k, s) in p.series.iter().enumerate() {
            for (f, col) in p.futr.iter().enumerate() {
                let c = p.exog.iter().position(|e| e == col).unwrap();
                let want: Vec<f32> = (20..20 + b.h).map(|t| x_at(k, c, t) as f32).collect();
                assert_eq!(s.futr[f], want, "{col}");
            }
            assert_eq!(s.stat, [(k + 1) as f32, (k + 2) as f32]);
        }
    }

    #[test]
    fn a_missing_futr_row_is_refused() {
        let b = bundle("mlp_exog");
        let mut body = frame(&b, &["s1", "s2"], 20);
        let at = b.h + 3;
        rows(&mut body, "futr_df").remove(at);
        let e = panel_of(&b, &body, b.h, 10).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidExogenous);
        assert!(
            e.message.starts_with(&format!(
                "futr_df has no row for series 's2' at ds {};",
                stamp(23)
            )),
            "{}",
            e.message
        );
        assert!(e
            .message
            .ends_with("it must hold the next 7 ds of every series"));
        // A longer horizon than h needs no more futr_df rows.
        let mut b = bundle("mlp_exog");
        b.local_scaler = None;
        let body = frame(&b, &["s1", "s2"], 20);
        let p = panel_of(&b, &body, 3 * b.h, 10).unwrap();
        assert_eq!(p.series[0].futr[0].len(), b.h);
        assert_eq!(p.series[0].future.len(), 3 * b.h);
    }

    #[test]
    fn static_rows_match_the_series_one_to_one() {
        let b = bundle("mlp_exog");
        let mut body = frame(&b, &["s1", "s2"], 20);
        rows(&mut body, "static_df").push(json!({"unique_id": "zz", "size": 1, "region": 0}));
        let e = panel_of(&b, &body, b.h, 10).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidExogenous);
        assert_eq!(
            e.message,
            "static_df has 1 rows for series that are not in df"
        );
        let mut body = frame(&b, &["s1", "s2"], 20);
        rows(&mut body, "static_df").remove(1);
        let e = panel_of(&b, &body, b.h, 10).unwrap_err();
        assert_eq!(e.message, "static_df has no row for series 's2'");
        let mut body = frame(&b, &["s1", "s2"], 20);
        rows(&mut body, "static_df")[1]["region"] = Value::Null;
        let e = panel_of(&b, &body, b.h, 10).unwrap_err();
        assert_eq!(e.code, ErrorCode::NonFiniteValue);
    }

    #[test]
    fn exogenous_rows_are_unique() {
        let b = bundle("mlp_exog");
        let mut body = frame(&b, &["s1", "s2"], 20);
        let dup = rows(&mut body, "futr_df")[2].clone();
        rows(&mut body, "futr_df").push(dup);
        let e = panel_of(&b, &body, b.h, 10).unwrap_err();
        assert_eq!(e.code, ErrorCode::DuplicateRows);
        assert_eq!(
            e.message,
            format!("futr_df has two rows for series 's1' at ds {}", stamp(22))
        );
        let mut body = frame(&b, &["s1", "s2"], 20);
        let dup = rows(&mut body, "static_df")[0].clone();
        rows(&mut body, "static_df").push(dup);
        let e = panel_of(&b, &body, b.h, 10).unwrap_err();
        assert_eq!(e.message, "static_df has two rows for series 's1'");
        // ids keep one kind across the tables.
        let mut body = frame(&b, &["s1", "s2"], 20);
        rows(&mut body, "static_df")[0]["unique_id"] = json!(1);
        let e = panel_of(&b, &body, b.h, 10).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidDs);
    }

    #[test]
    fn statics_are_scaled_across_the_series() {
        let mut b = bundle("mlp_exog_static");
        assert!(b.local_static_scaler.is_some());
        let body = frame(&b, &["s1", "s2", "s3"], 20);
        let p = panel_of(&b, &body, b.h, 10).unwrap();
        for c in 0..p.stat.len() {
            let col: Vec<f32> = p.series.iter().map(|s| s.stat[c]).collect();
            assert!(col.iter().sum::<f32>().abs() < 1e-5, "{col:?}");
            assert!(col[0] < col[1] && col[1] < col[2], "{col:?}");
        }
        b.local_static_scaler = None;
        let p = panel_of(&b, &body, b.h, 10).unwrap();
        assert_eq!(p.series[2].stat, [3.0, 4.0]);
    }

    #[test]
    fn categorical_statics_are_not_scaled() {
        let b = bundle("mlp_cat");
        assert_eq!(b.stat_exog(), ["size", "store"]);
        let (mut s1, mut s2) = (vec![1.0, 5.0], vec![3.0, 7.0]);
        let mut stats = [&mut s1, &mut s2];
        scale_statics(LocalScalerKind::Standard, &b, &b.stat_exog(), &mut stats).unwrap();
        assert_eq!((s1[0], s2[0]), (-1.0, 1.0));
        assert_eq!((s1[1], s2[1]), (5.0, 7.0));
    }
}
