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
//! 4. Weight calibration (WC, the paper's ImageNet "advanced" pipeline; `weight_calibration =
//!    true`, any mode): per slot, Adam on the weights feeding it to minimise
//!    mean (ClipFloor(z(x̄) + o; T, θ) − y)², x̄ the SNN's time-averaged outputs of the earlier
//!    slots, y the ANN output from the frozen original weights, floor straight-through,
//!    o = b_c + θ/(2T) + v_init/T the slot's input offset (the θ/(2T) input shift; b_c and
//!    v_init are still 0 when WC runs); lr cosine-annealed from `weight_calibration_lr`
//!    over `weight_calibration_iterations`, batches of `weight_calibration_batch` distinct
//!    samples out of the first `weight_calibration_samples` calibration images (capped by
//!    the images available). Defaults are the paper's: 5000 iterations, lr 1e-5, batch 32,
//!    1024 samples. Details and equations: [`crate::weight_calibration`].
//!
//! Order: slot by slot in forward order, WC → bias correction → potential initialisation,
//! each step seeing the earlier slots (and steps) already calibrated. (The released code
//! runs WC over all layers first, then, in its ImageNet "advanced" script, potential
//! initialisation alone, without bias correction.)
//!
//! Cost of WC: one forward of the whole network (batch `weight_calibration_batch`) plus a
//! backward through the calibrated layer per iteration, per slot: the paper's 5000
//! iterations are GPU-sized; on a CPU a spec should use a few hundred.
//!
//! `timesteps` is the T the network is calibrated for (the released scripts fix T = 32);
//! to calibrate for every evaluated T, zip a sweep over `method.<label>.timesteps` and
//! `eval.timesteps`.

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use snn::SpikingNetwork;

use super::{ConversionMethod, MethodMeasure, RegisteredMethod, positive_or};
use crate::calibrate::{LayerCalibration, calibrate_layers, clip_floor_mse, search_threshold};
use crate::weight_calibration::WeightCalibration;
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
fn d_wc_iterations() -> usize {
    5000
}
fn d_wc_lr() -> f64 {
    1e-5
}
fn d_wc_batch() -> usize {
    32
}
fn d_wc_samples() -> usize {
    1024
}
fn is_false(v: &bool) -> bool {
    !*v
}
fn is_d_wc_iterations(v: &usize) -> bool {
    *v == d_wc_iterations()
}
fn is_d_wc_lr(v: &f64) -> bool {
    *v == d_wc_lr()
}
fn is_d_wc_batch(v: &usize) -> bool {
    *v == d_wc_batch()
}
fn is_d_wc_samples(v: &usize) -> bool {
    *v == d_wc_samples()
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
    /// Weight calibration before each slot's corrections. (This and the `weight_calibration_*`
    /// fields are left out of the serialized form at their defaults, so the cache keys of
    /// specs without them do not change.)
    #[serde(default, skip_serializing_if = "is_false")]
    pub weight_calibration: bool,
    /// WC Adam iterations per slot (paper: 5000).
    #[serde(default = "d_wc_iterations", skip_serializing_if = "is_d_wc_iterations")]
    pub weight_calibration_iterations: usize,
    /// WC initial learning rate, cosine-annealed to 0 (paper: 1e-5).
    #[serde(default = "d_wc_lr", skip_serializing_if = "is_d_wc_lr")]
    pub weight_calibration_lr: f64,
    /// WC samples per iteration (paper: 32).
    #[serde(default = "d_wc_batch", skip_serializing_if = "is_d_wc_batch")]
    pub weight_calibration_batch: usize,
    /// WC cached samples: the first this many calibration images (paper: 1024).
    #[serde(default = "d_wc_samples", skip_serializing_if = "is_d_wc_samples")]
    pub weight_calibration_samples: usize,
}

impl Default for SnnCalibration {
    fn default() -> Self {
        Self {
            mode: CalibrationMode::Light,
            channel_wise: false,
            timesteps: d_t(),
            correction_images: d_images(),
            weight_calibration: false,
            weight_calibration_iterations: d_wc_iterations(),
            weight_calibration_lr: d_wc_lr(),
            weight_calibration_batch: d_wc_batch(),
            weight_calibration_samples: d_wc_samples(),
        }
    }
}

impl SnnCalibration {
    /// The weight-calibration settings (whether or not WC is on).
    pub fn weight_settings(&self) -> WeightCalibration {
        WeightCalibration {
            iterations: self.weight_calibration_iterations,
            lr: self.weight_calibration_lr,
            batch: self.weight_calibration_batch,
            seed: 0,
        }
    }
}

impl RegisteredMethod for SnnCalibration {
    const KIND: &'static str = "snn-calibration";
    const DESCRIPTION: &'static str =
        "threshold search + bias correction (light) [+ potential init (advanced)] [+ weight calibration] (Li 2021)";
    fn check(&self) -> Result<(), String> {
        if self.timesteps == 0 || self.correction_images == 0 {
            return Err("timesteps and correction_images must be at least 1".into());
        }
        if self.weight_calibration_iterations == 0
            || self.weight_calibration_batch == 0
            || self.weight_calibration_samples == 0
        {
            return Err("weight_calibration_iterations, _batch and _samples must be at least 1".into());
        }
        if !(self.weight_calibration_lr.is_finite() && self.weight_calibration_lr > 0.0) {
            return Err(format!("weight_calibration_lr must be positive, got {}", self.weight_calibration_lr));
        }
        Ok(())
    }
}

impl ConversionMethod for SnnCalibration {

    /// 2: bias correction and potential initialisation replay each slot's input captured in
    /// one pass of the event-driven engine (float summation order differs from the dense
    /// engine's simulations of version 1).
    fn version(&self) -> u32 {
        if self.weight_calibration || self.mode == CalibrationMode::ThresholdOnly { 1 } else { 2 }
    }
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

    fn default_neuron(&self) -> toml::Table {
        toml::toml! {
            kind = "if"
            input_shift = true
        }
    }

    fn calibration_timesteps_param(&self) -> Option<&'static str> {
        Some("timesteps")
    }

    fn calibrate(&self, net: &mut SpikingNetwork, calibration: &[Tensor<4>]) -> Result<Vec<MethodMeasure>, ConvertError> {
        let correct = self.mode != CalibrationMode::ThresholdOnly;
        if !correct && !self.weight_calibration {
            return Ok(Vec::new());
        }
        let images = correct.then(|| correction_batch(calibration, self.correction_images));
        let settings = self.weight_settings();
        let samples = self.weight_calibration.then(|| correction_batch(calibration, self.weight_calibration_samples));
        let steps = LayerCalibration {
            weights: samples.as_ref().map(|s| (&settings, s)),
            bias: images.as_ref(),
            potential_init: self.mode == CalibrationMode::Advanced,
        };
        calibrate_layers(net, self.timesteps as usize, &steps);
        Ok(Vec::new())
    }
}

/// The first `n` calibration images as one batch.
pub(crate) fn correction_batch(calibration: &[Tensor<4>], n: usize) -> Tensor<4> {
    let all = Tensor::cat(calibration.to_vec(), 0);
    let [total, c, h, w] = all.dims();
    all.slice([0..n.clamp(1, total), 0..c, 0..h, 0..w])
}
