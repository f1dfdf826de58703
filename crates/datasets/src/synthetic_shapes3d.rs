//! `synthetic-shapes3d`: a seeded, procedurally generated labelled point-cloud data set.
//!
//! Ten classes of surfaces: sphere, cube, cylinder (with caps), cone (with base), torus, flat
//! disc, square pyramid, two separate spheres, a cube with a sphere on top, and a cross of
//! three orthogonal rods. Shape parameters (radii, heights, aspect ratios, gaps) are drawn per
//! sample. Points are sampled uniformly by area over the surface, then each sample gets an
//! anisotropic scale jitter (each axis ×U(0.75, 1.25)), a tilt of up to ±0.2 rad about the x
//! axis followed by a uniform rotation about the z (up) axis — as ModelNet-style shapes are
//! upright — Gaussian noise with σ ~ U(0.005, 0.025) per coordinate, and finally centring and
//! scaling to the unit sphere.
//!
//! Each sample is generated from its own seed derived from (seed, split, index); the train and
//! test splits use different derived seeds. Labels are balanced and in a seeded random order.

use crate::error::DatasetError;
use crate::pointcloud::{PointCloudSet, normalize_unit_sphere};
use crate::rng::{Rng, derive_seed};
use crate::{PointOptions, Split};

/// Dataset name.
pub const NAME: &str = "synthetic-shapes3d";

/// Class names, index = label.
pub const CLASS_NAMES: [&str; 10] =
    ["sphere", "cube", "cylinder", "cone", "torus", "disc", "pyramid", "two-spheres", "cube-and-sphere", "axis-cross"];

/// Training-set size used when [`PointOptions::train_size`] is 0.
pub const DEFAULT_TRAIN_SIZE: usize = 4000;
/// Test-set size used when [`PointOptions::test_size`] is 0.
pub const DEFAULT_TEST_SIZE: usize = 1000;
/// Largest accepted number of points in one split (samples × points per sample).
pub const MAX_SPLIT_POINTS: usize = 1 << 28;

use std::f32::consts::{PI, TAU};

/// One surface piece; the sample is a union of pieces, each picked with probability ∝ area.
#[derive(Clone, Copy, Debug)]
enum Part {
    /// Sphere of radius `r` around `c`.
    Sphere { c: [f32; 3], r: f32 },
    /// Parallelogram `c + s·u + t·v`, `s, t ∈ [-1, 1]`.
    Rect { c: [f32; 3], u: [f32; 3], v: [f32; 3] },
    /// Triangle.
    Tri { a: [f32; 3], b: [f32; 3], c: [f32; 3] },
    /// Open cylinder of radius `r` and half-length `h` around `c`, along axis `axis`.
    Tube { c: [f32; 3], r: f32, h: f32, axis: usize },
    /// Disc of radius `r` in the plane `z = z`, centred on the z axis.
    Disc { z: f32, r: f32 },
    /// Open cone: apex at `(0, 0, apex)`, base circle of radius `r` at `z = apex - height`.
    Cone { apex: f32, height: f32, r: f32 },
    /// Torus in the xy plane: major radius `big`, minor radius `small`.
    Torus { big: f32, small: f32 },
}

fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

fn norm(a: [f32; 3]) -> f32 {
    (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt()
}

impl Part {
    fn area(&self) -> f32 {
        match *self {
            Part::Sphere { r, .. } => 4.0 * PI * r * r,
            Part::Rect { u, v, .. } => 4.0 * norm(cross(u, v)),
            Part::Tri { a, b, c } => 0.5 * norm(cross(sub(b, a), sub(c, a))),
            Part::Tube { r, h, .. } => TAU * r * 2.0 * h,
            Part::Disc { r, .. } => PI * r * r,
            Part::Cone { height, r, .. } => PI * r * (r * r + height * height).sqrt(),
            Part::Torus { big, small } => 4.0 * PI * PI * big * small,
        }
    }

    /// A uniformly distributed point of the surface.
    fn sample(&self, rng: &mut Rng) -> [f32; 3] {
        match *self {
            Part::Sphere { c, r } => {
                let z = rng.range(-1.0, 1.0);
                let (s, co) = (TAU * rng.uniform()).sin_cos();
                let q = (1.0 - z * z).max(0.0).sqrt();
                [c[0] + r * q * co, c[1] + r * q * s, c[2] + r * z]
            }
            Part::Rect { c, u, v } => {
                let s = rng.range(-1.0, 1.0);
                let t = rng.range(-1.0, 1.0);
                [c[0] + s * u[0] + t * v[0], c[1] + s * u[1] + t * v[1], c[2] + s * u[2] + t * v[2]]
            }
            Part::Tri { a, b, c } => {
                let r1 = rng.uniform().sqrt();
                let r2 = rng.uniform();
                let (wa, wb, wc) = (1.0 - r1, r1 * (1.0 - r2), r1 * r2);
                [0, 1, 2].map(|k| wa * a[k] + wb * b[k] + wc * c[k])
            }
            Part::Tube { c, r, h, axis } => {
                let (s, co) = (TAU * rng.uniform()).sin_cos();
                let t = rng.range(-h, h);
                let mut p = [r * co, r * s, t];
                p.rotate_right((axis + 1) % 3); // axis 2: [x, y, t]; axis 0: [t, x, y]; axis 1: [y, t, x]
                [c[0] + p[0], c[1] + p[1], c[2] + p[2]]
            }
            Part::Disc { z, r } => {
                let rr = r * rng.uniform().sqrt();
                let (s, co) = (TAU * rng.uniform()).sin_cos();
                [rr * co, rr * s, z]
            }
            Part::Cone { apex, height, r } => {
                let f = rng.uniform().sqrt(); // fraction of the way from apex to base
                let (s, co) = (TAU * rng.uniform()).sin_cos();
                [r * f * co, r * f * s, apex - height * f]
            }
            Part::Torus { big, small } => loop {
                // area element ∝ (big + small·cos v): rejection on v
                let (sv, cv) = (TAU * rng.uniform()).sin_cos();
                if rng.uniform() * (big + small) <= big + small * cv {
                    let (su, cu) = (TAU * rng.uniform()).sin_cos();
                    let ring = big + small * cv;
                    break [ring * cu, ring * su, small * sv];
                }
            },
        }
    }
}

/// The six faces of an axis-aligned box with half extents `h` around `c`.
fn box_faces(c: [f32; 3], h: [f32; 3], out: &mut Vec<Part>) {
    for axis in 0..3 {
        let (a, b) = ((axis + 1) % 3, (axis + 2) % 3);
        let mut u = [0.0; 3];
        u[a] = h[a];
        let mut v = [0.0; 3];
        v[b] = h[b];
        for sign in [-1.0, 1.0] {
            let mut cc = c;
            cc[axis] += sign * h[axis];
            out.push(Part::Rect { c: cc, u, v });
        }
    }
}

/// The surface pieces of one random instance of `class`.
fn parts(class: usize, rng: &mut Rng) -> Vec<Part> {
    let mut p = Vec::with_capacity(8);
    match class {
        0 => p.push(Part::Sphere { c: [0.0; 3], r: 1.0 }),
        1 => box_faces([0.0; 3], [0.8; 3], &mut p),
        2 => {
            let r = rng.range(0.45, 0.75);
            let h = rng.range(0.6, 1.0);
            p.push(Part::Tube { c: [0.0; 3], r, h, axis: 2 });
            p.push(Part::Disc { z: h, r });
            p.push(Part::Disc { z: -h, r });
        }
        3 => {
            let r = rng.range(0.6, 0.9);
            let height = rng.range(1.2, 1.8);
            p.push(Part::Cone { apex: height / 2.0, height, r });
            p.push(Part::Disc { z: -height / 2.0, r });
        }
        4 => p.push(Part::Torus { big: rng.range(0.65, 0.85), small: rng.range(0.18, 0.32) }),
        5 => p.push(Part::Disc { z: 0.0, r: 1.0 }),
        6 => {
            let a = rng.range(0.7, 0.9);
            let height = rng.range(1.1, 1.6);
            let z0 = -height / 3.0;
            p.push(Part::Rect { c: [0.0, 0.0, z0], u: [a, 0.0, 0.0], v: [0.0, a, 0.0] });
            let top = [0.0, 0.0, z0 + height];
            let corners = [[a, a, z0], [-a, a, z0], [-a, -a, z0], [a, -a, z0]];
            for k in 0..4 {
                p.push(Part::Tri { a: corners[k], b: corners[(k + 1) % 4], c: top });
            }
        }
        7 => {
            let r1 = rng.range(0.35, 0.55);
            let r2 = rng.range(0.35, 0.55);
            let gap = rng.range(0.1, 0.5);
            let d = r1 + r2 + gap;
            p.push(Part::Sphere { c: [-d / 2.0, 0.0, 0.0], r: r1 });
            p.push(Part::Sphere { c: [d / 2.0, 0.0, 0.0], r: r2 });
        }
        8 => {
            let a = rng.range(0.4, 0.55);
            let r = rng.range(0.3, 0.45);
            let gap = rng.range(0.0, 0.15);
            box_faces([0.0; 3], [a; 3], &mut p);
            p.push(Part::Sphere { c: [0.0, 0.0, a + r + gap], r });
        }
        _ => {
            let r = rng.range(0.08, 0.14);
            for axis in 0..3 {
                p.push(Part::Tube { c: [0.0; 3], r, h: rng.range(0.8, 1.0), axis });
            }
        }
    }
    p
}

/// Two independent standard normal values (Box–Muller, both branches).
fn normal_pair(rng: &mut Rng) -> (f32, f32) {
    let u1 = 1.0 - rng.uniform(); // (0, 1]
    let r = (-2.0 * u1.ln()).sqrt();
    let (s, c) = (TAU * rng.uniform()).sin_cos();
    (r * c, r * s)
}

/// Generates one sample of `class` into `out` (point-major xyz, `out.len() / 3` points).
fn render(class: usize, rng: &mut Rng, out: &mut [f32]) {
    render_pieces(class, rng, out, &mut []);
}

/// [`render`], also writing into `pieces` (when it holds one entry per point) the index of the
/// surface piece each point was drawn from, in the order the class's pieces are built
/// (see `synthetic-parts3d`). The random stream is the same with or without `pieces`.
pub(crate) fn render_pieces(class: usize, rng: &mut Rng, out: &mut [f32], pieces: &mut [u8]) {
    let parts = parts(class, rng);
    let mut cum = Vec::with_capacity(parts.len());
    let mut total = 0f32;
    for part in &parts {
        total += part.area();
        cum.push(total);
    }
    let scale = [rng.range(0.75, 1.25), rng.range(0.75, 1.25), rng.range(0.75, 1.25)];
    let (st, ct) = rng.range(-0.2, 0.2).sin_cos();
    let (sz, cz) = (TAU * rng.uniform()).sin_cos();
    let sigma = rng.range(0.005, 0.025);
    let record = pieces.len() == out.len() / 3;
    for (j, p) in out.chunks_exact_mut(3).enumerate() {
        let x = rng.uniform() * total;
        let k = cum.iter().position(|&c| x < c).unwrap_or(parts.len() - 1);
        if record {
            pieces[j] = k as u8;
        }
        let q = parts[k].sample(rng);
        let q = [q[0] * scale[0], q[1] * scale[1], q[2] * scale[2]];
        // tilt about x, then rotate about z
        let (y, z) = (ct * q[1] - st * q[2], st * q[1] + ct * q[2]);
        let (x, y) = (cz * q[0] - sz * y, sz * q[0] + cz * y);
        p.copy_from_slice(&[x, y, z]);
    }
    for v in out.chunks_mut(2) {
        let (n1, n2) = normal_pair(rng);
        v[0] += sigma * n1;
        if let Some(w) = v.get_mut(1) {
            *w += sigma * n2;
        }
    }
    normalize_unit_sphere(out);
}

/// Checks that a generated split of `n` samples of `np` points (of data set `name`) is
/// neither pointless nor larger than [`MAX_SPLIT_POINTS`].
pub(crate) fn check_split_size(name: &str, n: usize, np: usize) -> Result<(), DatasetError> {
    if np == 0 || n.checked_mul(np).is_none_or(|t| t > MAX_SPLIT_POINTS) {
        return Err(DatasetError::InvalidOptions {
            dataset: name.to_string(),
            reason: format!(
                "{n} samples of {np} points: num_points must be at least 1 and the split at most {MAX_SPLIT_POINTS} points"
            ),
        });
    }
    Ok(())
}

/// Seed of a split's sample stream.
fn split_seed(seed: u64, split: Split) -> u64 {
    match split {
        Split::Train => derive_seed(seed, 0x3344_7472_6169_6e01),
        Split::Test => derive_seed(seed, 0x3344_7465_7374_0002),
    }
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

/// Generates `split` of the data set. Deterministic in (options, split).
///
/// `train_size`/`test_size` of 0 mean [`DEFAULT_TRAIN_SIZE`]/[`DEFAULT_TEST_SIZE`].
pub fn generate(opts: &PointOptions, split: Split) -> Result<PointCloudSet, DatasetError> {
    let n = split_size(opts, split);
    let np = opts.num_points;
    check_split_size(NAME, n, np)?;
    let seed = split_seed(opts.seed, split);
    let classes = CLASS_NAMES.len();
    let mut labels: Vec<u16> = (0..n).map(|i| (i % classes) as u16).collect();
    Rng::new(seed).shuffle(&mut labels);
    let per = 3 * np;
    let mut points = vec![0f32; n * per];
    for (i, (out, &label)) in points.chunks_exact_mut(per).zip(&labels).enumerate() {
        let mut rng = Rng::new(derive_seed(seed, i as u64 + 1));
        render(usize::from(label), &mut rng, out);
    }
    Ok(PointCloudSet {
        name: NAME.to_string(),
        points,
        labels,
        num_points: np,
        num_classes: classes,
        class_names: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pointcloud::centroid_and_radius;

    fn opts(seed: u64) -> PointOptions {
        PointOptions { num_points: 256, train_size: 100, test_size: 50, seed, ..PointOptions::default() }
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let a = generate(&opts(0), Split::Train).unwrap();
        let b = generate(&opts(0), Split::Train).unwrap();
        assert_eq!(a.points, b.points);
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.fingerprint(), b.fingerprint());
        let c = generate(&opts(1), Split::Train).unwrap();
        assert_ne!(a.points, c.points);
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_eq!((a.len(), a.num_points, a.points.len()), (100, 256, 100 * 256 * 3));
        assert_eq!(a.class_names.len(), 10);
        assert_eq!(a.num_classes, 10);
    }

    #[test]
    fn balanced_distinct_splits_and_default_sizes() {
        let train = generate(&opts(3), Split::Train).unwrap();
        let test = generate(&opts(3), Split::Test).unwrap();
        assert_eq!(train.class_counts(), vec![10; 10]);
        assert_eq!(test.class_counts(), vec![5; 10]);
        assert!((0..test.len()).all(|i| (0..train.len()).all(|j| train.sample(j) != test.sample(i))));
        let o = PointOptions { num_points: 1, train_size: 0, test_size: 0, ..opts(3) };
        assert_eq!(generate(&o, Split::Train).unwrap().len(), DEFAULT_TRAIN_SIZE);
        assert_eq!(generate(&o, Split::Test).unwrap().len(), DEFAULT_TEST_SIZE);
    }

    #[test]
    fn every_sample_is_on_the_unit_sphere() {
        let set = generate(&opts(5), Split::Test).unwrap();
        for i in 0..set.len() {
            let s = set.sample(i);
            assert!(s.iter().all(|v| v.is_finite()));
            let (c, r) = centroid_and_radius(s);
            assert!(c.iter().all(|v| v.abs() < 1e-5), "sample {i}: centroid {c:?}");
            assert!((r - 1.0).abs() < 1e-5, "sample {i}: radius {r}");
        }
    }

    /// Sorted eigenvalues of a symmetric 3×3 matrix (Jacobi rotations).
    fn eigenvalues(mut a: [[f64; 3]; 3]) -> [f64; 3] {
        for _ in 0..50 {
            for (p, q) in [(0, 1), (0, 2), (1, 2)] {
                if a[p][q].abs() < 1e-15 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                let mut b = a;
                for k in 0..3 {
                    b[k][p] = c * a[k][p] - s * a[k][q];
                    b[k][q] = s * a[k][p] + c * a[k][q];
                }
                let mut d = b;
                for k in 0..3 {
                    d[p][k] = c * b[p][k] - s * b[q][k];
                    d[q][k] = s * b[p][k] + c * b[q][k];
                }
                a = d;
            }
        }
        let mut e = [a[0][0], a[1][1], a[2][2]];
        e.sort_by(|x, y| x.partial_cmp(y).unwrap());
        e
    }

    /// Shape descriptors that separate the classes: covariance eigenvalues (flatness,
    /// elongation) and the spread of point norms (hollow vs solid-looking).
    fn descriptor(s: &[f32]) -> [f64; 4] {
        let n = (s.len() / 3) as f64;
        let mut cov = [[0f64; 3]; 3];
        let mut norms = Vec::new();
        for p in s.chunks(3) {
            for a in 0..3 {
                for b in 0..3 {
                    cov[a][b] += f64::from(p[a]) * f64::from(p[b]) / n;
                }
            }
            norms.push(f64::from(norm([p[0], p[1], p[2]])));
        }
        let e = eigenvalues(cov);
        let mean = norms.iter().sum::<f64>() / n;
        let sd = (norms.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
        [e[0] / e[2], e[1] / e[2], mean, sd]
    }

    #[test]
    fn classes_are_geometrically_distinct() {
        let set = generate(&PointOptions { num_points: 512, train_size: 400, ..opts(11) }, Split::Train).unwrap();
        let mut sums = [[0f64; 4]; 10];
        for i in 0..set.len() {
            let d = descriptor(set.sample(i));
            for k in 0..4 {
                sums[usize::from(set.labels[i])][k] += d[k] / 40.0;
            }
        }
        // the disc is flat, the sphere is round, the cross has most points far from the middle
        assert!(sums[5][0] < 0.01, "disc flatness {:?}", sums[5]);
        assert!(sums[0][0] > 0.4, "sphere is not flat {:?}", sums[0]);
        assert!(sums[7][1] < 0.5, "two spheres are elongated {:?}", sums[7]);
        // a nearest-class-mean classifier on these 4 numbers already beats chance clearly,
        // yet is far from perfect (the set is not trivial for such a descriptor)
        let mut correct = 0;
        for i in 0..set.len() {
            let d = descriptor(set.sample(i));
            let best = (0..10)
                .min_by(|&a, &b| {
                    let da: f64 = (0..4).map(|k| (d[k] - sums[a][k]).powi(2)).sum();
                    let db: f64 = (0..4).map(|k| (d[k] - sums[b][k]).powi(2)).sum();
                    da.partial_cmp(&db).unwrap()
                })
                .unwrap();
            if best == usize::from(set.labels[i]) {
                correct += 1;
            }
        }
        let acc = correct as f64 / set.len() as f64;
        assert!(acc > 0.4 && acc < 0.95, "nearest-mean accuracy {acc}");
    }

    #[test]
    fn parts_sample_on_their_surfaces() {
        let mut rng = Rng::new(2);
        type Distance = Box<dyn Fn([f32; 3]) -> f32>;
        let checks: Vec<(Part, Distance)> = vec![
            (Part::Sphere { c: [1.0, 0.0, 0.0], r: 0.5 }, Box::new(|p| norm(sub(p, [1.0, 0.0, 0.0])) - 0.5)),
            (
                Part::Tube { c: [0.0; 3], r: 0.3, h: 1.0, axis: 0 },
                Box::new(|p| (p[1].hypot(p[2]) - 0.3).abs() + (p[0].abs() - 1.0).max(0.0)),
            ),
            (Part::Disc { z: 0.5, r: 0.7 }, Box::new(|p| (p[2] - 0.5).abs() + (p[0].hypot(p[1]) - 0.7).max(0.0))),
            (
                Part::Cone { apex: 1.0, height: 2.0, r: 0.5 },
                Box::new(|p| (p[0].hypot(p[1]) - 0.5 * (1.0 - p[2]) / 2.0).abs()),
            ),
            (Part::Torus { big: 0.8, small: 0.2 }, Box::new(|p| ((p[0].hypot(p[1]) - 0.8).hypot(p[2]) - 0.2).abs())),
        ];
        for (part, dist) in &checks {
            for _ in 0..200 {
                let q = part.sample(&mut rng);
                assert!(dist(q).abs() < 1e-5, "{part:?}: {q:?} off by {}", dist(q));
            }
        }
        let mut faces = Vec::new();
        box_faces([0.0; 3], [1.0, 2.0, 3.0], &mut faces);
        let total: f32 = faces.iter().map(Part::area).sum();
        assert!((total - 8.0 * (2.0 + 3.0 + 6.0)).abs() < 1e-4, "{total}");
    }

    #[test]
    fn invalid_options_are_errors() {
        let o = PointOptions { num_points: 0, ..opts(0) };
        assert!(matches!(generate(&o, Split::Train), Err(DatasetError::InvalidOptions { .. })));
        let o = PointOptions { train_size: usize::MAX / 2, ..opts(0) };
        assert!(matches!(generate(&o, Split::Train), Err(DatasetError::InvalidOptions { .. })));
    }
}
