//! In-memory image sets.

pub use crate::augment::{Augment, Normalization, make_batch};

/// A labelled set of equally-shaped 8-bit images, stored planar (CHW per image).
#[derive(Clone, Debug)]
pub struct ImageSet {
    /// Dataset name, e.g. `"cifar10"`.
    pub name: String,
    /// `N*C*H*W` pixel values, planar (CHW per image), `0..=255`.
    pub pixels: Vec<u8>,
    /// One label per image, each `< num_classes`.
    pub labels: Vec<u16>,
    /// Image shape `[C, H, W]`.
    pub shape: [usize; 3],
    /// Number of classes of the dataset (not only those present in this set).
    pub num_classes: usize,
    /// Human-readable class names, `num_classes` of them.
    pub class_names: Vec<String>,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of values of one image (`C*H*W`).
    pub fn image_len(&self) -> usize {
        self.shape[0] * self.shape[1] * self.shape[2]
    }

    /// Pixels of image `i` (`C*H*W` values, planar).
    ///
    /// # Panics
    /// If `i >= self.len()`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// A new set holding the images at `indices`, in that order (repeats allowed).
    ///
    /// # Panics
    /// If an index is out of range, like slice indexing.
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        let (pixels, labels) = gather_samples(&self.pixels, &self.labels, self.image_len(), indices);
        ImageSet {
            name: self.name.clone(),
            pixels,
            labels,
            shape: self.shape,
            num_classes: self.num_classes,
            class_names: self.class_names.clone(),
        }
    }

    /// Number of images of each class (`num_classes` entries; out-of-range labels are ignored).
    pub fn class_counts(&self) -> Vec<usize> {
        class_counts(&self.labels, self.num_classes)
    }

    /// Short stable fingerprint (hex of a 64-bit FNV-1a of shape, class count, labels and pixels)
    /// used for cache keys. The name is not included: equal data gives equal fingerprints.
    pub fn fingerprint(&self) -> String {
        let mut h = Fnv1a::new();
        for d in self.shape {
            h.write(&(d as u64).to_le_bytes());
        }
        h.write(&(self.num_classes as u64).to_le_bytes());
        h.write(&(self.labels.len() as u64).to_le_bytes());
        for &l in &self.labels {
            h.write(&l.to_le_bytes());
        }
        h.write(&self.pixels);
        format!("{:016x}", h.finish())
    }
}

/// The samples at `indices` (each `per` values of `values`) and their labels, in that order.
///
/// # Panics
/// If an index is out of range, like slice indexing.
pub(crate) fn gather_samples<T: Copy>(
    values: &[T],
    labels: &[u16],
    per: usize,
    indices: &[usize],
) -> (Vec<T>, Vec<u16>) {
    let mut out = Vec::with_capacity(indices.len() * per);
    let mut out_labels = Vec::with_capacity(indices.len());
    for &i in indices {
        out.extend_from_slice(&values[i * per..(i + 1) * per]);
        out_labels.push(labels[i]);
    }
    (out, out_labels)
}

/// Number of labels of each class (`num_classes` entries; out-of-range labels are ignored).
pub(crate) fn class_counts(labels: &[u16], num_classes: usize) -> Vec<usize> {
    let mut counts = vec![0usize; num_classes];
    for &l in labels {
        if let Some(c) = counts.get_mut(usize::from(l)) {
            *c += 1;
        }
    }
    counts
}

/// 64-bit FNV-1a hasher (stable across platforms and versions).
pub(crate) struct Fnv1a(u64);

impl Fnv1a {
    pub(crate) fn new() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> ImageSet {
        ImageSet {
            name: "t".into(),
            pixels: (0..24).collect(),
            labels: vec![0, 1, 2],
            shape: [2, 2, 2],
            num_classes: 3,
            class_names: vec!["a".into(), "b".into(), "c".into()],
        }
    }

    #[test]
    fn image_subset_and_counts() {
        let s = set();
        assert_eq!(s.len(), 3);
        assert!(!s.is_empty());
        assert_eq!(s.image(1), &[8, 9, 10, 11, 12, 13, 14, 15]);
        let sub = s.subset(&[2, 0]);
        assert_eq!(sub.labels, vec![2, 0]);
        assert_eq!(sub.image(0), s.image(2));
        assert_eq!(sub.image(1), s.image(0));
        assert_eq!(s.class_counts(), vec![1, 1, 1]);
        assert!(s.subset(&[]).is_empty());
    }

    #[test]
    fn fingerprint_stable_and_sensitive() {
        let s = set();
        let f = s.fingerprint();
        assert_eq!(f.len(), 16);
        assert_eq!(f, set().fingerprint());
        let mut t = set();
        t.pixels[5] ^= 1;
        assert_ne!(f, t.fingerprint());
        let mut t = set();
        t.labels[0] = 1;
        assert_ne!(f, t.fingerprint());
        let mut t = set();
        t.shape = [1, 4, 2];
        assert_ne!(f, t.fingerprint());
    }
}
