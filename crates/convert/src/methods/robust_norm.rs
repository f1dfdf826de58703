//! Robust normalisation (Rueckauer et al. 2017): θ_l = p-th percentile of the layer's
//! positive ReLU activations (as snntoolbox, zeros excluded). Default p = 99.9; paper 002's
//! "RN" baseline uses p = 99.

use serde::{Deserialize, Serialize};

use super::{ConversionMethod, RegisteredMethod, positive_or};
use crate::SlotStats;

fn default_percentile() -> f64 {
    99.9
}

/// Robust-norm parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobustNorm {
    /// Percentile in (0, 100]; 100 equals max-norm.
    #[serde(default = "default_percentile")]
    pub percentile: f64,
}

impl Default for RobustNorm {
    fn default() -> Self {
        Self { percentile: default_percentile() }
    }
}

impl RegisteredMethod for RobustNorm {
    const KIND: &'static str = "robust-norm";
    const DESCRIPTION: &'static str =
        "layer threshold = p-th percentile of positive activations, p = 99.9 (Rueckauer 2017)";
    fn check(&self) -> Result<(), String> {
        if self.percentile > 0.0 && self.percentile <= 100.0 {
            Ok(())
        } else {
            Err(format!("percentile must be in (0, 100], got {}", self.percentile))
        }
    }
}

impl ConversionMethod for RobustNorm {
    fn thresholds(&self, stats: &SlotStats) -> Vec<f32> {
        vec![positive_or(stats.percentile(self.percentile), positive_or(stats.max(), 1.0))]
    }
}
