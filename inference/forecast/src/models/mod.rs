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
pub mod gru;
pub mod informer;
pub mod itransformer;
pub mod kan;
pub mod lstm;
pub mod mlp;
pub mod mlp_multivariate;
pub mod nbeats;
pub mod nbeatsx;
pub mod nhits;
pub mod nlinear;
pub mod patchtst;
pub mod rmok;
pub mod rnn;
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
pub use crate::forecaster::{BuildError, Forecaster, Layout, WindowBatch};
use crate::nn::categorical::CategoricalEmbeddings;
use crate::nn::scalers::RevinAffine;
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;
use std::sync::Arc;

type Builder = fn(&ModelSpec, &TensorStore) -> Result<Arc<dyn Forecaster>, BuildError>;

/// Model class -> forward pass. One line per supported NeuralForecast class.
const REGISTRY: &[(&str, Builder)] = &[
    ("MLP", |s, t| Ok(Arc::new(mlp::Mlp::load(s, t)?))),
    ("NBEATS", |s, t| Ok(Arc::new(nbeats::NBeats::load(s, t)?))),
    ("NBEATSx", |s, t| {
        Ok(Arc::new(nbeatsx::NBeatsX::load(s, t)?))
    }),
    ("NHITS", |s, t| Ok(Arc::new(nhits::NHits::load(s, t)?))),
    ("DLinear", |s, t| {
        Ok(Arc::new(dlinear::DLinear::load(s, t)?))
    }),
    ("NLinear", |s, t| {
        Ok(Arc::new(nlinear::NLinear::load(s, t)?))
    }),
    ("TiDE", |s, t| Ok(Arc::new(tide::Tide::load(s, t)?))),
    ("MLPMultivariate", |s, t| {
        Ok(Arc::new(mlp_multivariate::MlpMultivariate::load(s, t)?))
    }),
    ("TSMixer", |s, t| {
        Ok(Arc::new(tsmixer::TsMixer::load(s, t)?))
    }),
    ("TSMixerx", |s, t| {
        Ok(Arc::new(tsmixerx::TsMixerx::load(s, t)?))
    }),
    ("iTransformer", |s, t| {
        Ok(Arc::new(itransformer::ITransformer::load(s, t)?))
    }),
    ("RNN", |s, t| Ok(Arc::new(rnn::load(s, t)?))),
    ("LSTM", |s, t| Ok(Arc::new(lstm::load(s, t)?))),
    ("GRU", |s, t| Ok(Arc::new(gru::load(s, t)?))),
    ("DilatedRNN", |s, t| {
        Ok(Arc::new(dilated_rnn::DilatedRnn::load(s, t)?))
    }),
    ("TCN", |s, t| Ok(Arc::new(tcn::Tcn::load(s, t)?))),
    ("BiTCN", |s, t| Ok(Arc::new(bitcn::BiTcn::load(s, t)?))),
    ("TFT", |s, t| Ok(Arc::new(tft::Tft::load(s, t)?))),
    ("PatchTST", |s, t| {
        Ok(Arc::new(patchtst::PatchTst::load(s, t)?))
    }),
    ("VanillaTransformer", |s, t| {
        Ok(Arc::new(vanilla_transformer::VanillaTransformer::load(
            s, t,
        )?))
    }),
    ("Informer", |s, t| {
        Ok(Arc::new(informer::Informer::load(s, t)?))
    }),
    ("Autoformer", |s, t| Ok(Arc::new(autoformer::load(s, t)?))),
    ("FEDformer", |s, t| Ok(Arc::new(fedformer::load(s, t)?))),
    ("SOFTS", |s, t| Ok(Arc::new(softs::Softs::load(s, t)?))),
    ("SOFTSSharp", |s, t| Ok(Arc::new(softssharp::load(s, t)?))),
    ("KAN", |s, t| Ok(Arc::new(kan::Kan::load(s, t)?))),
    ("TimeMixer", |s, t| {
        Ok(Arc::new(timemixer::TimeMixer::load(s, t)?))
    }),
    ("TimeXer", |s, t| {
        Ok(Arc::new(timexer::TimeXer::load(s, t)?))
    }),
    ("RMoK", |s, t| Ok(Arc::new(rmok::RMoK::load(s, t)?))),
    ("XLinear", |s, t| {
        Ok(Arc::new(xlinear::XLinear::load(s, t)?))
    }),
    ("StemGNN", |s, t| {
        Ok(Arc::new(stemgnn::StemGnn::load(s, t)?))
    }),
    ("TimesNet", |s, t| {
        Ok(Arc::new(timesnet::TimesNet::load(s, t)?))
    }),
    ("DeepNPTS", |s, t| {
        Ok(Arc::new(deepnpts::DeepNpts::load(s, t)?))
    }),
];

/// Classes refused for a reason other than "not ported yet".
const REFUSED: &[(&str, &str)] = &[(
    "xLSTM",
    "NeuralForecast 3.3.0 builds xLSTM from the optional `xlstm` package, which this project's pinned environment does not include (so no golden fixtures can be made), and its sLSTM backbone needs CUDA kernels that do not run on CPU",
)];

/// Classes this service can serve, in registry order.
pub fn supported() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|(name, _)| *name)
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

/// The classes whose NeuralForecast 3.3 implementation takes categorical
/// exogenous features (`EXOGENOUS_CAT = True`) and that this service serves.
const CATEGORICAL: &[&str] = &[
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

/// A forward pass behind the categorical embeddings: the batch's category
/// indices become embedding rows before the model reads it.
struct Embedded {
    embeddings: CategoricalEmbeddings,
    net: Arc<dyn Forecaster>,
}

impl Forecaster for Embedded {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, String> {
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

    fn forward_rollout(&self, batch: &WindowBatch, h: usize) -> Result<Array3<f32>, String> {
        self.net.forward_rollout(&self.embeddings.apply(batch)?, h)
    }
}

/// Builds the forward pass for a model file.
pub fn build(spec: &ModelSpec, store: &TensorStore) -> Result<Arc<dyn Forecaster>, BuildError> {
    if !spec.categorical.is_empty() {
        if !CATEGORICAL.contains(&spec.class.as_str()) {
            return Err(BuildError::Invalid(format!(
                "{} takes no categorical exogenous variables, yet cat_exog_list names {}",
                spec.class,
                spec.categorical.names().collect::<Vec<_>>().join(", ")
            )));
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
    if let Some((_, builder)) = REGISTRY.iter().find(|(name, _)| *name == spec.class) {
        return builder(spec, store);
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
pub fn revin_affine(store: &TensorStore) -> Result<Option<RevinAffine>, String> {
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
        _ => Err("revin tensors are empty".into()),
    }
}

/// Models that take no exogenous input refuse a spec that names some.
pub(crate) fn require_no_exog(spec: &ModelSpec) -> Result<(), BuildError> {
    if !(spec.futr_exog.is_empty() && spec.hist_exog.is_empty() && spec.stat_exog.is_empty()) {
        return Err(BuildError::Invalid(format!(
            "{} takes no exogenous variables",
            spec.class
        )));
    }
    Ok(())
}

/// Models that read future exogenous variables only refuse a spec that names
/// historic or static ones.
pub(crate) fn require_futr_exog_only(spec: &ModelSpec) -> Result<(), BuildError> {
    if !(spec.hist_exog.is_empty() && spec.stat_exog.is_empty()) {
        return Err(BuildError::Invalid(format!(
            "{} takes future exogenous variables only",
            spec.class
        )));
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
}
