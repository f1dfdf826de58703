//! Reusable calibration pieces (SNN Calibration, Li et al. 2021; also the base of AdaFire and
//! Lan et al. 2023): threshold search with a pluggable objective and candidate grid, the
//! channel-normalised KL divergence, bias correction and potential initialisation.

use burn::prelude::*;
use snn::{LayerShape, NeuronLayerSpec, SimConfig, SparseNetwork, SpikingNetwork, replay_layer, simulate_slot_input};
use zoo::{Convertible, ForwardCtx, tensor_values};

use crate::weight_calibration::{SlotWeightReport, WeightCalibration, calibrate_slot_weights};

/// `ClipFloor_φ(y; T, θ) = (θ/T)·floor(clamp(y/θ, 0, φ)·T)`: the output an IF neuron with
/// threshold θ can express in T steps with at most φ spikes per step (φ = 1: plain IF).
pub fn clip_floor(y: f32, timesteps: f32, theta: f32, phi: f32) -> f32 {
    (theta / timesteps) * ((y / theta).clamp(0.0, phi) * timesteps).floor()
}

/// Mean squared ClipFloor error of `samples` at threshold θ.
pub fn clip_floor_mse(samples: &[f32], timesteps: f32, theta: f32, phi: f32) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&y| (clip_floor(y, timesteps, theta, phi) - y) as f64).map(|e| e * e).sum();
    sum / samples.len() as f64
}

/// Grid search of SNN Calibration: candidates θ_i = (1 − 0.01·i)·max(y), i = 0..94; returns
/// the candidate with the smallest `objective(θ)` (the first on ties). 0 for an empty layer.
pub fn search_threshold(max: f32, objective: impl Fn(f32) -> f64) -> f32 {
    if max <= 0.0 {
        return 0.0;
    }
    let candidates: Vec<f32> = (0..95).map(|i| (1.0 - 0.01 * i as f32) * max).collect();
    candidates[argmin_first(candidates.iter().map(|&t| objective(t)))]
}

/// Index of the smallest value, the first on ties; NaNs never win (0 if all are NaN or the
/// iterator is empty).
pub fn argmin_first(values: impl IntoIterator<Item = f64>) -> usize {
    let mut best = (f64::INFINITY, 0);
    for (i, v) in values.into_iter().enumerate() {
        if v < best.0 {
            best = (v, i);
        }
    }
    best.1
}

/// ε of the channel-wise normalisation and of the log ratio in [`channel_kl_divergence`].
pub const KL_EPSILON: f64 = 1e-10;

/// KL(norm(p) ‖ norm(q)) with channel-wise normalisation (Lan et al. 2023, Eq. 8): for every
/// channel c, p̃ = p / (Σ_c p + ε) and q̃ = q / (Σ_c q + ε), the sums running over the batch and
/// positions of that channel, and
/// `KL = Σ_c Σ_{i∈c} p̃_i · ln((p̃_i + ε) / (q̃_i + ε))`
/// (terms with p̃_i = 0 are 0; ε = [`KL_EPSILON`] keeps q̃_i = 0 finite but heavily penalised).
/// `p`, `q`: non-negative, `[batch × C × inner]`.
pub fn channel_kl_divergence(p: &[f32], q: &[f32], shape: SlotShape) -> f64 {
    assert_eq!(p.len(), q.len(), "KL of differently sized outputs");
    let channel = |i: usize| (i / shape.inner) % shape.channels;
    let mut sums = vec![(0f64, 0f64); shape.channels];
    for (i, (a, b)) in p.iter().zip(q).enumerate() {
        let s = &mut sums[channel(i)];
        s.0 += *a as f64;
        s.1 += *b as f64;
    }
    let mut kl = 0.0;
    for (i, (a, b)) in p.iter().zip(q).enumerate() {
        if *a <= 0.0 {
            continue;
        }
        let (sp, sq) = sums[channel(i)];
        let pn = *a as f64 / (sp + KL_EPSILON);
        let qn = (*b as f64).max(0.0) / (sq + KL_EPSILON);
        kl += pn * ((pn + KL_EPSILON) / (qn + KL_EPSILON)).ln();
    }
    kl
}

/// Bins of the activation histogram in [`histogram_kl_divergence`] (TensorRT / MXNet use 2048).
pub const KL_HISTOGRAM_BINS: usize = 2048;

/// Histogram of the positive values of `values` in [`KL_HISTOGRAM_BINS`] equal bins over
/// (0, `max`] (values above `max` go to the last bin; zeros and negatives are left out: every
/// threshold represents them exactly).
pub fn positive_histogram(values: impl IntoIterator<Item = f32>, max: f32) -> Vec<f64> {
    let mut hist = vec![0f64; KL_HISTOGRAM_BINS];
    if max <= 0.0 {
        return hist;
    }
    let scale = KL_HISTOGRAM_BINS as f32 / max;
    for v in values.into_iter().filter(|v| *v > 0.0) {
        hist[((v * scale) as usize).min(KL_HISTOGRAM_BINS - 1)] += 1.0;
    }
    hist
}

/// KL divergence between the distribution of activation values and its quantisation by a
/// threshold (entropy calibration of TensorRT, Migacz 2017; MXNet's `_get_optimal_threshold`):
/// with `hist` the value histogram over (0, max] and θ = max·`bins`/len(hist),
/// - P = hist[..bins] with the mass above θ added to its last bin (clipping at θ);
/// - Q = hist[..bins] (without the clipped mass) merged into `levels` equal groups (the
///   values an IF neuron expresses in `levels` steps: multiples of θ/levels), each group's
///   mass spread evenly over the group's bins where P is non-zero;
///
/// both normalised, zero entries of Q smoothed with ε = 1e-4 (taken from its non-zero
/// entries), `KL = Σ_i P_i ln(P_i / Q_i)`. Small θ pays for the clipped mass, large θ for the
/// coarse resolution. `bins` is clamped to [`levels`, len(hist)].
pub fn histogram_kl_divergence(hist: &[f64], bins: usize, levels: usize) -> f64 {
    let levels = levels.max(1).min(hist.len());
    let bins = bins.clamp(levels, hist.len());
    let mut p = hist[..bins].to_vec();
    p[bins - 1] += hist[bins..].iter().sum::<f64>();
    let mut q = vec![0f64; bins];
    for g in 0..levels {
        let (start, end) = (g * bins / levels, (g + 1) * bins / levels);
        let mass: f64 = hist[start..end].iter().sum();
        let support = p[start..end].iter().filter(|x| **x > 0.0).count();
        if support > 0 {
            for (qi, pi) in q[start..end].iter_mut().zip(&p[start..end]) {
                if *pi > 0.0 {
                    *qi = mass / support as f64;
                }
            }
        }
    }
    let (Some(p), Some(q)) = (smoothed_distribution(&p), smoothed_distribution(&q)) else {
        return f64::INFINITY;
    };
    p.iter().zip(&q).filter(|(a, _)| **a > 0.0).map(|(a, b)| a * (a / b).ln()).sum()
}

/// MXNet's `_smooth_distribution` on raw masses `x`: zero entries raised to ε = 1e-4, the
/// non-zero entries lowered by the same total (kept positive), then normalised to sum 1.
/// None if `x` has no mass.
fn smoothed_distribution(x: &[f64]) -> Option<Vec<f64>> {
    const EPS: f64 = 1e-4;
    let nonzero = x.iter().filter(|v| **v > 0.0).count();
    if nonzero == 0 {
        return None;
    }
    let take = EPS * (x.len() - nonzero) as f64 / nonzero as f64;
    let smoothed: Vec<f64> = x.iter().map(|v| if *v > 0.0 { (v - take).max(EPS) } else { EPS }).collect();
    let total: f64 = smoothed.iter().sum();
    Some(smoothed.into_iter().map(|v| v / total).collect())
}

/// ANN outputs of every slot (post-ReLU): values `[batch × C × H × W]` and the slot's shape.
pub fn ann_slot_outputs(net: &SpikingNetwork, images: &Tensor<4>) -> Vec<(Vec<f32>, SlotShape)> {
    let mut ctx = ForwardCtx::recording();
    let _ = net.model.forward_ctx(images.clone(), &mut ctx);
    ctx.take_recorded()
        .into_iter()
        .map(|t| {
            let [_, c, h, w] = t.dims();
            (tensor_values(t), SlotShape { channels: c, inner: h * w })
        })
        .collect()
}

/// Shape of one slot's output for one sample.
#[derive(Clone, Copy, Debug)]
pub struct SlotShape {
    /// Channels (features for linear layers).
    pub channels: usize,
    /// Positions per channel (H·W; 1 for linear layers).
    pub inner: usize,
}

/// Per-channel mean of `a − b` over the batch and positions; `a`, `b`: `[batch × C × inner]`.
pub fn channel_mean_difference(a: &[f32], b: &[f32], shape: SlotShape) -> Vec<f32> {
    let mut sum = vec![0f64; shape.channels];
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        sum[(i / shape.inner) % shape.channels] += (*x - *y) as f64;
    }
    let count = (a.len() / shape.channels).max(1) as f64;
    sum.into_iter().map(|s| (s / count) as f32).collect()
}

/// Per-element mean over the batch of `a − b`: `[C × inner]`.
pub fn element_mean_difference(a: &[f32], b: &[f32], per_sample: usize) -> Vec<f32> {
    let mut sum = vec![0f64; per_sample];
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        sum[i % per_sample] += (*x - *y) as f64;
    }
    let batch = (a.len() / per_sample).max(1) as f64;
    sum.into_iter().map(|s| (s / batch) as f32).collect()
}

/// The most memory [`visit_slots`] lets the event-driven engine hold for its one pass over the
/// network (all T steps of every calibration image at once); above it each slot's input is
/// captured by a run of its own.
pub const STAGED_MEMORY_BUDGET: usize = 4 << 30;

/// Steps per pass when a slot's input is captured by a run of its own on the event-driven
/// engine (one sample at a time: memory is small).
const CAPTURE_CHUNK: usize = 32;

/// Steps per pass of a dense-engine capture, which folds the steps into the batch: kept small
/// so a wide layer (PointNet's 1,024 channels × 1,024 points) stays within memory. The
/// result does not depend on it.
const DENSE_CAPTURE_CHUNK: usize = 4;

/// One slot's input on one calibration batch: `values` `[T, batch, channels, inner]`
/// (step-major) of `shape`.
pub struct SlotInput {
    /// The slot's pre-activation at every step, step-major.
    pub values: Vec<f32>,
    /// Batch, channels and positions of the slot.
    pub shape: LayerShape,
}

/// Visits every slot in forward order with its input on each of `batches` when the slots
/// before it spike for `timesteps` steps: `visit(slot, layer, inputs)` (one [`SlotInput`] per
/// batch, in order) may change the slot's neuron layer (thresholds, bias, initial potential),
/// and the later slots see the change. The weights stay fixed.
///
/// On the event-driven engine (networks with a layer graph) the batches run once, together,
/// whatever the depth ([`SparseNetwork::run_in_order`]), while its buffers fit in
/// [`STAGED_MEMORY_BUDGET`]; above it, and on the dense engine, each slot's input is captured
/// by a run that stops at the slot, so the cost grows with depth × slots.
pub fn visit_slots(
    net: &mut SpikingNetwork,
    batches: &[Tensor<4>],
    timesteps: usize,
    mut visit: impl FnMut(usize, &mut NeuronLayerSpec, &[SlotInput]),
) {
    let Some(first) = batches.first() else { return };
    let [_, c, h, w] = first.dims();
    let engine = SparseNetwork::compile(net, [c, h, w]).ok();
    let sizes: Vec<usize> = batches.iter().map(|b| b.dims()[0]).collect();
    let total: usize = sizes.iter().sum();
    if let Some(engine) = engine.as_ref().filter(|e| e.staged_bytes(total, timesteps) <= STAGED_MEMORY_BUDGET) {
        let images = Tensor::cat(batches.to_vec(), 0);
        engine.run_in_order(net, images, timesteps, |slot, layer, values, shape| {
            // Split `[T, total, size]` into each batch's `[T, batch, size]`.
            let size = shape.per_sample();
            let mut offset = 0;
            let inputs: Vec<SlotInput> = sizes
                .iter()
                .map(|&batch| {
                    let mut part = Vec::with_capacity(timesteps * batch * size);
                    for step in values.chunks(total * size) {
                        part.extend_from_slice(&step[offset * size..(offset + batch) * size]);
                    }
                    offset += batch;
                    SlotInput { values: part, shape: LayerShape { batch, ..shape } }
                })
                .collect();
            visit(slot, layer, &inputs);
        });
        return;
    }
    let config = SimConfig::new(timesteps, timesteps.min(CAPTURE_CHUNK));
    for slot in 0..net.layers.len() {
        let inputs: Vec<SlotInput> = batches
            .iter()
            .map(|images| {
                let batch = images.dims()[0];
                let (values, [channels, inner]) = match &engine {
                    Some(engine) => engine.slot_input(net, images.clone(), &config, slot),
                    None => {
                        simulate_slot_input(net, images.clone(), timesteps, timesteps.min(DENSE_CAPTURE_CHUNK), slot)
                    }
                };
                SlotInput { values, shape: LayerShape { batch, channels, inner } }
            })
            .collect();
        visit(slot, &mut net.layers[slot], &inputs);
    }
}

/// Layer by layer in forward order (each layer sees the corrected earlier ones): simulate
/// `timesteps` steps on `images`, and
/// - bias correction: b_c ← b_c − mean_{n,h,w}(ŷ_SNN − y_ANN);
/// - potential initialisation (when `potential_init`): v_init[c,h,w] = T·mean_n(y_ANN − ŷ_SNN),
///   measured after the bias correction of the same layer.
///
/// Each slot's input is captured once ([`visit_slots`]) and the slot's neurons are replayed on
/// it for both measurements.
pub fn correct_layers(net: &mut SpikingNetwork, images: &Tensor<4>, timesteps: usize, potential_init: bool) {
    let ann = ann_slot_outputs(net, images);
    visit_slots(net, std::slice::from_ref(images), timesteps, |slot, layer, inputs| {
        correct_from_input(layer, &inputs[0], &ann[slot], timesteps, potential_init);
    });
}

/// Bias correction (and potential initialisation when `potential_init`) of one slot, as in
/// [`correct_layers`]; `ann`: the slot's ANN output on `images` (from [`ann_slot_outputs`]).
/// Captures the slot's input with a run of its own (dense engine, stopping at the slot).
pub fn correct_slot(
    net: &mut SpikingNetwork,
    images: &Tensor<4>,
    ann: &(Vec<f32>, SlotShape),
    slot: usize,
    timesteps: usize,
    potential_init: bool,
) {
    let batch = images.dims()[0];
    let (values, [channels, inner]) =
        simulate_slot_input(net, images.clone(), timesteps, timesteps.min(DENSE_CAPTURE_CHUNK), slot);
    let input = SlotInput { values, shape: LayerShape { batch, channels, inner } };
    correct_from_input(&mut net.layers[slot], &input, ann, timesteps, potential_init);
}

/// [`correct_slot`] on the slot's captured input: replays `layer` on it, corrects its bias
/// (and initial potential when `potential_init`) towards the ANN output `ann`.
pub fn correct_from_input(
    layer: &mut NeuronLayerSpec,
    input: &SlotInput,
    ann: &(Vec<f32>, SlotShape),
    timesteps: usize,
    potential_init: bool,
) {
    let (y_ann, shape) = ann;
    let snn = replay_layer(layer, &input.values, input.shape, timesteps);
    let e = channel_mean_difference(&snn, y_ann, *shape);
    let bias = layer.bias.get_or_insert_with(|| vec![0.0; shape.channels]);
    for (b, e) in bias.iter_mut().zip(&e) {
        *b -= e;
    }
    if potential_init {
        let snn = replay_layer(layer, &input.values, input.shape, timesteps);
        let d = element_mean_difference(y_ann, &snn, shape.channels * shape.inner);
        layer.v_init = Some(d.into_iter().map(|v| v * timesteps as f32).collect());
    }
}

/// Threshold balancing on the SNN (Sengupta et al. 2019, "Spike-Norm"): slot by slot in forward
/// order, with the earlier slots already balanced and spiking, simulate `timesteps` steps on
/// `images` and set the slot's (layer-wise) threshold to the largest input any of its neurons
/// receives at any step, θ_l = max_{t,n,i} x_l(t) with x_l = W_l·s_{l−1}(t) + b_l (the slot's
/// pre-activation; with direct input coding the first slot's x is the ANN's pre-activation).
/// A slot that never receives a positive input keeps its threshold. Returns the thresholds.
pub fn balance_thresholds(net: &mut SpikingNetwork, images: &Tensor<4>, timesteps: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(net.layers.len());
    visit_slots(net, std::slice::from_ref(images), timesteps, |_, layer, inputs| {
        let max = inputs[0].values.iter().copied().fold(0f32, f32::max);
        if max > 0.0 && max.is_finite() {
            layer.thresholds = vec![max];
        }
        out.push(layer.thresholds[0]);
    });
    out
}

/// Corrections applied slot by slot in forward order by [`calibrate_layers`].
pub struct LayerCalibration<'a> {
    /// Weight calibration and its cached samples `[N, C, H, W]` (None: off).
    pub weights: Option<(&'a WeightCalibration, &'a Tensor<4>)>,
    /// Bias correction and its images (None: off).
    pub bias: Option<&'a Tensor<4>>,
    /// Potential initialisation (on the bias-correction images; needs `bias`).
    pub potential_init: bool,
}

/// SNN Calibration's per-slot pipeline: for each slot in forward order, weight calibration
/// (if on), then bias correction, then potential initialisation, each seeing the earlier
/// slots (and the earlier steps of the same slot) already calibrated. The ANN references
/// of all steps come from the weights `net.model` has on entry (the frozen originals).
/// Returns the weight-calibration report of every slot (empty when it is off).
pub fn calibrate_layers(net: &mut SpikingNetwork, timesteps: usize, steps: &LayerCalibration) -> Vec<SlotWeightReport> {
    let Some((settings, wc_images)) = steps.weights else {
        // Without weight calibration the weights stay fixed: one pass over the network.
        if let Some(images) = steps.bias {
            correct_layers(net, images, timesteps, steps.potential_init);
        }
        return Vec::new();
    };
    let reference = net.model.clone();
    let ann = steps.bias.map(|images| ann_slot_outputs(net, images)).unwrap_or_default();
    let mut reports = Vec::new();
    for slot in 0..net.layers.len() {
        reports.push(calibrate_slot_weights(net, &reference, wc_images, slot, timesteps, settings));
        if let (Some(images), Some(target)) = (steps.bias, ann.get(slot)) {
            correct_slot(net, images, target, slot, timesteps, steps.potential_init);
        }
    }
    reports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_kl_is_zero_for_a_representable_distribution_and_charges_clipping() {
        // Mass on one bin per level: quantising to 4 levels of 8 bins loses nothing.
        let mut hist = vec![0f64; 64];
        for level in 0..4 {
            hist[level * 8 + 3] = 10.0;
        }
        assert!(histogram_kl_divergence(&hist, 32, 4) < 1e-9);
        // An uneven split inside one level costs: P = (10, 30)/·, Q = (20, 20)/· there.
        hist[5] = 30.0;
        let kl = histogram_kl_divergence(&hist, 32, 4);
        let expected = (10.0 * (10.0f64 / 20.0).ln() + 30.0 * (30.0f64 / 20.0).ln()) / 70.0;
        assert!((kl - expected).abs() < 1e-3, "{kl} vs {expected}");
        // Clipping at bin 24 moves the last level's mass to bin 23 and Q lacks it.
        assert!(histogram_kl_divergence(&hist, 24, 4) > kl);
        assert_eq!(positive_histogram([0.0, -1.0, 0.5, 1.0, 7.0], 1.0).iter().sum::<f64>(), 3.0);
    }

    #[test]
    fn clip_floor_quantises_and_clips() {
        assert_eq!(clip_floor(0.55, 4.0, 1.0, 1.0), 0.5);
        assert_eq!(clip_floor(2.0, 4.0, 1.0, 1.0), 1.0);
        assert_eq!(clip_floor(-1.0, 4.0, 1.0, 1.0), 0.0);
        assert_eq!(clip_floor(2.0, 4.0, 1.0, 3.0), 2.0); // φ = 3 spikes per step allowed
    }

    #[test]
    fn search_trades_clipping_against_quantisation() {
        // Mostly small values and one outlier: the best threshold for T = 4 is well below
        // the max, and the error at the chosen θ is no larger than at θ = max.
        let mut ys: Vec<f32> = (1..=2000).map(|i| i as f32 / 2000.0).collect();
        ys.push(10.0);
        let theta = search_threshold(10.0, |t| clip_floor_mse(&ys, 4.0, t, 1.0));
        assert!(theta < 5.0, "{theta}");
        assert!(clip_floor_mse(&ys, 4.0, theta, 1.0) <= clip_floor_mse(&ys, 4.0, 10.0, 1.0));
        // Large T: quantisation is cheap, clipping expensive → θ stays near the max.
        let theta = search_threshold(10.0, |t| clip_floor_mse(&ys, 4096.0, t, 1.0));
        assert!(theta > 9.0, "{theta}");
    }

    #[test]
    fn channel_kl_is_zero_for_proportional_channels_and_positive_otherwise() {
        let shape = SlotShape { channels: 2, inner: 2 };
        // batch 1: channel 0 = [1, 3], channel 1 = [2, 2].
        let p = [1.0, 3.0, 2.0, 2.0];
        // Each channel rescaled by its own factor: identical after normalisation.
        assert!(channel_kl_divergence(&p, &[0.5, 1.5, 7.0, 7.0], shape).abs() < 1e-8);
        // Channel 0 flattened to [2, 2]: KL = .25·ln(.25/.5) + .75·ln(.75/.5).
        let kl = channel_kl_divergence(&p, &[2.0, 2.0, 2.0, 2.0], shape);
        let expected = 0.25 * (0.5f64).ln() + 0.75 * (1.5f64).ln();
        assert!((kl - expected).abs() < 1e-6, "{kl} vs {expected}");
        // A silent output where the ANN is active costs far more than a distorted one.
        assert!(channel_kl_divergence(&p, &[0.0, 1.0, 2.0, 2.0], shape) > 10.0 * kl);
        // Zeros of p contribute nothing.
        assert_eq!(channel_kl_divergence(&[0.0; 4], &[1.0, 0.0, 3.0, 0.0], shape), 0.0);
    }

    #[test]
    fn argmin_takes_the_first_minimum_and_skips_nan() {
        assert_eq!(argmin_first([3.0, 1.0, 1.0, 2.0]), 1);
        assert_eq!(argmin_first([f64::NAN, 2.0, f64::NAN]), 1);
        assert_eq!(argmin_first([]), 0);
    }

    #[test]
    fn mean_differences() {
        // batch 2, 2 channels, inner 2
        let a = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0];
        let b = [0.0; 8];
        assert_eq!(channel_mean_difference(&a, &b, SlotShape { channels: 2, inner: 2 }), vec![2.0, 3.0]);
        assert_eq!(element_mean_difference(&a, &b, 4), vec![2.0, 2.0, 3.0, 3.0]);
    }
}
