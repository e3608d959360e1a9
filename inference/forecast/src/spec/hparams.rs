//! Typed hyperparameters: each model class deserialises its `hyper_parameters`
//! into its own `#[derive(Deserialize)]` struct (every field defaulted as
//! NeuralForecast defaults it), and the keys no struct reads and no list of
//! training arguments names are reported as unknown.
//!
//! A key whose value is `null` is read as absent (its default), as
//! NeuralForecast's own `None` defaults mean.

use super::SpecError;
use serde::de::{self, DeserializeOwned, Visitor};
use serde_json::{Map, Value};

/// Keys NeuralForecast stores in every model's `hyper_parameters` that shape
/// training, validation or the runtime, never the forward pass: `BaseModel.__init__`'s
/// arguments not read by [`crate::spec::ModelSpec`] (1.x to 3.3), the trainer
/// kwargs it passes to Lightning, and the keys older releases stored.
pub const NON_ARCHITECTURE: &[&str] = &[
    // BaseModel.__init__ (3.3) training and data-loading arguments.
    "valid_loss",
    "learning_rate",
    "max_steps",
    "val_check_steps",
    "batch_size",
    "valid_batch_size",
    "windows_batch_size",
    "inference_windows_batch_size",
    "start_padding_enabled",
    "training_data_availability_threshold",
    "n_samples",
    "h_train",
    "inference_input_size",
    "step_size",
    "num_lr_decays",
    "early_stop_patience_steps",
    "val_monitor",
    "drop_last_loader",
    "random_seed",
    "optimizer",
    "optimizer_kwargs",
    "lr_scheduler",
    "lr_scheduler_kwargs",
    "dataloader_kwargs",
    "trainer_kwargs",
    // Lightning Trainer kwargs NeuralForecast stores with the model.
    "accelerator",
    "devices",
    "strategy",
    "precision",
    "logger",
    "callbacks",
    "enable_checkpointing",
    "enable_model_summary",
    "enable_progress_bar",
    "gradient_clip_val",
    "gradient_clip_algorithm",
    "deterministic",
    "max_epochs",
    "min_steps",
    "check_val_every_n_epoch",
    "num_sanity_val_steps",
    "log_every_n_steps",
    "accumulate_grad_batches",
    "default_root_dir",
    // Releases before 3.3: removed or renamed data-loading arguments.
    "num_workers_loader",
    "stat_exog_list_",
];

/// The field names of a struct `T` deserialises (its serde names), read by
/// asking `T` to deserialise from a probe that only records them.
pub fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldProbe {
        fields: &mut fields,
    });
    fields
}

struct FieldProbe<'a> {
    fields: &'a mut &'static [&'static str],
}

#[derive(Debug)]
struct ProbeDone;

impl std::fmt::Display for ProbeDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field probe")
    }
}

impl std::error::Error for ProbeDone {}

impl de::Error for ProbeDone {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        ProbeDone
    }
}

impl<'de> de::Deserializer<'de> for FieldProbe<'_> {
    type Error = ProbeDone;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeDone> {
        Err(ProbeDone)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ProbeDone> {
        *self.fields = fields;
        Err(ProbeDone)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// The hyperparameter map without its `null` entries.
fn present(hp: &Value) -> Map<String, Value> {
    match hp {
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        _ => Map::new(),
    }
}

/// `T` from the hyperparameters, absent and `null` keys at `T`'s defaults.
/// An ill-typed key is named: "hyperparameter 'hidden_size': invalid type ...".
pub fn parse<T: DeserializeOwned + Default>(hp: &Value) -> Result<T, SpecError> {
    let map = present(hp);
    match serde_json::from_value::<T>(Value::Object(map.clone())) {
        Ok(t) => Ok(t),
        Err(e) => {
            // Which key: the first that fails on its own (every field has a default).
            for key in field_names::<T>() {
                if let Some(v) = map.get(*key) {
                    let mut one = Map::new();
                    one.insert((*key).to_string(), v.clone());
                    if let Err(e) = serde_json::from_value::<T>(Value::Object(one)) {
                        return Err(SpecError::Key {
                            key: (*key).to_string(),
                            source: e,
                        });
                    }
                }
            }
            Err(SpecError::Hparams(e))
        }
    }
}

/// Keys of `hp` that none of `known` lists, in the file's order.
pub fn unknown_keys(hp: &Value, known: &[&[&str]]) -> Vec<String> {
    match hp {
        Value::Object(map) => map
            .keys()
            .filter(|k| !known.iter().any(|list| list.contains(&k.as_str())))
            .cloned()
            .collect(),
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(default)]
    struct Example {
        hidden_size: usize,
        revin: bool,
        units: Vec<usize>,
    }

    impl Default for Example {
        fn default() -> Self {
            Example {
                hidden_size: 8,
                revin: true,
                units: vec![1, 2],
            }
        }
    }

    #[test]
    fn fields_are_read_with_defaults_for_absent_and_null_keys() {
        assert_eq!(field_names::<Example>(), ["hidden_size", "revin", "units"]);
        let e: Example = parse(&json!({"hidden_size": 3, "revin": null, "other": "x"})).unwrap();
        assert_eq!(
            e,
            Example {
                hidden_size: 3,
                ..Example::default()
            }
        );
    }

    #[test]
    fn an_ill_typed_key_is_named() {
        let e = parse::<Example>(&json!({"hidden_size": 3, "units": [1, "a"]}))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("hyperparameter 'units': "), "{e}");
        let e = parse::<Example>(&json!({"hidden_size": -1}))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("hyperparameter 'hidden_size': "), "{e}");
    }

    #[test]
    fn unknown_keys_are_those_no_list_names() {
        let hp = json!({"h": 1, "hidden_size": 2, "max_steps": 3, "wat": 4});
        let known: &[&[&str]] = &[&["h"], field_names::<Example>(), NON_ARCHITECTURE];
        assert_eq!(unknown_keys(&hp, known), ["wat"]);
    }
}
