//! From a request to a forecast for one bundle, as `NeuralForecast.predict`
//! does it: validate and group the rows, refit the series-level scaler, build
//! each model's last window (left-padded, temporally normalised), run the
//! forward pass, invert both scalings, and lay out the rows.

use crate::bundle::conformal::Calibration;
use crate::bundle::vocab::Vocab;
use crate::bundle::{Bundle, BundleModel};
use crate::contract::{Cell, Forecast, PredictRequest, Row, SeriesId};
use crate::dates::Stamp;
use crate::error::{ApiError, ErrorCode};
use crate::intervals::{Asked, Conformal, Cuts, ImplicitQuantiles, Style, IQ_GRID};
use crate::models::{Layout, WindowBatch};
use crate::nn::implicit_quantile::ImplicitQuantileHead;
use crate::nn::scalers::Stats;
use crate::scaling::LocalStats;
use crate::spec::ModelSpec;
use ndarray::{Array2, Array3};
use std::collections::HashMap;

/// One df row once parsed: (ds, y, exogenous values in `Panel::exog` order).
/// One `df` row of a series: ds, y, exogenous values, available_mask.
type HistoryRow = (Stamp, f32, Vec<f32>, f32);

/// One series of the request, sorted by ds, in the local scaler's space.
#[derive(Debug)]
struct Series {
    id: SeriesId,
    future: Vec<Stamp>,
    y: Vec<f32>,
    /// `available_mask` per history row when some row is 0 (else all 1).
    /// It masks the temporal scaler's statistics and the models' insample
    /// mask, as in NeuralForecast; the series-level scaler ignores it.
    available: Option<Vec<f32>>,
    /// Per `Panel::exog` column, the history.
    exog: Vec<Vec<f32>>,
    /// Per bundle futr column, the `h` future values.
    futr: Vec<Vec<f32>>,
    /// Per bundle static column.
    stat: Vec<f32>,
    target_scaler: Option<LocalStats>,
}

/// The validated request for one bundle.
#[derive(Debug)]
struct Panel {
    exog: Vec<String>,
    futr: Vec<String>,
    stat: Vec<String>,
    series: Vec<Series>,
}

fn too_many_series(max_series: usize) -> ApiError {
    ApiError::new(ErrorCode::TooManySeries, format!("df holds more than {max_series} series, the most one request may hold (split the request)"),
    )
}

fn missing(col: &str, table: &str, i: usize) -> ApiError {
    ApiError::new(
        ErrorCode::MissingColumn,
        format!("{table}[{i}] has no '{col}' column"),
    )
}

/// A finite float32 from a JSON value; `null` and values that overflow
/// float32 are non-finite, other types are the wrong type.
fn number(v: &Cell, col: &str, table: &str, i: usize) -> Result<f32, ApiError> {
    match v {
        Cell::Int(_) | Cell::Float(_) => {
            let n = match v {
                Cell::Int(k) => *k as f64,
                Cell::Float(x) => *x,
                _ => f64::NAN,
            };
            let f = n as f32;
            if f.is_finite() {
                Ok(f)
            } else {
                Err(ApiError::new(
                    ErrorCode::NonFiniteValue,
                    format!("{table}[{i}].{col} = {n} is outside the float32 range"),
                ))
            }
        }
        Cell::Null => Err(ApiError::new(
            ErrorCode::NonFiniteValue,
            format!("{table}[{i}].{col} is null; values must be finite numbers"),
        )),
        other => Err(ApiError::invalid_request(format!(
            "{table}[{i}].{col} must be a number, got {}",
            kind_of(other)
        ))),
    }
}

/// An exogenous value as the network reads it: a categorical column's value
/// is its vocabulary number (0 for one the fit never saw, as `nf.predict`
/// maps it), any other column's a finite number.
fn exog_value(
    v: &Cell,
    col: &str,
    table: &str,
    i: usize,
    vocab: Option<&Vocab>,
) -> Result<f32, ApiError> {
    let Some(vocab) = vocab else {
        return number(v, col, table, i);
    };
    if matches!(v, Cell::Null) {
        return number(v, col, table, i);
    }
    vocab.index_of(v).map(|n| n as f32).ok_or_else(|| {
        ApiError::invalid_request(format!(
            "{table}[{i}].{col} is {}: a categorical column takes strings, numbers or booleans",
            kind_of(v)
        ))
    })
}

fn kind_of(v: &Cell) -> &'static str {
    v.kind()
}

/// Checks that ids and stamps keep one kind across the request.
#[derive(Default)]
struct Kinds {
    id_int: Option<bool>,
    ds_int: Option<bool>,
}

impl Kinds {
    fn id(&mut self, row: &Row, col: &str, table: &str, i: usize) -> Result<SeriesId, ApiError> {
        let v = row.get(col).ok_or_else(|| missing(col, table, i))?;
        let id = SeriesId::from_cell(v).ok_or_else(|| {
            ApiError::invalid_request(format!(
                "{table}[{i}].{col} must be a string or an integer, got {}",
                kind_of(v)
            ))
        })?;
        let is_int = matches!(id, SeriesId::Int(_));
        if *self.id_int.get_or_insert(is_int) != is_int {
            return Err(ApiError::new(
                ErrorCode::InvalidDs,
                format!("{table}[{i}].{col} mixes integer and string ids in one request"),
            ));
        }
        Ok(id)
    }

    fn ds(
        &mut self,
        row: &Row,
        col: &str,
        table: &str,
        i: usize,
        int_freq: bool,
    ) -> Result<Stamp, ApiError> {
        let v = row.get(col).ok_or_else(|| missing(col, table, i))?;
        let stamp = match v {
            Cell::Str(s) => Stamp::parse_str(s).map_err(|m| {
                ApiError::new(ErrorCode::InvalidDs, format!("{table}[{i}].{col}: {m}"))
            })?,
            Cell::Int(k) => Stamp::Int(*k),
            Cell::Float(x) => {
                return Err(ApiError::new(
                    ErrorCode::InvalidDs,
                    format!("{table}[{i}].{col} = {x} is not an integer"),
                ))
            }
            other => {
                return Err(ApiError::invalid_request(format!(
                    "{table}[{i}].{col} must be a date string or an integer, got {}",
                    kind_of(other)
                )))
            }
        };
        let is_int = matches!(stamp, Stamp::Int(_));
        if *self.ds_int.get_or_insert(is_int) != is_int {
            return Err(ApiError::new(
                ErrorCode::InvalidDs,
                format!("{table}[{i}].{col} mixes integer and date ds in one request"),
            ));
        }
        if is_int != int_freq {
            return Err(ApiError::new(
                ErrorCode::InvalidDs,
                if int_freq {
                    format!("{table}[{i}].{col}: the model's freq is an integer, so ds must be integers")
                } else {
                    format!("{table}[{i}].{col}: the model's freq is a calendar offset, so ds must be dates")
                },
            ));
        }
        Ok(stamp)
    }
}

/// NeuralForecast's own column in `df` marking a row available (1) or not (0).
pub const AVAILABLE_MASK: &str = "available_mask";

/// NeuralForecast's training weight column: predict ignores it, but refuses
/// a missing or negative weight on an available row.
pub const SAMPLE_WEIGHT: &str = "sample_weight";

/// The columns of each table some model of the bundle reads; `nf.predict`
/// ignores every other column, whatever it holds, and so does this service.
struct UsedColumns {
    df: Vec<String>,
    futr_df: Vec<String>,
    static_df: Vec<String>,
}

impl UsedColumns {
    fn of(b: &Bundle) -> UsedColumns {
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
struct Seen {
    /// The first `null` in a `df` or `static_df` column no model reads:
    /// NeuralForecast refuses a missing value in every such column
    /// (`Found missing values in [...]`), in the order of the value checks.
    unused_null: Option<ApiError>,
    /// Some `df` row has `available_mask` or `sample_weight`.
    special: bool,
}

/// `available_mask` and `sample_weight` in `df`, row by row in the Python
/// reference's order (sample_weight, then available_mask): NeuralForecast
/// checks sample_weight on available rows only, and a mask given on some
/// rows must be given on all.
fn check_mask_and_weight(df: &[Row]) -> Result<(), ApiError> {
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
fn check_types(req: &PredictRequest, b: &Bundle, used: &UsedColumns) -> Result<Seen, ApiError> {
    let cols = &b.columns;
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
                let ok = if k == cols.id {
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
                };
                if !ok {
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

impl Panel {
    /// `horizon`: how many future stamps each series gets (at least the
    /// bundle's `h`, which is what futr_df must cover).
    /// The caller has run `check_types`, which returned `seen`.
    fn from_request(
        b: &Bundle,
        req: &PredictRequest,
        seen: Seen,
        horizon: usize,
        max_series: usize,
    ) -> Result<Panel, ApiError> {
        if req.df.is_empty() {
            return Err(ApiError::new(ErrorCode::EmptyDf, "df has no rows"));
        }
        let cols = &b.columns;
        let exog = b.df_exog();
        let futr = b.futr_exog();
        let stat = b.stat_exog();
        let int_freq = b.freq.is_int();
        let mut kinds = Kinds::default();
        let exog_vocab: Vec<Option<&Vocab>> = exog.iter().map(|c| b.vocab.get(c)).collect();

        // Group row indices by series, keeping (ds, y, exog) per row.
        let mut index: HashMap<SeriesId, usize> = HashMap::new();
        let mut groups: Vec<(SeriesId, Vec<HistoryRow>)> = Vec::new();
        for (i, row) in req.df.iter().enumerate() {
            let id = kinds.id(row, &cols.id, "df", i)?;
            let ds = kinds.ds(row, &cols.time, "df", i, int_freq)?;
            let y = number(
                row.get(&cols.target)
                    .ok_or_else(|| missing(&cols.target, "df", i))?,
                &cols.target,
                "df",
                i,
            )?;
            let mut x = Vec::with_capacity(exog.len());
            for (c, vocab) in exog.iter().zip(&exog_vocab) {
                x.push(exog_value(
                    row.get(c).ok_or_else(|| missing(c, "df", i))?,
                    c,
                    "df",
                    i,
                    *vocab,
                )?);
            }
            let g = *index.entry(id.clone()).or_insert_with(|| {
                groups.push((id, Vec::new()));
                groups.len() - 1
            });
            // Stop at the first series over the bound, before grouping the rest.
            if groups.len() > max_series {
                return Err(too_many_series(max_series));
            }
            // Checked below, with the other available_mask values.
            let avail = match seen.special.then(|| row.get(AVAILABLE_MASK)).flatten() {
                Some(Cell::Int(k)) => *k as f32,
                Some(Cell::Float(f)) => *f as f32,
                _ => 1.0,
            };
            groups[g].1.push((ds, y, x, avail));
        }
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(e) = seen.unused_null {
            return Err(e);
        }
        if seen.special {
            check_mask_and_weight(&req.df)?;
        }

        // futr_df, when given, must cover the horizon grid of every series
        // (rows beyond it, or for series not in df, are ignored as nf.predict
        // drops them); static_df exactly one row per series (NeuralForecast
        // matches static rows by sorted position, so an extra or missing
        // series would silently shift the statics: refused).
        let futr_rows = match &req.futr_df {
            None if !futr.is_empty() => {
                return Err(ApiError::new(
                    ErrorCode::InvalidExogenous,
                    format!(
                        "futr_df is required: bundle '{}' uses future exogenous {}",
                        b.name,
                        futr.join(", ")
                    ),
                ))
            }
            None => None,
            Some(rows) => Some(keyed_rows(
                rows, &futr, "futr_df", b, &mut kinds, int_freq, true,
            )?),
        };
        let static_rows = match &req.static_df {
            None if !stat.is_empty() => {
                return Err(ApiError::new(
                    ErrorCode::InvalidExogenous,
                    format!(
                        "static_df is required: bundle '{}' uses static exogenous {}",
                        b.name,
                        stat.join(", ")
                    ),
                ))
            }
            None => None,
            Some(rows) => Some(keyed_rows(
                rows,
                &stat,
                "static_df",
                b,
                &mut kinds,
                int_freq,
                false,
            )?),
        };
        let (mut futr_used, mut static_used) = (0usize, 0usize);

        let mut series = Vec::with_capacity(groups.len());
        for (id, mut rows) in groups {
            rows.sort_by_key(|r| r.0);
            if let Some(w) = rows.windows(2).find(|w| w[0].0 == w[1].0) {
                return Err(ApiError::new(
                    ErrorCode::DuplicateRows,
                    format!("series '{id}' has two rows with ds {}", w[0].0),
                ));
            }
            let last = rows
                .last()
                .map(|r| r.0)
                .ok_or_else(|| ApiError::internal("a series without rows"))?;
            let future = b
                .freq
                .horizon(last, horizon)
                .map_err(|m| ApiError::new(ErrorCode::InvalidDs, format!("series '{id}': {m}")))?;
            let mut y: Vec<f32> = rows.iter().map(|r| r.1).collect();
            let available = rows
                .iter()
                .any(|r| r.3 != 1.0)
                .then(|| rows.iter().map(|r| r.3).collect());
            let mut ex: Vec<Vec<f32>> = (0..exog.len())
                .map(|c| rows.iter().map(|r| r.2[c]).collect())
                .collect();
            let mut fut: Vec<Vec<f32>> = vec![Vec::with_capacity(b.h); futr.len()];
            if let Some(frows) = &futr_rows {
                for ds in future.iter().take(b.h) {
                    let r = frows.get(&(id.clone(), Some(*ds))).ok_or_else(|| {
                        ApiError::new(ErrorCode::InvalidExogenous, format!("futr_df has no row for series '{id}' at ds {ds}; it must hold the next {} ds of every series", b.h),
                        )
                    })?;
                    futr_used += 1;
                    for (c, v) in r.iter().enumerate() {
                        fut[c].push(*v);
                    }
                }
            }
            let stat_vals = match &static_rows {
                None => Vec::new(),
                Some(srows) => {
                    static_used += 1;
                    srows.get(&(id.clone(), None)).cloned().ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::InvalidExogenous,
                            format!("static_df has no row for series '{id}'"),
                        )
                    })?
                }
            };
            // Series-level scaler: fit on this request's history per column,
            // applied to the future values of the same column.
            let mut target_scaler = None;
            let refit = |kind: crate::scaling::LocalScalerKind, vals: &[f32], col: &str| {
                kind.fit(vals).map_err(|m| {
                    ApiError::new(
                        ErrorCode::InvalidValue,
                        format!("series '{id}', column '{col}': {m}"),
                    )
                })
            };
            if let Some(kind) = b.local_scaler {
                let s = refit(kind, &y, &cols.target)?;
                y.iter_mut().for_each(|v| *v = s.transform(*v));
                target_scaler = Some(s);
                for (c, col) in exog.iter().enumerate() {
                    // Categories are not scaled (NeuralForecast skips its vocabulary's columns).
                    if exog_vocab[c].is_some() {
                        continue;
                    }
                    let s = refit(kind, &ex[c], col)?;
                    ex[c].iter_mut().for_each(|v| *v = s.transform(*v));
                    if let Some(f) = futr.iter().position(|n| n == col) {
                        fut[f].iter_mut().for_each(|v| *v = s.transform(*v));
                    }
                }
            }
            series.push(Series {
                id,
                future,
                y,
                available,
                exog: ex,
                futr: fut,
                stat: stat_vals,
                target_scaler,
            });
        }
        if let Some(extra) = futr_rows.as_ref().filter(|r| r.len() > futr_used) {
            // nf.predict drops them too ("Dropped N unused rows from futr_df").
            tracing::debug!(
                bundle = %b.name,
                rows = extra.len() - futr_used,
                "futr_df rows beyond the horizon grid ignored"
            );
        }
        if let Some(extra) = static_rows.as_ref().filter(|r| r.len() > static_used) {
            return Err(ApiError::new(
                ErrorCode::InvalidExogenous,
                format!(
                    "static_df has {} rows for series that are not in df",
                    extra.len() - static_used
                ),
            ));
        }
        if let Some(kind) = b.local_static_scaler {
            // Fit across all series of the request, per static column.
            for (c, name) in stat.iter().enumerate() {
                if b.vocab.get(name).is_some() {
                    continue;
                }
                let col: Vec<f32> = series.iter().map(|s| s.stat[c]).collect();
                let st = kind.fit(&col).map_err(|m| {
                    ApiError::new(
                        ErrorCode::InvalidValue,
                        format!("static column '{name}': {m}"),
                    )
                })?;
                series
                    .iter_mut()
                    .for_each(|s| s.stat[c] = st.transform(s.stat[c]));
            }
        }
        Ok(Panel {
            exog,
            futr,
            stat,
            series,
        })
    }

    /// The last window of every series for one model, and the statistics to
    /// invert its output.
    /// `ys`: each series' target history when it differs from the request's
    /// (recursive prediction appends the forecasts so far).
    fn windows(
        &self,
        spec: &ModelSpec,
        model: &BundleModel,
        h: usize,
        ys: Option<&[Vec<f32>]>,
    ) -> Result<(WindowBatch, Vec<Stats>), ApiError> {
        // Recurrent models read one step more than input_size (see Forecaster::insample_steps).
        let l = model
            .net
            .as_ref()
            .ok()
            .and_then(|net| net.insample_steps())
            .unwrap_or(spec.input_size);
        let n = self.series.len();
        let kind = spec.scaler;
        let mut insample_y = Array2::<f32>::zeros((n, l));
        let mut insample_mask = Array2::<f32>::zeros((n, l));
        let col_of = |names: &[String], pool: &[String]| -> Result<Vec<usize>, ApiError> {
            names
                .iter()
                .map(|c| {
                    pool.iter()
                        .position(|p| p == c)
                        .ok_or_else(|| ApiError::internal(format!("column {c} not gathered")))
                })
                .collect()
        };
        let hist_idx = col_of(&spec.hist_exog, &self.exog)?;
        let futr_hist_idx = col_of(&spec.futr_exog, &self.exog)?;
        let futr_idx = col_of(&spec.futr_exog, &self.futr)?;
        let stat_idx = col_of(&spec.stat_exog, &self.stat)?;
        let is_cat = |names: &[String]| -> Vec<bool> {
            names
                .iter()
                .map(|c| spec.categorical.names().any(|n| n == c))
                .collect()
        };
        let (cat_hist, cat_futr) = (is_cat(&spec.hist_exog), is_cat(&spec.futr_exog));
        let mut hist = (!hist_idx.is_empty()).then(|| Array3::<f32>::zeros((n, l, hist_idx.len())));
        let mut futr =
            (!futr_idx.is_empty()).then(|| Array3::<f32>::zeros((n, l + h, futr_idx.len())));
        let mut stat = (!stat_idx.is_empty()).then(|| Array2::<f32>::zeros((n, stat_idx.len())));
        let mut inverse = Vec::with_capacity(n);

        let mut win = vec![0f32; l];
        let mut mask = vec![0f32; l];
        for (i, s) in self.series.iter().enumerate() {
            let y = ys.and_then(|ys| ys.get(i)).unwrap_or(&s.y);
            let take = y.len().min(l);
            let pad = l - take;
            // Rows past the request's history (forecasts appended by a
            // recursive pass) are available.
            let start = y.len() - take;
            mask.iter_mut().enumerate().for_each(|(t, m)| {
                *m = if t < pad {
                    0.0
                } else {
                    s.available
                        .as_ref()
                        .and_then(|a| a.get(start + t - pad))
                        .copied()
                        .unwrap_or(1.0)
                }
            });
            // Left padding with zeros, as NeuralForecast pads short histories.
            let fill = |dst: &mut [f32], src: &[f32]| {
                dst[..pad].iter_mut().for_each(|v| *v = 0.0);
                dst[pad..].copy_from_slice(&src[src.len() - take..]);
            };
            fill(&mut win, y);
            let stats = kind.fit(&win, &mask);
            for t in 0..l {
                insample_y[[i, t]] = kind.transform(win[t], stats);
                insample_mask[[i, t]] = mask[t];
            }
            inverse.push(kind.inverse_stats(stats, model.revin));
            if let Some(hx) = hist.as_mut() {
                for (c, &col) in hist_idx.iter().enumerate() {
                    fill(&mut win, &s.exog[col]);
                    if cat_hist[c] {
                        // Category numbers bypass TemporalNorm; padding reads as unseen (0).
                        (0..l).for_each(|t| hx[[i, t, c]] = win[t]);
                        continue;
                    }
                    let st = kind.fit(&win, &mask);
                    for t in 0..l {
                        hx[[i, t, c]] = kind.transform(win[t], st);
                    }
                }
            }
            if let Some(fx) = futr.as_mut() {
                for (c, (&hcol, &fcol)) in futr_hist_idx.iter().zip(&futr_idx).enumerate() {
                    fill(&mut win, &s.exog[hcol]);
                    if cat_futr[c] {
                        (0..l).for_each(|t| fx[[i, t, c]] = win[t]);
                        for (k, v) in s.futr[fcol].iter().enumerate() {
                            fx[[i, l + k, c]] = *v;
                        }
                        continue;
                    }
                    // Statistics from the insample part only (the horizon is masked).
                    let st = kind.fit(&win, &mask);
                    for t in 0..l {
                        fx[[i, t, c]] = kind.transform(win[t], st);
                    }
                    for (k, v) in s.futr[fcol].iter().enumerate() {
                        fx[[i, l + k, c]] = kind.transform(*v, st);
                    }
                }
            }
            if let Some(sx) = stat.as_mut() {
                for (c, &col) in stat_idx.iter().enumerate() {
                    sx[[i, c]] = s.stat[col];
                }
            }
        }
        Ok((
            WindowBatch {
                insample_y,
                insample_mask,
                hist_exog: hist,
                futr_exog: futr,
                stat_exog: stat,
            },
            inverse,
        ))
    }
}

type KeyedRows = HashMap<(SeriesId, Option<Stamp>), Vec<f32>>;

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

/// The conformal intervals a request makes point-loss models write: the
/// cuts, and the bundle's conformity scores they come from.
struct IntervalPlan<'b> {
    cuts: Cuts,
    conformal: &'b Conformal,
}

/// What `level` / `quantiles` ask of the bundle's models.
#[derive(Default)]
struct Asks<'b> {
    /// Point-loss models: conformal intervals after the forecast.
    conformal: Option<IntervalPlan<'b>>,
    /// Implicit-quantile models: quantiles instead of the forecast.
    implicit: Option<ImplicitQuantiles>,
}

/// Takes the conformal intervals (not an implicit-quantile model).
fn conformal_point(m: &BundleModel) -> bool {
    m.spec
        .as_ref()
        .is_some_and(|s| s.n_outputs() == 1 && s.implicit_quantile.is_none())
}

/// `level` / `quantiles` as `nf.predict` takes them: refused together; a
/// multi-quantile model (MQLoss, HuberMQLoss) ignores them; an
/// implicit-quantile model (IQLoss, HuberIQLoss) answers those quantiles of
/// its forecasts; a point-loss model computes conformal intervals from the
/// bundle's conformity scores, and without scores `nf.predict` raises.
fn check_intervals<'b>(b: &'b Bundle, req: &PredictRequest) -> Result<Asks<'b>, ApiError> {
    let asked = match (&req.level, &req.quantiles) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidLevel,
                "level and quantiles cannot both be set (as in nf.predict)",
            ))
        }
        (Some(l), None) => Asked::Level(l.clone()),
        (None, Some(q)) => Asked::Quantiles(q.clone()),
        (None, None) => return Ok(Asks::default()),
    };
    let what = match asked {
        Asked::Level(_) => "level",
        Asked::Quantiles(_) => "quantiles",
    };
    let refuse = |why: String| ApiError::new(ErrorCode::InvalidLevel, format!("{what}: {why}"));
    if let Some(writer) = b.writer_before_3() {
        // NeuralForecast 1.x/2.x predict: `level` only, and only with the
        // bundle's conformal intervals, whatever the models' losses.
        if what == "quantiles" {
            return Err(refuse(format!(
                "bundle '{}' was written by {writer}, whose predict takes no quantiles (ask for level)",
                b.name
            )));
        }
        if !b.intervals.is_some() {
            return Err(refuse(format!(
                "bundle '{}' was written by {writer}, whose predict raises for level without prediction intervals (fit with prediction_intervals)",
                b.name
            )));
        }
    }
    let mut asks = Asks::default();
    let implicit = b.models.iter().any(|m| {
        m.spec
            .as_ref()
            .is_some_and(|s| s.implicit_quantile.is_some())
    });
    if implicit {
        let q = ImplicitQuantiles::of(&asked);
        q.check().map_err(refuse)?;
        asks.implicit = Some(q);
    }
    let Some(point) = b.models.iter().find(|m| conformal_point(m)) else {
        return Ok(asks); // MQLoss / HuberMQLoss ignore them
    };
    let conformal = match &b.intervals {
        Calibration::Conformal(c) => c,
        Calibration::Unreadable(why) => {
            return Err(refuse(format!(
                "bundle '{}' was fitted with prediction intervals, but {why}",
                b.name
            )))
        }
        Calibration::None => {
            let loss = point.spec.as_ref().map(|s| s.loss.as_str()).unwrap_or("?");
            return Err(refuse(format!(
                "model {} was trained with loss {loss} and bundle '{}' has no prediction intervals, so nf.predict cannot give {what} (fit with prediction_intervals, or a quantile loss)",
                point.name, b.name
            )));
        }
    };
    let cuts = Cuts::conformal(&asked);
    cuts.check(conformal.style, conformal.method)
        .map_err(refuse)?;
    asks.conformal = Some(IntervalPlan { cuts, conformal });
    Ok(asks)
}

/// Output columns in NeuralForecast's order: per model its outputs; after a
/// point forecast its conformal interval columns when asked for; an
/// implicit-quantile model's asked quantiles instead of its forecast.
fn output_columns(b: &Bundle, asks: &Asks) -> Vec<String> {
    let mut out = Vec::new();
    let mut tail = Vec::new();
    for m in &b.models {
        if let (Some(q), Some(_)) = (&asks.implicit, &m.implicit_quantile) {
            out.extend(q.suffixes.iter().map(|s| format!("{}{s}", m.name)));
            continue;
        }
        out.extend(m.columns());
        if let (Some(p), true) = (&asks.conformal, conformal_point(m)) {
            let cols = p.cuts.suffixes.iter().map(|s| format!("{}{s}", m.name));
            match p.conformal.style {
                Style::Current => out.extend(cols),
                Style::Before3 => tail.extend(cols),
            }
        }
    }
    out.extend(tail);
    out
}

/// Longest horizon served, as a multiple of the bundle's `h` (each multiple
/// above the first is one more forward pass per model).
pub const MAX_HORIZON_FACTOR: usize = 100;

/// The requested horizon, checked against what the bundle can forecast.
fn requested_horizon(b: &Bundle, req: &PredictRequest) -> Result<usize, ApiError> {
    let Some(h) = req.h else { return Ok(b.h) };
    let max = b.h.saturating_mul(MAX_HORIZON_FACTOR);
    if h < 1 || h as u64 > max as u64 {
        return Err(ApiError::new(ErrorCode::InvalidHorizon, format!(
                "h = {h} is outside 1..={max} (bundle '{}' forecasts {} steps per pass; longer horizons are predicted recursively up to {MAX_HORIZON_FACTOR}x)",
                b.name, b.h
            ),
        ));
    }
    let h = h as usize;
    if h > b.h && b.intervals.is_some() {
        return Err(ApiError::new(ErrorCode::InvalidHorizon, format!(
                "h = {h} is above bundle '{}''s horizon {}: it was fitted with prediction intervals, and nf.predict does not forecast past the calibrated horizon",
                b.name, b.h
            ),
        ));
    }
    if h > b.h {
        // NeuralForecast refuses historic exogenous here; future exogenous
        // would need futr_df rows beyond the model's horizon, which its
        // recursive path slices in a way this service does not reproduce.
        for m in &b.models {
            let Some(spec) = &m.spec else { continue };
            let why = if !spec.hist_exog.is_empty() {
                Some("historic exogenous")
            } else if !spec.futr_exog.is_empty() {
                Some("future exogenous")
            } else if median_output(spec).is_none() {
                Some("no median output to feed back")
            } else {
                None
            };
            if let Some(why) = why {
                return Err(ApiError::new(ErrorCode::InvalidHorizon, format!(
                        "h = {h} is above bundle '{}''s horizon {} and model {} has {why}: recursive prediction is not possible; ask for h <= {}",
                        b.name, b.h, m.name, b.h
                    ),
                ));
            }
        }
    }
    Ok(h)
}

/// The output fed back in recursive prediction: the only one of a point
/// loss, the median of a quantile loss (as NeuralForecast does).
fn median_output(spec: &ModelSpec) -> Option<usize> {
    if spec.n_outputs() == 1 {
        return Some(0);
    }
    spec.output_names.iter().position(|n| n == "-median")
}

/// Most series one request may hold unless configured (`server.max_series`):
/// the answer's memory grows with series x horizon.
pub const DEFAULT_MAX_SERIES: usize = 20_000;

/// Runs every model of the bundle on the request.
pub fn predict(b: &Bundle, req: &PredictRequest) -> Result<Forecast, ApiError> {
    predict_with_limit(b, req, DEFAULT_MAX_SERIES)
}

/// `predict` with a bound on the number of series (422 `too_many_series`).
pub fn predict_with_limit(
    b: &Bundle,
    req: &PredictRequest,
    max_series: usize,
) -> Result<Forecast, ApiError> {
    if let Some(why) = b.unsupported_reason() {
        return Err(ApiError::new(
            ErrorCode::UnsupportedModel,
            format!("bundle '{}' cannot be served: {why}", b.name),
        ));
    }
    let used = UsedColumns::of(b);
    let seen = check_types(req, b, &used)?;
    let asks = check_intervals(b, req)?;
    let wanted = requested_horizon(b, req)?;
    // The grid every model forecasts on: whole passes of the model's h.
    let passes = wanted.div_ceil(b.h);
    let h = b.h;
    let horizon = passes * h;
    let panel = Panel::from_request(b, req, seen, horizon, max_series)?;
    let n = panel.series.len();
    if let Some(p) = &asks.conformal {
        let want = p.conformal.n_series();
        if n != want {
            return Err(ApiError::new(ErrorCode::InvalidSeries, format!(
                    "bundle '{}' holds conformity scores for {want} series, which nf.predict pairs with the request's series by position: prediction intervals need exactly {want} series, the request has {n}",
                    b.name
                ),
            ));
        }
    }
    let columns = output_columns(b, &asks);
    let mut values: Vec<Vec<f32>> = vec![Vec::with_capacity(columns.len()); n * horizon];
    let mut tail: Vec<Vec<f32>> = vec![Vec::new(); n * horizon];
    for m in &b.models {
        let (Some(spec), Ok(net)) = (&m.spec, &m.net) else {
            return Err(ApiError::internal(format!(
                "model {} has no forward pass",
                m.name
            )));
        };
        // A multivariate model forecasts all series in ONE window: exactly the
        // n_series it was trained on, in the panel's sorted unique_id order.
        if let Layout::Multivariate { n_series } = net.layout() {
            if n != n_series {
                return Err(ApiError::new(ErrorCode::InvalidSeries, format!(
                        "model {} ({}) is multivariate: it forecasts exactly the {n_series} series it was trained on, together; the request has {n}",
                        m.name, m.class
                    ),
                ));
            }
        }
        let outputs = spec.n_outputs();
        let fc = Forecasting {
            panel: &panel,
            model: m,
            spec,
            net: net.as_ref(),
            h,
            wanted,
            passes,
        };
        // Per series, `horizon` rows of this model's outputs in the local
        // scaler's space (temporal scaling already inverted).
        let scaled = match (&m.implicit_quantile, &asks.implicit) {
            (Some(head), Some(p)) => {
                // nf.predict runs an implicit-quantile model once per quantile
                // of a fixed grid and answers quantiles of those forecasts.
                let mut grid = Vec::with_capacity(IQ_GRID.len());
                for q in IQ_GRID {
                    grid.push(fc.run(Some((head, q)))?);
                }
                p.quantiles_of(&grid, n, horizon)
            }
            (Some(head), None) => fc.run(Some((head, 0.5)))?,
            (None, _) => fc.run(None)?,
        };
        let outputs = match (&m.implicit_quantile, &asks.implicit) {
            (Some(_), Some(p)) => p.quantiles.len(),
            _ => outputs,
        };
        // Conformal intervals of a point forecast, computed before the
        // series-level scaler is inverted, as NeuralForecast does.
        let scores = match (&asks.conformal, conformal_point(m)) {
            (Some(p), true) => Some((
                p,
                p.conformal.scores_of(&m.name).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidLevel,
                        format!(
                            "bundle '{}' holds no conformity scores for model {}",
                            b.name, m.name
                        ),
                    )
                })?,
            )),
            _ => None,
        };
        let inverse = |i: usize, v: f32| match panel.series[i].target_scaler {
            Some(ls) => ls.inverse(v),
            None => v,
        };
        // Conformal intervals of a point forecast: from the forecast in the
        // series-level scaler's space, then scaled back (3.0 and later), or
        // from the final forecast (1.x/2.x), as the bundle's release did.
        let intervals = match scores {
            Some((p, scores)) => {
                let before3 = p.conformal.style == Style::Before3;
                let means: Vec<f64> = scaled
                    .iter()
                    .enumerate()
                    .flat_map(|(i, row)| {
                        row.iter()
                            .map(move |v| if before3 { inverse(i, *v) } else { *v } as f64)
                    })
                    .collect();
                Some((
                    p.conformal.intervals(scores, &means, horizon, &p.cuts),
                    p.cuts.cuts.len(),
                    before3,
                ))
            }
            None => None,
        };
        for i in 0..n {
            for t in 0..horizon {
                let row = scaled[i].get(t * outputs..(t + 1) * outputs).unwrap_or(&[]);
                let dst = &mut values[i * horizon + t];
                dst.extend(row.iter().map(|v| inverse(i, *v)));
                if let Some((iv, k, before3)) = &intervals {
                    let at = (i * horizon + t) * k;
                    if let Some(cells) = iv.get(at..at + k) {
                        if *before3 {
                            // 1.x/2.x append every model's intervals after
                            // all forecasts.
                            tail[i * horizon + t].extend(cells.iter().map(|v| *v as f32));
                        } else {
                            dst.extend(cells.iter().map(|v| inverse(i, *v as f32)));
                        }
                    }
                }
            }
        }
    }
    for (dst, extra) in values.iter_mut().zip(tail) {
        dst.extend(extra);
    }
    let mut rows = Vec::with_capacity(n * wanted);
    let mut vals = values.into_iter();
    for s in &panel.series {
        for (t, ds) in s.future.iter().enumerate() {
            let v = vals.next().unwrap_or_default();
            if t >= wanted {
                continue;
            }
            if let Some(bad) = v.iter().position(|x| !x.is_finite()) {
                return Err(ApiError::new(ErrorCode::NonFiniteValue, format!(
                        "the forecast for series '{}' at {ds} ({}) is not finite: the history overflows float32 arithmetic",
                        s.id, columns.get(bad).map(String::as_str).unwrap_or("?")
                    ),
                ));
            }
            rows.push((s.id.clone(), *ds, v));
        }
    }
    Ok(Forecast {
        id_col: b.columns.id.clone(),
        time_col: b.columns.time.clone(),
        columns,
        rows,
    })
}

/// One model's forecast over the request's panel: the passes of its `h`
/// (direct models) or one rollout (recurrent decoders).
struct Forecasting<'a> {
    panel: &'a Panel,
    model: &'a BundleModel,
    spec: &'a ModelSpec,
    net: &'a dyn crate::models::Forecaster,
    h: usize,
    wanted: usize,
    passes: usize,
}

impl Forecasting<'_> {
    /// Per series, the model's outputs for `passes * h` steps in the local
    /// scaler's space (temporal scaling inverted); an implicit-quantile
    /// model's outputs go through its head for quantile `q` first.
    fn run(
        &self,
        quantile: Option<(&ImplicitQuantileHead, f64)>,
    ) -> Result<Vec<Vec<f32>>, ApiError> {
        let (m, spec, net, h, wanted, passes) = (
            self.model,
            self.spec,
            self.net,
            self.h,
            self.wanted,
            self.passes,
        );
        let panel = self.panel;
        let n = panel.series.len();
        let outputs = spec.n_outputs();
        let horizon = passes * h;
        let internal = |e: String| ApiError::internal(format!("{}: {e}", m.name));
        let embedding = match quantile {
            Some((head, q)) => Some((head, head.embed(q as f32).map_err(internal)?)),
            None => None,
        };
        let run = |batch: &WindowBatch, steps: usize| -> Result<Array3<f32>, ApiError> {
            let mut out = if steps == h {
                net.forward(batch)
            } else {
                net.forward_rollout(batch, steps)
            }
            .map_err(internal)?;
            if out.dim() != (n, steps, outputs) {
                return Err(ApiError::internal(format!(
                    "{} returned shape {:?}",
                    m.name,
                    out.dim()
                )));
            }
            if let (Some((head, e)), Some(values)) = (embedding, out.as_slice_mut()) {
                head.apply(values, e).map_err(internal)?;
            }
            Ok(out)
        };
        let mut scaled = vec![Vec::<f32>::with_capacity(horizon * outputs); n];
        if passes > 1 && net.rolls_out() {
            // A recurrent decoder (RECURRENT = True) rolls out the whole horizon.
            let (batch, inverse) = panel.windows(spec, m, horizon, None)?;
            let out = run(&batch, horizon)?;
            push_scaled(&mut scaled, &out, spec, &inverse);
            return Ok(scaled);
        }
        // Direct models: one pass per `h` steps, each feeding its forecast
        // (the median of a quantile loss) back as history.
        let feed = median_output(spec).unwrap_or(0);
        let mut ys: Option<Vec<Vec<f32>>> = None;
        for pass in 0..passes {
            // NeuralForecast's last pass, when only r < h steps are left,
            // sees a window ending h - r steps before the forecasts so far
            // (its future part is r steps long); its first r outputs count.
            let left = wanted - pass * h;
            if pass > 0 && left < h {
                if let Some(ys) = ys.as_mut() {
                    for y in ys.iter_mut() {
                        y.truncate(y.len().saturating_sub(h - left));
                    }
                }
            }
            let (batch, inverse) = panel.windows(spec, m, h, ys.as_deref())?;
            let out = run(&batch, h)?;
            push_scaled(&mut scaled, &out, spec, &inverse);
            if pass + 1 < passes {
                let ys =
                    ys.get_or_insert_with(|| panel.series.iter().map(|s| s.y.clone()).collect());
                for (i, y) in ys.iter_mut().enumerate() {
                    let start = pass * h * outputs;
                    y.extend(
                        scaled[i][start..start + h * outputs]
                            .chunks(outputs)
                            .map(|row| row[feed]),
                    );
                }
            }
        }
        Ok(scaled)
    }
}

/// Appends one pass's outputs, temporal scaling inverted, per series.
fn push_scaled(scaled: &mut [Vec<f32>], out: &Array3<f32>, spec: &ModelSpec, inverse: &[Stats]) {
    let (_, steps, outputs) = out.dim();
    for (i, dst) in scaled.iter_mut().enumerate() {
        for t in 0..steps {
            for q in 0..outputs {
                dst.push(spec.scaler.inverse(out[[i, t, q]], inverse[i]));
            }
        }
    }
}
