//! Error type of the crate.

use std::fmt::Write as _;
use std::path::PathBuf;

/// Everything that can go wrong while locating, reading or decoding a data set.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The dataset name is not one of [`crate::DATASET_NAMES`] (images) or
    /// [`crate::POINT_DATASET_NAMES`] (point clouds), whichever the loader accepts.
    #[error("unknown dataset `{name}`; valid names are: {valid}")]
    UnknownDataset {
        /// The name that was asked for.
        name: String,
        /// Comma-separated list of the valid names.
        valid: String,
    },
    /// No candidate directory holds the dataset's files.
    #[error("dataset `{dataset}` not found; looked in:\n{}{hint}", list_paths(searched))]
    Missing {
        /// Name of the dataset that was asked for.
        dataset: String,
        /// Every directory that was looked at, in search order.
        searched: Vec<PathBuf>,
        /// How to obtain the dataset (fetch script, packages, `--data-dir`/`SNN_DATA_DIR`).
        hint: String,
    },
    /// A file exists but its content is not valid for its format.
    #[error("corrupt data file {}: at byte offset {offset}: {reason}", path.display())]
    Corrupt {
        /// The offending file.
        path: PathBuf,
        /// Byte offset where the problem is (in the decompressed stream for `.gz` files).
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Options of a procedural dataset are out of range (e.g. `image_size` 0).
    #[error("invalid options for dataset `{dataset}`: {reason}")]
    InvalidOptions {
        /// Name of the dataset.
        dataset: String,
        /// What is wrong.
        reason: String,
    },
    /// A text file or a text header is malformed (point-cloud formats: PCD, OFF, ModelNet
    /// text files), or a structured file lacks an expected field or dataset.
    #[error("malformed file {}: {location}: {reason}", path.display())]
    Malformed {
        /// The offending file.
        path: PathBuf,
        /// Where in the file, e.g. `line 3`, `header field WIDTH` or `dataset "data"`.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// A file is in a known format but uses a feature this build cannot read (e.g. PCD
    /// `DATA binary_compressed`, or HDF5 in a build without the `hdf5` feature).
    #[error("unsupported file {}: {reason}", path.display())]
    Unsupported {
        /// The offending file.
        path: PathBuf,
        /// What is not supported and how to work around it.
        reason: String,
    },
    /// A directory holds the dataset's files, but not in a consistent layout (e.g. the wrong
    /// number of class folders, or a split file naming a shape that does not exist).
    #[error("unexpected dataset layout in {}: {reason}", path.display())]
    Layout {
        /// The directory (or index file) that is inconsistent.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file or folder of an image-folder dataset (ImageNet) is unusable: an image that
    /// cannot be decoded, a class folder without images.
    #[error("bad image folder entry {}: {reason}", path.display())]
    ImageFolder {
        /// The offending file or folder.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An I/O error while reading a file.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or directory being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn list_paths(paths: &[PathBuf]) -> String {
    let mut out = String::new();
    if paths.is_empty() {
        out.push_str("  (no candidate directories)\n");
    }
    for p in paths {
        let _ = writeln!(out, "  - {}", p.display());
    }
    out
}

/// Builds the "how to get it" hint of a [`DatasetError::Missing`] error.
///
/// `expected` describes the files that a directory must contain to count.
pub(crate) fn missing_hint(dataset: &str, expected: &str) -> String {
    let mut how = String::new();
    if dataset == "shapenet-part" {
        how.push_str(
            "download PointNet++'s `shapenetcore_partanno_segmentation_benchmark_v0_normal.zip` \
             (https://shapenet.cs.stanford.edu/media/shapenetcore_partanno_segmentation_benchmark_v0_normal.zip, \
             or a mirror of the same archive) and unzip it into the data root, which gives \
             `shapenetcore_partanno_segmentation_benchmark_v0_normal/` (scripts/fetch-datasets.sh does not fetch it)",
        );
    } else {
        let _ =
            write!(how, "run `scripts/fetch-datasets.sh {dataset}` (downloads into $SNN_DATA_DIR, default ./datasets)");
    }
    if dataset == "imagenet" {
        how.push_str(
            "; ImageNet needs a manual download from image-net.org, which the script cannot do: \
             it prints the preparation steps",
        );
    }
    if dataset == "fashion-mnist" {
        how.push_str(", or `apt-get install dataset-fashion-mnist` (installs /usr/share/datasets/fashion-mnist)");
    }
    missing_hint_with(expected, &how)
}

/// [`missing_hint`] with the "To get it" instructions `how` given by the caller.
pub(crate) fn missing_hint_with(expected: &str, how: &str) -> String {
    format!(
        "a directory counts only if it contains {expected}.\nTo get it: {how}.\nIf you already have a copy, pass \
         --data-dir DIR or set SNN_DATA_DIR=DIR (see datasets/README.md for the expected layout)."
    )
}
