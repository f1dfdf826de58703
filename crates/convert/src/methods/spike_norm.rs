//! Spike-Norm (Sengupta et al. 2019, "Going deeper in spiking neural networks"): thresholds
//! balanced on the spiking network itself, layer by layer. With the earlier layers balanced
//! and spiking, the SNN runs `timesteps` steps on the first `images` calibration images and
//! θ_l = max over steps, images and neurons of the layer's weighted input W_l·s_{l−1}(t) (+ b_l);
//! see [`crate::calibrate::balance_thresholds`]. Layer-wise thresholds.
//!
//! Neuron: integrate-and-fire with hard reset (v ← 0 after a spike), the original setting.
//! Defaults: 256 balancing steps on 64 images (the paper balances over 2,500 steps; the max
//! grows slowly with T, so a CPU run uses fewer). Before balancing every layer starts at its
//! max-norm threshold (only the earlier layers' thresholds matter for a layer's input).

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use snn::SpikingNetwork;

use super::snn_calibration::correction_batch;
use super::{ConversionMethod, MethodMeasure, RegisteredMethod, positive_or};
use crate::calibrate::balance_thresholds;
use crate::{ConvertError, SlotStats};

fn d_t() -> u32 {
    256
}
fn d_images() -> usize {
    64
}

/// Spike-Norm parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpikeNorm {
    /// Steps of the balancing simulation.
    #[serde(default = "d_t")]
    pub timesteps: u32,
    /// Calibration images the balancing runs on (the first this many).
    #[serde(default = "d_images")]
    pub images: usize,
}

impl Default for SpikeNorm {
    fn default() -> Self {
        Self { timesteps: d_t(), images: d_images() }
    }
}

impl RegisteredMethod for SpikeNorm {
    const KIND: &'static str = "spike-norm";
    const DESCRIPTION: &'static str =
        "layer threshold = max weighted input measured on the SNN, layer by layer; hard reset (Sengupta et al. 2019)";
    fn check(&self) -> Result<(), String> {
        if self.timesteps == 0 || self.images == 0 { Err("timesteps and images must be at least 1".into()) } else { Ok(()) }
    }
}

impl ConversionMethod for SpikeNorm {
    fn thresholds(&self, stats: &SlotStats) -> Vec<f32> {
        vec![positive_or(stats.max(), 1.0)]
    }

    fn default_neuron(&self) -> toml::Table {
        toml::toml! {
            kind = "if"
            reset = "hard"
        }
    }

    fn calibrate(&self, net: &mut SpikingNetwork, calibration: &[Tensor<4>]) -> Result<Vec<MethodMeasure>, ConvertError> {
        let images = correction_batch(calibration, self.images);
        balance_thresholds(net, &images, self.timesteps as usize);
        Ok(Vec::new())
    }
}
