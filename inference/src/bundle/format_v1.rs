//! NeuralForecast before 3.3 (1.x, 2.x, 3.0-3.2): `<alias>_<n>.ckpt`
//! (PyTorch zip checkpoints holding `hyper_parameters` and `state_dict`),
//! `configuration.pkl` and `alias_to_model.pkl`, read with the
//! non-executing [`super::pickle`] reader and turned into what a 3.3 bundle
//! holds, so the rest of the service cannot tell the formats apart.

use super::checkpoint::Checkpoint;
use super::format::{Format, Parsed, ParsedModel};
use super::pickle::{self, Value as Py};
use super::tensors::TensorStore;
use super::BundleFiles;
use crate::models;
use serde_json::{Map, Value};

pub(crate) fn parse(files: &BundleFiles) -> Result<Parsed, String> {
    let config_bytes = files
        .get("configuration.pkl")
        .ok_or("configuration.pkl is missing")?;
    let config = match pickle::read(config_bytes, false) {
        Ok(v @ Py::Dict(_)) => to_json(&v),
        Ok(other) => {
            return Err(format!(
                "configuration.pkl holds a {}, not a dict",
                other.kind()
            ))
        }
        Err(e) => return Err(format!("configuration.pkl cannot be read: {e}")),
    };
    // Older releases wrote no alias map: the file name is then the class.
    let aliases = match files.get("alias_to_model.pkl") {
        None => Value::Null,
        Some(b) => match pickle::read(b, false) {
            Ok(v @ Py::Dict(_)) => to_json(&v),
            Ok(other) => {
                return Err(format!(
                    "alias_to_model.pkl holds a {}, not a dict",
                    other.kind()
                ))
            }
            Err(e) => return Err(format!("alias_to_model.pkl cannot be read: {e}")),
        },
    };
    let mut models = Vec::new();
    let mut lightning: Option<String> = None;
    // Sorted by name (BundleFiles keeps them so), as for v2 bundles.
    for (file, bytes) in files.files.iter().filter(|(n, _)| n.ends_with(".ckpt")) {
        let alias = file
            .trim_end_matches(".ckpt")
            .rsplit_once('_')
            .map(|(a, _)| a.to_string())
            .ok_or_else(|| format!("{file}: not named <alias>_<n>.ckpt"))?;
        let class_key = aliases
            .get(&alias)
            .and_then(Value::as_str)
            .unwrap_or(&alias)
            .to_string();
        let class = canonical_class(&class_key);
        let mut ckpt = Checkpoint::read(bytes).map_err(|e| format!("{file}: {e}"))?;
        if let Some(v) = ckpt
            .root
            .get("pytorch-lightning_version")
            .and_then(Py::as_str)
        {
            lightning = Some(v.to_string());
        }
        let hparams = match ckpt.root.get("hyper_parameters") {
            Some(hp @ Py::Dict(_)) => to_json(hp),
            _ => {
                return Err(format!(
                    "{file}: the checkpoint has no hyper_parameters dict"
                ))
            }
        };
        let Some(Py::Dict(state)) = ckpt.root.get("state_dict").cloned() else {
            return Err(format!("{file}: the checkpoint has no state_dict"));
        };
        let mut named = Vec::with_capacity(state.len());
        for (k, v) in &state {
            let (Py::Str(name), Py::Tensor(t)) = (k, v) else {
                return Err(format!(
                    "{file}: state_dict maps a {} to a {}, not names to tensors",
                    k.kind(),
                    v.kind()
                ));
            };
            // BatchNorm's step counter: a training statistic eval never reads.
            if name.ends_with(".num_batches_tracked") && t.dtype == pickle::StorageDtype::I64 {
                continue;
            }
            let data = ckpt
                .f32_values(name, t)
                .map_err(|e| format!("{file}: {e}"))?;
            let shape = t.size.iter().map(|d| *d as usize).collect();
            named.push((name.clone(), shape, data));
        }
        let store = TensorStore::from_f32(named).map_err(|e| format!("{file}: {e}"))?;
        models.push(ParsedModel {
            file: file.clone(),
            class,
            hparams,
            store,
            name: Some(alias),
        });
    }
    if models.is_empty() {
        return Err("no <alias>_<n>.ckpt model file".into());
    }
    let mut writer = "NeuralForecast before 3.3".to_string();
    if let Some(v) = lightning {
        writer.push_str(&format!(" (PyTorch Lightning {v})"));
    }
    Ok(Parsed {
        format: Format::Pickle { writer },
        config,
        models,
        unsupported: None,
    })
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
