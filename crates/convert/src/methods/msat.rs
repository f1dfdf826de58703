//! MSAT (paper 003, "MSAT: Multi-stage adaptive threshold for Deep Spiking Neural Networks";
//! code: `Brain-Cog-Lab/MSAT`): threshold balancing to the layer's maximum activation, the
//! `msat` neuron (multi-stage adaptive threshold θ(t) = λ·sigmoid(DTT + DET), see
//! `snn::neuron::msat` for its equations and choices) and spike confidence (SC) in the last
//! spiking layer.
//!
//! **Thresholds**: λ_l = the `percentile`-th percentile (default 100 = the maximum, the
//! paper's Algorithm 1) of the layer's positive ReLU outputs on the calibration images, one per
//! layer (ALGORITHMS.md). The authors' `HookScale` (`utils.py`) takes the percentile over the
//! *whole* output of one training batch, zeros included (`sort[int(n·p) − 1]`):
//! `count_zeros = true` does that (the same at p = 100). The paper and code use one training
//! batch; here it is every calibration image the spec gives.
//!
//! **Neuron**: `msat` with its default preset (`vgg16`); a spec's `[method.neuron]` reaches
//! every layer (e.g. `preset = "resnet20"`, or the ablations `dtt = false`, `det = false`, both
//! off with `fixed_fraction = 0.7`).
//!
//! **Spike confidence**: `last_layer_confidence` c (default 1.0 = off) becomes the
//! `confidence` of the last activation slot's neuron (the other layers keep theirs): for its
//! first `confidence_steps` (16) steps each spike is kept with probability c. The paper's
//! values (the authors' `neuron_confidence_*.txt`: 1.0 for every layer but the last):
//! VGG-16 CIFAR-10 0.683, VGG-16 CIFAR-100 0.392, ResNet-20 CIFAR-10 0.566. At 1.0 the last
//! layer's neuron is left as built (with any `confidence` the spec's `[method.neuron]` set).

use serde::{Deserialize, Serialize};
use snn::{SpikingNetwork, build_neuron, kind_table};

use super::{ConversionMethod, MethodMeasure, RegisteredMethod, positive_or};
use crate::{ConvertError, SlotStats};

fn d_percentile() -> f64 {
    100.0
}
fn d_confidence() -> f64 {
    1.0
}

/// MSAT parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Msat {
    /// Percentile of the layer's activations in (0, 100] (100 = max, the paper's).
    #[serde(default = "d_percentile")]
    pub percentile: f64,
    /// Take the percentile over all outputs, zeros included (the authors' code), instead of
    /// the positive ones.
    #[serde(default)]
    pub count_zeros: bool,
    /// Spike confidence of the last spiking layer in [0, 1] (1.0 = off).
    #[serde(default = "d_confidence")]
    pub last_layer_confidence: f64,
}

impl Default for Msat {
    fn default() -> Self {
        toml::from_str("").expect("every field has a default")
    }
}

impl RegisteredMethod for Msat {
    const KIND: &'static str = "msat";
    const DESCRIPTION: &'static str =
        "max-activation thresholds + multi-stage adaptive threshold neurons + spike confidence in the last layer (He et al. 2023, MSAT)";
    fn check(&self) -> Result<(), String> {
        if !(self.percentile > 0.0 && self.percentile <= 100.0) {
            return Err(format!("percentile must be in (0, 100], got {}", self.percentile));
        }
        if !(0.0..=1.0).contains(&self.last_layer_confidence) {
            return Err(format!("last_layer_confidence must be in [0, 1], got {}", self.last_layer_confidence));
        }
        Ok(())
    }
}

impl Msat {
    /// The percentile of the positive activations that is the `percentile`-th of all of them
    /// (zeros first), when `count_zeros`; None when it falls among the zeros.
    fn positive_percentile(&self, stats: &SlotStats) -> Option<f64> {
        if !self.count_zeros || self.percentile >= 100.0 || stats.positive == 0 {
            return Some(self.percentile);
        }
        let zeros = (stats.total - stats.positive) as f64 / stats.total as f64;
        let p = (self.percentile / 100.0 - zeros) / (1.0 - zeros);
        (p > 0.0).then_some(100.0 * p)
    }
}

impl ConversionMethod for Msat {
    fn thresholds(&self, stats: &SlotStats) -> Vec<f32> {
        let max = positive_or(stats.max(), 1.0);
        vec![self.positive_percentile(stats).map_or(max, |p| positive_or(stats.percentile(p), max))]
    }

    fn default_neuron(&self) -> toml::Table {
        kind_table("msat")
    }

    fn calibrate(&self, net: &mut SpikingNetwork, _calibration: &[burn::prelude::Tensor<4>]) -> Result<Vec<MethodMeasure>, ConvertError> {
        if self.last_layer_confidence == 1.0 {
            return Ok(Vec::new());
        }
        let Some(last) = net.layers.last_mut() else {
            return Ok(Vec::new());
        };
        let mut table = last.neuron.config();
        if !table.contains_key("confidence") {
            return Err(ConvertError::InvalidParameter {
                method: Self::KIND.into(),
                reason: format!(
                    "last_layer_confidence sets the last layer's neuron `confidence`; neuron kind `{}` has none (use kind = \"msat\")",
                    last.neuron.kind()
                ),
            });
        }
        table.insert("confidence".into(), toml::Value::Float(self.last_layer_confidence));
        last.neuron = build_neuron(&table).map_err(|source| ConvertError::Neuron { method: Self::KIND.into(), source })?;
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_zeros_lowers_the_percentile() {
        // 4 zeros and the positive values 1..=4: the 75th percentile of all 8 values is the
        // 50th of the positive ones.
        let stats = SlotStats::from_channel_values(vec![vec![0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0]]);
        assert_eq!((stats.total, stats.positive), (8, 4));
        let m = |text: &str| toml::from_str::<Msat>(text).unwrap();
        assert_eq!(m("count_zeros = true\npercentile = 75.0").positive_percentile(&stats), Some(50.0));
        assert_eq!(m("percentile = 75.0").positive_percentile(&stats), Some(75.0));
        // Among the zeros: the max instead of a zero threshold.
        assert_eq!(m("count_zeros = true\npercentile = 40.0").positive_percentile(&stats), None);
        assert_eq!(m("count_zeros = true\npercentile = 40.0").thresholds(&stats), vec![4.0]);
        assert_eq!(m("count_zeros = true").thresholds(&stats), vec![4.0]);
    }
}
