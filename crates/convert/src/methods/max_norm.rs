//! Max-norm (Diehl et al. 2015; Rueckauer et al. 2017): θ_l = max of the layer's ReLU
//! activations over the calibration images. Equivalent to weight normalisation
//! W ← W·λ_{l−1}/λ_l with θ = 1, since a spike carries amplitude θ.

use serde::{Deserialize, Serialize};

use super::{ConversionMethod, RegisteredMethod, positive_or};
use crate::SlotStats;

/// Max-norm has no parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxNorm {}

impl RegisteredMethod for MaxNorm {
    const KIND: &'static str = "max-norm";
    const DESCRIPTION: &'static str = "layer threshold = max ReLU activation (Diehl 2015 / Rueckauer 2017)";
}

impl ConversionMethod for MaxNorm {
    fn thresholds(&self, stats: &SlotStats) -> Vec<f32> {
        vec![positive_or(stats.max(), 1.0)]
    }
}
