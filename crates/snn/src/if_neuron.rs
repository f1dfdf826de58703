//! Integrate-and-fire neurons.
//!
//! Per element, at every step t = 1..T (θ = the element's channel threshold, γ = `max_spikes`):
//! ```text
//! x'   = x(t) + b_c + [input_shift] θ/(2T)        (b_c: per-channel bias correction, 0 by default)
//! v    = v + x'
//! s    = γ == 1 ? [v ≥ θ]  (or [v > θ] with FireRule::Greater)
//!               : clamp(floor(v/θ), 0, γ)          (burst / multi-spike)
//! v    = v − s·θ   (Reset::Subtract, "soft")   |   v = 0 if s > 0   (Reset::Zero, "hard")
//! out  = s·θ
//! ```
//! with v(0) = 0, θ/2 (`InitPotential::HalfThreshold`) or a per-element tensor (calibration).

use serde::{Deserialize, Serialize};

/// Reset after a spike.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reset {
    /// Reset by subtraction ("soft reset"): v ← v − s·θ.
    #[default]
    Soft,
    /// Reset to zero ("hard reset"): v ← 0 after a spike.
    Hard,
}

/// Initial membrane potential.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitPotential {
    /// v(0) = 0.
    #[default]
    Zero,
    /// v(0) = θ/2.
    Half,
}

/// Firing condition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FireRule {
    /// Fire when v ≥ θ (default).
    #[default]
    #[serde(rename = ">=")]
    GreaterEqual,
    /// Fire when v > θ (paper 002).
    #[serde(rename = ">")]
    Greater,
}

fn one() -> u32 {
    1
}

/// Neuron options a spec can set for any method (`[method.neuron]`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeuronOptions {
    /// `soft` (subtract) or `hard` (to zero).
    #[serde(default)]
    pub reset: Reset,
    /// `zero` or `half` (θ/2).
    #[serde(default)]
    pub v_init: InitPotential,
    /// `">="` or `">"`.
    #[serde(default)]
    pub fire: FireRule,
    /// Add θ/(2T) to the input every step (Calibration/AdaFire/Opt. convention).
    #[serde(default)]
    pub input_shift: bool,
    /// Maximum spikes per step (1 = plain IF; >1 = burst spikes).
    #[serde(default = "one")]
    pub max_spikes: u32,
}

impl Default for NeuronOptions {
    fn default() -> Self {
        Self {
            reset: Reset::Soft,
            v_init: InitPotential::Zero,
            fire: FireRule::GreaterEqual,
            input_shift: false,
            max_spikes: 1,
        }
    }
}

/// What a converter decides for one activation slot.
#[derive(Clone, Debug, PartialEq)]
pub struct NeuronLayerSpec {
    /// Neuron dynamics.
    pub options: NeuronOptions,
    /// One threshold per layer (len 1) or one per channel.
    pub thresholds: Vec<f32>,
    /// Optional per-element initial potential for one sample (`channels × inner`), added to
    /// the `v_init` rule (SNN Calibration's potential initialisation).
    pub v_init: Option<Vec<f32>>,
    /// Optional per-channel input offset b_c added every step: the same as adding b_c to the
    /// bias of the layer feeding the slot (bias correction / bias adjustment).
    pub bias: Option<Vec<f32>>,
}

impl NeuronLayerSpec {
    /// A layer with `thresholds` (1 = layer-wise, else per channel) and no corrections.
    pub fn new(options: NeuronOptions, thresholds: Vec<f32>) -> Self {
        Self { options, thresholds, v_init: None, bias: None }
    }
}

/// Run-time state of one layer of neurons for one batch.
#[derive(Clone, Debug)]
pub struct LayerNeurons {
    spec: NeuronLayerSpec,
    /// Membrane potentials, `[batch, channels, inner]`.
    membrane: Vec<f32>,
    channels: usize,
    inner: usize,
    /// Total time steps of the run (for the θ/(2T) shift).
    total_steps: usize,
    /// Spike counts (with multiplicity) per global step, summed over the batch.
    pub spikes_per_step: Vec<u64>,
}

impl LayerNeurons {
    /// State for `batch` samples of `channels × inner` neurons, for a run of `total_steps`.
    pub fn new(spec: NeuronLayerSpec, batch: usize, channels: usize, inner: usize, total_steps: usize) -> Self {
        let per_sample = channels * inner;
        let mut membrane = vec![0.0; batch * per_sample];
        for (i, v) in membrane.iter_mut().enumerate() {
            let e = i % per_sample;
            let theta = threshold_of(&spec.thresholds, e / inner);
            if spec.options.v_init == InitPotential::Half {
                *v = theta / 2.0;
            }
            if let Some(init) = &spec.v_init {
                *v += init[e];
            }
        }
        Self { spec, membrane, channels, inner, total_steps, spikes_per_step: Vec::with_capacity(total_steps) }
    }

    /// Neurons per sample.
    pub fn neurons_per_sample(&self) -> usize {
        self.channels * self.inner
    }

    /// Runs `steps` consecutive steps. `data`: inputs `[steps, batch, channels, inner]`,
    /// overwritten with the outputs s·θ.
    pub fn run(&mut self, data: &mut [f32]) {
        let n = self.membrane.len();
        assert!(
            n > 0 && data.len().is_multiple_of(n),
            "neuron input size {} is not a multiple of the layer size {n}",
            data.len()
        );
        let opts = self.spec.options;
        let shift_scale = if opts.input_shift { 1.0 / (2.0 * self.total_steps as f32) } else { 0.0 };
        let inner = self.inner;
        let channels = self.channels;
        let gamma = opts.max_spikes.max(1) as f32;
        for step in data.chunks_mut(n) {
            let mut count = 0u64;
            for (chunk_idx, (xs, vs)) in step.chunks_mut(inner).zip(self.membrane.chunks_mut(inner)).enumerate() {
                let c = chunk_idx % channels;
                let theta = threshold_of(&self.spec.thresholds, c);
                let shift = theta * shift_scale + self.spec.bias.as_ref().map_or(0.0, |b| b[c]);
                for (x, v) in xs.iter_mut().zip(vs.iter_mut()) {
                    *v += *x + shift;
                    let s = if gamma == 1.0 {
                        let fire = match opts.fire {
                            FireRule::GreaterEqual => *v >= theta,
                            FireRule::Greater => *v > theta,
                        };
                        if fire { 1.0 } else { 0.0 }
                    } else {
                        (*v / theta).floor().clamp(0.0, gamma)
                    };
                    if s > 0.0 {
                        count += s as u64;
                        match opts.reset {
                            Reset::Soft => *v -= s * theta,
                            Reset::Hard => *v = 0.0,
                        }
                    }
                    *x = s * theta;
                }
            }
            self.spikes_per_step.push(count);
        }
    }
}

fn threshold_of(thresholds: &[f32], channel: usize) -> f32 {
    if thresholds.len() == 1 { thresholds[0] } else { thresholds[channel] }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(theta: f32, opts: NeuronOptions, steps: usize) -> LayerNeurons {
        LayerNeurons::new(NeuronLayerSpec::new(opts, vec![theta]), 1, 1, 1, steps)
    }

    fn rate(x: f32, theta: f32, opts: NeuronOptions, steps: usize) -> f32 {
        let mut l = layer(theta, opts, steps);
        let mut data = vec![x; steps];
        l.run(&mut data);
        data.iter().sum::<f32>() / (steps as f32 * theta)
    }

    #[test]
    fn firing_rate_approaches_clipped_ratio() {
        let theta = 1.5;
        for &x in &[-0.7f32, 0.0, 0.1, 0.37, 0.75, 1.2, 1.5, 2.0, 5.0] {
            let expected = (x / theta).clamp(0.0, 1.0);
            for steps in [64usize, 1024] {
                let r = rate(x, theta, NeuronOptions::default(), steps);
                // Soft reset: |rate − x/θ| ≤ 1/T while unsaturated.
                assert!((r - expected).abs() <= 1.0 / steps as f32 + 1e-5, "x={x} T={steps}: {r} vs {expected}");
            }
        }
    }

    #[test]
    fn half_init_rounds_instead_of_flooring() {
        // With v(0)=θ/2 the spike count after T steps is round(T·x/θ) instead of floor.
        let opts = NeuronOptions { v_init: InitPotential::Half, ..Default::default() };
        let mut l = layer(1.0, opts, 4);
        let mut data = vec![0.4f32; 4];
        l.run(&mut data);
        assert_eq!(data.iter().sum::<f32>(), 2.0); // round(1.6) = 2, floor would be 1
    }

    #[test]
    fn hard_reset_loses_the_residual() {
        let opts = NeuronOptions { reset: Reset::Hard, ..Default::default() };
        let mut l = layer(1.0, opts, 10);
        let mut data = vec![0.6f32; 10];
        l.run(&mut data);
        // v: .6, 1.2→fire→0, .6, 1.2→0 ... 5 spikes; soft reset would give 6.
        assert_eq!(data.iter().sum::<f32>(), 5.0);
        assert_eq!(rate(0.6, 1.0, NeuronOptions::default(), 10), 0.6);
    }

    #[test]
    fn fire_rule_greater_needs_strict_excess() {
        let ge = rate(1.0, 1.0, NeuronOptions::default(), 1);
        let gt = rate(1.0, 1.0, NeuronOptions { fire: FireRule::Greater, ..Default::default() }, 1);
        assert_eq!((ge, gt), (1.0, 0.0));
    }

    #[test]
    fn burst_neuron_emits_multiple_spikes_up_to_gamma() {
        let opts = NeuronOptions { max_spikes: 2, ..Default::default() };
        let mut l = layer(1.0, opts, 3);
        let mut data = vec![2.5f32, 2.5, 0.0];
        l.run(&mut data);
        // v: 2.5 → s=2, v=.5; 3.0 → s=2 (clipped), v=1.0; 1.0 → s=1
        assert_eq!(data, vec![2.0, 2.0, 1.0]);
        assert_eq!(l.spikes_per_step, vec![2, 2, 1]);
    }

    #[test]
    fn input_shift_adds_half_threshold_over_t() {
        let opts = NeuronOptions { input_shift: true, ..Default::default() };
        let mut l = layer(2.0, opts, 4);
        let mut data = vec![0.0f32; 4];
        l.run(&mut data);
        // shift θ/(2T) = 0.25 per step, never reaches 2.0 in 4 steps.
        assert_eq!(data.iter().sum::<f32>(), 0.0);
        assert!((l.membrane[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn bias_offsets_the_input_per_channel() {
        let mut spec = NeuronLayerSpec::new(NeuronOptions::default(), vec![1.0]);
        spec.bias = Some(vec![0.5, -0.5]);
        let mut l = LayerNeurons::new(spec, 1, 2, 1, 2);
        let mut data = vec![0.5f32, 1.0, 0.5, 1.0];
        l.run(&mut data);
        // channel 0: 1.0 → spike each step; channel 1: 0.5, then 1.0 → one spike at step 2.
        assert_eq!(data, vec![1.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn channel_thresholds_apply_per_channel() {
        let spec = NeuronLayerSpec::new(NeuronOptions::default(), vec![1.0, 2.0]);
        let mut l = LayerNeurons::new(spec, 1, 2, 2, 1);
        let mut data = vec![1.0f32, 1.0, 1.0, 2.0];
        l.run(&mut data);
        assert_eq!(data, vec![1.0, 1.0, 0.0, 2.0]);
    }
}
