//! Dataset loading for a spec and batch tensors.

use anyhow::{Context, Result};
use burn::prelude::*;
use datasets::{Augment, DataRoot, ImageSet, Normalization, Rng, Split};

use crate::spec::{DatasetSection, EvalSection, TestSubset};

/// Train and test sets with their preprocessing.
pub struct Data {
    /// Training images.
    pub train: ImageSet,
    /// Test images.
    pub test: ImageSet,
    /// Normalisation applied to pixel/255.
    pub norm: Normalization,
    /// Default training augmentation of the dataset.
    pub augment: Option<Augment>,
    /// Fingerprint of the training images (part of the training cache key), computed once.
    pub train_fingerprint: String,
}

impl Data {
    /// Loads both splits of `section` from `root`.
    pub fn load(section: &DatasetSection, root: &DataRoot) -> Result<Self> {
        let synthetic = section.synthetic.clone().unwrap_or_default();
        let imagenet = section.imagenet.clone().unwrap_or_default();
        let load = |split| {
            datasets::load_images_with(&section.name, split, root, &synthetic, &imagenet)
                .with_context(|| format!("loading dataset `{}` ({split:?})", section.name))
        };
        let mut train = load(Split::Train)?;
        let test = load(Split::Test)?;
        if let Some(n) = section.train_subset {
            let idx = datasets::shuffled_indices(train.len(), 0x5EED, 0);
            let mut keep: Vec<usize> = idx.into_iter().take(n).collect();
            keep.sort_unstable();
            train = train.subset(&keep);
        }
        let norm = match &section.normalization {
            Some(n) => n.clone(),
            None => datasets::default_normalization(&section.name)
                .with_context(|| format!("no default normalisation for `{}`", section.name))?,
        };
        anyhow::ensure!(
            norm.mean.len() == train.shape[0] && norm.std.len() == train.shape[0],
            "dataset.normalization: {} channels given, `{}` has {}",
            norm.mean.len(),
            section.name,
            train.shape[0]
        );
        let train_fingerprint = train.fingerprint();
        Ok(Self { augment: datasets::default_augment(&section.name), train, test, norm, train_fingerprint })
    }

    /// `[C, H, W]` of the images.
    pub fn input_shape(&self) -> [usize; 3] {
        self.train.shape
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.train.num_classes
    }

    /// Test indices the spec evaluates on (ANN and SNN alike).
    pub fn test_indices(&self, eval: &EvalSection) -> Vec<usize> {
        select_subset(self.test.len(), eval.test_subset.as_ref())
    }
}

/// Indices of a test subset.
pub fn select_subset(n: usize, subset: Option<&TestSubset>) -> Vec<usize> {
    match subset {
        None => (0..n).collect(),
        Some(TestSubset { first: Some(k), .. }) => (0..(*k).min(n)).collect(),
        Some(TestSubset { sample: Some(k), seed, .. }) => datasets::sample_indices(n, *k, *seed),
        Some(_) => (0..n).collect(),
    }
}

/// A batch as tensors: images `[n, C, H, W]` and labels `[n]`.
pub fn batch_tensors(
    set: &ImageSet,
    indices: &[usize],
    norm: &Normalization,
    augment: Option<(&Augment, &mut Rng)>,
    device: &Device,
) -> (Tensor<4>, Tensor<1, Int>, Vec<i64>) {
    let (pixels, labels) = datasets::make_batch(set, indices, norm, augment);
    let [c, h, w] = set.shape;
    let x = zoo::tensor_from(pixels, [indices.len(), c, h, w], device);
    let y = Tensor::<1, Int>::from_data(burn::tensor::TensorData::new(labels.clone(), [indices.len()]), device);
    (x, y, labels)
}

/// Calibration batches: the first `n` training images of a seeded shuffle, no augmentation.
pub fn calibration_batches(data: &Data, n: usize, batch: usize, seed: u64, device: &Device) -> Vec<Tensor<4>> {
    let idx: Vec<usize> = datasets::shuffled_indices(data.train.len(), seed ^ 0xCA11B, 0).into_iter().take(n).collect();
    idx.chunks(batch).map(|c| batch_tensors(&data.train, c, &data.norm, None, device).0).collect()
}
