//! SNN Calibration (Li et al., ICML 2021), "light" (LCP) and "advanced" (ACP) pipelines.
//!
//! Neuron: each step x = Wx_in + b + θ/(2T); v += x; s = [v ≥ θ]; output s·θ; v −= s·θ
//! (input shift on, v(0) = 0, soft reset).
//! 1. Threshold search: θ = argmin over θ_i = (1 − 0.01 i)·max(y), i = 0..94, of
//!    mean (ClipFloor(y; T, θ) − y)², y the layer's ReLU outputs on the calibration images
//!    (layer-wise by default, channel-wise as an option). The paper's per-batch running
//!    average θ ← 0.9θ + 0.1θ_batch is replaced by one search over the pooled sample.
//! 2. Bias correction (light and advanced): in forward order, b_c ← b_c − mean_{n,h,w}(ŷ_SNN − y).
//! 3. Potential initialisation (advanced): v_init[c,h,w] = T·mean_n(y − ŷ_SNN).
//!
//! `timesteps` is the T the network is calibrated for (the released scripts fix T = 32);
//! to calibrate for every evaluated T, zip a sweep over `method.<label>.timesteps` and
//! `eval.timesteps`. Weight calibration (the ImageNet "advanced" variant) is not implemented.

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use snn::{NeuronOptions, SpikingNetwork};

use super::{ConversionMethod, positive_or};
use crate::calibrate::{clip_floor_mse, correct_layers, search_threshold};
use crate::{ConvertError, SlotStats};

/// Which calibration pipeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CalibrationMode {
    /// Threshold search only (the reference the calibrations improve on).
    ThresholdOnly,
    /// LCP: threshold search + bias correction.
    #[default]
    Light,
    /// ACP: + potential initialisation.
    Advanced,
}

fn d_t() -> u32 {
    32
}
fn d_images() -> usize {
    128
}

/// SNN Calibration parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnnCalibration {
    /// `light` (LCP) or `advanced` (ACP).
    #[serde(default)]
    pub mode: CalibrationMode,
    /// One threshold per channel instead of per layer.
    #[serde(default)]
    pub channel_wise: bool,
    /// The T the thresholds and corrections are computed for.
    #[serde(default = "d_t")]
    pub timesteps: u32,
    /// Calibration images used for bias correction / potential initialisation (from the
    /// start of the calibration set; the paper uses one batch of 128).
    #[serde(default = "d_images")]
    pub correction_images: usize,
}

impl Default for SnnCalibration {
    fn default() -> Self {
        Self { mode: CalibrationMode::Light, channel_wise: false, timesteps: d_t(), correction_images: d_images() }
    }
}

impl ConversionMethod for SnnCalibration {
    fn thresholds(&self, stats: &SlotStats) -> Vec<f32> {
        let t = self.timesteps as f32;
        let layer_samples: Vec<f32> = stats.channel_samples.iter().flatten().copied().collect();
        let layer = positive_or(search_threshold(stats.max(), |th| clip_floor_mse(&layer_samples, t, th, 1.0)), 1.0);
        if !self.channel_wise {
            return vec![layer];
        }
        (0..stats.channel_max.len())
            .map(|c| {
                let samples = &stats.channel_samples[c];
                positive_or(search_threshold(stats.channel_max[c], |th| clip_floor_mse(samples, t, th, 1.0)), layer)
            })
            .collect()
    }

    fn default_neuron(&self) -> NeuronOptions {
        NeuronOptions { input_shift: true, ..NeuronOptions::default() }
    }

    fn calibrate(&self, net: &mut SpikingNetwork, calibration: &[Tensor<4>]) -> Result<(), ConvertError> {
        if self.mode == CalibrationMode::ThresholdOnly {
            return Ok(());
        }
        let images = correction_batch(calibration, self.correction_images);
        correct_layers(net, &images, self.timesteps as usize, self.mode == CalibrationMode::Advanced);
        Ok(())
    }
}

/// The first `n` calibration images as one batch.
pub(crate) fn correction_batch(calibration: &[Tensor<4>], n: usize) -> Tensor<4> {
    let all = Tensor::cat(calibration.to_vec(), 0);
    let [total, c, h, w] = all.dims();
    all.slice([0..n.clamp(1, total), 0..c, 0..h, 0..w])
}
