//! An API profile: the request and response shapes of the user's own
//! forecasting service (docs/profiles.md), so its clients can call this one
//! unchanged. A profile says where each frame is in the request body (a JSON
//! pointer) and in which pandas orient, how the client's column names map to
//! the bundle's, where `h` / `level` / `quantiles` and the model name are, and
//! how the answer is laid out (envelope, orient, `ds` text). The default
//! profile is docs/contract.md; it takes the typed fast path untouched.
//!
//! Pure: a profile turns a body into the default contract's body and a
//! `Forecast` into the profile's answer; the HTTP layer calls both.

use crate::contract::Forecast;
use crate::dates::Stamp;
use crate::error::ApiError;
use serde::Deserialize;
use serde_json::{Map, Value};

/// A pandas orient (`DataFrame.to_dict` / `to_json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Orient {
    /// `[{col: value, ...}, ...]`
    Records,
    /// `{col: [values], ...}` (`to_dict("list")`)
    Columns,
    /// `{"columns": [...], "data": [[...], ...]}` (an `index` is ignored)
    Split,
    /// `[[...], ...]` with the columns named in the profile.
    Values(Vec<String>),
}

/// Where one frame is and how it is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameAt {
    /// JSON pointer into the body; `""` is the body itself.
    pub at: String,
    pub orient: Orient,
}

/// Where the model (bundle) name comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelFrom {
    Query(String),
    Header(String),
    /// A JSON pointer into the body.
    Body(String),
}

/// How `ds` is written (answers) or read (requests, epoch only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsFormat {
    /// `2024-01-31T00:00:00` (the default contract).
    IsoDatetime,
    /// `2024-01-31` (dates; a time of day is kept when there is one).
    IsoDate,
    /// `2024-01-31T00:00:00.000` (`to_json(date_format="iso")`).
    PandasIso,
    /// Milliseconds since 1970 (`to_json()`'s default).
    EpochMs,
    EpochS,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub df: FrameAt,
    pub futr_df: FrameAt,
    pub static_df: FrameAt,
    pub h: String,
    pub level: String,
    pub quantiles: String,
    pub model: ModelFrom,
    /// How `ds` arrives: ISO text (parsed by the contract) or epoch numbers.
    pub request_ds: DsFormat,
    /// (client name, bundle name).
    pub columns: Vec<(String, String)>,
    /// The answer's frame: pointer (`""` = bare) and orient.
    pub answer: FrameAt,
    /// Where the bundle name goes in the answer, if anywhere.
    pub answer_model: Option<String>,
    pub answer_ds: DsFormat,
    /// Forecasts rounded to this many decimal places, as pandas'
    /// `to_json(double_precision=N)` writes them; `None`: every float32 digit.
    pub decimals: Option<u8>,
    pub health: Value,
    pub ready: Value,
    pub not_ready: Value,
}

impl Default for Profile {
    fn default() -> Profile {
        let frame = |at: &str| FrameAt {
            at: at.into(),
            orient: Orient::Records,
        };
        Profile {
            df: frame("/df"),
            futr_df: frame("/futr_df"),
            static_df: frame("/static_df"),
            h: "/h".into(),
            level: "/level".into(),
            quantiles: "/quantiles".into(),
            model: ModelFrom::Query("model".into()),
            request_ds: DsFormat::IsoDatetime,
            columns: Vec::new(),
            answer: frame("/predictions"),
            answer_model: Some("/model".into()),
            answer_ds: DsFormat::IsoDatetime,
            decimals: None,
            health: serde_json::json!({"status": "ok"}),
            ready: serde_json::json!({"status": "ready"}),
            not_ready: serde_json::json!({"status": "not_ready"}),
        }
    }
}

// ---------------------------------------------------------------- the file

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    request: Option<RequestSection>,
    #[serde(default)]
    columns: toml::Table,
    response: Option<ResponseSection>,
    health: Option<HealthSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestSection {
    df: Option<FrameSection>,
    futr_df: Option<FrameSection>,
    static_df: Option<FrameSection>,
    h: Option<String>,
    level: Option<String>,
    quantiles: Option<String>,
    model: Option<ModelSection>,
    ds: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrameSection {
    at: Option<String>,
    orient: Option<String>,
    columns: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelSection {
    query: Option<String>,
    header: Option<String>,
    body: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResponseSection {
    at: Option<String>,
    orient: Option<String>,
    columns: Option<Vec<String>>,
    model_at: Option<String>,
    ds: Option<String>,
    decimals: Option<u8>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthSection {
    ok: Option<toml::Table>,
    ready: Option<toml::Table>,
    not_ready: Option<toml::Table>,
}

/// Why a profile file cannot be used; every fault names its key.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A fault of the file at `path`.
    #[error("{path}: {fault}")]
    File {
        path: String,
        #[source]
        fault: Box<ProfileError>,
    },
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    #[error("{0}")]
    Body(#[from] serde_json::Error),
    /// A key's value no body could satisfy.
    #[error("{0}")]
    Invalid(String),
}

/// `ProfileError::Invalid(format!(..))`.
macro_rules! bad_key {
    ($($arg:tt)*) => {
        ProfileError::Invalid(format!($($arg)*))
    };
}

fn pointer(path: &str, p: Option<String>, default: &str) -> Result<String, ProfileError> {
    let p = p.unwrap_or_else(|| default.to_string());
    if !p.is_empty() && !p.starts_with('/') {
        return Err(bad_key!(
            "{path}: '{p}' is not a JSON pointer (\"\" for the whole body, else starting with /)"
        ));
    }
    Ok(p)
}

fn frame(path: &str, s: Option<FrameSection>, default: &str) -> Result<FrameAt, ProfileError> {
    let s = s.unwrap_or_default();
    let orient = orient(path, s.orient.as_deref(), s.columns)?;
    Ok(FrameAt {
        at: pointer(&format!("{path}.at"), s.at, default)?,
        orient,
    })
}

fn orient(
    path: &str,
    name: Option<&str>,
    columns: Option<Vec<String>>,
) -> Result<Orient, ProfileError> {
    let o = match name.unwrap_or("records") {
        "records" => Orient::Records,
        "columns" | "list" => Orient::Columns,
        "split" => Orient::Split,
        "values" => match columns {
            Some(c) if !c.is_empty() => return Ok(Orient::Values(c)),
            _ => {
                return Err(bad_key!(
                    "{path}: orient \"values\" needs the column names: columns = [...]"
                ))
            }
        },
        other => {
            return Err(bad_key!(
                "{path}.orient: '{other}' is not one of records, columns, split, values"
            ))
        }
    };
    if columns.is_some() {
        return Err(bad_key!(
            "{path}.columns: only orient \"values\" names its columns"
        ));
    }
    Ok(o)
}

fn ds_format(path: &str, s: Option<&str>, allowed: &[&str]) -> Result<DsFormat, ProfileError> {
    let name = s.unwrap_or("iso_datetime");
    if !allowed.contains(&name) {
        return Err(bad_key!(
            "{path}: '{name}' is not one of {}",
            allowed.join(", ")
        ));
    }
    Ok(match name {
        "iso_date" => DsFormat::IsoDate,
        "pandas_iso" => DsFormat::PandasIso,
        "epoch_ms" => DsFormat::EpochMs,
        "epoch_s" => DsFormat::EpochS,
        _ => DsFormat::IsoDatetime,
    })
}

fn body_of(t: toml::Table) -> Result<Value, ProfileError> {
    Ok(serde_json::to_value(t)?)
}

impl Profile {
    /// docs/contract.md's shapes (the default profile), built once.
    pub fn contract() -> &'static Profile {
        static CONTRACT: std::sync::LazyLock<Profile> = std::sync::LazyLock::new(Profile::default);
        &CONTRACT
    }

    /// A profile file (TOML); every fault names its key and the reason.
    pub fn from_toml(text: &str) -> Result<Profile, ProfileError> {
        let f: File = toml::from_str(text)?;
        let d = Profile::default();
        let r = f.request.unwrap_or_default();
        let model = match r.model.unwrap_or_default() {
            ModelSection {
                query: Some(q),
                header: None,
                body: None,
            } => ModelFrom::Query(q),
            ModelSection {
                query: None,
                header: Some(h),
                body: None,
            } => ModelFrom::Header(h.to_ascii_lowercase()),
            ModelSection {
                query: None,
                header: None,
                body: Some(b),
            } => ModelFrom::Body(pointer("request.model.body", Some(b), "")?),
            ModelSection {
                query: None,
                header: None,
                body: None,
            } => d.model.clone(),
            _ => return Err(bad_key!("request.model: give one of query, header or body")),
        };
        let mut columns = Vec::new();
        for (client, bundle) in f.columns {
            match bundle {
                toml::Value::String(b) => columns.push((client, b)),
                other => {
                    return Err(bad_key!(
                        "columns.{client}: the bundle's column name must be a string, not {}",
                        other.type_str()
                    ))
                }
            }
        }
        let resp = f.response.unwrap_or_default();
        let health = f.health.unwrap_or_default();
        let answer_model = match resp.model_at {
            None => d.answer_model.clone(),
            Some(p) if p.is_empty() => None,
            Some(p) => Some(pointer("response.model_at", Some(p), "")?),
        };
        let p = Profile {
            df: frame("request.df", r.df, "/df")?,
            futr_df: frame("request.futr_df", r.futr_df, "/futr_df")?,
            static_df: frame("request.static_df", r.static_df, "/static_df")?,
            h: pointer("request.h", r.h, "/h")?,
            level: pointer("request.level", r.level, "/level")?,
            quantiles: pointer("request.quantiles", r.quantiles, "/quantiles")?,
            model,
            request_ds: ds_format(
                "request.ds",
                r.ds.as_deref(),
                &["iso_datetime", "epoch_ms", "epoch_s"],
            )?,
            columns,
            answer: FrameAt {
                at: pointer("response.at", resp.at, "/predictions")?,
                orient: orient("response", resp.orient.as_deref(), resp.columns)?,
            },
            answer_model,
            answer_ds: ds_format(
                "response.ds",
                resp.ds.as_deref(),
                &[
                    "iso_datetime",
                    "iso_date",
                    "pandas_iso",
                    "epoch_ms",
                    "epoch_s",
                ],
            )?,
            decimals: match resp.decimals {
                Some(d) if d > 15 => {
                    return Err(bad_key!(
                        "response.decimals: {d} is more than a float64 holds (at most 15)"
                    ))
                }
                d => d,
            },
            health: health.ok.map(body_of).transpose()?.unwrap_or(d.health),
            ready: health.ready.map(body_of).transpose()?.unwrap_or(d.ready),
            not_ready: health
                .not_ready
                .map(body_of)
                .transpose()?
                .unwrap_or(d.not_ready),
        };
        p.check()?;
        Ok(p)
    }

    /// Reads and checks a profile file.
    pub fn load(path: &std::path::Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Profile::from_toml(&text).map_err(|fault| ProfileError::File {
            path: path.display().to_string(),
            fault: Box::new(fault),
        })
    }

    /// What no body could satisfy.
    fn check(&self) -> Result<(), ProfileError> {
        let frames = [
            ("request.df", &self.df),
            ("request.futr_df", &self.futr_df),
            ("request.static_df", &self.static_df),
        ];
        for (i, (a, fa)) in frames.iter().enumerate() {
            for (b, fb) in &frames[i + 1..] {
                if fa.at == fb.at {
                    return Err(bad_key!("{a} and {b} are both at '{}'", fa.at));
                }
            }
        }
        if self.answer.at.is_empty() && self.answer_model.is_some() {
            return Err(bad_key!(
                "response: a bare answer (at = \"\") has no place for the model name: set model_at = \"\""
            ));
        }
        let mut seen = Vec::new();
        for (client, bundle) in &self.columns {
            if seen.contains(&bundle) {
                return Err(bad_key!(
                    "columns.{client}: two client columns map to the bundle's '{bundle}'"
                ));
            }
            seen.push(bundle);
        }
        Ok(())
    }

    /// Today's contract: the typed fast path applies.
    pub fn is_default(&self) -> bool {
        *self == Profile::default()
    }

    fn to_bundle<'a>(&'a self, client: &'a str) -> &'a str {
        self.columns
            .iter()
            .find(|(c, _)| c == client)
            .map(|(_, b)| b.as_str())
            .unwrap_or(client)
    }

    fn to_client<'a>(&'a self, bundle: &'a str) -> &'a str {
        self.columns
            .iter()
            .find(|(_, b)| b == bundle)
            .map(|(c, _)| c.as_str())
            .unwrap_or(bundle)
    }

    /// The model name a body names, for a `body` selector.
    pub fn model_in_body(&self, body: &Value) -> Option<String> {
        match &self.model {
            ModelFrom::Body(p) => body.pointer(p).and_then(Value::as_str).map(str::to_string),
            _ => None,
        }
    }

    /// The body in the default contract's shape (docs/contract.md), for the
    /// typed parser (`PredictRequest::from_value`): frames as records under
    /// the bundle's column names. Keys the profile does not name are
    /// ignored, as a pydantic model ignores them. The body's values are
    /// moved, not copied.
    pub fn to_contract(&self, mut body: Value, time_col: &str) -> Result<Value, ApiError> {
        let mut out = Map::new();
        // Arguments and the other frames first: a frame at "" takes what is left.
        for (key, p) in [
            ("h", &self.h),
            ("level", &self.level),
            ("quantiles", &self.quantiles),
        ] {
            if let Some(v) = take(&mut body, p) {
                out.insert(key.to_string(), v);
            }
        }
        let mut frames = [
            ("df", &self.df),
            ("futr_df", &self.futr_df),
            ("static_df", &self.static_df),
        ];
        frames.sort_by_key(|(_, fa)| fa.at.is_empty());
        for (key, fa) in frames {
            match take(&mut body, &fa.at) {
                None | Some(Value::Null) if key != "df" => {}
                None => {
                    return Err(ApiError::invalid_request(format!(
                        "the body has no frame at '{}' (this service's API profile: request.df)",
                        fa.at
                    )))
                }
                Some(v) => {
                    let rows = self.records(key, v, fa, time_col)?;
                    out.insert(key.to_string(), rows);
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn records(
        &self,
        key: &str,
        v: Value,
        fa: &FrameAt,
        time_col: &str,
    ) -> Result<Value, ApiError> {
        let bad = |what: &str| {
            ApiError::invalid_request(format!(
                "{key} at '{}' must be {what} (this service's API profile)",
                fa.at
            ))
        };
        // Records under the bundle's names, ISO time stamps: as they are.
        let as_is = self.columns.is_empty() && self.request_ds == DsFormat::IsoDatetime;
        let row = |pairs: &mut dyn Iterator<Item = (String, Value)>| -> Value {
            let mut m = Map::new();
            for (c, x) in pairs {
                let name = self.to_bundle(&c);
                let x = if name == time_col {
                    self.request_time(x)
                } else {
                    x
                };
                m.insert(name.to_string(), x);
            }
            Value::Object(m)
        };
        let named = |columns: &[String], data: Value| -> Result<Value, ApiError> {
            let Value::Array(rows) = data else {
                return Err(bad("rows of values"));
            };
            rows.into_iter()
                .map(|r| {
                    let Value::Array(cells) = r else {
                        return Err(bad("rows of values"));
                    };
                    if cells.len() != columns.len() {
                        return Err(bad(&format!("rows of {} values", columns.len())));
                    }
                    Ok(row(&mut columns.iter().cloned().zip(cells)))
                })
                .collect()
        };
        match &fa.orient {
            Orient::Records => {
                let Value::Array(rows) = v else {
                    return Err(bad("an array of row objects"));
                };
                if as_is {
                    return match rows.iter().all(Value::is_object) {
                        true => Ok(Value::Array(rows)),
                        false => Err(bad("an array of row objects")),
                    };
                }
                rows.into_iter()
                    .map(|r| match r {
                        Value::Object(m) => Ok(row(&mut m.into_iter())),
                        _ => Err(bad("an array of row objects")),
                    })
                    .collect()
            }
            Orient::Columns => {
                let Value::Object(m) = v else {
                    return Err(bad("an object of column arrays"));
                };
                let mut cols = Vec::with_capacity(m.len());
                for (k, x) in m {
                    let Value::Array(a) = x else {
                        return Err(bad("an object of column arrays"));
                    };
                    cols.push((k, a.into_iter()));
                }
                let n = cols.first().map_or(0, |(_, a)| a.len());
                if cols.iter().any(|(_, a)| a.len() != n) {
                    return Err(bad("columns of one length"));
                }
                Ok(Value::Array(
                    (0..n)
                        .map(|_| {
                            row(&mut cols
                                .iter_mut()
                                .filter_map(|(k, a)| Some((k.clone(), a.next()?))))
                        })
                        .collect(),
                ))
            }
            Orient::Split => {
                let Value::Object(mut m) = v else {
                    return Err(bad("{\"columns\": [names], \"data\": [rows]}"));
                };
                let columns: Vec<String> = m
                    .get("columns")
                    .and_then(Value::as_array)
                    .and_then(|c| c.iter().map(|x| x.as_str().map(str::to_string)).collect())
                    .ok_or_else(|| bad("{\"columns\": [names], \"data\": [rows]}"))?;
                named(&columns, m.remove("data").unwrap_or(Value::Null))
            }
            Orient::Values(columns) => named(columns, v),
        }
    }

    /// A request `ds` as the contract reads it (epoch numbers to ISO text).
    fn request_time(&self, x: Value) -> Value {
        let scale = match self.request_ds {
            DsFormat::EpochMs => 1_000,
            DsFormat::EpochS => 1,
            _ => return x,
        };
        let Some(n) = x.as_i64() else {
            return x;
        };
        let secs = n.div_euclid(scale);
        let nanos = (n.rem_euclid(scale) * (1_000_000_000 / scale)) as u32;
        match chrono::DateTime::from_timestamp(secs, nanos) {
            Some(t) => {
                let mut s = String::new();
                Stamp::Time(t.naive_utc()).write_iso(&mut s);
                Value::String(s)
            }
            None => x,
        }
    }

    fn answer_time(&self, ds: &Stamp) -> Value {
        let t = match ds {
            Stamp::Int(i) => return Value::from(*i),
            Stamp::Time(t) => t,
        };
        match self.answer_ds {
            DsFormat::EpochMs => Value::from(t.and_utc().timestamp_millis()),
            DsFormat::EpochS => Value::from(t.and_utc().timestamp()),
            DsFormat::IsoDate if t.time() == chrono::NaiveTime::MIN => {
                Value::String(t.format("%Y-%m-%d").to_string())
            }
            DsFormat::PandasIso => Value::String(t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()),
            _ => {
                let mut s = String::new();
                ds.write_iso(&mut s);
                Value::String(s)
            }
        }
    }

    /// The answer in the profile's shape.
    pub fn answer(&self, f: &Forecast, model: &str) -> String {
        let names: Vec<&str> = [f.id_col.as_str(), f.time_col.as_str()]
            .into_iter()
            .chain(f.columns.iter().map(String::as_str))
            .map(|c| self.to_client(c))
            .collect();
        let scale = self.decimals.map(|d| 10f64.powi(i32::from(d)));
        let number = |x: f32| {
            let x = match scale {
                Some(s) => (x as f64 * s).round() / s,
                None => x as f64,
            };
            serde_json::Number::from_f64(x)
                .map(Value::Number)
                .unwrap_or(Value::Null)
        };
        let cells = |(id, ds, vals): &(crate::contract::SeriesId, Stamp, Vec<f32>)| -> Vec<Value> {
            let id = match id {
                crate::contract::SeriesId::Int(i) => Value::from(*i),
                crate::contract::SeriesId::Str(s) => Value::from(s.as_str()),
            };
            [id, self.answer_time(ds)]
                .into_iter()
                .chain(vals.iter().map(|x| number(*x)))
                .collect()
        };
        let frame = match &self.answer.orient {
            Orient::Records => Value::Array(
                f.rows
                    .iter()
                    .map(|r| {
                        Value::Object(names.iter().map(|n| n.to_string()).zip(cells(r)).collect())
                    })
                    .collect(),
            ),
            Orient::Columns => {
                let mut cols: Vec<Vec<Value>> = vec![Vec::with_capacity(f.rows.len()); names.len()];
                for r in &f.rows {
                    for (c, x) in cols.iter_mut().zip(cells(r)) {
                        c.push(x);
                    }
                }
                Value::Object(
                    names
                        .iter()
                        .map(|n| n.to_string())
                        .zip(cols.into_iter().map(Value::Array))
                        .collect(),
                )
            }
            Orient::Split => serde_json::json!({
                "columns": names,
                "index": (0..f.rows.len()).collect::<Vec<_>>(),
                "data": f.rows.iter().map(|r| Value::Array(cells(r))).collect::<Vec<_>>(),
            }),
            Orient::Values(_) => {
                Value::Array(f.rows.iter().map(|r| Value::Array(cells(r))).collect())
            }
        };
        let mut root = Value::Null;
        if let Some(p) = &self.answer_model {
            set(&mut root, p, Value::from(model));
        }
        set(&mut root, &self.answer.at, frame);
        root.to_string()
    }
}

/// Takes the value at JSON pointer `p` out of `root`: an object member is
/// removed (the other members keep their order), an array element is left null.
fn take(root: &mut Value, p: &str) -> Option<Value> {
    let Some((parent, last)) = p.rsplit_once('/') else {
        return Some(root.take());
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    match root.pointer_mut(parent)? {
        Value::Object(m) => m.shift_remove(&last),
        Value::Array(a) => last
            .parse::<usize>()
            .ok()
            .and_then(|i| a.get_mut(i))
            .map(Value::take),
        _ => None,
    }
}

/// Puts `v` at JSON pointer `p` of `root`, creating objects on the way.
fn set(root: &mut Value, p: &str, v: Value) {
    if p.is_empty() {
        *root = v;
        return;
    }
    let mut at = root;
    let parts: Vec<String> = p
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    for (i, part) in parts.iter().enumerate() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Some(m) = at.as_object_mut() else { return };
        if i + 1 == parts.len() {
            m.insert(part.clone(), v);
            return;
        }
        at = m.entry(part.clone()).or_insert(Value::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{PredictRequest, SeriesId};

    fn forecast() -> Forecast {
        let t = |d: &str| match Stamp::parse_str(d) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        Forecast {
            id_col: "unique_id".into(),
            time_col: "ds".into(),
            columns: vec!["MLP".into()],
            rows: vec![
                (SeriesId::Str("a".into()), t("2024-02-01"), vec![1.5]),
                (SeriesId::Str("a".into()), t("2024-02-02"), vec![2.5]),
            ],
        }
    }

    #[test]
    fn the_default_profile_is_the_contract() {
        let p = Profile::from_toml("").unwrap();
        assert!(p.is_default());
        assert_eq!(p.answer(&forecast(), "m"), forecast().to_json("m"),);
    }

    #[test]
    fn a_team_shape_round_trips() {
        let p = Profile::from_toml(
            r#"
            [request]
            df = { at = "/data", orient = "columns" }
            h = "/horizon"
            model = { body = "/model_name" }
            ds = "epoch_ms"
            [columns]
            series = "unique_id"
            timestamp = "ds"
            value = "y"
            [response]
            at = "/forecast"
            orient = "split"
            model_at = ""
            ds = "epoch_ms"
            [health]
            ok = { status = "healthy" }
            "#,
        )
        .unwrap();
        let body = serde_json::json!({
            "model_name": "m1",
            "horizon": 2,
            "data": {"series": ["a", "a"], "timestamp": [1706659200000i64, 1706745600000i64], "value": [1.0, 2.0]},
            "extra": true,
        });
        assert_eq!(p.model_in_body(&body).as_deref(), Some("m1"));
        let c = p.to_contract(body, "ds").unwrap();
        assert_eq!(
            c,
            serde_json::json!({"df": [
                {"unique_id": "a", "ds": "2024-01-31T00:00:00", "y": 1.0},
                {"unique_id": "a", "ds": "2024-02-01T00:00:00", "y": 2.0}], "h": 2})
        );
        let a: Value = serde_json::from_str(&p.answer(&forecast(), "m1")).unwrap();
        assert_eq!(
            a,
            serde_json::json!({"forecast": {"columns": ["series", "timestamp", "MLP"], "index": [0, 1],
                "data": [["a", 1706745600000i64, 1.5], ["a", 1706832000000i64, 2.5]]}})
        );
        assert_eq!(p.health, serde_json::json!({"status": "healthy"}));
    }

    #[test]
    fn bare_lists_and_values() {
        let p = Profile::from_toml(
            r#"
            [request]
            df = { at = "", orient = "values", columns = ["unique_id", "ds", "y"] }
            [response]
            at = ""
            model_at = ""
            ds = "iso_date"
            "#,
        )
        .unwrap();
        let c = p
            .to_contract(serde_json::json!([["a", "2024-01-31", 3]]), "ds")
            .unwrap();
        assert_eq!(
            c,
            serde_json::json!({"df": [{"unique_id": "a", "ds": "2024-01-31", "y": 3}]})
        );
        assert_eq!(
            p.answer(&forecast(), "m"),
            r#"[{"unique_id":"a","ds":"2024-02-01","MLP":1.5},{"unique_id":"a","ds":"2024-02-02","MLP":2.5}]"#
        );
        let e = p
            .to_contract(serde_json::json!([["a", 1]]), "ds")
            .unwrap_err();
        assert_eq!(e.code.as_str(), "invalid_request");
    }

    #[test]
    fn a_frame_at_the_root_is_what_the_other_keys_leave() {
        let p = Profile::from_toml(
            r#"
            [request]
            df = { at = "", orient = "columns" }
            futr_df = { at = "/future", orient = "columns" }
            h = "/horizon"
            "#,
        )
        .unwrap();
        let body = serde_json::json!({
            "unique_id": ["a"], "ds": ["2024-01-31"], "y": [1.0],
            "future": {"unique_id": ["a"], "ds": ["2024-02-01"], "promo": [1]},
            "horizon": 1,
        });
        let c = p.to_contract(body, "ds").unwrap();
        assert_eq!(
            c,
            serde_json::json!({
                "h": 1,
                "futr_df": [{"unique_id": "a", "ds": "2024-02-01", "promo": 1}],
                "df": [{"unique_id": "a", "ds": "2024-01-31", "y": 1.0}],
            })
        );
        let r = PredictRequest::from_value(&c).unwrap();
        assert_eq!((r.df.len(), r.futr_df.map(|f| f.len())), (1, Some(1)));
    }

    #[test]
    fn a_broken_profile_names_the_key_and_the_reason() {
        for (text, want) in [
            (
                "[request]\ndf = { orient = \"recordz\" }",
                "request.df.orient",
            ),
            ("[request]\ndf = { at = \"data\" }", "request.df.at"),
            (
                "[request]\ndf = { orient = \"values\" }",
                "needs the column names",
            ),
            (
                "[request]\nmodel = { query = \"m\", header = \"x\" }",
                "request.model",
            ),
            ("[respons]\nat = \"\"", "unknown field"),
            ("[response]\nat = \"\"", "model_at"),
            ("[response]\nds = \"unix\"", "response.ds"),
            ("[response]\ndecimals = 16", "response.decimals"),
            ("[response]\ndecimals = -1", "decimals"),
            ("[columns]\na = \"y\"\nb = \"y\"", "two client columns"),
            ("[columns]\na = 3", "columns.a"),
            ("[request]\nfutr_df = { at = \"/df\" }", "both at"),
        ] {
            let e = Profile::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
