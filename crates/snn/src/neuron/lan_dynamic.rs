//! `lan-dynamic`: the dynamic-threshold neuron with n-bit adaptive firing of Lan et al., ICCV
//! 2023, "Efficient Converted Spiking Neural Network for 3D and 2D Classification", Eqs. 9–14.
//!
//! For each layer, *each sample* and each step t (1-based, counted over the whole run, across
//! simulation chunks), after every neuron of the sample has integrated its input:
//! ```text
//! ṽ(t) = v(t−1) + x(t) + b_c [+ θ/(2T) with input_shift]     (Eq. 1)
//! τ(t) = 1 − #{neurons of the sample in this layer with ṽ(t) ≥ θ} / #{neurons of the sample}   (Eq. 9)
//! ω(t) = 1 − α·e^{−(t−1)}·τ(t)                                 (Eq. 10; α = `alpha`, default 0.5)
//! θ̃(t) = ω(t)·θ                                                (Eq. 11)
//! s(t) = [ṽ ≥ θ̃] if φ = 1, else clip(floor(ṽ(t)/θ̃(t)), 0, φ)   (Eqs. 13–14; φ = `max_spikes` = 2ⁿ − 1)
//! v(t) = ṽ(t) − s(t)·θ̃(t)   (soft reset; hard: 0);   output s(t)·θ̃(t)
//! ```
//! The paper's Eq. 9 counts against θ̃(t), which itself depends on τ(t); `tau_against`
//! chooses how to break that cycle: `"base"` (default) counts against the base threshold θ
//! (each neuron's own θ with per-channel thresholds), `"previous"` against the sample's
//! θ̃(t−1) = ω(t−1)·θ (θ̃(0) = θ, so step 1 is the same under both). The count uses the
//! neuron's fire rule. ω ∈ [1 − α, 1] and ω → 1 as t grows. The ω of every sample is recorded per step (diagnostic
//! `omega`: results rows `omega_mean`/`omega_min`/`omega_max`, the paper's Figure 4).
//!
//! Rate model (for calibrations): the IF rate with φ spikes per step; the dynamic threshold
//! is ignored there (ω → 1 after a few steps).
//!
//! Spec: `[method.neuron] kind = "lan-dynamic"`, `alpha` (default 0.5), `max_spikes`
//! (default 3 = 2² − 1), `tau_against` (`"base"` or `"previous"`), and the `if` neuron's
//! `reset`, `v_init`, `fire`, `input_shift`.

use serde::{Deserialize, Serialize};

use super::{
    Diagnostic, FireRule, InitPotential, LayerShape, NeuronLayerSpec, NeuronModel, NeuronState, RateModel,
    RegisteredNeuron, Reset, RunInfo, channel_offsets, config_table, initial_membrane,
};
use super::integrate_and_fire::IntegrateAndFire;
use crate::stats::SampleStats;

fn half() -> f32 {
    0.5
}
fn three() -> u32 {
    3
}

/// The threshold τ(t) of Eq. 9 counts active neurons against (the paper's θ̃(t) depends on τ(t)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TauAgainst {
    /// The base threshold θ.
    #[default]
    Base,
    /// The sample's previous dynamic threshold θ̃(t−1) = ω(t−1)·θ, with ω(0) = 1.
    Previous,
}

impl TauAgainst {
    fn is_base(&self) -> bool {
        *self == TauAgainst::Base
    }
}

/// The dynamic-threshold neuron's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanDynamic {
    /// α in [0, 1]: ω ≥ 1 − α (default 0.5).
    #[serde(default = "half")]
    pub alpha: f32,
    /// φ: spikes per step at most (2ⁿ − 1 for n-bit adaptive firing; 1 = dynamic threshold
    /// only). Default 3 (n = 2).
    #[serde(default = "three")]
    pub max_spikes: u32,
    /// `soft` or `hard`.
    #[serde(default)]
    pub reset: Reset,
    /// `zero` or `half`.
    #[serde(default)]
    pub v_init: InitPotential,
    /// `">="` or `">"`.
    #[serde(default)]
    pub fire: FireRule,
    /// Add θ/(2T) to the input every step.
    #[serde(default)]
    pub input_shift: bool,
    /// What τ(t) counts active neurons against: `base` θ (default) or the `previous` θ̃(t−1).
    /// Left out of the configuration (and so of cache keys) when `base`.
    #[serde(default, skip_serializing_if = "TauAgainst::is_base")]
    pub tau_against: TauAgainst,
}

impl Default for LanDynamic {
    fn default() -> Self {
        Self {
            alpha: half(),
            max_spikes: three(),
            reset: Reset::Soft,
            v_init: InitPotential::Zero,
            fire: FireRule::GreaterEqual,
            input_shift: false,
            tau_against: TauAgainst::Base,
        }
    }
}

impl LanDynamic {
    /// α and φ with the default `if` settings otherwise.
    pub fn new(alpha: f32, max_spikes: u32) -> Self {
        Self { alpha, max_spikes, ..Self::default() }
    }
}

/// The dynamic-threshold factor ω(t) = 1 − α·e^{−(t−1)}·τ(t), τ(t) = 1 − `active`/`total`
/// (`t` 1-based).
pub fn dynamic_threshold_factor(alpha: f32, t: usize, active: usize, total: usize) -> f32 {
    let tau = 1.0 - active as f32 / total.max(1) as f32;
    1.0 - alpha * (-((t as f32) - 1.0)).exp() * tau
}

impl RegisteredNeuron for LanDynamic {
    const KIND: &'static str = "lan-dynamic";
    const DESCRIPTION: &'static str =
        "dynamic threshold ω(t)·θ from the layer's inactive fraction + up to max_spikes spikes per step (Lan et al. 2023)";
    fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(format!("alpha must be in [0, 1], got {}", self.alpha));
        }
        if self.max_spikes == 0 {
            return Err("max_spikes must be at least 1".into());
        }
        Ok(())
    }
}

impl NeuronModel for LanDynamic {
    fn kind(&self) -> &'static str {
        Self::KIND
    }
    fn config(&self) -> toml::Table {
        config_table(Self::KIND, self)
    }
    fn new_state(&self, layer: &NeuronLayerSpec, shape: LayerShape, run: RunInfo) -> Box<dyn NeuronState> {
        let channel = channel_offsets(layer, shape, run, self.input_shift);
        Box::new(LanDynamicState {
            p: *self,
            membrane: initial_membrane(layer, shape, self.v_init.fraction()),
            shape,
            channel,
            omega: Vec::new(),
            previous_omega: vec![1.0; shape.batch],
        })
    }
    fn depends_on_timesteps(&self) -> bool {
        self.input_shift
    }
    fn rate_model(&self) -> RateModel {
        IntegrateAndFire { reset: self.reset, v_init: self.v_init, fire: self.fire, input_shift: self.input_shift }
            .rate_model_with(self.max_spikes)
    }
    fn plain_if(&self) -> Result<super::PlainIf, String> {
        Err("NIR 1.0 has no dynamic threshold: θ̃(t) depends on the layer's firing at every step".into())
    }
}

struct LanDynamicState {
    p: LanDynamic,
    membrane: Vec<f32>,
    shape: LayerShape,
    channel: Vec<(f32, f32)>,
    /// Per global step: ω over the batch's samples.
    omega: Vec<SampleStats>,
    /// Per sample: ω(t−1) (1 before the first step), for `tau_against = "previous"`.
    previous_omega: Vec<f32>,
}

impl NeuronState for LanDynamicState {
    fn run(&mut self, data: &mut [f32], spikes: &mut Vec<u32>) {
        let n = self.membrane.len();
        assert!(
            n > 0 && data.len().is_multiple_of(n),
            "neuron input size {} is not a multiple of the layer size {n}",
            data.len()
        );
        let (inner, per_sample) = (self.shape.inner, self.shape.per_sample());
        let p = self.p;
        let gamma = p.max_spikes.max(1) as f32;
        for step in data.chunks_mut(n) {
            let t = self.omega.len() + 1;
            let mut stats = SampleStats::default();
            let samples = step.chunks_mut(per_sample).zip(self.membrane.chunks_mut(per_sample));
            for ((xs, vs), previous) in samples.zip(self.previous_omega.iter_mut()) {
                // Integrate the whole sample first: τ(t) needs every ṽ(t) of the layer.
                let against = match p.tau_against {
                    TauAgainst::Base => 1.0,
                    TauAgainst::Previous => *previous,
                };
                let mut active = 0usize;
                for ((xc, vc), &(theta, shift)) in xs.chunks(inner).zip(vs.chunks_mut(inner)).zip(&self.channel) {
                    for (x, v) in xc.iter().zip(vc.iter_mut()) {
                        *v += *x + shift;
                        active += usize::from(p.fire.reaches(*v, against * theta));
                    }
                }
                let w = dynamic_threshold_factor(p.alpha, t, active, per_sample);
                *previous = w;
                stats.push(w);
                let mut count = 0u32;
                for ((xc, vc), &(theta, _)) in xs.chunks_mut(inner).zip(vs.chunks_mut(inner)).zip(&self.channel) {
                    let theta = w * theta;
                    for (x, v) in xc.iter_mut().zip(vc.iter_mut()) {
                        let s = if gamma == 1.0 {
                            if p.fire.reaches(*v, theta) { 1.0 } else { 0.0 }
                        } else {
                            ((*v / theta).clamp(0.0, gamma) as u32) as f32
                        };
                        if s > 0.0 {
                            count += s as u32;
                            match p.reset {
                                Reset::Soft => *v -= s * theta,
                                Reset::Hard => *v = 0.0,
                            }
                        }
                        *x = s * theta;
                    }
                }
                spikes.push(count);
            }
            self.omega.push(stats);
        }
    }

    fn diagnostics(&self) -> Vec<Diagnostic> {
        vec![Diagnostic { metric: "omega", per_step: self.omega.clone() }]
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn state(model: LanDynamic, thresholds: Vec<f32>, shape: LayerShape) -> Box<dyn NeuronState> {
        NeuronLayerSpec::new(Arc::new(model), thresholds).new_state(shape, RunInfo {
            timesteps: 2,
            seed: 0,
        })
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
    fn lowers_the_threshold_by_the_inactive_fraction() {
        // One sample, 4 neurons, θ = 1. After integration ṽ = [1.2, .6, .3, 0]: one neuron ≥ θ,
        // τ = .75, ω = .625, θ̃ = .625: neuron 0 fires with amplitude θ̃, neuron 1 (.6) does not.
        let mut s = state(LanDynamic::new(0.5, 1), vec![1.0], LayerShape { batch: 1, channels: 1, inner: 4 });
        let mut data = vec![1.2f32, 0.6, 0.3, 0.0];
        s.run(&mut data, &mut Vec::new());
        assert_eq!(data, vec![0.625, 0.0, 0.0, 0.0]);
        // The residual 1.2 − .625 = .575 stays: a zero input at t = 2 (nobody ≥ 1, τ = 1,
        // θ̃ = 1 − .5/e ≈ .816) does not fire it, an input of .25 does (.825 ≥ .816).
        let mut quiet = vec![0.0f32, 0.0, 0.0, 0.0];
        s.run(&mut quiet, &mut Vec::new());
        assert_eq!(quiet, vec![0.0; 4]);
        let d = s.diagnostics();
        assert_eq!((d[0].metric, d[0].per_step.len()), ("omega", 2));
        assert_eq!((d[0].per_step[0].samples, d[0].per_step[0].min, d[0].per_step[0].max), (1, 0.625, 0.625));
    }

    #[test]
    fn adaptive_firing_counts_multiples_of_the_dynamic_threshold_up_to_2n_minus_1() {
        // n = 2 → at most 3 spikes. ṽ = [2, 3, 0, 0], θ = 1: 2 active → τ = .5, ω = .75, θ̃ = .75.
        // s = [floor(2/.75)=2, min(floor(3/.75)=4, 3)=3, 0, 0]; emitted s·θ̃; v −= s·θ̃.
        let mut s = state(LanDynamic::new(0.5, 3), vec![1.0], LayerShape { batch: 1, channels: 1, inner: 4 });
        let mut data = vec![2.0f32, 3.0, 0.0, 0.0, /* t = 2 */ 0.0, 0.0, 0.0, 0.0];
        let mut spikes = Vec::new();
        s.run(&mut data, &mut spikes);
        assert_eq!(data[..4], [1.5, 2.25, 0.0, 0.0]);
        // t = 2: ṽ = [.5, .75, 0, 0], nobody ≥ 1 → τ = 1, θ̃ = 1 − .5/e ≈ .816: no spike.
        assert_eq!(data[4..], [0.0; 4]);
        assert_eq!(spikes, vec![5, 0]);
        let omega = &s.diagnostics()[0].per_step;
        assert_eq!(omega[0].mean(), 0.75);
        assert!((omega[1].mean() - (1.0 - 0.5 * (-1.0f64).exp())).abs() < 1e-6);
    }

    #[test]
    fn tau_is_per_sample_and_uses_each_neurons_own_threshold() {
        // Per-channel θ = [1, 2], one position each. Sample 0: ṽ = [1.5, 1.5] → only channel 0
        // reaches its θ → τ = .5, ω = .75. Sample 1: ṽ = [1.5, 2.5] → τ = 0, ω = 1.
        let mut s = state(LanDynamic::new(0.5, 1), vec![1.0, 2.0], LayerShape { batch: 2, channels: 2, inner: 1 });
        let mut data = vec![1.5f32, 1.5, 1.5, 2.5];
        s.run(&mut data, &mut Vec::new());
        assert_eq!(data, vec![0.75, 1.5, 1.0, 2.0]);
        let w = s.diagnostics()[0].per_step[0];
        assert_eq!((w.samples, w.min, w.max, w.mean()), (2, 0.75, 1.0, 0.875));
    }

    #[test]
    fn firing_rate_approaches_the_burst_rate_as_omega_tends_to_one() {
        // A single neuron is its own layer: τ = 0 once it is active, so for an input ≥ θ the
        // neuron is a burst neuron; over long runs the mean output is within φθ/T of min(x, φθ).
        for &x in &[0.4f32, 1.3, 2.2, 5.0] {
            let steps = 256;
            let layer = NeuronLayerSpec::new(Arc::new(LanDynamic::new(0.5, 3)), vec![1.0]);
            let shape = LayerShape { batch: 1, channels: 1, inner: 1 };
            let mut s = layer.new_state(shape, RunInfo { timesteps: steps, seed: 0 });
            let mut data = vec![x; steps];
            s.run(&mut data, &mut Vec::new());
            let mean = data.iter().sum::<f32>() / steps as f32;
            assert!((mean - x.min(3.0)).abs() <= 3.0 / steps as f32 + 1e-3, "x={x}: {mean}");
        }
    }

    #[test]
    fn tau_against_the_previous_dynamic_threshold() {
        // One sample, 4 neurons, θ = 1, no adaptive firing. t = 1: ṽ = [1.2, .6, .3, 0], one
        // active under both readings (θ̃(0) = θ) → ω(1) = .625, neuron 0 fires (residual .575).
        // t = 2 with input [0, .2, .5, .7]: ṽ = [.575, .8, .8, .7]. Against θ: nobody ≥ 1 → τ = 1,
        // ω = 1 − .5/e ≈ .816 (θ̃ = .816) → nobody fires. Against θ̃(1) = .625: three active,
        // τ = .25, ω = 1 − .5·.25/e ≈ .954 → nobody fires either.
        let shape = LayerShape { batch: 1, channels: 1, inner: 4 };
        let previous = LanDynamic { tau_against: TauAgainst::Previous, ..LanDynamic::new(0.5, 1) };
        let mut base = state(LanDynamic::new(0.5, 1), vec![1.0], shape);
        let mut prev = state(previous, vec![1.0], shape);
        for s in [&mut base, &mut prev] {
            let mut data = vec![1.2f32, 0.6, 0.3, 0.0, /* t = 2 */ 0.0, 0.2, 0.5, 0.7];
            s.run(&mut data, &mut Vec::new());
            assert_eq!(data[..4], [0.625, 0.0, 0.0, 0.0]);
            assert_eq!(data[4..], [0.0; 4]);
        }
        let omega = |s: &dyn NeuronState| s.diagnostics()[0].per_step.iter().map(|w| w.mean()).collect::<Vec<_>>();
        let w2 = 1.0 - 0.5 * (-1.0f64).exp();
        assert!((omega(&*base)[1] - w2).abs() < 1e-6, "{:?}", omega(&*base));
        assert!((omega(&*prev)[1] - (1.0 - 0.125 * (-1.0f64).exp())).abs() < 1e-6, "{:?}", omega(&*prev));
        // The base reading is the default and stays out of the configuration (cache keys).
        assert!(!LanDynamic::default().config().contains_key("tau_against"));
        assert_eq!(previous.config()["tau_against"].as_str(), Some("previous"));
    }

    #[test]
    fn parses_with_defaults_and_rejects_unknown_fields() {
        let p: LanDynamic = toml::from_str("alpha = 0.83\nmax_spikes = 7").unwrap();
        assert_eq!(p, LanDynamic::new(0.83, 7));
        assert!(toml::from_str::<LanDynamic>("dynamic_threshold_alpha = 0.5").is_err());
    }
}
