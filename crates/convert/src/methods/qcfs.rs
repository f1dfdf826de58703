//! QCFS conversion (Bu et al., ICLR 2022). The ANN must be trained with the QCFS activation
//! (`[model] activation = "qcfs"`): h(z) = λ·clamp(floor(z·L/λ + 0.5)/L, 0, 1), λ learned per
//! layer. Conversion: IF neurons with θ_l = λ_l, v(0) = θ/2, soft reset. At T = L the SNN's
//! expected output equals the ANN's quantized activation.

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use zoo::{AnnActivation, Network};

use super::{ConversionMethod, RegisteredMethod, positive_or};
use crate::{ConvertError, SlotStats};

/// QCFS has no conversion parameters (L and λ come from the trained model).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Qcfs {}

impl RegisteredMethod for Qcfs {
    const KIND: &'static str = "qcfs";
    const DESCRIPTION: &'static str =
        "θ = the learned QCFS λ, v(0) = θ/2; needs [model] activation = \"qcfs\" (Bu 2022)";
}

impl ConversionMethod for Qcfs {
    fn check_model(&self, model: &Network) -> Result<(), ConvertError> {
        match model.activation() {
            Some(a) if a.kind == AnnActivation::Qcfs => Ok(()),
            _ => Err(ConvertError::InvalidParameter {
                method: "qcfs".into(),
                reason: "the ANN was not trained with the QCFS activation: set `[model] activation = \"qcfs\"`".into(),
            }),
        }
    }

    fn thresholds(&self, stats: &SlotStats) -> Vec<f32> {
        vec![positive_or(stats.max(), 1.0)]
    }

    fn fit_thresholds(&self, model: &Network, _calibration: &[Tensor<4>]) -> Option<Vec<Vec<f32>>> {
        model.activation().map(|a| a.lambdas().into_iter().map(|l| vec![positive_or(l, 1e-3)]).collect())
    }

    fn default_neuron(&self) -> toml::Table {
        toml::toml! {
            kind = "if"
            v_init = "half"
        }
    }
}
