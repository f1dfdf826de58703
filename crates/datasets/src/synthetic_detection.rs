//! `synthetic-detection`: a seeded, procedurally generated data set for object detection and
//! semantic segmentation (dense prediction), in the style of [`crate::synthetic_shapes2d`].
//!
//! # Definition
//!
//! Every sample is an RGB image of `S`×`S` pixels (`S` = [`SyntheticDetectionOptions::image_size`])
//! holding `n` objects, each a flat-coloured shape whose class is its shape. The shapes are
//! defined in a local frame centred on the object, with half-extent `r` (the object covers the
//! square `[−r, r]²`); a pixel belongs to the object when its centre lies inside the shape:
//!
//! | class | name       | inside when                                               |
//! |-------|------------|-----------------------------------------------------------|
//! | 0     | `square`   | `max(|x|, |y|) ≤ r`                                      |
//! | 1     | `disc`     | `x² + y² ≤ r²`                                            |
//! | 2     | `triangle` | `|x| ≤ (y + r) / 2`, `y ≤ r` (apex up, base at the bottom) |
//! | 3     | `plus`     | `max(|x|, |y|) ≤ r` and `min(|x|, |y|) ≤ r/3`            |
//! | 4     | `ring`     | `(0.55 r)² ≤ x² + y² ≤ r²`                                |
//! | 5     | `diamond`  | `|x| + |y| ≤ r`                                           |
//! | 6     | `frame`    | `0.55 r ≤ max(|x|, |y|) ≤ r` (hollow square)              |
//! | 7     | `x-cross`  | `max(|x|, |y|) ≤ r` and `||x| − |y|| ≤ 0.45 r`            |
//!
//! Only the first [`SyntheticDetectionOptions::classes`] shapes are used. Shapes are axis
//! aligned (no rotation), so a square and a diamond stay distinct.
//!
//! # Sampling
//!
//! Per sample, in this order, from the sample's own generator (seeded by (seed, split, index)):
//!
//! 1. background: base colour `b ~ U[0.1, 0.9]³`; texture: the sum of two plane waves
//!    `a_k · sin(2π (x cos θ_k + y sin θ_k) / λ_k + φ_k)` with `a_k ~ U[0.03, 0.10]`,
//!    `θ_k, φ_k ~ U[0, 2π)`, `λ_k ~ U[0.25, 1] · S`, added to every channel; pixel noise
//!    standard deviation `σ ~ U[0.02, 0.06]`;
//! 2. object count `n ~ U{1, …, max_objects}`;
//! 3. per object, back to front: class `~ U{0, …, classes − 1}`; size (side of the covering
//!    square) `d = 2r = S · min_scale · (max_scale / min_scale)^u`, `u ~ U[0, 1)` (log-uniform,
//!    so small, medium and large objects are equally likely on a log scale); centre
//!    `(cx, cy) ~ U[r, S − r]²` (the shape lies inside the image); colour `c ~ U[0, 1]³`,
//!    redrawn (at most 16 draws) until its mean absolute channel difference to `b` is at
//!    least 0.3, else the colour opposite to `b` (`1` where `b < 0.5`, `0` elsewhere);
//! 4. pixel values, channel by channel, row by row: the colour of the topmost object covering
//!    the pixel (or the textured background) plus `σ · N(0, 1)` noise, clamped to `[0, 1]` and
//!    stored as `round(255 · v)`.
//!
//! Objects are drawn in order, so later objects occlude earlier ones; objects may overlap
//! freely. The mask and the boxes describe what is *visible*.
//!
//! # Labels
//!
//! * `mask[y * S + x]` (row-major, `S · S` values): `0` for background, `1 + class` for a pixel
//!   of a visible object of that class. [`SyntheticDetectionSet::num_labels`] (= `classes + 1`)
//!   is the class count to give [`crate::detection_metrics::ConfusionMatrix::new`] (no ignore
//!   index).
//! * `instances[y * S + x]`: `0` for background, `1 + i` for a visible pixel of `objects[i]`
//!   (instance masks, e.g. for COCO-style mask areas).
//! * objects ([`ShapeObject`]): the tight box of the object's visible pixels in the COCO
//!   (Lin et al. 2014) `[x, y, w, h]` convention of [`crate::detection_metrics`], where pixel `(x, y)` covers
//!   `[x, x + 1] × [y, y + 1]`: visible columns `x0..=x1` and rows `y0..=y1` give
//!   `[x0, y0, x1 − x0 + 1, y1 − y0 + 1]`; and the visible pixel count as the area. An object
//!   with no visible pixel (fully occluded) is dropped; the topmost object is always visible,
//!   so every sample has at least one object.
//! * [`ShapeObject::ground_truth`]: `category = 1 + class`, the same number as in the mask
//!   (COCO's 1-based category ids, 0 left to the background as in torchvision's detection
//!   models), `iscrowd = false`, `area` = visible pixel count.
//!
//! Deterministic: the same options give bit-identical samples; the train and test splits use
//! different derived seeds.

use rayon::prelude::*;

use crate::Split;
use crate::detection_metrics::{BoundingBox, GroundTruth};
use crate::error::DatasetError;
use crate::image::Fnv1a;
use crate::rng::{Rng, derive_seed};

/// Dataset name.
pub const NAME: &str = "synthetic-detection";

/// Shape names, index = class.
pub const SHAPE_NAMES: [&str; 8] = ["square", "disc", "triangle", "plus", "ring", "diamond", "frame", "x-cross"];

/// Smallest accepted `image_size`.
pub const MIN_IMAGE_SIZE: usize = 16;
/// Largest accepted `image_size`.
pub const MAX_IMAGE_SIZE: usize = 1024;
/// Largest accepted `max_objects`.
pub const MAX_OBJECTS: usize = 64;
/// Smallest accepted object size in pixels: `min_scale · image_size` must reach it.
pub const MIN_OBJECT_SIZE: f32 = 6.0;
/// Largest accepted number of pixels in one split (`train_size` or `test_size` times
/// `image_size²`); each pixel takes 11 bytes (3 colour bytes, 4-byte class and instance
/// labels), so a split holds at most about 3 GB.
pub const MAX_SPLIT_PIXELS: usize = 1 << 28;

/// Smallest mean absolute channel difference between an object's colour and the background.
const MIN_CONTRAST: f32 = 0.3;
/// Colour draws before falling back to the colour opposite to the background.
const COLOUR_TRIES: usize = 16;

/// Options of the `synthetic-detection` set. Missing fields take their defaults when
/// deserialised: `image_size` 64, `classes` 5, `max_objects` 4, `min_scale` 0.15, `max_scale`
/// 0.5, `train_size` 1000, `test_size` 200, `seed` 0.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticDetectionOptions {
    /// Side length of the square images, in pixels ([`MIN_IMAGE_SIZE`]..=[`MAX_IMAGE_SIZE`]).
    pub image_size: usize,
    /// Number of shape classes, the first ones of [`SHAPE_NAMES`] (1..=8).
    pub classes: usize,
    /// Largest number of objects drawn in one image (1..=[`MAX_OBJECTS`]).
    pub max_objects: usize,
    /// Smallest object size (side of its covering square) as a fraction of `image_size`.
    pub min_scale: f32,
    /// Largest object size as a fraction of `image_size` (`min_scale ≤ max_scale ≤ 1`).
    pub max_scale: f32,
    /// Number of training images.
    pub train_size: usize,
    /// Number of test images.
    pub test_size: usize,
    /// Base seed; train and test are generated from different seeds derived from it.
    pub seed: u64,
}

impl Default for SyntheticDetectionOptions {
    fn default() -> Self {
        SyntheticDetectionOptions {
            image_size: 64,
            classes: 5,
            max_objects: 4,
            min_scale: 0.15,
            max_scale: 0.5,
            train_size: 1000,
            test_size: 200,
            seed: 0,
        }
    }
}

impl SyntheticDetectionOptions {
    /// Checks every option; the error names the offending key.
    pub fn validate(&self) -> Result<(), DatasetError> {
        let size = self.image_size;
        if !(MIN_IMAGE_SIZE..=MAX_IMAGE_SIZE).contains(&size) {
            return Err(invalid(format!("image_size {size} is outside {MIN_IMAGE_SIZE}..={MAX_IMAGE_SIZE}")));
        }
        if !(1..=SHAPE_NAMES.len()).contains(&self.classes) {
            return Err(invalid(format!(
                "classes {} is outside 1..={} (the shapes are: {})",
                self.classes,
                SHAPE_NAMES.len(),
                SHAPE_NAMES.join(", ")
            )));
        }
        if !(1..=MAX_OBJECTS).contains(&self.max_objects) {
            return Err(invalid(format!("max_objects {} is outside 1..={MAX_OBJECTS}", self.max_objects)));
        }
        for (key, v) in [("min_scale", self.min_scale), ("max_scale", self.max_scale)] {
            if !(v.is_finite() && v > 0.0 && v <= 1.0) {
                return Err(invalid(format!("{key} {v} is outside (0, 1] (a fraction of image_size)")));
            }
        }
        if self.min_scale > self.max_scale {
            return Err(invalid(format!("min_scale {} is larger than max_scale {}", self.min_scale, self.max_scale)));
        }
        if self.min_scale * (size as f32) < MIN_OBJECT_SIZE {
            return Err(invalid(format!(
                "min_scale {} gives objects of {:.2} pixels at image_size {size}; at least {MIN_OBJECT_SIZE} are needed",
                self.min_scale,
                self.min_scale * size as f32
            )));
        }
        for (key, n) in [("train_size", self.train_size), ("test_size", self.test_size)] {
            if n.checked_mul(size * size).is_none_or(|t| t > MAX_SPLIT_PIXELS) {
                return Err(invalid(format!(
                    "{key} {n}: {n} images of {size}x{size} exceed the limit of {MAX_SPLIT_PIXELS} pixels per split"
                )));
            }
        }
        Ok(())
    }
}

fn invalid(reason: String) -> DatasetError {
    DatasetError::InvalidOptions { dataset: NAME.to_string(), reason }
}

/// One visible object of a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShapeObject {
    /// Shape class, an index into [`SHAPE_NAMES`] (its mask label is `class + 1`).
    pub class: usize,
    /// Tight box of the visible pixels, COCO `[x, y, w, h]` (integer-valued; see the module docs).
    pub bbox: BoundingBox,
    /// Number of visible pixels.
    pub area: usize,
    /// Size of the drawn shape before occlusion: the side `2r` of its covering square, pixels.
    /// (Real data, [`crate::dense`]: the larger side of the box.)
    pub size: f32,
    /// An object to ignore, neither a miss nor a false positive when scored and not a training
    /// target: a VOC "difficult" object or a COCO crowd region ([`crate::dense`]). Always
    /// `false` for generated objects.
    pub crowd: bool,
}

impl ShapeObject {
    /// The object as a ground-truth record of image `image`: `category = class + 1` (the mask
    /// label), `iscrowd = crowd`, `area` = visible pixel count.
    pub fn ground_truth(&self, image: u64) -> GroundTruth {
        GroundTruth {
            image,
            category: self.class as u32 + 1,
            bbox: self.bbox,
            iscrowd: self.crowd,
            area: self.area as f64,
        }
    }
}

/// One generated image with its dense labels.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectionSample {
    /// `3 · S · S` pixel values, planar RGB (`[3, S, S]`, CHW), `0..=255`.
    pub pixels: Vec<u8>,
    /// `S · S` labels, row-major: `0` background, `1 + class` object.
    pub mask: Vec<u32>,
    /// `S · S` instance labels, row-major: `0` background, `1 + i` a visible pixel of
    /// `objects[i]`.
    pub instances: Vec<u32>,
    /// The visible objects, back to front (drawing order); fully occluded ones are dropped.
    pub objects: Vec<ShapeObject>,
}

/// A generated split of `synthetic-detection`, or a split of real photographs converted to the
/// same form ([`crate::dense`]: `voc`, `coco`).
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticDetectionSet {
    /// Dataset name, `"synthetic-detection"` (or `"voc"`, `"coco"`).
    pub name: String,
    /// Side length `S` of the square images.
    pub image_size: usize,
    /// Number of shape classes (object categories, without the background).
    pub num_classes: usize,
    /// Shape names of the classes, `num_classes` of them.
    pub class_names: Vec<String>,
    /// The samples; sample `i` is image id `i` in [`SyntheticDetectionSet::ground_truth`].
    pub samples: Vec<DetectionSample>,
    /// The mask label of pixels not to score nor train on (VOC's void label 255, COCO crowd
    /// regions); `None` for generated sets, whose every pixel is labelled.
    pub ignore_label: Option<u32>,
}

impl SyntheticDetectionSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Shape of one image, `[3, S, S]`.
    pub fn image_shape(&self) -> [usize; 3] {
        [3, self.image_size, self.image_size]
    }

    /// Number of mask labels including the background: `num_classes + 1`.
    pub fn num_labels(&self) -> usize {
        self.num_classes + 1
    }

    /// Every object of every sample as a ground-truth record, image id = sample index.
    pub fn ground_truth(&self) -> Vec<GroundTruth> {
        self.samples
            .iter()
            .enumerate()
            .flat_map(|(i, s)| s.objects.iter().map(move |o| o.ground_truth(i as u64)))
            .collect()
    }

    /// Short stable fingerprint (hex of a 64-bit FNV-1a of the name, image size, class count,
    /// pixels, masks and objects, and of the ignore label and crowd flags where set).
    pub fn fingerprint(&self) -> String {
        let mut h = Fnv1a::new();
        h.write(self.name.as_bytes());
        h.write(&(self.image_size as u64).to_le_bytes());
        h.write(&(self.num_classes as u64).to_le_bytes());
        h.write(&(self.samples.len() as u64).to_le_bytes());
        for s in &self.samples {
            h.write(&s.pixels);
            for &l in s.mask.iter().chain(&s.instances) {
                h.write(&l.to_le_bytes());
            }
            h.write(&(s.objects.len() as u64).to_le_bytes());
            for o in &s.objects {
                h.write(&(o.class as u64).to_le_bytes());
                for v in [o.bbox.x, o.bbox.y, o.bbox.w, o.bbox.h] {
                    h.write(&v.to_bits().to_le_bytes());
                }
                h.write(&(o.area as u64).to_le_bytes());
                h.write(&o.size.to_bits().to_le_bytes());
                // Only where set, so that generated sets keep their fingerprints.
                if o.crowd {
                    h.write(b"crowd");
                }
            }
        }
        if let Some(l) = self.ignore_label {
            h.write(b"ignore");
            h.write(&l.to_le_bytes());
        }
        format!("{:016x}", h.finish())
    }
}

/// An object as drawn, before occlusion.
struct Drawn {
    class: usize,
    cx: f32,
    cy: f32,
    r: f32,
    colour: [f32; 3],
}

impl Drawn {
    /// Whether the shape-local point (x, y) is inside the shape (see the module docs).
    fn contains(&self, x: f32, y: f32) -> bool {
        let r = self.r;
        let (ax, ay) = (x.abs(), y.abs());
        let cheb = ax.max(ay);
        let rr = x * x + y * y;
        match self.class {
            0 => cheb <= r,
            1 => rr <= r * r,
            2 => y <= r && ax <= 0.5 * (y + r),
            3 => cheb <= r && ax.min(ay) <= r / 3.0,
            4 => rr <= r * r && rr >= (0.55 * r) * (0.55 * r),
            5 => ax + ay <= r,
            6 => cheb <= r && cheb >= 0.55 * r,
            _ => cheb <= r && (ax - ay).abs() <= 0.45 * r,
        }
    }
}

/// The textured background of one sample.
struct Background {
    base: [f32; 3],
    /// (amplitude, kx, ky, phase) of each plane wave, `k` in radians per pixel.
    waves: [(f32, f32, f32, f32); 2],
    noise: f32,
}

impl Background {
    fn random(size: usize, rng: &mut Rng) -> Background {
        let base = [rng.range(0.1, 0.9), rng.range(0.1, 0.9), rng.range(0.1, 0.9)];
        let mut waves = [(0.0, 0.0, 0.0, 0.0); 2];
        for w in &mut waves {
            let amplitude = rng.range(0.03, 0.10);
            let theta = rng.range(0.0, std::f32::consts::TAU);
            let lambda = rng.range(0.25, 1.0) * size as f32;
            let phase = rng.range(0.0, std::f32::consts::TAU);
            let k = std::f32::consts::TAU / lambda;
            *w = (amplitude, k * theta.cos(), k * theta.sin(), phase);
        }
        let noise = rng.range(0.02, 0.06);
        Background { base, waves, noise }
    }

    /// Texture offset at pixel centre (x, y), added to every channel.
    fn texture(&self, x: f32, y: f32) -> f32 {
        self.waves.iter().map(|&(a, kx, ky, phase)| a * (kx * x + ky * y + phase).sin()).sum()
    }
}

fn object_colour(bg: &[f32; 3], rng: &mut Rng) -> [f32; 3] {
    for _ in 0..COLOUR_TRIES {
        let c = [rng.uniform(), rng.uniform(), rng.uniform()];
        let diff = c.iter().zip(bg).map(|(a, b)| (a - b).abs()).sum::<f32>() / 3.0;
        if diff >= MIN_CONTRAST {
            return c;
        }
    }
    bg.map(|b| if b < 0.5 { 1.0 } else { 0.0 })
}

/// Generates one sample from its own generator. `opts` must be valid.
fn render(opts: &SyntheticDetectionOptions, rng: &mut Rng) -> DetectionSample {
    let s = opts.image_size;
    let sf = s as f32;
    let background = Background::random(s, rng);
    let n = 1 + rng.below(opts.max_objects);
    let ratio = opts.max_scale / opts.min_scale;
    let mut drawn = Vec::with_capacity(n);
    for _ in 0..n {
        let class = rng.below(opts.classes);
        let d = (sf * opts.min_scale * ratio.powf(rng.uniform())).min(sf);
        let r = 0.5 * d;
        let cx = rng.range(r, sf - r);
        let cy = rng.range(r, sf - r);
        let colour = object_colour(&background.base, rng);
        drawn.push(Drawn { class, cx, cy, r, colour });
    }
    // owner[p] = 1 + index of the topmost object covering pixel p, 0 for background.
    let mut owner = vec![0usize; s * s];
    for (k, o) in drawn.iter().enumerate() {
        let lo = |c: f32| ((c - o.r - 1.0).floor().max(0.0)) as usize;
        let hi = |c: f32| ((c + o.r + 1.0).ceil() as usize).min(s);
        for y in lo(o.cy)..hi(o.cy) {
            for x in lo(o.cx)..hi(o.cx) {
                if o.contains(x as f32 + 0.5 - o.cx, y as f32 + 0.5 - o.cy) {
                    owner[y * s + x] = k + 1;
                }
            }
        }
    }
    // Visible extent and pixel count per object: (x0, y0, x1, y1, count).
    let mut extent = vec![(usize::MAX, usize::MAX, 0usize, 0usize, 0usize); n];
    for (p, &k) in owner.iter().enumerate() {
        if k > 0 {
            let (x, y) = (p % s, p / s);
            let e = &mut extent[k - 1];
            *e = (e.0.min(x), e.1.min(y), e.2.max(x), e.3.max(y), e.4 + 1);
        }
    }
    // Visible objects get consecutive instance ids 1, 2, … in drawing order.
    let mut instance_of = vec![0u32; n];
    let mut next = 0;
    for (id, e) in instance_of.iter_mut().zip(&extent) {
        if e.4 > 0 {
            next += 1;
            *id = next;
        }
    }
    let instances = owner.iter().map(|&k| if k == 0 { 0 } else { instance_of[k - 1] }).collect();
    let objects = drawn
        .iter()
        .zip(&extent)
        .filter(|(_, e)| e.4 > 0)
        .map(|(o, &(x0, y0, x1, y1, count))| ShapeObject {
            class: o.class,
            bbox: BoundingBox::new(x0 as f64, y0 as f64, (x1 - x0 + 1) as f64, (y1 - y0 + 1) as f64),
            area: count,
            size: 2.0 * o.r,
            crowd: false,
        })
        .collect();
    let mask = owner.iter().map(|&k| if k == 0 { 0 } else { drawn[k - 1].class as u32 + 1 }).collect();
    let mut pixels = vec![0u8; 3 * s * s];
    for (c, plane) in pixels.chunks_exact_mut(s * s).enumerate() {
        for (p, out) in plane.iter_mut().enumerate() {
            let base = match owner[p] {
                0 => {
                    let (x, y) = ((p % s) as f32 + 0.5, (p / s) as f32 + 0.5);
                    background.base[c] + background.texture(x, y)
                }
                k => drawn[k - 1].colour[c],
            };
            let v = base + background.noise * rng.normal();
            *out = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    DetectionSample { pixels, mask, instances, objects }
}

/// Seed of a split's image stream.
fn split_seed(seed: u64, split: Split) -> u64 {
    match split {
        Split::Train => derive_seed(seed, 0x6465_7465_6374_0001),
        Split::Test => derive_seed(seed, 0x6465_7465_6374_0002),
    }
}

/// Generates sample `index` of `split` alone (the same as `generate(opts, split)?.samples[index]`).
pub fn generate_sample(
    opts: &SyntheticDetectionOptions,
    split: Split,
    index: usize,
) -> Result<DetectionSample, DatasetError> {
    opts.validate()?;
    let mut rng = Rng::new(derive_seed(split_seed(opts.seed, split), index as u64 + 1));
    Ok(render(opts, &mut rng))
}

/// Generates `split` of the data set (`train_size` or `test_size` images). Deterministic in
/// (options, split); invalid options give [`DatasetError::InvalidOptions`] naming the key.
pub fn generate(opts: &SyntheticDetectionOptions, split: Split) -> Result<SyntheticDetectionSet, DatasetError> {
    opts.validate()?;
    let n = match split {
        Split::Train => opts.train_size,
        Split::Test => opts.test_size,
    };
    let seed = split_seed(opts.seed, split);
    let samples = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng = Rng::new(derive_seed(seed, i as u64 + 1));
            render(opts, &mut rng)
        })
        .collect();
    Ok(SyntheticDetectionSet {
        name: NAME.to_string(),
        image_size: opts.image_size,
        num_classes: opts.classes,
        class_names: SHAPE_NAMES[..opts.classes].iter().map(|s| s.to_string()).collect(),
        samples,
        ignore_label: None,
    })
}
