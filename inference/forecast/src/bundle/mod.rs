//! A bundle: the directory NeuralForecast 3.3.0's `nf.save(path,
//! save_dataset=False)` writes, read as it is (no conversion step).

mod checkpoint;
pub mod conformal;
mod conformal_pickle;
mod format;
mod format_v1;
mod format_v2;
pub mod pickle;
pub mod vocab;

pub use format::Format;

use crate::dates::Freq;
use crate::models::{self, Forecaster};
use crate::nn::implicit_quantile::ImplicitQuantileHead;
use crate::nn::scalers::RevinAffine;
use crate::scaling::LocalScalerKind;
use crate::spec::ModelSpec;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a bundle could not be loaded. The message names the file and the fault.
#[derive(Debug, thiserror::Error)]
#[error("bundle '{bundle}': {message}")]
pub struct LoadError {
    pub bundle: String,
    pub message: String,
}

/// Column names the bundle was trained with (`id_col`, `time_col`, `target_col`).
#[derive(Debug, Clone)]
pub struct Columns {
    pub id: String,
    pub time: String,
    pub target: String,
}

/// Why this service does not run one model of a bundle it serves (its class,
/// an option, its loss): the bundle still loads, and `/models` and an
/// `unsupported_model` answer give this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotServed(pub String);

pub struct BundleModel {
    /// Column name in predictions (alias, or class name, with NeuralForecast's
    /// numeric suffix for repeats).
    pub name: String,
    pub file: String,
    pub class: String,
    pub spec: Option<ModelSpec>,
    /// The forward pass, or why this service cannot run it.
    pub net: Result<Arc<dyn Forecaster>, NotServed>,
    /// Revin's learned terms for the target (scaler_type "revin" only).
    pub revin: Option<RevinAffine>,
    /// IQLoss / HuberIQLoss: the head that maps outputs for a quantile.
    pub implicit_quantile: Option<ImplicitQuantileHead>,
    /// Keys of the model's `hyper_parameters` that neither its class's
    /// hyperparameters, the shared ones, nor the known training arguments
    /// account for (see `models::unknown_hyperparameters`): read by nothing,
    /// so possibly an option this service ignores. Logged once at load.
    pub unknown_hyperparameters: Vec<String>,
}

impl BundleModel {
    /// Output columns: the name plus each loss output suffix.
    pub fn columns(&self) -> Vec<String> {
        match &self.spec {
            Some(s) => s
                .output_names
                .iter()
                .map(|n| format!("{}{}", self.name, n))
                .collect(),
            None => vec![self.name.clone()],
        }
    }
}

pub struct Bundle {
    pub name: String,
    pub dir: PathBuf,
    pub content_hash: String,
    pub h: usize,
    pub freq: Freq,
    pub freq_json: Value,
    pub local_scaler: Option<LocalScalerKind>,
    /// `local_static_scaler_type`: one scaler over all series of static_df.
    pub local_static_scaler: Option<LocalScalerKind>,
    pub columns: Columns,
    pub models: Vec<BundleModel>,
    /// Bytes held by the weights in memory.
    pub memory_bytes: usize,
    /// A bundle-level reason no prediction can be served (e.g. an unsupported
    /// local scaler), reported in /models and on /predict.
    pub unsupported: Option<String>,
    /// The on-disk format, and which NeuralForecast wrote it where known.
    pub format: Format,
    /// Fitted with `prediction_intervals`: the conformity scores saved with it.
    pub intervals: conformal::Calibration,
    /// The categorical columns' vocabularies (`categorical_vocab_`).
    pub vocab: vocab::Vocabularies,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("name", &self.name)
            .field("hash", &self.content_hash)
            .finish()
    }
}

/// Largest file a bundle may hold (NeuralForecast models are far smaller);
/// a bigger one is refused before it is read.
pub const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Files of a bundle directory, read once: the hash and the parse use the same bytes,
/// so a bundle replaced while being read can never mix two versions.
pub(crate) struct BundleFiles {
    pub(crate) files: Vec<(String, Vec<u8>)>,
}

impl BundleFiles {
    fn read(dir: &Path) -> std::io::Result<BundleFiles> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let meta = std::fs::metadata(entry.path())?;
            if !meta.is_file() {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            if meta.len() > MAX_FILE_BYTES {
                return Err(std::io::Error::other(format!(
                    "{name} is {} bytes, above the {MAX_FILE_BYTES}-byte limit per bundle file",
                    meta.len()
                )));
            }
            files.push((name, std::fs::read(entry.path())?));
        }
        files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Ok(BundleFiles { files })
    }

    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
    }

    /// `sha256:` over name, NUL, u64 LE length and bytes of every file (docs/contract.md).
    fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        for (name, bytes) in &self.files {
            h.update(name.as_bytes());
            h.update([0u8]);
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        }
        let digest = h.finalize();
        let mut s = String::with_capacity(7 + 64);
        s.push_str("sha256:");
        for b in digest {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

/// The content hash of a bundle directory as it is on disk now.
pub fn content_hash(dir: &Path) -> std::io::Result<String> {
    Ok(BundleFiles::read(dir)?.content_hash())
}

impl Bundle {
    pub fn load(dir: &Path) -> Result<Bundle, LoadError> {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        let err = |message: String| LoadError {
            bundle: name.clone(),
            message,
        };
        let files = BundleFiles::read(dir)
            .map_err(|e| err(format!("cannot read {}: {e}", dir.display())))?;
        Self::from_files(name, dir, files)
    }

    /// A bundle from its files' bytes (name, content), as if read from `dir`:
    /// what `load` does after reading, and what the loader fuzz target drives.
    pub fn from_bytes(
        name: &str,
        dir: &Path,
        files: Vec<(String, Vec<u8>)>,
    ) -> Result<Bundle, LoadError> {
        let mut files = BundleFiles { files };
        files
            .files
            .sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Self::from_files(name.to_string(), dir, files)
    }

    fn from_files(name: String, dir: &Path, files: BundleFiles) -> Result<Bundle, LoadError> {
        let err = |message: String| LoadError {
            bundle: name.clone(),
            message,
        };
        // NeuralForecast.load picks the format by which files are present;
        // a stray legacy file never downgrades a v2 directory.
        let parsed = if files.get("configuration.json").is_some() {
            format_v2::parse(&files)
        } else if files.get("configuration.pkl").is_some() {
            format_v1::parse(&files)
        } else {
            Err(format::malformed!(
                "configuration.json is missing (and there is no configuration.pkl of a bundle written before NeuralForecast 3.3): not a NeuralForecast bundle"
            ))
        }
        .map_err(|e| err(e.to_string()))?;
        let cfg = &parsed.config;
        let h = cfg
            .get("h")
            .and_then(Value::as_u64)
            .filter(|h| *h > 0)
            .ok_or_else(|| err("configuration.h must be a positive integer".into()))?
            as usize;
        let freq_json = cfg.get("freq").cloned().unwrap_or(Value::Null);
        let freq =
            Freq::from_json(&freq_json).map_err(|e| err(format!("configuration.freq: {e}")))?;
        let col = |key: &str, default: &str| -> Result<String, LoadError> {
            match cfg.get(key) {
                None | Some(Value::Null) => Ok(default.to_string()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(err(format!("configuration.{key} must be a string"))),
            }
        };
        let columns = Columns {
            id: col("id_col", "unique_id")?,
            time: col("time_col", "ds")?,
            target: col("target_col", "y")?,
        };
        let intervals = match &parsed.format {
            Format::Safetensors => conformal::read(cfg, files.get("configuration.safetensors"), h),
            Format::Pickle { writer } => {
                conformal_pickle::read(cfg, files.get("configuration.pkl"), h, writer)
            }
        };
        let mut unsupported = None;
        let mut scaler = |key: &str| -> Result<Option<LocalScalerKind>, LoadError> {
            match cfg.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => match LocalScalerKind::parse(s) {
                    Ok(k) => Ok(Some(k)),
                    Err(e) => {
                        unsupported = Some(e.to_string());
                        Ok(None)
                    }
                },
                Some(_) => Err(err(format!("configuration.{key} must be a string or null"))),
            }
        };
        let vocab = vocab::Vocabularies::from_config(cfg)
            .map_err(|e| err(format!("configuration: {e}")))?;
        let local_scaler = scaler("local_scaler_type")?;
        let local_static_scaler = scaler("local_static_scaler_type")?;

        let unsupported = unsupported.or(parsed.unsupported);
        let mut models = Vec::new();
        let mut memory_bytes = 0;
        let mut seen: Vec<(String, usize)> = Vec::new();
        let bundle_name = name.as_str();
        for m in parsed.models {
            let format::ParsedModel {
                file,
                class,
                hparams: hp,
                store,
                name: fixed_name,
            } = m;
            memory_bytes += store.bytes;
            let name = match fixed_name {
                Some(n) => n,
                None => {
                    let repr = match hp.get("alias") {
                        Some(Value::String(a)) => a.clone(),
                        _ => class.clone(),
                    };
                    let count = match seen.iter_mut().find(|(n, _)| *n == repr) {
                        Some((_, c)) => {
                            *c += 1;
                            *c
                        }
                        None => {
                            seen.push((repr.clone(), 0));
                            0
                        }
                    };
                    if count > 0 {
                        format!("{repr}{count}")
                    } else {
                        repr
                    }
                }
            };
            let mut unknown_hyperparameters = Vec::new();
            let (spec, net) = match ModelSpec::from_hparams(&class, hp) {
                Ok(mut spec) => {
                    if spec.h != h {
                        return Err(err(format!(
                            "{file}: model h {} differs from the bundle's h {h}",
                            spec.h
                        )));
                    }
                    let net = match models::build(&spec, &store) {
                        Ok(n) => Ok(n),
                        Err(models::BuildError::Unsupported(m)) => Err(NotServed(m)),
                        Err(m) => {
                            return Err(err(match &parsed.format {
                                Format::Safetensors => format!("{file}: {m}"),
                                // The checkpoint is intact (it was read), so its
                                // weights are laid out as another release built
                                // this class: say so rather than "corrupt".
                                Format::Pickle { writer } => format!(
                                    "{file}: the {class} weights written by {writer} do not fit NeuralForecast 3.3's {class} ({m}); this release's {class} architecture is not served"
                                ),
                            }));
                        }
                    };
                    unknown_hyperparameters = models::unknown_hyperparameters(&spec);
                    if !unknown_hyperparameters.is_empty() {
                        tracing::warn!(
                            bundle = %bundle_name,
                            model = %name,
                            file = %file,
                            keys = ?unknown_hyperparameters,
                            "hyper_parameters hold keys this service does not know; they are ignored"
                        );
                    }
                    // The hyperparameters were read by the build; the parsed
                    // JSON tree (~50 keys) need not stay in memory.
                    spec.hparams = Value::Null;
                    (Some(spec), net)
                }
                Err(m) => (None, Err(NotServed(format!("{class}: {m}")))),
            };
            let mut net = net;
            if let Some(missing) = spec
                .as_ref()
                .and_then(|s| s.categorical.names().find(|c| vocab.get(c).is_none()))
            {
                net = Err(NotServed(format!(
                    "categorical '{missing}' has no vocabulary in configuration.json (categorical_vocab_)"
                )));
            }
            let implicit_quantile = match spec.as_ref().and_then(|s| s.implicit_quantile) {
                Some(dim) => {
                    if net.as_ref().is_ok_and(|n| n.rolls_out()) {
                        net = Err(NotServed(format!(
                            "{class} with loss {} and recurrent=True is not served: its quantile head maps every step the decoder feeds back",
                            spec.as_ref().map(|s| s.loss.as_str()).unwrap_or("?")
                        )));
                    }
                    Some(
                        ImplicitQuantileHead::load(&store, dim)
                            .map_err(|e| err(format!("{file}: {e}")))?,
                    )
                }
                None => None,
            };
            let revin = match &spec {
                Some(s) if s.scaler == crate::nn::scalers::TemporalScalerKind::Revin => Some(
                    models::revin_affine(&store)
                        .map_err(|e| err(format!("{file}: {e}")))?
                        .ok_or_else(|| {
                            err(format!(
                                "{file}: scaler_type revin without scaler.revin_bias"
                            ))
                        })?,
                ),
                _ => None,
            };
            models.push(BundleModel {
                name,
                file,
                class,
                spec,
                net,
                revin,
                implicit_quantile,
                unknown_hyperparameters,
            });
        }
        Ok(Bundle {
            name,
            dir: dir.to_path_buf(),
            content_hash: files.content_hash(),
            h,
            freq,
            freq_json,
            local_scaler,
            local_static_scaler,
            columns,
            models,
            memory_bytes,
            unsupported,
            format: parsed.format,
            intervals,
            vocab,
        })
    }

    /// The writer, when NeuralForecast 1.x or 2.x wrote the bundle: their
    /// `predict` took `level` only, and only with conformal intervals.
    pub fn writer_before_3(&self) -> Option<&str> {
        match &self.format {
            Format::Pickle { writer }
                if format_v1::Family::of_writer(writer)
                    .is_some_and(|f| f <= format_v1::Family::V2) =>
            {
                Some(writer)
            }
            _ => None,
        }
    }

    /// Why this bundle cannot predict, if it cannot.
    pub fn unsupported_reason(&self) -> Option<String> {
        if let Some(u) = &self.unsupported {
            return Some(u.clone());
        }
        let bad: Vec<String> = self
            .models
            .iter()
            .filter_map(|m| m.net.as_ref().err().map(|e| format!("{}: {e}", m.name)))
            .collect();
        if bad.is_empty() {
            None
        } else {
            Some(bad.join("; "))
        }
    }

    /// Distinct names over all models' specs, in first-seen order.
    fn union_of(&self, pick: impl Fn(&ModelSpec) -> Vec<&String>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in self.models.iter().filter_map(|m| m.spec.as_ref()) {
            for c in pick(s) {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
        }
        out
    }

    /// Exogenous columns the models read from `df` (hist and futr).
    pub fn df_exog(&self) -> Vec<String> {
        self.union_of(|s| s.hist_exog.iter().chain(s.futr_exog.iter()).collect())
    }

    pub fn futr_exog(&self) -> Vec<String> {
        self.union_of(|s| s.futr_exog.iter().collect())
    }

    pub fn stat_exog(&self) -> Vec<String> {
        self.union_of(|s| s.stat_exog.iter().collect())
    }

    /// All output columns in NeuralForecast's order.
    pub fn output_columns(&self) -> Vec<String> {
        self.models.iter().flat_map(|m| m.columns()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::SafeTensors;
    use std::collections::HashMap;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/bundles")
            .join(name)
    }

    /// A copy of `src` whose model file's metadata is edited by `edit`.
    fn edited_bundle(
        src: &str,
        file: &str,
        edit: impl Fn(&mut HashMap<String, String>),
    ) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("b");
        std::fs::create_dir_all(&dst).unwrap();
        for e in std::fs::read_dir(fixture(src)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
        let bytes = std::fs::read(dst.join(file)).unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let mut md = meta.metadata().clone().unwrap();
        edit(&mut md);
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let out = safetensors::serialize(st.tensors(), Some(md)).unwrap();
        std::fs::write(dst.join(file), out).unwrap();
        dir
    }

    #[test]
    fn unknown_model_class_is_reported_not_skipped() {
        let dir = edited_bundle("mlp_d_standard", "MLP_0.safetensors", |m| {
            m.insert("model_class".into(), "TimeLLM".into());
        });
        let b = Bundle::load(&dir.path().join("b")).unwrap();
        let why = b.unsupported_reason().unwrap();
        assert!(
            why.contains("TimeLLM") && why.contains("not supported"),
            "{why}"
        );
        assert_eq!(b.models.len(), 1);
        let req = crate::contract::PredictRequest::default();
        let e = crate::pipeline::predict(&b, &req).unwrap_err();
        assert_eq!((e.status(), e.code.as_str()), (422, "unsupported_model"));
    }

    #[test]
    fn distribution_loss_is_refused_with_the_reason() {
        let dir = edited_bundle("mlp_d_standard", "MLP_0.safetensors", |m| {
            let hp =
                m["hyper_parameters"].replace("\"cls\": \"MAE\"", "\"cls\": \"DistributionLoss\"");
            m.insert("hyper_parameters".into(), hp);
        });
        let b = Bundle::load(&dir.path().join("b")).unwrap();
        let why = b.unsupported_reason().unwrap();
        assert!(
            why.contains("DistributionLoss") && why.contains("Monte Carlo"),
            "{why}"
        );
    }

    #[test]
    fn forward_passes_that_are_random_at_inference_are_refused() {
        // Informer's ProbSparse attention keeps 9 of 12 queries with factor 3.
        let dir = edited_bundle("informer_d_futr", "Informer_0.safetensors", |m| {
            let hp = m["hyper_parameters"].replace("\"factor\": 5", "\"factor\": 3");
            m.insert("hyper_parameters".into(), hp);
        });
        let b = Bundle::load(&dir.path().join("b")).unwrap();
        let why = b.unsupported_reason().unwrap();
        assert!(
            why.contains("ProbSparse") && why.contains("random"),
            "{why}"
        );
        // FEDformer's randomly picked frequency modes are not saved.
        let dir = edited_bundle("fedformer_h_low_mq", "FEDformer_0.safetensors", |m| {
            let hp = m["hyper_parameters"]
                .replace("\"mode_select\": \"low\"", "\"mode_select\": \"random\"");
            m.insert("hyper_parameters".into(), hp);
        });
        let b = Bundle::load(&dir.path().join("b")).unwrap();
        let why = b.unsupported_reason().unwrap();
        assert!(why.contains("mode_select 'random'"), "{why}");
    }

    #[test]
    fn weights_that_contradict_hyperparameters_refuse_the_bundle() {
        let dir = edited_bundle("mlp_d_standard", "MLP_0.safetensors", |m| {
            let hp = m["hyper_parameters"].replace("\"hidden_size\": 32", "\"hidden_size\": 64");
            m.insert("hyper_parameters".into(), hp);
        });
        let e = Bundle::load(&dir.path().join("b")).unwrap_err();
        assert!(e.message.contains("shape"), "{}", e.message);
    }

    #[test]
    fn every_fixture_bundle_loads_with_no_unknown_hyperparameters() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
        let mut models = 0;
        let mut unknown = Vec::new();
        for set in ["bundles", "legacy/bundles"] {
            for e in std::fs::read_dir(root.join(set)).unwrap() {
                let dir = e.unwrap().path();
                if !dir.is_dir() {
                    continue;
                }
                // A legacy bundle this service refuses outright has no models to check.
                let Ok(b) = Bundle::load(&dir) else { continue };
                for m in &b.models {
                    models += 1;
                    if !m.unknown_hyperparameters.is_empty() {
                        unknown.push(format!(
                            "{}/{} ({}): {:?}",
                            b.name, m.file, m.class, m.unknown_hyperparameters
                        ));
                    }
                }
            }
        }
        assert!(models > 300, "only {models} models read");
        assert!(unknown.is_empty(), "unknown keys:\n{}", unknown.join("\n"));
    }

    #[test]
    fn an_extra_hyperparameter_is_reported_by_name() {
        let dir = edited_bundle("mlp_d_standard", "MLP_0.safetensors", |m| {
            let hp = m["hyper_parameters"].replacen('{', "{\"warp_drive\": 9, ", 1);
            m.insert("hyper_parameters".into(), hp);
        });
        let b = Bundle::load(&dir.path().join("b")).unwrap();
        assert!(b.unsupported_reason().is_none());
        assert_eq!(b.models[0].unknown_hyperparameters, ["warp_drive"]);
        let clean = Bundle::load(&fixture("mlp_d_standard")).unwrap();
        assert!(clean.models[0].unknown_hyperparameters.is_empty());
    }

    #[test]
    fn an_ill_typed_hyperparameter_refuses_the_bundle_naming_the_key() {
        let dir = edited_bundle("mlp_d_standard", "MLP_0.safetensors", |m| {
            let hp =
                m["hyper_parameters"].replace("\"hidden_size\": 32", "\"hidden_size\": \"32\"");
            m.insert("hyper_parameters".into(), hp);
        });
        let e = Bundle::load(&dir.path().join("b")).unwrap_err();
        assert!(
            e.message.contains("MLP_0.safetensors") && e.message.contains("'hidden_size'"),
            "{}",
            e.message
        );
    }
}
