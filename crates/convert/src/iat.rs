//! Input-aware Adaptive Timesteps (IAT; Wang et al. 2024, Adaptive Calibration, §3.3): per-step
//! exit thresholds fitted on training images, used by the `early-exit` readout.
//!
//! On the fitting images the SNN runs to T; at each step t the normalised entropy of the
//! cumulative logits, H_t = −Σ p log p / log C with p = softmax(Σ_{k≤t} o(k)) (with
//! `ExitScore::Average`: of the time-averaged logits (1/t)·Σ_{k≤t} o(k)), is averaged over
//! the samples classified correctly at that step (Ē_t), and
//! ```text
//! α_t = α_base + β·exp(−(Ē_t − Ē_min)/δ)          (Ē_min = min_t Ē_t)
//! ```
//! (the paper's Eq. 18; CIFAR defaults α_base = 0.6, β = 0.4, δ = 1). A step at which no sample
//! is correct gets α_t = 1 (never exit there), as in the authors' code. The readout exits a sample
//! at the first t with 1 − H_t > α_t. The thresholds rise with t as the mean entropy falls:
//! early steps, whose mean entropy is far above its minimum, get thresholds near α_base (a
//! confident sample may leave early), the step of least entropy gets α_base + β (with the
//! defaults 1: nobody exits there), as the paper describes ("the threshold progressively
//! increases with each timestep") and the authors' code computes.
//!
//! "Correct" needs labels, which calibration images do not carry: a sample counts as correct at
//! step t when the SNN's prediction agrees with the ANN's (the ANN is the target a conversion
//! reproduces; on training images it is right for all but a few per cent).

use std::sync::{Arc, Mutex};

use burn::prelude::*;
use snn::readout::early_exit::ExitScore;
use snn::readout::{Readout, ReadoutState, argmax};
use snn::{SimConfig, SpikingNetwork, simulate};
use zoo::tensor_values;

/// The parameters of Eq. 18.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExitRule {
    /// α_base.
    pub alpha_base: f64,
    /// β.
    pub beta: f64,
    /// δ (> 0).
    pub delta: f64,
}

impl ExitRule {
    /// α_t of every step from the mean entropies Ē_t (None: no correct sample at that step).
    pub fn thresholds(&self, mean_entropy: &[Option<f64>]) -> Vec<f32> {
        let min = mean_entropy.iter().flatten().copied().fold(f64::INFINITY, f64::min);
        mean_entropy
            .iter()
            .map(|e| match e {
                Some(e) => (self.alpha_base + self.beta * (-(e - min) / self.delta).exp()).min(1.0) as f32,
                None => 1.0,
            })
            .collect()
    }
}

/// Per step t = 1..T: the mean normalised entropy Ē_t of the cumulative logits over the samples
/// whose prediction at t agrees with the ANN's (None where none does), measured on `batches`,
/// of the output `score` (the sum, as the paper, or the average).
pub fn mean_entropy_per_step(
    net: &SpikingNetwork,
    batches: &[Tensor<4>],
    timesteps: usize,
    score: ExitScore,
) -> Vec<Option<f64>> {
    let mut sums = vec![(0f64, 0u64); timesteps];
    for images in batches {
        let logits = tensor_values(net.model.forward(images.clone()));
        let [batch, ..] = images.dims();
        let classes = logits.len() / batch.max(1);
        let ann: Vec<usize> = logits.chunks(classes.max(1)).map(argmax).collect();
        let probe = EntropyProbe { steps: StepRecords::default(), score };
        let steps = probe.steps.clone();
        let mut probed = net.clone();
        probed.readout = Arc::new(probe);
        let labels: Vec<i64> = ann.iter().map(|&c| c as i64).collect();
        let _ = simulate(&probed, images.clone(), &labels, &SimConfig::new(timesteps, timesteps.min(16)));
        let steps = steps.lock().expect("probe lock");
        for (t, per_sample) in steps.iter().enumerate().take(timesteps) {
            for ((entropy, prediction), target) in per_sample.iter().zip(&ann) {
                if prediction == target {
                    sums[t].0 += entropy;
                    sums[t].1 += 1;
                }
            }
        }
    }
    sums.into_iter().map(|(s, n)| (n > 0).then(|| s / n as f64)).collect()
}

/// `[step][sample]` (H_t, prediction).
type StepRecords = Arc<Mutex<Vec<Vec<(f64, usize)>>>>;

/// A readout that predicts as `accumulate` does and records, at every step, each sample's
/// normalised entropy and prediction (the fit's measurement; not a spec readout).
#[derive(Debug)]
struct EntropyProbe {
    steps: StepRecords,
    score: ExitScore,
}

impl Readout for EntropyProbe {
    fn kind(&self) -> &'static str {
        "entropy-probe"
    }
    fn config(&self) -> toml::Table {
        snn::kind_table("entropy-probe")
    }
    fn new_state(&self, batch: usize, classes: usize) -> Box<dyn ReadoutState> {
        Box::new(ProbeState { sum: vec![0.0; batch * classes], classes, sink: self.steps.clone(), score: self.score })
    }
}

struct ProbeState {
    sum: Vec<f32>,
    classes: usize,
    sink: StepRecords,
    score: ExitScore,
}

impl ReadoutState for ProbeState {
    fn push(&mut self, t: usize, output: &[f32]) {
        for (a, o) in self.sum.iter_mut().zip(output) {
            *a += o;
        }
        let c = self.classes.max(1);
        let score = self.score;
        let step = self.sum.chunks(c).map(|row| (1.0 - score.confidence(row, t) as f64, argmax(row))).collect();
        self.sink.lock().expect("probe lock").push(step);
    }
    fn predictions(&self) -> Vec<usize> {
        self.sum.chunks(self.classes.max(1)).map(argmax).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_follow_eq_18() {
        let rule = ExitRule { alpha_base: 0.6, beta: 0.4, delta: 1.0 };
        let a = rule.thresholds(&[Some(0.9), Some(0.5), Some(0.2), None]);
        assert!((a[0] as f64 - (0.6 + 0.4 * (-0.7f64).exp())).abs() < 1e-6);
        assert!((a[1] as f64 - (0.6 + 0.4 * (-0.3f64).exp())).abs() < 1e-6);
        // At the minimum entropy: α_base + β.
        assert!((a[2] - 1.0).abs() < 1e-6);
        assert_eq!(a[3], 1.0);
        // Rising thresholds as the entropy falls.
        assert!(a[0] < a[1] && a[1] < a[2]);
    }
}
