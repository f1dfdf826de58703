//! Integrate-and-fire layers stepped as tensor operations on the device
//! (`SimConfig::neurons_on_device`, for GPUs) against the host kernels: on networks whose
//! weights, thresholds and images lie on a power-of-two grid, both give the same spikes per
//! slot, step and sample, the same accuracies and the same outputs. Run here on the CPU
//! backend, which executes the same tensor operations as a GPU backend would.

mod common;

use std::sync::Arc;

use burn::prelude::*;
use common::{assert_same_counts, grid_images, if_neuron, model, slot_shapes, spiking};
use snn::neuron::burst::Burst;
use snn::neuron::integrate_and_fire::IntegrateAndFire;
use snn::readout::early_exit::EarlyExit;
use snn::{
    FireRule, InitPotential, NeuronModel, Reset, SimConfig, SimInput, SimOutput, SpikingNetwork, simulate_input,
};

fn run(net: &SpikingNetwork, images: &Tensor<4>, config: &SimConfig) -> SimOutput {
    let labels: Vec<i64> = (0..images.dims()[0] as i64).map(|i| i % 4).collect();
    simulate_input(net, &SimInput::Static(images.clone()), &labels, config).0
}

fn check_same(net: &SpikingNetwork, images: &Tensor<4>, timesteps: usize, chunk: usize, what: &str) {
    let host_config = SimConfig { output_steps: vec![timesteps], ..SimConfig::new(timesteps, chunk) };
    let device_config = SimConfig { neurons_on_device: true, ..host_config.clone() };
    let host = run(net, images, &host_config);
    let device = run(net, images, &device_config);
    assert_same_counts(&device, &host, what);
    assert_eq!(device.final_output, host.final_output, "{what}: summed outputs");
    assert_eq!(device.outputs_at, host.outputs_at, "{what}: readout outputs");
}

#[test]
fn integrate_and_fire_on_the_device_gives_the_host_spikes() {
    let cnn = [1, 12, 12];
    let rgb = [3, 16, 16];
    let half: Arc<dyn NeuronModel> = Arc::new(IntegrateAndFire {
        reset: Reset::Soft,
        v_init: InitPotential::Half,
        fire: FireRule::Greater,
        input_shift: false,
    });
    type Case<'a> = (&'a str, [usize; 3], Arc<dyn NeuronModel>, &'a str);
    let cases: Vec<Case> = vec![
        ("name = \"small-cnn\"", cnn, if_neuron(Reset::Soft, FireRule::GreaterEqual, false), "soft reset, >="),
        ("name = \"small-cnn\"", cnn, if_neuron(Reset::Hard, FireRule::Greater, true), "hard reset, >, input shift"),
        ("name = \"small-cnn\"", cnn, half, "v(0) = θ/2, >"),
        (
            "name = \"resnet20-he\"\nwidth = 0.25\nshortcut = \"pad\"",
            rgb,
            if_neuron(Reset::Soft, FireRule::GreaterEqual, true),
            "resnet20-he option A, input shift",
        ),
    ];
    for (spec, input, neuron, what) in cases {
        let mut net = spiking(model(spec, input), input, neuron);
        // A per-element initial potential (SNN Calibration's) on the last slot, on the grid.
        let last = net.layers.len() - 1;
        let neurons: usize = slot_shapes(&net.model, grid_images(input, 1))[last].iter().product();
        net.layers[last].v_init = Some((0..neurons).map(|e| (e % 5) as f32 / 32.0).collect());
        // Chunks that do not divide T: the membrane carries across chunks on the device.
        check_same(&net, &grid_images(input, 3), 10, 4, what);
    }
}

#[test]
fn other_neurons_keep_the_host_path_beside_device_layers_and_early_exit_counts_alike() {
    let cnn = [1, 12, 12];
    let mut net =
        spiking(model("name = \"small-cnn\"", cnn), cnn, if_neuron(Reset::Soft, FireRule::GreaterEqual, false));
    // A burst layer (up to 3 spikes per step) in the middle: host path between device layers.
    let burst: Arc<dyn NeuronModel> = Arc::new(toml::from_str::<Burst>("max_spikes = 3").unwrap());
    net.layers[1].neuron = burst;
    check_same(&net, &grid_images(cnn, 4), 9, 3, "IF / burst / IF");
    // An early-exit readout counts each sample's spikes only up to its exit.
    net.readout = Arc::new(toml::from_str::<EarlyExit>("confidence = 0.2").unwrap());
    check_same(&net, &grid_images(cnn, 4), 9, 9, "early exit");
}
