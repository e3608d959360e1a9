//! NBEATSx (neuralforecast/models/nbeatsx.py): NBEATS whose blocks also read
//! the hist/futr/static exogenous inputs (flattened after the residual), plus
//! the 'exogenous' stack, which projects theta on the futr exog and the
//! statics repeated over the window. Its forecast has one output, added to
//! every quantile of a multi-quantile loss.

use super::nbeats::{NBeats, NBeatsHparams};
use super::{BuildError, Model};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;

/// NBEATSx reads NBEATS's hyperparameters (same defaults) and runs its
/// forward pass, the blocks reading the exogenous inputs the spec lists.
pub struct NBeatsX;

impl Model for NBeatsX {
    const CLASS: &'static str = "NBEATSx";
    const CATEGORICAL: bool = true;
    const NON_ARCHITECTURE: &'static [&'static str] = &["n_harmonics", "n_polynomials"];
    type Hparams = NBeatsHparams;
    type Net = NBeats;

    fn load(
        spec: &ModelSpec,
        hp: NBeatsHparams,
        store: &TensorStore,
    ) -> Result<NBeats, BuildError> {
        if hp.stack_types.iter().any(|t| t == "exogenous")
            && spec.futr_exog.is_empty()
            && spec.stat_exog.is_empty()
        {
            // NeuralForecast builds no exogenous basis then (it reuses whatever
            // the previous stack left behind, or fails).
            return Err(BuildError::Unsupported(
                "NBEATSx 'exogenous' stack without futr or static exogenous variables".into(),
            ));
        }
        hp.stack(spec, store)
    }
}
