//! Opt. (Deng & Gu, ICLR 2021): the ANN is trained with a clipped ReLU clamp(z, 0, λ)
//! (`[model] activation = "clip"`, λ = `clip` = 1.0); the SNN threshold is the maximum of the
//! clipped activation on the calibration images (the statistics are taken on the model's own
//! activation, so ≤ λ), and every step adds θ/(2T) to the
//! input (the "shift" that turns floor into round). On a ReLU network it degrades gracefully
//! to max-norm with the shift.

use serde::{Deserialize, Serialize};

use super::{ConversionMethod, RegisteredMethod, positive_or};
use crate::SlotStats;

/// Opt. has no conversion parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptShift {}

impl RegisteredMethod for OptShift {
    const KIND: &'static str = "opt-shift";
    const DESCRIPTION: &'static str =
        "θ = max of the (clipped) activation, θ/(2T) input shift; [model] activation = \"clip\" (Deng & Gu 2021)";
}

impl ConversionMethod for OptShift {
    fn thresholds(&self, stats: &SlotStats) -> Vec<f32> {
        vec![positive_or(stats.max(), 1.0)]
    }

    fn default_neuron(&self) -> toml::Table {
        toml::toml! {
            kind = "if"
            input_shift = true
        }
    }
}
