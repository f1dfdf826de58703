//! RMP-SNN (Han, Srinivasan & Roy 2020, "Residual Membrane Potential neuron"): the soft-reset
//! ("residual membrane potential") integrate-and-fire neuron, v ← v − θ after a spike, with
//! thresholds balanced on the spiking network layer by layer as Spike-Norm does (θ_l = max
//! over steps, images and neurons of the layer's weighted input with the earlier layers
//! balanced and spiking; see [`crate::calibrate::balance_thresholds`]), optionally scaled by
//! `threshold_scale` (the paper studies lowering the balanced thresholds to trade a little
//! accuracy for latency; 1.0 keeps them). Layer-wise thresholds.
//!
//! Defaults: 256 balancing steps on 64 images, threshold_scale 1.0.

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
fn d_scale() -> f32 {
    1.0
}

/// RMP-SNN parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rmp {
    /// Steps of the balancing simulation.
    #[serde(default = "d_t")]
    pub timesteps: u32,
    /// Calibration images the balancing runs on (the first this many).
    #[serde(default = "d_images")]
    pub images: usize,
    /// Factor applied to every balanced threshold (0 < scale ≤ 1 typically).
    #[serde(default = "d_scale")]
    pub threshold_scale: f32,
}

impl Default for Rmp {
    fn default() -> Self {
        Self { timesteps: d_t(), images: d_images(), threshold_scale: d_scale() }
    }
}

impl RegisteredMethod for Rmp {
    const KIND: &'static str = "rmp";
    const DESCRIPTION: &'static str =
        "soft-reset neurons with thresholds balanced on the SNN layer by layer (Han et al. 2020, RMP-SNN)";
    fn check(&self) -> Result<(), String> {
        if self.timesteps == 0 || self.images == 0 {
            return Err("timesteps and images must be at least 1".into());
        }
        if !(self.threshold_scale > 0.0 && self.threshold_scale.is_finite()) {
            return Err(format!("threshold_scale must be positive, got {}", self.threshold_scale));
        }
        Ok(())
    }
}

impl ConversionMethod for Rmp {
    fn thresholds(&self, stats: &SlotStats) -> Vec<f32> {
        vec![positive_or(stats.max(), 1.0)]
    }

    fn calibrate(&self, net: &mut SpikingNetwork, calibration: &[Tensor<4>]) -> Result<Vec<MethodMeasure>, ConvertError> {
        let images = correction_batch(calibration, self.images);
        balance_thresholds(net, &images, self.timesteps as usize);
        for layer in &mut net.layers {
            layer.thresholds.iter_mut().for_each(|t| *t *= self.threshold_scale);
        }
        Ok(Vec::new())
    }
}
