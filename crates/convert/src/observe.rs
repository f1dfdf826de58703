//! Activation statistics collected in ANN mode (ReLU slots).

use burn::prelude::*;
pub(crate) use zoo::percentile_of;
use zoo::{ActivationParams, Convertible, ForwardCtx, Network, SlotHook, tensor_values};

/// Maximum number of retained samples per channel before decimation.
const SAMPLES_PER_CHANNEL: usize = 1 << 15;

/// Statistics of one slot's ReLU output over the calibration images.
#[derive(Clone, Debug, Default)]
pub struct SlotStats {
    /// Per-channel maximum (0 for channels that never activate).
    pub channel_max: Vec<f32>,
    /// Per-channel systematic sample of the *positive* activations (every `stride[c]`-th).
    pub channel_samples: Vec<Vec<f32>>,
    stride: Vec<usize>,
    seen: Vec<u64>,
    /// Number of activations observed (zeros included).
    pub total: u64,
    /// Number of positive activations observed.
    pub positive: u64,
}

impl SlotStats {
    fn record(&mut self, values: &[f32], channels: usize, inner: usize) {
        if self.channel_max.is_empty() {
            self.channel_max = vec![0.0; channels];
            self.channel_samples = vec![Vec::new(); channels];
            self.stride = vec![1; channels];
            self.seen = vec![0; channels];
        }
        self.total += values.len() as u64;
        for (i, chunk) in values.chunks(inner).enumerate() {
            let c = i % channels;
            for &v in chunk.iter().filter(|v| **v > 0.0) {
                self.positive += 1;
                if v > self.channel_max[c] {
                    self.channel_max[c] = v;
                }
                if self.seen[c].is_multiple_of(self.stride[c] as u64) {
                    self.channel_samples[c].push(v);
                    if self.channel_samples[c].len() >= SAMPLES_PER_CHANNEL {
                        let kept: Vec<f32> = self.channel_samples[c].iter().step_by(2).copied().collect();
                        self.channel_samples[c] = kept;
                        self.stride[c] *= 2;
                    }
                }
                self.seen[c] += 1;
            }
        }
    }

    /// The statistics of a layer whose channel c produced the values `channels[c]` (one
    /// sample, one position per value): for tests and tools that have values, not a network.
    pub fn from_channel_values(channels: Vec<Vec<f32>>) -> Self {
        let mut stats = Self::default();
        let n = channels.iter().map(Vec::len).max().unwrap_or(0);
        // One "sample" per value index: channel c at position 0; missing values are 0.
        for i in 0..n {
            let values: Vec<f32> = channels.iter().map(|c| c.get(i).copied().unwrap_or(0.0)).collect();
            stats.record(&values, channels.len(), 1);
        }
        stats
    }

    /// The kept positive activations of every channel, each with the number of observed
    /// activations it stands for (its channel's sampling stride): weighted, they estimate
    /// the layer's distribution of positive activations without favouring quiet channels.
    pub fn weighted_samples(&self) -> Vec<(f32, f64)> {
        self.channel_samples
            .iter()
            .zip(&self.stride)
            .flat_map(|(values, &stride)| values.iter().map(move |&v| (v, stride as f64)))
            .collect()
    }

    /// Largest activation of the layer.
    pub fn max(&self) -> f32 {
        self.channel_max.iter().copied().fold(0.0, f32::max)
    }

    /// p-th percentile (0..=100) of the layer's positive activations; p = 100 is the exact max.
    pub fn percentile(&self, p: f64) -> f32 {
        if p >= 100.0 {
            return self.max();
        }
        let mut all: Vec<f32> = self.channel_samples.iter().flatten().copied().collect();
        percentile_of(&mut all, p)
    }

    /// p-th percentile of channel `c`'s positive activations (exact max for p = 100).
    pub fn channel_percentile(&self, c: usize, p: f64) -> f32 {
        if p >= 100.0 {
            return self.channel_max[c];
        }
        let mut v = self.channel_samples[c].clone();
        percentile_of(&mut v, p)
    }
}

/// A slot hook that applies the model's ANN activation (ReLU, or its clip/QCFS activation)
/// and records statistics of the output.
#[derive(Default)]
pub struct ObserveHook {
    /// Per-slot statistics.
    pub stats: Vec<SlotStats>,
    /// The model's clip/QCFS activation; ReLU when `None`.
    pub activation: Option<ActivationParams>,
}

impl SlotHook for ObserveHook {
    fn apply(&mut self, slot: usize, x: Tensor<4>) -> Tensor<4> {
        let y = match &self.activation {
            Some(a) => a.apply(slot, x),
            None => burn::tensor::activation::relu(x),
        };
        let [_, c, h, w] = y.dims();
        if self.stats.len() <= slot {
            self.stats.resize_with(slot + 1, SlotStats::default);
        }
        self.stats[slot].record(&tensor_values(y.clone()), c, h * w);
        y
    }
}

/// Runs the ANN on every batch and returns per-slot statistics.
pub fn observe(model: &Network, batches: &[Tensor<4>]) -> Vec<SlotStats> {
    let mut hook = ObserveHook { activation: model.activation().cloned(), ..ObserveHook::default() };
    for b in batches {
        let mut ctx = ForwardCtx::with_hook(&mut hook);
        let _ = model.forward_ctx(b.clone(), &mut ctx);
    }
    hook.stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy_linear_interpolation() {
        let mut v: Vec<f32> = (1..=101).map(|i| i as f32).collect();
        assert_eq!(percentile_of(&mut v, 50.0), 51.0);
        assert_eq!(percentile_of(&mut v, 99.5), 100.5);
        assert_eq!(percentile_of(&mut v, 100.0), 101.0);
    }

    #[test]
    fn stats_track_channel_max_and_ignore_zeros() {
        let mut s = SlotStats::default();
        // 2 channels × 3 values, one sample.
        s.record(&[0.0, 1.0, 2.0, 0.5, 0.0, 4.0], 2, 3);
        assert_eq!(s.channel_max, vec![2.0, 4.0]);
        assert_eq!(s.positive, 4);
        assert_eq!(s.total, 6);
        assert_eq!(s.max(), 4.0);
        assert_eq!(s.channel_percentile(0, 50.0), 1.5);
    }

    #[test]
    fn decimation_keeps_the_distribution() {
        let mut s = SlotStats::default();
        // Uniform on (0, 1000] from a fixed LCG (systematic sampling of a periodic sequence
        // would alias, real activations are not periodic).
        let mut state = 12345u64;
        let values: Vec<f32> = (0..200_000)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 1000.0 + 1e-3
            })
            .collect();
        s.record(&values, 1, values.len());
        assert!(s.channel_samples[0].len() < SAMPLES_PER_CHANNEL);
        let p = s.percentile(99.0);
        assert!((p - 990.0).abs() < 5.0, "{p}");
    }
}
