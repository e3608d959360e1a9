//! Forward passes, one NeuralForecast model class per file, on the shared
//! blocks of `crate::nn`. Each takes the already-normalised window batch the
//! pipeline builds (as `BaseModel._parse_windows` does) and returns the
//! network output [batch, h, outputs] before the inverse scaling.

pub mod autoformer;
pub mod bitcn;
pub mod deepnpts;
pub mod dilated_rnn;
pub mod dlinear;
pub mod fedformer;
pub mod informer;
pub mod itransformer;
pub mod kan;
pub mod mlp;
pub mod mlp_multivariate;
pub mod nbeats;
pub mod nbeatsx;
pub mod nhits;
pub mod nlinear;
pub mod patchtst;
pub mod recurrent;
pub mod rmok;
pub mod softs;
pub mod softssharp;
pub mod stemgnn;
pub mod tcn;
pub mod tft;
pub mod tide;
pub mod timemixer;
pub mod timesnet;
pub mod timexer;
pub mod tsmixer;
pub mod tsmixerx;
pub mod vanilla_transformer;
pub mod xlinear;

pub(crate) use crate::forecaster::{
    channels_first, check_series, flat_inputs, insample_y, n_series, series_rows, to_horizon,
};
use crate::forecaster::{invalid, ForwardError};
pub use crate::forecaster::{BuildError, Forecaster, Layout, WindowBatch};
use crate::nn::categorical::CategoricalEmbeddings;
use crate::nn::scalers::RevinAffine;
use crate::spec::{hparams, CommonHparams, ModelSpec};
use crate::tensors::TensorStore;
use ndarray::Array3;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// A NeuralForecast model class this service serves: its name, its typed
/// hyperparameters and how its forward pass is built from them.
pub trait Model {
    /// The class name NeuralForecast saves (`model_class`).
    const CLASS: &'static str;
    /// NeuralForecast 3.3's `EXOGENOUS_CAT`: takes categorical exogenous features.
    const CATEGORICAL: bool = false;
    /// The class's own `__init__` arguments (in any release the fixtures come
    /// from) that shape training only, not the forward pass: dropouts,
    /// initialisation scales and the like. Known, so not reported as unknown.
    const NON_ARCHITECTURE: &'static [&'static str] = &[];
    /// The class's own hyperparameters (beyond [`CommonHparams`]), each
    /// defaulted as the class's `__init__` defaults it.
    type Hparams: DeserializeOwned + Default;
    /// The forward pass.
    type Net: Forecaster + 'static;

    fn load(
        spec: &ModelSpec,
        hp: Self::Hparams,
        store: &TensorStore,
    ) -> Result<Self::Net, BuildError>;
}

type Builder = fn(&ModelSpec, &TensorStore) -> Result<Arc<dyn Forecaster>, BuildError>;

/// One row of the registry: a served class, read from its [`Model`] impl.
pub struct Entry {
    pub class: &'static str,
    pub categorical: bool,
    build: Builder,
    keys: fn() -> &'static [&'static str],
    non_architecture: &'static [&'static str],
}

impl Entry {
    /// Every hyperparameter key this class's bundles may hold: the shared
    /// ones, the class's own, and the training arguments.
    fn known_keys(&self) -> [&'static [&'static str]; 4] {
        [
            hparams::field_names::<CommonHparams>(),
            (self.keys)(),
            self.non_architecture,
            hparams::NON_ARCHITECTURE,
        ]
    }
}

const fn entry<M: Model>() -> Entry {
    Entry {
        class: M::CLASS,
        categorical: M::CATEGORICAL,
        build: build_model::<M>,
        keys: hparams::field_names::<M::Hparams>,
        non_architecture: M::NON_ARCHITECTURE,
    }
}

fn build_model<M: Model>(
    spec: &ModelSpec,
    store: &TensorStore,
) -> Result<Arc<dyn Forecaster>, BuildError> {
    let hp = hparams::parse::<M::Hparams>(&spec.hparams)?;
    Ok(Arc::new(M::load(spec, hp, store)?))
}

/// Every served class, one row each, in the order `supported()` lists them.
const REGISTRY: &[Entry] = &[
    entry::<mlp::Mlp>(),
    entry::<nbeats::NBeats>(),
    entry::<nbeatsx::NBeatsX>(),
    entry::<nhits::NHits>(),
    entry::<dlinear::DLinear>(),
    entry::<nlinear::NLinear>(),
    entry::<tide::Tide>(),
    entry::<mlp_multivariate::MlpMultivariate>(),
    entry::<tsmixer::TsMixer>(),
    entry::<tsmixerx::TsMixerx>(),
    entry::<itransformer::ITransformer>(),
    entry::<recurrent::Recurrent<recurrent::Rnn>>(),
    entry::<recurrent::Recurrent<recurrent::Lstm>>(),
    entry::<recurrent::Recurrent<recurrent::Gru>>(),
    entry::<dilated_rnn::DilatedRnn>(),
    entry::<tcn::Tcn>(),
    entry::<bitcn::BiTcn>(),
    entry::<tft::Tft>(),
    entry::<patchtst::PatchTst>(),
    entry::<vanilla_transformer::VanillaTransformer>(),
    entry::<informer::Informer>(),
    entry::<autoformer::Autoformer>(),
    entry::<fedformer::FedFormer>(),
    entry::<softs::Softs>(),
    entry::<softssharp::SoftsSharp>(),
    entry::<kan::Kan>(),
    entry::<timemixer::TimeMixer>(),
    entry::<timexer::TimeXer>(),
    entry::<rmok::RMoK>(),
    entry::<xlinear::XLinear>(),
    entry::<stemgnn::StemGnn>(),
    entry::<timesnet::TimesNet>(),
    entry::<deepnpts::DeepNpts>(),
];

/// Classes refused for a reason other than "not ported yet".
const REFUSED: &[(&str, &str)] = &[(
    "xLSTM",
    "NeuralForecast 3.3.0 builds xLSTM from the optional `xlstm` package, which this project's pinned environment does not include (so no golden fixtures can be made), and its sLSTM backbone needs CUDA kernels that do not run on CPU",
)];

/// Classes this service can serve, in registry order.
pub fn supported() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|e| e.class)
}

/// NeuralForecast classes this service knows by name but does not serve
/// (beyond [`REFUSED`]): so a bundle naming one is refused with the class
/// spelled as NeuralForecast spells it.
const OTHER_CLASSES: &[&str] = &["DeepAR", "HINT", "TimeLLM"];

/// Every NeuralForecast class name this service knows, served or not.
pub fn known_classes() -> impl Iterator<Item = &'static str> {
    supported()
        .chain(REFUSED.iter().map(|(n, _)| *n))
        .chain(OTHER_CLASSES.iter().copied())
}

fn entry_of(class: &str) -> Option<&'static Entry> {
    REGISTRY.iter().find(|e| e.class == class)
}

/// The served classes that take categorical exogenous features.
pub fn categorical_classes() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().filter(|e| e.categorical).map(|e| e.class)
}

/// Keys of the spec's `hyper_parameters` that neither the shared keys, the
/// class's own hyperparameters nor the known training arguments account for,
/// in the file's order. Empty for a class this service does not serve (it
/// has nothing to check them against).
pub fn unknown_hyperparameters(spec: &ModelSpec) -> Vec<String> {
    match entry_of(&spec.class) {
        Some(e) => hparams::unknown_keys(&spec.hparams, &e.known_keys()),
        None => vec![],
    }
}

/// A forward pass behind the categorical embeddings: the batch's category
/// indices become embedding rows before the model reads it.
struct Embedded {
    embeddings: CategoricalEmbeddings,
    net: Arc<dyn Forecaster>,
}

impl Forecaster for Embedded {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, ForwardError> {
        self.net.forward(&self.embeddings.apply(batch)?)
    }

    fn layout(&self) -> Layout {
        self.net.layout()
    }

    fn insample_steps(&self) -> Option<usize> {
        self.net.insample_steps()
    }

    fn rolls_out(&self) -> bool {
        self.net.rolls_out()
    }

    fn forward_rollout(&self, batch: &WindowBatch, h: usize) -> Result<Array3<f32>, ForwardError> {
        self.net.forward_rollout(&self.embeddings.apply(batch)?, h)
    }
}

/// Builds the forward pass for a model file.
pub fn build(spec: &ModelSpec, store: &TensorStore) -> Result<Arc<dyn Forecaster>, BuildError> {
    if !spec.categorical.is_empty() {
        if !entry_of(&spec.class).is_some_and(|e| e.categorical) {
            return Err(invalid!(
                "{} takes no categorical exogenous variables, yet cat_exog_list names {}",
                spec.class,
                spec.categorical.names().collect::<Vec<_>>().join(", ")
            ));
        }
        let embeddings = CategoricalEmbeddings::load(spec, store)?;
        let net = build_net(spec, store)?;
        return Ok(match embeddings {
            Some(embeddings) => Arc::new(Embedded { embeddings, net }),
            None => net,
        });
    }
    build_net(spec, store)
}

fn build_net(spec: &ModelSpec, store: &TensorStore) -> Result<Arc<dyn Forecaster>, BuildError> {
    if let Some(e) = entry_of(&spec.class) {
        return (e.build)(spec, store);
    }
    if let Some((_, why)) = REFUSED.iter().find(|(name, _)| *name == spec.class) {
        return Err(BuildError::Unsupported(format!("{}: {why}", spec.class)));
    }
    Err(BuildError::Unsupported(format!(
        "model class {} is not supported yet (supported: {})",
        spec.class,
        supported().collect::<Vec<_>>().join(", ")
    )))
}

/// Revin's learned terms of the target channel, when the model uses revin.
pub fn revin_affine(store: &TensorStore) -> Result<Option<RevinAffine>, BuildError> {
    if !store.contains("scaler.revin_bias") {
        return Ok(None);
    }
    let shape = store.shape_of("scaler.revin_bias")?.to_vec();
    let bias = store.get("scaler.revin_bias", &shape)?;
    let weight = store.get("scaler.revin_weight", &shape)?;
    match (bias.data.first(), weight.data.first()) {
        (Some(b), Some(w)) => Ok(Some(RevinAffine {
            bias: *b,
            weight: *w,
        })),
        _ => Err(invalid!("revin tensors are empty")),
    }
}

/// Models that take no exogenous input refuse a spec that names some.
pub(crate) fn require_no_exog(spec: &ModelSpec) -> Result<(), BuildError> {
    if !(spec.futr_exog.is_empty() && spec.hist_exog.is_empty() && spec.stat_exog.is_empty()) {
        return Err(invalid!("{} takes no exogenous variables", spec.class));
    }
    Ok(())
}

/// Models that read future exogenous variables only refuse a spec that names
/// historic or static ones.
pub(crate) fn require_futr_exog_only(spec: &ModelSpec) -> Result<(), BuildError> {
    if !(spec.hist_exog.is_empty() && spec.stat_exog.is_empty()) {
        return Err(invalid!(
            "{} takes future exogenous variables only",
            spec.class
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_classes_give_their_reason() {
        let hp = serde_json::json!({"h": 3, "input_size": 6, "loss": {"cls": "MAE"}});
        let spec = ModelSpec::from_hparams("xLSTM", hp).unwrap();
        match build(&spec, &TensorStore::default()) {
            Err(BuildError::Unsupported(why)) => {
                assert!(why.contains("xlstm") && why.contains("CUDA"), "{why}")
            }
            _ => panic!("xLSTM must be refused"),
        }
        assert!(!supported().any(|c| c == "xLSTM"));
    }

    #[test]
    fn categorical_classes_are_those_with_exogenous_cat() {
        // NeuralForecast 3.3's classes with EXOGENOUS_CAT = True.
        let mut want = [
            "Autoformer",
            "BiTCN",
            "DeepNPTS",
            "DilatedRNN",
            "FEDformer",
            "GRU",
            "Informer",
            "KAN",
            "LSTM",
            "MLP",
            "MLPMultivariate",
            "NBEATSx",
            "NHITS",
            "RNN",
            "TCN",
            "TiDE",
            "TimesNet",
            "TimeXer",
            "TSMixerx",
            "VanillaTransformer",
            "XLinear",
        ];
        want.sort();
        let mut got: Vec<_> = categorical_classes().collect();
        got.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn the_registry_names_each_class_once_with_its_own_keys() {
        let mut classes: Vec<_> = supported().collect();
        assert_eq!(classes.len(), 33);
        classes.sort();
        classes.dedup();
        assert_eq!(classes.len(), 33);
        let mlp = entry_of("MLP").unwrap();
        assert_eq!((mlp.keys)(), ["num_layers", "hidden_size"]);
        let hp = serde_json::json!({
            "h": 3, "input_size": 6, "loss": {"cls": "MAE"},
            "hidden_size": 4, "max_steps": 10, "accelerator": "cpu", "mystery": 1,
        });
        let spec = ModelSpec::from_hparams("MLP", hp).unwrap();
        assert_eq!(unknown_hyperparameters(&spec), ["mystery"]);
    }
}
