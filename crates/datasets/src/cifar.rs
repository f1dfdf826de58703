//! CIFAR-10 and CIFAR-100 in their official binary formats.

use std::path::{Path, PathBuf};

use crate::Split;
use crate::error::DatasetError;
use crate::image::ImageSet;

/// Pixels per CIFAR image (3 planes of 32×32).
pub const IMAGE_BYTES: usize = 3 * 32 * 32;
/// Bytes per CIFAR-10 record: label, then pixels.
pub const CIFAR10_RECORD: usize = 1 + IMAGE_BYTES;
/// Bytes per CIFAR-100 record: coarse label, fine label, then pixels.
pub const CIFAR100_RECORD: usize = 2 + IMAGE_BYTES;

/// CIFAR-10 class names (used when `batches.meta.txt` is absent).
pub const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// CIFAR-100 fine class names (used when `fine_label_names.txt` is absent).
pub const CIFAR100_CLASSES: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

/// Which CIFAR variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// CIFAR-10 (`cifar-10-batches-bin`).
    Cifar10,
    /// CIFAR-100 (`cifar-100-binary`), fine labels.
    Cifar100,
}

impl Variant {
    /// Dataset name as in [`crate::DATASET_NAMES`].
    pub fn name(self) -> &'static str {
        match self {
            Variant::Cifar10 => "cifar10",
            Variant::Cifar100 => "cifar100",
        }
    }

    /// Bytes per record.
    pub fn record_size(self) -> usize {
        match self {
            Variant::Cifar10 => CIFAR10_RECORD,
            Variant::Cifar100 => CIFAR100_RECORD,
        }
    }

    /// Number of (fine) classes.
    pub fn num_classes(self) -> usize {
        match self {
            Variant::Cifar10 => 10,
            Variant::Cifar100 => 100,
        }
    }

    /// The data files of `split`, in load order.
    pub fn split_files(self, split: Split) -> &'static [&'static str] {
        match (self, split) {
            (Variant::Cifar10, Split::Train) => {
                &["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"]
            }
            (Variant::Cifar10, Split::Test) => &["test_batch.bin"],
            (Variant::Cifar100, Split::Train) => &["train.bin"],
            (Variant::Cifar100, Split::Test) => &["test.bin"],
        }
    }

    fn names_file(self) -> &'static str {
        match self {
            Variant::Cifar10 => "batches.meta.txt",
            Variant::Cifar100 => "fine_label_names.txt",
        }
    }

    fn default_names(self) -> &'static [&'static str] {
        match self {
            Variant::Cifar10 => &CIFAR10_CLASSES,
            Variant::Cifar100 => &CIFAR100_CLASSES,
        }
    }
}

/// True when `dir` holds every data file of `split`.
pub fn has_split(dir: &Path, variant: Variant, split: Split) -> bool {
    variant.split_files(split).iter().all(|f| dir.join(f).is_file())
}

/// Human-readable description of the files a directory must hold.
pub(crate) fn expected_files(variant: Variant, split: Split) -> String {
    let files: Vec<String> = variant.split_files(split).iter().map(|f| format!("`{f}`")).collect();
    files.join(", ")
}

/// Class names from the names file in `dir` if it lists exactly the right number of
/// names, else the built-in list.
fn class_names(dir: &Path, variant: Variant) -> Vec<String> {
    if let Ok(text) = std::fs::read_to_string(dir.join(variant.names_file())) {
        let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
        if names.len() == variant.num_classes() {
            return names;
        }
    }
    variant.default_names().iter().map(|s| s.to_string()).collect()
}

/// Appends the records of one file to `labels`/`pixels`, validating length and labels.
fn read_records(
    path: &Path,
    variant: Variant,
    labels: &mut Vec<u16>,
    pixels: &mut Vec<u8>,
) -> Result<(), DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io { path: path.to_path_buf(), source })?;
    let rec = variant.record_size();
    let corrupt = |offset: usize, reason: String| DatasetError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    if bytes.is_empty() {
        return Err(corrupt(0, "file is empty".to_string()));
    }
    let whole = bytes.len() / rec * rec;
    if whole != bytes.len() {
        return Err(corrupt(
            whole,
            format!(
                "incomplete record {}: file length {} is not a multiple of the {rec}-byte record size ({} bytes left over)",
                whole / rec,
                bytes.len(),
                bytes.len() - whole
            ),
        ));
    }
    let label_bytes = rec - IMAGE_BYTES;
    pixels.reserve(bytes.len() / rec * IMAGE_BYTES);
    for (i, r) in bytes.chunks_exact(rec).enumerate() {
        let offset = i * rec;
        let label = match variant {
            Variant::Cifar10 => r[0],
            Variant::Cifar100 => {
                if r[0] >= 20 {
                    return Err(corrupt(
                        offset,
                        format!("record {i}: coarse label {} is out of range (must be < 20)", r[0]),
                    ));
                }
                r[1]
            }
        };
        if usize::from(label) >= variant.num_classes() {
            return Err(corrupt(
                offset,
                format!("record {i}: label {label} is out of range (must be < {})", variant.num_classes()),
            ));
        }
        labels.push(u16::from(label));
        pixels.extend_from_slice(&r[label_bytes..]);
    }
    Ok(())
}

/// Loads `split` of a CIFAR variant from `dir` (which directly holds the `.bin` files).
pub fn load_dir(dir: &Path, variant: Variant, split: Split) -> Result<ImageSet, DatasetError> {
    let mut labels = Vec::new();
    let mut pixels = Vec::new();
    for f in variant.split_files(split) {
        let path: PathBuf = dir.join(f);
        read_records(&path, variant, &mut labels, &mut pixels)?;
    }
    Ok(ImageSet {
        name: variant.name().to_string(),
        pixels,
        labels,
        shape: [3, 32, 32],
        num_classes: variant.num_classes(),
        class_names: class_names(dir, variant),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One record: labels then pixels with value (seed + j) % 251.
    pub(crate) fn record(label_bytes: &[u8], seed: usize) -> Vec<u8> {
        let mut v = label_bytes.to_vec();
        v.extend((0..IMAGE_BYTES).map(|j| ((seed + j) % 251) as u8));
        v
    }

    /// Writes a tiny CIFAR-10 copy (3 records per file) to `dir`.
    pub(crate) fn write_cifar10(dir: &Path) {
        for (k, f) in Variant::Cifar10
            .split_files(Split::Train)
            .iter()
            .chain(Variant::Cifar10.split_files(Split::Test))
            .enumerate()
        {
            let mut b = Vec::new();
            for r in 0..3 {
                b.extend(record(&[((k * 3 + r) % 10) as u8], k * 3 + r));
            }
            std::fs::write(dir.join(f), b).unwrap();
        }
    }

    #[test]
    fn cifar10_small_files() {
        let dir = tempfile::tempdir().unwrap();
        write_cifar10(dir.path());
        assert!(has_split(dir.path(), Variant::Cifar10, Split::Train));
        let train = load_dir(dir.path(), Variant::Cifar10, Split::Train).unwrap();
        assert_eq!(train.len(), 15);
        assert_eq!(train.shape, [3, 32, 32]);
        assert_eq!(train.labels, (0..15).map(|i| (i % 10) as u16).collect::<Vec<_>>());
        for i in 0..15 {
            assert_eq!(train.image(i), &record(&[], i)[..]);
        }
        assert_eq!(train.class_names[0], "airplane");
        let test = load_dir(dir.path(), Variant::Cifar10, Split::Test).unwrap();
        assert_eq!(test.labels, vec![5, 6, 7]);
        assert_eq!(test.image(2), &record(&[], 17)[..]);

        std::fs::write(dir.path().join("batches.meta.txt"), "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n").unwrap();
        let test = load_dir(dir.path(), Variant::Cifar10, Split::Test).unwrap();
        assert_eq!(test.class_names[9], "j");
    }

    #[test]
    fn cifar100_small_files_use_fine_labels() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Vec::new();
        for (r, (coarse, fine)) in [(3u8, 99u8), (19, 0), (0, 42)].iter().enumerate() {
            b.extend(record(&[*coarse, *fine], r));
        }
        std::fs::write(dir.path().join("train.bin"), &b).unwrap();
        std::fs::write(dir.path().join("test.bin"), record(&[1, 7], 100)).unwrap();
        let train = load_dir(dir.path(), Variant::Cifar100, Split::Train).unwrap();
        assert_eq!(train.labels, vec![99, 0, 42]);
        assert_eq!(train.num_classes, 100);
        assert_eq!(train.class_names.len(), 100);
        assert_eq!(train.class_names[99], "worm");
        assert_eq!(train.image(1), &record(&[], 1)[..]);
        let test = load_dir(dir.path(), Variant::Cifar100, Split::Test).unwrap();
        assert_eq!(test.labels, vec![7]);
        assert_eq!(test.image(0), &record(&[], 100)[..]);
    }

    fn corrupt(e: DatasetError) -> (PathBuf, u64, String) {
        match e {
            DatasetError::Corrupt { path, offset, reason } => (path, offset, reason),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn truncated_and_bad_labels_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        write_cifar10(dir.path());
        let p = dir.path().join("data_batch_3.bin");
        let mut b = std::fs::read(&p).unwrap();
        b.truncate(2 * CIFAR10_RECORD + 100);
        std::fs::write(&p, &b).unwrap();
        let err = load_dir(dir.path(), Variant::Cifar10, Split::Train).unwrap_err();
        assert!(err.to_string().contains("data_batch_3.bin"), "{err}");
        let (path, offset, reason) = corrupt(err);
        assert_eq!(path, p);
        assert_eq!(offset, 2 * CIFAR10_RECORD as u64);
        assert!(reason.contains("incomplete record"), "{reason}");

        let mut b = Vec::new();
        b.extend(record(&[1], 0));
        b.extend(record(&[10], 1));
        std::fs::write(&p, &b).unwrap();
        let (_, offset, reason) = corrupt(load_dir(dir.path(), Variant::Cifar10, Split::Train).unwrap_err());
        assert_eq!(offset, CIFAR10_RECORD as u64);
        assert!(reason.contains("out of range"), "{reason}");

        let p = dir.path().join("test.bin");
        let mut b = record(&[0, 1], 0);
        b.extend(record(&[2, 100], 0));
        std::fs::write(&p, &b).unwrap();
        let (_, offset, _) = corrupt(load_dir(dir.path(), Variant::Cifar100, Split::Test).unwrap_err());
        assert_eq!(offset, CIFAR100_RECORD as u64);
        std::fs::write(&p, record(&[20, 1], 0)).unwrap();
        let (_, offset, reason) = corrupt(load_dir(dir.path(), Variant::Cifar100, Split::Test).unwrap_err());
        assert_eq!(offset, 0);
        assert!(reason.contains("coarse"), "{reason}");
        std::fs::write(&p, b"").unwrap();
        assert_eq!(corrupt(load_dir(dir.path(), Variant::Cifar100, Split::Test).unwrap_err()).1, 0);
    }
}
