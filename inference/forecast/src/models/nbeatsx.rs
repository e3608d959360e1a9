//! NBEATSx (neuralforecast/models/nbeatsx.py): NBEATS whose blocks also read
//! the hist/futr/static exogenous inputs (flattened after the residual), plus
//! the 'exogenous' stack, which projects theta on the futr exog and the
//! statics repeated over the window. Its forecast has one output, added to
//! every quantile of a multi-quantile loss.

use super::{BuildError, Forecaster, WindowBatch};
use crate::nn::residual_stack::{nbeats_stack, str_list, ResidualStack};
use crate::spec::ModelSpec;
use crate::tensors::TensorStore;
use ndarray::Array3;

pub struct NBeatsX {
    stack: ResidualStack,
}

impl NBeatsX {
    pub fn load(spec: &ModelSpec, store: &TensorStore) -> Result<NBeatsX, BuildError> {
        let types = str_list(spec, "stack_types", &["identity", "trend", "seasonality"])?;
        if types.iter().any(|t| t == "exogenous")
            && spec.futr_exog.is_empty()
            && spec.stat_exog.is_empty()
        {
            // NeuralForecast builds no exogenous basis then (it reuses whatever
            // the previous stack left behind, or fails).
            return Err(BuildError::Unsupported(
                "NBEATSx 'exogenous' stack without futr or static exogenous variables".into(),
            ));
        }
        Ok(NBeatsX {
            stack: nbeats_stack(spec, store)?,
        })
    }
}

impl Forecaster for NBeatsX {
    fn forward(&self, batch: &WindowBatch) -> Result<Array3<f32>, String> {
        self.stack.forward(batch)
    }
}
