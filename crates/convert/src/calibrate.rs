//! Reusable calibration pieces (SNN Calibration, Li et al. 2021; also the base of AdaFire):
//! threshold search with a pluggable objective, bias correction and potential initialisation.

use burn::prelude::*;
use snn::{SpikingNetwork, simulate_recording};
use zoo::{Convertible, ForwardCtx, tensor_values};

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
    let mut best = (f64::INFINITY, max);
    for i in 0..95 {
        let theta = (1.0 - 0.01 * i as f32) * max;
        let err = objective(theta);
        if err < best.0 {
            best = (err, theta);
        }
    }
    best.1
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

/// Layer by layer in forward order (each layer sees the corrected earlier ones): simulate
/// `timesteps` steps on `images`, and
/// - bias correction: b_c ← b_c − mean_{n,h,w}(ŷ_SNN − y_ANN);
/// - potential initialisation (when `potential_init`): v_init[c,h,w] = T·mean_n(y_ANN − ŷ_SNN),
///   measured after the bias correction of the same layer.
pub fn correct_layers(net: &mut SpikingNetwork, images: &Tensor<4>, timesteps: usize, potential_init: bool) {
    let ann = ann_slot_outputs(net, images);
    let [batch, ..] = images.dims();
    let labels = vec![0i64; batch];
    for (slot, (y_ann, shape)) in ann.iter().enumerate() {
        let per_sample = shape.channels * shape.inner;
        let (_, snn) = simulate_recording(net, images.clone(), &labels, timesteps, timesteps, &[slot]);
        let e = channel_mean_difference(&snn[slot], y_ann, *shape);
        let bias = net.layers[slot].bias.get_or_insert_with(|| vec![0.0; shape.channels]);
        for (b, e) in bias.iter_mut().zip(&e) {
            *b -= e;
        }
        if potential_init {
            let (_, snn) = simulate_recording(net, images.clone(), &labels, timesteps, timesteps, &[slot]);
            let d = element_mean_difference(y_ann, &snn[slot], per_sample);
            net.layers[slot].v_init = Some(d.into_iter().map(|v| v * timesteps as f32).collect());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn mean_differences() {
        // batch 2, 2 channels, inner 2
        let a = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0];
        let b = [0.0; 8];
        assert_eq!(channel_mean_difference(&a, &b, SlotShape { channels: 2, inner: 2 }), vec![2.0, 3.0]);
        assert_eq!(element_mean_difference(&a, &b, 4), vec![2.0, 2.0, 3.0, 3.0]);
    }
}
