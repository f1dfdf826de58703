//! Image and point-cloud datasets for the ANN-to-SNN conversion tool.
//!
//! Images: loads MNIST and Fashion-MNIST (IDX, plain or gzip), CIFAR-10 and CIFAR-100 (official
//! binary formats) and ImageNet (torchvision `ImageFolder` layout of JPEG/PNG files) from a
//! configurable data root (see [`DataRoot`]), and generates the procedural `synthetic-shapes2d`
//! set ([`load_images`], [`load_images_with`]).
//!
//! Point clouds ([`load_points`]): ModelNet10 and ModelNet40 from PCD class folders, official
//! OFF meshes (area-weighted surface sampling), the `modelnet40_normal_resampled` text layout
//! or the `ply_hdf5_2048` HDF5 files; ScanObjectNN from its HDF5 files; ShapeNetPart
//! (`shapenet-part`, the `shapenetcore_partanno_segmentation_benchmark_v0_normal` release,
//! 16 categories; [`load_shapenet_part`] also keeps the per-point part labels, see
//! [`shapenet_part`]); and the procedural `synthetic-shapes3d` set and its part-labelled
//! variant `synthetic-parts3d` ([`load_part_clouds`], [`part_clouds`]). Every sample has exactly
//! `num_points` points, centred and scaled to the unit sphere (see [`pointsets`] for the
//! layouts and the resampling rules). HDF5 is read by the pure-Rust `hdf5-pure` crate (cargo
//! feature `hdf5`, on by default).
//!
//! Event frames ([`load_event_frames`]): CIFAR10-DVS (`cifar10-dvs`) as integrated into
//! `[T, 2, H, W]` frames by SpikingJelly (`frames_number_<T>_split_by_number/<class>/*.npz`),
//! with the common 9:1 per-class train/test split (see [`event_frames`]). `.npz`/`.npy` files
//! are read by [`npy`].
//!
//! Also provides a small deterministic RNG, normalisation, augmentation and batch assembly
//! ([`make_batch`], [`make_point_batch`]). Nothing here touches the network.

pub mod augment;
pub mod cifar;
pub mod coco;
pub mod dense;
pub mod detection_metrics;
pub mod error;
pub mod event_frames;
pub mod h5;
pub mod idx;
pub mod image;
pub mod imagenet;
pub mod npy;
pub mod off;
pub mod part_clouds;
pub mod pcd;
pub mod pointcloud;
pub mod pointsets;
pub mod rng;
pub mod root;
pub mod shapenet_part;
pub mod synthetic_detection;
pub mod synthetic_parts3d;
pub mod synthetic_shapes2d;
pub mod synthetic_shapes3d;
pub mod voc;

pub use augment::{Augment, Normalization, make_batch};
pub use error::DatasetError;
pub use event_frames::{
    EventFrameOptions, EventFrameSet, load_event_frames, load_event_frames_with, locate_event_frames,
};
pub use image::ImageSet;
pub use imagenet::ImageNetOptions;
pub use part_clouds::PartCloudSet;
pub use pointcloud::{PointAugment, PointCloudSet, make_point_batch, normalize_unit_sphere};
pub use rng::{Rng, derive_seed, sample_indices, shuffled_indices};
pub use root::DataRoot;

/// Names accepted by [`load_images`].
pub const DATASET_NAMES: &[&str] = &["synthetic-shapes2d", "mnist", "fashion-mnist", "cifar10", "cifar100", "imagenet"];

/// Which half of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Training split.
    Train,
    /// Test split.
    Test,
}

impl Split {
    /// `"train"` or `"test"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options for procedural sets (ignored by file-backed sets).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticOptions {
    /// Number of training images.
    pub train_size: usize,
    /// Number of test images.
    pub test_size: usize,
    /// Side length of the square images, in pixels.
    pub image_size: usize,
    /// Base seed; train and test are generated from different seeds derived from it.
    pub seed: u64,
}

impl Default for SyntheticOptions {
    fn default() -> Self {
        SyntheticOptions { train_size: 4000, test_size: 1000, image_size: 28, seed: 0 }
    }
}

fn unknown(name: &str) -> DatasetError {
    DatasetError::UnknownDataset { name: name.to_string(), valid: DATASET_NAMES.join(", ") }
}

/// Load a named dataset split. Unknown name -> DatasetError::UnknownDataset listing DATASET_NAMES.
///
/// `imagenet` is loaded with [`ImageNetOptions::default`] (every image of the split; use
/// [`load_images_with`] to limit it).
///
/// File-backed sets are read from the first of `root.candidates(name)` that holds all files of
/// the split; when none does the error is [`DatasetError::Missing`] listing every candidate.
pub fn load_images(
    name: &str,
    split: Split,
    root: &DataRoot,
    synthetic: &SyntheticOptions,
) -> Result<ImageSet, DatasetError> {
    use cifar::Variant;
    match name {
        synthetic_shapes2d::NAME => synthetic_shapes2d::generate(synthetic, split),
        imagenet::NAME => imagenet::load(root, split, &ImageNetOptions::default()),
        "mnist" | "fashion-mnist" => {
            let dir = locate_images(name, split, root)?;
            let (images, labels) = idx::find_split(&dir, split).expect("located: the split's files are there");
            let classes: &[&str] = if name == "mnist" { &idx::MNIST_CLASSES } else { &idx::FASHION_MNIST_CLASSES };
            idx::load_files(&images, &labels, name, classes)
        }
        "cifar10" | "cifar100" => {
            let variant = if name == "cifar10" { Variant::Cifar10 } else { Variant::Cifar100 };
            cifar::load_dir(&locate_images(name, split, root)?, variant, split)
        }
        _ => Err(unknown(name)),
    }
}

/// The first of `root.candidates(name)` that holds every file of `split` of the file-backed
/// image set `name` (MNIST, Fashion-MNIST, CIFAR, ImageNet folders); else
/// [`DatasetError::Missing`] listing every candidate and how to get the data.
pub(crate) fn locate_images(name: &str, split: Split, root: &DataRoot) -> Result<std::path::PathBuf, DatasetError> {
    use cifar::Variant;
    type Holds = Box<dyn Fn(&std::path::Path) -> bool>;
    let (expected, holds): (String, Holds) = match name {
        imagenet::NAME => (imagenet::expected_files(split), Box::new(move |d| imagenet::has_split(d, split))),
        "mnist" | "fashion-mnist" => {
            (idx::expected_files(split), Box::new(move |d| idx::find_split(d, split).is_some()))
        }
        "cifar10" | "cifar100" => {
            let variant = if name == "cifar10" { Variant::Cifar10 } else { Variant::Cifar100 };
            (cifar::expected_files(variant, split), Box::new(move |d| cifar::has_split(d, variant, split)))
        }
        _ => return Err(unknown(name)),
    };
    let candidates = root.candidates(name);
    match candidates.iter().find(|d| holds(d)) {
        Some(dir) => Ok(dir.clone()),
        None => Err(DatasetError::Missing {
            dataset: name.to_string(),
            searched: candidates,
            hint: error::missing_hint(name, &format!("{expected} ({split} split)")),
        }),
    }
}

/// Whether `name`'s `split` can be found under `root`, without reading it: `Ok` for
/// procedural sets, else the [`DatasetError`] a load would stop with when nothing holds the
/// split (what `runner plan` checks before a run). `points` applies to point-cloud sets.
pub fn check_available(name: &str, split: Split, root: &DataRoot, points: &PointOptions) -> Result<(), DatasetError> {
    match name {
        synthetic_shapes2d::NAME | synthetic_detection::NAME => Ok(()),
        synthetic_shapes3d::NAME | synthetic_parts3d::NAME => check_point_request(name, points),
        // With their default options; `dense::check_available` takes others.
        voc::NAME | coco::NAME => dense::check_available(name, split, root, &dense::DenseOptions::default()),
        _ if is_point_dataset(name) => locate_points(name, split, root, points).map(|_| ()),
        _ => locate_images(name, split, root).map(|_| ()),
    }
}

/// What the files of an image set's `split` announce in their headers, without reading the
/// images: (sample count, `[C, H, W]`), for the formats whose header says it (MNIST-style IDX);
/// `Ok(None)` for the others. `runner plan` checks with it that a split is not empty and that
/// train and test samples have one shape.
pub fn peek_image_split(
    name: &str,
    split: Split,
    root: &DataRoot,
) -> Result<Option<(usize, [usize; 3])>, DatasetError> {
    if !matches!(name, "mnist" | "fashion-mnist") {
        return Ok(None);
    }
    let dir = locate_images(name, split, root)?;
    let Some((images, _)) = idx::find_split(&dir, split) else {
        return Ok(None);
    };
    let (count, rows, cols) = idx::read_images_header(&images)?;
    Ok(Some((count, [1, rows, cols])))
}

/// [`load_images`] with options for the `imagenet` set (ignored for other names): the
/// preprocessing sizes and how many images per class to hold in memory.
pub fn load_images_with(
    name: &str,
    split: Split,
    root: &DataRoot,
    synthetic: &SyntheticOptions,
    imagenet: &ImageNetOptions,
) -> Result<ImageSet, DatasetError> {
    if name == imagenet::NAME {
        return imagenet::load(root, split, imagenet);
    }
    load_images(name, split, root, synthetic)
}

/// Default per-dataset normalisation (CIFAR-10: mean 0.4914,0.4822,0.4465 std 0.2470,0.2435,0.2616; CIFAR-100: 0.5071,0.4865,0.4409 / 0.2673,0.2564,0.2762; MNIST 0.1307/0.3081; Fashion-MNIST 0.2860/0.3530; synthetic-shapes2d: measured constants, mean 0.2079 std 0.2146; ImageNet, and the real dense sets `voc` and `coco`: 0.485,0.456,0.406 / 0.229,0.224,0.225).
///
/// `None` for unknown names.
pub fn default_normalization(name: &str) -> Option<Normalization> {
    let (mean, std): (&[f32], &[f32]) = match name {
        "cifar10" => (&[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616]),
        "cifar100" => (&[0.5071, 0.4865, 0.4409], &[0.2673, 0.2564, 0.2762]),
        "mnist" => (&[0.1307], &[0.3081]),
        "fashion-mnist" => (&[0.2860], &[0.3530]),
        synthetic_shapes2d::NAME => (&[synthetic_shapes2d::MEAN], &[synthetic_shapes2d::STD]),
        // Real photographs of the dense sets: ImageNet's constants, as ImageNet-pretrained
        // detectors and segmenters use.
        imagenet::NAME | voc::NAME | coco::NAME => (&imagenet::MEAN, &imagenet::STD),
        _ => return None,
    };
    Some(Normalization { mean: mean.to_vec(), std: std.to_vec() })
}

/// Default training augmentation: CIFAR: crop_padding 4 + flip; others: None.
///
/// ImageNet gets none: its images are already resized and centre-cropped at load time, and
/// torchvision's random-resized-crop training augmentation is not implemented.
pub fn default_augment(name: &str) -> Option<Augment> {
    match name {
        "cifar10" | "cifar100" => Some(Augment { crop_padding: 4, horizontal_flip: true }),
        _ => None,
    }
}

/// Names accepted by [`load_points`].
pub const POINT_DATASET_NAMES: &[&str] =
    &["synthetic-shapes3d", "modelnet10", "modelnet40", "scanobjectnn", shapenet_part::NAME, synthetic_parts3d::NAME];

/// Names accepted by [`load_part_clouds`]: the point sets with a part label per point.
pub const PART_DATASET_NAMES: &[&str] = &[synthetic_parts3d::NAME, shapenet_part::NAME];

/// Names of the event-frame datasets ([`load_event_frames`]): `cifar10-dvs`.
pub const EVENT_DATASET_NAMES: &[&str] = &[event_frames::NAME];

/// Name of the CIFAR10-DVS event-frame dataset, `"cifar10-dvs"`.
pub const CIFAR10_DVS: &str = event_frames::NAME;

/// True for the names in [`POINT_DATASET_NAMES`].
pub fn is_point_dataset(name: &str) -> bool {
    POINT_DATASET_NAMES.contains(&name)
}

fn default_num_points() -> usize {
    1024
}

fn default_scanobjectnn_variant() -> String {
    "pb_t50_rs".to_string()
}

/// Options for loading a point-cloud dataset ([`load_points`]). Missing fields take their
/// defaults when deserialised.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointOptions {
    /// Points per sample (default 1024). Every loaded sample has exactly this many.
    #[serde(default = "default_num_points")]
    pub num_points: usize,
    /// Number of training samples. `synthetic-shapes3d`: generated count (0 means 4000).
    /// File-backed sets: 0 means the whole split; a smaller non-zero value keeps a seeded
    /// random subset of that size (in file order); a larger one keeps everything.
    #[serde(default)]
    pub train_size: usize,
    /// Number of test samples; same rules as `train_size` (0 means 1000 for the synthetic set,
    /// the whole split for files).
    #[serde(default)]
    pub test_size: usize,
    /// Base seed of the synthetic set, of OFF surface sampling, of PCD and ShapeNetPart point
    /// subsampling and of the `train_size`/`test_size` subsets. Train and test use different
    /// derived seeds.
    #[serde(default)]
    pub seed: u64,
    /// ScanObjectNN variant (ignored by other sets): `obj_bg` (`main_split/*_objectdataset.h5`),
    /// `obj_only` (`main_split_nobg/`), `pb_t25`, `pb_t25_r`, `pb_t50_r` or `pb_t50_rs`
    /// (default; `main_split/*_objectdataset_augmentedrot_scale75.h5`).
    #[serde(default = "default_scanobjectnn_variant")]
    pub scanobjectnn_variant: String,
}

impl Default for PointOptions {
    fn default() -> Self {
        PointOptions {
            num_points: default_num_points(),
            train_size: 0,
            test_size: 0,
            seed: 0,
            scanobjectnn_variant: default_scanobjectnn_variant(),
        }
    }
}

/// Largest accepted `num_points`.
pub const MAX_NUM_POINTS: usize = 1 << 20;

/// Load a named point-cloud dataset split. Unknown name -> [`DatasetError::UnknownDataset`]
/// listing [`POINT_DATASET_NAMES`].
///
/// File-backed sets are read from the first of `root.candidates(name)` (or of the known
/// sub-directories of one, see [`pointsets`]) that holds the split in an accepted layout; when
/// none does the error is [`DatasetError::Missing`] listing every directory looked at.
/// Every sample is centred on its centroid and scaled so that its largest point norm is 1.
pub fn load_points(
    name: &str,
    split: Split,
    root: &DataRoot,
    options: &PointOptions,
) -> Result<PointCloudSet, DatasetError> {
    check_point_request(name, options)?;
    if name == synthetic_shapes3d::NAME {
        return synthetic_shapes3d::generate(options, split);
    }
    if name == synthetic_parts3d::NAME {
        return Ok(synthetic_parts3d::generate(options, split)?.cloud);
    }
    pointsets::load(name, split, root, options)
}

/// Loads a point set with per-point part labels ([`PART_DATASET_NAMES`]): the procedural
/// `synthetic-parts3d` or ShapeNetPart ([`load_shapenet_part`]). Other names:
/// [`DatasetError::UnknownDataset`] listing the part sets.
pub fn load_part_clouds(
    name: &str,
    split: Split,
    root: &DataRoot,
    options: &PointOptions,
) -> Result<PartCloudSet, DatasetError> {
    if !PART_DATASET_NAMES.contains(&name) {
        return Err(DatasetError::UnknownDataset { name: name.to_string(), valid: PART_DATASET_NAMES.join(", ") });
    }
    check_point_request(name, options)?;
    if name == synthetic_parts3d::NAME {
        return synthetic_parts3d::generate(options, split);
    }
    load_shapenet_part(split, root, options)
}

/// Where [`load_points`] would read a file-backed split from: the directory holding it
/// (ScanObjectNN: the HDF5 file), or the same [`DatasetError`] as `load_points` when it is not
/// found. `synthetic-shapes3d` has no location: [`DatasetError::InvalidOptions`].
pub fn locate_points(
    name: &str,
    split: Split,
    root: &DataRoot,
    options: &PointOptions,
) -> Result<std::path::PathBuf, DatasetError> {
    check_point_request(name, options)?;
    if name == synthetic_shapes3d::NAME || name == synthetic_parts3d::NAME {
        return Err(DatasetError::InvalidOptions {
            dataset: name.to_string(),
            reason: "a procedural dataset has no location on disk".into(),
        });
    }
    pointsets::locate(name, split, root, options)
}

/// Loads a ShapeNetPart split like [`load_points`]`("shapenet-part", ...)` (same search, same
/// clouds and category labels) and also returns the part label of every point, for
/// segmentation (see [`shapenet_part`] for the layout and the splits).
pub fn load_shapenet_part(split: Split, root: &DataRoot, options: &PointOptions) -> Result<PartCloudSet, DatasetError> {
    check_point_request(shapenet_part::NAME, options)?;
    let dir = pointsets::locate(shapenet_part::NAME, split, root, options)?;
    shapenet_part::load_dir(&dir, split, options)
}

fn check_point_request(name: &str, options: &PointOptions) -> Result<(), DatasetError> {
    if !is_point_dataset(name) {
        return Err(DatasetError::UnknownDataset { name: name.to_string(), valid: POINT_DATASET_NAMES.join(", ") });
    }
    if options.num_points == 0 || options.num_points > MAX_NUM_POINTS {
        return Err(DatasetError::InvalidOptions {
            dataset: name.to_string(),
            reason: format!("num_points {} is outside 1..={MAX_NUM_POINTS}", options.num_points),
        });
    }
    if name == "scanobjectnn" {
        pointsets::scan_variant(options)?;
    }
    Ok(())
}

/// Default training augmentation of a point-cloud dataset: [`PointAugment::default`] (the
/// PointNet++ recipe) for every name in [`POINT_DATASET_NAMES`]; `None` otherwise.
pub fn default_point_augment(name: &str) -> Option<PointAugment> {
    is_point_dataset(name).then(PointAugment::default)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_events;
#[cfg(test)]
mod tests_points;
#[cfg(test)]
mod tests_shapenet;
