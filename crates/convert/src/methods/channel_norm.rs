//! Channel-wise normalisation (Kim et al. 2020, Spiking-YOLO): one threshold per output
//! channel (per feature for linear layers) = p-th percentile of that channel's positive
//! activations. Default p = 99.9; p = 100 is the per-channel max. Channels that never
//! activate get the layer's threshold.

use serde::{Deserialize, Serialize};

use super::{ConversionMethod, RegisteredMethod, positive_or};
use crate::SlotStats;

fn default_percentile() -> f64 {
    99.9
}

/// Channel-norm parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelNorm {
    /// Percentile in (0, 100]; 100 = per-channel max.
    #[serde(default = "default_percentile")]
    pub percentile: f64,
}

impl Default for ChannelNorm {
    fn default() -> Self {
        Self { percentile: default_percentile() }
    }
}

impl RegisteredMethod for ChannelNorm {
    const KIND: &'static str = "channel-norm";
    const DESCRIPTION: &'static str = "per-channel threshold = p-th percentile (p = 100: max) (Kim 2020)";
    fn check(&self) -> Result<(), String> {
        if self.percentile > 0.0 && self.percentile <= 100.0 {
            Ok(())
        } else {
            Err(format!("percentile must be in (0, 100], got {}", self.percentile))
        }
    }
}

impl ConversionMethod for ChannelNorm {
    fn thresholds(&self, stats: &SlotStats) -> Vec<f32> {
        let layer = positive_or(stats.percentile(self.percentile), positive_or(stats.max(), 1.0));
        (0..stats.channel_max.len()).map(|c| positive_or(stats.channel_percentile(c, self.percentile), layer)).collect()
    }
}
