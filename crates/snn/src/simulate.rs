//! Layer-by-layer simulation with T folded into the batch dimension.
//!
//! For a chunk of `c` steps the input image batch `[B, C, H, W]` is repeated to
//! `[c·B, C, H, W]` (direct/analog input coding, step-major), the network runs once, and at
//! every activation slot the neurons scan over the `c` steps carrying their state across
//! chunks. This is exactly the step-by-step dynamics because the network is feed-forward.
//! The last layer stays analog; its outputs are accumulated over time, giving the
//! prediction at every t ≤ T from one run.

use burn::prelude::*;
use zoo::{Convertible, ForwardCtx, Network, SlotHook, tensor_from, tensor_values};

use crate::{LayerNeurons, NeuronLayerSpec, OmegaStats};

/// A converted network: the (BN-folded) ANN weights plus one neuron layer per slot.
#[derive(Debug, Clone)]
pub struct SpikingNetwork {
    /// Weights used for every conv/linear.
    pub model: Network,
    /// One spec per activation slot, in slot order.
    pub layers: Vec<NeuronLayerSpec>,
    /// Delayed evaluation (paper 002): the prediction at step t ignores the first `t_d` steps'
    /// outputs, i.e. sums steps t_d+1..=t; when t < t_d + 4 it sums the last 4 steps
    /// (max(t−4, 0)+1..=t). `None`: sum of all steps 1..=t.
    pub readout_delay: Option<usize>,
}

impl SpikingNetwork {
    /// A network with the plain (sum over all steps) readout.
    pub fn new(model: Network, layers: Vec<NeuronLayerSpec>) -> Self {
        Self { model, layers, readout_delay: None }
    }

    /// Number of leading steps (0-based count) excluded from the readout at step `t` (1-based).
    pub fn readout_skip(&self, t: usize) -> usize {
        match self.readout_delay {
            None => 0,
            Some(d) if t >= d + 4 => d,
            Some(_) => t.saturating_sub(4),
        }
    }
}

/// What one simulated batch produced.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOutput {
    /// Number of correctly classified samples after each step t = 1..T.
    pub correct_at_t: Vec<u64>,
    /// Samples in the batch.
    pub samples: u64,
    /// Per slot: spike counts per step, summed over the batch.
    pub spikes: Vec<Vec<u64>>,
    /// Per slot: neurons per sample.
    pub neurons: Vec<u64>,
    /// Accumulated output (sum over steps) after T steps, `[batch × classes]`.
    pub final_output: Vec<f32>,
    /// Per slot: the dynamic-threshold factor ω per step t = 1..T over the batch's samples
    /// (mean/min/max/count; merge batches with [`OmegaStats::merge`]). Empty for slots
    /// without the dynamic threshold.
    pub omega: Vec<Vec<OmegaStats>>,
}

struct SimHook {
    specs: Vec<NeuronLayerSpec>,
    state: Vec<Option<LayerNeurons>>,
    batch: usize,
    total_steps: usize,
    /// Per slot: `Some(sum over steps of the output)`, `[batch × channels × inner]`, when recorded.
    records: Vec<Option<Vec<f32>>>,
    /// When set: slots from this one on pass their input through unchanged, and this slot's
    /// inputs are appended to `captured` (step-major).
    capture: Option<usize>,
    captured: Vec<f32>,
    /// `[channels, h·w]` of the captured slot.
    captured_shape: [usize; 2],
}

impl SlotHook for SimHook {
    fn apply(&mut self, slot: usize, x: Tensor<4>) -> Tensor<4> {
        let dims = x.dims();
        let device = x.device();
        let [_, c, h, w] = dims;
        if let Some(target) = self.capture {
            if slot == target {
                self.captured.extend(tensor_values(x.clone()));
                self.captured_shape = [c, h * w];
            }
            if slot >= target {
                return x;
            }
        }
        let state = self.state[slot]
            .get_or_insert_with(|| LayerNeurons::new(self.specs[slot].clone(), self.batch, c, h * w, self.total_steps));
        let mut data = tensor_values(x);
        state.run(&mut data);
        if let Some(rec) = self.records[slot].as_mut() {
            let n = self.batch * c * h * w;
            rec.resize(n, 0.0);
            for step in data.chunks(n) {
                for (r, v) in rec.iter_mut().zip(step) {
                    *r += v;
                }
            }
        }
        tensor_from(data, dims, &device)
    }
}

/// Simulates one batch for `timesteps` steps, `chunk` steps per network pass.
/// `images`: `[batch, C, H, W]` (normalised); `labels`: `batch` class indices.
pub fn simulate_batch(
    net: &SpikingNetwork,
    images: Tensor<4>,
    labels: &[i64],
    timesteps: usize,
    chunk: usize,
) -> SimOutput {
    simulate_recording(net, images, labels, timesteps, chunk, &[]).0
}

/// As [`simulate_batch`], and also returns the time-averaged output (Σ_t s·θ / T) of each slot
/// in `record`, `[batch × channels × h × w]` each (empty for slots not recorded).
pub fn simulate_recording(
    net: &SpikingNetwork,
    images: Tensor<4>,
    labels: &[i64],
    timesteps: usize,
    chunk: usize,
    record: &[usize],
) -> (SimOutput, Vec<Vec<f32>>) {
    let [batch, ..] = images.dims();
    assert_eq!(batch, labels.len(), "labels and images differ in batch size");
    let slots = net.layers.len();
    let records = (0..slots).map(|s| record.contains(&s).then(Vec::new)).collect();
    let mut hook = SimHook {
        specs: net.layers.clone(),
        state: vec![None; slots],
        batch,
        total_steps: timesteps,
        records,
        capture: None,
        captured: Vec::new(),
        captured_shape: [0, 0],
    };
    let mut acc: Vec<f32> = Vec::new();
    // Cumulative outputs after each step (only kept for delayed readouts).
    let mut cumulative: Vec<Vec<f32>> = Vec::new();
    let mut correct_at_t = Vec::with_capacity(timesteps);
    let chunk = chunk.clamp(1, timesteps.max(1));
    let mut t = 0;
    while t < timesteps {
        let steps = chunk.min(timesteps - t);
        let x = images.clone().repeat_dim(0, steps);
        let out = {
            let mut ctx = ForwardCtx::with_hook(&mut hook);
            net.model.forward_ctx(x, &mut ctx)
        };
        let [_, classes] = out.dims();
        let out = tensor_values(out);
        if acc.is_empty() {
            acc = vec![0.0; batch * classes];
        }
        for step in out.chunks(batch * classes) {
            for (a, o) in acc.iter_mut().zip(step) {
                *a += o;
            }
            let now = correct_at_t.len() + 1;
            let skip = net.readout_skip(now);
            let correct = if skip == 0 {
                count_correct(&acc, classes, labels)
            } else {
                let window: Vec<f32> = acc.iter().zip(&cumulative[skip - 1]).map(|(a, c)| a - c).collect();
                count_correct(&window, classes, labels)
            };
            if net.readout_delay.is_some() {
                cumulative.push(acc.clone());
            }
            correct_at_t.push(correct as u64);
        }
        t += steps;
    }
    let omega = hook.state.iter().map(|s| s.as_ref().map(|s| s.omega.clone()).unwrap_or_default()).collect();
    let (spikes, neurons) = hook
        .state
        .into_iter()
        .map(|s| {
            s.map(|s| {
                let n = s.neurons_per_sample() as u64;
                (s.spikes_per_step, n)
            })
            .unwrap_or_default()
        })
        .unzip();
    let means = hook
        .records
        .into_iter()
        .map(|r| r.map(|v| v.into_iter().map(|x| x / timesteps as f32).collect()).unwrap_or_default())
        .collect();
    (SimOutput { correct_at_t, samples: batch as u64, spikes, neurons, final_output: acc, omega }, means)
}

/// The input (pre-activation) of slot `slot` at every step t = 1..`timesteps` when the slots
/// before it spike, `[timesteps, batch, channels, h·w]` (step-major), and the slot's
/// `[channels, h·w]`. Slots from `slot` on are not simulated (their neurons are bypassed), so
/// this is the input the slot's neurons would receive whatever their own parameters: a
/// layer-by-layer calibration can replay it through candidate neurons.
pub fn simulate_slot_input(
    net: &SpikingNetwork,
    images: Tensor<4>,
    timesteps: usize,
    chunk: usize,
    slot: usize,
) -> (Vec<f32>, [usize; 2]) {
    let [batch, ..] = images.dims();
    let slots = net.layers.len();
    assert!(slot < slots, "slot {slot} out of range ({slots} slots)");
    let mut hook = SimHook {
        specs: net.layers.clone(),
        state: vec![None; slots],
        batch,
        total_steps: timesteps,
        records: vec![None; slots],
        capture: Some(slot),
        captured: Vec::new(),
        captured_shape: [0, 0],
    };
    let chunk = chunk.clamp(1, timesteps.max(1));
    let mut t = 0;
    while t < timesteps {
        let steps = chunk.min(timesteps - t);
        let x = images.clone().repeat_dim(0, steps);
        let mut ctx = ForwardCtx::with_hook(&mut hook);
        let _ = net.model.forward_ctx(x, &mut ctx);
        t += steps;
    }
    (hook.captured, hook.captured_shape)
}

/// Samples whose row of `scores` (`[batch × classes]`) has its maximum at the label.
fn count_correct(scores: &[f32], classes: usize, labels: &[i64]) -> usize {
    scores.chunks(classes).zip(labels).filter(|(row, label)| argmax(row) == **label as usize).count()
}

/// Index of the largest value (first on ties).
pub(crate) fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}
