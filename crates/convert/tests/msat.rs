//! MSAT (paper 003) on a small random network: max-activation thresholds, the `msat` neuron in
//! every layer, spike confidence in the last layer only, `[method.neuron]` overrides.

use burn::prelude::*;
use burn::tensor::Distribution;
use convert::{Conversion, MethodConfig, SpecOverrides, convert};
use snn::{SimConfig, simulate};
use zoo::{ModelSpec, build_model};

/// The tests seed the global device RNG; running them one at a time keeps them deterministic.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn setup() -> (zoo::Network, Tensor<4>) {
    let d = Device::flex();
    d.seed(29);
    let spec: ModelSpec = toml::from_str("name = \"small-cnn\"\nbatch_norm = false").unwrap();
    let model = build_model(&spec, [1, 12, 12], 5, &d).unwrap();
    let x = Tensor::<4>::random([24, 1, 12, 12], Distribution::Normal(0.5, 1.0), &d);
    (model, x)
}

fn method(text: &str) -> MethodConfig {
    toml::from_str(text).unwrap()
}

fn run(
    model: &zoo::Network,
    x: &Tensor<4>,
    text: &str,
    neuron: toml::Table,
) -> Result<Conversion, convert::ConvertError> {
    let overrides = SpecOverrides { neuron, ..SpecOverrides::default() };
    convert(model, &method(text), &overrides, std::slice::from_ref(x))
}

fn thresholds(c: &Conversion) -> Vec<Vec<f32>> {
    c.network.layers.iter().map(|l| l.thresholds.clone()).collect()
}

fn confidence(c: &Conversion, slot: usize) -> f64 {
    c.network.layers[slot].neuron.config()["confidence"].as_float().unwrap()
}

#[test]
fn thresholds_are_max_norms_at_p100_and_every_layer_is_an_msat_neuron() {
    let _serial = serial();
    let (model, x) = setup();
    let msat = run(&model, &x, "kind = \"msat\"", toml::Table::new()).unwrap();
    let max = run(&model, &x, "kind = \"max-norm\"", toml::Table::new()).unwrap();
    assert!(msat.network.layers.len() >= 2);
    assert_eq!(thresholds(&msat), thresholds(&max));
    assert!(thresholds(&msat).iter().all(|t| t.len() == 1 && t[0] > 0.0));
    for layer in &msat.network.layers {
        let config = layer.neuron.config();
        assert_eq!(layer.neuron.kind(), "msat");
        assert_eq!(config["preset"].as_str(), Some("vgg16"));
        assert_eq!((config["dtt"].as_bool(), config["det"].as_bool()), (Some(true), Some(true)));
        assert_eq!(config["confidence"].as_float(), Some(1.0));
    }
    // Below 100: robust-norm's percentile of the positive outputs.
    let p99 = run(&model, &x, "kind = \"msat\"\npercentile = 99.0", toml::Table::new()).unwrap();
    let robust = run(&model, &x, "kind = \"robust-norm\"\npercentile = 99.0", toml::Table::new()).unwrap();
    assert_eq!(thresholds(&p99), thresholds(&robust));
    // The code's reading (zeros counted) can only be lower.
    let zeros = run(&model, &x, "kind = \"msat\"\npercentile = 99.0\ncount_zeros = true", toml::Table::new()).unwrap();
    assert!(thresholds(&zeros).iter().zip(thresholds(&p99)).all(|(a, b)| a[0] <= b[0]));
}

#[test]
fn only_the_last_layer_gets_the_confidence() {
    let _serial = serial();
    let (model, x) = setup();
    let c = run(&model, &x, "kind = \"msat\"\nlast_layer_confidence = 0.683", toml::Table::new()).unwrap();
    let last = c.network.layers.len() - 1;
    assert!((confidence(&c, last) - 0.683).abs() < 1e-6);
    for slot in 0..last {
        assert_eq!(confidence(&c, slot), 1.0, "slot {slot}");
    }
    // Everything else of the last layer's neuron is unchanged.
    let mut config = c.network.layers[last].neuron.config();
    config.insert("confidence".into(), toml::Value::Float(1.0));
    assert_eq!(config, c.network.layers[0].neuron.config());
    // Thresholds as without spike confidence.
    let plain = run(&model, &x, "kind = \"msat\"", toml::Table::new()).unwrap();
    assert_eq!(thresholds(&c), thresholds(&plain));

    // Simulated: with confidence 0 the last layer is silent in its first 16 steps only; the
    // threshold factor is recorded per step, θ = λ at t = 1; the same seeds give the same run.
    let silent = run(&model, &x, "kind = \"msat\"\nlast_layer_confidence = 0.0", toml::Table::new()).unwrap();
    let labels = vec![0i64; x.dims()[0]];
    let config = SimConfig::new(24, 8);
    let (out, _) = simulate(&silent.network, x.clone(), &labels, &config);
    let spikes = &out.spikes[last];
    assert!(spikes[..16].iter().all(|&s| s == 0), "{spikes:?}");
    assert!(spikes[16..].iter().sum::<u64>() > 0, "{spikes:?}");
    let (reference, _) = simulate(&plain.network, x.clone(), &labels, &config);
    assert!(reference.spikes[last][..16].iter().sum::<u64>() > 0, "the last layer fires without SC");
    for (slot, d) in out.diagnostics.iter().enumerate() {
        assert_eq!((d[0].metric, d[0].per_step.len()), ("threshold_factor", 24), "slot {slot}");
        assert_eq!((d[0].per_step[0].min, d[0].per_step[0].max), (1.0, 1.0));
        assert!(d[0].per_step[1..].iter().all(|s| s.min > 0.0 && s.max <= 1.0 && s.mean() < 1.0), "slot {slot}");
    }
    let half = run(&model, &x, "kind = \"msat\"\nlast_layer_confidence = 0.5", toml::Table::new()).unwrap();
    let again = |seed: u64| {
        let config = SimConfig { batch_seed: seed, ..SimConfig::new(16, 16) };
        simulate(&half.network, x.clone(), &labels, &config).0.final_output
    };
    assert_eq!(again(3), again(3));
    assert_ne!(again(3), again(4));
}

#[test]
fn a_neuron_override_reaches_every_layer() {
    let _serial = serial();
    let (model, x) = setup();
    let overrides = toml::toml! {
        dtt = false
        preset = "resnet20"
    };
    let c = run(&model, &x, "kind = \"msat\"\nlast_layer_confidence = 0.566", overrides).unwrap();
    let last = c.network.layers.len() - 1;
    for (slot, layer) in c.network.layers.iter().enumerate() {
        let config = layer.neuron.config();
        assert_eq!(layer.neuron.kind(), "msat");
        assert_eq!(config["dtt"].as_bool(), Some(false), "slot {slot}");
        assert_eq!(config["det"].as_bool(), Some(true), "slot {slot}");
        assert_eq!(config["preset"].as_str(), Some("resnet20"), "slot {slot}");
        assert_eq!(confidence(&c, slot) != 1.0, slot == last, "slot {slot}");
    }
    // The fixed-threshold ablation (0.7λ) through the override.
    let fixed = toml::toml! {
        dtt = false
        det = false
        fixed_fraction = 0.7
    };
    let c = run(&model, &x, "kind = \"msat\"", fixed).unwrap();
    assert!(c.network.layers.iter().all(|l| l.neuron.config()["fixed_fraction"].as_float() == Some(0.7f32 as f64)));
}

#[test]
fn parameters_are_checked_and_a_neuron_without_confidence_is_a_clear_error() {
    let _serial = serial();
    let parse = |text: &str| toml::from_str::<MethodConfig>(text).map_err(|e| e.to_string());
    assert!(parse("kind = \"msat\"").is_ok());
    assert!(convert::method_kinds().iter().any(|k| k.name == "msat"));
    for bad in [
        "percentile = 0.0",
        "percentile = 100.5",
        "last_layer_confidence = 1.2",
        "last_layer_confidence = -0.1",
        "confidence = 0.5",
    ] {
        assert!(parse(&format!("kind = \"msat\"\n{bad}")).is_err(), "{bad}");
    }
    let (model, x) = setup();
    // A bad neuron parameter is the neuron's error.
    let err = run(&model, &x, "kind = \"msat\"", toml::toml! { c = 0.0 }).unwrap_err().to_string();
    assert!(err.contains("c must be positive"), "{err}");
    // Another neuron kind: fine without spike confidence, a clear error with it.
    let plain = toml::toml! { kind = "if" };
    assert!(run(&model, &x, "kind = \"msat\"", plain.clone()).is_ok());
    let err = run(&model, &x, "kind = \"msat\"\nlast_layer_confidence = 0.5", plain).unwrap_err().to_string();
    assert!(err.contains("confidence") && err.contains("msat"), "{err}");
}
