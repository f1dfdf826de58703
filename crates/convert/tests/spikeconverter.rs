//! SpikeConverter (Liu et al. 2022) end to end on a small residual network: windowed iLIF
//! layers pass on a T-bit quantisation of the ANN's activations, so the SNN approaches the
//! ANN quickly in T, with residual shortcuts aligned, and reports its pipelined latency.

use burn::prelude::*;
use burn::tensor::Distribution;
use convert::calibrate::ann_slot_outputs;
use convert::{MethodConfig, SpecOverrides, convert};
use snn::readout::argmax_rows;
use snn::{SimConfig, simulate};
use zoo::{ModelSpec, build_model, tensor_values};

fn setup() -> (zoo::Network, Tensor<4>) {
    let d = Device::flex();
    d.seed(5);
    let spec: ModelSpec = toml::from_str("name = \"resnet20-he\"\nwidth = 0.5\nbatch_norm = false").unwrap();
    let model = build_model(&spec, [3, 12, 12], 10, &d).unwrap();
    let x = Tensor::<4>::random([24, 3, 12, 12], Distribution::Normal(0.0, 1.0), &d);
    (model, x)
}

fn method(t: u32) -> MethodConfig {
    toml::from_str(&format!("kind = \"spikeconverter\"\ntimesteps = {t}\nmax_samples = 3000")).unwrap()
}

#[test]
fn the_snn_approaches_the_ann_layer_by_layer_as_t_grows() {
    let (model, x) = setup();
    let n = x.dims()[0];
    let mut last_error = f32::INFINITY;
    for t in [3usize, 6, 12] {
        let conversion =
            convert(&model, &method(t as u32), &SpecOverrides::default(), std::slice::from_ref(&x)).unwrap();
        let net = &conversion.network;
        let slots = net.layers.len();
        let ann = ann_slot_outputs(net, &x);
        let record: Vec<usize> = (0..slots).collect();
        let (out, means) = simulate(net, x.clone(), &vec![0; n], &SimConfig { record, ..SimConfig::new(t, 4) });
        assert_eq!(out.latency, slots * t, "every layer lags its input by one window");
        // The deepest layer's decoded output against the ANN's, relative to its range.
        let deepest = slots - 1;
        let (y, _) = &ann[deepest];
        let range = y.iter().copied().fold(0.0f32, f32::max).max(1e-6);
        let error = means[deepest].iter().zip(y).map(|(a, b)| (a - b).abs()).sum::<f32>() / y.len() as f32 / range;
        assert!(error < last_error, "T = {t}: error {error} did not shrink from {last_error}");
        last_error = error;
    }
    assert!(last_error < 2e-3, "at T = 12 (12-bit layers) the deepest layer is within 0.2 % of the ANN: {last_error}");
}

#[test]
fn at_t16_the_snn_predicts_what_the_ann_predicts() {
    let (model, x) = setup();
    let n = x.dims()[0];
    let conversion = convert(&model, &method(16), &SpecOverrides::default(), std::slice::from_ref(&x)).unwrap();
    let net = &conversion.network;
    let logits = tensor_values(net.model.forward(x.clone()));
    let ann: Vec<i64> = argmax_rows(&logits, 10).into_iter().map(|c| c as i64).collect();
    let (out, _) = simulate(net, x, &ann, &SimConfig::new(16, 16));
    assert_eq!(out.correct_at_t[15], n as u64, "the SNN at T = 16 agrees with the ANN on every sample");
    assert_eq!(net.readout.kind(), "ilif-decode");
    // The chosen thresholds cover (nearly) the whole range of each layer at 16 bits.
    let ratios: Vec<f64> =
        conversion.records.iter().filter(|r| r.metric == "threshold_ratio").map(|r| r.value).collect();
    assert_eq!(ratios.len(), net.layers.len());
    assert!(ratios.iter().all(|r| *r > 0.5 && *r <= 1.0), "{ratios:?}");
}

#[test]
fn a_rate_coded_neuron_is_rejected_with_a_clear_message() {
    let (model, x) = setup();
    let overrides = SpecOverrides { neuron: toml::from_str("kind = \"if\"").unwrap(), ..SpecOverrides::default() };
    let err = convert(&model, &method(8), &overrides, std::slice::from_ref(&x)).unwrap_err().to_string();
    assert!(err.contains("spikeconverter") && err.contains("ilif"), "{err}");
}
