//! `ilif-decode`: the output layer integrates like an iLIF neuron's phase I (Liu et al. 2022,
//! SpikeConverter): a ← k·a + o(t), so after the window
//! ```text
//! ŷ(T) = argmax Σ_{t≤T} k^{T−t}·o(t)
//! ```
//! which decodes spike trains whose step t weighs k^{T−t} (the `ilif` neuron's). The
//! prediction at t < T decodes an incomplete window: only t = T is meaningful, and networks
//! of `ilif` neurons are simulated once per T. k = 1 is the plain sum (`accumulate`).

use serde::{Deserialize, Serialize};

use super::{Readout, ReadoutState, RegisteredReadout, argmax_rows};
use crate::neuron::config_table;

fn two() -> f32 {
    2.0
}

/// The decoding readout's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IlifDecode {
    /// The weight ratio of consecutive steps (the `ilif` neurons' k; default 2).
    #[serde(default = "two")]
    pub k: f32,
}

impl Default for IlifDecode {
    fn default() -> Self {
        Self { k: two() }
    }
}

impl RegisteredReadout for IlifDecode {
    const KIND: &'static str = "ilif-decode";
    const DESCRIPTION: &'static str = "argmax of Σ_t k^(T-t)·o(t), decoding iLIF spike trains (Liu et al. 2022)";
    fn check(&self) -> Result<(), String> {
        if self.k >= 1.0 && self.k <= 2.0 { Ok(()) } else { Err(format!("k must be in [1, 2]; got {}", self.k)) }
    }
}

impl Readout for IlifDecode {
    fn kind(&self) -> &'static str {
        Self::KIND
    }
    fn config(&self) -> toml::Table {
        config_table(Self::KIND, self)
    }
    fn new_state(&self, batch: usize, classes: usize) -> Box<dyn ReadoutState> {
        Box::new(IlifDecodeState { acc: vec![0.0; batch * classes], classes, k: self.k as f64 })
    }
}

struct IlifDecodeState {
    acc: Vec<f64>,
    classes: usize,
    k: f64,
}

impl ReadoutState for IlifDecodeState {
    fn push(&mut self, _t: usize, output: &[f32]) {
        for (a, o) in self.acc.iter_mut().zip(output) {
            *a = self.k * *a + *o as f64;
        }
    }
    fn predictions(&self) -> Vec<usize> {
        let scores: Vec<f32> = self.acc.iter().map(|a| *a as f32).collect();
        argmax_rows(&scores, self.classes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighs_step_t_by_k_to_the_remaining_steps() {
        // Two classes over 3 steps: class 1 wins only once the first step counts 4×.
        let r = IlifDecode::default();
        let mut s = r.new_state(1, 2);
        s.push(1, &[0.0, 1.0]);
        s.push(2, &[1.0, 0.0]);
        s.push(3, &[1.5, 0.0]);
        // class 0: 2·1 + 1.5 = 3.5; class 1: 4·1 = 4.
        assert_eq!(s.predictions(), vec![1]);
        let mut plain = IlifDecode { k: 1.0 }.new_state(1, 2);
        for (t, o) in [[0.0, 1.0], [1.0, 0.0], [1.5, 0.0]].iter().enumerate() {
            plain.push(t + 1, o);
        }
        assert_eq!(plain.predictions(), vec![0], "k = 1 is the plain sum");
    }
}
