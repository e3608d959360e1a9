//! What a model file's `hyper_parameters` say, in the terms the forward pass
//! and the request pipeline need.

use crate::nn::scalers::TemporalScalerKind;
use serde_json::Value;

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
    pub exclude_insample_y: bool,
    pub loss: String,
    /// Column suffixes NeuralForecast appends to the alias ("" for point losses).
    pub output_names: Vec<String>,
    /// IQLoss / HuberIQLoss: the quantile embedding's width (`cos_embedding_dim`).
    pub implicit_quantile: Option<usize>,
    pub hparams: Value,
}

impl ModelSpec {
    pub fn from_hparams(class: &str, hp: Value) -> Result<ModelSpec, String> {
        let h = usize_field(&hp, "h")?;
        let input_size = usize_field(&hp, "input_size")?;
        if h == 0 || input_size == 0 {
            return Err("h and input_size must be positive".into());
        }
        let scaler_name = hp
            .get("scaler_type")
            .and_then(Value::as_str)
            .unwrap_or("identity");
        let scaler = TemporalScalerKind::parse(scaler_name)?;
        let cat = str_list(&hp, "cat_exog_list")?;
        if !cat.is_empty() {
            return Err(format!(
                "categorical exogenous variables ({}) are not supported",
                cat.join(", ")
            ));
        }
        let loss = hp.get("loss").ok_or("hyper_parameters have no loss")?;
        let loss_cls = loss
            .get("cls")
            .and_then(Value::as_str)
            .ok_or("loss has no class")?
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
                        .ok_or("loss output_names must be strings")
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
                Some(v) => v
                    .as_u64()
                    .filter(|d| *d > 0)
                    .ok_or("loss cos_embedding_dim must be a positive integer")?
                    as usize,
            };
            implicit_quantile = Some(dim);
        } else if QUANTILE_LOSSES.contains(&loss_cls.as_str()) {
            if output_names.is_empty() {
                return Err(format!("{loss_cls} without output names"));
            }
        } else if POINT_LOSSES.contains(&loss_cls.as_str()) {
            if output_names.len() != 1 {
                return Err(format!(
                    "point loss {loss_cls} with {} outputs",
                    output_names.len()
                ));
            }
        } else {
            return Err(format!(
                "loss {loss_cls} is not supported: distribution losses are Monte Carlo in PyTorch and are refused rather than served with different numbers"
            ));
        }
        Ok(ModelSpec {
            class: class.to_string(),
            h,
            input_size,
            scaler,
            futr_exog: str_list(&hp, "futr_exog_list")?,
            hist_exog: str_list(&hp, "hist_exog_list")?,
            stat_exog: str_list(&hp, "stat_exog_list")?,
            exclude_insample_y: hp
                .get("exclude_insample_y")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            loss: loss_cls,
            output_names,
            implicit_quantile,
            hparams: hp,
        })
    }

    /// Outputs per horizon step (the loss's `outputsize_multiplier`).
    pub fn n_outputs(&self) -> usize {
        self.output_names.len()
    }

    pub fn usize_param(&self, key: &str, default: usize) -> Result<usize, String> {
        match self.hparams.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_u64()
                .map(|x| x as usize)
                .ok_or_else(|| format!("hyperparameter '{key}' must be a non-negative integer")),
        }
    }

    pub fn f64_param(&self, key: &str, default: f64) -> Result<f64, String> {
        match self.hparams.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| format!("hyperparameter '{key}' must be a number")),
        }
    }

    pub fn bool_param(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.hparams.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| format!("hyperparameter '{key}' must be a boolean")),
        }
    }

    pub fn str_param<'a>(&'a self, key: &str, default: &'a str) -> Result<&'a str, String> {
        match self.hparams.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_str()
                .ok_or_else(|| format!("hyperparameter '{key}' must be a string")),
        }
    }
}

fn usize_field(hp: &Value, key: &str) -> Result<usize, String> {
    hp.get(key)
        .and_then(Value::as_u64)
        .map(|v| v as usize)
        .ok_or_else(|| format!("hyper_parameters lack an integer '{key}'"))
}

fn str_list(hp: &Value, key: &str) -> Result<Vec<String>, String> {
    match hp.get(key) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("'{key}' must list strings"))
            })
            .collect(),
        Some(_) => Err(format!("'{key}' must be a list")),
    }
}
