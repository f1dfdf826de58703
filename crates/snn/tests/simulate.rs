//! The layer-by-layer engine against a step-by-step reference.

use burn::prelude::*;
use burn::tensor::Distribution;
use snn::{
    LayerNeurons, NeuronLayerSpec, NeuronOptions, SpikingNetwork, simulate_batch, simulate_recording,
    simulate_slot_input,
};
use zoo::{Convertible, ModelSpec, build_model};

fn network(seed: u64) -> SpikingNetwork {
    let d = Device::flex();
    d.seed(seed);
    let spec: ModelSpec = toml::from_str("name = \"small-cnn\"\nbatch_norm = false").unwrap();
    let model = build_model(&spec, [1, 12, 12], 5, &d).unwrap();
    let layers = model
        .slots()
        .iter()
        .enumerate()
        .map(|(i, _)| NeuronLayerSpec::new(NeuronOptions::default(), vec![0.3 + 0.1 * i as f32]))
        .collect();
    SpikingNetwork::new(model, layers)
}

#[test]
fn layer_by_layer_equals_step_by_step() {
    let d = Device::flex();
    let net = network(7);
    let x = Tensor::<4>::random([3, 1, 12, 12], Distribution::Normal(0.0, 1.0), &d);
    let labels = [0i64, 1, 2];
    let t = 12;
    let folded = simulate_batch(&net, x.clone(), &labels, t, t); // all steps in one pass
    let stepwise = simulate_batch(&net, x.clone(), &labels, t, 1); // one step per pass
    let chunked = simulate_batch(&net, x, &labels, t, 5); // uneven chunks carry state over
    assert_eq!(folded.spikes, stepwise.spikes);
    assert_eq!(folded.spikes, chunked.spikes);
    assert_eq!(folded.correct_at_t, stepwise.correct_at_t);
    for (a, b) in folded.final_output.iter().zip(&stepwise.final_output) {
        assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{a} vs {b}");
    }
    assert!(folded.spikes.iter().any(|s| s.iter().sum::<u64>() > 0), "the test network must spike");
}

#[test]
fn output_accumulates_over_steps() {
    let d = Device::flex();
    let net = network(9);
    let x = Tensor::<4>::random([2, 1, 12, 12], Distribution::Normal(0.0, 1.0), &d);
    let one = simulate_batch(&net, x.clone(), &[0, 0], 1, 1);
    let two = simulate_batch(&net, x, &[0, 0], 2, 2);
    assert_eq!(one.correct_at_t.len(), 1);
    assert_eq!(two.correct_at_t.len(), 2);
    assert_eq!(two.correct_at_t[0], one.correct_at_t[0]);
    assert_eq!(two.spikes[0][0], one.spikes[0][0]);
}

#[test]
fn delayed_readout_ignores_the_first_steps() {
    let d = Device::flex();
    let mut net = network(5);
    assert_eq!(net.readout_skip(10), 0);
    net.readout_delay = Some(3);
    assert_eq!((net.readout_skip(2), net.readout_skip(6), net.readout_skip(7), net.readout_skip(20)), (0, 2, 3, 3));
    // The delayed prediction at t equals the plain prediction of the window's outputs: with a
    // delay of 0 the readout is the plain sum.
    net.readout_delay = Some(0);
    let x = Tensor::<4>::random([4, 1, 12, 12], Distribution::Normal(0.0, 1.0), &d);
    let delayed = simulate_batch(&net, x.clone(), &[0, 1, 2, 3], 8, 3);
    net.readout_delay = None;
    let plain = simulate_batch(&net, x, &[0, 1, 2, 3], 8, 3);
    assert_eq!(delayed.correct_at_t[4..], plain.correct_at_t[4..]);
}

fn dynamic(mut net: SpikingNetwork) -> SpikingNetwork {
    for l in &mut net.layers {
        l.options = NeuronOptions { dynamic_threshold: true, dynamic_threshold_alpha: 0.5, max_spikes: 3, ..l.options };
    }
    net
}

#[test]
fn omega_record_is_exact_across_chunks() {
    let d = Device::flex();
    let net = dynamic(network(7));
    let x = Tensor::<4>::random([3, 1, 12, 12], Distribution::Normal(0.0, 1.0), &d);
    let labels = [0i64, 1, 2];
    let t = 6;
    let folded = simulate_batch(&net, x.clone(), &labels, t, t);
    let stepwise = simulate_batch(&net, x.clone(), &labels, t, 1);
    let chunked = simulate_batch(&net, x, &labels, t, 4);
    assert_eq!(folded.spikes, stepwise.spikes);
    assert_eq!(folded.omega, stepwise.omega);
    assert_eq!(folded.omega, chunked.omega);
    assert_eq!(folded.omega.len(), net.layers.len());
    for slot in &folded.omega {
        assert_eq!(slot.len(), t);
        for w in slot {
            assert_eq!(w.samples, 3);
            assert!(0.5 <= w.min && w.min <= w.max && w.max <= 1.0, "{w:?}");
        }
        // e^{−(t−1)} shrinks the adjustment: ω(6) ≥ 1 − 0.5·e^{−5}.
        assert!(slot[t - 1].min >= 1.0 - 0.5 * (-5.0f32).exp() - 1e-6);
    }
    assert!(folded.omega[0][0].min < 1.0, "the first step lowers the threshold");
    // Without the dynamic threshold there is no ω record.
    let plain = simulate_batch(&network(7), Tensor::<4>::zeros([1, 1, 12, 12], &d), &[0], 2, 2);
    assert!(plain.omega.iter().all(Vec::is_empty));
}

#[test]
fn captured_slot_input_replays_to_the_simulated_output() {
    // Replaying the captured input of a slot through that slot's neurons gives exactly the
    // slot's simulated output, also with the dynamic threshold (which couples the neurons).
    let d = Device::flex();
    let net = dynamic(network(3));
    let x = Tensor::<4>::random([2, 1, 12, 12], Distribution::Normal(0.0, 1.0), &d);
    let t = 5;
    for slot in 0..net.layers.len() {
        let (mut input, [c, inner]) = simulate_slot_input(&net, x.clone(), t, 2, slot);
        assert_eq!(input.len(), t * 2 * c * inner);
        let mut neurons = LayerNeurons::new(net.layers[slot].clone(), 2, c, inner, t);
        neurons.run(&mut input);
        let n = 2 * c * inner;
        let replayed: Vec<f32> = (0..n).map(|i| (0..t).map(|s| input[s * n + i]).sum::<f32>() / t as f32).collect();
        let (_, rec) = simulate_recording(&net, x.clone(), &[0, 0], t, 3, &[slot]);
        for (a, b) in replayed.iter().zip(&rec[slot]) {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "slot {slot}: {a} vs {b}");
        }
    }
}
