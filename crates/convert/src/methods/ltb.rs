//! Local threshold balancing with delayed evaluation (paper 002, "Inference-scale ANN-SNN
//! conversion"; code: putshua/Inference-scale-ANN-SNN).
//!
//! Threshold fitting: every ReLU becomes clip(z, 0, θ) with θ₀ = 0. On each forward batch of
//! training images, every layer (all in the same pass; inputs are the clipped outputs of
//! earlier layers) updates
//!   θ ← θ + η·(2/N)·Σ_i (z_i − θ)·H(z_i − θ),   η = 1,
//! then outputs min(ReLU(z), θ). θ rises monotonically; the iteration count (1000 at batch
//! 100 in the paper) acts as early stopping. Channel-wise (CLTB): one θ per channel, N the
//! batch×H×W values of that channel (per feature for linear layers). The paper trains on
//! augmented batches; here the batches are the (unaugmented) calibration images, cycled.
//!
//! Neuron: v(0) = θ/2, fire on v > θ, soft reset. Pre-neuron max pooling is built into the
//! zoo models.
//!
//! Delayed evaluation (DE): the readout skips the first t_d steps (see
//! the `delayed` readout, `snn::readout::delayed`), with t_d estimated on one batch in clip mode as
//!   t_d = ceil( Σ_l max_c(θ_c − v_c(0)) / max_c E[ReLU(z_c)] )
//! (each layer's term: the largest gap to the threshold over the largest mean input, i.e.
//! the steps its slowest channel needs to fire first; all-zero layers add 0), or fixed with
//! `delay`.
//!
//! Plug-and-play (paper 002 Table 1, "CF"): `correction = "light"` runs SNN Calibration's
//! layer-by-layer bias correction (LCP) on the LTB-thresholded network, `"advanced"` adds its
//! potential initialisation (ACP, which replaces v(0) = θ/2 by the calibrated per-element
//! v(0)), both simulated for `correction_timesteps` steps on the first `correction_images`
//! calibration images; delayed evaluation then applies as usual. On a QCFS-trained model
//! plain `ltb` is the "QCFS + CF" row: the thresholds are fitted on the model's
//! pre-activations exactly as for a ReLU model.

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use snn::SpikingNetwork;
use snn::readout::delayed::Delayed;
use zoo::{Convertible, ForwardCtx, Network, SlotHook, tensor_from, tensor_values};

use super::{ConversionMethod, MethodMeasure, RegisteredMethod};
use crate::{ConvertError, SlotStats};

fn d_iterations() -> usize {
    1000
}
fn d_eta() -> f32 {
    1.0
}

/// LTB parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ltb {
    /// One threshold per channel (CLTB) instead of per layer (LTB).
    #[serde(default)]
    pub channel_wise: bool,
    /// Forward batches of threshold updates (cycling the calibration batches).
    #[serde(default = "d_iterations")]
    pub iterations: usize,
    /// Step size η.
    #[serde(default = "d_eta")]
    pub eta: f32,
    /// Delayed evaluation with the estimated delay t_d.
    #[serde(default)]
    pub delayed_evaluation: bool,
    /// A fixed delay instead of the estimate (implies delayed evaluation).
    #[serde(default)]
    pub delay: Option<usize>,
    /// SNN Calibration applied after the thresholds: `none`, `light` (bias correction) or
    /// `advanced` (+ potential initialisation).
    #[serde(default, skip_serializing_if = "Correction::is_none")]
    pub correction: Correction,
    /// T the correction simulates (SNN Calibration's code default, 32).
    #[serde(default = "d_correction_t", skip_serializing_if = "is_default_correction_t")]
    pub correction_timesteps: u32,
    /// Calibration images used by the correction (one batch of 128 in SNN Calibration).
    #[serde(default = "d_correction_images", skip_serializing_if = "is_default_correction_images")]
    pub correction_images: usize,
}

/// SNN Calibration stage run on top of the LTB thresholds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Correction {
    /// No correction (plain LTB).
    #[default]
    None,
    /// LCP: bias correction.
    Light,
    /// ACP: bias correction + potential initialisation.
    Advanced,
}

impl Correction {
    fn is_none(&self) -> bool {
        *self == Correction::None
    }
}

fn d_correction_t() -> u32 {
    32
}
fn is_default_correction_t(t: &u32) -> bool {
    *t == d_correction_t()
}
fn d_correction_images() -> usize {
    128
}
fn is_default_correction_images(n: &usize) -> bool {
    *n == d_correction_images()
}

impl Default for Ltb {
    fn default() -> Self {
        Self {
            channel_wise: false,
            iterations: d_iterations(),
            eta: d_eta(),
            delayed_evaluation: false,
            delay: None,
            correction: Correction::None,
            correction_timesteps: d_correction_t(),
            correction_images: d_correction_images(),
        }
    }
}

/// Slot hook that clips every activation at its threshold, optionally updating the
/// thresholds with the LTB rule and/or measuring per-channel mean ReLU inputs.
#[derive(Default)]
pub struct ClipHook {
    /// Per slot thresholds (1 = layer-wise, else per channel); empty slots start at 0.
    pub thresholds: Vec<Vec<f32>>,
    /// Apply the LTB update before clipping.
    pub update: Option<(f32, bool)>,
    /// Per slot, per channel mean of ReLU(z) of the last batch.
    pub mean_relu: Vec<Vec<f32>>,
}

impl SlotHook for ClipHook {
    fn apply(&mut self, slot: usize, x: Tensor<4>) -> Tensor<4> {
        let dims = x.dims();
        let [n, c, h, w] = dims;
        let inner = h * w;
        let device = x.device();
        let mut z = tensor_values(x);
        if self.thresholds.len() <= slot {
            self.thresholds.resize(slot + 1, Vec::new());
        }
        if self.mean_relu.len() <= slot {
            self.mean_relu.resize(slot + 1, Vec::new());
        }
        let channel_of = |i: usize| (i / inner) % c;
        if let Some((eta, channel_wise)) = self.update {
            let th = &mut self.thresholds[slot];
            if th.is_empty() {
                *th = vec![0.0; if channel_wise { c } else { 1 }];
            }
            let groups = th.len();
            let mut excess = vec![0f64; groups];
            for (i, &v) in z.iter().enumerate() {
                let g = if groups == 1 { 0 } else { channel_of(i) };
                if v > th[g] {
                    excess[g] += (v - th[g]) as f64;
                }
            }
            let count = (z.len() / groups) as f64;
            for (t, e) in th.iter_mut().zip(excess) {
                *t += (eta as f64 * 2.0 / count * e) as f32;
            }
        }
        let mut sums = vec![0f64; c];
        let th = &self.thresholds[slot];
        for (i, v) in z.iter_mut().enumerate() {
            let ch = channel_of(i);
            let relu = v.max(0.0);
            sums[ch] += relu as f64;
            let theta = if th.len() == 1 { th[0] } else { th[ch] };
            *v = relu.min(theta);
        }
        self.mean_relu[slot] = sums.into_iter().map(|s| (s / (n * inner) as f64) as f32).collect();
        tensor_from(z, dims, &device)
    }
}

impl Ltb {
    /// Fits the thresholds with the LTB rule on the calibration batches.
    pub fn fit(&self, model: &Network, calibration: &[Tensor<4>]) -> Vec<Vec<f32>> {
        let mut hook = ClipHook { update: Some((self.eta, self.channel_wise)), ..ClipHook::default() };
        for i in 0..self.iterations {
            let batch = calibration[i % calibration.len()].clone();
            let _ = model.forward_ctx(batch, &mut ForwardCtx::with_hook(&mut hook));
        }
        hook.thresholds
    }
}

/// Estimated first-spike delay of a converted network on one batch in clip mode.
pub fn estimate_delay(net: &SpikingNetwork, batch: &Tensor<4>) -> usize {
    let mut hook =
        ClipHook { thresholds: net.layers.iter().map(|l| l.thresholds.clone()).collect(), ..ClipHook::default() };
    let _ = net.model.forward_ctx(batch.clone(), &mut ForwardCtx::with_hook(&mut hook));
    let mut total = 0.0f64;
    for (layer, means) in net.layers.iter().zip(&hook.mean_relu) {
        let rate = means.iter().copied().fold(0.0f32, f32::max);
        if rate <= 0.0 {
            continue;
        }
        let start = layer.neuron.rate_model().initial_potential;
        let gap = layer.thresholds.iter().map(|t| t * (1.0 - start)).fold(0.0f32, f32::max);
        total += (gap / rate) as f64;
    }
    total.ceil() as usize
}

impl RegisteredMethod for Ltb {
    const KIND: &'static str = "ltb";
    const DESCRIPTION: &'static str =
        "local threshold balancing (+ channel_wise = CLTB, + delayed_evaluation = DE) (Bu et al. 2025)";
    fn check(&self) -> Result<(), String> {
        if self.iterations == 0 || !self.eta.is_finite() || self.eta <= 0.0 {
            return Err("iterations must be at least 1 and eta positive".into());
        }
        if self.correction_timesteps == 0 || self.correction_images == 0 {
            return Err("correction_timesteps and correction_images must be at least 1".into());
        }
        Ok(())
    }
}

impl ConversionMethod for Ltb {
    /// 2 with a correction: bias correction replays each slot's input captured in one pass of
    /// the event-driven engine (version 1: dense simulations per slot).
    fn version(&self) -> u32 {
        if self.correction == Correction::None { 1 } else { 2 }
    }

    fn readout_kind(&self) -> Option<&'static str> {
        (self.delay.is_some() || self.delayed_evaluation).then_some(<Delayed as snn::RegisteredReadout>::KIND)
    }
    fn thresholds(&self, stats: &SlotStats) -> Vec<f32> {
        // Only used if fitting produced nothing for a slot: fall back to the max.
        vec![super::positive_or(stats.max(), 1.0)]
    }

    fn fit_thresholds(&self, model: &Network, calibration: &[Tensor<4>]) -> Option<Vec<Vec<f32>>> {
        Some(
            self.fit(model, calibration)
                .into_iter()
                .map(|th| th.into_iter().map(|t| super::positive_or(t, 1e-3)).collect())
                .collect(),
        )
    }

    fn default_neuron(&self) -> toml::Table {
        toml::toml! {
            kind = "if"
            v_init = "half"
            fire = ">"
        }
    }

    fn calibrate(
        &self,
        net: &mut SpikingNetwork,
        calibration: &[Tensor<4>],
    ) -> Result<Vec<MethodMeasure>, ConvertError> {
        if self.correction != Correction::None {
            let images = super::snn_calibration::correction_batch(calibration, self.correction_images);
            let advanced = self.correction == Correction::Advanced;
            crate::calibrate::correct_layers(net, &images, self.correction_timesteps as usize, advanced);
        }
        let delay = match (self.delay, self.delayed_evaluation) {
            (Some(d), _) => Some(d),
            (None, true) => Some(estimate_delay(net, &calibration[0])),
            (None, false) => None,
        };
        if let Some(delay) = delay {
            net.readout = Arc::new(Delayed { delay });
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook_step(values: Vec<f32>, dims: [usize; 4], hook: &mut ClipHook) -> Vec<f32> {
        let d = Device::flex();
        tensor_values(hook.apply(0, tensor_from(values, dims, &d)))
    }

    #[test]
    fn ltb_rule_moves_theta_by_twice_the_mean_excess() {
        let mut hook = ClipHook { update: Some((1.0, false)), ..ClipHook::default() };
        // θ₀ = 0: θ₁ = 2/N·Σ relu(z) = 2·(1+3)/4 = 2; output clip(z, 0, 2).
        let out = hook_step(vec![1.0, 3.0, -1.0, 0.0], [1, 1, 2, 2], &mut hook);
        assert_eq!(hook.thresholds[0], vec![2.0]);
        assert_eq!(out, vec![1.0, 2.0, 0.0, 0.0]);
        // θ₂ = 2 + 2/4·(3 − 2) = 2.5
        hook_step(vec![1.0, 3.0, -1.0, 0.0], [1, 1, 2, 2], &mut hook);
        assert_eq!(hook.thresholds[0], vec![2.5]);
    }

    #[test]
    fn channel_wise_rule_is_per_channel() {
        let mut hook = ClipHook { update: Some((1.0, true)), ..ClipHook::default() };
        hook_step(vec![1.0, 1.0, 4.0, 0.0], [1, 2, 1, 2], &mut hook);
        assert_eq!(hook.thresholds[0], vec![2.0, 4.0]);
        assert_eq!(hook.mean_relu[0], vec![1.0, 2.0]);
    }

    #[test]
    fn clip_mode_with_given_thresholds_measures_mean_inputs() {
        // A hook built from known thresholds (as the delay estimate does) clips and measures.
        let mut hook = ClipHook { thresholds: vec![vec![1.5]], ..ClipHook::default() };
        let out = hook_step(vec![1.0, 3.0, -1.0, 0.0], [1, 1, 2, 2], &mut hook);
        assert_eq!(out, vec![1.0, 1.5, 0.0, 0.0]);
        assert_eq!(hook.mean_relu[0], vec![1.0]);
        assert_eq!(hook.thresholds[0], vec![1.5], "no update without `update`");
    }
}
