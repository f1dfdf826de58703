//! The event-driven engine against the dense engine: on networks whose weights, thresholds and
//! images lie on a power-of-two grid (every sum exact), both give the same spikes at every slot
//! and step, the same outputs, records, first-spike steps and diagnostics.

mod common;

use std::sync::Arc;

use burn::prelude::*;
use common::{assert_same_counts, grid_images, if_neuron, model, spiking};
use snn::neuron::burst::Burst;
use snn::neuron::lan_dynamic::LanDynamic;
use snn::readout::early_exit::EarlyExit;
use snn::{
    FireRule, NeuronModel, Reset, SimConfig, SimInput, SimOutput, SparseNetwork, SpikingNetwork, simulate_input,
    simulate_slot_input,
};

fn config(timesteps: usize, chunk: usize, slots: usize) -> SimConfig {
    SimConfig {
        batch_seed: 3,
        record: (0..slots).collect(),
        first_spikes: true,
        output_steps: vec![1, timesteps.div_ceil(2), timesteps],
        ..SimConfig::new(timesteps, chunk)
    }
}

fn close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{what}: {got:?} vs {want:?}");
    }
}

/// Runs both engines and checks that they agree: spikes exactly, outputs up to rounding.
fn check_engines_agree(net: &SpikingNetwork, input: [usize; 3], sim: &SimInput, config: &SimConfig, what: &str) {
    let labels: Vec<i64> = (0..sim.batch() as i64).map(|i| i % 4).collect();
    let (dense, dense_means): (SimOutput, _) = simulate_input(net, sim, &labels, config);
    let sparse = SparseNetwork::compile(net, input).unwrap();
    let (got, means, loads) = sparse.simulate(net, sim, &labels, config);
    assert_same_counts(&got, &dense, what);
    // Spikes are exact; outputs are sums of spike amplitudes, which for Lan et al.'s dynamic
    // threshold (θ·ω(t)) leave the grid: equal up to float rounding.
    close(&got.final_output, &dense.final_output, &format!("{what}: summed outputs"));
    assert_eq!(got.first_spike, dense.first_spike, "{what}: first spikes");
    // The readout's real-valued outputs (what dense prediction scores) at the steps asked for.
    let steps = |o: &SimOutput| o.outputs_at.iter().map(|(s, _)| *s).collect::<Vec<_>>();
    assert_eq!(steps(&got), steps(&dense), "{what}: output steps");
    assert_eq!(steps(&dense).len(), config.output_steps.iter().filter(|&&s| s <= config.timesteps).count(), "{what}");
    for ((s, a), (_, b)) in got.outputs_at.iter().zip(&dense.outputs_at) {
        close(a, b, &format!("{what}: readout outputs after step {s}"));
    }
    if net.readout.kind() == "accumulate" {
        let (last, outputs) = dense.outputs_at.last().expect("the last step is asked for");
        assert_eq!(*last, config.timesteps, "{what}");
        let mean: Vec<f32> = dense.final_output.iter().map(|v| v / config.timesteps as f32).collect();
        close(outputs, &mean, &format!("{what}: accumulate's outputs are the mean of the steps"));
    }
    assert_eq!(got.diagnostics, dense.diagnostics, "{what}: diagnostics");
    assert_eq!(got.latency, dense.latency, "{what}: latency");
    for (slot, (a, b)) in means.iter().zip(&dense_means).enumerate() {
        close(a, b, &format!("{what}: recorded time average of slot {slot}"));
    }
    // The captured input of a slot (calibrations replay it) is the dense engine's.
    if let SimInput::Static(images) = sim {
        for slot in [0, net.layers.len() / 2, net.layers.len() - 1] {
            let want = simulate_slot_input(net, images.clone(), config.timesteps, config.chunk, slot);
            let got = sparse.slot_input(net, images.clone(), config, slot);
            assert_eq!(got.1, want.1, "{what}: shape of slot {slot}");
            close(&got.0, &want.0, &format!("{what}: input of slot {slot}"));
        }
    }
    // One pass in forward order hands every slot the input a capture of its own gives.
    if let SimInput::Static(images) = sim {
        let mut staged = net.clone();
        let mut seen = Vec::new();
        sparse.run_in_order(&mut staged, images.clone(), config.timesteps, |slot, _, input, shape| {
            let want = simulate_slot_input(net, images.clone(), config.timesteps, config.chunk, slot);
            assert_eq!([shape.channels, shape.inner], want.1, "{what}: staged shape of slot {slot}");
            assert_eq!(shape.batch, sim.batch(), "{what}: staged batch");
            close(input, &want.0, &format!("{what}: staged input of slot {slot}"));
            seen.push(slot);
        });
        assert_eq!(seen, (0..net.layers.len()).collect::<Vec<_>>(), "{what}: slots visited in order");
    }
    // Every synaptic layer fed by spikes reports its load; spikes are sparse.
    assert!(!loads.is_empty(), "{what}: synaptic loads");
    for l in &loads {
        assert!(l.active <= l.inputs && l.inputs > 0, "{what}: {l:?}");
    }
}

#[test]
fn event_driven_and_dense_engines_give_the_same_spikes() {
    let cnn = [1, 12, 12];
    let rgb = [3, 16, 16];
    let soft = if_neuron(Reset::Soft, FireRule::GreaterEqual, false);
    let hard = if_neuron(Reset::Hard, FireRule::Greater, true);
    let burst: Arc<dyn NeuronModel> = Arc::new(toml::from_str::<Burst>("max_spikes = 3").unwrap());
    // (model spec, input, neuron, what)
    type Case<'a> = (&'a str, [usize; 3], Arc<dyn NeuronModel>, &'a str);
    let cases: Vec<Case> = vec![
        ("name = \"small-cnn\"", cnn, soft.clone(), "small-cnn, soft reset"),
        ("name = \"small-cnn\"", cnn, hard, "small-cnn, hard reset, input shift"),
        ("name = \"small-cnn\"", cnn, burst, "small-cnn, burst"),
        ("name = \"resnet20-he\"\nwidth = 0.25\nshortcut = \"pad\"", rgb, soft.clone(), "resnet20-he, option A"),
        ("name = \"resnet20-he\"\nwidth = 0.25\nshortcut = \"conv\"", rgb, soft.clone(), "resnet20-he, option B"),
        ("name = \"vgg16\"\nwidth = 0.125", [3, 32, 32], soft.clone(), "vgg16 x0.125"),
        ("name = \"pointnet\"\nwidth = 0.25", [3, 32, 1], soft, "pointnet x0.25, 32 points, avg pooling"),
    ];
    for (spec, input, neuron, what) in cases {
        let net = spiking(model(spec, input), input, neuron);
        let slots = net.layers.len();
        let sim = SimInput::Static(grid_images(input, 3));
        // Chunks that do not divide T: state carries across chunks.
        check_engines_agree(&net, input, &sim, &config(10, 4, slots), what);
    }
}

#[test]
fn engines_agree_with_diagnostics_early_exit_and_frame_input() {
    let cnn = [1, 12, 12];
    // Lan et al.'s dynamic neuron records ω(t): per-sample diagnostics merge to the batch's.
    let dynamic: Arc<dyn NeuronModel> = Arc::new(LanDynamic::default());
    let net = spiking(model("name = \"small-cnn\"", cnn), cnn, dynamic);
    let slots = net.layers.len();
    check_engines_agree(&net, cnn, &SimInput::Static(grid_images(cnn, 4)), &config(9, 3, slots), "lan dynamic neuron");

    let mut exiting =
        spiking(model("name = \"small-cnn\"", cnn), cnn, if_neuron(Reset::Soft, FireRule::GreaterEqual, false));
    exiting.readout = Arc::new(toml::from_str::<EarlyExit>("confidence = 0.2").unwrap());
    check_engines_agree(&exiting, cnn, &SimInput::Static(grid_images(cnn, 4)), &config(8, 8, slots), "early exit");

    // Frame input: every step its own frame (frame-major), cycling after 3 frames.
    let frames = SimInput::Frames { data: grid_images(cnn, 3 * 2), frames: 3 };
    let net = spiking(model("name = \"small-cnn\"", cnn), cnn, if_neuron(Reset::Soft, FireRule::GreaterEqual, false));
    check_engines_agree(&net, cnn, &frames, &config(7, 2, slots), "frames");
}

#[test]
fn networks_without_a_layer_graph_are_refused_with_the_reason() {
    let input = [3, 32, 32];
    let vgg = model("name = \"vgg16\"\nwidth = 0.125\npooling = \"max\"", input);
    let net = spiking(vgg, input, if_neuron(Reset::Soft, FireRule::GreaterEqual, false));
    let err = SparseNetwork::compile(&net, input).unwrap_err().to_string();
    assert!(err.contains("layer graph") && err.contains("max pooling"), "{err}");
}

#[test]
fn a_pass_in_order_shows_each_slot_the_changes_made_to_the_earlier_ones() {
    let input = [3, 16, 16];
    let spec = "name = \"resnet20-he\"\nwidth = 0.25\nshortcut = \"conv\"";
    let net = spiking(model(spec, input), input, if_neuron(Reset::Soft, FireRule::GreaterEqual, false));
    let x = grid_images(input, 3);
    let engine = SparseNetwork::compile(&net, input).unwrap();
    let timesteps = 6;
    // Halve every threshold as its slot is reached (the grid stays exact): each slot's input
    // must be the one the network with all earlier slots halved gives.
    let mut changed = net.clone();
    let mut seen: Vec<Vec<f32>> = Vec::new();
    engine.run_in_order(&mut changed, x.clone(), timesteps, |_, layer, input, _| {
        layer.thresholds.iter_mut().for_each(|t| *t *= 0.5);
        seen.push(input.to_vec());
    });
    assert_eq!(seen.len(), net.layers.len());
    let config = SimConfig::new(timesteps, timesteps);
    let mut differs = 0;
    for (slot, got) in seen.iter().enumerate() {
        let want = engine.slot_input(&changed, x.clone(), &config, slot).0;
        close(got, &want, &format!("slot {slot} after the earlier slots changed"));
        let unchanged = engine.slot_input(&net, x.clone(), &config, slot).0;
        differs += usize::from(got != &unchanged);
    }
    // The change reached the later slots (else the test would not test it).
    assert!(differs >= net.layers.len() / 2, "only {differs} slots saw the change");
    assert!(engine.staged_bytes(3, timesteps) > 3 * timesteps * 4 * 16 * 16 * 4, "one slot's T steps at least");
}

#[test]
fn kernel_timings_cover_every_convolution_and_affine_layer() {
    let cnn = [1, 12, 12];
    let net = spiking(model("name = \"small-cnn\"", cnn), cnn, if_neuron(Reset::Soft, FireRule::GreaterEqual, false));
    let sparse = SparseNetwork::compile(&net, cnn).unwrap();
    let timings = sparse.time_kernels(&net, cnn, 2, 1, &Device::flex()).unwrap();
    // The layers whose density the engine measures are the ones timed.
    let (_, _, loads) = sparse.simulate(&net, &SimInput::Static(grid_images(cnn, 1)), &[0], &config(2, 2, 0));
    let timed: Vec<&str> = timings.iter().map(|k| k.layer.as_str()).collect();
    for l in &loads {
        assert!(timed.contains(&l.layer.as_str()), "{} not timed: {timed:?}", l.layer);
    }
    for k in &timings {
        assert!(k.event_dense_input_seconds > 0.0 && k.dense_seconds > 0.0, "{k:?}");
        assert!(k.crossover_density().is_finite() && k.crossover_density() > 0.0, "{k:?}");
    }
}
