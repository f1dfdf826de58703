//! `synthetic-shapes2d`: a seeded, procedurally generated grayscale shape data set.
//!
//! Ten classes of shapes, each drawn with a random position, scale, rotation (±12°, so that
//! e.g. the plus and the X stay apart), stroke width, foreground/background intensity and
//! additive Gaussian noise, rendered with one-pixel anti-aliasing from signed distance
//! functions. Each image is generated from its own seed derived from (seed, split, index),
//! and the train and test splits use different derived seeds.

use crate::Split;
use crate::SyntheticOptions;
use crate::error::DatasetError;
use crate::image::ImageSet;
use crate::rng::{Rng, derive_seed};

/// Dataset name.
pub const NAME: &str = "synthetic-shapes2d";

/// Class names, index = label.
pub const CLASS_NAMES: [&str; 10] = [
    "disk",
    "ring",
    "square",
    "square-outline",
    "triangle",
    "plus",
    "x-cross",
    "two-horizontal-bars",
    "three-vertical-stripes",
    "star",
];

/// Mean of `pixel / 255` over the default options' training set (for normalisation).
pub const MEAN: f32 = 0.2079;
/// Standard deviation of `pixel / 255` over the default options' training set.
pub const STD: f32 = 0.2146;

/// Smallest accepted `image_size`.
pub const MIN_IMAGE_SIZE: usize = 8;
/// Largest accepted `image_size`.
pub const MAX_IMAGE_SIZE: usize = 1024;
/// Largest accepted number of pixels in one split.
pub const MAX_SPLIT_PIXELS: usize = 1 << 32;

const MAX_ROTATION: f32 = 12.0 * std::f32::consts::PI / 180.0;

/// Per-image drawing parameters.
struct Shape {
    class: usize,
    cx: f32,
    cy: f32,
    r: f32,
    w: f32,
    cos: f32,
    sin: f32,
    /// Polygon vertices (triangle, star) in shape-local coordinates.
    verts: Vec<(f32, f32)>,
}

fn sd_box(x: f32, y: f32, bx: f32, by: f32) -> f32 {
    let dx = x.abs() - bx;
    let dy = y.abs() - by;
    let ox = dx.max(0.0);
    let oy = dy.max(0.0);
    (ox * ox + oy * oy).sqrt() + dx.max(dy).min(0.0)
}

/// Signed distance to a simple polygon (negative inside).
fn sd_polygon(x: f32, y: f32, v: &[(f32, f32)]) -> f32 {
    let n = v.len();
    if n == 0 {
        return f32::INFINITY;
    }
    let mut d = (x - v[0].0).powi(2) + (y - v[0].1).powi(2);
    let mut s = 1.0f32;
    let mut j = n - 1;
    for i in 0..n {
        let (ex, ey) = (v[j].0 - v[i].0, v[j].1 - v[i].1);
        let (wx, wy) = (x - v[i].0, y - v[i].1);
        let ee = ex * ex + ey * ey;
        let t = if ee > 0.0 { ((wx * ex + wy * ey) / ee).clamp(0.0, 1.0) } else { 0.0 };
        let (bx, by) = (wx - ex * t, wy - ey * t);
        d = d.min(bx * bx + by * by);
        let c1 = y >= v[i].1;
        let c2 = y < v[j].1;
        let c3 = ex * wy > ey * wx;
        if (c1 && c2 && c3) || (!c1 && !c2 && !c3) {
            s = -s;
        }
        j = i;
    }
    s * d.sqrt()
}

fn regular_star(points: usize, outer: f32, inner: f32) -> Vec<(f32, f32)> {
    let n = points * 2;
    (0..n)
        .map(|k| {
            let a = -std::f32::consts::FRAC_PI_2 + std::f32::consts::PI * k as f32 / points as f32;
            let rad = if k % 2 == 0 { outer } else { inner };
            (rad * a.cos(), rad * a.sin())
        })
        .collect()
}

impl Shape {
    fn random(class: usize, size: usize, rng: &mut Rng) -> Shape {
        let s = size as f32;
        let r = s * rng.range(0.22, 0.36);
        let w = (r * rng.range(0.22, 0.38)).max(1.2);
        let theta = rng.range(-MAX_ROTATION, MAX_ROTATION);
        let ext = 1.15 * r + 0.5 * w + 0.5;
        let pos = |rng: &mut Rng| {
            if 2.0 * ext < s { rng.range(ext, s - ext) } else { s * 0.5 }
        };
        let cx = pos(rng);
        let cy = pos(rng);
        let verts = match class {
            4 => (0..3)
                .map(|k| {
                    let a = -std::f32::consts::FRAC_PI_2 + 2.0 * std::f32::consts::PI * k as f32 / 3.0;
                    (r * a.cos(), r * a.sin())
                })
                .collect(),
            9 => regular_star(5, r, 0.42 * r),
            _ => Vec::new(),
        };
        Shape { class, cx, cy, r, w, cos: theta.cos(), sin: theta.sin(), verts }
    }

    /// Signed distance (pixels) from shape-local point (x, y) to the shape.
    fn sd(&self, x: f32, y: f32) -> f32 {
        let (r, hw) = (self.r, 0.5 * self.w);
        let len = (x * x + y * y).sqrt();
        let plus = |x: f32, y: f32| sd_box(x, y, r, hw).min(sd_box(x, y, hw, r));
        match self.class {
            0 => len - 0.8 * r,
            1 => (len - 0.8 * r).abs() - hw,
            2 => sd_box(x, y, 0.72 * r, 0.72 * r),
            3 => sd_box(x, y, 0.75 * r, 0.75 * r).abs() - hw,
            5 => plus(x, y),
            6 => {
                let k = std::f32::consts::FRAC_1_SQRT_2;
                plus(k * (x + y), k * (y - x))
            }
            7 => {
                let g = 0.5 * r;
                let hh = hw.min(0.5 * g);
                sd_box(x, y - g, 0.85 * r, hh).min(sd_box(x, y + g, 0.85 * r, hh))
            }
            8 => {
                let sp = 0.65 * r;
                let bw = hw.min(0.25 * sp);
                sd_box(x + sp, y, bw, 0.85 * r).min(sd_box(x, y, bw, 0.85 * r)).min(sd_box(x - sp, y, bw, 0.85 * r))
            }
            _ => sd_polygon(x, y, &self.verts),
        }
    }

    /// Coverage in [0, 1] of the pixel whose centre is at image point (px, py).
    fn coverage(&self, px: f32, py: f32) -> f32 {
        let dx = px - self.cx;
        let dy = py - self.cy;
        let reach = 1.25 * self.r + self.w + 1.0;
        if dx * dx + dy * dy > reach * reach {
            return 0.0;
        }
        // rotate the point by -theta into shape-local coordinates
        let x = self.cos * dx + self.sin * dy;
        let y = -self.sin * dx + self.cos * dy;
        (0.5 - self.sd(x, y)).clamp(0.0, 1.0)
    }
}

/// Renders one image of `class` into `out` (`size*size` bytes).
fn render(class: usize, size: usize, rng: &mut Rng, out: &mut [u8]) {
    let shape = Shape::random(class, size, rng);
    let bg = rng.range(0.0, 0.25);
    let fg = (bg + rng.range(0.45, 0.8)).min(1.0);
    let noise = rng.range(0.02, 0.10);
    for y in 0..size {
        for x in 0..size {
            let c = shape.coverage(x as f32 + 0.5, y as f32 + 0.5);
            let v = bg + (fg - bg) * c + noise * rng.normal();
            out[y * size + x] = (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
        }
    }
}

/// Seed of a split's image stream.
fn split_seed(seed: u64, split: Split) -> u64 {
    match split {
        Split::Train => derive_seed(seed, 0x7472_6169_6e00_0001),
        Split::Test => derive_seed(seed, 0x7465_7374_0000_0002),
    }
}

/// Checks the options; returns the number of images of `split`.
fn validate(opts: &SyntheticOptions, split: Split) -> Result<usize, DatasetError> {
    let n = match split {
        Split::Train => opts.train_size,
        Split::Test => opts.test_size,
    };
    let size = opts.image_size;
    if !(MIN_IMAGE_SIZE..=MAX_IMAGE_SIZE).contains(&size) {
        return Err(DatasetError::InvalidOptions {
            dataset: NAME.to_string(),
            reason: format!("image_size {size} is outside {MIN_IMAGE_SIZE}..={MAX_IMAGE_SIZE}"),
        });
    }
    let total = n.checked_mul(size * size).filter(|&t| t <= MAX_SPLIT_PIXELS);
    if total.is_none() {
        return Err(DatasetError::InvalidOptions {
            dataset: NAME.to_string(),
            reason: format!("{n} images of {size}x{size} exceed the limit of {MAX_SPLIT_PIXELS} pixels per split"),
        });
    }
    Ok(n)
}

/// Generates `split` of the data set. Deterministic in (options, split).
///
/// Labels are balanced (class counts differ by at most one) and in a seeded random order.
pub fn generate(opts: &SyntheticOptions, split: Split) -> Result<ImageSet, DatasetError> {
    let n = validate(opts, split)?;
    let size = opts.image_size;
    let seed = split_seed(opts.seed, split);
    let classes = CLASS_NAMES.len();
    let mut labels: Vec<u16> = (0..n).map(|i| (i % classes) as u16).collect();
    Rng::new(seed).shuffle(&mut labels);
    let per = size * size;
    let mut pixels = vec![0u8; n * per];
    for (i, (out, &label)) in pixels.chunks_exact_mut(per).zip(&labels).enumerate() {
        let mut rng = Rng::new(derive_seed(seed, i as u64 + 1));
        render(usize::from(label), size, &mut rng, out);
    }
    Ok(ImageSet {
        name: NAME.to_string(),
        pixels,
        labels,
        shape: [1, size, size],
        num_classes: classes,
        class_names: CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn opts(seed: u64) -> SyntheticOptions {
        SyntheticOptions { train_size: 200, test_size: 100, image_size: 28, seed }
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let a = generate(&opts(0), Split::Train).unwrap();
        let b = generate(&opts(0), Split::Train).unwrap();
        assert_eq!(a.pixels, b.pixels);
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.fingerprint(), b.fingerprint());
        let c = generate(&opts(1), Split::Train).unwrap();
        assert_ne!(a.pixels, c.pixels);
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_eq!(a.shape, [1, 28, 28]);
        assert_eq!(a.len(), 200);
        assert_eq!(a.pixels.len(), 200 * 28 * 28);
    }

    #[test]
    fn balanced_labels_and_disjoint_splits() {
        let train = generate(&opts(3), Split::Train).unwrap();
        let test = generate(&opts(3), Split::Test).unwrap();
        assert_eq!(train.class_counts(), vec![20; 10]);
        assert_eq!(test.class_counts(), vec![10; 10]);
        let odd = generate(&SyntheticOptions { train_size: 23, ..opts(3) }, Split::Train).unwrap();
        let counts = odd.class_counts();
        assert!(counts.iter().all(|&c| c == 2 || c == 3), "{counts:?}");
        let train_imgs: HashSet<&[u8]> = (0..train.len()).map(|i| train.image(i)).collect();
        assert!((0..test.len()).all(|i| !train_imgs.contains(test.image(i))));
        assert_ne!(train.labels[..100], test.labels[..]);
    }

    #[test]
    fn images_have_contrast_and_classes_differ() {
        let set = generate(&opts(5), Split::Train).unwrap();
        // mean image per class, then distance between class means
        let per = 28 * 28;
        let mut means = vec![vec![0f32; per]; 10];
        for i in 0..set.len() {
            let img = set.image(i);
            let (min, max) = img.iter().fold((255u8, 0u8), |(lo, hi), &p| (lo.min(p), hi.max(p)));
            assert!(max - min > 60, "image {i} lacks contrast");
            for (m, &p) in means[usize::from(set.labels[i])].iter_mut().zip(img) {
                *m += f32::from(p) / 20.0;
            }
        }
        for a in 0..10 {
            for b in a + 1..10 {
                let d: f32 = means[a].iter().zip(&means[b]).map(|(x, y)| (x - y).abs()).sum::<f32>() / per as f32;
                assert!(d > 2.0, "classes {a} and {b} look alike ({d})");
            }
        }
    }

    #[test]
    fn normalisation_constants_match_data() {
        let set = generate(&SyntheticOptions { train_size: 1000, ..opts(0) }, Split::Train).unwrap();
        let n = set.pixels.len() as f64;
        let mean = set.pixels.iter().map(|&p| f64::from(p) / 255.0).sum::<f64>() / n;
        let var = set.pixels.iter().map(|&p| (f64::from(p) / 255.0 - mean).powi(2)).sum::<f64>() / n;
        assert!((mean - f64::from(MEAN)).abs() < 0.01, "mean {mean}");
        assert!((var.sqrt() - f64::from(STD)).abs() < 0.01, "std {}", var.sqrt());
    }

    #[test]
    fn invalid_options_are_errors() {
        for size in [0, 3, 5000] {
            let o = SyntheticOptions { image_size: size, ..opts(0) };
            assert!(matches!(generate(&o, Split::Train), Err(DatasetError::InvalidOptions { .. })));
        }
        let o = SyntheticOptions { train_size: usize::MAX / 2, ..opts(0) };
        assert!(matches!(generate(&o, Split::Train), Err(DatasetError::InvalidOptions { .. })));
        let o = SyntheticOptions { test_size: 0, ..opts(0) };
        assert!(generate(&o, Split::Test).unwrap().is_empty());
    }
}
