//! Adaptive Calibration (Wang et al. 2024): the AdaFire neuron with a per-layer firing budget
//! φ_l found by a Pareto search, Sensitivity Spike Compression (SSC) and Input-aware Adaptive
//! Timesteps (IAT), on top of SNN Calibration (Li et al. 2021).
//!
//! **Neuron** (`burst`, one φ per layer): each step x' = x + b_c + θ/(2T); v += x';
//! s = clamp(floor(v/θ), 0, φ_l); out = s·θ; v −= s·θ (soft reset, v(0) = 0).
//!
//! **Pipeline** (all at the method's T, `timesteps`):
//! 1. Threshold search as SNN Calibration, with the φ-aware
//!    ClipFloor_φ(y) = (θ/T)·floor(clamp(y/θ, 0, φ)·T): θ = argmin over θ_i = (1 − 0.01 i)·max(y),
//!    i = 0..94, of mean (ClipFloor_φ(y) − y)²; channel-wise by default. φ = `initial_spikes`
//!    (8) when searching φ, else `max_spikes` (4) in every layer.
//! 2. φ search (`phi_search`, on by default): on the first `search_images` calibration images,
//!    for every layer i and candidate k ∈ {`min_spikes`..`initial_spikes`} (the other layers at
//!    `initial_spikes`, thresholds of step 1), the SNN's sensitivity
//!    S_i(k) = ½[KL(P‖Q) + KL(Q‖P)], P = softmax of the time-averaged SNN logits, Q = softmax
//!    of the ANN logits (mean over images), and the energy E_i(k) = layer i's spikes per image
//!    (a burst of s spikes counts s). [`pareto_search`] then minimises Σ S subject to
//!    Σ E ≤ `energy_ratio` × Σ_i E_i(`max_spikes`) (the authors' code: 0.95 × the energy at the
//!    desired φ = 4). Thresholds are searched again with each layer's φ.
//! 3. Bias correction (SNN Calibration's light pipeline) on the first `correction_images`
//!    (`potential_init = true`: also its potential initialisation, the advanced pipeline).
//! 4. SSC (`ssc`): per layer i and ratio ρ ∈ `ssc_ratios` (1.0, 1.5, …, 10.0), θ_i ← ρ·θ_i (the
//!    other layers unchanged), measure S_i(ρ) and E_i(ρ) as in 2 (on `ssc_images` images,
//!    default `search_images`); the same search with the
//!    roles swapped minimises Σ E subject to Σ S ≤ `ssc_budget` × Σ_i S_i(1.0) (the paper's
//!    default budget: the sensitivity before SSC, ratio 1.0; the authors' code uses 0.95; a
//!    budget below 1 that no choice meets leaves every ρ at 1). The
//!    chosen ρ multiply the thresholds, then bias correction runs again. (The released code
//!    applies the ρ list to the layers in reverse order; here ρ_i goes to layer i.)
//! 5. IAT (`iat = "adaptive"`): the per-step exit thresholds α_t of [`crate::iat`] (Eq. 18,
//!    `iat_alpha_base` 0.6, `iat_beta` 0.4, `iat_delta` 1), fitted on the first `iat_images`
//!    calibration images, become the network's `early-exit` readout; `iat = "uniform"` uses the
//!    mean of the fitted α_t at every step (the paper's uniform-threshold comparison).
//!    `iat_score = "average"` fits and tests the entropy of the time-averaged output instead
//!    of the summed one (not the paper's: the sum's softmax sharpens as t grows, so early
//!    partial sums look confident; measured in results/adafire2024_iat_frontier_cifar10).
//!
//! Rows it reports (at the calibration T): per layer `phi` (chosen φ), `sensitivity_phi<k>`
//! and `energy_phi<k>` (the search's measurements), `rho`, `sensitivity_rho<ρ>`,
//! `energy_rho<ρ>` (SSC), and per frontier point `pareto_energy`/`pareto_sensitivity`
//! (layer = `point <i>`; `pareto_chosen` marks the pick); IAT's `iat_alpha` per step
//! (layer = `t=<step>`).
//!
//! Deviations: the fitting images are unlabelled calibration images, so IAT's "correctly
//! classified" means "agrees with the ANN" (see [`crate::iat`]); thresholds are searched on the
//! pooled calibration sample instead of a 0.9/0.1 running average over batches.

use std::sync::Arc;

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use snn::readout::early_exit::{Confidence, EarlyExit, ExitScore};
use snn::{NeuronModel, SimConfig, SpikingNetwork, build_neuron, simulate};
use zoo::tensor_values;

use super::snn_calibration::correction_batch;
use super::{ConversionMethod, MethodMeasure, RegisteredMethod, positive_or};
use crate::calibrate::{clip_floor_mse, correct_layers, search_threshold};
use crate::iat::{ExitRule, mean_entropy_per_step};
use crate::pareto::{ParetoSearch, pareto_search};
use crate::{ConvertError, SlotStats, observe};

/// Whether and how IAT sets an early-exit readout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Iat {
    /// Accumulate to T (no early exit).
    #[default]
    Off,
    /// Per-step thresholds α_t (Eq. 18).
    Adaptive,
    /// One threshold, the mean of the fitted α_t, at every step.
    Uniform,
}

fn d_t() -> u32 {
    16
}
fn d_true() -> bool {
    true
}
fn d_max_spikes() -> u32 {
    4
}
fn d_initial_spikes() -> u32 {
    8
}
fn d_one() -> u32 {
    1
}
fn d_energy_ratio() -> f64 {
    0.95
}
fn d_images() -> usize {
    128
}
fn d_ssc_ratios() -> Vec<f64> {
    (0..19).map(|i| 1.0 + 0.5 * i as f64).collect()
}
fn d_ssc_budget() -> f64 {
    1.0
}
fn d_alpha_base() -> f64 {
    0.6
}
fn d_beta() -> f64 {
    0.4
}
fn d_delta() -> f64 {
    1.0
}
fn d_iat_images() -> usize {
    1024
}

/// Adaptive Calibration parameters (defaults: the paper's, and the authors' code where the
/// paper is silent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaFire {
    /// The T everything is calibrated for (the authors' code: 16).
    #[serde(default = "d_t")]
    pub timesteps: u32,
    /// One threshold per channel (the paper's default) instead of per layer.
    #[serde(default = "d_true")]
    pub channel_wise: bool,
    /// φ of every layer without the search; with it, the φ whose energy sets the budget (4).
    #[serde(default = "d_max_spikes")]
    pub max_spikes: u32,
    /// Search φ per layer (Pareto search over sensitivity and spikes).
    #[serde(default = "d_true")]
    pub phi_search: bool,
    /// φ of every layer while the search measures (the largest candidate; 8).
    #[serde(default = "d_initial_spikes")]
    pub initial_spikes: u32,
    /// The smallest candidate φ (1).
    #[serde(default = "d_one")]
    pub min_spikes: u32,
    /// Energy budget: this × Σ_i E_i(`max_spikes`) (0.95).
    #[serde(default = "d_energy_ratio")]
    pub energy_ratio: f64,
    /// Images of the sensitivity measurements (φ search and SSC): the first this many
    /// calibration images (the authors' code: one training batch).
    #[serde(default = "d_images")]
    pub search_images: usize,
    /// Images of bias correction (one batch of 128).
    #[serde(default = "d_images")]
    pub correction_images: usize,
    /// Also SNN Calibration's potential initialisation after each bias correction
    /// (v_init = T·mean_n(y_ANN − ŷ_SNN) per element; the authors' CIFAR scripts: off).
    #[serde(default)]
    pub potential_init: bool,
    /// Sensitivity Spike Compression.
    #[serde(default)]
    pub ssc: bool,
    /// Images of SSC's sensitivity measurements (None: `search_images`); more images make
    /// the measured sensitivities less noisy at a proportional cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssc_images: Option<usize>,
    /// SSC's threshold ratios ρ (must include 1.0).
    #[serde(default = "d_ssc_ratios")]
    pub ssc_ratios: Vec<f64>,
    /// SSC's sensitivity budget: this × Σ_i S_i(1.0).
    #[serde(default = "d_ssc_budget")]
    pub ssc_budget: f64,
    /// Input-aware Adaptive Timesteps.
    #[serde(default)]
    pub iat: Iat,
    /// α_base of Eq. 18.
    #[serde(default = "d_alpha_base")]
    pub iat_alpha_base: f64,
    /// β of Eq. 18.
    #[serde(default = "d_beta")]
    pub iat_beta: f64,
    /// δ of Eq. 18.
    #[serde(default = "d_delta")]
    pub iat_delta: f64,
    /// Images the exit thresholds are fitted on (the paper: 100 training batches; on a CPU a
    /// spec uses a few thousand at most).
    #[serde(default = "d_iat_images")]
    pub iat_images: usize,
    /// The output whose entropy IAT fits and tests: `sum` (the paper's, default; left out of
    /// the configuration) or `average` (the time-averaged output; not the paper's).
    #[serde(default, skip_serializing_if = "is_sum")]
    pub iat_score: ExitScore,
}

fn is_sum(score: &ExitScore) -> bool {
    *score == ExitScore::Sum
}

impl Default for AdaFire {
    fn default() -> Self {
        toml::from_str("").expect("every field has a default")
    }
}

impl RegisteredMethod for AdaFire {
    const KIND: &'static str = "adafire";
    const DESCRIPTION: &'static str = "AdaFire burst neurons with Pareto-searched per-layer φ + bias correction [+ SSC threshold compression] [+ IAT early exit] (Wang et al. 2024)";
    fn check(&self) -> Result<(), String> {
        if self.timesteps == 0
            || self.search_images == 0
            || self.correction_images == 0
            || self.iat_images == 0
            || self.ssc_images == Some(0)
        {
            return Err(
                "timesteps, search_images, ssc_images, correction_images and iat_images must be at least 1".into()
            );
        }
        if self.min_spikes == 0 || self.min_spikes > self.initial_spikes {
            return Err(format!(
                "need 1 ≤ min_spikes ≤ initial_spikes, got min_spikes = {}, initial_spikes = {}",
                self.min_spikes, self.initial_spikes
            ));
        }
        if self.max_spikes == 0
            || (self.phi_search && !(self.min_spikes..=self.initial_spikes).contains(&self.max_spikes))
        {
            return Err(format!(
                "max_spikes = {} must be at least 1 and, with phi_search, one of the candidates {}..={}",
                self.max_spikes, self.min_spikes, self.initial_spikes
            ));
        }
        if !(self.energy_ratio > 0.0 && self.energy_ratio.is_finite()) {
            return Err(format!("energy_ratio must be positive, got {}", self.energy_ratio));
        }
        if !self.ssc_ratios.contains(&1.0) || self.ssc_ratios.iter().any(|r| !(*r > 0.0 && r.is_finite())) {
            return Err("ssc_ratios must be positive and include 1.0".into());
        }
        if !(self.ssc_budget > 0.0 && self.ssc_budget.is_finite()) {
            return Err(format!("ssc_budget must be positive, got {}", self.ssc_budget));
        }
        if self.iat_delta.is_nan()
            || self.iat_delta <= 0.0
            || !(0.0..=1.0).contains(&self.iat_alpha_base)
            || self.iat_beta < 0.0
        {
            return Err("need iat_delta > 0, 0 ≤ iat_alpha_base ≤ 1 and iat_beta ≥ 0".into());
        }
        Ok(())
    }
}

impl AdaFire {
    /// φ of every layer before the search.
    fn starting_phi(&self) -> u32 {
        if self.phi_search { self.initial_spikes } else { self.max_spikes }
    }

    /// The φ-aware threshold search of one slot.
    pub fn search_thresholds(&self, stats: &SlotStats, phi: u32) -> Vec<f32> {
        let (t, phi) = (self.timesteps as f32, phi as f32);
        let search = |max: f32, samples: &[f32]| search_threshold(max, |th| clip_floor_mse(samples, t, th, phi));
        let layer_samples: Vec<f32> = stats.channel_samples.iter().flatten().copied().collect();
        let layer = positive_or(search(stats.max(), &layer_samples), 1.0);
        if !self.channel_wise {
            return vec![layer];
        }
        (0..stats.channel_max.len())
            .map(|c| positive_or(search(stats.channel_max[c], &stats.channel_samples[c]), layer))
            .collect()
    }
}

impl ConversionMethod for AdaFire {
    /// 2: bias correction replays each slot's input captured in one pass of the event-driven
    /// engine (version 1: dense simulations per slot).
    fn version(&self) -> u32 {
        2
    }

    fn readout_kind(&self) -> Option<&'static str> {
        (self.iat != Iat::Off).then_some(<EarlyExit as snn::RegisteredReadout>::KIND)
    }
    fn thresholds(&self, stats: &SlotStats) -> Vec<f32> {
        self.search_thresholds(stats, self.starting_phi())
    }

    fn default_neuron(&self) -> toml::Table {
        let mut table = toml::toml! {
            kind = "burst"
            input_shift = true
        };
        table.insert("max_spikes".into(), toml::Value::Integer(self.starting_phi() as i64));
        table
    }

    fn calibration_timesteps_param(&self) -> Option<&'static str> {
        Some("timesteps")
    }

    fn calibrate(
        &self,
        net: &mut SpikingNetwork,
        calibration: &[Tensor<4>],
    ) -> Result<Vec<MethodMeasure>, ConvertError> {
        let t = self.timesteps as usize;
        let mut records = Vec::new();
        let slots = net.layers.len();
        let base: Vec<Arc<dyn NeuronModel>> = net.layers.iter().map(|l| l.neuron.clone()).collect();
        let with_phi = |l: usize, phi: u32| with_max_spikes(&base[l], phi);
        let search_batch = correction_batch(calibration, self.search_images);

        // φ per layer.
        let phis: Vec<u32> = if self.phi_search {
            let reference = ann_probabilities(net, &search_batch);
            let candidates: Vec<u32> = (self.min_spikes..=self.initial_spikes).collect();
            let mut sensitivity = vec![Vec::with_capacity(candidates.len()); slots];
            let mut energy = vec![Vec::with_capacity(candidates.len()); slots];
            for slot in 0..slots {
                for &k in &candidates {
                    net.layers[slot].neuron = with_phi(slot, k)?;
                    let (s, e) = sensitivity_and_spikes(net, &search_batch, &reference, t, slot);
                    sensitivity[slot].push(s);
                    energy[slot].push(e);
                    records.push(layer_row(&format!("sensitivity_phi{k}"), slot, s));
                    records.push(layer_row(&format!("energy_phi{k}"), slot, e));
                }
                net.layers[slot].neuron = base[slot].clone();
            }
            let desired = candidates.iter().position(|&k| k == self.max_spikes).expect("checked: a candidate");
            let budget = self.energy_ratio * energy.iter().map(|e| e[desired]).sum::<f64>();
            let search =
                pareto_search(&energy, &sensitivity, budget).ok_or_else(|| ConvertError::InvalidParameter {
                    method: Self::KIND.into(),
                    reason: format!(
                        "no φ per layer fits the energy budget {budget:.0} spikes (energy_ratio {})",
                        self.energy_ratio
                    ),
                })?;
            records.extend(frontier_rows(&search));
            search.best.choice.iter().map(|&k| candidates[k]).collect()
        } else {
            vec![self.max_spikes; slots]
        };
        for (slot, &phi) in phis.iter().enumerate() {
            net.layers[slot].neuron = with_phi(slot, phi)?;
            records.push(layer_row("phi", slot, phi as f64));
        }
        if self.phi_search {
            let stats = observe(&net.model, calibration);
            for (slot, s) in stats.iter().enumerate().take(slots) {
                net.layers[slot].thresholds = self.search_thresholds(s, phis[slot]);
            }
        }
        let correction = correction_batch(calibration, self.correction_images);
        correct_layers(net, &correction, t, self.potential_init);

        if self.ssc {
            let search_batch = correction_batch(calibration, self.ssc_images.unwrap_or(self.search_images));
            let reference = ann_probabilities(net, &search_batch);
            let mut sensitivity = vec![Vec::with_capacity(self.ssc_ratios.len()); slots];
            let mut energy = vec![Vec::with_capacity(self.ssc_ratios.len()); slots];
            for slot in 0..slots {
                let original = net.layers[slot].thresholds.clone();
                for &rho in &self.ssc_ratios {
                    net.layers[slot].thresholds = original.iter().map(|th| th * rho as f32).collect();
                    let (s, e) = sensitivity_and_spikes(net, &search_batch, &reference, t, slot);
                    sensitivity[slot].push(s);
                    energy[slot].push(e);
                    records.push(layer_row(&format!("sensitivity_rho{rho}"), slot, s));
                    records.push(layer_row(&format!("energy_rho{rho}"), slot, e));
                }
                net.layers[slot].thresholds = original;
            }
            let unit = self.ssc_ratios.iter().position(|&r| r == 1.0).expect("checked: 1.0 is a ratio");
            let budget = self.ssc_budget * sensitivity.iter().map(|s| s[unit]).sum::<f64>();
            // ssc_budget ≥ 1 always admits ρ = 1 everywhere; a smaller budget that no choice
            // meets leaves every ρ at 1 (no compression).
            let chosen = match pareto_search(&sensitivity, &energy, budget) {
                Some(search) => search.best.choice,
                None => vec![unit; slots],
            };
            for (slot, &k) in chosen.iter().enumerate() {
                let rho = self.ssc_ratios[k];
                net.layers[slot].thresholds.iter_mut().for_each(|th| *th *= rho as f32);
                records.push(layer_row("rho", slot, rho));
            }
            correct_layers(net, &correction, t, self.potential_init);
        }

        if self.iat != Iat::Off {
            let images = first_images(calibration, self.iat_images);
            let entropy = mean_entropy_per_step(net, &images, t, self.iat_score);
            let rule = ExitRule { alpha_base: self.iat_alpha_base, beta: self.iat_beta, delta: self.iat_delta };
            let alphas = rule.thresholds(&entropy);
            for (step, a) in alphas.iter().enumerate() {
                records.push(MethodMeasure::labelled("iat_alpha", &format!("t={}", step + 1), *a as f64));
            }
            let confidence = match self.iat {
                Iat::Uniform => Confidence::Constant(alphas.iter().sum::<f32>() / alphas.len().max(1) as f32),
                _ => Confidence::PerStep(alphas),
            };
            net.readout = Arc::new(EarlyExit { confidence, min_steps: 1, score: self.iat_score });
        }
        Ok(records)
    }
}

/// The layer's neuron with φ = `phi` spikes per step (its other parameters kept).
fn with_max_spikes(neuron: &Arc<dyn NeuronModel>, phi: u32) -> Result<Arc<dyn NeuronModel>, ConvertError> {
    let mut table = neuron.config();
    if !table.contains_key("max_spikes") {
        return Err(ConvertError::InvalidParameter {
            method: AdaFire::KIND.into(),
            reason: format!(
                "AdaFire sets φ per layer through the neuron's `max_spikes`; neuron kind `{}` has none (use kind = \"burst\")",
                neuron.kind()
            ),
        });
    }
    table.insert("max_spikes".into(), toml::Value::Integer(phi as i64));
    build_neuron(&table).map_err(|source| ConvertError::Neuron { method: AdaFire::KIND.into(), source })
}

fn layer_row(metric: &str, slot: usize, value: f64) -> MethodMeasure {
    MethodMeasure::of_slot(metric, slot, value)
}

fn frontier_rows(search: &ParetoSearch) -> Vec<MethodMeasure> {
    let mut rows = Vec::new();
    for (i, p) in search.frontier.iter().enumerate() {
        let point = |metric: &str, value| MethodMeasure::labelled(metric, &format!("point {i}"), value);
        rows.push(point("pareto_energy", p.cost));
        rows.push(point("pareto_sensitivity", p.profit));
        if p == &search.best {
            rows.push(point("pareto_chosen", 1.0));
        }
    }
    rows
}

/// Softmax of the ANN's logits on `images`, `[n × classes]`.
fn ann_probabilities(net: &SpikingNetwork, images: &Tensor<4>) -> Vec<f64> {
    let logits = net.model.forward(images.clone());
    let [_, classes] = logits.dims();
    softmax_rows(&tensor_values(logits), classes)
}

/// Softmax of every row of `logits` (`[n × classes]`).
pub fn softmax_rows(logits: &[f32], classes: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(logits.len());
    for row in logits.chunks(classes.max(1)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f64> = row.iter().map(|x| ((x - max) as f64).exp()).collect();
        let z: f64 = exps.iter().sum();
        out.extend(exps.into_iter().map(|e| e / z));
    }
    out
}

/// Mean over rows of ½[KL(p‖q) + KL(q‖p)] (`[n × classes]` probabilities; 1e-12 floor).
pub fn symmetric_kl(p: &[f64], q: &[f64], classes: usize) -> f64 {
    let rows = (p.len() / classes.max(1)).max(1);
    let kl = |a: &[f64], b: &[f64]| -> f64 {
        a.iter().zip(b).map(|(x, y)| x.max(1e-12) * (x.max(1e-12) / y.max(1e-12)).ln()).sum()
    };
    let total: f64 =
        p.chunks(classes.max(1)).zip(q.chunks(classes.max(1))).map(|(a, b)| 0.5 * (kl(a, b) + kl(b, a))).sum();
    total / rows as f64
}

/// The SNN's sensitivity on `images` (symmetric KL of its time-averaged logits to the ANN's
/// `reference` probabilities) and the spikes per image of slot `slot`, simulated for T steps.
fn sensitivity_and_spikes(
    net: &SpikingNetwork,
    images: &Tensor<4>,
    reference: &[f64],
    timesteps: usize,
    slot: usize,
) -> (f64, f64) {
    let [batch, ..] = images.dims();
    let labels = vec![0i64; batch];
    let (out, _) = simulate(net, images.clone(), &labels, &SimConfig::new(timesteps, timesteps.min(16)));
    let classes = out.final_output.len() / batch.max(1);
    let mean: Vec<f32> = out.final_output.iter().map(|v| v / timesteps as f32).collect();
    let p = softmax_rows(&mean, classes);
    let spikes = out.spikes[slot].iter().sum::<u64>() as f64 / batch.max(1) as f64;
    (symmetric_kl(&p, reference, classes), spikes)
}

/// The calibration batches holding the first `n` images (the last one cut).
fn first_images(calibration: &[Tensor<4>], n: usize) -> Vec<Tensor<4>> {
    let mut left = n;
    let mut out = Vec::new();
    for b in calibration {
        if left == 0 {
            break;
        }
        let [size, c, h, w] = b.dims();
        let take = size.min(left);
        out.push(if take == size { b.clone() } else { b.clone().slice([0..take, 0..c, 0..h, 0..w]) });
        left -= take;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_kl_is_zero_on_equal_rows_and_symmetric() {
        let p = softmax_rows(&[1.0, 2.0, 0.5, 0.0, 0.0, 3.0], 3);
        let q = softmax_rows(&[0.0, 2.0, 1.5, 1.0, 0.0, 0.0], 3);
        assert!(symmetric_kl(&p, &p, 3).abs() < 1e-12);
        assert!((symmetric_kl(&p, &q, 3) - symmetric_kl(&q, &p, 3)).abs() < 1e-12);
        // One row by hand: p = (.5, .5), q = (.25, .75).
        let (a, b) = ([0.5, 0.5], [0.25, 0.75]);
        let kl_ab = 0.5 * (2f64).ln() + 0.5 * (0.5f64 / 0.75).ln();
        let kl_ba = 0.25 * (0.5f64).ln() + 0.75 * (1.5f64).ln();
        assert!((symmetric_kl(&a, &b, 2) - 0.5 * (kl_ab + kl_ba)).abs() < 1e-12);
    }

    #[test]
    fn parameters_are_checked_and_defaults_are_the_papers() {
        let m = AdaFire::default();
        assert_eq!((m.max_spikes, m.initial_spikes, m.min_spikes, m.timesteps), (4, 8, 1, 16));
        assert_eq!(m.ssc_ratios.len(), 19);
        assert_eq!(*m.ssc_ratios.last().unwrap(), 10.0);
        assert!(m.check().is_ok());
        let bad = |s: &str| toml::from_str::<AdaFire>(s).unwrap().check().is_err();
        assert!(bad("max_spikes = 9"));
        assert!(bad("min_spikes = 0"));
        assert!(bad("ssc_ratios = [2.0, 3.0]"));
        assert!(bad("energy_ratio = 0.0"));
        assert!(!bad("max_spikes = 9\nphi_search = false"));
    }

    #[test]
    fn phi_aware_search_uses_the_burst_range() {
        // Values up to 4 with φ = 4: θ ≈ 1 represents them all (4 spikes per step), where φ = 1
        // needs θ ≈ max.
        let samples: Vec<f32> = (1..=400).map(|i| i as f32 / 100.0).collect();
        let stats = SlotStats::from_channel_values(vec![samples]);
        let m = AdaFire { channel_wise: false, timesteps: 8, ..AdaFire::default() };
        let th4 = m.search_thresholds(&stats, 4)[0];
        let th1 = m.search_thresholds(&stats, 1)[0];
        assert!(th4 < 1.5 && th1 > 3.0, "φ=4: {th4}, φ=1: {th1}");
        let all: Vec<f32> = stats.channel_samples[0].clone();
        assert!(clip_floor_mse(&all, 8.0, th4, 4.0) < clip_floor_mse(&all, 8.0, th1, 1.0));
    }
}
