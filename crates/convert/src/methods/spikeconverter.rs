//! SpikeConverter (Liu et al. 2022, "SpikeConverter: An Efficient Conversion Framework
//! Zipping the Gap between Artificial Neural Networks and Spiking Neural Networks", AAAI).
//!
//! Neuron: `ilif` (inverse-leaky integrate-and-fire with temporal separation, k = 2; see
//! `snn::neuron::ilif` for its equations): every layer integrates a window of T steps, then
//! fires T steps whose spikes weigh k^{T−t}, so a layer passes on a T-level (k = 2: T-bit)
//! quantisation of its ReLU input, clipped at θ. Layers are pipelined (phase II of layer l is
//! phase I of layer l+1): the per-layer window is the row's T, the end-to-end latency is
//! (L + 1)·T steps for L spiking layers (`latency_steps`) and a pipeline takes a new sample
//! every 2T steps (`pipelined_steps_per_sample`). Readout: `ilif-decode` with the neurons' k.
//!
//! Thresholds (layer-wise): for each layer, θ = r·U_in,max with r on a grid (`ratio_step` ..
//! 1.0) minimising the expected conversion error E|U_in − U_out| (Eq. 13) over the layer's
//! ANN activations on the calibration images, U_out being the neuron's output for input U_in
//! at the T the method converts for (`timesteps`; every evaluated T: the method is always
//! converted per T). Inputs U_in ≤ 0 give U_out = 0 whatever θ, so only positive activations
//! enter the search. The paper states the threshold as V_th/U_in,max of the *first* firing
//! step, θ·k^{T−1}/S here (S = Σ_j k^{T−j}); it is reported as `first_step_ratio` (the paper's
//! example: 0.396 at T = 6, k = 1.6).
//!
//! Rows (at the calibration T): per layer `threshold_ratio` (θ/U_in,max), `first_step_ratio`
//! and `conversion_error` (E|U_in − U_out|/U_in,max over positive inputs). With
//! `error_curves = true`, the conversion error of slot `curve_slot` for Fig. 5:
//! `conversion_error_k<k>` (the smallest error over the grid, one line per T in
//! `curve_timesteps`, layer `T=<T>`) and `conversion_error_ratio<first-step ratio>` (one line
//! per [T, k] in `curve_settings`, layer `T=<T>, k=<k>`), both computed by running the neuron
//! in closed form on the layer's activations.
//!
//! The paper trains its ANNs without batch norm (Hardt & Ma initialisation); here BN is folded
//! into the weights before conversion like for every method.

use std::sync::Arc;

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use snn::neuron::greedy_decode;
use snn::readout::ilif_decode::IlifDecode;
use snn::{Coding, RateModel, SpikingNetwork};

use super::{ConversionMethod, MethodMeasure, RegisteredMethod, positive_or};
use crate::calibrate::argmin_first;
use crate::{ConvertError, SlotStats, observe};

fn d_t() -> u32 {
    16
}
fn d_step() -> f64 {
    0.01
}
fn d_samples() -> usize {
    20_000
}
fn d_curve_slot() -> usize {
    1
}
fn d_curve_t() -> Vec<usize> {
    vec![2, 4, 6, 8, 10, 12, 14, 16]
}
fn d_curve_k() -> Vec<f32> {
    (0..=10).map(|i| 1.0 + 0.1 * i as f32).collect()
}
fn d_settings() -> Vec<(usize, f32)> {
    vec![(6, 1.6), (6, 2.0)]
}

/// SpikeConverter parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpikeConverter {
    /// The window T the thresholds are searched for (set to each evaluated T).
    #[serde(default = "d_t")]
    pub timesteps: u32,
    /// Step of the grid of θ/U_in,max (from one step up to 1).
    #[serde(default = "d_step")]
    pub ratio_step: f64,
    /// Positive activations per layer the search uses at most (a systematic subsample).
    #[serde(default = "d_samples")]
    pub max_samples: usize,
    /// Record the Fig. 5 conversion-error curves of `curve_slot`.
    #[serde(default)]
    pub error_curves: bool,
    /// The slot whose activations the curves use.
    #[serde(default = "d_curve_slot")]
    pub curve_slot: usize,
    /// Windows T of the error-vs-k curves.
    #[serde(default = "d_curve_t")]
    pub curve_timesteps: Vec<usize>,
    /// Damping factors k of the error-vs-k curves (1 ≤ k ≤ 2; k = 1 is rate coding).
    #[serde(default = "d_curve_k")]
    pub curve_k: Vec<f32>,
    /// [T, k] pairs of the error-vs-threshold curves.
    #[serde(default = "d_settings")]
    pub curve_settings: Vec<(usize, f32)>,
}

impl Default for SpikeConverter {
    fn default() -> Self {
        Self {
            timesteps: d_t(),
            ratio_step: d_step(),
            max_samples: d_samples(),
            error_curves: false,
            curve_slot: d_curve_slot(),
            curve_timesteps: d_curve_t(),
            curve_k: d_curve_k(),
            curve_settings: d_settings(),
        }
    }
}

impl RegisteredMethod for SpikeConverter {
    const KIND: &'static str = "spikeconverter";
    const DESCRIPTION: &'static str =
        "iLIF neurons with temporal separation (k = 2), thresholds minimising E|U_in − U_out| (Liu et al. 2022)";
    fn check(&self) -> Result<(), String> {
        if self.timesteps == 0 {
            return Err("timesteps must be at least 1".into());
        }
        if !(self.ratio_step > 0.0 && self.ratio_step <= 0.5) {
            return Err(format!("ratio_step must be in (0, 0.5]; got {}", self.ratio_step));
        }
        if self.max_samples == 0 {
            return Err("max_samples must be at least 1".into());
        }
        if self.curve_timesteps.contains(&0) || self.curve_settings.iter().any(|(t, _)| *t == 0) {
            return Err("curve windows T must be at least 1".into());
        }
        if let Some(k) =
            self.curve_k.iter().chain(self.curve_settings.iter().map(|(_, k)| k)).find(|k| !(1.0..=2.0).contains(*k))
        {
            return Err(format!("curve k must be in [1, 2]; got {k}"));
        }
        Ok(())
    }
}

/// The weighted positive activations of a layer, at most `max` of them.
fn search_samples(stats: &SlotStats, max: usize) -> Vec<(f32, f64)> {
    let all = stats.weighted_samples();
    let every = all.len().div_ceil(max.max(1)).max(1);
    all.into_iter().step_by(every).map(|(v, w)| (v, w * every as f64)).collect()
}

/// E|u − Q(u)| over weighted samples for a neuron whose output is `rate` at threshold θ.
/// Window-coded neurons use their greedy expansion with the window's weights computed once.
fn mean_error(samples: &[(f32, f64)], rate: &RateModel, theta: f32, timesteps: usize) -> f64 {
    let weights = rate.coding.window_weights(timesteps);
    let output = |u: f32| match rate.coding {
        Coding::InverseLeaky { .. } => greedy_decode(u as f64, theta as f64, &weights),
        Coding::Rate => rate.average_output(u, theta, timesteps, 0.0) as f64,
    };
    let (mut err, mut total) = (0.0, 0.0);
    for &(u, w) in samples {
        err += w * (u as f64 - output(u)).abs();
        total += w;
    }
    if total > 0.0 { err / total } else { 0.0 }
}

impl SpikeConverter {
    /// The grid of θ/U_in,max.
    fn ratios(&self) -> Vec<f64> {
        let n = (1.0 / self.ratio_step).round().max(1.0) as usize;
        (1..=n).map(|i| (i as f64 * self.ratio_step).min(1.0)).collect()
    }

    /// (best ratio, its error) of `samples` for `rate` at T = `timesteps`, U_in,max = `max`,
    /// and the error at every ratio of the grid.
    fn search(&self, samples: &[(f32, f64)], rate: &RateModel, max: f32, timesteps: usize) -> (f64, f64, Vec<f64>) {
        let ratios = self.ratios();
        let errors: Vec<f64> =
            ratios.iter().map(|r| mean_error(samples, rate, (r * max as f64) as f32, timesteps)).collect();
        let best = argmin_first(errors.iter().copied());
        (ratios[best], errors[best], errors)
    }

    /// Fig. 5's curves for one layer's samples.
    fn curves(&self, samples: &[(f32, f64)], max: f32, slot: usize) -> Vec<MethodMeasure> {
        let rate_of = |k: f32| RateModel {
            max_spikes_per_step: 1,
            input_shift: false,
            initial_potential: 0.0,
            coding: Coding::InverseLeaky { k },
        };
        let norm = positive_or(max, 1.0) as f64;
        let mut rows = Vec::new();
        for &t in &self.curve_timesteps {
            for &k in &self.curve_k {
                let (_, err, _) = self.search(samples, &rate_of(k), max, t);
                rows.push(curve_row(&format!("conversion_error_k{k:.2}"), &format!("T={t}"), err / norm, slot));
            }
        }
        for &(t, k) in &self.curve_settings {
            let rate = rate_of(k);
            let first = rate.coding.step_weight(1, t);
            let (_, _, errors) = self.search(samples, &rate, max, t);
            for (r, e) in self.ratios().iter().zip(errors) {
                let metric = format!("conversion_error_ratio{:.4}", r * first);
                rows.push(curve_row(&metric, &format!("T={t}, k={k}"), e / norm, slot));
            }
        }
        rows
    }
}

fn curve_row(metric: &str, line: &str, value: f64, slot: usize) -> MethodMeasure {
    MethodMeasure::labelled(metric, &format!("{line} (slot {slot})"), value)
}

impl ConversionMethod for SpikeConverter {
    /// U_in,max: the top of the search grid (the search itself runs in `calibrate`, where the
    /// neurons are known).
    fn thresholds(&self, stats: &SlotStats) -> Vec<f32> {
        vec![positive_or(stats.max(), 1.0)]
    }

    fn readout_kind(&self) -> Option<&'static str> {
        Some(<IlifDecode as snn::RegisteredReadout>::KIND)
    }

    fn default_neuron(&self) -> toml::Table {
        toml::toml! {
            kind = "ilif"
            k = 2.0
        }
    }

    fn calibration_timesteps_param(&self) -> Option<&'static str> {
        Some("timesteps")
    }

    fn calibrates_at_each_eval_t(&self) -> bool {
        true
    }

    fn calibrate(
        &self,
        net: &mut SpikingNetwork,
        calibration: &[Tensor<4>],
    ) -> Result<Vec<MethodMeasure>, ConvertError> {
        let invalid = |reason: String| ConvertError::InvalidParameter { method: Self::KIND.into(), reason };
        let Coding::InverseLeaky { k } = net.layers[0].neuron.rate_model().coding else {
            return Err(invalid(format!(
                "needs the `ilif` neuron, whose spikes weigh k^(T-t); `[method.neuron] kind = \"{}\"` is rate-coded",
                net.layers[0].neuron.kind()
            )));
        };
        let stats = observe(&net.model, calibration);
        let t = self.timesteps as usize;
        let mut records = Vec::new();
        for (slot, layer) in net.layers.iter_mut().enumerate() {
            let rate = layer.neuron.rate_model();
            let max = positive_or(stats[slot].max(), 1.0);
            let samples = search_samples(&stats[slot], self.max_samples);
            let (ratio, error, _) = self.search(&samples, &rate, max, t);
            layer.thresholds = vec![(ratio * max as f64) as f32];
            records.push(MethodMeasure::of_slot("threshold_ratio", slot, ratio));
            records.push(MethodMeasure::of_slot("first_step_ratio", slot, ratio * rate.coding.step_weight(1, t)));
            records.push(MethodMeasure::of_slot("conversion_error", slot, error / max as f64));
        }
        if self.error_curves {
            let slot = self.curve_slot;
            let s = stats.get(slot).ok_or_else(|| {
                invalid(format!("curve_slot = {slot} but the network has {} activation slots", net.layers.len()))
            })?;
            records.extend(self.curves(&search_samples(s, self.max_samples), positive_or(s.max(), 1.0), slot));
        }
        net.readout = Arc::new(IlifDecode { k });
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform_stats(n: usize, max: f32) -> SlotStats {
        SlotStats::from_channel_values(vec![(0..n).map(|i| max * (i as f32 + 0.5) / n as f32).collect()])
    }

    #[test]
    fn the_grid_search_finds_the_papers_first_step_ratio_on_uniform_inputs() {
        // Uniform inputs on (0, U_max]: the error is smallest when the k-ary range just covers
        // U_max, i.e. θ ≈ U_max and the first step's threshold θ·k^{T−1}/S ≈ 0.4·U_max for
        // T = 6, k = 1.6 (the paper, Fig. 5b: 0.396 on its layer).
        let m = SpikeConverter { ratio_step: 0.005, ..SpikeConverter::default() };
        let stats = uniform_stats(4000, 3.0);
        let samples = search_samples(&stats, 4000);
        let rate = RateModel {
            max_spikes_per_step: 1,
            input_shift: false,
            initial_potential: 0.0,
            coding: Coding::InverseLeaky { k: 1.6 },
        };
        let (ratio, _, _) = m.search(&samples, &rate, 3.0, 6);
        let first = ratio * rate.coding.step_weight(1, 6);
        assert!((0.36..=0.41).contains(&first), "first-step ratio {first} (θ/U_max = {ratio})");
    }

    #[test]
    fn k2_gives_the_smallest_error_at_every_t() {
        let m = SpikeConverter::default();
        let stats = SlotStats::from_channel_values(vec![
            (0..3000).map(|i| ((i * 7919) % 3000) as f32 / 1000.0).map(|x| x * x).collect(),
        ]);
        let samples = search_samples(&stats, 3000);
        let max = stats.max();
        for t in [2usize, 4, 8] {
            let errors: Vec<f64> = [1.0f32, 1.3, 1.6, 2.0]
                .iter()
                .map(|&k| {
                    let rate = RateModel {
                        max_spikes_per_step: 1,
                        input_shift: false,
                        initial_potential: 0.0,
                        coding: Coding::InverseLeaky { k },
                    };
                    m.search(&samples, &rate, max, t).1
                })
                .collect();
            assert!(errors.windows(2).all(|w| w[1] < w[0]), "T={t}: {errors:?}");
        }
    }

    #[test]
    fn parameters_out_of_range_are_rejected() {
        assert!(SpikeConverter { ratio_step: 0.0, ..SpikeConverter::default() }.check().is_err());
        assert!(SpikeConverter { curve_k: vec![2.5], ..SpikeConverter::default() }.check().is_err());
        assert!(SpikeConverter { timesteps: 0, ..SpikeConverter::default() }.check().is_err());
        assert!(SpikeConverter::default().check().is_ok());
    }
}
