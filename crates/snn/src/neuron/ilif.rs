//! `ilif`: the inverse-leaky integrate-and-fire neuron with temporal separation (Liu et al.
//! 2022, SpikeConverter). Each layer works in windows of T steps: it integrates its whole
//! input window without firing (phase I), then fires from the stored potential without input
//! (phase II), so a layer's output lags its input by T steps.
//!
//! The paper's equations, on the raw potential v (window steps t = 1..T, k > 1):
//! ```text
//! phase I  (input):     v ← k·v + I(t)                           (no firing)
//! phase II (no input):  ṽ = k·v;  Y = [ṽ ≥ V′th];  v = ṽ − Y·V′th,   V′th = k^T·V_th
//! ```
//! A spike train Y then carries Σ_j Y_j·k^{T−j}·V_th, and the identity Σ_i w_i·Σ_t X_i[t]·k^{T−t}
//! = V_th·Σ_t Y[t]·k^{T−t} (Eq. 8) holds up to the last step's remainder. Negative potentials
//! never fire (ReLU for free); potentials above the range fire at every step (clipping).
//! k ≤ 2 keeps the soft reset contracting (Eq. 12); k = 2 is a T-bit binary expansion.
//!
//! Here, as everywhere in this project, a spike carries amplitude θ and values are normalised
//! by the window: with w_j = k^{T−j}/S and S = Σ_j k^{T−j} (w_j = 1/T for rate coding), the
//! layer integrates u = Σ_t w_t·(x(t) + b_c) + v₀ (so an analog input or a bias presented at
//! every step counts once), and phase II is the greedy expansion of u in the weights θ·w_j:
//! ```text
//! r = u;  for j = 1..T:  Y_j = [r ≥ θ·w_j];  r = r − Y_j·θ·w_j;  out_j = Y_j·θ
//! ```
//! This is the paper's recursion with v = S·k^{j}·r and V_th = θ (tested below); the train
//! decodes to θ·Σ_j Y_j·w_j ∈ [0, θ], i.e. θ is the largest value a layer can pass on, as for
//! rate-coded neurons. The output layer stays analog and is read out with the same weights
//! (the `ilif-decode` readout).
//!
//! Simulation: the layer needs its whole input window before its first output, so the
//! simulator hands it all T steps in one call and the T outputs replace them in place; the
//! pipelined latency (T per layer) is reported, not simulated step by step.
//!
//! Spec: `[method.neuron] kind = "ilif"`, `k` (default 2), `fire` (`">="` default).

use serde::{Deserialize, Serialize};

use super::{
    Coding, FireRule, LayerShape, NeuronLayerSpec, NeuronModel, NeuronState, RateModel, RegisteredNeuron, RunInfo,
    config_table,
};

fn two() -> f32 {
    2.0
}

/// The iLIF neuron's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InverseLif {
    /// The damping factor k, 1 < k ≤ 2 (k = 2: binary coding, the paper's optimum).
    #[serde(default = "two")]
    pub k: f32,
    /// `">="` (default) or `">"`.
    #[serde(default)]
    pub fire: FireRule,
}

impl Default for InverseLif {
    fn default() -> Self {
        Self { k: two(), fire: FireRule::GreaterEqual }
    }
}

impl RegisteredNeuron for InverseLif {
    const KIND: &'static str = "ilif";
    const DESCRIPTION: &'static str =
        "inverse-leaky integrate-and-fire, integrate T steps then fire T steps, spikes weighted k^(T-t) (Liu et al. 2022)";
    fn check(&self) -> Result<(), String> {
        if self.k > 1.0 && self.k <= 2.0 {
            Ok(())
        } else {
            Err(format!("k must be in (1, 2] (the soft reset must contract, Liu et al. 2022 Eq. 12); got {}", self.k))
        }
    }
}

impl NeuronModel for InverseLif {
    fn kind(&self) -> &'static str {
        Self::KIND
    }
    fn config(&self) -> toml::Table {
        config_table(Self::KIND, self)
    }
    fn new_state(&self, layer: &NeuronLayerSpec, shape: LayerShape, run: RunInfo) -> Box<dyn NeuronState> {
        let timesteps = run.timesteps.max(1);
        let coding = Coding::InverseLeaky { k: self.k };
        let weights = coding.window_weights(timesteps);
        let per_sample = shape.per_sample();
        let offset = (0..per_sample)
            .map(|e| {
                let c = e / shape.inner.max(1);
                layer.bias.as_ref().map_or(0.0, |b| b[c] as f64) + layer.v_init.as_ref().map_or(0.0, |v| v[e] as f64)
            })
            .collect();
        let theta = (0..shape.channels).map(|c| layer.threshold(c)).collect();
        Box::new(InverseLifState { model: *self, shape, weights, offset, theta, done: false })
    }
    fn latency(&self, timesteps: usize) -> usize {
        timesteps
    }
    fn depends_on_timesteps(&self) -> bool {
        true
    }
    fn rate_model(&self) -> RateModel {
        RateModel {
            max_spikes_per_step: 1,
            input_shift: false,
            initial_potential: 0.0,
            coding: Coding::InverseLeaky { k: self.k },
        }
    }
    fn plain_if(&self) -> Result<super::PlainIf, String> {
        Err("NIR 1.0 has no two-phase (integrate-then-fire) neuron with weighted, time-coded spikes".into())
    }
}

struct InverseLifState {
    model: InverseLif,
    shape: LayerShape,
    /// w_j, j = 1..T.
    weights: Vec<f64>,
    /// Per element of a sample: b_c + v₀ (added to the integrated input once).
    offset: Vec<f64>,
    /// Per channel.
    theta: Vec<f32>,
    /// The window has been processed (a second call would be a new window).
    done: bool,
}

impl NeuronState for InverseLifState {
    fn run(&mut self, data: &mut [f32], spikes: &mut Vec<u32>) {
        let n = self.shape.len();
        let steps = self.weights.len();
        assert!(
            !self.done && data.len() == steps * n,
            "the ilif neuron takes its whole window of {steps} steps in one call (the simulator's windowed mode)"
        );
        self.done = true;
        let per_sample = self.shape.per_sample().max(1);
        let inner = self.shape.inner.max(1);
        let mut counts = vec![0u32; steps * self.shape.batch];
        for e in 0..n {
            let sample = e / per_sample;
            let within = e % per_sample;
            // Phase I: u = Σ_t w_t·x(t) + b_c + v₀.
            let mut u = self.offset[within];
            for (t, w) in self.weights.iter().enumerate() {
                u += w * data[t * n + e] as f64;
            }
            // Phase II: the greedy expansion of u in θ·w_j.
            let theta = self.theta[if self.theta.len() == 1 { 0 } else { within / inner }];
            for (j, w) in self.weights.iter().enumerate() {
                let weight = theta as f64 * w;
                let fires = match self.model.fire {
                    FireRule::GreaterEqual => u >= weight,
                    FireRule::Greater => u > weight,
                };
                data[j * n + e] = if fires { theta } else { 0.0 };
                if fires {
                    u -= weight;
                    counts[j * self.shape.batch + sample] += 1;
                }
            }
        }
        spikes.extend(counts);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Runs one neuron (threshold `theta`) on the window `input`; returns its outputs and spikes.
    fn run_window(model: InverseLif, theta: f32, input: &[f32]) -> (Vec<f32>, Vec<u32>) {
        let layer = NeuronLayerSpec::new(Arc::new(model), vec![theta]);
        let shape = LayerShape { batch: 1, channels: 1, inner: 1 };
        let mut state = layer.new_state(shape, RunInfo { timesteps: input.len(), seed: 0 });
        let mut data = input.to_vec();
        let mut spikes = Vec::new();
        state.run(&mut data, &mut spikes);
        (data, spikes)
    }

    /// The paper's recursion on the raw potential (f64), spikes of unit amplitude.
    fn paper_recursion(k: f64, v_th: f64, input: &[f64]) -> Vec<u32> {
        let t = input.len() as i32;
        let mut v = 0.0;
        for x in input {
            v = k * v + x;
        }
        let v_th_prime = k.powi(t) * v_th;
        let mut out = Vec::new();
        for _ in 0..t {
            let tilde = k * v;
            let y = tilde >= v_th_prime;
            v = tilde - if y { v_th_prime } else { 0.0 };
            out.push(y as u32);
        }
        out
    }

    #[test]
    fn matches_the_papers_raw_recursion() {
        // The same inputs and V_th = θ: the paper's raw potential is S times the normalised one.
        let mut rng = crate::SimRng::new(7);
        for k in [1.25f32, 1.6, 2.0] {
            for t in [1usize, 3, 6, 10] {
                let model = InverseLif { k, ..InverseLif::default() };
                for _ in 0..40 {
                    let input: Vec<f32> = (0..t).map(|_| 2.4 * rng.next_f32() - 0.7).collect();
                    let theta = 0.3 + rng.next_f32();
                    let (_, ours) = run_window(model, theta, &input);
                    let raw: Vec<f64> = input.iter().map(|&x| x as f64).collect();
                    assert_eq!(ours, paper_recursion(k as f64, theta as f64, &raw), "k={k} T={t} θ={theta} {input:?}");
                }
            }
        }
    }

    #[test]
    fn k2_decodes_to_the_t_bit_quantisation_of_the_input() {
        // k = 2: the train decodes to θ·floor(clamp(u/θ, 0, 1)·(2^T − 1))/(2^T − 1).
        for t in [1usize, 2, 4, 8, 12] {
            let levels = ((1u64 << t) - 1) as f64;
            for i in 0..200 {
                let u = -0.5 + 2.0 * (i as f32 + 0.37) / 200.0;
                let theta = 1.3f32;
                let (out, spikes) = run_window(InverseLif::default(), theta, &vec![u; t]);
                let weights: Vec<f64> = (1..=t).map(|j| Coding::InverseLeaky { k: 2.0 }.step_weight(j, t)).collect();
                let decoded: f64 = out.iter().zip(&weights).map(|(o, w)| *o as f64 * w).sum();
                let expected = theta as f64 * ((u as f64 / theta as f64).clamp(0.0, 1.0) * levels).floor() / levels;
                assert!((decoded - expected).abs() < 1e-6, "T={t} u={u}: {decoded} vs {expected}");
                assert_eq!(spikes.iter().sum::<u32>() as usize, out.iter().filter(|o| **o > 0.0).count());
                // The closed form calibrations use says the same.
                let closed = InverseLif::default().rate_model().average_output(u, theta, t, 0.0) as f64;
                assert!((closed - expected).abs() < 1e-5, "rate model T={t} u={u}: {closed} vs {expected}");
            }
        }
    }

    #[test]
    fn error_is_bounded_by_the_last_weight_and_shrinks_with_t() {
        // Inside the range the remainder after the window is below the last step's weight
        // θ·w_T = θ/S, so the error bound halves with every extra step for k = 2 and
        // shrinks more slowly for smaller k.
        let theta = 1.0f32;
        for k in [1.5f32, 2.0] {
            let model = InverseLif { k, ..InverseLif::default() };
            let mut last_bound = f64::INFINITY;
            for t in [2usize, 4, 6, 8, 12] {
                let bound = theta as f64 * Coding::InverseLeaky { k }.step_weight(t, t);
                assert!(bound < last_bound);
                last_bound = bound;
                for i in 0..100 {
                    let u = (i as f32 + 0.5) / 100.0 * 0.999;
                    let decoded = model.rate_model().average_output(u, theta, t, 0.0) as f64;
                    assert!(decoded <= u as f64 + 1e-9 && u as f64 - decoded < bound + 1e-9, "k={k} T={t} u={u}");
                }
            }
        }
    }

    #[test]
    fn negative_inputs_never_fire_and_large_ones_clip() {
        let (out, spikes) = run_window(InverseLif::default(), 1.0, &[-0.2; 6]);
        assert!(out.iter().all(|o| *o == 0.0) && spikes.iter().all(|s| *s == 0));
        let (out, _) = run_window(InverseLif::default(), 1.0, &[5.0; 6]);
        assert!(out.iter().all(|o| *o == 1.0), "saturates: every step fires");
    }

    #[test]
    fn k_outside_1_2_is_rejected() {
        for k in [0.5f32, 1.0, 2.5] {
            assert!(InverseLif { k, ..InverseLif::default() }.check().is_err(), "k = {k}");
        }
        assert!(InverseLif::default().check().is_ok());
    }
}
