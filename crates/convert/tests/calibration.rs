//! SNN Calibration invariants on a small random network.

use burn::prelude::*;
use burn::tensor::Distribution;
use convert::calibrate::{SlotShape, ann_slot_outputs, channel_mean_difference, correct_layers, correct_slot};
use convert::{MethodConfig, SpecOverrides, convert};
use snn::simulate_recording;
use zoo::{ModelSpec, build_model};

fn setup() -> (zoo::Network, Tensor<4>) {
    let d = Device::flex();
    d.seed(11);
    let spec: ModelSpec = toml::from_str("name = \"small-cnn\"\nbatch_norm = false").unwrap();
    let model = build_model(&spec, [1, 12, 12], 5, &d).unwrap();
    let x = Tensor::<4>::random([32, 1, 12, 12], Distribution::Normal(0.5, 1.0), &d);
    (model, x)
}

fn mean_abs_error(net: &snn::SpikingNetwork, x: &Tensor<4>, t: usize, slot: usize) -> f32 {
    let ann = ann_slot_outputs(net, x);
    let labels = vec![0; x.dims()[0]];
    let (_, snn) = simulate_recording(net, x.clone(), &labels, t, t, &[slot]);
    let (y, shape): &(Vec<f32>, SlotShape) = &ann[slot];
    let e = channel_mean_difference(&snn[slot], y, *shape);
    e.iter().map(|v| v.abs()).sum::<f32>() / e.len() as f32
}

/// SNN Calibration's thresholds at T = 4 without corrections: what the corrections start from.
fn threshold_only(model: &zoo::Network, x: &Tensor<4>) -> snn::SpikingNetwork {
    let method: MethodConfig =
        toml::from_str("kind = \"snn-calibration\"\nmode = \"threshold-only\"\ntimesteps = 4").unwrap();
    convert(model, &method, &SpecOverrides::default(), std::slice::from_ref(x)).unwrap().network
}

#[test]
fn bias_correction_shrinks_the_mean_output_error_of_every_layer() {
    let (model, x) = setup();
    let plain = threshold_only(&model, &x);
    let mut corrected = plain.clone();
    correct_layers(&mut corrected, &x, 4, false);
    for slot in 0..plain.layers.len() {
        let before = mean_abs_error(&plain, &x, 4, slot);
        let after = mean_abs_error(&corrected, &x, 4, slot);
        assert!(after <= before * 0.6 + 1e-4, "slot {slot}: mean error {before} → {after}");
    }
}

#[test]
fn light_and_advanced_modes_set_biases_and_potentials() {
    let (model, x) = setup();
    let parse = |mode: &str| -> MethodConfig {
        toml::from_str(&format!("kind = \"snn-calibration\"\nmode = \"{mode}\"\ntimesteps = 4\ncorrection_images = 16"))
            .unwrap()
    };
    let light = convert(&model, &parse("light"), &SpecOverrides::default(), std::slice::from_ref(&x)).unwrap();
    assert!(light.network.layers.iter().all(|l| l.bias.is_some() && l.v_init.is_none()));
    assert!(
        light.network.layers.iter().all(|l| l.neuron.rate_model().input_shift),
        "the Calibration neuron adds θ/(2T)"
    );
    let adv = convert(&model, &parse("advanced"), &SpecOverrides::default(), std::slice::from_ref(&x)).unwrap();
    assert!(adv.network.layers.iter().all(|l| l.bias.is_some() && l.v_init.is_some()));
}

#[test]
fn ltb_plug_and_play_applies_calibration_on_top_of_ltb_thresholds() {
    let (model, x) = setup();
    let parse = |extra: &str| -> MethodConfig {
        toml::from_str(&format!(
            "kind = \"ltb\"\nchannel_wise = true\niterations = 20\ndelayed_evaluation = true\n\
             correction_timesteps = 4\ncorrection_images = 16\n{extra}"
        ))
        .unwrap()
    };
    let calib = std::slice::from_ref(&x);
    let plain = convert(&model, &parse(""), &SpecOverrides::default(), calib).unwrap().network;
    let light = convert(&model, &parse("correction = \"light\""), &SpecOverrides::default(), calib).unwrap().network;
    let adv = convert(&model, &parse("correction = \"advanced\""), &SpecOverrides::default(), calib).unwrap().network;
    // Same LTB thresholds and delay; the correction only adds biases (and potentials).
    for ((p, l), a) in plain.layers.iter().zip(&light.layers).zip(&adv.layers) {
        assert_eq!(p.thresholds, l.thresholds);
        assert_eq!(p.thresholds, a.thresholds);
        assert!(p.bias.is_none() && p.v_init.is_none());
        assert!(l.bias.is_some() && l.v_init.is_none());
        assert!(a.bias.is_some() && a.v_init.is_some());
    }
    assert_eq!(plain.readout.kind(), "delayed");
    assert_eq!(plain.readout.metrics(), light.readout.metrics());
    // The correction does its job on the LTB network: no layer's mean output error grows and
    // the total shrinks by at least 40 %.
    let (mut total_before, mut total_after) = (0.0, 0.0);
    for slot in 0..plain.layers.len() {
        let before = mean_abs_error(&plain, &x, 4, slot);
        let after = mean_abs_error(&light, &x, 4, slot);
        eprintln!("slot {slot}: mean error {before} → {after}");
        assert!(after <= before + 1e-4, "slot {slot}: mean error {before} → {after}");
        total_before += before;
        total_after += after;
    }
    assert!(total_after <= 0.6 * total_before, "total mean error {total_before} → {total_after}");
}

#[test]
fn one_pass_corrections_equal_slot_by_slot_corrections() {
    // `correct_layers` runs the network once on the event-driven engine, visiting the slots in
    // order; `correct_slot` captures each slot's input with a dense run of its own. Both must
    // give the same biases and initial potentials (up to float summation order).
    let (model, x) = setup();
    let plain = threshold_only(&model, &x);
    let mut staged = plain.clone();
    correct_layers(&mut staged, &x, 4, true);
    let mut per_slot = plain.clone();
    let ann = ann_slot_outputs(&per_slot, &x);
    for (slot, target) in ann.iter().enumerate() {
        correct_slot(&mut per_slot, &x, target, slot, 4, true);
    }
    for (slot, (a, b)) in staged.layers.iter().zip(&per_slot.layers).enumerate() {
        let scale = a.thresholds.iter().copied().fold(0f32, f32::max).max(1e-3);
        let pairs = [(a.bias.as_ref(), b.bias.as_ref()), (a.v_init.as_ref(), b.v_init.as_ref())];
        for (what, (p, q)) in ["bias", "v_init"].iter().zip(pairs) {
            let (p, q) = (p.expect("set"), q.expect("set"));
            assert_eq!(p.len(), q.len());
            for (u, v) in p.iter().zip(q) {
                assert!((u - v).abs() <= 1e-4 * scale, "slot {slot} {what}: {p:?} vs {q:?}");
            }
        }
    }
}
