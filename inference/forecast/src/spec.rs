//! What a model file's `hyper_parameters` say, in the terms the forward pass
//! and the request pipeline need.

pub mod hparams;

use serde::Deserialize;
use serde_json::{Map, Value};

/// `scaler_type` of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemporalScalerKind {
    Identity,
    Standard,
    Robust,
    MinMax,
    MinMax1,
    Invariant,
    /// Standard statistics plus learned per-feature affine terms for the inverse.
    Revin,
}

/// Why a model's hyperparameters cannot be read: the model is reported as
/// not served, with this reason.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("hyperparameter '{key}': {source}")]
    Key {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("hyperparameters: {0}")]
    Hparams(#[source] serde_json::Error),
    #[error("hyper_parameters lack an integer '{0}'")]
    MissingInteger(&'static str),
    #[error("scaler_type '{0}' is not supported")]
    Scaler(String),
    /// The loss or the categorical settings are not ones this service serves.
    #[error("{0}")]
    Invalid(String),
}

/// `SpecError::Invalid(format!(..))`.
macro_rules! unreadable {
    ($($arg:tt)*) => {
        SpecError::Invalid(format!($($arg)*))
    };
}

impl TemporalScalerKind {
    pub fn parse(s: &str) -> Result<TemporalScalerKind, SpecError> {
        Ok(match s {
            "identity" => Self::Identity,
            "standard" => Self::Standard,
            "robust" => Self::Robust,
            "minmax" => Self::MinMax,
            "minmax1" => Self::MinMax1,
            "invariant" => Self::Invariant,
            "revin" => Self::Revin,
            other => return Err(SpecError::Scaler(other.to_string())),
        })
    }
}

/// Exogenous widths a model was built with: continuous columns plus each
/// categorical column's embedding width.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExogWidths {
    pub hist: usize,
    pub stat: usize,
    pub futr: usize,
}

/// Point losses give one output per step; multi-quantile losses one per quantile.
const POINT_LOSSES: &[&str] = &[
    "MAE",
    "MSE",
    "RMSE",
    "MAPE",
    "SMAPE",
    "MASE",
    "relMSE",
    "HuberLoss",
    "TukeyLoss",
    "QuantileLoss",
    "HuberQLoss",
];
const QUANTILE_LOSSES: &[&str] = &["MQLoss", "HuberMQLoss"];
/// Implicit-quantile losses: one output per step, the quantile an input of
/// the output head (`nn::implicit_quantile`).
const IMPLICIT_QUANTILE_LOSSES: &[&str] = &["IQLoss", "HuberIQLoss"];

#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub class: String,
    pub h: usize,
    pub input_size: usize,
    pub scaler: TemporalScalerKind,
    pub futr_exog: Vec<String>,
    pub hist_exog: Vec<String>,
    pub stat_exog: Vec<String>,
    /// The categorical columns of each exogenous list (`cat_exog_list`),
    /// embedded instead of scaled.
    pub categorical: Categorical,
    pub exclude_insample_y: bool,
    pub loss: String,
    /// Column suffixes NeuralForecast appends to the alias ("" for point losses).
    pub output_names: Vec<String>,
    /// IQLoss / HuberIQLoss: the quantile embedding's width (`cos_embedding_dim`).
    pub implicit_quantile: Option<usize>,
    /// Multivariate models' series count (`n_series`).
    pub n_series: Option<usize>,
    pub hparams: Value,
}

/// The hyperparameters every model class shares (`BaseModel.__init__`'s
/// arguments that shape the forward pass or the request), read into
/// [`ModelSpec`]; each class's own keys are its struct in `crate::models`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CommonHparams {
    pub h: Option<usize>,
    pub input_size: Option<usize>,
    pub scaler_type: Option<String>,
    pub futr_exog_list: Vec<String>,
    pub hist_exog_list: Vec<String>,
    pub stat_exog_list: Vec<String>,
    /// Read with `categorical_cardinalities` and `cat_emb_dim` by [`Categorical`].
    pub cat_exog_list: Vec<String>,
    pub categorical_cardinalities: Option<Map<String, Value>>,
    /// An integer or a rule name (`fastai`, `sqrt`, `half`).
    pub cat_emb_dim: Option<Value>,
    pub exclude_insample_y: bool,
    /// `{"cls": ..., "args": ..., "state": ...}` as NeuralForecast serialises it.
    pub loss: Option<Value>,
    /// The prediction column's name (read by the bundle loader).
    pub alias: Option<String>,
    /// Multivariate models' series count.
    pub n_series: Option<usize>,
}

impl ModelSpec {
    pub fn from_hparams(class: &str, hp: Value) -> Result<ModelSpec, SpecError> {
        let common: CommonHparams = hparams::parse(&hp)?;
        let integer = |v: Option<usize>, key: &'static str| v.ok_or(SpecError::MissingInteger(key));
        let h = integer(common.h, "h")?;
        let input_size = integer(common.input_size, "input_size")?;
        if h == 0 || input_size == 0 {
            return Err(unreadable!("h and input_size must be positive"));
        }
        let scaler =
            TemporalScalerKind::parse(common.scaler_type.as_deref().unwrap_or("identity"))?;
        let futr_exog = common.futr_exog_list;
        let hist_exog = common.hist_exog_list;
        let stat_exog = common.stat_exog_list;
        let categorical = Categorical::from_hparams(&hp, &hist_exog, &futr_exog, &stat_exog)?;
        let loss = common
            .loss
            .as_ref()
            .ok_or_else(|| unreadable!("hyper_parameters have no loss"))?;
        let loss_cls = loss
            .get("cls")
            .and_then(Value::as_str)
            .ok_or_else(|| unreadable!("loss has no class"))?
            .to_string();
        let output_names: Vec<String> = match loss
            .pointer("/state/output_names")
            .and_then(Value::as_array)
        {
            Some(names) => names
                .iter()
                .map(|n| {
                    n.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| unreadable!("loss output_names must be strings"))
                })
                .collect::<Result<_, _>>()?,
            None => vec![String::new()],
        };
        let mut output_names = output_names;
        let mut implicit_quantile = None;
        if IMPLICIT_QUANTILE_LOSSES.contains(&loss_cls.as_str()) {
            // nf.predict sets the quantile to 0.5 when none is asked for and
            // names the column after it (HuberIQLoss saves `_q0.5_d1.0`).
            output_names = vec!["_ql0.5".to_string()];
            let dim = match loss.pointer("/args/cos_embedding_dim") {
                None | Some(Value::Null) => 64,
                Some(v) => v.as_u64().filter(|d| *d > 0).ok_or_else(|| {
                    unreadable!("loss cos_embedding_dim must be a positive integer")
                })? as usize,
            };
            implicit_quantile = Some(dim);
        } else if QUANTILE_LOSSES.contains(&loss_cls.as_str()) {
            if output_names.is_empty() {
                return Err(unreadable!("{loss_cls} without output names"));
            }
        } else if POINT_LOSSES.contains(&loss_cls.as_str()) {
            if output_names.len() != 1 {
                return Err(unreadable!(
                    "point loss {loss_cls} with {} outputs",
                    output_names.len()
                ));
            }
        } else {
            return Err(unreadable!(
                "loss {loss_cls} is not supported: distribution losses are Monte Carlo in PyTorch and are refused rather than served with different numbers"
            ));
        }
        Ok(ModelSpec {
            class: class.to_string(),
            h,
            input_size,
            scaler,
            futr_exog,
            hist_exog,
            stat_exog,
            categorical,
            exclude_insample_y: common.exclude_insample_y,
            loss: loss_cls,
            output_names,
            implicit_quantile,
            n_series: common.n_series,
            hparams: hp,
        })
    }

    /// Exogenous widths the network reads: continuous columns plus each
    /// categorical column's embedding width (NeuralForecast's
    /// `_effective_exog_size`).
    pub fn exog_widths(&self) -> ExogWidths {
        let c = &self.categorical;
        ExogWidths {
            hist: Categorical::width(self.hist_exog.len(), &c.hist),
            futr: Categorical::width(self.futr_exog.len(), &c.futr),
            stat: Categorical::width(self.stat_exog.len(), &c.stat),
        }
    }

    /// Outputs per horizon step (the loss's `outputsize_multiplier`).
    pub fn n_outputs(&self) -> usize {
        self.output_names.len()
    }
}

fn str_list(hp: &Value, key: &str) -> Result<Vec<String>, SpecError> {
    match hp.get(key) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| unreadable!("'{key}' must list strings"))
            })
            .collect(),
        Some(_) => Err(unreadable!("'{key}' must be a list")),
    }
}

/// One categorical column of an exogenous list: where it is in the list and
/// the embedding table NeuralForecast 3.3 built for it
/// (`nn.Embedding(cardinality + 1, dim)`, row 0 for values not seen at fit).
#[derive(Debug, Clone, PartialEq)]
pub struct CatFeature {
    pub name: String,
    /// Position in the list (`hist_exog_list`, `futr_exog_list` or `stat_exog_list`).
    pub pos: usize,
    pub cardinality: usize,
    pub dim: usize,
}

/// `cat_exog_list` split by list, each in `cat_exog_list`'s order (the order
/// of the `*_cat_embeddings` tables).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Categorical {
    /// `cat_exog_list` as written.
    pub list: Vec<String>,
    pub hist: Vec<CatFeature>,
    pub futr: Vec<CatFeature>,
    pub stat: Vec<CatFeature>,
}

impl Categorical {
    fn from_hparams(
        hp: &Value,
        hist: &[String],
        futr: &[String],
        stat: &[String],
    ) -> Result<Categorical, SpecError> {
        let names = str_list(hp, "cat_exog_list")?;
        if names.is_empty() {
            return Ok(Categorical::default());
        }
        let cards = hp
            .get("categorical_cardinalities")
            .and_then(Value::as_object)
            .ok_or_else(|| unreadable!("cat_exog_list without categorical_cardinalities"))?;
        let strategy = hp
            .get("cat_emb_dim")
            .cloned()
            .unwrap_or(Value::from("fastai"));
        let mut out = Categorical::default();
        for name in &names {
            out.list.push(name.clone());
            let cardinality = cards
                .get(name)
                .and_then(Value::as_u64)
                .filter(|c| *c > 0)
                .ok_or_else(|| {
                    unreadable!("categorical_cardinalities has no positive size for '{name}'")
                })? as usize;
            let dim = emb_dim(&strategy, cardinality)?;
            let mut found = false;
            for (list, streams) in [
                (hist, &mut out.hist),
                (futr, &mut out.futr),
                (stat, &mut out.stat),
            ] {
                if let Some(pos) = list.iter().position(|c| c == name) {
                    streams.push(CatFeature {
                        name: name.clone(),
                        pos,
                        cardinality,
                        dim,
                    });
                    found = true;
                }
            }
            if !found {
                return Err(unreadable!(
                    "categorical '{name}' is in none of hist_exog_list, futr_exog_list, stat_exog_list"
                ));
            }
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.hist.is_empty() && self.futr.is_empty() && self.stat.is_empty()
    }

    /// Every categorical column name, in `cat_exog_list` order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(String::as_str)
    }

    fn width(n: usize, cats: &[CatFeature]) -> usize {
        n - cats.len() + cats.iter().map(|c| c.dim).sum::<usize>()
    }
}

/// NeuralForecast's `_resolve_cat_emb_dim`: an integer, or a rule of the
/// cardinality capped at 50.
fn emb_dim(strategy: &Value, cardinality: usize) -> Result<usize, SpecError> {
    let c = cardinality as f64;
    let dim = match strategy {
        Value::Number(n) => n.as_u64().filter(|d| *d > 0).ok_or_else(|| {
            unreadable!("cat_emb_dim must be a positive integer or fastai, sqrt, half")
        })? as usize,
        Value::String(s) if s == "fastai" => (1.6 * c.powf(0.56)).ceil().min(50.0) as usize,
        Value::String(s) if s == "sqrt" => c.sqrt().ceil().min(50.0) as usize,
        Value::String(s) if s == "half" => cardinality.div_ceil(2).min(50),
        other => {
            return Err(unreadable!(
                "cat_emb_dim {other} is not an integer or one of fastai, sqrt, half"
            ))
        }
    };
    Ok(dim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn embedding_widths_follow_neuralforecast_strategies() {
        // _resolve_cat_emb_dim: fastai min(50, ceil(1.6 * c^0.56)), sqrt, half, an integer.
        let dims = |s: Value| [2usize, 3, 7, 12, 1000].map(|c| emb_dim(&s, c).unwrap());
        assert_eq!(dims(json!("fastai")), [3, 3, 5, 7, 50]);
        assert_eq!(dims(json!("sqrt")), [2, 2, 3, 4, 32]);
        assert_eq!(dims(json!("half")), [1, 2, 4, 6, 50]);
        assert_eq!(dims(json!(5)), [5; 5]);
        for bad in [json!("wide"), json!(0), json!(-1), json!(2.5), json!(null)] {
            assert!(emb_dim(&bad, 4).is_err(), "{bad}");
        }
    }

    #[test]
    fn categorical_columns_split_by_list_and_widen_the_blocks() {
        let hp = json!({
            "cat_exog_list": ["dow", "store"],
            "categorical_cardinalities": {"dow": 7, "store": 3},
            "cat_emb_dim": "fastai",
        });
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let c = Categorical::from_hparams(
            &hp,
            &names(&["temp"]),
            &names(&["promo", "dow"]),
            &names(&["size", "store"]),
        )
        .unwrap();
        assert!(c.hist.is_empty());
        assert_eq!((c.futr[0].pos, c.futr[0].dim), (1, 5));
        assert_eq!((c.stat[0].pos, c.stat[0].dim), (1, 3));
        assert_eq!(Categorical::width(2, &c.futr), 1 + 5);
        let unknown = json!({"cat_exog_list": ["x"], "categorical_cardinalities": {"x": 2}});
        assert!(Categorical::from_hparams(&unknown, &[], &[], &[]).is_err());
        let no_size = json!({"cat_exog_list": ["dow"], "categorical_cardinalities": {}});
        assert!(Categorical::from_hparams(&no_size, &[], &names(&["dow"]), &[]).is_err());
    }
}
