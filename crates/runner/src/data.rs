//! Dataset loading for a spec and batch tensors.

use anyhow::{Context, Result};
use burn::prelude::*;
use datasets::synthetic_detection::SyntheticDetectionSet;
use datasets::{
    Augment, DataRoot, EventFrameSet, ImageSet, Normalization, PartCloudSet, PointAugment, PointCloudSet, Rng, Split,
};

use crate::spec::{DatasetSection, EvalSection, TestSubset};

/// The samples of one split: 8-bit images or point clouds.
#[derive(Clone, Debug)]
pub enum Samples {
    /// Images `[C, H, W]`.
    Images(ImageSet),
    /// Point clouds, fed to the networks as `[3, points, 1]` "images".
    Points(PointCloudSet),
    /// Event frames `[frames, C, H, W]`: the ANN sees the mean frame `[C, H, W]`, the SNN
    /// frame t at step t ([`frame_tensors`]).
    Frames(EventFrameSet),
    /// Images with dense labels (`synthetic-detection`, and `voc` and `coco` resized to one
    /// square size by `datasets::dense`): per image its objects (class and box) and its
    /// per-pixel labels, for detection and segmentation networks. The class
    /// count is the number of object classes (the background is not a class here).
    Dense(SyntheticDetectionSet),
    /// Point clouds with a part label per point (`synthetic-parts3d`, `shapenet-part`): a
    /// classifier learns their category labels as from [`Samples::Points`], a part segmenter
    /// their per-point labels. `num_classes` counts the categories.
    Parts(PartCloudSet),
}

impl Samples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Samples::Images(s) => s.len(),
            Samples::Points(s) => s.len(),
            Samples::Frames(s) => s.len(),
            Samples::Dense(s) => s.len(),
            Samples::Parts(s) => s.len(),
        }
    }

    /// True when there is no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Network input shape of one sample: `[C, H, W]`, or `[3, points, 1]` for point clouds.
    pub fn shape(&self) -> [usize; 3] {
        match self {
            Samples::Images(s) => s.shape,
            Samples::Points(s) => [3, s.num_points, 1],
            Samples::Frames(s) => [s.channels, s.height, s.width],
            Samples::Dense(s) => s.image_shape(),
            Samples::Parts(s) => [3, s.cloud.num_points, 1],
        }
    }

    /// Number of classes of the dataset.
    pub fn num_classes(&self) -> usize {
        match self {
            Samples::Images(s) => s.num_classes,
            Samples::Points(s) => s.num_classes,
            Samples::Frames(s) => s.num_classes,
            Samples::Dense(s) => s.num_classes,
            Samples::Parts(s) => s.cloud.num_classes,
        }
    }

    /// Stable fingerprint of the samples and labels.
    pub fn fingerprint(&self) -> String {
        match self {
            Samples::Images(s) => s.fingerprint(),
            Samples::Points(s) => s.fingerprint(),
            Samples::Frames(s) => s.fingerprint(),
            Samples::Dense(s) => s.fingerprint(),
            Samples::Parts(s) => s.fingerprint(),
        }
    }

    /// The samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Samples {
        match self {
            Samples::Images(s) => Samples::Images(s.subset(indices)),
            Samples::Points(s) => Samples::Points(s.subset(indices)),
            Samples::Frames(s) => Samples::Frames(s.subset(indices)),
            Samples::Dense(s) => Samples::Dense(SyntheticDetectionSet {
                name: s.name.clone(),
                image_size: s.image_size,
                num_classes: s.num_classes,
                class_names: s.class_names.clone(),
                samples: indices.iter().map(|&i| s.samples[i].clone()).collect(),
                ignore_label: s.ignore_label,
            }),
            Samples::Parts(s) => Samples::Parts(s.subset(indices)),
        }
    }
}

/// The zoo's part-segmentation model, which scores the parts of [`Samples::Parts`] per point.
pub const PART_SEGMENTER: &str = "pointnet-partseg";

/// Default normalisation of `synthetic-detection` images (pixel/255 − 0.5) / 0.25: a fixed
/// centring (backgrounds are drawn from U[0.1, 0.9] per channel), not measured constants.
pub const DENSE_MEAN: f32 = 0.5;
/// See [`DENSE_MEAN`].
pub const DENSE_STD: f32 = 0.25;

/// Training augmentation of either kind of sample.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainAugment {
    /// Random crop with padding and horizontal flip.
    Images(Augment),
    /// Random point dropout, scale and shift.
    Points(PointAugment),
}

/// Train and test sets with their preprocessing.
pub struct Data {
    /// Training samples.
    pub train: Samples,
    /// Test samples.
    pub test: Samples,
    /// Normalisation applied to pixel/255 (images only; empty for point clouds).
    pub norm: Normalization,
    /// Default training augmentation of the dataset.
    pub augment: Option<TrainAugment>,
    /// Fingerprint of the training samples (part of the training cache key), computed once.
    pub train_fingerprint: String,
    /// Fingerprint of the test samples (part of every evaluation key: new test files under
    /// the same names are evaluated afresh), computed once.
    pub test_fingerprint: String,
}

impl Data {
    /// Loads both splits of `section` from `root`.
    pub fn load(section: &DatasetSection, root: &DataRoot) -> Result<Self> {
        let (mut train, test, norm, augment) = if let Some(events) = &section.events {
            let opts = datasets::EventFrameOptions { max_per_class: events.max_per_class };
            let load = |split| {
                datasets::load_event_frames_with(root, events.frames, split, &opts)
                    .map(Samples::Frames)
                    .with_context(|| format!("loading dataset `{}` ({split:?})", section.name))
            };
            let (train, test) = (load(Split::Train)?, load(Split::Test)?);
            // Event counts as they are unless the spec normalises them.
            let channels = train.shape()[0];
            let norm = section
                .normalization
                .clone()
                .unwrap_or(Normalization { mean: vec![0.0; channels], std: vec![1.0; channels] });
            (train, test, norm, None)
        } else if section.name == datasets::synthetic_detection::NAME {
            let options = section.detection.clone().unwrap_or_default();
            let load = |split| {
                datasets::synthetic_detection::generate(&options, split)
                    .map(Samples::Dense)
                    .with_context(|| format!("generating dataset `{}` ({split:?})", section.name))
            };
            let norm = section
                .normalization
                .clone()
                .unwrap_or(Normalization { mean: vec![DENSE_MEAN; 3], std: vec![DENSE_STD; 3] });
            anyhow::ensure!(
                norm.mean.len() == 3 && norm.std.len() == 3,
                "dataset.normalization: {} channels given, `{}` has 3",
                norm.mean.len(),
                section.name,
            );
            // No augmentation: a crop or flip would have to move the boxes and masks too.
            (load(Split::Train)?, load(Split::Test)?, norm, None)
        } else if datasets::dense::is_real_dense(&section.name) {
            // PASCAL VOC or MS COCO, resized to `[dataset.dense] image_size` at load.
            let options = section.dense.clone().unwrap_or_default();
            let load = |split| {
                datasets::dense::load(&section.name, split, root, &options)
                    .map(Samples::Dense)
                    .with_context(|| format!("loading dataset `{}` ({split:?})", section.name))
            };
            // Photographs: ImageNet's constants (see `datasets::default_normalization`).
            let norm = match &section.normalization {
                Some(n) => n.clone(),
                None => datasets::default_normalization(&section.name)
                    .with_context(|| format!("no default normalisation for `{}`", section.name))?,
            };
            anyhow::ensure!(
                norm.mean.len() == 3 && norm.std.len() == 3,
                "dataset.normalization: {} channels given, `{}` has 3",
                norm.mean.len(),
                section.name,
            );
            // No augmentation, as for `synthetic-detection`.
            (load(Split::Train)?, load(Split::Test)?, norm, None)
        } else if datasets::is_point_dataset(&section.name) {
            let options = section.points.clone().unwrap_or_default();
            let parts = datasets::PART_DATASET_NAMES.contains(&section.name.as_str());
            let load = |split| {
                let set = if parts {
                    datasets::load_part_clouds(&section.name, split, root, &options).map(Samples::Parts)
                } else {
                    datasets::load_points(&section.name, split, root, &options).map(Samples::Points)
                };
                set.with_context(|| format!("loading dataset `{}` ({split:?})", section.name))
            };
            // Scale and shift move every point alike; PointNet++'s point dropout (a dropped point
            // takes point 0's place) would give points of part sets the wrong part label.
            let augment = match parts {
                true => Some(PointAugment { dropout_max: 0.0, ..PointAugment::default() }),
                false => datasets::default_point_augment(&section.name),
            };
            let norm = Normalization { mean: vec![], std: vec![] };
            (load(Split::Train)?, load(Split::Test)?, norm, augment.map(TrainAugment::Points))
        } else {
            let synthetic = section.synthetic.clone().unwrap_or_default();
            let imagenet = section.imagenet.clone().unwrap_or_default();
            let load = |split| {
                datasets::load_images_with(&section.name, split, root, &synthetic, &imagenet)
                    .map(Samples::Images)
                    .with_context(|| format!("loading dataset `{}` ({split:?})", section.name))
            };
            let (train, test) = (load(Split::Train)?, load(Split::Test)?);
            let norm = match &section.normalization {
                Some(n) => n.clone(),
                None => datasets::default_normalization(&section.name)
                    .with_context(|| format!("no default normalisation for `{}`", section.name))?,
            };
            let channels = train.shape()[0];
            anyhow::ensure!(
                norm.mean.len() == channels && norm.std.len() == channels,
                "dataset.normalization: {} channels given, `{}` has {channels}",
                norm.mean.len(),
                section.name,
            );
            (train, test, norm, datasets::default_augment(&section.name).map(TrainAugment::Images))
        };
        if let Some(n) = section.train_subset {
            warn_clamped("dataset.train_subset", n, train.len(), "training samples");
            let idx = datasets::shuffled_indices(train.len(), 0x5EED, 0);
            let mut keep: Vec<usize> = idx.into_iter().take(n).collect();
            keep.sort_unstable();
            train = train.subset(&keep);
        }
        // An empty training set or mismatched splits would fail (or poison the cache) later.
        if train.is_empty() {
            anyhow::bail!(
                "dataset `{}`: the training set is empty (check dataset.train_subset, the synthetic train_size, or the \
                 training files)",
                section.name
            );
        }
        if test.is_empty() {
            anyhow::bail!(
                "dataset `{}`: the test set is empty (check the synthetic test_size or the test files)",
                section.name
            );
        }
        if train.shape() != test.shape() {
            anyhow::bail!(
                "dataset `{}`: training samples have shape {:?} but test samples {:?} (mismatched files?)",
                section.name,
                train.shape(),
                test.shape()
            );
        }
        let train_fingerprint = train.fingerprint();
        let test_fingerprint = test.fingerprint();
        Ok(Self { augment, train, test, norm, train_fingerprint, test_fingerprint })
    }

    /// Network input shape of one sample (`[C, H, W]`; point clouds `[3, points, 1]`).
    pub fn input_shape(&self) -> [usize; 3] {
        self.train.shape()
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.train.num_classes()
    }

    /// The `classes` argument of [`zoo::build_model`] for `model`: the global part ids of a
    /// part-labelled set for a part segmenter (scored per point), else [`Data::classes`].
    pub fn model_classes(&self, model: &zoo::ModelSpec) -> usize {
        match &self.train {
            Samples::Parts(s) if model.name == PART_SEGMENTER => s.num_parts(),
            _ => self.classes(),
        }
    }

    /// Test indices the spec evaluates on (ANN and SNN alike).
    pub fn test_indices(&self, eval: &EvalSection) -> Vec<usize> {
        select_subset(self.test.len(), eval.test_subset.as_ref())
    }
}

/// Says, once per process and key, that the spec asked for more than the data holds and how
/// many are used instead (`key` names the spec field): [`clamp_warning`] on standard error.
pub fn warn_clamped(key: &str, asked: usize, available: usize, what: &str) {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static WARNED: Mutex<Option<HashSet<(String, usize, usize)>>> = Mutex::new(None);
    let Some(message) = clamp_warning(key, asked, available, what) else {
        return;
    };
    let first = WARNED.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_default().insert((
        key.to_string(),
        asked,
        available,
    ));
    if first {
        eprintln!("{message}");
    }
}

/// The warning for `key = asked` when only `available` `what` exist; None when it fits.
pub fn clamp_warning(key: &str, asked: usize, available: usize, what: &str) -> Option<String> {
    (asked > available)
        .then(|| format!("warning: {key} = {asked} is more than the {available} {what} there are: using {available}"))
}

/// Indices of a test subset.
pub fn select_subset(n: usize, subset: Option<&TestSubset>) -> Vec<usize> {
    if let Some(s) = subset {
        for (key, k) in [("first", s.first), ("last", s.last), ("sample", s.sample)] {
            if let Some(k) = k {
                warn_clamped(&format!("eval.test_subset.{key}"), k, n, "test samples");
            }
        }
    }
    match subset {
        None => (0..n).collect(),
        Some(TestSubset { first: Some(k), .. }) => (0..(*k).min(n)).collect(),
        Some(TestSubset { last: Some(k), .. }) => (n - (*k).min(n)..n).collect(),
        Some(TestSubset { sample: Some(k), seed, .. }) => datasets::sample_indices(n, *k, *seed),
        Some(_) => (0..n).collect(),
    }
}

/// Per channel (x − mean)/std, in place, of one sample's `[C, inner]` values.
fn normalise_channels(values: &mut [f32], channels: usize, norm: &Normalization) {
    let inner = (values.len() / channels.max(1)).max(1);
    for (i, v) in values.iter_mut().enumerate() {
        let c = i / inner;
        *v = (*v - norm.mean[c]) / norm.std[c];
    }
}

/// The SNN input of a batch of event-frame samples: every frame, frame-major
/// `[frames · n, C, H, W]` (frame f of sample i at row f·n + i), normalised as
/// [`batch_tensors`] normalises the mean frames.
pub fn frame_tensors(set: &EventFrameSet, indices: &[usize], norm: &Normalization, device: &Device) -> Tensor<4> {
    let [frames, c, h, w] = set.sample_shape();
    let per_frame = c * h * w;
    let n = indices.len();
    let mut values = vec![0f32; frames * n * per_frame];
    for (i, &s) in indices.iter().enumerate() {
        let sample = set.sample(s);
        for f in 0..frames {
            let dst = (f * n + i) * per_frame;
            values[dst..dst + per_frame].copy_from_slice(&sample[f * per_frame..(f + 1) * per_frame]);
        }
    }
    for frame in values.chunks_mut(per_frame) {
        normalise_channels(frame, c, norm);
    }
    zoo::tensor_from(values, [frames * n, c, h, w], device)
}

/// A batch as tensors: inputs `[n, C, H, W]` (point clouds `[n, 3, points, 1]`, event frames
/// their mean frame) and labels `[n]`.
pub fn batch_tensors(
    set: &Samples,
    indices: &[usize],
    norm: &Normalization,
    augment: Option<(&TrainAugment, &mut Rng)>,
    device: &Device,
) -> (Tensor<4>, Tensor<1, Int>, Vec<i64>) {
    let (values, labels) = match set {
        Samples::Images(s) => {
            let aug = augment.and_then(|(a, rng)| match a {
                TrainAugment::Images(a) => Some((a, rng)),
                TrainAugment::Points(_) => None,
            });
            datasets::make_batch(s, indices, norm, aug)
        }
        Samples::Points(s) => {
            let aug = augment.and_then(|(a, rng)| match a {
                TrainAugment::Points(a) => Some((a, rng)),
                TrainAugment::Images(_) => None,
            });
            datasets::make_point_batch(s, indices, aug)
        }
        Samples::Parts(s) => {
            let aug = augment.and_then(|(a, rng)| match a {
                TrainAugment::Points(a) => Some((a, rng)),
                TrainAugment::Images(_) => None,
            });
            datasets::make_point_batch(&s.cloud, indices, aug)
        }
        Samples::Frames(s) => {
            let [frames, c, h, w] = s.sample_shape();
            let per_frame = c * h * w;
            let mut values = Vec::with_capacity(indices.len() * per_frame);
            for &i in indices {
                let sample = s.sample(i);
                let mut mean = vec![0f32; per_frame];
                for frame in sample.chunks(per_frame) {
                    for (m, v) in mean.iter_mut().zip(frame) {
                        *m += v / frames as f32;
                    }
                }
                normalise_channels(&mut mean, c, norm);
                values.extend(mean);
            }
            (values, indices.iter().map(|&i| s.labels[i] as i64).collect())
        }
        Samples::Dense(s) => {
            let [c, ..] = s.image_shape();
            let mut values = Vec::with_capacity(indices.len() * s.image_shape().iter().product::<usize>());
            for &i in indices {
                let mut image: Vec<f32> = s.samples[i].pixels.iter().map(|&p| p as f32 / 255.0).collect();
                normalise_channels(&mut image, c, norm);
                values.extend(image);
            }
            // Dense samples have no class label: the task's targets come from the set itself.
            (values, vec![0; indices.len()])
        }
    };
    let [c, h, w] = set.shape();
    let x = zoo::tensor_from(values, [indices.len(), c, h, w], device);
    let y = Tensor::<1, Int>::from_data(burn::tensor::TensorData::new(labels.clone(), [indices.len()]), device);
    (x, y, labels)
}

/// Calibration batches: the first `n` training images of a seeded shuffle, no augmentation.
pub fn calibration_batches(data: &Data, n: usize, batch: usize, seed: u64, device: &Device) -> Vec<Tensor<4>> {
    warn_clamped("convert.calibration_images", n, data.train.len(), "training samples");
    let idx: Vec<usize> = datasets::shuffled_indices(data.train.len(), seed ^ 0xCA11B, 0).into_iter().take(n).collect();
    idx.chunks(batch).map(|c| batch_tensors(&data.train, c, &data.norm, None, device).0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asking_for_more_than_the_data_holds_is_a_warning_naming_the_key_and_the_number_used() {
        assert_eq!(clamp_warning("eval.test_subset.first", 10, 10, "test samples"), None);
        assert_eq!(
            clamp_warning("eval.test_subset.first", 500, 40, "test samples").as_deref(),
            Some("warning: eval.test_subset.first = 500 is more than the 40 test samples there are: using 40")
        );
        let subset = |first, last| TestSubset { first, sample: None, seed: 0, last };
        assert_eq!(select_subset(40, Some(&subset(Some(500), None))).len(), 40);
        assert_eq!(select_subset(40, Some(&subset(None, Some(500)))).len(), 40);
    }

    #[test]
    fn the_last_images_are_the_end_of_the_test_set_disjoint_from_the_first() {
        let subset = |first, last| TestSubset { first, sample: None, seed: 0, last };
        assert_eq!(select_subset(10, Some(&subset(None, Some(3)))), vec![7, 8, 9]);
        let first = select_subset(10, Some(&subset(Some(7), None)));
        assert!(first.iter().all(|i| !select_subset(10, Some(&subset(None, Some(3)))).contains(i)));
        // A spec without `last` keeps the serialised form (and so the cache keys) it had.
        let text = serde_json::to_string(&subset(Some(7), None)).unwrap();
        assert_eq!(text, r#"{"first":7,"sample":null,"seed":0}"#);
    }
}
