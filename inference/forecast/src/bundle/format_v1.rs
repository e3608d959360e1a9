//! NeuralForecast before 3.3 (1.x, 2.x, 3.0-3.2): `<alias>_<n>.ckpt`
//! (PyTorch zip checkpoints holding `hyper_parameters` and `state_dict`),
//! `configuration.pkl` and `alias_to_model.pkl`, read with the
//! non-executing [`super::pickle`] reader and turned into what a 3.3 bundle
//! holds, so the rest of the service cannot tell the formats apart.

use super::checkpoint::Checkpoint;
use super::format::{malformed, Format, FormatError, Parsed, ParsedModel};
use super::pickle::{self, Value as Py};
use super::BundleFiles;
use crate::models;
use crate::tensors::TensorStore;
use serde_json::{Map, Value};

pub(crate) fn parse(files: &BundleFiles) -> Result<Parsed, FormatError> {
    // The conformity scores (`_cs_df`, a whole DataFrame) are left out here:
    // super::conformal_pickle reads them on their own, so a frame it cannot
    // read (or too large to expand) costs the intervals, not the bundle.
    let config = match files.get("configuration.pkl") {
        Some(b) => dict_pickle("configuration.pkl", b, &["_cs_df"])?,
        None => return Err(malformed!("configuration.pkl is missing")),
    };
    // Older releases wrote no alias map: the file name is then the class.
    let aliases = match files.get("alias_to_model.pkl") {
        Some(b) => dict_pickle("alias_to_model.pkl", b, &[])?,
        None => Value::Null,
    };
    let mut models = Vec::new();
    let mut lightning: Option<String> = None;
    let mut family = Family::V3_2;
    // Sorted by name (BundleFiles keeps them so), as for v2 bundles.
    for (file, bytes) in files.files.iter().filter(|(n, _)| n.ends_with(".ckpt")) {
        let alias = file
            .trim_end_matches(".ckpt")
            .rsplit_once('_')
            .map(|(a, _)| a.to_string())
            .ok_or_else(|| malformed!("{file}: not named <alias>_<n>.ckpt"))?;
        let class_key = aliases
            .get(&alias)
            .and_then(Value::as_str)
            .unwrap_or(&alias)
            .to_string();
        let class = canonical_class(&class_key);
        let mut ckpt = Checkpoint::read(bytes).map_err(|e| malformed!("{file}: {e}"))?;
        if let Some(v) = ckpt
            .root
            .get("pytorch-lightning_version")
            .and_then(Py::as_str)
        {
            lightning = Some(v.to_string());
        }
        let mut hparams = match ckpt.root.get("hyper_parameters") {
            Some(hp @ Py::Dict(_)) => to_json(hp),
            _ => {
                return Err(malformed!(
                    "{file}: the checkpoint has no hyper_parameters dict"
                ))
            }
        };
        let fam = Family::of(&hparams, &config);
        family = family.min(fam);
        writer_semantics(fam, &class, &mut hparams);
        let Some(Py::Dict(state)) = ckpt.root.get("state_dict").cloned() else {
            return Err(malformed!("{file}: the checkpoint has no state_dict"));
        };
        let mut named = Vec::with_capacity(state.len());
        for (k, v) in &state {
            let (Py::Str(name), Py::Tensor(t)) = (k, v) else {
                return Err(malformed!(
                    "{file}: state_dict maps a {} to a {}, not names to tensors",
                    k.kind(),
                    v.kind()
                ));
            };
            // Integer buffers (BatchNorm's step counter, index tables a
            // forward pass rebuilds itself) are not weights: a model that
            // needed one would be refused for the missing tensor, never fed
            // a wrong one.
            if t.dtype == pickle::StorageDtype::I64 {
                continue;
            }
            let data = ckpt
                .f32_values(name, t)
                .map_err(|e| malformed!("{file}: {e}"))?;
            let mut shape: Vec<usize> = t.size.iter().map(|d| *d as usize).collect();
            if t.dtype == pickle::StorageDtype::C64 {
                shape.push(2);
            }
            named.push((name.clone(), shape, data));
        }
        writer_tensors(fam, &class, &mut named);
        let store = TensorStore::from_f32(named).map_err(|e| malformed!("{file}: {e}"))?;
        models.push(ParsedModel {
            file: file.clone(),
            class,
            hparams,
            store,
            name: Some(alias),
        });
    }
    if models.is_empty() {
        return Err(malformed!("no <alias>_<n>.ckpt model file"));
    }
    let mut writer = family.name().to_string();
    if let Some(v) = lightning {
        writer.push_str(&format!(" (PyTorch Lightning {v})"));
    }
    // Up to 3.0, predict applied the local scalers fitted at training time
    // to the request's series by position; 3.1 and later (and this service)
    // refit them on the request: other numbers, so refused.
    let unsupported = match config.get("local_scaler_type") {
        Some(Value::String(kind)) if family <= Family::V3_0 => Some(format!(
            "{} with local_scaler_type '{kind}' ({}): {writer} scaled each request series with the scaler fitted to the training series at the same position, which this service does not reproduce (3.1 and later refit it on the request)",
            models.iter().map(|m| m.class.as_str()).collect::<Vec<_>>().join(", "),
            models.iter().map(|m| m.file.as_str()).collect::<Vec<_>>().join(", "),
        )),
        _ => None,
    };
    Ok(Parsed {
        format: Format::Pickle { writer },
        config,
        models,
        unsupported,
    })
}

/// A sidecar pickle that must hold a dict, as JSON (without the values under
/// the keys in `skip`).
fn dict_pickle(file: &str, bytes: &[u8], skip: &[&str]) -> Result<Value, FormatError> {
    match pickle::read_skipping(bytes, skip) {
        Ok(v @ Py::Dict(_)) => Ok(to_json(&v)),
        Ok(other) => Err(malformed!("{file} holds a {}, not a dict", other.kind())),
        Err(e) => Err(malformed!("{file} cannot be read: {e}")),
    }
}

/// NeuralForecast's class for an `alias_to_model` value (`mlp`, `autonhits`)
/// or a bare file name (`MLP`): the lower-case name, or the name after an
/// `auto` prefix, as `MODEL_FILENAME_DICT` maps them.
fn canonical_class(key: &str) -> String {
    let lower = key.to_ascii_lowercase();
    let find = |k: &str| {
        models::known_classes()
            .find(|c| c.to_ascii_lowercase() == k)
            .map(str::to_string)
    };
    find(&lower)
        .or_else(|| lower.strip_prefix("auto").and_then(find))
        .unwrap_or_else(|| key.to_string())
}

/// A pickled value as NeuralForecast 3.3 writes the same in JSON: a loss
/// or scaler object becomes `{"cls": <class>, "state": <its __dict__>}`;
/// tensors and arrays, which no hyperparameter the service reads holds,
/// become null.
fn to_json(v: &Py) -> Value {
    match v {
        Py::None | Py::Tensor(_) | Py::Array(_) | Py::Bytes(_) => Value::Null,
        Py::Bool(b) => Value::Bool(*b),
        Py::Int(i) => Value::from(*i),
        Py::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Py::Str(s) => Value::String(s.clone()),
        Py::Class(c) => Value::String(c.clone()),
        Py::List(items) => Value::Array(items.iter().map(to_json).collect()),
        Py::Dict(items) => {
            let mut m = Map::new();
            for (k, x) in items {
                let key = match k {
                    Py::Str(s) => s.clone(),
                    Py::Int(i) => i.to_string(),
                    other => format!("<{}>", other.kind()),
                };
                m.insert(key, to_json(x));
            }
            Value::Object(m)
        }
        Py::Object { class, state, .. } => {
            let mut m = Map::new();
            let short = class.rsplit('.').next().unwrap_or(class);
            m.insert("cls".into(), Value::String(short.to_string()));
            m.insert("module".into(), Value::String(class.clone()));
            m.insert(
                "state".into(),
                state.as_deref().map_or(Value::Null, to_json),
            );
            Value::Object(m)
        }
    }
}

/// The NeuralForecast release family that wrote a checkpoint, from the
/// hyperparameter keys each release added (no version is recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Family {
    V1,
    V2,
    V3_0,
    V3_1,
    V3_2,
}

impl Family {
    fn of(hp: &Value, config: &Value) -> Family {
        let has = |k: &str| hp.get(k).is_some();
        if has("cat_exog_list") {
            Family::V3_2
        } else if has("training_data_availability_threshold") || has("val_monitor") {
            Family::V3_1
        } else if has("h_train") || has("n_samples") {
            Family::V3_0
        } else if has("num_workers_loader") || config.get("sort_df").is_some() {
            Family::V1
        } else {
            Family::V2
        }
    }

    /// The family a `Format::Pickle` writer names (see [`Family::name`]).
    pub(crate) fn of_writer(writer: &str) -> Option<Family> {
        [
            Family::V1,
            Family::V2,
            Family::V3_0,
            Family::V3_1,
            Family::V3_2,
        ]
        .into_iter()
        .find(|f| writer.starts_with(f.name()))
    }

    fn name(self) -> &'static str {
        match self {
            Family::V1 => "NeuralForecast 1.x",
            Family::V2 => "NeuralForecast 2.x",
            Family::V3_0 => "NeuralForecast 3.0",
            Family::V3_1 => "NeuralForecast 3.1",
            Family::V3_2 => "NeuralForecast 3.2",
        }
    }
}

/// Where a release built a model differently from 3.3 under the same
/// hyperparameters, the hyperparameters that make 3.3's build the writer's.
fn writer_semantics(family: Family, class: &str, hp: &mut Value) {
    // Up to 3.0 the recurrent models' MLP decoder of `decoder_layers=1` was
    // Linear, activation, Linear (common/_modules.py MLP); since 3.1 it is one
    // Linear, and 3.3 builds the old shape for `decoder_layers=2`.
    const MLP_DECODER: &[&str] = &["RNN", "LSTM", "GRU", "DilatedRNN", "TCN"];
    if family <= Family::V3_0
        && MLP_DECODER.contains(&class)
        && hp.get("decoder_layers").and_then(Value::as_u64) == Some(1)
    {
        hp["decoder_layers"] = Value::from(2);
    }
    // 1.x and 2.x spelled RMoK's argument `revine_affine`.
    if family <= Family::V2 && class == "RMoK" && hp.get("revin_affine").is_none() {
        if let Some(v) = hp.get("revine_affine").cloned() {
            hp["revin_affine"] = v;
        }
    }
}

/// A named f32 tensor as read from a checkpoint: name, shape, values.
type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Where a release stored the same weights under another name or shape, the
/// names and shapes 3.3 reads. The arithmetic is the same: 1.x and 2.x
/// TSMixer/TSMixerx normalised with their own `ReversibleInstanceNorm1d`
/// (`norm.weight`/`norm.bias`, shape `[1, 1, n_series]`, TSMixerx
/// `[1, 1, 1, n_series]`), 3.0 and later with `RevINMultivariate`
/// (`norm.affine_weight`/`norm.affine_bias`, `[1, 1, n_series]`, same
/// formula); 1.x and 2.x RMoK with `RevIN` (affine `[n_series]`, dividing
/// by `weight + eps²` on the way back, a 1e-10 change below f32 resolution),
/// 3.x with `RevINMultivariate` (`[1, 1, n_series]`).
fn writer_tensors(family: Family, class: &str, named: &mut [NamedTensor]) {
    if family > Family::V2 {
        return;
    }
    for (name, shape, values) in named.iter_mut() {
        let renamed = match (class, name.as_str()) {
            ("TSMixer" | "TSMixerx", "norm.weight") => "norm.affine_weight",
            ("TSMixer" | "TSMixerx", "norm.bias") => "norm.affine_bias",
            ("RMoK", "rev.affine_weight" | "rev.affine_bias") => name.as_str(),
            _ => continue,
        };
        *name = renamed.to_string();
        // One value per series either way; 1.x/2.x TSMixerx held them as
        // [1, 1, 1, n_series] (its window carried a channel axis).
        *shape = vec![1, 1, values.len()];
    }
}
