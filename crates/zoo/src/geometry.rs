//! Point-cloud geometry for PointNet++: farthest point sampling, ball query and the per-batch
//! grouping indices.
//!
//! Sampling and grouping depend on coordinates only. They are analog geometry, not spiking
//! operations: they are computed on the CPU from the input tensor's values, once per distinct
//! sample of a batch (the simulator repeats each sample once per time step in the folded
//! batch, so every repeat shares one computation), and then applied to feature tensors with
//! `select`.

use std::collections::HashMap;

use burn::prelude::*;
use burn::tensor::TensorData;

use crate::{tensor_from, tensor_values};

/// Farthest point sampling: `count` indices into `xyz`, starting at point 0 (deterministic;
/// the reference CUDA kernel also starts at 0). Each further index is the point whose squared
/// distance to the already chosen set is largest (the first such point on ties).
///
/// Panics if `count > xyz.len()`.
pub fn farthest_point_sample(xyz: &[[f32; 3]], count: usize) -> Vec<usize> {
    assert!(count <= xyz.len(), "farthest point sampling: {count} centroids from {} points", xyz.len());
    let mut chosen = Vec::with_capacity(count);
    let mut dist = vec![f32::INFINITY; xyz.len()];
    let mut farthest = 0;
    for _ in 0..count {
        chosen.push(farthest);
        let c = xyz[farthest];
        let mut best = 0;
        for (i, p) in xyz.iter().enumerate() {
            let d = sq_dist(p, &c);
            if d < dist[i] {
                dist[i] = d;
            }
            if dist[i] > dist[best] {
                best = i;
            }
        }
        farthest = best;
    }
    chosen
}

/// Ball query: for every centre, the first `k` indices (in index order) of the points of `xyz`
/// within `radius` (squared distance ≤ radius²) of it, padded to `k` by repeating the first
/// one found (PointNet++ convention). A centre with no point in range (impossible when the
/// centres are themselves points of `xyz`) gets its nearest point. Returns
/// `[centres.len() × k]` indices, centre-major.
pub fn ball_query(xyz: &[[f32; 3]], centres: &[[f32; 3]], radius: f32, k: usize) -> Vec<usize> {
    let r2 = radius * radius;
    let mut out = Vec::with_capacity(centres.len() * k);
    for c in centres {
        let start = out.len();
        for (i, p) in xyz.iter().enumerate() {
            if out.len() - start == k {
                break;
            }
            if sq_dist(p, c) <= r2 {
                out.push(i);
            }
        }
        let first = match out.get(start) {
            Some(&i) => i,
            None => {
                let nearest = (0..xyz.len()).min_by(|&a, &b| sq_dist(&xyz[a], c).total_cmp(&sq_dist(&xyz[b], c)));
                nearest.expect("ball query on an empty point set")
            }
        };
        out.resize(start + k, first);
    }
    out
}

fn sq_dist(a: &[f32; 3], b: &[f32; 3]) -> f32 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

/// Sampling and grouping parameters of one set-abstraction level.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupingConfig {
    /// Centroids chosen by farthest point sampling.
    pub centroids: usize,
    /// Ball-query radius.
    pub radius: f32,
    /// Neighbours per centroid.
    pub neighbours: usize,
}

/// One level's grouping for one sample.
#[derive(Clone, Debug)]
struct LevelGroups {
    /// `[centroids × neighbours]` indices into the previous level's points.
    groups: Vec<usize>,
    /// Neighbour minus centroid coordinates, `[3 × centroids × neighbours]` (channel-major).
    rel_xyz: Vec<f32>,
}

/// All levels' grouping for one sample, plus the last level's centroid coordinates.
#[derive(Clone, Debug)]
struct SampleGeometry {
    levels: Vec<LevelGroups>,
    /// Coordinates of the last level's centroids, `[3 × centroids]` (channel-major).
    last_xyz: Vec<f32>,
}

fn sample_geometry(mut xyz: Vec<[f32; 3]>, levels: &[GroupingConfig]) -> SampleGeometry {
    let mut out = Vec::with_capacity(levels.len());
    for l in levels {
        let cent_idx = farthest_point_sample(&xyz, l.centroids);
        let centres: Vec<[f32; 3]> = cent_idx.iter().map(|&i| xyz[i]).collect();
        let groups = ball_query(&xyz, &centres, l.radius, l.neighbours);
        let (s, k) = (l.centroids, l.neighbours);
        let mut rel_xyz = vec![0.0; 3 * s * k];
        for (j, &g) in groups.iter().enumerate() {
            let c = &centres[j / k];
            for d in 0..3 {
                rel_xyz[d * s * k + j] = xyz[g][d] - c[d];
            }
        }
        out.push(LevelGroups { groups, rel_xyz });
        xyz = centres;
    }
    let last_xyz = (0..3).flat_map(|d| xyz.iter().map(move |p| p[d])).collect();
    SampleGeometry { levels: out, last_xyz }
}

/// The grouping of a whole batch, computed once per distinct sample.
#[derive(Debug)]
pub(crate) struct BatchGeometry {
    /// Row of the batch → index into `samples`.
    rows: Vec<usize>,
    samples: Vec<SampleGeometry>,
    levels: Vec<GroupingConfig>,
    /// Points in the input cloud.
    points: usize,
}

impl BatchGeometry {
    /// Geometry of `x`: `[batch, 3, points, 1]` (xyz as channels). Identical rows (compared
    /// bit for bit) share one computation.
    pub(crate) fn new(x: Tensor<4>, levels: &[GroupingConfig]) -> Self {
        let [n, c, p, w] = x.dims();
        assert!(c == 3 && w == 1, "a point cloud batch is [batch, 3, points, 1]; got {:?}", [n, c, p, w]);
        let values = tensor_values(x);
        let mut distinct: HashMap<Vec<u32>, usize> = HashMap::new();
        let mut samples = Vec::new();
        let mut rows = Vec::with_capacity(n);
        for row in values.chunks(3 * p) {
            let key: Vec<u32> = row.iter().map(|v| v.to_bits()).collect();
            let next = samples.len();
            let id = *distinct.entry(key).or_insert(next);
            if id == next {
                let xyz = (0..p).map(|i| [row[i], row[p + i], row[2 * p + i]]).collect();
                samples.push(sample_geometry(xyz, levels));
            }
            rows.push(id);
        }
        Self { rows, samples, levels: levels.to_vec(), points: p }
    }

    /// Number of distinct samples in the batch.
    #[cfg(test)]
    pub(crate) fn distinct(&self) -> usize {
        self.samples.len()
    }

    /// Groups level `level`'s input: `features` `[batch, C, prev_points, 1]` (`None` at the
    /// first level, where the only per-point input is the coordinates) →
    /// `[batch, 3 + C, centroids, neighbours]`, the relative coordinates first.
    pub(crate) fn group(&self, level: usize, features: Option<Tensor<4>>, device: &Device) -> Tensor<4> {
        let l = self.levels[level];
        let (s, k, n) = (l.centroids, l.neighbours, self.rows.len());
        let prev = if level == 0 { self.points } else { self.levels[level - 1].centroids };
        let rel: Vec<f32> =
            self.rows.iter().flat_map(|&r| self.samples[r].levels[level].rel_xyz.iter().copied()).collect();
        let rel = tensor_from(rel, [n, 3, s, k], device);
        let Some(f) = features else { return rel };
        let [_, c, pp, _] = f.dims();
        assert_eq!(pp, prev, "level {level} expects {prev} input points");
        let idx: Vec<i64> = self
            .rows
            .iter()
            .enumerate()
            .flat_map(|(row, &r)| self.samples[r].levels[level].groups.iter().map(move |&g| (row * prev + g) as i64))
            .collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [n * s * k]), device);
        let grouped = f.reshape([n, c, prev]).swap_dims(1, 2).reshape([n * prev, c]).select(0, idx);
        let grouped = grouped.reshape([n, s, k, c]).permute([0, 3, 1, 2]);
        Tensor::cat(vec![rel, grouped], 1)
    }

    /// The last level's centroid coordinates, `[batch, 3, 1, centroids]` (laid out as one
    /// group of all centroids, for the global set abstraction).
    pub(crate) fn last_xyz(&self, device: &Device) -> Tensor<4> {
        let s = self.levels.last().map_or(self.points, |l| l.centroids);
        let v: Vec<f32> = self.rows.iter().flat_map(|&r| self.samples[r].last_xyz.iter().copied()).collect();
        tensor_from(v, [self.rows.len(), 3, 1, s], device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fps_picks_the_hand_computed_order() {
        // On a line at x = 0, 4, 6, 10, 9: start at 0; farthest from {0} is x=10 (index 3);
        // then x=4 and x=6 are both 4 from the set → the lower index (1); then x=6 (2 from x=4).
        let xyz = [[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [6.0, 0.0, 0.0], [10.0, 0.0, 0.0], [9.0, 0.0, 0.0]];
        assert_eq!(farthest_point_sample(&xyz, 4), vec![0, 3, 1, 2]);
        assert_eq!(farthest_point_sample(&xyz, 1), vec![0]);
        // A unit cube's corners (index bits = x, y, z): the opposite corner 7 comes second;
        // every other corner is adjacent to 0 or 7 (squared distance 1), so the ties pick the
        // lowest indices: 1, then 2.
        let cube: Vec<[f32; 3]> =
            (0..8).map(|i| [(i & 1) as f32, ((i >> 1) & 1) as f32, ((i >> 2) & 1) as f32]).collect();
        assert_eq!(farthest_point_sample(&cube, 4), vec![0, 7, 1, 2]);
    }

    #[test]
    fn ball_query_takes_the_first_k_in_range_and_pads_with_the_first() {
        let xyz = [[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.9, 0.0], [0.0, 0.0, 1.0]];
        // Radius 1 around the origin: 0, 1, 3, 4 (distance exactly 1 counts).
        assert_eq!(ball_query(&xyz, &[[0.0; 3]], 1.0, 3), vec![0, 1, 3]);
        assert_eq!(ball_query(&xyz, &[[0.0; 3]], 1.0, 6), vec![0, 1, 3, 4, 0, 0]);
        // Around x=2: only point 2 → padded with it.
        assert_eq!(ball_query(&xyz, &[[2.0, 0.0, 0.0]], 0.5, 3), vec![2, 2, 2]);
        // Nothing in range: the nearest point.
        assert_eq!(ball_query(&xyz, &[[5.0, 0.0, 0.0]], 0.5, 2), vec![2, 2]);
    }

    #[test]
    fn grouping_gathers_features_and_relative_coordinates() {
        let d = Device::flex();
        // One sample, 4 points on the x axis at 0, 1, 3, 10; features = point index.
        let xs = [0.0f32, 1.0, 3.0, 10.0];
        let mut v = xs.to_vec();
        v.extend([0.0; 8]);
        let x = tensor_from(v, [1, 3, 4, 1], &d);
        let cfg = [GroupingConfig { centroids: 2, radius: 1.5, neighbours: 2 }];
        let g = BatchGeometry::new(x, &cfg);
        // FPS: 0 then 3 (x=10). Groups: around 0 → [0, 1]; around 10 → [3, 3].
        let f = tensor_from(vec![0.0, 1.0, 2.0, 3.0], [1, 1, 4, 1], &d);
        let out = g.group(0, Some(f), &d);
        assert_eq!(out.dims(), [1, 4, 2, 2]);
        let v = tensor_values(out);
        assert_eq!(v[..4], [0.0, 1.0, 0.0, 0.0], "relative x");
        assert_eq!(v[4..12], [0.0; 8], "relative y, z");
        assert_eq!(v[12..], [0.0, 1.0, 3.0, 3.0], "gathered features");
        assert_eq!(tensor_values(g.last_xyz(&d)), vec![0.0, 10.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn repeated_rows_share_one_geometry() {
        let d = Device::flex();
        let x = Tensor::<4>::random([2, 3, 20, 1], burn::tensor::Distribution::Uniform(-1.0, 1.0), &d);
        let cfg = [
            GroupingConfig { centroids: 6, radius: 0.5, neighbours: 4 },
            GroupingConfig { centroids: 3, radius: 1.0, neighbours: 4 },
        ];
        let once = BatchGeometry::new(x.clone(), &cfg);
        assert_eq!(once.distinct(), 2);
        let thrice = BatchGeometry::new(x.repeat_dim(0, 3), &cfg);
        assert_eq!(thrice.distinct(), 2);
        let a = tensor_values(once.group(0, None, &d));
        let b = tensor_values(thrice.group(0, None, &d));
        assert_eq!(b, [a.clone(), a.clone(), a].concat());
    }

    #[test]
    fn ball_query_on_random_points_matches_a_brute_force_scan() {
        let d = Device::flex();
        let v = tensor_values(Tensor::<2>::random([200, 3], burn::tensor::Distribution::Uniform(-1.0, 1.0), &d));
        let xyz: Vec<[f32; 3]> = v.chunks(3).map(|p| [p[0], p[1], p[2]]).collect();
        let centres: Vec<[f32; 3]> = farthest_point_sample(&xyz, 10).iter().map(|&i| xyz[i]).collect();
        let (r, k) = (0.4, 8);
        let groups = ball_query(&xyz, &centres, r, k);
        assert_eq!(groups.len(), 10 * k);
        let mut padded = 0;
        for (c, g) in centres.iter().zip(groups.chunks(k)) {
            let in_range: Vec<usize> = (0..xyz.len()).filter(|&i| sq_dist(&xyz[i], c) <= r * r).collect();
            let n = in_range.len().min(k);
            assert_eq!(g[..n], in_range[..n], "the first k in index order");
            assert!(g[n..].iter().all(|&i| i == in_range[0]), "padding repeats the first found");
            padded += k - n;
        }
        assert!(padded > 0, "some groups are padded at this density");
    }
}
