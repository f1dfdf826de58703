//! `burst`: an integrate-and-fire neuron that may emit up to γ spikes in one step (burst
//! spikes, Li & Zeng 2022; also the multi-spike neuron of adaptive firing without a dynamic
//! threshold).
//!
//! Per element, at every step t = 1..T:
//! ```text
//! x'  = x(t) + b_c + [input_shift] θ/(2T)
//! v   = v + x'
//! s   = clamp(floor(v/θ), 0, γ)                (γ = `max_spikes`)
//! v   = v − s·θ   (reset = "soft")   |   v = 0 if s > 0   (reset = "hard")
//! out = s·θ
//! ```
//! Rate (soft reset, constant y): ȳ = (θ/T)·floor(clamp((y + o)/θ, 0, γ)·T), i.e. the neuron
//! represents activations up to γ·θ.
//!
//! Spec: `[method.neuron] kind = "burst"`, `max_spikes = γ` (default 2), and the `if`
//! neuron's `reset`, `v_init`, `fire`, `input_shift`.

use serde::{Deserialize, Serialize};

use super::integrate_and_fire::{IfState, IntegrateAndFire};
use super::{
    FireRule, InitPotential, LayerShape, NeuronLayerSpec, NeuronModel, NeuronState, RateModel, RegisteredNeuron,
    Reset, RunInfo, config_table,
};

fn two() -> u32 {
    2
}

/// The burst neuron's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    /// γ: spikes per step at most (≥ 1; default 2).
    #[serde(default = "two")]
    pub max_spikes: u32,
    /// `soft` or `hard`.
    #[serde(default)]
    pub reset: Reset,
    /// `zero` or `half`.
    #[serde(default)]
    pub v_init: InitPotential,
    /// `">="` or `">"` (only decides whether v = θ exactly fires when γ = 1).
    #[serde(default)]
    pub fire: FireRule,
    /// Add θ/(2T) to the input every step.
    #[serde(default)]
    pub input_shift: bool,
}

impl Default for Burst {
    fn default() -> Self {
        Self {
            max_spikes: two(),
            reset: Reset::Soft,
            v_init: InitPotential::Zero,
            fire: FireRule::GreaterEqual,
            input_shift: false,
        }
    }
}

impl Burst {
    /// γ spikes per step with the default `if` settings otherwise.
    pub fn with_max_spikes(max_spikes: u32) -> Self {
        Self { max_spikes, ..Self::default() }
    }

    fn base(&self) -> IntegrateAndFire {
        IntegrateAndFire { reset: self.reset, v_init: self.v_init, fire: self.fire, input_shift: self.input_shift }
    }
}

impl RegisteredNeuron for Burst {
    const KIND: &'static str = "burst";
    const DESCRIPTION: &'static str = "integrate-and-fire with up to γ = max_spikes spikes per step (Li & Zeng 2022)";
    fn check(&self) -> Result<(), String> {
        if self.max_spikes == 0 { Err("max_spikes must be at least 1".into()) } else { Ok(()) }
    }
}

impl NeuronModel for Burst {
    fn kind(&self) -> &'static str {
        Self::KIND
    }
    fn config(&self) -> toml::Table {
        config_table(Self::KIND, self)
    }
    fn new_state(&self, layer: &NeuronLayerSpec, shape: LayerShape, run: RunInfo) -> Box<dyn NeuronState> {
        Box::new(IfState::new(layer, shape, run, self.base(), self.max_spikes))
    }
    fn depends_on_timesteps(&self) -> bool {
        self.input_shift
    }
    fn rate_model(&self) -> RateModel {
        self.base().rate_model_with(self.max_spikes)
    }
    fn plain_if(&self) -> Result<super::PlainIf, String> {
        Err("NIR 1.0 has no multi-spike (burst) neuron: a step may carry up to γ spikes".into())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::neuron::integrate_and_fire::tests::run_one;

    #[test]
    fn emits_multiple_spikes_up_to_gamma() {
        let (out, spikes) = run_one(Arc::new(Burst::with_max_spikes(2)), 1.0, &[2.5, 2.5, 0.0]);
        // v: 2.5 → s=2, v=.5; 3.0 → s=2 (clipped), v=1.0; 1.0 → s=1
        assert_eq!(out, vec![2.0, 2.0, 1.0]);
        assert_eq!(spikes, vec![2, 2, 1]);
    }

    #[test]
    fn firing_rate_equals_the_rate_model_up_to_gamma_theta() {
        for gamma in [1u32, 2, 3, 7] {
            let model = Burst::with_max_spikes(gamma);
            let rate = model.rate_model();
            for &x in &[0.0f32, 0.33, 0.91, 1.77, 2.63, 6.5, 9.0] {
                // (inputs away from multiples of θ/T, where float rounding decides the floor)
                for steps in [1usize, 5, 32] {
                    let (out, _) = run_one(Arc::new(model), 1.0, &vec![x; steps]);
                    let mean = out.iter().sum::<f32>() / steps as f32;
                    let closed = rate.average_output(x, 1.0, steps, 0.0);
                    assert!((mean - closed).abs() < 1e-4, "γ={gamma} x={x} T={steps}: {mean} vs {closed}");
                    assert!(mean <= gamma as f32 + 1e-6);
                }
            }
        }
    }

    #[test]
    fn parses_with_defaults() {
        let b: Burst = toml::from_str("max_spikes = 3\nv_init = \"half\"").unwrap();
        assert_eq!(b, Burst { max_spikes: 3, v_init: InitPotential::Half, ..Burst::default() });
        assert_eq!(toml::from_str::<Burst>("").unwrap().max_spikes, 2);
    }
}
