//! In-memory point-cloud sets, per-sample preprocessing (resampling to a fixed point count,
//! unit-sphere normalisation), training augmentation and batch assembly.

use crate::image::{Fnv1a, class_counts, gather_samples};
use crate::rng::Rng;

/// Labelled point clouds, each exactly `num_points` points, stored point-major xyz:
/// sample `i` is `points[i*num_points*3 .. (i+1)*num_points*3]`, and point `j` of a sample is
/// `[x, y, z]` at `3*j .. 3*j+3` within it.
#[derive(Clone, Debug)]
pub struct PointCloudSet {
    /// Dataset name, e.g. `"modelnet10"`.
    pub name: String,
    /// `N * num_points * 3` coordinates, point-major xyz.
    pub points: Vec<f32>,
    /// One label per sample, each `< num_classes`.
    pub labels: Vec<u16>,
    /// Points per sample.
    pub num_points: usize,
    /// Number of classes of the dataset (not only those present in this set).
    pub num_classes: usize,
    /// Human-readable class names, `num_classes` of them.
    pub class_names: Vec<String>,
}

impl PointCloudSet {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the set holds no sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of values of one sample (`num_points * 3`).
    pub fn sample_len(&self) -> usize {
        self.num_points * 3
    }

    /// Coordinates of sample `i` (`num_points * 3` values, point-major xyz).
    ///
    /// # Panics
    /// If `i >= self.len()`, like slice indexing.
    pub fn sample(&self, i: usize) -> &[f32] {
        let n = self.sample_len();
        &self.points[i * n..(i + 1) * n]
    }

    /// A new set holding the samples at `indices`, in that order (repeats allowed).
    ///
    /// # Panics
    /// If an index is out of range, like slice indexing.
    pub fn subset(&self, indices: &[usize]) -> PointCloudSet {
        let (points, labels) = gather_samples(&self.points, &self.labels, self.sample_len(), indices);
        PointCloudSet {
            name: self.name.clone(),
            points,
            labels,
            num_points: self.num_points,
            num_classes: self.num_classes,
            class_names: self.class_names.clone(),
        }
    }

    /// Number of samples of each class (`num_classes` entries; out-of-range labels are ignored).
    pub fn class_counts(&self) -> Vec<usize> {
        class_counts(&self.labels, self.num_classes)
    }

    /// Short stable fingerprint (hex of a 64-bit FNV-1a of point count, class count, labels and
    /// the bit patterns of the coordinates) used for cache keys, in the style of
    /// [`crate::ImageSet::fingerprint`]. The name is not included: equal data gives equal
    /// fingerprints.
    pub fn fingerprint(&self) -> String {
        let mut h = Fnv1a::new();
        h.write(b"points");
        h.write(&(self.num_points as u64).to_le_bytes());
        h.write(&(self.num_classes as u64).to_le_bytes());
        h.write(&(self.labels.len() as u64).to_le_bytes());
        for &l in &self.labels {
            h.write(&l.to_le_bytes());
        }
        for &v in &self.points {
            h.write(&v.to_bits().to_le_bytes());
        }
        format!("{:016x}", h.finish())
    }
}

/// Training augmentation (PointNet/PointNet++ convention): random point dropout (ratio
/// uniform in `[0, dropout_max]`; dropped points replaced by the first point), isotropic random
/// scale in `[scale_low, scale_high]`, random shift in `[-shift, shift]` per axis.
///
/// This is the augmentation of the reference PointNet++ classification training
/// (`random_point_dropout`, `random_scale_point_cloud`, `shift_point_cloud`), applied in
/// that order. The scale is one factor for all three axes (isotropic).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PointAugment {
    /// Largest dropout ratio; each sample draws its ratio uniformly in `[0, dropout_max)`.
    /// 0 disables dropout.
    pub dropout_max: f32,
    /// Lower bound of the random scale factor.
    pub scale_low: f32,
    /// Upper bound of the random scale factor (equal bounds give a fixed scale).
    pub scale_high: f32,
    /// Largest absolute shift per axis (in units of the unit sphere). 0 disables shifting.
    pub shift: f32,
}

impl Default for PointAugment {
    /// The PointNet++ defaults: dropout up to 0.875, scale in [0.8, 1.25], shift up to 0.1.
    fn default() -> Self {
        PointAugment { dropout_max: 0.875, scale_low: 0.8, scale_high: 1.25, shift: 0.1 }
    }
}

impl PointAugment {
    /// Augments one sample (`num_points * 3` values, point-major xyz) in place.
    ///
    /// Draws, in this order: the dropout ratio `r = dropout_max * u`, one uniform `u_j` per
    /// point (point `j` is replaced by point 0 when `u_j < r`), the scale factor, then the x,
    /// y and z shifts. The number of draws does not depend on the parameters, so the
    /// generator's state after a batch depends only on the batch's size and point count.
    pub fn apply(&self, sample: &mut [f32], rng: &mut Rng) {
        let ratio = self.dropout_max * rng.uniform();
        let mut first = [0f32; 3];
        if let Some(p) = sample.get(..3) {
            first.copy_from_slice(p);
        }
        for p in sample.chunks_exact_mut(3) {
            if rng.uniform() < ratio {
                p.copy_from_slice(&first);
            }
        }
        let scale = rng.range(self.scale_low, self.scale_high);
        let shift = [
            rng.range(-self.shift, self.shift),
            rng.range(-self.shift, self.shift),
            rng.range(-self.shift, self.shift),
        ];
        for p in sample.chunks_exact_mut(3) {
            for (v, s) in p.iter_mut().zip(shift) {
                *v = *v * scale + s;
            }
        }
    }
}

/// Builds a float batch: returns (data as a flat `Vec` in layout `[n, 3, num_points, 1]`, i.e.
/// channel-major — the x plane, then the y plane, then the z plane of each sample — and the
/// labels as `i64`).
///
/// With `augment`, each sample is first augmented by [`PointAugment::apply`] (samples in
/// `indices` order, all drawing from the one generator), so the result is a deterministic
/// function of the generator's state.
///
/// # Panics
/// If an index is out of range for `set`, like slice indexing.
pub fn make_point_batch(
    set: &PointCloudSet,
    indices: &[usize],
    augment: Option<(&PointAugment, &mut Rng)>,
) -> (Vec<f32>, Vec<i64>) {
    let np = set.num_points;
    let per = 3 * np;
    let mut data = vec![0.0f32; indices.len() * per];
    let mut labels = Vec::with_capacity(indices.len());
    let mut augment = augment;
    let mut scratch = vec![0.0f32; per];
    for (b, &idx) in indices.iter().enumerate() {
        labels.push(i64::from(set.labels[idx]));
        scratch.copy_from_slice(set.sample(idx));
        if let Some((a, rng)) = augment.as_mut() {
            a.apply(&mut scratch, rng);
        }
        let out = &mut data[b * per..(b + 1) * per];
        for (j, p) in scratch.chunks_exact(3).enumerate() {
            out[j] = p[0];
            out[np + j] = p[1];
            out[2 * np + j] = p[2];
        }
    }
    (data, labels)
}

/// Centres a cloud (point-major xyz) on its centroid and scales it so that the largest point
/// norm is 1. A cloud whose points all coincide becomes all zeros. Computed in `f64`.
pub fn normalize_unit_sphere(points: &mut [f32]) {
    let n = points.len() / 3;
    if n == 0 {
        return;
    }
    let mut c = [0f64; 3];
    for p in points.chunks_exact(3) {
        for k in 0..3 {
            c[k] += f64::from(p[k]);
        }
    }
    for v in &mut c {
        *v /= n as f64;
    }
    let mut max2 = 0f64;
    for p in points.chunks_exact(3) {
        let d2: f64 = (0..3).map(|k| (f64::from(p[k]) - c[k]).powi(2)).sum();
        max2 = max2.max(d2);
    }
    let scale = if max2 > 0.0 { 1.0 / max2.sqrt() } else { 0.0 };
    for p in points.chunks_exact_mut(3) {
        for k in 0..3 {
            p[k] = ((f64::from(p[k]) - c[k]) * scale) as f32;
        }
    }
}

/// How a cloud with more points than wanted is reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reduce {
    /// Keep the first `n` points (files whose point order is already a random sample).
    First,
    /// Keep a random subset of `n` points, in their file order, drawn from this seed.
    Random(u64),
}

/// Brings a cloud (point-major xyz, at least one point) to exactly `n` points: reduced as
/// `reduce` says when it has more; when it has fewer, point `j` is the file's point
/// `j mod m` (the cloud repeated cyclically).
pub(crate) fn fit_points(points: &[f32], n: usize, reduce: Reduce) -> Vec<f32> {
    let m = points.len() / 3;
    debug_assert!(m > 0);
    let mut out = Vec::with_capacity(3 * n);
    for s in fit_indices(m, n, reduce) {
        out.extend_from_slice(&points[3 * s..3 * s + 3]);
    }
    out
}

/// Which of a cloud's `m > 0` points [`fit_points`] keeps, in output order: all of them when
/// `m == n`; `j mod m` for `j < n` when `m < n`; the first `n` or a seeded random subset (in
/// file order) when `m > n`. Lets per-point attributes (e.g. part labels) follow the points.
pub(crate) fn fit_indices(m: usize, n: usize, reduce: Reduce) -> Vec<usize> {
    debug_assert!(m > 0);
    if m <= n {
        return (0..n).map(|j| j % m).collect();
    }
    match reduce {
        Reduce::First => (0..n).collect(),
        Reduce::Random(seed) => crate::rng::sample_indices(m, n, seed),
    }
}

/// Largest norm and centroid of a cloud (test helper, also used by the data checks).
#[cfg(test)]
pub(crate) fn centroid_and_radius(points: &[f32]) -> ([f64; 3], f64) {
    let n = (points.len() / 3).max(1) as f64;
    let mut c = [0f64; 3];
    for p in points.chunks_exact(3) {
        for k in 0..3 {
            c[k] += f64::from(p[k]) / n;
        }
    }
    let r = points
        .chunks_exact(3)
        .map(|p| (0..3).map(|k| f64::from(p[k]).powi(2)).sum::<f64>().sqrt())
        .fold(0f64, f64::max);
    (c, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> PointCloudSet {
        // three samples of 4 points each
        let points: Vec<f32> = (0..36).map(|v| v as f32).collect();
        PointCloudSet {
            name: "t".into(),
            points,
            labels: vec![0, 2, 2],
            num_points: 4,
            num_classes: 3,
            class_names: vec!["a".into(), "b".into(), "c".into()],
        }
    }

    #[test]
    fn sample_subset_counts() {
        let s = set();
        assert_eq!(s.len(), 3);
        assert!(!s.is_empty());
        assert_eq!(s.sample(1), &(12..24).map(|v| v as f32).collect::<Vec<_>>()[..]);
        let sub = s.subset(&[2, 0, 2]);
        assert_eq!(sub.labels, vec![2, 0, 2]);
        assert_eq!(sub.sample(0), s.sample(2));
        assert_eq!(sub.sample(1), s.sample(0));
        assert_eq!(sub.num_points, 4);
        assert_eq!(s.class_counts(), vec![1, 0, 2]);
        assert!(s.subset(&[]).is_empty());
    }

    #[test]
    fn fingerprint_stable_and_sensitive() {
        let f = set().fingerprint();
        assert_eq!(f.len(), 16);
        assert_eq!(f, set().fingerprint());
        let mut t = set();
        t.name = "other".into();
        assert_eq!(f, t.fingerprint(), "name is not part of the fingerprint");
        let mut t = set();
        t.points[7] = 7.0001;
        assert_ne!(f, t.fingerprint());
        let mut t = set();
        t.points[0] = -0.0; // differs from 0.0 in bits
        assert_ne!(f, t.fingerprint());
        let mut t = set();
        t.labels[0] = 1;
        assert_ne!(f, t.fingerprint());
        let mut t = set();
        t.num_points = 6;
        t.points.truncate(36);
        assert_ne!(f, t.fingerprint());
    }

    #[test]
    fn batch_layout_is_channel_major() {
        let s = set();
        let (data, labels) = make_point_batch(&s, &[1, 0], None);
        assert_eq!(labels, vec![2, 0]);
        assert_eq!(data.len(), 2 * 3 * 4);
        // sample 1 point j = [12+3j, 13+3j, 14+3j]
        assert_eq!(&data[0..4], &[12.0, 15.0, 18.0, 21.0], "x plane");
        assert_eq!(&data[4..8], &[13.0, 16.0, 19.0, 22.0], "y plane");
        assert_eq!(&data[8..12], &[14.0, 17.0, 20.0, 23.0], "z plane");
        assert_eq!(&data[12..16], &[0.0, 3.0, 6.0, 9.0], "second sample x plane");
        let (empty, l) = make_point_batch(&s, &[], None);
        assert!(empty.is_empty() && l.is_empty());
    }

    #[test]
    fn identity_augment_changes_nothing() {
        let s = set();
        let id = PointAugment { dropout_max: 0.0, scale_low: 1.0, scale_high: 1.0, shift: 0.0 };
        let mut rng = Rng::new(3);
        let (plain, _) = make_point_batch(&s, &[0, 1, 2], None);
        let (aug, _) = make_point_batch(&s, &[0, 1, 2], Some((&id, &mut rng)));
        assert_eq!(plain, aug);
    }

    /// Recovers (scale, shift) from an augmented sample whose first two points were not
    /// dropped, and checks every point is either an affine image of itself or of point 0.
    #[test]
    fn augment_ranges_and_dropout() {
        let n = 64;
        let base: Vec<f32> =
            (0..n).flat_map(|j| [j as f32 * 0.01, 0.5 - j as f32 * 0.005, (j % 7) as f32 * 0.1]).collect();
        let a = PointAugment::default();
        let mut rng = Rng::new(9);
        let (mut min_scale, mut max_scale, mut max_shift) = (f32::MAX, f32::MIN, 0f32);
        let mut dropped_total = 0usize;
        let mut max_dropped = 0usize;
        for _ in 0..300 {
            // replay the draws to know the parameters
            let mut probe = rng.clone();
            let ratio = a.dropout_max * probe.uniform();
            let drops: Vec<bool> = (0..n).map(|_| probe.uniform() < ratio).collect();
            let scale = probe.range(a.scale_low, a.scale_high);
            let shift = [probe.range(-0.1, 0.1), probe.range(-0.1, 0.1), probe.range(-0.1, 0.1)];
            let mut s = base.clone();
            a.apply(&mut s, &mut rng);
            assert!((0.8..1.25).contains(&scale));
            assert!(shift.iter().all(|v| v.abs() <= 0.1));
            min_scale = min_scale.min(scale);
            max_scale = max_scale.max(scale);
            max_shift = max_shift.max(shift.iter().fold(0f32, |m, v| m.max(v.abs())));
            let dropped = drops.iter().filter(|&&d| d).count();
            dropped_total += dropped;
            max_dropped = max_dropped.max(dropped);
            for j in 0..n {
                let src = if drops[j] { 0 } else { j };
                for k in 0..3 {
                    let expect = base[3 * src + k] * scale + shift[k];
                    assert!((s[3 * j + k] - expect).abs() < 1e-6, "point {j} axis {k}");
                }
            }
            // same generator state => same result
            assert_eq!(probe.next_u64(), rng.clone().next_u64(), "draw count is fixed");
        }
        assert!(min_scale < 0.85 && max_scale > 1.2, "{min_scale} {max_scale}");
        assert!(max_shift > 0.09);
        // mean dropout ratio is dropout_max/2 => about 0.44 of the points
        let mean = dropped_total as f64 / (300.0 * n as f64);
        assert!((mean - 0.4375).abs() < 0.05, "mean dropout {mean}");
        assert!(max_dropped > n / 2 && max_dropped < n, "{max_dropped}");
    }

    #[test]
    fn augmented_batch_is_seeded() {
        let s = set();
        let a = PointAugment::default();
        let (x, _) = make_point_batch(&s, &[0, 1, 2], Some((&a, &mut Rng::new(1))));
        let (y, _) = make_point_batch(&s, &[0, 1, 2], Some((&a, &mut Rng::new(1))));
        let (z, _) = make_point_batch(&s, &[0, 1, 2], Some((&a, &mut Rng::new(2))));
        assert_eq!(x, y);
        assert_ne!(x, z);
        let (plain, _) = make_point_batch(&s, &[0, 1, 2], None);
        assert_ne!(x, plain);
    }

    #[test]
    fn unit_sphere_invariants() {
        let mut p = vec![1.0, 2.0, 3.0, 5.0, 2.0, 3.0, 1.0, 6.0, 3.0, 1.0, 2.0, 11.0];
        normalize_unit_sphere(&mut p);
        let (c, r) = centroid_and_radius(&p);
        assert!(c.iter().all(|v| v.abs() < 1e-6), "{c:?}");
        assert!((r - 1.0).abs() < 1e-6, "{r}");
        // centroid (2,3,5); farthest point (1,2,11) at distance sqrt(1+1+36)
        let d = 38f64.sqrt();
        assert!((f64::from(p[9]) - (-1.0 / d)).abs() < 1e-6);
        assert!((f64::from(p[11]) - 6.0 / d).abs() < 1e-6);
        let mut same = vec![4.0; 9];
        normalize_unit_sphere(&mut same);
        assert_eq!(same, vec![0.0; 9]);
        normalize_unit_sphere(&mut []);
    }

    #[test]
    fn fit_points_repeats_or_reduces() {
        let p: Vec<f32> = (0..15).map(|v| v as f32).collect(); // 5 points
        assert_eq!(fit_points(&p, 5, Reduce::First), p);
        assert_eq!(fit_points(&p, 2, Reduce::First), &p[..6]);
        let rep = fit_points(&p, 12, Reduce::First);
        assert_eq!(rep.len(), 36);
        for j in 0..12 {
            assert_eq!(&rep[3 * j..3 * j + 3], &p[3 * (j % 5)..3 * (j % 5) + 3]);
        }
        let a = fit_points(&p, 3, Reduce::Random(7));
        assert_eq!(a, fit_points(&p, 3, Reduce::Random(7)));
        assert_eq!(a.len(), 9);
        // a subset of the points, in file order
        let idx: Vec<usize> = a.chunks(3).map(|q| q[0] as usize / 3).collect();
        assert!(idx.windows(2).all(|w| w[0] < w[1]), "{idx:?}");
        let distinct: std::collections::HashSet<Vec<usize>> =
            (0..20).map(|s| fit_points(&p, 3, Reduce::Random(s)).chunks(3).map(|q| q[0] as usize).collect()).collect();
        assert!(distinct.len() > 3, "seed changes the subset");
    }
}
