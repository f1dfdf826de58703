//! `synthetic-parts3d`: `synthetic-shapes3d` clouds with a part label per point, so part
//! segmentation (Wang et al. 2024 Table 6, ShapeNetPart there) runs offline.
//!
//! Six of the ten shape classes are made of pieces with a meaning of their own, and they are
//! the six categories here; each point is labelled with the part of the piece it was drawn
//! from (before the scale jitter, tilt, rotation about the up axis, noise and unit-sphere
//! normalisation, which move points but keep their labels). Categories and their parts, with
//! global part ids as in ShapeNetPart (each category owning a contiguous range):
//!
//! | category          | parts (global ids)                                 |
//! |-------------------|----------------------------------------------------|
//! | `cube`            | 0 top face, 1 side faces, 2 bottom face             |
//! | `cylinder`        | 3 body, 4 top cap, 5 bottom cap                      |
//! | `cone`            | 6 mantle, 7 base                                     |
//! | `pyramid`         | 8 base, 9 faces                                      |
//! | `cube-and-sphere` | 10 cube, 11 sphere                                   |
//! | `axis-cross`      | 12 horizontal rods, 13 vertical rod                  |
//!
//! Top and bottom stay apart because the shapes are upright (a tilt of at most ±0.2 rad);
//! the cube's faces meet at edges and the noise blurs them, so the task is not trivial there.
//! Labels are balanced over the categories, in a seeded random order; every sample has its own
//! seed derived from (seed, split, index), the two splits different streams.

use crate::error::DatasetError;
use crate::part_clouds::PartCloudSet;
use crate::pointcloud::PointCloudSet;
use crate::rng::{Rng, derive_seed};
use crate::synthetic_shapes3d::{check_split_size, render_pieces};
use crate::{PointOptions, Split};

/// Dataset name.
pub const NAME: &str = "synthetic-parts3d";

/// The categories: (name, the `synthetic-shapes3d` class drawn, its parts' names, the part
/// (index into the names) of each of the class's surface pieces in build order).
pub const CATEGORIES: [(&str, usize, &[&str], &[usize]); 6] = [
    // box faces: x−, x+, y−, y+, z− (bottom), z+ (top)
    ("cube", 1, &["top", "side", "bottom"], &[1, 1, 1, 1, 2, 0]),
    // tube, disc at +h, disc at −h
    ("cylinder", 2, &["body", "top cap", "bottom cap"], &[0, 1, 2]),
    // open cone, base disc
    ("cone", 3, &["mantle", "base"], &[0, 1]),
    // base square, four triangles
    ("pyramid", 6, &["base", "faces"], &[0, 1, 1, 1, 1]),
    // six box faces, the sphere on top
    ("cube-and-sphere", 8, &["cube", "sphere"], &[0, 0, 0, 0, 0, 0, 1]),
    // rods along x, y, z
    ("axis-cross", 9, &["horizontal rods", "vertical rod"], &[0, 0, 1]),
];

/// Training-set size used when [`PointOptions::train_size`] is 0.
pub const DEFAULT_TRAIN_SIZE: usize = 2400;
/// Test-set size used when [`PointOptions::test_size`] is 0.
pub const DEFAULT_TEST_SIZE: usize = 600;

/// Global part ids of each category (contiguous, in category order).
pub fn category_parts() -> Vec<std::ops::Range<usize>> {
    let mut start = 0;
    CATEGORIES
        .iter()
        .map(|(_, _, names, _)| {
            start += names.len();
            start - names.len()..start
        })
        .collect()
}

/// `<category>/<part>` for every global part id.
pub fn part_names() -> Vec<String> {
    CATEGORIES.iter().flat_map(|(c, _, names, _)| names.iter().map(move |p| format!("{c}/{p}"))).collect()
}

/// Number of samples of `split` (0 in the options means the default size).
pub fn split_size(opts: &PointOptions, split: Split) -> usize {
    match split {
        Split::Train if opts.train_size == 0 => DEFAULT_TRAIN_SIZE,
        Split::Train => opts.train_size,
        Split::Test if opts.test_size == 0 => DEFAULT_TEST_SIZE,
        Split::Test => opts.test_size,
    }
}

/// Seed of a split's sample stream (distinct from `synthetic-shapes3d`'s).
fn split_seed(seed: u64, split: Split) -> u64 {
    match split {
        Split::Train => derive_seed(seed, 0x5033_7472_6169_6e03),
        Split::Test => derive_seed(seed, 0x5033_7465_7374_0004),
    }
}

/// Generates `split` of the data set. Deterministic in (options, split).
pub fn generate(opts: &PointOptions, split: Split) -> Result<PartCloudSet, DatasetError> {
    let n = split_size(opts, split);
    let np = opts.num_points;
    check_split_size(NAME, n, np)?;
    let seed = split_seed(opts.seed, split);
    let ranges = category_parts();
    let mut labels: Vec<u16> = (0..n).map(|i| (i % CATEGORIES.len()) as u16).collect();
    Rng::new(seed).shuffle(&mut labels);
    let mut points = vec![0f32; n * 3 * np];
    let mut part_labels = vec![0u8; n * np];
    let mut pieces = vec![0u8; np];
    for (i, ((out, parts), &label)) in
        points.chunks_exact_mut(3 * np).zip(part_labels.chunks_exact_mut(np)).zip(&labels).enumerate()
    {
        let (_, class, _, piece_parts) = CATEGORIES[usize::from(label)];
        let mut rng = Rng::new(derive_seed(seed, i as u64 + 1));
        render_pieces(class, &mut rng, out, &mut pieces);
        let first = ranges[usize::from(label)].start;
        for (p, &k) in parts.iter_mut().zip(&pieces) {
            *p = (first + piece_parts[usize::from(k)]) as u8;
        }
    }
    let cloud = PointCloudSet {
        name: NAME.to_string(),
        points,
        labels,
        num_points: np,
        num_classes: CATEGORIES.len(),
        class_names: CATEGORIES.iter().map(|(c, ..)| c.to_string()).collect(),
    };
    let set = PartCloudSet { cloud, part_labels, part_names: part_names(), category_parts: ranges };
    set.validate(NAME)?;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(seed: u64) -> PointOptions {
        PointOptions { num_points: 256, train_size: 60, test_size: 30, seed, ..PointOptions::default() }
    }

    #[test]
    fn deterministic_balanced_and_every_part_present() {
        let a = generate(&opts(0), Split::Train).unwrap();
        let b = generate(&opts(0), Split::Train).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), generate(&opts(1), Split::Train).unwrap().fingerprint());
        assert_ne!(a.fingerprint(), generate(&opts(0), Split::Test).unwrap().fingerprint());
        assert_eq!(a.cloud.class_counts(), vec![10; 6]);
        assert_eq!((a.num_parts(), a.part_labels.len()), (14, 60 * 256));
        assert_eq!(a.part_names[4], "cylinder/top cap");
        assert_eq!(a.category_parts[5], 12..14);
        let mut seen = [0usize; 14];
        for &p in &a.part_labels {
            seen[usize::from(p)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 0), "{seen:?}");
        // The clouds are synthetic-shapes3d's classes: on the unit sphere, centred.
        for i in 0..a.len() {
            let (c, r) = crate::pointcloud::centroid_and_radius(a.cloud.sample(i));
            assert!(c.iter().all(|v| v.abs() < 1e-5) && (r - 1.0).abs() < 1e-5);
        }
    }

    /// Mean height (z) of the points of each part of sample `i`.
    fn mean_heights(set: &PartCloudSet, i: usize) -> Vec<(usize, f64)> {
        let mut sums = vec![(0.0, 0usize); set.num_parts()];
        for (p, &l) in set.cloud.sample(i).chunks(3).zip(set.sample_parts(i)) {
            sums[usize::from(l)].0 += f64::from(p[2]);
            sums[usize::from(l)].1 += 1;
        }
        sums.into_iter().enumerate().filter(|(_, (_, n))| *n > 0).map(|(k, (s, n))| (k, s / n as f64)).collect()
    }

    #[test]
    fn parts_sit_where_their_names_say() {
        let set = generate(&PointOptions { num_points: 512, ..opts(3) }, Split::Test).unwrap();
        for i in 0..set.len() {
            let h = mean_heights(&set, i);
            let z = |part: usize| h.iter().find(|(k, _)| *k == part).map(|(_, z)| *z);
            match set.cloud.labels[i] {
                0 => assert!(z(0).unwrap() > z(1).unwrap() && z(1).unwrap() > z(2).unwrap(), "cube {h:?}"),
                1 => assert!(z(4).unwrap() > z(3).unwrap() && z(3).unwrap() > z(5).unwrap(), "cylinder {h:?}"),
                2 => assert!(z(6).unwrap() > z(7).unwrap(), "cone {h:?}"),
                3 => assert!(z(9).unwrap() > z(8).unwrap(), "pyramid {h:?}"),
                4 => assert!(z(11).unwrap() > z(10).unwrap(), "cube-and-sphere {h:?}"),
                _ => {
                    // the vertical rod spans heights; the horizontal ones sit at mid-height
                    let spread = |part: u8| {
                        let zs: Vec<f32> = set
                            .cloud
                            .sample(i)
                            .chunks(3)
                            .zip(set.sample_parts(i))
                            .filter(|(_, l)| **l == part)
                            .map(|(p, _)| p[2])
                            .collect();
                        zs.iter().fold(0f32, |m, v| m.max(v.abs()))
                    };
                    assert!(spread(13) > 2.0 * spread(12), "axis-cross {h:?}");
                }
            }
        }
    }

    #[test]
    fn invalid_sizes_are_errors() {
        let o = PointOptions { num_points: 0, ..opts(0) };
        assert!(matches!(generate(&o, Split::Train), Err(DatasetError::InvalidOptions { .. })));
    }
}
