//! NeuralForecast 3.3+ bundles: `<alias>_<n>.safetensors` (the state_dict,
//! with `model_class` and `hyper_parameters` in the header metadata) and
//! `configuration.json`.

use super::format::{malformed, Format, FormatError, Parsed, ParsedModel};
use super::BundleFiles;
use crate::tensors::TensorStore;
use serde_json::Value;

pub(crate) fn parse(files: &BundleFiles) -> Result<Parsed, FormatError> {
    let config_bytes = files.get("configuration.json").ok_or_else(|| {
        malformed!("configuration.json is missing (not a NeuralForecast 3.3+ bundle)")
    })?;
    let root: Value = serde_json::from_slice(config_bytes)
        .map_err(|e| malformed!("configuration.json is not valid JSON: {e}"))?;
    match root.get("nf_format") {
        Some(Value::String(s)) if s == "2" => {}
        other => {
            let got = other
                .map(Value::to_string)
                .unwrap_or_else(|| "missing".to_string());
            return Err(malformed!(
                "configuration.json nf_format is {got}, not \"2\" (NeuralForecast 3.3+)"
            ));
        }
    }
    let config = root
        .get("configuration")
        .filter(|c| c.is_object())
        .cloned()
        .ok_or_else(|| malformed!("configuration.json has no configuration object"))?;
    // NeuralForecast.load orders models by sorted file name; so do we
    // (BundleFiles keeps its files sorted by name).
    let mut models = Vec::new();
    for (file, bytes) in files.files.iter().filter(|(n, _)| {
        n.ends_with(".safetensors")
            && n != "configuration.safetensors"
            && n != "dataset.safetensors"
    }) {
        let store = TensorStore::from_bytes(bytes).map_err(|e| malformed!("{file}: {e}"))?;
        let class = store
            .metadata
            .get("model_class")
            .cloned()
            .ok_or_else(|| malformed!("{file}: safetensors metadata has no model_class"))?;
        let hp_text = store
            .metadata
            .get("hyper_parameters")
            .ok_or_else(|| malformed!("{file}: safetensors metadata has no hyper_parameters"))?;
        let hparams: Value = serde_json::from_str(hp_text)
            .map_err(|e| malformed!("{file}: hyper_parameters is not JSON: {e}"))?;
        models.push(ParsedModel {
            file: file.clone(),
            class,
            hparams,
            store,
            name: None,
        });
    }
    if models.is_empty() {
        return Err(malformed!("no <alias>_<n>.safetensors model file"));
    }
    Ok(Parsed {
        format: Format::Safetensors,
        config,
        models,
        unsupported: None,
    })
}
