//! Image datasets for the ANN-to-SNN conversion tool.
//!
//! Loads MNIST and Fashion-MNIST (IDX, plain or gzip), CIFAR-10 and CIFAR-100 (official binary
//! formats) and ImageNet (torchvision `ImageFolder` layout of JPEG/PNG files) from a configurable data root (see [`DataRoot`]), and generates the procedural
//! `synthetic-shapes2d` set. Also provides a small deterministic RNG, normalisation,
//! augmentation and batch assembly. Nothing here touches the network.

pub mod augment;
pub mod cifar;
pub mod error;
pub mod idx;
pub mod image;
pub mod imagenet;
pub mod rng;
pub mod root;
pub mod synthetic_shapes2d;

pub use augment::{Augment, Normalization, make_batch};
pub use error::DatasetError;
pub use image::ImageSet;
pub use imagenet::ImageNetOptions;
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
    let expected = match name {
        synthetic_shapes2d::NAME => return synthetic_shapes2d::generate(synthetic, split),
        imagenet::NAME => return imagenet::load(root, split, &ImageNetOptions::default()),
        "mnist" | "fashion-mnist" => idx::expected_files(split),
        "cifar10" => cifar::expected_files(Variant::Cifar10, split),
        "cifar100" => cifar::expected_files(Variant::Cifar100, split),
        _ => return Err(unknown(name)),
    };
    let candidates = root.candidates(name);
    for dir in &candidates {
        match name {
            "mnist" | "fashion-mnist" => {
                if let Some((images, labels)) = idx::find_split(dir, split) {
                    let classes: &[&str] =
                        if name == "mnist" { &idx::MNIST_CLASSES } else { &idx::FASHION_MNIST_CLASSES };
                    return idx::load_files(&images, &labels, name, classes);
                }
            }
            _ => {
                let variant = if name == "cifar10" { Variant::Cifar10 } else { Variant::Cifar100 };
                if cifar::has_split(dir, variant, split) {
                    return cifar::load_dir(dir, variant, split);
                }
            }
        }
    }
    Err(DatasetError::Missing {
        dataset: name.to_string(),
        searched: candidates,
        hint: error::missing_hint(name, &format!("{expected} ({split} split)")),
    })
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

/// Default per-dataset normalisation (CIFAR-10: mean 0.4914,0.4822,0.4465 std 0.2470,0.2435,0.2616; CIFAR-100: 0.5071,0.4865,0.4409 / 0.2673,0.2564,0.2762; MNIST 0.1307/0.3081; Fashion-MNIST 0.2860/0.3530; synthetic-shapes2d: measured constants, mean 0.2079 std 0.2146; ImageNet: 0.485,0.456,0.406 / 0.229,0.224,0.225).
///
/// `None` for unknown names.
pub fn default_normalization(name: &str) -> Option<Normalization> {
    let (mean, std): (&[f32], &[f32]) = match name {
        "cifar10" => (&[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616]),
        "cifar100" => (&[0.5071, 0.4865, 0.4409], &[0.2673, 0.2564, 0.2762]),
        "mnist" => (&[0.1307], &[0.3081]),
        "fashion-mnist" => (&[0.2860], &[0.3530]),
        synthetic_shapes2d::NAME => (&[synthetic_shapes2d::MEAN], &[synthetic_shapes2d::STD]),
        imagenet::NAME => (&imagenet::MEAN, &imagenet::STD),
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

#[cfg(test)]
mod tests;
