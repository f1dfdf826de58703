//! Threshold balancing on the SNN (Spike-Norm, Sengupta et al. 2019; RMP-SNN, Han et al. 2020)
//! on a small random network: each layer's threshold is the largest input it receives while the
//! earlier, already balanced layers spike.

use burn::prelude::*;
use burn::tensor::Distribution;
use convert::{MethodConfig, SpecOverrides, convert};
use snn::simulate_slot_input;
use zoo::{ModelSpec, build_model};

fn setup() -> (zoo::Network, Tensor<4>) {
    let d = Device::flex();
    d.seed(31);
    let spec: ModelSpec = toml::from_str("name = \"small-cnn\"\nbatch_norm = false").unwrap();
    let model = build_model(&spec, [1, 12, 12], 5, &d).unwrap();
    let x = Tensor::<4>::random([24, 1, 12, 12], Distribution::Normal(0.5, 1.0), &d);
    (model, x)
}

fn method(s: &str) -> MethodConfig {
    toml::from_str(s).unwrap()
}

#[test]
fn every_threshold_is_the_largest_input_its_layer_receives_from_the_balanced_layers_before_it() {
    let (model, x) = setup();
    let calib = std::slice::from_ref(&x);
    let spike_norm = convert(
        &model,
        &method("kind = \"spike-norm\"\ntimesteps = 16\nimages = 24"),
        &SpecOverrides::default(),
        calib,
    )
    .unwrap()
    .network;
    for (slot, layer) in spike_norm.layers.iter().enumerate() {
        assert_eq!(layer.thresholds.len(), 1, "layer-wise");
        let (input, _) = simulate_slot_input(&spike_norm, x.clone(), 16, 16, slot);
        let max = input.iter().copied().fold(0f32, f32::max);
        assert!(
            (layer.thresholds[0] - max).abs() <= 1e-6 * max.max(1.0),
            "slot {slot}: θ {} vs max input {max}",
            layer.thresholds[0]
        );
    }
    // Direct input coding: the first layer's input is the ANN's pre-activation at every step, so
    // its threshold is max-norm's.
    let max_norm = convert(&model, &method("kind = \"max-norm\""), &SpecOverrides::default(), calib).unwrap().network;
    let (a, b) = (spike_norm.layers[0].thresholds[0], max_norm.layers[0].thresholds[0]);
    assert!((a - b).abs() <= 1e-5 * b, "{a} vs {b}");
    // The original setting resets to zero.
    assert_eq!(spike_norm.layers[0].neuron.config()["reset"].as_str(), Some("hard"));
}

#[test]
fn rmp_balances_with_soft_reset_and_scales_its_thresholds() {
    let (model, x) = setup();
    let calib = std::slice::from_ref(&x);
    let one = convert(&model, &method("kind = \"rmp\"\ntimesteps = 16\nimages = 24"), &SpecOverrides::default(), calib)
        .unwrap()
        .network;
    assert_eq!(one.layers[0].neuron.config()["reset"].as_str(), Some("soft"));
    let half = convert(
        &model,
        &method("kind = \"rmp\"\ntimesteps = 16\nimages = 24\nthreshold_scale = 0.5"),
        &SpecOverrides::default(),
        calib,
    )
    .unwrap()
    .network;
    for (a, b) in one.layers.iter().zip(&half.layers) {
        assert!((b.thresholds[0] - 0.5 * a.thresholds[0]).abs() <= 1e-6 * a.thresholds[0]);
    }
    // Soft-reset neurons see different spike trains than hard-reset ones: deeper thresholds differ.
    let sn = convert(
        &model,
        &method("kind = \"spike-norm\"\ntimesteps = 16\nimages = 24"),
        &SpecOverrides::default(),
        calib,
    )
    .unwrap()
    .network;
    assert_eq!(one.layers[0].thresholds, sn.layers[0].thresholds);
    assert!(one.layers.iter().zip(&sn.layers).skip(1).any(|(a, b)| a.thresholds != b.thresholds));
    assert!(toml::from_str::<MethodConfig>("kind = \"rmp\"\nthreshold_scale = 0.0").is_err());
}
