//! `if`: the integrate-and-fire neuron of rate-coded conversion (Diehl et al. 2015; Rueckauer
//! et al. 2017), with the reset, initial potential, firing rule and input shift that the
//! conversion papers vary.
//!
//! Per element, at every step t = 1..T (θ = the element's channel threshold):
//! ```text
//! x'  = x(t) + b_c + [input_shift] θ/(2T)     (b_c: per-channel bias correction, 0 by default)
//! v   = v + x'
//! s   = [v ≥ θ]            (or [v > θ] with fire = ">")
//! v   = v − s·θ   (reset = "soft")   |   v = 0 if s = 1   (reset = "hard")
//! out = s·θ
//! ```
//! with v(0) = 0 or θ/2 (`v_init`), plus a per-element potential when a calibration sets one.
//! Rate (soft reset, constant input y, T steps): ȳ = (θ/T)·floor(clamp((y + o)/θ, 0, 1)·T),
//! o = b_c + [input_shift] θ/(2T) + v(0)/T; with v(0) = θ/2 the count is round(T·y/θ).
//!
//! Spec: `[method.neuron] kind = "if"`, `reset = "soft"|"hard"`, `v_init = "zero"|"half"`,
//! `fire = ">="|">"`, `input_shift = true|false`.

use serde::{Deserialize, Serialize};

use super::{
    Coding, FireRule, InitPotential, LayerShape, NeuronLayerSpec, NeuronModel, NeuronState, PlainIf, RateModel,
    RegisteredNeuron, Reset, RunInfo, channel_offsets, config_table, initial_membrane,
};

/// The integrate-and-fire neuron's parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrateAndFire {
    /// `soft` (subtract θ) or `hard` (to zero).
    #[serde(default)]
    pub reset: Reset,
    /// `zero` or `half` (θ/2).
    #[serde(default)]
    pub v_init: InitPotential,
    /// `">="` or `">"`.
    #[serde(default)]
    pub fire: FireRule,
    /// Add θ/(2T) to the input every step (SNN Calibration / AdaFire / Opt. convention).
    #[serde(default)]
    pub input_shift: bool,
}

impl RegisteredNeuron for IntegrateAndFire {
    const KIND: &'static str = "if";
    const DESCRIPTION: &'static str =
        "integrate-and-fire: soft/hard reset, v(0) 0 or θ/2, ≥ or >, optional θ/(2T) input shift (Rueckauer 2017)";
}

impl NeuronModel for IntegrateAndFire {
    fn kind(&self) -> &'static str {
        Self::KIND
    }
    fn config(&self) -> toml::Table {
        config_table(Self::KIND, self)
    }
    fn new_state(&self, layer: &NeuronLayerSpec, shape: LayerShape, run: RunInfo) -> Box<dyn NeuronState> {
        Box::new(IfState::new(layer, shape, run, *self, 1))
    }
    fn depends_on_timesteps(&self) -> bool {
        self.input_shift
    }
    fn rate_model(&self) -> RateModel {
        self.rate_model_with(1)
    }
    fn plain_if(&self) -> Result<PlainIf, String> {
        Ok(PlainIf {
            reset: self.reset,
            fire: self.fire,
            initial_potential: self.v_init.fraction(),
            input_shift: self.input_shift,
        })
    }
}

impl IntegrateAndFire {
    /// The rate model of these settings with up to `max_spikes` spikes per step (the IF-family
    /// neurons `burst` and `lan-dynamic` share it).
    pub fn rate_model_with(&self, max_spikes: u32) -> RateModel {
        RateModel {
            max_spikes_per_step: max_spikes.max(1),
            input_shift: self.input_shift,
            initial_potential: self.v_init.fraction(),
            coding: Coding::Rate,
        }
    }
}

/// State of a layer of integrate-and-fire neurons emitting up to γ spikes per step (γ = 1
/// for `if`; the `burst` neuron reuses it with γ > 1).
pub(crate) struct IfState {
    /// Membrane potentials, `[batch, channels, inner]`.
    membrane: Vec<f32>,
    shape: LayerShape,
    /// Per channel: (θ, per-step input offset b_c + [shift] θ/(2T)).
    channel: Vec<(f32, f32)>,
    reset: Reset,
    fire: FireRule,
    gamma: u32,
}

impl IfState {
    pub(crate) fn new(layer: &NeuronLayerSpec, shape: LayerShape, run: RunInfo, p: IntegrateAndFire, gamma: u32) -> Self {
        let channel = channel_offsets(layer, shape, run, p.input_shift);
        Self {
            membrane: initial_membrane(layer, shape, p.v_init.fraction()),
            shape,
            channel,
            reset: p.reset,
            fire: p.fire,
            gamma: gamma.max(1),
        }
    }
}

impl NeuronState for IfState {
    fn run(&mut self, data: &mut [f32], spikes: &mut Vec<u32>) {
        let n = self.membrane.len();
        assert!(
            n > 0 && data.len().is_multiple_of(n),
            "neuron input size {} is not a multiple of the layer size {n}",
            data.len()
        );
        let (inner, per_sample) = (self.shape.inner, self.shape.per_sample());
        let (reset, fire, gamma) = (self.reset, self.fire, self.gamma as f32);
        for step in data.chunks_mut(n) {
            for (xs, vs) in step.chunks_mut(per_sample).zip(self.membrane.chunks_mut(per_sample)) {
                let mut count = 0u32;
                for ((xc, vc), &(theta, shift)) in xs.chunks_mut(inner).zip(vs.chunks_mut(inner)).zip(&self.channel) {
                    if self.gamma == 1 {
                        for (x, v) in xc.iter_mut().zip(vc.iter_mut()) {
                            *v += *x + shift;
                            if fire.reaches(*v, theta) {
                                count += 1;
                                match reset {
                                    Reset::Soft => *v -= theta,
                                    Reset::Hard => *v = 0.0,
                                }
                                *x = theta;
                            } else {
                                *x = 0.0;
                            }
                        }
                    } else {
                        for (x, v) in xc.iter_mut().zip(vc.iter_mut()) {
                            *v += *x + shift;
                            // floor of a value clamped to [0, γ] is its truncation; the cast
                            // avoids a libm `floorf` call per neuron and step (NaN → 0).
                            let s = ((*v / theta).clamp(0.0, gamma) as u32) as f32;
                            if s > 0.0 {
                                count += s as u32;
                                match reset {
                                    Reset::Soft => *v -= s * theta,
                                    Reset::Hard => *v = 0.0,
                                }
                            }
                            *x = s * theta;
                        }
                    }
                }
                spikes.push(count);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;

    /// Runs one neuron of `model` (threshold θ) on `inputs` (one per step); returns the
    /// outputs and the spike counts per step.
    pub(crate) fn run_one(model: Arc<dyn NeuronModel>, theta: f32, inputs: &[f32]) -> (Vec<f32>, Vec<u32>) {
        let layer = NeuronLayerSpec::new(model, vec![theta]);
        let shape = LayerShape { batch: 1, channels: 1, inner: 1 };
        let mut state = layer.new_state(shape, RunInfo { timesteps: inputs.len(), seed: 0 });
        let mut data = inputs.to_vec();
        let mut spikes = Vec::new();
        state.run(&mut data, &mut spikes);
        (data, spikes)
    }

    fn rate(x: f32, theta: f32, p: IntegrateAndFire, steps: usize) -> f32 {
        let (out, _) = run_one(Arc::new(p), theta, &vec![x; steps]);
        out.iter().sum::<f32>() / (steps as f32 * theta)
    }

    #[test]
    fn firing_rate_equals_the_rate_model_and_approaches_the_clipped_ratio() {
        let theta = 1.5;
        for p in [
            IntegrateAndFire::default(),
            IntegrateAndFire { v_init: InitPotential::Half, ..Default::default() },
            IntegrateAndFire { input_shift: true, ..Default::default() },
        ] {
            for &x in &[-0.7f32, 0.0, 0.1, 0.37, 0.75, 1.2, 1.5, 2.0, 5.0] {
                for steps in [1usize, 7, 64, 1024] {
                    let r = rate(x, theta, p, steps);
                    // Closed form (soft reset, constant input): the rate model, exactly up to
                    // float summation.
                    let model = p.rate_model();
                    let closed = model.average_output(x, theta, steps, model.offset(theta, steps, 0.0, 0.0)) / theta;
                    assert!((r - closed).abs() <= 1e-4, "{p:?} x={x} T={steps}: {r} vs closed form {closed}");
                    // And |rate − clip(x/θ)| ≤ 1/T.
                    let expected = (x / theta).clamp(0.0, 1.0);
                    assert!((r - expected).abs() <= 1.0 / steps as f32 + 1e-5, "x={x} T={steps}: {r} vs {expected}");
                }
            }
        }
    }

    #[test]
    fn half_init_rounds_instead_of_flooring() {
        // With v(0)=θ/2 the spike count after T steps is round(T·x/θ) instead of floor.
        let p = IntegrateAndFire { v_init: InitPotential::Half, ..Default::default() };
        let (out, _) = run_one(Arc::new(p), 1.0, &[0.4; 4]);
        assert_eq!(out.iter().sum::<f32>(), 2.0); // round(1.6) = 2, floor would be 1
    }

    #[test]
    fn hard_reset_loses_the_residual() {
        let p = IntegrateAndFire { reset: Reset::Hard, ..Default::default() };
        let (out, spikes) = run_one(Arc::new(p), 1.0, &[0.6; 10]);
        // v: .6, 1.2→fire→0, .6, 1.2→0 ... 5 spikes; soft reset would give 6.
        assert_eq!(out.iter().sum::<f32>(), 5.0);
        assert_eq!(spikes.iter().sum::<u32>(), 5);
        assert_eq!(rate(0.6, 1.0, IntegrateAndFire::default(), 10), 0.6);
    }

    #[test]
    fn fire_rule_greater_needs_strict_excess() {
        let ge = rate(1.0, 1.0, IntegrateAndFire::default(), 1);
        let gt = rate(1.0, 1.0, IntegrateAndFire { fire: FireRule::Greater, ..Default::default() }, 1);
        assert_eq!((ge, gt), (1.0, 0.0));
    }

    #[test]
    fn input_shift_adds_half_threshold_over_t() {
        let p = IntegrateAndFire { input_shift: true, ..Default::default() };
        // shift θ/(2T) = 0.25 per step: v reaches 1.0 after 4 steps, never 2.0.
        let (out, _) = run_one(Arc::new(p), 2.0, &[0.0; 4]);
        assert_eq!(out.iter().sum::<f32>(), 0.0);
        // With one more unit of input in the last step, v = 1.0 + 1.0 reaches θ.
        let (out, _) = run_one(Arc::new(p), 2.0, &[0.0, 0.0, 0.0, 1.0]);
        assert_eq!(out, vec![0.0, 0.0, 0.0, 2.0]);
        assert!(p.depends_on_timesteps() && !IntegrateAndFire::default().depends_on_timesteps());
    }

    #[test]
    fn bias_offsets_the_input_per_channel_and_thresholds_apply_per_channel() {
        let mut layer = NeuronLayerSpec::new(Arc::new(IntegrateAndFire::default()), vec![1.0]);
        layer.bias = Some(vec![0.5, -0.5]);
        let shape = LayerShape { batch: 1, channels: 2, inner: 1 };
        let mut s = layer.new_state(shape, RunInfo { timesteps: 2, seed: 0 });
        let mut data = vec![0.5f32, 1.0, 0.5, 1.0];
        let mut spikes = Vec::new();
        s.run(&mut data, &mut spikes);
        // channel 0: 1.0 → spike each step; channel 1: 0.5, then 1.0 → one spike at step 2.
        assert_eq!(data, vec![1.0, 0.0, 1.0, 1.0]);
        assert_eq!(spikes, vec![1, 2]);
        let layer = NeuronLayerSpec::new(Arc::new(IntegrateAndFire::default()), vec![1.0, 2.0]);
        let shape = LayerShape { batch: 1, channels: 2, inner: 2 };
        let mut s = layer.new_state(shape, RunInfo { timesteps: 1, seed: 0 });
        let mut data = vec![1.0f32, 1.0, 1.0, 2.0];
        s.run(&mut data, &mut Vec::new());
        assert_eq!(data, vec![1.0, 1.0, 0.0, 2.0]);
    }

    #[test]
    fn spikes_are_counted_per_sample_and_step() {
        let layer = NeuronLayerSpec::new(Arc::new(IntegrateAndFire::default()), vec![1.0]);
        let shape = LayerShape { batch: 2, channels: 1, inner: 2 };
        let mut s = layer.new_state(shape, RunInfo { timesteps: 2, seed: 0 });
        // step 1: sample 0 = [1, 1], sample 1 = [0, 1]; step 2: sample 0 = [0, 0], sample 1 = [1, 1]
        let mut data = vec![1.0f32, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0];
        let mut spikes = Vec::new();
        s.run(&mut data, &mut spikes);
        assert_eq!(spikes, vec![2, 1, 0, 2]);
    }

    #[test]
    fn parameters_parse_with_defaults_and_reject_unknown_fields() {
        let p: IntegrateAndFire = toml::from_str("reset = \"hard\"\nfire = \">\"").unwrap();
        assert_eq!(p, IntegrateAndFire { reset: Reset::Hard, fire: FireRule::Greater, ..Default::default() });
        assert!(toml::from_str::<IntegrateAndFire>("max_spikes = 2").is_err(), "burst is its own kind");
    }
}
