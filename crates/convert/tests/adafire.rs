//! Adaptive Calibration (Wang et al. 2024) on a small random network: the φ search respects
//! its energy budget and beats one φ for all at equal T, SSC trades sensitivity for spikes
//! within its budget, and IAT's readout exits early.

use std::collections::HashMap;

use burn::prelude::*;
use burn::tensor::Distribution;
use convert::methods::adafire::{softmax_rows, symmetric_kl};
use convert::{Conversion, MethodConfig, SpecOverrides, convert};
use snn::{SimConfig, simulate};
use zoo::{ModelSpec, build_model, tensor_values};

fn setup() -> (zoo::Network, Tensor<4>) {
    let d = Device::flex();
    d.seed(23);
    let spec: ModelSpec = toml::from_str("name = \"small-cnn\"\nbatch_norm = false").unwrap();
    let model = build_model(&spec, [1, 12, 12], 5, &d).unwrap();
    let x = Tensor::<4>::random([48, 1, 12, 12], Distribution::Normal(0.5, 1.0), &d);
    (model, x)
}

fn adafire(model: &zoo::Network, x: &Tensor<4>, extra: &str) -> Conversion {
    let method: MethodConfig = toml::from_str(&format!(
        "kind = \"adafire\"\ntimesteps = 4\nsearch_images = 32\ncorrection_images = 32\niat_images = 48\n{extra}"
    ))
    .unwrap();
    convert(model, &method, &SpecOverrides::default(), std::slice::from_ref(x)).unwrap()
}

/// Per-layer rows (`slot<i>` → value) of `metric`; each names its slot.
fn rows(c: &Conversion, metric: &str) -> HashMap<String, f64> {
    c.records
        .iter()
        .filter(|r| r.metric == metric)
        .map(|r| {
            let slot = r.slot.expect("a per-slot row");
            assert_eq!(r.layer, c.slots[slot].name);
            (format!("slot{slot}"), r.value)
        })
        .collect()
}

/// Sensitivity of the whole network on `x` (symmetric KL to the ANN) and its spikes per image.
fn sensitivity(c: &Conversion, x: &Tensor<4>, t: usize) -> (f64, f64) {
    let n = x.dims()[0];
    let q = tensor_values(c.network.model.forward(x.clone()));
    let classes = q.len() / n;
    let (out, _) = simulate(&c.network, x.clone(), &vec![0; n], &SimConfig::new(t, t));
    let p: Vec<f32> = out.final_output.iter().map(|v| v / t as f32).collect();
    let spikes = out.spikes.iter().flatten().sum::<u64>() as f64 / n as f64;
    (symmetric_kl(&softmax_rows(&p, classes), &softmax_rows(&q, classes), classes), spikes)
}

#[test]
fn phi_search_stays_within_its_energy_budget_and_beats_a_uniform_phi_of_one() {
    let (model, x) = setup();
    let searched = adafire(&model, &x, "");
    let slots = searched.network.layers.len();
    let phi = rows(&searched, "phi");
    assert_eq!(phi.len(), slots);
    // Each layer's neuron carries its φ, within the candidates 1..8.
    for (slot, layer) in searched.network.layers.iter().enumerate() {
        let k = phi[&format!("slot{slot}")];
        assert!((1.0..=8.0).contains(&k));
        assert_eq!(layer.neuron.config()["max_spikes"].as_integer(), Some(k as i64));
        assert_eq!(layer.neuron.kind(), "burst");
    }
    // The chosen φ's measured energies sum to at most 0.95 × the energy at φ = 4.
    let energy = |k: f64, slot: usize| rows(&searched, &format!("energy_phi{k}"))[&format!("slot{slot}")];
    let chosen: f64 = (0..slots).map(|s| energy(phi[&format!("slot{s}")], s)).sum();
    let budget: f64 = 0.95 * (0..slots).map(|s| energy(4.0, s)).sum::<f64>();
    assert!(chosen <= budget + 1e-9, "{chosen} > {budget}");
    // The chosen point is on the recorded frontier.
    assert_eq!(searched.records.iter().filter(|r| r.metric == "pareto_chosen").count(), 1);
    // Plain IF neurons (φ = 1) at the same T: the burst network is closer to the ANN.
    let plain = adafire(&model, &x, "phi_search = false\nmax_spikes = 1");
    assert!(rows(&plain, "phi").values().all(|&k| k == 1.0));
    let (s_burst, _) = sensitivity(&searched, &x, 4);
    let (s_plain, _) = sensitivity(&plain, &x, 4);
    assert!(s_burst < s_plain, "sensitivity with the φ search {s_burst} vs φ = 1 {s_plain}");
}

#[test]
fn ssc_raises_thresholds_and_cuts_spikes_within_its_sensitivity_budget() {
    let (model, x) = setup();
    let base = adafire(&model, &x, "");
    // A loose sensitivity budget (×3) leaves room to compress.
    let ssc = adafire(&model, &x, "ssc = true\nssc_budget = 3.0");
    let rho = rows(&ssc, "rho");
    assert_eq!(rho.len(), ssc.network.layers.len());
    assert!(rho.values().all(|r| (1.0..=10.0).contains(r)));
    assert!(rho.values().any(|&r| r > 1.0), "nothing compressed: {rho:?}");
    // The same φ as without SSC (SSC runs after the φ search).
    assert_eq!(rows(&base, "phi"), rows(&ssc, "phi"));
    // The budget holds on the measured per-layer sensitivities.
    let sens = |r: f64, slot: usize| rows(&ssc, &format!("sensitivity_rho{r}"))[&format!("slot{slot}")];
    let slots = ssc.network.layers.len();
    let total: f64 = (0..slots).map(|s| sens(rho[&format!("slot{s}")], s)).sum();
    let budget: f64 = 3.0 * (0..slots).map(|s| sens(1.0, s)).sum::<f64>();
    assert!(total <= budget + 1e-9);
    let (_, spikes_base) = sensitivity(&base, &x, 4);
    let (_, spikes_ssc) = sensitivity(&ssc, &x, 4);
    assert!(spikes_ssc < spikes_base, "SSC spikes {spikes_ssc} vs {spikes_base}");
}

#[test]
fn iat_sets_an_early_exit_readout_with_rising_thresholds() {
    let (model, x) = setup();
    let c = adafire(&model, &x, "iat = \"adaptive\"\nphi_search = false");
    assert_eq!(c.network.readout.kind(), "early-exit");
    let alphas: Vec<f64> = c.records.iter().filter(|r| r.metric == "iat_alpha").map(|r| r.value).collect();
    assert_eq!(alphas.len(), 4);
    // Eq. 18: between α_base and α_base + β, the largest at the step of least entropy.
    assert!(alphas.iter().all(|a| (0.6 - 1e-6..=1.0 + 1e-6).contains(a)), "{alphas:?}");
    assert!(alphas.iter().any(|a| (a - 1.0).abs() < 1e-6));
    let n = x.dims()[0];
    let (out, _) = simulate(&c.network, x.clone(), &vec![0; n], &SimConfig::new(4, 4));
    assert_eq!(out.exit_steps.len(), n);
    // A uniform threshold: one α, the mean of the adaptive ones.
    let u = adafire(&model, &x, "iat = \"uniform\"\nphi_search = false");
    let mean = alphas.iter().sum::<f64>() / alphas.len() as f64;
    let confidence = u.network.readout.config()["confidence"].as_float().unwrap();
    assert!((confidence - mean).abs() < 1e-5, "{confidence} vs {mean}");
}

#[test]
fn a_neuron_without_max_spikes_is_a_clear_error() {
    let (model, x) = setup();
    let method: MethodConfig = toml::from_str("kind = \"adafire\"\ntimesteps = 4\nsearch_images = 8").unwrap();
    let overrides = SpecOverrides { neuron: toml::toml! { kind = "if" }, ..SpecOverrides::default() };
    let err = convert(&model, &method, &overrides, std::slice::from_ref(&x)).unwrap_err().to_string();
    assert!(err.contains("max_spikes") && err.contains("burst"), "{err}");
}
