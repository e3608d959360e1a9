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
