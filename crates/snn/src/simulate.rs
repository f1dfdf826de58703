//! Layer-by-layer simulation with T folded into the batch dimension.
//!
//! For a chunk of `c` steps the input image batch `[B, C, H, W]` is repeated to
//! `[c·B, C, H, W]` (direct/analog input coding, step-major), the network runs once, and at
//! every activation slot the layer's neuron state scans over the `c` steps carrying its
//! state across chunks. This is exactly the step-by-step dynamics because the network is
//! feed-forward. The last layer stays analog; the network's readout turns its outputs into
//! a prediction at every coding step t ≤ T from one run.
//!
//! **Windowed neurons and latency.** A neuron model may declare that its output lags its input
//! by L_l steps (a two-phase integrate-then-fire neuron: L_l = T). Such a layer needs its
//! whole input window before its first output, so the run then passes all T steps at once
//! (chunk = T) and every layer maps its T input steps to T output steps in place: the data
//! flow of a pipelined implementation, in which layer l works on coding step t at global
//! step o_l + t, with every path (residual shortcuts included) delayed alike. The readout
//! sees the T output steps; the end-to-end latency L = Σ_l L_l is reported (the answer to a
//! window is ready at global step T + L), not simulated step by step, which would cost
//! (T + L)/T times as many network passes.
//!
//! **Spike counts** are kept per sample and step; a sample that a readout stops early (early
//! exit) has its spikes counted only up to its exit step.
//!
//! **Randomness** (stochastic neurons) comes from one stream per slot and batch seeded by
//! the network's seed, the batch's seed and the slot: the same spec and seeds give the same
//! spikes.

use std::sync::Arc;

use burn::prelude::*;
use zoo::{Convertible, ForwardCtx, Network, SlotHook, tensor_from, tensor_values};

use crate::device_steps::DeviceIf;
use crate::neuron::{Diagnostic, LayerShape, NeuronLayerSpec, NeuronState, RunInfo, layer_seed};
use crate::readout::accumulate::Accumulate;
use crate::readout::early_exit::StepConfidence;
use crate::readout::{Readout, ReadoutState};

/// A converted network: the (BN-folded) ANN weights, one neuron layer per slot and a readout.
#[derive(Debug, Clone)]
pub struct SpikingNetwork {
    /// Weights used for every conv/linear.
    pub model: Network,
    /// One spec per activation slot, in slot order.
    pub layers: Vec<NeuronLayerSpec>,
    /// How the output layer's steps become predictions.
    pub readout: Arc<dyn Readout>,
    /// Seed of the random streams of stochastic neurons.
    pub seed: u64,
}

impl SpikingNetwork {
    /// A network with the [`Accumulate`] readout and seed 0.
    pub fn new(model: Network, layers: Vec<NeuronLayerSpec>) -> Self {
        Self { model, layers, readout: Arc::new(Accumulate {}), seed: 0 }
    }

    /// End-to-end latency L in steps of a pipelined implementation: the answer to coding
    /// step t is ready at global step L + t.
    pub fn latency(&self, timesteps: usize) -> usize {
        self.layers.iter().map(|l| l.neuron.latency(timesteps)).sum()
    }

    /// Steps per network pass for a requested `chunk`: the whole window when a layer works in
    /// windows (a latency), else `chunk` within 1..=T.
    pub fn pass_steps(&self, timesteps: usize, chunk: usize) -> usize {
        if self.latency(timesteps) > 0 { timesteps.max(1) } else { chunk.clamp(1, timesteps.max(1)) }
    }

    /// Whether the dynamics depend on T (a neuron's θ/(2T) shift or phase length): such a
    /// network is simulated once per evaluated T.
    pub fn depends_on_timesteps(&self) -> bool {
        self.layers.iter().any(|l| l.neuron.depends_on_timesteps())
    }
}

/// What one simulation run does.
#[derive(Clone, Debug, PartialEq)]
pub struct SimConfig {
    /// The coding window T.
    pub timesteps: usize,
    /// Steps per network pass (memory vs passes; exact either way).
    pub chunk: usize,
    /// Seed of this batch (e.g. its index), mixed into every slot's random stream.
    pub batch_seed: u64,
    /// Slots whose time-averaged output is recorded (see [`simulate_recording`]).
    pub record: Vec<usize>,
    /// Record every neuron's first spike step ([`SimOutput::first_spike`]).
    pub first_spikes: bool,
    /// Coding steps (1-based) after which the readout's real-valued outputs are kept
    /// ([`SimOutput::outputs_at`]): what dense prediction scores.
    pub output_steps: Vec<usize>,
    /// Step the layers of plain integrate-and-fire neurons as tensor operations on the
    /// network's device instead of copying every layer's input to the host (for a GPU; the
    /// same spikes). Slots that are recorded or whose first spikes are asked for, and other
    /// neuron models, run on the host.
    pub neurons_on_device: bool,
}

impl SimConfig {
    /// T = `timesteps`, `chunk` steps per pass, batch seed 0, nothing recorded.
    pub fn new(timesteps: usize, chunk: usize) -> Self {
        Self {
            timesteps,
            chunk,
            batch_seed: 0,
            record: Vec::new(),
            first_spikes: false,
            output_steps: Vec::new(),
            neurons_on_device: false,
        }
    }
}

/// What one simulated batch produced.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOutput {
    /// Number of correctly classified samples after each coding step t = 1..T.
    pub correct_at_t: Vec<u64>,
    /// Samples in the batch.
    pub samples: u64,
    /// End-to-end latency L of a pipelined implementation (0 for rate coding): the answer to
    /// coding step t is ready at global step L + t.
    pub latency: usize,
    /// Per slot: spike counts per step 1..T of the slot's window, summed over the samples
    /// still running at that step (all of them without early exit).
    pub spikes: Vec<Vec<u64>>,
    /// Per sample: its spikes over all slots up to its exit step (or T).
    pub sample_spikes: Vec<u64>,
    /// Per sample: the coding step at which the readout stopped it (None: ran to T).
    pub exit_steps: Vec<Option<usize>>,
    /// With a readout that exits early: per sample and coding step t = 1..T, the confidence
    /// of its output summed up to t and the class that sum predicts
    /// (`readout::early_exit::StepConfidence`), whether or not the sample had exited by then
    /// (the network runs every sample to T); replays other exit rules without simulating
    /// again (`readout::early_exit::exit_step`). Empty for other readouts.
    pub confidence_trace: Vec<Vec<StepConfidence>>,
    /// Per slot: neurons per sample.
    pub neurons: Vec<u64>,
    /// Output summed over the coding steps, `[batch × classes]`.
    pub final_output: Vec<f32>,
    /// Per slot: the neuron model's per-step diagnostics (empty for models without any).
    pub diagnostics: Vec<Vec<Diagnostic>>,
    /// With [`SimConfig::first_spikes`]: per slot and neuron (`[batch × channels × inner]`), the
    /// step (1-based, of the layer's window) of its first spike, 0 if it never spiked; else empty.
    pub first_spike: Vec<Vec<u32>>,
    /// Per step of [`SimConfig::output_steps`] (in that order, steps past T left out): the
    /// step and the readout's outputs after it ([`ReadoutState::outputs`](crate::readout::ReadoutState::outputs)),
    /// `[batch × classes]`. Empty when the readout has no real-valued outputs.
    pub outputs_at: Vec<(usize, Vec<f32>)>,
}

struct SimHook<'a> {
    layers: &'a [NeuronLayerSpec],
    state: Vec<Option<Box<dyn NeuronState>>>,
    /// Per slot: `[steps × batch]` spikes per sample and step.
    spikes: Vec<Vec<u32>>,
    neurons: Vec<u64>,
    batch: usize,
    run: Vec<RunInfo>,
    /// Per slot: `Some(sum over steps of the output)`, `[batch × channels × inner]`, when recorded.
    records: Vec<Option<Vec<f32>>>,
    /// When set: slots from this one on pass their input through unchanged, and this slot's
    /// inputs are appended to `captured` (step-major).
    capture: Option<usize>,
    captured: Vec<f32>,
    /// `[channels, h·w]` of the captured slot.
    captured_shape: [usize; 2],
    /// Per slot and window step: the step's factor in the recorded time-average
    /// ([`Coding::mean_weights`]).
    mean_weights: Vec<Vec<f32>>,
    /// Per slot: first spike step per neuron, when asked for.
    first_spike: Option<Vec<Vec<u32>>>,
    /// Per slot: steps run so far.
    steps_seen: Vec<usize>,
    /// Per slot: the state of a layer stepped on the device ([`SimConfig::neurons_on_device`]).
    on_device: Vec<Option<DeviceIf>>,
    /// Whether plain integrate-and-fire layers step on the device.
    neurons_on_device: bool,
}

impl<'a> SimHook<'a> {
    fn new(net: &'a SpikingNetwork, batch: usize, config: &SimConfig) -> Self {
        let slots = net.layers.len();
        let run = (0..slots)
            .map(|slot| RunInfo { timesteps: config.timesteps, seed: layer_seed(net.seed, config.batch_seed, slot) })
            .collect();
        let mean_weights =
            net.layers.iter().map(|l| l.neuron.rate_model().coding.mean_weights(config.timesteps)).collect();
        Self {
            layers: &net.layers,
            state: (0..slots).map(|_| None).collect(),
            spikes: vec![Vec::new(); slots],
            neurons: vec![0; slots],
            batch,
            run,
            records: (0..slots).map(|s| config.record.contains(&s).then(Vec::new)).collect(),
            capture: None,
            captured: Vec::new(),
            captured_shape: [0, 0],
            mean_weights,
            first_spike: config.first_spikes.then(|| vec![Vec::new(); slots]),
            steps_seen: vec![0; slots],
            on_device: (0..slots).map(|_| None).collect(),
            neurons_on_device: config.neurons_on_device,
        }
    }
}

impl SlotHook for SimHook<'_> {
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
        let shape = LayerShape { batch: self.batch, channels: c, inner: h * w };
        self.neurons[slot] = shape.per_sample() as u64;
        let (layers, run) = (self.layers, &self.run);
        if self.neurons_on_device
            && self.records[slot].is_none()
            && self.first_spike.is_none()
            && let Ok(plain) = layers[slot].neuron.plain_if()
        {
            let dims = [self.batch, c, h, w];
            let state = self.on_device[slot]
                .get_or_insert_with(|| DeviceIf::new(&layers[slot], plain, dims, run[slot], &device));
            return state.run(x);
        }
        let state = self.state[slot].get_or_insert_with(|| layers[slot].new_state(shape, run[slot]));
        let mut data = tensor_values(x);
        state.run(&mut data, &mut self.spikes[slot]);
        let n = shape.len();
        // Steps done before this chunk (0-based index of its first step).
        let before = self.steps_seen[slot];
        self.steps_seen[slot] += data.len() / n.max(1);
        let first = self.first_spike.as_mut().map(|f| &mut f[slot]);
        observe_steps(&data, n, before, first, self.records[slot].as_mut(), &self.mean_weights[slot]);
        tensor_from(data, dims, &device)
    }
}

/// Simulates one batch for `timesteps` coding steps, `chunk` steps per network pass (batch
/// seed 0). `images`: `[batch, C, H, W]` (normalised); `labels`: `batch` class indices.
pub fn simulate_batch(
    net: &SpikingNetwork,
    images: Tensor<4>,
    labels: &[i64],
    timesteps: usize,
    chunk: usize,
) -> SimOutput {
    simulate(net, images, labels, &SimConfig::new(timesteps, chunk)).0
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
    simulate(net, images, labels, &SimConfig { record: record.to_vec(), ..SimConfig::new(timesteps, chunk) })
}

/// What the first layer receives at each step.
#[derive(Clone, Debug)]
pub enum SimInput {
    /// The same input at every step (direct coding), `[batch, C, H, W]`.
    Static(Tensor<4>),
    /// A sequence of `frames` inputs, frame-major `[frames · batch, C, H, W]` (frame f of
    /// sample i at row f·batch + i): step t receives frame (t − 1) mod `frames` (event data).
    Frames {
        /// The frames.
        data: Tensor<4>,
        /// How many.
        frames: usize,
    },
}

impl SimInput {
    /// Samples per step.
    pub fn batch(&self) -> usize {
        match self {
            SimInput::Static(x) => x.dims()[0],
            SimInput::Frames { data, frames } => data.dims()[0] / (*frames).max(1),
        }
    }

    /// The inputs of steps `first + 1 ..= first + steps`, step-major `[steps · batch, ...]`.
    fn steps(&self, first: usize, steps: usize) -> Tensor<4> {
        match self {
            SimInput::Static(x) => x.clone().repeat_dim(0, steps),
            SimInput::Frames { data, frames } => {
                let b = self.batch();
                let parts: Vec<Tensor<4>> = (first..first + steps)
                    .map(|s| {
                        let f = s % frames;
                        data.clone().narrow(0, f * b, b)
                    })
                    .collect();
                Tensor::cat(parts, 0)
            }
        }
    }
}

/// Simulates one batch as `config` says; returns the output and the time-averaged output
/// of each recorded slot (`config.record`; empty for the others).
pub fn simulate(
    net: &SpikingNetwork,
    images: Tensor<4>,
    labels: &[i64],
    config: &SimConfig,
) -> (SimOutput, Vec<Vec<f32>>) {
    simulate_input(net, &SimInput::Static(images), labels, config)
}

/// [`simulate`] with a per-step input ([`SimInput`]).
pub fn simulate_input(
    net: &SpikingNetwork,
    input: &SimInput,
    labels: &[i64],
    config: &SimConfig,
) -> (SimOutput, Vec<Vec<f32>>) {
    let batch = input.batch();
    assert_eq!(batch, labels.len(), "labels and images differ in batch size");
    let timesteps = config.timesteps;
    let mut hook = SimHook::new(net, batch, config);
    let mut collector = StepCollector::new(net.readout.as_ref(), labels, &config.output_steps);
    let chunk = net.pass_steps(timesteps, config.chunk);
    let mut step = 0;
    while step < timesteps {
        let steps = chunk.min(timesteps - step);
        let x = input.steps(step, steps);
        let out = {
            let mut ctx = ForwardCtx::with_hook(&mut hook);
            net.model.forward_ctx(x, &mut ctx)
        };
        let [_, classes] = out.dims();
        for step_out in tensor_values(out).chunks(batch * classes) {
            collector.push(step_out, classes);
        }
        step += steps;
    }
    for (spikes, state) in hook.spikes.iter_mut().zip(&mut hook.on_device) {
        if let Some(state) = state {
            *spikes = state.spike_counts();
        }
    }
    let diagnostics = hook.state.iter().map(|s| s.as_ref().map(|s| s.diagnostics()).unwrap_or_default()).collect();
    let first_spike = hook.first_spike.take().unwrap_or_default();
    let means = hook
        .records
        .into_iter()
        .map(|r| r.map(|v| v.into_iter().map(|x| x / timesteps as f32).collect()).unwrap_or_default())
        .collect();
    let output = collector.finish(&hook.spikes, hook.neurons, net.latency(timesteps), diagnostics, first_spike);
    (output, means)
}

/// Records what a slot's outputs `data` (`[steps × n]`, steps `before + 1 ..`) show: each
/// neuron's first spike step (1-based, 0 = none yet) into `first` and the output weighted by
/// `weights` (the coding's per-step factors, [`Coding::mean_weights`]; divided by T at the end)
/// into `record`, each sized to `n` on first use.
pub(crate) fn observe_steps(
    data: &[f32],
    n: usize,
    before: usize,
    first: Option<&mut Vec<u32>>,
    record: Option<&mut Vec<f32>>,
    weights: &[f32],
) {
    if let Some(first) = first {
        first.resize(n, 0);
        for (j, step) in data.chunks(n).enumerate() {
            let t = (before + j + 1) as u32;
            for (f, v) in first.iter_mut().zip(step) {
                if *f == 0 && *v != 0.0 {
                    *f = t;
                }
            }
        }
    }
    if let Some(rec) = record {
        rec.resize(n, 0.0);
        for (step, w) in data.chunks(n).zip(&weights[before..]) {
            for (r, v) in rec.iter_mut().zip(step) {
                *r += w * v;
            }
        }
    }
}

/// The readout side of a run, shared by both engines: takes the output layer's values step by
/// step and turns them, with the slots' spike counts, into a [`SimOutput`].
pub(crate) struct StepCollector<'a> {
    readout: &'a dyn Readout,
    state: Option<Box<dyn ReadoutState>>,
    labels: &'a [i64],
    output_steps: &'a [usize],
    final_output: Vec<f32>,
    correct_at_t: Vec<u64>,
    exit_steps: Vec<Option<usize>>,
    confidence_trace: Vec<Vec<StepConfidence>>,
    outputs_at: Vec<(usize, Vec<f32>)>,
}

impl<'a> StepCollector<'a> {
    pub(crate) fn new(readout: &'a dyn Readout, labels: &'a [i64], output_steps: &'a [usize]) -> Self {
        Self {
            readout,
            state: None,
            labels,
            output_steps,
            outputs_at: Vec::new(),
            final_output: Vec::new(),
            correct_at_t: Vec::new(),
            exit_steps: vec![None; labels.len()],
            confidence_trace: Vec::new(),
        }
    }

    /// The output layer's values at the next coding step, `[batch × classes]`.
    pub(crate) fn push(&mut self, step_out: &[f32], classes: usize) {
        let batch = self.labels.len();
        let t = self.correct_at_t.len() + 1;
        let state = self.state.get_or_insert_with(|| self.readout.new_state(batch, classes));
        state.push(t, step_out);
        if self.final_output.is_empty() {
            self.final_output = vec![0.0; batch * classes];
        }
        for (a, o) in self.final_output.iter_mut().zip(step_out) {
            *a += o;
        }
        if self.output_steps.contains(&t)
            && let Some(outputs) = state.outputs()
        {
            self.outputs_at.push((t, outputs));
        }
        let predictions = state.predictions();
        let correct = predictions.iter().zip(self.labels).filter(|(p, l)| **p == **l as usize).count();
        self.correct_at_t.push(correct as u64);
        for (e, x) in self.exit_steps.iter_mut().zip(state.exit_steps()) {
            *e = e.or(x);
        }
        if self.readout.exits_early() {
            self.confidence_trace.resize_with(batch, Vec::new);
            for (trace, row) in self.confidence_trace.iter_mut().zip(self.final_output.chunks(classes.max(1))) {
                trace.push(StepConfidence::of(row, t));
            }
        }
    }

    /// The run's output: `spikes` per slot `[steps × batch]`, `neurons` per slot; a sample's
    /// spikes count up to its exit step.
    pub(crate) fn finish(
        self,
        spikes: &[Vec<u32>],
        neurons: Vec<u64>,
        latency: usize,
        diagnostics: Vec<Vec<Diagnostic>>,
        first_spike: Vec<Vec<u32>>,
    ) -> SimOutput {
        let batch = self.labels.len();
        let total = self.correct_at_t.len();
        let exit_steps = self.exit_steps;
        let last_step = |sample: usize| exit_steps[sample].map_or(total, |e| e);
        let mut sample_spikes = vec![0u64; batch];
        let spikes: Vec<Vec<u64>> = spikes
            .iter()
            .map(|per| {
                per.chunks(batch.max(1))
                    .enumerate()
                    .map(|(s, counts)| {
                        let mut sum = 0u64;
                        for (i, &c) in counts.iter().enumerate() {
                            if s < last_step(i) {
                                sum += c as u64;
                                sample_spikes[i] += c as u64;
                            }
                        }
                        sum
                    })
                    .collect()
            })
            .collect();
        SimOutput {
            correct_at_t: self.correct_at_t,
            samples: batch as u64,
            latency,
            spikes,
            sample_spikes,
            exit_steps,
            confidence_trace: self.confidence_trace,
            neurons,
            final_output: self.final_output,
            diagnostics,
            first_spike,
            outputs_at: self.outputs_at,
        }
    }
}

/// The input (pre-activation) of slot `slot` at every step t = 1..`timesteps` when the slots
/// before it spike, `[timesteps, batch, channels, h·w]` (step-major), and the slot's
/// `[channels, h·w]`. Slots from `slot` on are not simulated (their neurons are bypassed), so
/// this is the input the slot's neurons would receive whatever their own parameters: a
/// layer-by-layer calibration can replay it through candidate neurons (batch seed 0).
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
    let mut hook = SimHook::new(net, batch, &SimConfig::new(timesteps, chunk));
    hook.capture = Some(slot);
    let chunk = net.pass_steps(timesteps, chunk);
    let mut t = 0;
    while t < timesteps {
        let steps = chunk.min(timesteps - t);
        let x = images.clone().repeat_dim(0, steps);
        // Nothing past the captured slot is needed: models may stop there.
        let mut ctx = ForwardCtx::with_hook(&mut hook).stopping_after(slot);
        let _ = net.model.forward_ctx(x, &mut ctx);
        t += steps;
    }
    (hook.captured, hook.captured_shape)
}

/// Time-averaged output (Σ_t out(t) / T; Σ_t w_t·out(t) for a window-coded neuron, see
/// [`Coding`]) of one layer `layer` driven by `input` (`[T, batch, channels, inner]`,
/// step-major), `[batch × channels × inner]`: a calibration's replay of a captured slot input
/// ([`simulate_slot_input`]) through candidate neurons.
pub fn replay_layer(layer: &NeuronLayerSpec, input: &[f32], shape: LayerShape, timesteps: usize) -> Vec<f32> {
    let mut state = layer.new_state(shape, RunInfo { timesteps, seed: 0 });
    let mut data = input.to_vec();
    state.run(&mut data, &mut Vec::new());
    let n = shape.len();
    let mut mean = vec![0f32; n];
    let weights = layer.neuron.rate_model().coding.mean_weights(timesteps);
    for (step, w) in data.chunks(n).zip(&weights) {
        for (m, v) in mean.iter_mut().zip(step) {
            *m += w * v;
        }
    }
    mean.iter_mut().for_each(|m| *m /= timesteps as f32);
    mean
}
