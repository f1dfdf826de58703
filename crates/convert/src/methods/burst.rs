//! Burst spikes (Li & Zeng 2022, "Efficient and accurate conversion of spiking neural network
//! with burst spikes"): robust normalisation, θ_l = the p-th percentile (99.9) of the layer's
//! positive ReLU activations, with neurons that may fire up to γ spikes in one step:
//! s = clamp(floor(v/θ), 0, γ), v ← v − s·θ, out = s·θ (the `burst` neuron, γ = `max_spikes`,
//! default 2). A burst lets a neuron pass on residual potential above θ within the step instead
//! of over later steps. (The paper's lateral-inhibition pooling, LIPooling, for max-pool
//! networks is not implemented: the zoo's max pooling is applied before the neurons.)

use serde::{Deserialize, Serialize};

use super::{ConversionMethod, RegisteredMethod, positive_or};
use crate::SlotStats;

fn d_percentile() -> f64 {
    99.9
}
fn d_gamma() -> u32 {
    2
}

/// Burst-spike conversion parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BurstSpikes {
    /// Percentile in (0, 100] of the positive activations (99.9).
    #[serde(default = "d_percentile")]
    pub percentile: f64,
    /// γ: spikes per step at most (2).
    #[serde(default = "d_gamma")]
    pub max_spikes: u32,
}

impl Default for BurstSpikes {
    fn default() -> Self {
        Self { percentile: d_percentile(), max_spikes: d_gamma() }
    }
}

impl RegisteredMethod for BurstSpikes {
    const KIND: &'static str = "burst";
    const DESCRIPTION: &'static str =
        "p99.9 normalisation with burst neurons, up to γ = 2 spikes per step (Li & Zeng 2022)";
    fn check(&self) -> Result<(), String> {
        if !(self.percentile > 0.0 && self.percentile <= 100.0) {
            return Err(format!("percentile must be in (0, 100], got {}", self.percentile));
        }
        if self.max_spikes == 0 {
            return Err("max_spikes must be at least 1".into());
        }
        Ok(())
    }
}

impl ConversionMethod for BurstSpikes {
    fn thresholds(&self, stats: &SlotStats) -> Vec<f32> {
        vec![positive_or(stats.percentile(self.percentile), positive_or(stats.max(), 1.0))]
    }

    fn default_neuron(&self) -> toml::Table {
        let mut table = snn::kind_table("burst");
        table.insert("max_spikes".into(), toml::Value::Integer(self.max_spikes as i64));
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::robust_norm::RobustNorm;

    #[test]
    fn thresholds_are_robust_norms_and_the_neuron_bursts() {
        let stats = SlotStats::from_channel_values(vec![(1..=1000).map(|i| i as f32 / 100.0).collect()]);
        let burst = BurstSpikes::default();
        assert_eq!(burst.thresholds(&stats), RobustNorm { percentile: 99.9 }.thresholds(&stats));
        let neuron = snn::build_neuron(&burst.default_neuron()).unwrap();
        assert_eq!(neuron.kind(), "burst");
        assert_eq!(neuron.rate_model().max_spikes_per_step, 2);
        assert!(toml::from_str::<BurstSpikes>("max_spikes = 0").unwrap().check().is_err());
    }
}
