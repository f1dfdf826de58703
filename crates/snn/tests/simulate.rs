//! The layer-by-layer engine against a step-by-step reference, and the engine's seams:
//! multi-phase neurons (latency), per-sample early exit and seeded stochastic neurons.

use std::sync::Arc;

use burn::prelude::*;
use burn::tensor::Distribution;
use snn::neuron::integrate_and_fire::IntegrateAndFire;
use snn::neuron::lan_dynamic::LanDynamic;
use snn::readout::delayed::Delayed;
use snn::readout::early_exit::{Confidence, EarlyExit};
use snn::{
    Coding, LayerShape, NeuronLayerSpec, NeuronModel, NeuronState, RateModel, RunInfo, SimConfig, SimRng,
    SpikingNetwork, replay_layer, simulate, simulate_batch, simulate_recording, simulate_slot_input,
};
use zoo::{Convertible, ModelSpec, build_model};

fn network_with(seed: u64, neuron: impl Fn() -> Arc<dyn NeuronModel>) -> SpikingNetwork {
    let d = Device::flex();
    d.seed(seed);
    let spec: ModelSpec = toml::from_str("name = \"small-cnn\"\nbatch_norm = false").unwrap();
    let model = build_model(&spec, [1, 12, 12], 5, &d).unwrap();
    let layers = model
        .slots()
        .iter()
        .enumerate()
        .map(|(i, _)| NeuronLayerSpec::new(neuron(), vec![0.3 + 0.1 * i as f32]))
        .collect();
    SpikingNetwork::new(model, layers)
}

fn network(seed: u64) -> SpikingNetwork {
    network_with(seed, || Arc::new(IntegrateAndFire::default()))
}

fn images(n: usize) -> Tensor<4> {
    Tensor::<4>::random([n, 1, 12, 12], Distribution::Normal(0.0, 1.0), &Device::flex())
}

#[test]
fn layer_by_layer_equals_step_by_step() {
    let net = network(7);
    let x = images(3);
    let labels = [0i64, 1, 2];
    let t = 12;
    let folded = simulate_batch(&net, x.clone(), &labels, t, t); // all steps in one pass
    let stepwise = simulate_batch(&net, x.clone(), &labels, t, 1); // one step per pass
    let chunked = simulate_batch(&net, x, &labels, t, 5); // uneven chunks carry state over
    assert_eq!(folded.spikes, stepwise.spikes);
    assert_eq!(folded.spikes, chunked.spikes);
    assert_eq!(folded.sample_spikes, chunked.sample_spikes);
    assert_eq!(folded.correct_at_t, stepwise.correct_at_t);
    for (a, b) in folded.final_output.iter().zip(&stepwise.final_output) {
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{a} vs {b}");
    }
    assert!(folded.spikes.iter().any(|s| s.iter().sum::<u64>() > 0), "the test network must spike");
    // Per-sample counts add up to the per-step counts.
    let total: u64 = folded.spikes.iter().flatten().sum();
    assert_eq!(folded.sample_spikes.iter().sum::<u64>(), total);
    assert_eq!((folded.latency, folded.exit_steps.clone()), (0, vec![None; 3]));
}

#[test]
fn output_accumulates_over_steps() {
    let net = network(9);
    let x = images(2);
    let one = simulate_batch(&net, x.clone(), &[0, 0], 1, 1);
    let two = simulate_batch(&net, x, &[0, 0], 2, 2);
    assert_eq!(one.correct_at_t.len(), 1);
    assert_eq!(two.correct_at_t.len(), 2);
    assert_eq!(two.correct_at_t[0], one.correct_at_t[0]);
    assert_eq!(two.spikes[0][0], one.spikes[0][0]);
}

#[test]
fn delayed_readout_with_no_delay_is_the_plain_sum() {
    let mut net = network(5);
    net.readout = Arc::new(Delayed { delay: 0 });
    let x = images(4);
    let delayed = simulate_batch(&net, x.clone(), &[0, 1, 2, 3], 8, 3);
    net.readout = Arc::new(snn::readout::accumulate::Accumulate {});
    let plain = simulate_batch(&net, x, &[0, 1, 2, 3], 8, 3);
    assert_eq!(delayed.correct_at_t[4..], plain.correct_at_t[4..]);
    assert_eq!(delayed.spikes, plain.spikes, "the readout does not change the dynamics");
}

fn dynamic(seed: u64) -> SpikingNetwork {
    network_with(seed, || Arc::new(LanDynamic::new(0.5, 3)))
}

#[test]
fn diagnostics_are_exact_across_chunks() {
    let net = dynamic(7);
    let x = images(3);
    let labels = [0i64, 1, 2];
    let t = 6;
    let folded = simulate_batch(&net, x.clone(), &labels, t, t);
    let stepwise = simulate_batch(&net, x.clone(), &labels, t, 1);
    let chunked = simulate_batch(&net, x, &labels, t, 4);
    assert_eq!(folded.spikes, stepwise.spikes);
    assert_eq!(folded.diagnostics, stepwise.diagnostics);
    assert_eq!(folded.diagnostics, chunked.diagnostics);
    assert_eq!(folded.diagnostics.len(), net.layers.len());
    for slot in &folded.diagnostics {
        let omega = &slot[0];
        assert_eq!((omega.metric, omega.per_step.len()), ("omega", t));
        for w in &omega.per_step {
            assert_eq!(w.samples, 3);
            assert!(0.5 <= w.min && w.min <= w.max && w.max <= 1.0, "{w:?}");
        }
        // e^{−(t−1)} shrinks the adjustment: ω(6) ≥ 1 − 0.5·e^{−5}.
        assert!(omega.per_step[t - 1].min >= 1.0 - 0.5 * (-5.0f32).exp() - 1e-6);
    }
    assert!(folded.diagnostics[0][0].per_step[0].min < 1.0, "the first step lowers the threshold");
    // The IF neuron records no diagnostics.
    let plain = simulate_batch(&network(7), Tensor::<4>::zeros([1, 1, 12, 12], &Device::flex()), &[0], 2, 2);
    assert!(plain.diagnostics.iter().all(Vec::is_empty));
}

#[test]
fn captured_slot_input_replays_to_the_simulated_output() {
    // Replaying the captured input of a slot through that slot's neurons gives exactly the
    // slot's simulated output, also with the dynamic threshold (which couples the neurons).
    let net = dynamic(3);
    let x = images(2);
    let t = 5;
    for slot in 0..net.layers.len() {
        let (input, [c, inner]) = simulate_slot_input(&net, x.clone(), t, 2, slot);
        assert_eq!(input.len(), t * 2 * c * inner);
        let replayed = replay_layer(&net.layers[slot], &input, LayerShape { batch: 2, channels: c, inner }, t);
        let (_, rec) = simulate_recording(&net, x.clone(), &[0, 0], t, 3, &[slot]);
        for (a, b) in replayed.iter().zip(&rec[slot]) {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "slot {slot}: {a} vs {b}");
        }
    }
}

/// A toy two-phase neuron: it integrates its whole window of T input steps without output,
/// then fires IF spikes from the stored potential for T steps without input. Its output lags
/// its input by T steps; over the window it emits min(floor(Σ input / θ), T) spikes of
/// amplitude θ.
#[derive(Debug)]
struct TwoPhase;

struct TwoPhaseState {
    theta: Vec<f32>,
    shape: LayerShape,
}

impl NeuronModel for TwoPhase {
    fn kind(&self) -> &'static str {
        "two-phase-toy"
    }
    fn config(&self) -> toml::Table {
        snn::kind_table("two-phase-toy")
    }
    fn new_state(&self, layer: &NeuronLayerSpec, shape: LayerShape, _run: RunInfo) -> Box<dyn NeuronState> {
        let theta = (0..shape.channels).map(|c| layer.threshold(c)).collect();
        Box::new(TwoPhaseState { theta, shape })
    }
    fn latency(&self, timesteps: usize) -> usize {
        timesteps
    }
    fn depends_on_timesteps(&self) -> bool {
        true
    }
    fn rate_model(&self) -> RateModel {
        RateModel { max_spikes_per_step: 1, input_shift: false, initial_potential: 0.0, coding: Coding::Rate }
    }
}

impl NeuronState for TwoPhaseState {
    fn run(&mut self, data: &mut [f32], spikes: &mut Vec<u32>) {
        let n = self.shape.len();
        let steps = data.len() / n;
        let mut counts = vec![0u32; steps * self.shape.batch];
        for e in 0..n {
            let theta =
                self.theta[if self.theta.len() == 1 { 0 } else { (e % self.shape.per_sample()) / self.shape.inner }];
            let mut v: f32 = (0..steps).map(|t| data[t * n + e]).sum();
            for t in 0..steps {
                let fires = v >= theta;
                data[t * n + e] = if fires { theta } else { 0.0 };
                if fires {
                    v -= theta;
                    counts[t * self.shape.batch + e / self.shape.per_sample()] += 1;
                }
            }
        }
        spikes.extend(counts);
    }
}

#[test]
fn a_two_phase_neuron_runs_in_windows_and_reports_its_pipelined_latency() {
    let net = network_with(11, || Arc::new(TwoPhase));
    let layers = net.layers.len();
    let t = 8;
    assert_eq!(net.latency(t), layers * t);
    assert_eq!(net.pass_steps(t, 3), t, "a windowed network passes its whole window at once");
    let x = images(3);
    let (out, rec) = simulate(&net, x.clone(), &[0, 1, 2], &SimConfig { record: vec![0], ..SimConfig::new(t, 5) });
    assert_eq!(out.latency, layers * t);
    assert_eq!(out.correct_at_t.len(), t, "accuracy is reported per coding step");
    assert!(out.spikes.iter().all(|s| s.len() == t), "each layer's window has T steps");
    // Decoding: the first layer's time-averaged output is θ·min(floor(T·z/θ), T)/T for its
    // input z (the analog first conv, constant over the window).
    let (z, [c, inner]) = simulate_slot_input(&net, x.clone(), 1, 1, 0);
    let theta = net.layers[0].thresholds[0];
    for (i, (&zi, &r)) in z.iter().zip(&rec[0]).enumerate().take(3 * c * inner) {
        let expected = theta * ((t as f32 * zi / theta).floor().clamp(0.0, t as f32)) / t as f32;
        assert!((r - expected).abs() < 1e-4, "element {i}: {r} vs {expected} (z = {zi})");
    }
    // The requested chunk does not matter.
    let stepwise = simulate(&net, x, &[0, 1, 2], &SimConfig::new(t, 1)).0;
    assert_eq!(stepwise.spikes, out.spikes);
    assert_eq!(stepwise.correct_at_t, out.correct_at_t);
}

#[test]
fn early_exit_counts_spikes_only_up_to_each_samples_exit() {
    let plain = network(13);
    let x = fixed_images(6, 13);
    let labels = [0i64, 1, 2, 3, 4, 0];
    let t = 10;
    let full = simulate_batch(&plain, x.clone(), &labels, t, 4);
    // Every sample whose output is not uniform exits at step 3 (confidence > 0 from then on);
    // the weights are random, so the exact exits are not pinned, only their accounting.
    let mut net = plain.clone();
    net.readout = Arc::new(EarlyExit {
        confidence: Confidence::PerStep(vec![1.0, 1.0, 0.0]),
        min_steps: 1,
        score: Default::default(),
    });
    let early = simulate_batch(&net, x.clone(), &labels, t, 4);
    assert!(early.exit_steps.iter().all(|e| *e == Some(3)), "every sample exits at step 3: {:?}", early.exit_steps);
    // Each sample alone, without early exit: its spikes per step.
    let alone: Vec<Vec<u64>> = (0..6)
        .map(|i| {
            let one = simulate_batch(&plain, x.clone().slice([i..i + 1, 0..1, 0..12, 0..12]), &[labels[i]], t, 4);
            (0..t).map(|step| one.spikes.iter().map(|s| s[step]).sum()).collect()
        })
        .collect();
    let upto = |i: usize, last: usize| alone[i][..last].iter().sum::<u64>();
    let all: Vec<u64> = (0..6).map(|i| upto(i, t)).collect();
    assert_eq!(full.sample_spikes, all, "a sample's spikes do not depend on the rest of its batch");
    let expected: Vec<u64> = (0..6).map(|i| upto(i, early.exit_steps[i].unwrap_or(t))).collect();
    assert_eq!(early.sample_spikes, expected, "exits {:?}", early.exit_steps);
    let summed: u64 = early.spikes.iter().flatten().sum();
    assert_eq!(summed, early.sample_spikes.iter().sum::<u64>());
    // Exited samples keep their prediction; the dynamics are those of the plain run.
    assert_eq!(early.correct_at_t[0], full.correct_at_t[0]);
}

/// `n` images `[n, 1, 12, 12]` with values from a seeded stream (not burn's global RNG,
/// which tests running in parallel share).
fn fixed_images(n: usize, seed: u64) -> Tensor<4> {
    let mut rng = SimRng::new(seed);
    let values: Vec<f32> = (0..n * 144).map(|_| 2.0 * rng.next_f32() - 0.5).collect();
    zoo::tensor_from(values, [n, 1, 12, 12], &Device::flex())
}

/// A toy stochastic neuron: an IF neuron whose spikes are each kept with probability ½,
/// drawn from the layer's seeded stream.
#[derive(Debug)]
struct Masked;

struct MaskedState {
    inner: Box<dyn NeuronState>,
    rng: SimRng,
}

impl NeuronModel for Masked {
    fn kind(&self) -> &'static str {
        "masked-toy"
    }
    fn config(&self) -> toml::Table {
        snn::kind_table("masked-toy")
    }
    fn new_state(&self, layer: &NeuronLayerSpec, shape: LayerShape, run: RunInfo) -> Box<dyn NeuronState> {
        Box::new(MaskedState {
            inner: IntegrateAndFire::default().new_state(layer, shape, run),
            rng: SimRng::new(run.seed),
        })
    }
    fn rate_model(&self) -> RateModel {
        IntegrateAndFire::default().rate_model()
    }
}

impl NeuronState for MaskedState {
    fn run(&mut self, data: &mut [f32], spikes: &mut Vec<u32>) {
        let before = spikes.len();
        self.inner.run(data, spikes);
        let per_count = data.len() / (spikes.len() - before).max(1);
        for (count, xs) in spikes[before..].iter_mut().zip(data.chunks_mut(per_count)) {
            *count = 0;
            for x in xs.iter_mut().filter(|x| **x != 0.0) {
                if self.rng.next_f32() < 0.5 {
                    *x = 0.0;
                } else {
                    *count += 1;
                }
            }
        }
    }
}

#[test]
fn stochastic_masks_are_reproducible_from_the_seeds() {
    let x = fixed_images(6, 3);
    // One network (burn's global RNG is shared by parallel tests: build it once).
    let base = network_with(17, || Arc::new(Masked));
    let run = |net_seed: u64, batch_seed: u64, chunk: usize| {
        let mut net = base.clone();
        net.seed = net_seed;
        simulate(&net, x.clone(), &[0; 6], &SimConfig { batch_seed, ..SimConfig::new(12, chunk) }).0
    };
    let a = run(1, 0, 5);
    assert!(a.spikes.iter().flatten().sum::<u64>() > 0);
    assert_eq!(a, run(1, 0, 5), "same seeds, same spikes");
    assert_ne!(a.spikes, run(2, 0, 5).spikes, "another network seed draws other masks");
    assert_ne!(a.spikes, run(1, 1, 5).spikes, "another batch seed draws other masks");
    assert_eq!(a.spikes, run(1, 0, 1).spikes, "the masks do not depend on the chunking");
}

#[test]
fn frame_input_with_identical_frames_equals_direct_coding_and_cycles_through_frames() {
    use snn::{SimInput, simulate_input};
    let net = network(21);
    let x = images(3);
    let labels = [0i64, 1, 2];
    let t = 6;
    let direct = simulate(&net, x.clone(), &labels, &SimConfig::new(t, 4)).0;
    let frames = 3;
    let repeated = SimInput::Frames { data: x.clone().repeat_dim(0, frames), frames };
    let framed = simulate_input(&net, &repeated, &labels, &SimConfig::new(t, 4)).0;
    assert_eq!(framed.spikes, direct.spikes);
    assert_eq!(framed.final_output, direct.final_output);
    // Different frames give different spikes; the chunk does not matter.
    let varying = SimInput::Frames {
        data: Tensor::cat(vec![x.clone(), x.clone().mul_scalar(0.2), x.mul_scalar(3.0)], 0),
        frames,
    };
    let a = simulate_input(&net, &varying, &labels, &SimConfig::new(t, 4)).0;
    let b = simulate_input(&net, &varying, &labels, &SimConfig::new(t, 1)).0;
    assert_eq!(a.spikes, b.spikes);
    assert_ne!(a.spikes, direct.spikes);
}

#[test]
fn captured_slot_inputs_of_a_resnet_replay_to_its_simulated_outputs() {
    // The capture stops the forward pass after the slot (ResNet, VGG and MobileNet-v2 check);
    // what it returns is still exactly the input the slot's neurons see in a full run.
    let d = Device::flex();
    d.seed(8);
    let spec: ModelSpec = toml::from_str("name = \"resnet20-he\"\nwidth = 0.25\nbatch_norm = false").unwrap();
    let model = build_model(&spec, [3, 8, 8], 4, &d).unwrap();
    let layers = model
        .slots()
        .iter()
        .enumerate()
        .map(|(i, _)| NeuronLayerSpec::new(Arc::new(IntegrateAndFire::default()), vec![0.2 + 0.05 * i as f32]))
        .collect();
    let net = SpikingNetwork::new(model, layers);
    let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.3, 1.0), &d);
    let t = 4;
    for slot in [0, 3, 8, net.layers.len() - 1] {
        let (input, [c, inner]) = simulate_slot_input(&net, x.clone(), t, 2, slot);
        let replayed = replay_layer(&net.layers[slot], &input, LayerShape { batch: 2, channels: c, inner }, t);
        let (_, rec) = simulate_recording(&net, x.clone(), &[0, 0], t, 3, &[slot]);
        for (a, b) in replayed.iter().zip(&rec[slot]) {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "slot {slot}: {a} vs {b}");
        }
    }
}
