//! The event-driven engine: a converted network simulated on its layer graph
//! ([`zoo::LayerGraph`]), one sample at a time, with synaptic work proportional to the spikes.
//!
//! What differs from the dense engine ([`simulate_input`](crate::simulate_input), burn's dense
//! layers with T folded into the batch):
//! - **Synaptic layers scatter events.** A convolution or affine layer fed by spiking neurons
//!   adds, for every non-zero input, its weight row (all output channels, contiguous) to the
//!   outputs it reaches: the work of a step is its synaptic operations, not the dense MACs.
//! - **Static layers run once.** With direct (static) input coding, the layers before the first
//!   slot (the analog first convolution) see the same input at every step: they are computed
//!   once per sample and reused by all T steps.
//! - **Samples run in parallel** (rayon), each with its own neuron states (`batch = 1`) and
//!   buffers sized to one sample's chunk of steps; buffers are dropped after their last reader.
//!
//! Everything else is shared with the dense engine: the neuron models' states, the readouts,
//! the spike accounting (early exit included), the recorded time-averages and first-spike
//! steps. The two engines agree up to the order of float additions: on a network whose weights
//! and thresholds lie on a power-of-two grid every sum is exact and the spikes are identical
//! (tested). Stochastic neurons draw one stream per slot, batch *and sample* here (per slot and
//! batch in the dense engine): seeded and reproducible, but not the dense engine's draws.
//!
//! Networks without a layer graph (max pooling, point networks, MobileNet-v2) and grouped
//! convolutions are refused by [`SparseNetwork::compile`] with the reason.

mod kernels;

use burn::prelude::Tensor;
use rayon::prelude::*;
use zoo::{Convertible, GraphOp, tensor_values};

use crate::NeuronLayerSpec;
use crate::neuron::{Diagnostic, LayerShape, RunInfo, SimRng, layer_seed, merge_diagnostics};
use crate::simulate::{SimConfig, SimInput, SimOutput, SpikingNetwork, StepCollector, observe_steps};
use kernels::{AvgPool, ScatterAffine, ScatterConv};

/// Why a network cannot run on the event-driven engine.
#[derive(Debug, thiserror::Error)]
pub enum SparseError {
    /// The model has no layer graph.
    #[error("the event-driven engine needs the network's layer graph: {0}")]
    NoGraph(String),
    /// A node the engine has no kernel for.
    #[error("the event-driven engine cannot run layer `{node}`: {reason}")]
    Unsupported {
        /// The graph node.
        node: String,
        /// Why.
        reason: String,
    },
    /// The graph and the converted network disagree on the slots.
    #[error("the layer graph has {graph} activation slots, the converted network {layers}")]
    Slots {
        /// Slots in the graph.
        graph: usize,
        /// Neuron layers of the converted network.
        layers: usize,
    },
}

#[derive(Clone, Debug)]
enum Kernel {
    Input,
    Conv(ScatterConv),
    Affine(ScatterAffine),
    Pool(AvgPool),
    /// Flatten (row-major `[c, h, w]` is already `[c·h·w]`).
    Identity,
    Slot(usize),
    Output,
}

#[derive(Clone, Debug)]
struct Node {
    name: String,
    kernel: Kernel,
    /// Nodes summed into this one's input.
    inputs: Vec<usize>,
    /// Values per sample and step of the node's output.
    size: usize,
    /// Values per sample and step of the node's input.
    input_size: usize,
    /// `[channels, inner]` of a slot.
    slot_shape: [usize; 2],
    /// The last node reading this one's output.
    last_reader: usize,
}

/// What one synaptic layer costs per sample on either path: the event-driven kernel with
/// every input non-zero (its cost scales with the share of non-zero inputs, plus a scan of the
/// zeros) and burn's dense layer, on the same device and cores.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelTiming {
    /// The layer (graph node name).
    pub layer: String,
    /// Seconds per sample of the event-driven kernel with a fully dense input.
    pub event_dense_input_seconds: f64,
    /// Seconds per sample of the dense layer.
    pub dense_seconds: f64,
}

impl KernelTiming {
    /// The input density at which both paths cost the same, to first order: below it the
    /// event-driven kernel is cheaper.
    pub fn crossover_density(&self) -> f64 {
        self.dense_seconds / self.event_dense_input_seconds.max(f64::MIN_POSITIVE)
    }
}

/// Input values and non-zero inputs seen by one synaptic layer (its spike density).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SynapticLoad {
    /// The layer (graph node name).
    pub layer: String,
    /// Input values seen over the samples and steps.
    pub inputs: u64,
    /// Of which non-zero (spikes, or analog values).
    pub active: u64,
}

impl SynapticLoad {
    /// The share of non-zero inputs.
    pub fn density(&self) -> f64 {
        self.active as f64 / self.inputs.max(1) as f64
    }
}

/// The synaptic layers of a converted network, compiled for the event-driven engine.
///
/// It holds the network's weights only: simulate it with the neuron layers, readout and seed
/// of the [`SpikingNetwork`] it was compiled from, whose thresholds and per-slot corrections
/// may change between runs (a layer-by-layer calibration) but whose weights may not.
#[derive(Clone, Debug)]
pub struct SparseNetwork {
    nodes: Vec<Node>,
    slots: usize,
    classes: usize,
}

/// What one sample's run produced.
struct SampleRun {
    /// `[T × classes]`.
    outputs: Vec<f32>,
    /// Per slot: spikes per step, `[T]`.
    spikes: Vec<Vec<u32>>,
    /// Per slot: Σ_t w_t·out(t) when recorded.
    records: Vec<Option<Vec<f32>>>,
    /// Per slot: first spike step per neuron, when asked for.
    first_spike: Option<Vec<Vec<u32>>>,
    diagnostics: Vec<Vec<Diagnostic>>,
    /// Per node: (inputs, non-zero inputs) of synaptic layers fed by varying inputs.
    load: Vec<(u64, u64)>,
    /// The captured slot's input, `[T × size]`.
    captured: Vec<f32>,
}

impl SparseNetwork {
    /// Compiles `net` (images of shape `input` = `[c, h, w]`) for the event-driven engine.
    pub fn compile(net: &SpikingNetwork, input: [usize; 3]) -> Result<Self, SparseError> {
        let graph =
            net.model.clone().fold_batchnorm().layer_graph(input).map_err(|e| SparseError::NoGraph(e.to_string()))?;
        let index = |name: &str| graph.nodes.iter().position(|n| n.name == name).expect("edges name graph nodes");
        let mut nodes: Vec<Node> = Vec::with_capacity(graph.nodes.len());
        let mut slots = 0;
        for (i, g) in graph.nodes.iter().enumerate() {
            let inputs: Vec<usize> =
                graph.edges.iter().filter(|(_, to)| *to == g.name).map(|(from, _)| index(from)).collect();
            if inputs.iter().any(|&j| j >= i) {
                return Err(SparseError::Unsupported { node: g.name.clone(), reason: "not in forward order".into() });
            }
            let unsupported = |reason: String| SparseError::Unsupported { node: g.name.clone(), reason };
            let kernel = match &g.op {
                GraphOp::Input => Kernel::Input,
                op @ GraphOp::Conv2d { .. } => {
                    Kernel::Conv(ScatterConv::new(op, &g.output_shape).map_err(unsupported)?)
                }
                GraphOp::Affine { weight, bias } => Kernel::Affine(ScatterAffine::new(weight, bias)),
                GraphOp::AvgPool2d { kernel, stride, input_hw } => {
                    let &[c, oh, ow] = &g.output_shape[..] else {
                        return Err(unsupported("output is not [c, h, w]".into()));
                    };
                    Kernel::Pool(AvgPool {
                        kernel: *kernel,
                        stride: *stride,
                        input: [c, input_hw[0], input_hw[1]],
                        output: [oh, ow],
                    })
                }
                GraphOp::Flatten { .. } => Kernel::Identity,
                GraphOp::Slot { slot } => {
                    slots += 1;
                    Kernel::Slot(*slot)
                }
                GraphOp::Output => Kernel::Output,
            };
            let size = g.output_shape.iter().product();
            let input_size = inputs.first().map_or(size, |&j| nodes[j].size);
            let slot_shape = match g.output_shape[..] {
                [c, h, w] => [c, h * w],
                _ => [size, 1],
            };
            nodes.push(Node { name: g.name.clone(), kernel, inputs, size, input_size, slot_shape, last_reader: i });
        }
        if slots != net.layers.len() {
            return Err(SparseError::Slots { graph: slots, layers: net.layers.len() });
        }
        for i in 0..nodes.len() {
            for j in nodes[i].inputs.clone() {
                nodes[j].last_reader = i;
            }
        }
        let classes = nodes.last().map_or(0, |n| n.size);
        Ok(Self { nodes, slots, classes })
    }

    /// Simulates one batch as `config` says (see the module doc); returns the output, the
    /// time-averaged output of each recorded slot (`[batch × channels × inner]`, empty for the
    /// others) and the input density of every synaptic layer.
    pub fn simulate(
        &self,
        net: &SpikingNetwork,
        input: &SimInput,
        labels: &[i64],
        config: &SimConfig,
    ) -> (SimOutput, Vec<Vec<f32>>, Vec<SynapticLoad>) {
        let batch = input.batch();
        assert_eq!(batch, labels.len(), "labels and images differ in batch size");
        let timesteps = config.timesteps;
        let runs = self.run_samples(net, input, config, None);
        let mut collector = StepCollector::new(net.readout.as_ref(), labels, &config.output_steps);
        let classes = self.classes;
        let mut step_out = vec![0.0; batch * classes];
        for t in 0..timesteps {
            for (b, run) in runs.iter().enumerate() {
                step_out[b * classes..(b + 1) * classes].copy_from_slice(&run.outputs[t * classes..(t + 1) * classes]);
            }
            collector.push(&step_out, classes);
        }
        let slots = self.slots;
        let spikes: Vec<Vec<u32>> = (0..slots)
            .map(|k| {
                let mut per = vec![0u32; timesteps * batch];
                for (b, run) in runs.iter().enumerate() {
                    for (t, &s) in run.spikes[k].iter().enumerate() {
                        per[t * batch + b] = s;
                    }
                }
                per
            })
            .collect();
        let slot_nodes: Vec<&Node> = self.nodes.iter().filter(|n| matches!(n.kernel, Kernel::Slot(_))).collect();
        let neurons = slot_nodes.iter().map(|n| n.size as u64).collect();
        let mut diagnostics = vec![Vec::new(); slots];
        let mut first_spike = if config.first_spikes { vec![Vec::new(); slots] } else { Vec::new() };
        let mut means: Vec<Vec<f32>> = vec![Vec::new(); slots];
        let mut load: Vec<(u64, u64)> = vec![(0, 0); self.nodes.len()];
        for run in runs {
            for (acc, d) in diagnostics.iter_mut().zip(run.diagnostics) {
                merge_diagnostics(acc, d);
            }
            if let Some(first) = run.first_spike {
                for (acc, f) in first_spike.iter_mut().zip(first) {
                    acc.extend(f);
                }
            }
            for (acc, r) in means.iter_mut().zip(run.records) {
                if let Some(r) = r {
                    acc.extend(r.into_iter().map(|v| v / timesteps as f32));
                }
            }
            for (acc, l) in load.iter_mut().zip(run.load) {
                acc.0 += l.0;
                acc.1 += l.1;
            }
        }
        let loads = self
            .nodes
            .iter()
            .zip(load)
            .filter(|(n, (inputs, _))| matches!(n.kernel, Kernel::Conv(_) | Kernel::Affine(_)) && *inputs > 0)
            .map(|(n, (inputs, active))| SynapticLoad { layer: n.name.clone(), inputs, active })
            .collect();
        let output = collector.finish(&spikes, neurons, net.latency(timesteps), diagnostics, first_spike);
        (output, means, loads)
    }

    /// The input of slot `slot` at every step t = 1..T when the slots before it spike,
    /// `[T, batch, channels, h·w]` (step-major), and the slot's `[channels, h·w]`: what
    /// [`simulate_slot_input`](crate::simulate_slot_input) returns, on this engine. Nothing
    /// past the slot is computed.
    pub fn slot_input(
        &self,
        net: &SpikingNetwork,
        images: Tensor<4>,
        config: &SimConfig,
        slot: usize,
    ) -> (Vec<f32>, [usize; 2]) {
        assert!(slot < self.slots, "slot {slot} out of range ({} slots)", self.slots);
        let input = SimInput::Static(images);
        let batch = input.batch();
        let runs = self.run_samples(net, &input, config, Some(slot));
        let node = self
            .nodes
            .iter()
            .find(|n| matches!(n.kernel, Kernel::Slot(k) if k == slot))
            .expect("every slot has a node");
        let size = node.size;
        let mut out = vec![0.0; config.timesteps * batch * size];
        for (b, run) in runs.iter().enumerate() {
            for (t, step) in run.captured.chunks(size).enumerate() {
                out[(t * batch + b) * size..(t * batch + b + 1) * size].copy_from_slice(step);
            }
        }
        (out, node.slot_shape)
    }

    /// Every sample of `input` run on its own (in parallel); with `capture`, only up to that
    /// slot, whose input is kept.
    fn run_samples(
        &self,
        net: &SpikingNetwork,
        input: &SimInput,
        config: &SimConfig,
        capture: Option<usize>,
    ) -> Vec<SampleRun> {
        assert_eq!(net.layers.len(), self.slots, "the network this engine was compiled from");
        let batch = input.batch();
        let chunk = net.pass_steps(config.timesteps, config.chunk);
        let (values, frames) = match input {
            SimInput::Static(x) => (tensor_values(x.clone()), None),
            SimInput::Frames { data, frames } => (tensor_values(data.clone()), Some(*frames)),
        };
        let per_sample = self.nodes[0].size;
        let varying = self.varying(frames.is_some());
        (0..batch)
            .into_par_iter()
            .map(|i| {
                let frame = |step: usize| -> &[f32] {
                    let row = match frames {
                        Some(f) => (step % f) * batch + i,
                        None => i,
                    };
                    &values[row * per_sample..(row + 1) * per_sample]
                };
                self.run_sample(net, i, &frame, &varying, config, chunk, capture)
            })
            .collect()
    }

    /// Per node: whether its output changes from step to step (else it is computed once).
    fn varying(&self, frames: bool) -> Vec<bool> {
        let mut varying = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            let v = match n.kernel {
                Kernel::Input => frames,
                // Slots spike; the output is read at every step.
                Kernel::Slot(_) | Kernel::Output => true,
                _ => n.inputs.iter().any(|&j| varying[j]),
            };
            varying.push(v);
        }
        varying
    }

    fn run_sample<'v>(
        &self,
        net: &SpikingNetwork,
        sample: usize,
        frame: &dyn Fn(usize) -> &'v [f32],
        varying: &[bool],
        config: &SimConfig,
        chunk: usize,
        capture: Option<usize>,
    ) -> SampleRun {
        let timesteps = config.timesteps;
        let slots = self.slots;
        let layers = &net.layers;
        let mut states: Vec<Option<Box<dyn crate::NeuronState>>> = (0..slots).map(|_| None).collect();
        let mut run = SampleRun {
            outputs: Vec::with_capacity(timesteps * self.classes),
            spikes: vec![Vec::with_capacity(timesteps); slots],
            records: (0..slots).map(|s| config.record.contains(&s).then(Vec::new)).collect(),
            first_spike: config.first_spikes.then(|| vec![Vec::new(); slots]),
            diagnostics: Vec::new(),
            load: vec![(0, 0); self.nodes.len()],
            captured: Vec::new(),
        };
        let mean_weights: Vec<Vec<f32>> =
            layers.iter().map(|l| l.neuron.rate_model().coding.mean_weights(timesteps)).collect();
        let mut buffers: Vec<Option<Vec<f32>>> = vec![None; self.nodes.len()];
        let mut acc = Vec::new();
        let mut first = 0;
        while first < timesteps {
            let steps = chunk.min(timesteps - first);
            for (n, node) in self.nodes.iter().enumerate() {
                if !varying[n] && buffers[n].is_some() {
                    continue;
                }
                let reps = if varying[n] { steps } else { 1 };
                let mut x = match node.kernel {
                    Kernel::Input => (first..first + reps).flat_map(|s| frame(s).iter().copied()).collect(),
                    _ => self.input_of(n, reps, varying, &mut buffers),
                };
                let y = match &node.kernel {
                    Kernel::Slot(k) if capture == Some(*k) => {
                        run.captured.extend_from_slice(&x);
                        break;
                    }
                    Kernel::Slot(k) => {
                        let k = *k;
                        let [channels, inner] = node.slot_shape;
                        let shape = LayerShape { batch: 1, channels, inner };
                        let seed = sample_seed(net, config.batch_seed, k, sample);
                        let state =
                            states[k].get_or_insert_with(|| layers[k].new_state(shape, RunInfo { timesteps, seed }));
                        state.run(&mut x, &mut run.spikes[k]);
                        let first_spike = run.first_spike.as_mut().map(|f| &mut f[k]);
                        observe_steps(&x, node.size, first, first_spike, run.records[k].as_mut(), &mean_weights[k]);
                        x
                    }
                    Kernel::Output => {
                        run.outputs.extend_from_slice(&x);
                        x
                    }
                    _ => {
                        let (y, active) = self.apply_synaptic(node, x, &mut acc);
                        if varying[n] {
                            run.load[n].0 += (reps * node.input_size) as u64;
                            run.load[n].1 += active as u64;
                        }
                        y
                    }
                };
                buffers[n] = Some(y);
                for &j in &node.inputs {
                    if varying[j] && self.nodes[j].last_reader == n {
                        buffers[j] = None;
                    }
                }
            }
            for (n, b) in buffers.iter_mut().enumerate() {
                if varying[n] {
                    *b = None;
                }
            }
            first += steps;
        }
        run.diagnostics = states.iter().map(|s| s.as_ref().map(|s| s.diagnostics()).unwrap_or_default()).collect();
        run
    }

    /// The output of a node that is neither a slot nor the output, for `x` = `[reps ×
    /// input_size]`: `[reps × size]`, and the number of non-zero inputs a synaptic layer saw.
    fn apply_synaptic(&self, node: &Node, x: Vec<f32>, acc: &mut Vec<f32>) -> (Vec<f32>, usize) {
        let reps = x.len() / node.input_size.max(1);
        let mut active = 0;
        let y = match &node.kernel {
            Kernel::Input | Kernel::Identity => x,
            Kernel::Conv(conv) => {
                let mut y = vec![0.0; reps * node.size];
                for (xs, ys) in x.chunks(node.input_size).zip(y.chunks_mut(node.size)) {
                    active += conv.apply(xs, ys, acc);
                }
                y
            }
            Kernel::Affine(affine) => {
                let mut y = vec![0.0; reps * node.size];
                for (xs, ys) in x.chunks(node.input_size).zip(y.chunks_mut(node.size)) {
                    active += affine.apply(xs, ys);
                }
                y
            }
            Kernel::Pool(pool) => {
                let mut y = vec![0.0; reps * node.size];
                for (xs, ys) in x.chunks(node.input_size).zip(y.chunks_mut(node.size)) {
                    pool.apply(xs, ys);
                }
                y
            }
            Kernel::Slot(_) | Kernel::Output => unreachable!("slots and the output are run by the engine's loops"),
        };
        (y, active)
    }

    /// Times every convolution and affine layer on `samples` inputs of ones (every input
    /// non-zero), `repeats` times: the event-driven kernel (parallel over samples, as a
    /// simulation runs it) and burn's dense layer on the batch, on `device`. What
    /// [`KernelTiming::crossover_density`] compares with the measured spike densities.
    pub fn time_kernels(
        &self,
        net: &SpikingNetwork,
        input: [usize; 3],
        samples: usize,
        repeats: usize,
        device: &burn::prelude::Device,
    ) -> Result<Vec<KernelTiming>, SparseError> {
        use burn::tensor::module::conv2d;
        use burn::tensor::ops::ConvOptions;
        use std::time::Instant;
        let graph =
            net.model.clone().fold_batchnorm().layer_graph(input).map_err(|e| SparseError::NoGraph(e.to_string()))?;
        let (samples, repeats) = (samples.max(1), repeats.max(1));
        let mut out = Vec::new();
        for (node, g) in self.nodes.iter().zip(&graph.nodes) {
            if !matches!(node.kernel, Kernel::Conv(_) | Kernel::Affine(_)) {
                continue;
            }
            let ones = vec![1.0f32; node.input_size];
            let time = |f: &dyn Fn()| {
                f(); // warm-up
                let start = Instant::now();
                for _ in 0..repeats {
                    f();
                }
                start.elapsed().as_secs_f64() / (repeats * samples) as f64
            };
            let event = time(&|| {
                (0..samples).into_par_iter().for_each_init(
                    || (vec![0.0f32; node.size], Vec::new()),
                    |(y, acc), _| match &node.kernel {
                        Kernel::Conv(conv) => {
                            conv.apply(&ones, y, acc);
                        }
                        Kernel::Affine(affine) => {
                            affine.apply(&ones, y);
                        }
                        _ => unreachable!("only synaptic layers are timed"),
                    },
                )
            });
            let dense = match &g.op {
                GraphOp::Conv2d { weight, bias, stride, padding, dilation, groups, input_hw } => {
                    let shape = [weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3]];
                    let w = zoo::tensor_from(weight.values.clone(), shape, device);
                    let b = zoo::tensor_from(bias.clone(), [bias.len()], device);
                    let x = zoo::tensor_from(
                        vec![1.0; samples * node.input_size],
                        [samples, node.input_size / (input_hw[0] * input_hw[1]), input_hw[0], input_hw[1]],
                        device,
                    );
                    let options = ConvOptions::new(*stride, *padding, *dilation, *groups);
                    time(&|| {
                        tensor_values(conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone()));
                    })
                }
                GraphOp::Affine { weight, bias } => {
                    let w = zoo::tensor_from(weight.values.clone(), [weight.shape[0], weight.shape[1]], device);
                    let b = zoo::tensor_from(bias.clone(), [1, bias.len()], device);
                    let x = zoo::tensor_from(vec![1.0; samples * weight.shape[1]], [samples, weight.shape[1]], device);
                    time(&|| {
                        tensor_values(x.clone().matmul(w.clone().transpose()) + b.clone());
                    })
                }
                _ => unreachable!("synaptic kernels are compiled from convolutions and affine layers"),
            };
            out.push(KernelTiming { layer: node.name.clone(), event_dense_input_seconds: event, dense_seconds: dense });
        }
        Ok(out)
    }

    /// Runs `images` (`[batch, c, h, w]`) through the network once, node by node in forward
    /// order with all `timesteps` steps of every sample at a time, and hands each slot's input
    /// to `visit` before the slot's neurons run on it: `visit(slot, layer, input, shape)` gets
    /// the slot's neuron layer, which it may change (thresholds, bias, initial potential, ...),
    /// and the slot's input `[T, batch, channels, inner]` (step-major, as
    /// [`slot_input`](Self::slot_input) returns it, `shape.batch = batch`). The later slots then
    /// receive the changed layer's spikes. A layer-by-layer calibration thus costs one
    /// simulation whatever the depth, where capturing each slot's input on its own costs one
    /// per slot. Memory: [`staged_bytes`](Self::staged_bytes). Nothing past the last slot is
    /// computed; the weights (`net.model`) must be the ones compiled.
    pub fn run_in_order(
        &self,
        net: &mut SpikingNetwork,
        images: Tensor<4>,
        timesteps: usize,
        mut visit: impl FnMut(usize, &mut NeuronLayerSpec, &[f32], LayerShape),
    ) {
        assert_eq!(net.layers.len(), self.slots, "the network this engine was compiled from");
        let [batch, ..] = images.dims();
        let values = tensor_values(images);
        let per_sample = self.nodes[0].size;
        let varying = self.varying(false);
        let Some(last_slot) = self.nodes.iter().rposition(|n| matches!(n.kernel, Kernel::Slot(_))) else {
            return;
        };
        // Per node, per sample: `[reps × size]`, reps = T where the output varies, else 1.
        let mut buffers: Vec<Option<Vec<Vec<f32>>>> = vec![None; self.nodes.len()];
        for (n, node) in self.nodes.iter().enumerate().take(last_slot + 1) {
            let reps = if varying[n] { timesteps } else { 1 };
            let inputs: Vec<Vec<f32>> = match node.kernel {
                Kernel::Input => values.chunks(per_sample).map(<[f32]>::to_vec).collect(),
                _ => (0..batch).into_par_iter().map(|i| self.sample_input(n, i, reps, &buffers)).collect(),
            };
            let outputs: Vec<Vec<f32>> = match node.kernel {
                Kernel::Slot(k) => {
                    let [channels, inner] = node.slot_shape;
                    let size = node.size;
                    let mut stepped = vec![0.0; timesteps * batch * size];
                    for (b, x) in inputs.iter().enumerate() {
                        for (t, step) in x.chunks(size).enumerate() {
                            stepped[(t * batch + b) * size..(t * batch + b + 1) * size].copy_from_slice(step);
                        }
                    }
                    visit(k, &mut net.layers[k], &stepped, LayerShape { batch, channels, inner });
                    drop(stepped);
                    let net = &*net;
                    let shape = LayerShape { batch: 1, channels, inner };
                    inputs
                        .into_par_iter()
                        .enumerate()
                        .map(|(i, mut x)| {
                            let seed = sample_seed(net, 0, k, i);
                            let mut state = net.layers[k].new_state(shape, RunInfo { timesteps, seed });
                            state.run(&mut x, &mut Vec::new());
                            x
                        })
                        .collect()
                }
                _ => inputs.into_par_iter().map(|x| self.apply_synaptic(node, x, &mut Vec::new()).0).collect(),
            };
            buffers[n] = Some(outputs);
            for &j in &node.inputs {
                if self.nodes[j].last_reader == n {
                    buffers[j] = None;
                }
            }
        }
    }

    /// The peak bytes [`run_in_order`](Self::run_in_order) holds for `batch` samples and T
    /// steps: the outputs alive at each node, its input and (at a slot) the step-major copy.
    pub fn staged_bytes(&self, batch: usize, timesteps: usize) -> usize {
        let varying = self.varying(false);
        let reps = |n: usize| if varying[n] { timesteps } else { 1 };
        let (mut live, mut peak) = (0usize, 0usize);
        for (n, node) in self.nodes.iter().enumerate() {
            let input = reps(n) * node.input_size * batch;
            let copy = if matches!(node.kernel, Kernel::Slot(_)) { input } else { 0 };
            live += reps(n) * node.size * batch;
            peak = peak.max(live + input + copy);
            for &j in &node.inputs {
                if self.nodes[j].last_reader == n {
                    live -= reps(j) * self.nodes[j].size * batch;
                }
            }
        }
        peak * std::mem::size_of::<f32>()
    }

    /// Sample `i`'s input of node `n` over `reps` steps (`[reps × input_size]`): the sum of
    /// its input nodes' outputs (`buffers[j][i]`), static ones broadcast over the steps.
    fn sample_input(&self, n: usize, i: usize, reps: usize, buffers: &[Option<Vec<Vec<f32>>>]) -> Vec<f32> {
        let mut sum = vec![0.0; reps * self.nodes[n].input_size];
        for &j in &self.nodes[n].inputs {
            add_broadcast(&mut sum, &buffers[j].as_ref().expect("a node's inputs are computed before it")[i]);
        }
        sum
    }

    /// The sum of node `n`'s inputs for `reps` steps (`[reps × input_size]`), static inputs
    /// broadcast over the steps; a varying input read last here is moved, not copied.
    fn input_of(&self, n: usize, reps: usize, varying: &[bool], buffers: &mut [Option<Vec<f32>>]) -> Vec<f32> {
        let node = &self.nodes[n];
        let size = node.input_size;
        let moved =
            node.inputs.iter().position(|&j| varying[j] && self.nodes[j].last_reader == n && buffers[j].is_some());
        let mut sum = match moved {
            Some(p) => buffers[node.inputs[p]].take().expect("checked above"),
            None => vec![0.0; reps * size],
        };
        for (p, &j) in node.inputs.iter().enumerate() {
            if Some(p) == moved {
                continue;
            }
            add_broadcast(&mut sum, buffers[j].as_ref().expect("a node's inputs are computed before it"));
        }
        sum
    }
}

/// The seed of sample `sample`'s neuron state in slot `slot`: one stream per slot, batch and
/// sample.
fn sample_seed(net: &SpikingNetwork, batch_seed: u64, slot: usize, sample: usize) -> u64 {
    SimRng::new(layer_seed(net.seed, batch_seed, slot) ^ (sample as u64).rotate_left(32)).next_u64()
}

/// `sum += b`, with `b` (one step, or as many steps as `sum`) broadcast over `sum`'s steps.
fn add_broadcast(sum: &mut [f32], b: &[f32]) {
    for step in sum.chunks_mut(b.len()) {
        for (a, v) in step.iter_mut().zip(b) {
            *a += v;
        }
    }
}
