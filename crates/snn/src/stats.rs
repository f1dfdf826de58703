//! Statistics over the samples of a batch, mergeable across batches.

/// Count, sum, min and max of one value per sample (e.g. a neuron model's per-step
/// diagnostic). Merge the stats of several batches with [`SampleStats::merge`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleStats {
    /// Number of samples (values) summarised.
    pub samples: u64,
    /// Sum of the values.
    pub sum: f64,
    /// Smallest value (`+∞` when `samples == 0`).
    pub min: f32,
    /// Largest value (`−∞` when `samples == 0`).
    pub max: f32,
}

impl Default for SampleStats {
    fn default() -> Self {
        Self { samples: 0, sum: 0.0, min: f32::INFINITY, max: f32::NEG_INFINITY }
    }
}

impl SampleStats {
    /// Adds one sample's value.
    pub fn push(&mut self, value: f32) {
        self.samples += 1;
        self.sum += value as f64;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Adds the samples summarised by `other`.
    pub fn merge(&mut self, other: &SampleStats) {
        self.samples += other.samples;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Mean over the samples (NaN when there are none).
    pub fn mean(&self) -> f64 {
        self.sum / self.samples as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_merge_over_batches() {
        let mut a = SampleStats::default();
        a.push(0.5);
        let mut b = SampleStats::default();
        b.push(1.0);
        b.push(0.75);
        a.merge(&b);
        assert_eq!((a.samples, a.min, a.max, a.mean()), (3, 0.5, 1.0, 0.75));
    }
}
