//! Integrate-and-fire neurons.
//!
//! Per element, at every step t = 1..T (θ = the element's channel threshold, γ = `max_spikes`):
//! ```text
//! x'   = x(t) + b_c + [input_shift] θ/(2T)        (b_c: per-channel bias correction, 0 by default)
//! v    = v + x'                                   (ṽ(t), the potential before firing)
//! θ̃    = ω(t)·θ                                   (ω ≡ 1 unless the dynamic threshold is on)
//! s    = γ == 1 ? [v ≥ θ̃]  (or [v > θ̃] with FireRule::Greater)
//!               : clamp(floor(v/θ̃), 0, γ)          (burst / multi-spike / adaptive firing)
//! v    = v − s·θ̃   (Reset::Soft)   |   v = 0 if s > 0   (Reset::Hard)
//! out  = s·θ̃
//! ```
//! with v(0) = 0, θ/2 (`InitPotential::Half`) or a per-element tensor (calibration).
//!
//! **Dynamic threshold** (Lan et al., ICCV 2023, Eqs. 9–11; `dynamic_threshold`, off by
//! default): for each layer, *each sample* and each step t (1-based, counted over the whole
//! run, across simulation chunks), after every neuron of the sample has integrated its input
//! (ṽ(t) above, i.e. *after* integration, *before* firing),
//! ```text
//! τ(t) = 1 − #{neurons of the sample in this layer with ṽ(t) ≥ θ} / #{neurons of the sample in this layer}
//! ω(t) = 1 − α·e^{−(t−1)}·τ(t)                    (α = `dynamic_threshold_alpha`, paper default 0.5)
//! θ̃(t) = ω(t)·θ
//! ```
//! τ is counted against the *base* threshold θ (each neuron's own θ with per-channel
//! thresholds), not θ̃(t): the paper's Eq. 9 counts against θ̃(t), which itself depends on τ;
//! the base threshold breaks that cycle. The count uses the neuron's fire rule (`>=` or `>`).
//! ω ∈ [1 − α, 1] and ω → 1 as t grows. Combined with `max_spikes = 2ⁿ − 1` this is Lan's
//! adaptive firing (Eqs. 13–14): s = clip(floor(ṽ/θ̃(t)), 0, 2ⁿ − 1), ṽ −= s·θ̃(t), emit s·θ̃(t).
//! The ω of every sample is recorded per step ([`OmegaStats`]) for the paper's Figure 4.

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

fn half() -> f32 {
    0.5
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
    /// Maximum spikes per step (1 = plain IF; >1 = burst spikes; 2ⁿ − 1 = Lan's adaptive
    /// firing with n bits when combined with the dynamic threshold).
    #[serde(default = "one")]
    pub max_spikes: u32,
    /// Lan et al.'s dynamic threshold θ̃(t) = ω(t)·θ (see the module docs). Off by default.
    #[serde(default)]
    pub dynamic_threshold: bool,
    /// α of the dynamic threshold, in [0, 1] (ω ≥ 1 − α); only used when `dynamic_threshold`.
    #[serde(default = "half")]
    pub dynamic_threshold_alpha: f32,
}

impl Default for NeuronOptions {
    fn default() -> Self {
        Self {
            reset: Reset::Soft,
            v_init: InitPotential::Zero,
            fire: FireRule::GreaterEqual,
            input_shift: false,
            max_spikes: 1,
            dynamic_threshold: false,
            dynamic_threshold_alpha: half(),
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

/// Statistics of the dynamic-threshold factor ω at one step over the samples of a batch
/// (one ω per sample). Merge the stats of several batches with [`OmegaStats::merge`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OmegaStats {
    /// Number of samples (ω values) summarised.
    pub samples: u64,
    /// Sum of ω over the samples.
    pub sum: f64,
    /// Smallest ω (`+∞` when `samples == 0`).
    pub min: f32,
    /// Largest ω (`−∞` when `samples == 0`).
    pub max: f32,
}

impl Default for OmegaStats {
    fn default() -> Self {
        Self { samples: 0, sum: 0.0, min: f32::INFINITY, max: f32::NEG_INFINITY }
    }
}

impl OmegaStats {
    /// Adds one sample's ω.
    pub fn push(&mut self, omega: f32) {
        self.samples += 1;
        self.sum += omega as f64;
        self.min = self.min.min(omega);
        self.max = self.max.max(omega);
    }

    /// Adds the samples summarised by `other`.
    pub fn merge(&mut self, other: &OmegaStats) {
        self.samples += other.samples;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Mean ω over the samples (NaN when there are none).
    pub fn mean(&self) -> f64 {
        self.sum / self.samples as f64
    }
}

/// The dynamic-threshold factor ω(t) = 1 − α·e^{−(t−1)}·τ(t), τ(t) = 1 − `active`/`total`
/// (`t` 1-based; see the module docs).
pub fn dynamic_threshold_factor(alpha: f32, t: usize, active: usize, total: usize) -> f32 {
    let tau = 1.0 - active as f32 / total.max(1) as f32;
    1.0 - alpha * (-((t as f32) - 1.0)).exp() * tau
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
    /// Per global step: ω over the batch's samples (empty unless the dynamic threshold is on).
    pub omega: Vec<OmegaStats>,
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
        Self {
            spec,
            membrane,
            channels,
            inner,
            total_steps,
            spikes_per_step: Vec::with_capacity(total_steps),
            omega: Vec::new(),
        }
    }

    /// Neurons per sample.
    pub fn neurons_per_sample(&self) -> usize {
        self.channels * self.inner
    }

    /// Runs `steps` consecutive steps. `data`: inputs `[steps, batch, channels, inner]`,
    /// overwritten with the outputs s·θ̃.
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
        let per_sample = self.channels * inner;
        let gamma = opts.max_spikes.max(1) as f32;
        let thresholds = &self.spec.thresholds;
        let bias = self.spec.bias.as_deref();
        // Per channel: (θ, per-step input offset).
        let channel: Vec<(f32, f32)> = (0..self.channels)
            .map(|c| {
                let theta = threshold_of(thresholds, c);
                (theta, theta * shift_scale + bias.map_or(0.0, |b| b[c]))
            })
            .collect();
        for step in data.chunks_mut(n) {
            let t = self.spikes_per_step.len() + 1;
            let mut count = 0u64;
            let mut omega_stats = OmegaStats::default();
            for (xs, vs) in step.chunks_mut(per_sample).zip(self.membrane.chunks_mut(per_sample)) {
                let omega = if opts.dynamic_threshold {
                    // Integrate the whole sample first: τ(t) needs every ṽ(t) of the layer.
                    let mut active = 0usize;
                    for ((xc, vc), &(theta, shift)) in xs.chunks(inner).zip(vs.chunks_mut(inner)).zip(&channel) {
                        for (x, v) in xc.iter().zip(vc.iter_mut()) {
                            *v += *x + shift;
                            active += usize::from(reaches(*v, theta, opts.fire));
                        }
                    }
                    let w = dynamic_threshold_factor(opts.dynamic_threshold_alpha, t, active, per_sample);
                    omega_stats.push(w);
                    Some(w)
                } else {
                    None
                };
                for ((xc, vc), &(theta, shift)) in xs.chunks_mut(inner).zip(vs.chunks_mut(inner)).zip(&channel) {
                    let theta = omega.map_or(theta, |w| w * theta);
                    for (x, v) in xc.iter_mut().zip(vc.iter_mut()) {
                        if omega.is_none() {
                            *v += *x + shift;
                        }
                        let s = if gamma == 1.0 {
                            if reaches(*v, theta, opts.fire) { 1.0 } else { 0.0 }
                        } else {
                            // floor of a value clamped to [0, γ] is its truncation; the
                            // cast avoids a libm `floorf` call per neuron and step (NaN → 0).
                            ((*v / theta).clamp(0.0, gamma) as u32) as f32
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
            }
            self.spikes_per_step.push(count);
            if opts.dynamic_threshold {
                self.omega.push(omega_stats);
            }
        }
    }
}

/// Whether a potential `v` reaches threshold `theta` under `rule`.
fn reaches(v: f32, theta: f32, rule: FireRule) -> bool {
    match rule {
        FireRule::GreaterEqual => v >= theta,
        FireRule::Greater => v > theta,
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

    fn dt(alpha: f32, max_spikes: u32) -> NeuronOptions {
        NeuronOptions { dynamic_threshold: true, dynamic_threshold_alpha: alpha, max_spikes, ..Default::default() }
    }

    #[test]
    fn omega_follows_eq_10() {
        // τ = 1 − 1/4 = 0.75: ω(1) = 1 − 0.5·1·0.75, ω(2) = 1 − 0.5·e^{−1}·0.75.
        assert_eq!(dynamic_threshold_factor(0.5, 1, 1, 4), 0.625);
        let w2 = dynamic_threshold_factor(0.5, 2, 1, 4);
        assert!((w2 - (1.0 - 0.5 * (-1.0f32).exp() * 0.75)).abs() < 1e-6, "{w2}");
        // Everyone active: τ = 0, ω = 1; nobody active at t = 1: ω = 1 − α (the lower bound).
        assert_eq!(dynamic_threshold_factor(0.5, 1, 4, 4), 1.0);
        assert_eq!(dynamic_threshold_factor(0.83, 1, 0, 4), 1.0 - 0.83);
        // ω → 1 as t grows.
        assert!(dynamic_threshold_factor(0.5, 30, 0, 4) > 0.999_999);
    }

    #[test]
    fn dynamic_threshold_lowers_the_threshold_by_the_inactive_fraction() {
        // One sample, 4 neurons, θ = 1. After integration ṽ = [1.2, .6, .3, 0]: one neuron ≥ θ,
        // τ = .75, ω = .625, θ̃ = .625: neuron 0 fires with amplitude θ̃, neuron 1 (.6) does not.
        let mut l = LayerNeurons::new(NeuronLayerSpec::new(dt(0.5, 1), vec![1.0]), 1, 1, 4, 2);
        let mut data = vec![1.2f32, 0.6, 0.3, 0.0];
        l.run(&mut data);
        assert_eq!(data, vec![0.625, 0.0, 0.0, 0.0]);
        assert!((l.membrane[0] - 0.575).abs() < 1e-6);
        assert_eq!(l.omega.len(), 1);
        assert_eq!((l.omega[0].samples, l.omega[0].min, l.omega[0].max), (1, 0.625, 0.625));
        // Without the dynamic threshold the same input fires with amplitude θ = 1.
        let mut plain = layer(1.0, NeuronOptions::default(), 2);
        let mut x = vec![1.2f32];
        plain.run(&mut x);
        assert_eq!(x, vec![1.0]);
        assert!(plain.omega.is_empty(), "no ω record without the dynamic threshold");
    }

    #[test]
    fn adaptive_firing_counts_multiples_of_the_dynamic_threshold_up_to_2n_minus_1() {
        // n = 2 → at most 3 spikes. ṽ = [2, 3, 0, 0], θ = 1: 2 active → τ = .5, ω = .75, θ̃ = .75.
        // s = [floor(2/.75)=2, min(floor(3/.75)=4, 3)=3, 0, 0]; emitted s·θ̃; v −= s·θ̃.
        let mut l = LayerNeurons::new(NeuronLayerSpec::new(dt(0.5, 3), vec![1.0]), 1, 1, 4, 2);
        let mut data = vec![2.0f32, 3.0, 0.0, 0.0, /* t = 2 */ 0.0, 0.0, 0.0, 0.0];
        l.run(&mut data);
        assert_eq!(data[..4], [1.5, 2.25, 0.0, 0.0]);
        // t = 2: ṽ = [.5, .75, 0, 0], nobody ≥ 1 → τ = 1, θ̃ = 1 − .5/e ≈ .816: no spike.
        assert_eq!(data[4..], [0.0; 4]);
        assert_eq!(l.spikes_per_step, vec![5, 0]);
        assert_eq!(l.membrane, vec![0.5, 0.75, 0.0, 0.0]);
        assert_eq!(l.omega[0].mean(), 0.75);
        assert!((l.omega[1].mean() - (1.0 - 0.5 * (-1.0f64).exp())).abs() < 1e-6);
    }

    #[test]
    fn tau_is_per_sample_and_uses_each_neurons_own_threshold() {
        // Per-channel θ = [1, 2], one position each. Sample 0: ṽ = [1.5, 1.5] → only channel 0
        // reaches its θ → τ = .5, ω = .75. Sample 1: ṽ = [1.5, 2.5] → τ = 0, ω = 1.
        let mut l = LayerNeurons::new(NeuronLayerSpec::new(dt(0.5, 1), vec![1.0, 2.0]), 2, 2, 1, 1);
        let mut data = vec![1.5f32, 1.5, 1.5, 2.5];
        l.run(&mut data);
        assert_eq!(data, vec![0.75, 1.5, 1.0, 2.0]);
        let w = l.omega[0];
        assert_eq!((w.samples, w.min, w.max, w.mean()), (2, 0.75, 1.0, 0.875));
    }

    #[test]
    fn omega_stats_merge_over_batches() {
        let mut a = OmegaStats::default();
        a.push(0.5);
        let mut b = OmegaStats::default();
        b.push(1.0);
        b.push(0.75);
        a.merge(&b);
        assert_eq!((a.samples, a.min, a.max, a.mean()), (3, 0.5, 1.0, 0.75));
    }

    #[test]
    fn options_parse_with_defaults_and_dynamic_threshold_fields() {
        let old: NeuronOptions = toml::from_str("reset = \"hard\"\nmax_spikes = 2").unwrap();
        assert_eq!(old, NeuronOptions { reset: Reset::Hard, max_spikes: 2, ..Default::default() });
        assert!(!old.dynamic_threshold);
        let new: NeuronOptions =
            toml::from_str("dynamic_threshold = true\ndynamic_threshold_alpha = 0.83\nmax_spikes = 7").unwrap();
        assert_eq!(new, dt(0.83, 7));
        assert!(toml::from_str::<NeuronOptions>("alpha = 0.5").is_err(), "unknown fields are rejected");
    }
}
