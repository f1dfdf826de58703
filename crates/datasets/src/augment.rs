//! Normalisation, training augmentation and batch assembly.

use crate::image::ImageSet;
use crate::rng::Rng;

/// Per-channel normalisation applied to `pixel / 255`: `(pixel / 255 - mean[c]) / std[c]`.
///
/// If a vector is shorter than the number of channels its last value is used for the
/// remaining channels (so a single value broadcasts); an empty `mean` means 0 and an empty
/// `std` means 1. A `std` that is not a positive finite number is treated as 1.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalization {
    /// Per-channel mean, in units of `pixel / 255`.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation, in units of `pixel / 255`.
    pub std: Vec<f32>,
}

impl Normalization {
    /// Normalisation that only scales to `[0, 1]` (mean 0, std 1).
    pub fn unit() -> Normalization {
        Normalization { mean: vec![0.0], std: vec![1.0] }
    }

    /// The `(mean, std)` used for channel `c`, after the fallbacks described on the type.
    pub fn channel(&self, c: usize) -> (f32, f32) {
        let mean = self.mean.get(c).or(self.mean.last()).copied().unwrap_or(0.0);
        let std = self.std.get(c).or(self.std.last()).copied().unwrap_or(1.0);
        let std = if std.is_finite() && std > 0.0 { std } else { 1.0 };
        (mean, std)
    }

    /// Normalised value of one 8-bit pixel of channel `c`.
    pub fn apply(&self, pixel: u8, c: usize) -> f32 {
        let (mean, std) = self.channel(c);
        (f32::from(pixel) / 255.0 - mean) / std
    }

    /// Lookup table: normalised value of every pixel value, for channel `c`.
    fn lut(&self, c: usize) -> [f32; 256] {
        let mut t = [0.0f32; 256];
        for (p, v) in t.iter_mut().enumerate() {
            *v = self.apply(p as u8, c);
        }
        t
    }
}

/// Training augmentation: zero padding then a random crop back to H×W; horizontal flip with p=0.5.
///
/// Padding uses pixel value 0 (black, before normalisation), as torchvision's `RandomCrop`
/// does; the flip is applied after the crop.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    /// Zero padding added on every side before cropping back to the original size.
    pub crop_padding: usize,
    /// Whether to mirror left-right with probability 0.5.
    pub horizontal_flip: bool,
}

/// Builds a float batch: returns (data N*C*H*W f32 normalised, labels as i64).
///
/// With `augment`, each image draws (in this order) a vertical then a horizontal crop offset
/// in `0..=2*crop_padding` (only when `crop_padding > 0`) and a flip decision (only when
/// `horizontal_flip`), so the result is a deterministic function of the generator's state.
///
/// # Panics
/// If an index is out of range for `set`, like slice indexing.
pub fn make_batch(
    set: &ImageSet,
    indices: &[usize],
    norm: &Normalization,
    augment: Option<(&Augment, &mut Rng)>,
) -> (Vec<f32>, Vec<i64>) {
    let [c, h, w] = set.shape;
    let plane = h * w;
    let per = c * plane;
    let luts: Vec<[f32; 256]> = (0..c).map(|ch| norm.lut(ch)).collect();
    let mut data = vec![0.0f32; indices.len() * per];
    let mut labels = Vec::with_capacity(indices.len());
    let mut augment = augment;
    for (b, &idx) in indices.iter().enumerate() {
        let img = set.image(idx);
        labels.push(i64::from(set.labels[idx]));
        let out = &mut data[b * per..(b + 1) * per];
        let (dy, dx, flip) = match augment.as_mut() {
            Some((a, rng)) => {
                let p = a.crop_padding;
                let (oy, ox) = if p > 0 {
                    let oy = rng.below(2 * p + 1);
                    let ox = rng.below(2 * p + 1);
                    (oy, ox)
                } else {
                    (0, 0)
                };
                let flip = a.horizontal_flip && rng.uniform() < 0.5;
                (oy as isize - p as isize, ox as isize - p as isize, flip)
            }
            None => (0, 0, false),
        };
        if dy == 0 && dx == 0 && !flip {
            for (ch, lut) in luts.iter().enumerate() {
                let src = &img[ch * plane..(ch + 1) * plane];
                let dst = &mut out[ch * plane..(ch + 1) * plane];
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = lut[usize::from(s)];
                }
            }
            continue;
        }
        for (ch, lut) in luts.iter().enumerate() {
            let src = &img[ch * plane..(ch + 1) * plane];
            let dst = &mut out[ch * plane..(ch + 1) * plane];
            for y in 0..h {
                let sy = y as isize + dy;
                for x in 0..w {
                    let fx = if flip { w - 1 - x } else { x };
                    let sx = fx as isize + dx;
                    let p = if sy >= 0 && sy < h as isize && sx >= 0 && sx < w as isize {
                        src[sy as usize * w + sx as usize]
                    } else {
                        0
                    };
                    dst[y * w + x] = lut[usize::from(p)];
                }
            }
        }
    }
    (data, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb_set() -> ImageSet {
        // two 3x2x3 images
        let mut pixels = Vec::new();
        for i in 0..2u8 {
            for ch in 0..3u8 {
                for p in 0..6u8 {
                    pixels.push(i * 100 + ch * 20 + p * 3);
                }
            }
        }
        ImageSet {
            name: "t".into(),
            pixels,
            labels: vec![4, 7],
            shape: [3, 2, 3],
            num_classes: 10,
            class_names: (0..10).map(|i| i.to_string()).collect(),
        }
    }

    #[test]
    fn normalisation_values() {
        let set = rgb_set();
        let norm = Normalization { mean: vec![0.4914, 0.4822, 0.4465], std: vec![0.2470, 0.2435, 0.2616] };
        let (data, labels) = make_batch(&set, &[1, 0], &norm, None);
        assert_eq!(labels, vec![7, 4]);
        assert_eq!(data.len(), 2 * 18);
        for (b, &i) in [1usize, 0].iter().enumerate() {
            for ch in 0..3 {
                for p in 0..6 {
                    let px = set.image(i)[ch * 6 + p];
                    let expect = (f32::from(px) / 255.0 - norm.mean[ch]) / norm.std[ch];
                    let got = data[b * 18 + ch * 6 + p];
                    assert!((got - expect).abs() < 1e-5, "{got} vs {expect}");
                }
            }
        }
        // a concrete value: pixel 100+40+3*2=146 of channel 2, image 1
        let v = data[2 * 6 + 2];
        assert!((v - (146.0 / 255.0 - 0.4465) / 0.2616).abs() < 1e-5);

        let half = Normalization { mean: vec![0.5], std: vec![0.5] };
        assert!((half.apply(255, 2) - 1.0).abs() < 1e-6, "broadcast");
        assert!((half.apply(0, 0) + 1.0).abs() < 1e-6);
        let weird = Normalization { mean: vec![], std: vec![0.0] };
        assert_eq!(weird.apply(255, 0), 1.0);
    }

    #[test]
    fn identity_augment_and_flip() {
        let set = rgb_set();
        let norm = Normalization::unit();
        let (plain, _) = make_batch(&set, &[0, 1], &norm, None);
        let id = Augment { crop_padding: 0, horizontal_flip: false };
        let mut rng = Rng::new(5);
        let (aug, _) = make_batch(&set, &[0, 1], &norm, Some((&id, &mut rng)));
        assert_eq!(plain, aug);

        let flip = Augment { crop_padding: 0, horizontal_flip: true };
        let mut rng = Rng::new(5);
        let mut seen_flip = false;
        let mut seen_plain = false;
        for _ in 0..64 {
            let (out, _) = make_batch(&set, &[0], &norm, Some((&flip, &mut rng)));
            if out == plain[..18] {
                seen_plain = true;
                continue;
            }
            seen_flip = true;
            for ch in 0..3 {
                for y in 0..2 {
                    for x in 0..3 {
                        assert_eq!(out[ch * 6 + y * 3 + x], plain[ch * 6 + y * 3 + (2 - x)]);
                    }
                }
            }
        }
        assert!(seen_flip && seen_plain);
    }

    #[test]
    fn crop_shifts_and_pads_with_zero_pixels() {
        let set = rgb_set();
        let norm = Normalization { mean: vec![0.5], std: vec![0.25] };
        let (plain, _) = make_batch(&set, &[1], &norm, None);
        let pad_value = norm.apply(0, 0);
        let crop = Augment { crop_padding: 1, horizontal_flip: false };
        let mut rng = Rng::new(11);
        let mut shifted = 0;
        for _ in 0..50 {
            // replay the draws to know the offsets
            let mut probe = rng.clone();
            let oy = probe.below(3) as isize - 1;
            let ox = probe.below(3) as isize - 1;
            let (out, _) = make_batch(&set, &[1], &norm, Some((&crop, &mut rng)));
            if oy != 0 || ox != 0 {
                shifted += 1;
            }
            for ch in 0..3 {
                for y in 0..2isize {
                    for x in 0..3isize {
                        let (sy, sx) = (y + oy, x + ox);
                        let expect = if (0..2).contains(&sy) && (0..3).contains(&sx) {
                            plain[ch * 6 + (sy * 3 + sx) as usize]
                        } else {
                            pad_value
                        };
                        assert_eq!(out[ch * 6 + (y * 3 + x) as usize], expect);
                    }
                }
            }
        }
        assert!(shifted > 20);
    }
}
