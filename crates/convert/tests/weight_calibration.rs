//! SNN Calibration's weight calibration (WC): it lowers the SNN's layer errors, touches only
//! the weights feeding the calibrated slot (on a CNN and a ResNet), its quantiser is
//! ClipFloor with a straight-through floor, and specs without it serialize as before.

use std::collections::BTreeMap;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;
use convert::calibrate::{ann_slot_outputs, clip_floor};
use convert::methods::snn_calibration::SnnCalibration;
use convert::weight_calibration::{SteClipFloor, WeightCalibration, calibrate_slot_weights};
use convert::{ConvertError, MethodConfig, SpecOverrides, convert};
use serde::Deserialize;
use snn::neuron::burst::Burst;
use snn::neuron::integrate_and_fire::IntegrateAndFire;
use snn::{InitPotential, NeuronLayerSpec, NeuronModel, SpikingNetwork, simulate_recording};
use zoo::{Convertible, ModelSpec, Network, build_model, tensor_from, tensor_values};

/// The tests seed the global device RNG; running them one at a time keeps them deterministic.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Four noisy 12×12 shape classes (bars, diagonal, square) with random contrast.
fn shapes(n: usize, seed: u64, d: &Device) -> Tensor<4> {
    let mut templates = vec![0f32; 4 * 144];
    for r in 0..12usize {
        for c in 0..12usize {
            templates[r * 12 + c] = f32::from(u8::from((5..7).contains(&r)));
            templates[144 + r * 12 + c] = f32::from(u8::from((5..7).contains(&c)));
            templates[2 * 144 + r * 12 + c] = f32::from(u8::from(r.abs_diff(c) <= 1));
            templates[3 * 144 + r * 12 + c] = f32::from(u8::from((4..8).contains(&r) && (4..8).contains(&c)));
        }
    }
    let mut values = Vec::with_capacity(n * 144);
    for i in 0..n {
        values.extend_from_slice(&templates[(i % 4) * 144..(i % 4 + 1) * 144]);
    }
    d.seed(seed);
    let t = Tensor::<4>::from_data(TensorData::new(values, [n, 1, 12, 12]), d);
    let amp = Tensor::<4>::random([n, 1, 1, 1], Distribution::Uniform(0.4, 1.6), d);
    let noise = Tensor::<4>::random([n, 1, 12, 12], Distribution::Normal(0.0, 0.6), d);
    t * amp + noise
}

/// A small CNN (3 slots) trained for 60 Adam steps on [`shapes`].
fn trained_small_cnn() -> Network {
    let ad = Device::flex().autodiff();
    ad.seed(5);
    let spec: ModelSpec = toml::from_str("name = \"small-cnn\"\nbatch_norm = true\nwidth = 0.5").unwrap();
    let mut m = build_model(&spec, [1, 12, 12], 4, &ad).unwrap();
    let mut opt = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    for step in 0..60 {
        let x = shapes(32, 1000 + step, &ad);
        let y: Vec<i64> = (0..32).map(|i| i % 4).collect();
        let y = Tensor::<1, Int>::from_data(TensorData::new(y, [32]), &ad);
        let loss = loss_fn.forward(m.forward(x), y);
        let g = GradientsParams::from_grads(loss.backward(), &m);
        m = opt.step(5e-3, m, g);
    }
    m.valid().to_device(&Device::flex())
}

fn method(text: &str) -> MethodConfig {
    toml::from_str(&format!("kind = \"snn-calibration\"\n{text}")).unwrap()
}

/// Per slot: mean over elements of (time-averaged SNN output − ANN output)² at T steps, the
/// ANN output from `reference` (the unmodified conversion's weights).
fn slot_mse(net: &SpikingNetwork, reference: &SpikingNetwork, x: &Tensor<4>, t: usize) -> Vec<f64> {
    let ann = ann_slot_outputs(reference, x);
    let slots: Vec<usize> = (0..net.layers.len()).collect();
    let (_, snn) = simulate_recording(net, x.clone(), &vec![0; x.dims()[0]], t, t, &slots);
    slots
        .iter()
        .map(|&s| {
            let y = &ann[s].0;
            snn[s].iter().zip(y).map(|(a, b)| f64::from(a - b).powi(2)).sum::<f64>() / y.len() as f64
        })
        .collect()
}

/// Every float parameter's values by module path.
#[derive(Default)]
struct AllParams {
    path: Vec<String>,
    values: BTreeMap<String, Vec<f32>>,
}

impl ModuleVisitor for AllParams {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.into());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.values.insert(self.path.join("."), tensor_values(param.val()));
    }
}

fn params(model: &Network) -> BTreeMap<String, Vec<f32>> {
    let mut v = AllParams::default();
    model.visit(&mut v);
    v.values
}

/// The parameters whose values differ (bitwise) between two models of the same structure.
fn changed(a: &Network, b: &Network) -> Vec<String> {
    let (a, b) = (params(a), params(b));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter()
        .filter(|(k, v)| v.iter().zip(&b[*k]).any(|(x, y)| x.to_bits() != y.to_bits()))
        .map(|(k, _)| k.clone())
        .collect()
}

const WC: &str = "weight_calibration = true\nweight_calibration_iterations = 300\nweight_calibration_lr = 1e-3\n\
                  weight_calibration_samples = 128";

#[test]
fn weight_calibration_lowers_the_snn_error_of_the_later_layers_at_t4() {
    let _serial = serial();
    let d = Device::flex();
    let model = trained_small_cnn();
    let calib = shapes(128, 3, &d);
    let held_out = shapes(128, 9, &d);
    let run = |text: &str| convert(&model, &method(text), &SpecOverrides::default(), std::slice::from_ref(&calib));
    let base = "timesteps = 4\ncorrection_images = 64";
    let reference = run(&format!("{base}\nmode = \"threshold-only\"")).unwrap().network;
    for mode in ["threshold-only", "advanced"] {
        let plain = run(&format!("{base}\nmode = \"{mode}\"")).unwrap().network;
        let start = std::time::Instant::now();
        let wc = run(&format!("{base}\nmode = \"{mode}\"\n{WC}")).unwrap().network;
        let seconds = start.elapsed().as_secs_f64();
        // Same thresholds; only weights (and the corrections computed on them) differ.
        for (p, w) in plain.layers.iter().zip(&wc.layers) {
            assert_eq!(p.thresholds, w.thresholds);
        }
        assert!(!changed(&plain.model, &wc.model).is_empty());
        for (name, x) in [("calibration", &calib), ("held-out", &held_out)] {
            let before = slot_mse(&plain, &reference, x, 4);
            let after = slot_mse(&wc, &reference, x, 4);
            eprintln!("{mode} {name}: per-slot MSE {before:?} → {after:?} (conversion {seconds:.2}s)");
            // Slot 0 sees the image itself: WC can only trade quantisation residuals there,
            // and its straight-through gradient is biased: it must at least not hurt much.
            assert!(after[0] <= before[0] * 1.01, "{mode} {name} slot 0: {} → {}", before[0], after[0]);
            // Later slots: WC compensates the upstream spiking error.
            for s in 1..before.len() {
                assert!(after[s] < before[s] * 0.99, "{mode} {name} slot {s}: {} → {}", before[s], after[s]);
            }
            let last = before.len() - 1;
            let bound = if mode == "threshold-only" { 0.85 } else { 0.95 };
            assert!(after[last] < before[last] * bound, "{mode} {name} last slot: {} → {}", before[last], after[last]);
        }
    }
}

#[test]
fn weight_calibration_changes_only_the_weights_feeding_the_slot() {
    let _serial = serial();
    let d = Device::flex();
    let model = trained_small_cnn();
    let calib = shapes(64, 3, &d);
    let net = convert(
        &model,
        &method("timesteps = 4\nmode = \"threshold-only\""),
        &SpecOverrides::default(),
        std::slice::from_ref(&calib),
    )
    .unwrap()
    .network;
    let settings = WeightCalibration { iterations: 50, lr: 1e-3, batch: 16, seed: 1 };
    for (slot, weight) in [(0, "conv1"), (1, "conv2"), (2, "fc1")] {
        let mut wc = net.clone();
        let report = calibrate_slot_weights(&mut wc, &net.model, &calib, slot, 4, &settings);
        eprintln!(
            "slot {slot}: {report:?} ({:.2} ms per iteration)",
            1e3 * report.loop_seconds / settings.iterations as f64
        );
        assert_eq!(report.weights, vec![format!("SmallCnn.{weight}.weight")]);
        assert_eq!(report.inputs, (slot.checked_sub(1)).into_iter().collect::<Vec<_>>());
        assert_eq!(changed(&net.model, &wc.model), report.weights, "slot {slot}");
        assert_eq!(wc.layers, net.layers, "neurons are untouched");
        assert!(report.mse_after <= report.mse_before * 1.01, "slot {slot}: {report:?}");
    }

    // A ResNet block with a conv shortcut: its second slot is fed by conv2 (from the
    // block's first slot) and the shortcut conv (from the previous block's output).
    d.seed(2);
    let spec: ModelSpec = toml::from_str("name = \"resnet20-he\"\nbatch_norm = false\nwidth = 0.25").unwrap();
    let resnet = build_model(&spec, [3, 8, 8], 4, &d).unwrap();
    let names: Vec<String> = resnet.slots().into_iter().map(|s| s.name).collect();
    let index = |n: &str| names.iter().position(|x| x == n).unwrap();
    let x = Tensor::<4>::random([16, 3, 8, 8], Distribution::Normal(0.0, 1.0), &d);
    let net = convert(
        &resnet,
        &method("timesteps = 4\nmode = \"threshold-only\""),
        &SpecOverrides::default(),
        std::slice::from_ref(&x),
    )
    .unwrap()
    .network;
    let slot = index("layer2.0.relu2");
    let mut wc = net.clone();
    let settings = WeightCalibration { iterations: 5, lr: 1e-3, batch: 8, seed: 1 };
    let report = calibrate_slot_weights(&mut wc, &net.model, &x, slot, 4, &settings);
    eprintln!("resnet {slot}: {report:?}");
    assert_eq!(report.inputs, vec![index("layer1.2.relu2"), index("layer2.0.relu1")]);
    assert_eq!(report.weights.len(), 2, "{:?}", report.weights);
    assert!(report.weights.iter().any(|w| w.ends_with("conv2.weight")));
    assert!(report.weights.iter().any(|w| w.contains("shortcut") && w.ends_with(".weight")));
    assert_eq!(changed(&net.model, &wc.model), report.weights);
}

#[test]
fn ste_clip_floor_equals_clip_floor_and_passes_the_gradient_inside_the_range() {
    let _serial = serial();
    let d = Device::flex();
    d.seed(4);
    let (c, h, w, t) = (2, 2, 3, 4);
    // (neuron, input shift, v(0) = θ/2, φ, thresholds)
    type Case = (std::sync::Arc<dyn NeuronModel>, bool, bool, f32, Vec<f32>);
    let neurons: [Case; 2] = [
        (
            std::sync::Arc::new(IntegrateAndFire { input_shift: true, ..Default::default() }),
            true,
            false,
            1.0,
            vec![0.5, 1.25],
        ),
        (
            std::sync::Arc::new(Burst { v_init: InitPotential::Half, ..Burst::with_max_spikes(3) }),
            false,
            true,
            3.0,
            vec![0.8],
        ),
    ];
    for (neuron, input_shift, half_init, phi, thresholds) in neurons {
        let mut spec = NeuronLayerSpec::new(neuron, thresholds.clone());
        spec.bias = Some(vec![0.1, -0.2]);
        spec.v_init = Some((0..c * h * w).map(|i| 0.05 * i as f32 - 0.2).collect());
        let theta = |ch: usize| if thresholds.len() == 1 { thresholds[0] } else { thresholds[ch] };
        // o = b_c + [shift] θ/(2T) + [half] (θ/2)/T + v_init/T
        let offset = |e: usize| {
            let ch = e / (h * w);
            let shift = if input_shift { theta(ch) / (2.0 * t as f32) } else { 0.0 };
            let half = if half_init { theta(ch) / 2.0 / t as f32 } else { 0.0 };
            spec.bias.as_ref().unwrap()[ch] + shift + half + spec.v_init.as_ref().unwrap()[e] / t as f32
        };
        let n = 64;
        let z = Tensor::<4>::random([n, c, h, w], Distribution::Uniform(-1.0, 3.5), &d);
        let zs = tensor_values(z.clone());
        let q = SteClipFloor::for_slot(&spec, [c, h, w], t, &d);
        let got = tensor_values(q.apply(z.clone()));
        for (i, (g, zv)) in got.iter().zip(&zs).enumerate() {
            let e = i % (c * h * w);
            let expected = clip_floor(zv + offset(e), t as f32, theta(e / (h * w)), phi);
            assert_eq!(g.to_bits(), expected.to_bits(), "element {i}: z = {zv}: {g} vs {expected}");
        }
        // The quantiser takes every value a neuron can output, including 0 and φθ.
        assert!(got.contains(&0.0));
        // Straight-through: ∂q/∂z = 1 inside (0, φθ) (of z + o), 0 where it clamps.
        let ad = d.clone().autodiff();
        let za = tensor_from(zs.clone(), [n, c, h, w], &ad).require_grad();
        let qa = SteClipFloor::for_slot(&spec, [c, h, w], t, &ad);
        let grads = qa.apply(za.clone()).sum().backward();
        let g = tensor_values(za.grad(&grads).unwrap());
        let (mut inside, mut outside) = (0, 0);
        for (i, (gv, zv)) in g.iter().zip(&zs).enumerate() {
            let e = i % (c * h * w);
            let u = (zv + offset(e)) / theta(e / (h * w));
            if u > 0.0 && u < phi {
                assert!((gv - 1.0).abs() < 1e-5, "element {i}: gradient {gv} inside the range");
                inside += 1;
            } else {
                assert_eq!(*gv, 0.0, "element {i}: gradient {gv} outside the range");
                outside += 1;
            }
        }
        assert!(inside > 0 && outside > 0);
    }
}

#[test]
fn specs_without_weight_calibration_serialize_as_before() {
    let _serial = serial();
    // The serialized form the runner hashes into cache keys, as before WC existed.
    let plain = method("");
    assert_eq!(
        serde_json::to_string(&plain).unwrap(),
        r#"{"kind":"snn-calibration","mode":"light","channel_wise":false,"timesteps":32,"correction_images":128}"#
    );
    let adv =
        method("mode = \"advanced\"\ntimesteps = 8\nweight_calibration = false\nweight_calibration_iterations = 5000");
    assert_eq!(
        serde_json::to_string(&adv).unwrap(),
        r#"{"kind":"snn-calibration","mode":"advanced","channel_wise":false,"timesteps":8,"correction_images":128}"#
    );
    // With WC on, only the keys that differ from the defaults appear; round trips.
    let wc = method("mode = \"advanced\"\nweight_calibration = true\nweight_calibration_iterations = 200");
    let json = serde_json::to_string(&wc).unwrap();
    assert!(json.ends_with(r#""weight_calibration":true,"weight_calibration_iterations":200}"#), "{json}");
    assert_eq!(serde_json::from_str::<MethodConfig>(&json).unwrap(), wc);
    let c = SnnCalibration::deserialize(toml::Value::Table(wc.params().clone())).unwrap();
    assert_eq!(
        c.weight_settings(),
        WeightCalibration { iterations: 200, lr: 1e-5, batch: 32, seed: 0 },
        "the paper's lr and batch by default"
    );
    assert_eq!((c.weight_calibration_samples, SnnCalibration::default().weight_calibration), (1024, false));
    // Unknown keys are rejected; ranges are checked.
    assert!(toml::from_str::<MethodConfig>("kind = \"snn-calibration\"\nweight_calibration_epochs = 3").is_err());
    for bad in [
        "weight_calibration_iterations = 0",
        "weight_calibration_batch = 0",
        "weight_calibration_samples = 0",
        "weight_calibration_lr = 0.0",
        "weight_calibration_lr = -1e-5",
    ] {
        let table: toml::Table = toml::from_str(&format!("kind = \"snn-calibration\"\n{bad}")).unwrap();
        assert!(matches!(MethodConfig::parse(&table), Err(ConvertError::InvalidParameter { .. })), "`{bad}` accepted");
    }
}
