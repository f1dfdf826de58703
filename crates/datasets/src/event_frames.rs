//! Event-camera data already integrated into frames by SpikingJelly: CIFAR10-DVS.
//!
//! # Layout
//! ```text
//! <dir>/frames_number_<T>_split_by_number/<class>/<sample>.npz
//! ```
//! `<dir>` is one of [`DataRoot::candidates`]`("cifar10-dvs")` (`cifar10-dvs/`, `CIFAR10-DVS/`,
//! `cifar10_dvs/` or `CIFAR10DVS/` under each data root): the `root` given to SpikingJelly's
//! `CIFAR10DVS(root, data_type='frame', frames_number=T, split_by='number')`, which writes that
//! folder. The first candidate whose `frames_number_<T>_split_by_number/` has class folders is
//! used.
//!
//! Each `.npz` (written by `np.savez_compressed`, DEFLATE members; `np.savez`'s stored members
//! are read too) holds `frames.npy`: a `[T, 2, H, W]` array (T frames, 2 polarity channels,
//! `H`×`W` pixels: 128×128 for CIFAR10-DVS) of event counts. SpikingJelly writes `float64`;
//! every `.npy` numeric type that [`crate::npy`] reads is accepted (little-endian, C order) and
//! converted to `f32`. All files must have the same shape, and `T` must be the one of the
//! folder name.
//!
//! Classes are the class folder names in sorted order (label = index; CIFAR10-DVS must have
//! exactly 10: airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck). Within a
//! class folder the `.npz` files are taken in sorted file-name order; other files and hidden
//! entries are ignored, and a class folder without any `.npz` is an error.
//!
//! # Split
//! CIFAR10-DVS has no official train/test split. The common 9:1 split per class is used: of a
//! class's `n` files (sorted order) the first `ceil(0.9 n)` are [`Split::Train`] and the rest
//! [`Split::Test`], which is what SpikingJelly's
//! `split_to_train_test_set(0.9, dataset, 10, random_split=False)` gives (900 / 100 per class).
//!
//! # Memory
//! The split is loaded eagerly as `f32`: `T · 2 · H · W · 4` bytes per sample, 1.25 MiB at
//! T = 10 and 128×128, so the 9 000 training samples need about 11.8 GB and the 1 000 test
//! samples 1.3 GB. [`EventFrameOptions::max_per_class`] keeps only the first files of each
//! class of the split. When the buffer cannot be allocated the load fails with
//! [`DatasetError::InvalidOptions`] before any file is decoded. Files are decoded on all cores
//! (rayon).

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::{DatasetError, missing_hint_with};
use crate::image::{Fnv1a, class_counts, gather_samples};
use crate::npy;
use crate::{DataRoot, Split};

/// Dataset name of CIFAR10-DVS (as in [`crate::EVENT_DATASET_NAMES`]).
pub const NAME: &str = "cifar10-dvs";

/// CIFAR10-DVS class names, in label order (the sorted class folder names).
pub const CIFAR10_DVS_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// The `.npz` member holding the frames.
pub const FRAMES_MEMBER: &str = "frames.npy";

/// Polarity channels per frame (ON and OFF events).
pub const CHANNELS: usize = 2;

/// Largest accepted frame count.
pub const MAX_FRAMES: usize = 1 << 16;

/// Fraction of each class (numerator over 10) that goes to the training split.
const TRAIN_TENTHS: usize = 9;

/// Name of SpikingJelly's folder of `T`-frame samples: `frames_number_<T>_split_by_number`.
pub fn frames_folder(frames: usize) -> String {
    format!("frames_number_{frames}_split_by_number")
}

/// How many of a class's `n` files (sorted order) belong to the training split:
/// `ceil(0.9 n)`; the rest are the test split.
pub fn train_count(n: usize) -> usize {
    (n * TRAIN_TENTHS).div_ceil(10)
}

/// Subset options of an event-frame set. Defaults: every file of the split.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventFrameOptions {
    /// Load at most this many samples per class: the first ones of the class's part of the
    /// split, in sorted file order. `None` loads the whole split.
    pub max_per_class: Option<usize>,
}

/// Labelled event-frame samples, each `[frames, channels, height, width]`, stored C order:
/// `data` is `[n, frames, channels, height, width]`, sample `i` at
/// `data[i * sample_len() .. (i + 1) * sample_len()]`, and within a sample the value of frame
/// `t`, polarity `c`, row `y`, column `x` at `((t * channels + c) * height + y) * width + x`.
#[derive(Clone, Debug)]
pub struct EventFrameSet {
    /// Dataset name, `"cifar10-dvs"`.
    pub name: String,
    /// Frames per sample (`T`).
    pub frames: usize,
    /// Polarity channels per frame (2).
    pub channels: usize,
    /// Frame height in pixels.
    pub height: usize,
    /// Frame width in pixels.
    pub width: usize,
    /// `n * frames * channels * height * width` values (event counts as `f32`).
    pub data: Vec<f32>,
    /// One label per sample, each `< num_classes`.
    pub labels: Vec<u16>,
    /// Number of classes of the dataset (not only those present in this set).
    pub num_classes: usize,
    /// Class names (the class folder names), `num_classes` of them.
    pub class_names: Vec<String>,
}

impl EventFrameSet {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the set holds no sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Shape of one sample, `[frames, channels, height, width]`.
    pub fn sample_shape(&self) -> [usize; 4] {
        [self.frames, self.channels, self.height, self.width]
    }

    /// Number of values of one sample (`frames * channels * height * width`).
    pub fn sample_len(&self) -> usize {
        self.frames * self.channels * self.height * self.width
    }

    /// Values of sample `i` (`[frames, channels, height, width]`, C order).
    ///
    /// # Panics
    /// If `i >= self.len()`, like slice indexing.
    pub fn sample(&self, i: usize) -> &[f32] {
        let n = self.sample_len();
        &self.data[i * n..(i + 1) * n]
    }

    /// A new set holding the samples at `indices`, in that order (repeats allowed).
    ///
    /// # Panics
    /// If an index is out of range, like slice indexing.
    pub fn subset(&self, indices: &[usize]) -> EventFrameSet {
        let (data, labels) = gather_samples(&self.data, &self.labels, self.sample_len(), indices);
        EventFrameSet { data, labels, class_names: self.class_names.clone(), name: self.name.clone(), ..*self }
    }

    /// Number of samples of each class (`num_classes` entries).
    pub fn class_counts(&self) -> Vec<usize> {
        class_counts(&self.labels, self.num_classes)
    }

    /// Short stable fingerprint (hex of a 64-bit FNV-1a of the sample shape, class count,
    /// labels and value bit patterns), in the style of [`crate::PointCloudSet::fingerprint`].
    pub fn fingerprint(&self) -> String {
        let mut h = Fnv1a::new();
        h.write(b"event-frames");
        for d in self.sample_shape() {
            h.write(&(d as u64).to_le_bytes());
        }
        h.write(&(self.num_classes as u64).to_le_bytes());
        h.write(&(self.labels.len() as u64).to_le_bytes());
        for &l in &self.labels {
            h.write(&l.to_le_bytes());
        }
        for &v in &self.data {
            h.write(&v.to_bits().to_le_bytes());
        }
        format!("{:016x}", h.finish())
    }
}

fn invalid(reason: String) -> DatasetError {
    DatasetError::InvalidOptions { dataset: NAME.to_string(), reason }
}

fn check_request(frames: usize, opts: &EventFrameOptions) -> Result<(), DatasetError> {
    if frames == 0 || frames > MAX_FRAMES {
        return Err(invalid(format!("frames {frames} is outside 1..={MAX_FRAMES}")));
    }
    if opts.max_per_class == Some(0) {
        return Err(invalid("max_per_class must be at least 1 (or absent for the whole split)".into()));
    }
    Ok(())
}

fn is_hidden(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// Sorted visible entries of `dir` that satisfy `keep`.
fn sorted_entries(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>, DatasetError> {
    let rd = std::fs::read_dir(dir).map_err(|source| DatasetError::Io { path: dir.to_path_buf(), source })?;
    let mut v = Vec::new();
    for e in rd {
        let p = e.map_err(|source| DatasetError::Io { path: dir.to_path_buf(), source })?.path();
        if !is_hidden(&p) && keep(&p) {
            v.push(p);
        }
    }
    v.sort();
    Ok(v)
}

fn has_class_folders(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| rd.flatten().any(|e| !is_hidden(&e.path()) && e.path().is_dir()))
}

/// The `frames_number_*_split_by_number` folders of `dir`, with their frame counts, sorted.
fn available_frame_counts(dir: &Path) -> Vec<usize> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut v: Vec<usize> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("frames_number_")?.strip_suffix("_split_by_number")?.parse().ok()
        })
        .collect();
    v.sort_unstable();
    v
}

/// The folder [`load_event_frames`] reads `frames`-frame samples from
/// (`<candidate>/frames_number_<T>_split_by_number`), or [`DatasetError::Missing`] listing every
/// folder looked at, the frame counts that are available instead, and how to make the folder.
pub fn locate_event_frames(root: &DataRoot, frames: usize) -> Result<PathBuf, DatasetError> {
    check_request(frames, &EventFrameOptions::default())?;
    let folder = frames_folder(frames);
    let mut searched = Vec::new();
    let mut other = Vec::new();
    for cand in root.candidates(NAME) {
        let dir = cand.join(&folder);
        if has_class_folders(&dir) {
            return Ok(dir);
        }
        for t in available_frame_counts(&cand) {
            if t != frames {
                other.push(format!("{} ({t} frames)", cand.join(frames_folder(t)).display()));
            }
        }
        searched.push(dir);
    }
    let how = format!(
        "let SpikingJelly download CIFAR10-DVS and integrate it into {frames} frames per sample: `python -c \
         \"from spikingjelly.datasets.cifar10_dvs import CIFAR10DVS; CIFAR10DVS('datasets/cifar10-dvs', \
         data_type='frame', frames_number={frames}, split_by='number')\"` writes \
         `datasets/cifar10-dvs/{folder}/<class>/*.npz` (scripts/fetch-datasets.sh does not fetch it)"
    );
    let mut hint = missing_hint_with(
        &format!("`{folder}/<class>/*.npz` (SpikingJelly frames, {frames} per sample, split by number)"),
        &how,
    );
    if !other.is_empty() {
        hint.push_str(&format!("\nFrames with other counts exist: {}.", other.join(", ")));
    }
    Err(DatasetError::Missing { dataset: NAME.to_string(), searched, hint })
}

/// Loads `split` of CIFAR10-DVS integrated into `frames` frames per sample, from the first
/// candidate directory that holds SpikingJelly's `frames_number_<frames>_split_by_number/`
/// (see the module docs for the layout, the 9:1 split and memory use).
pub fn load_event_frames(root: &DataRoot, frames: usize, split: Split) -> Result<EventFrameSet, DatasetError> {
    load_event_frames_with(root, frames, split, &EventFrameOptions::default())
}

/// [`load_event_frames`] with subset options.
pub fn load_event_frames_with(
    root: &DataRoot,
    frames: usize,
    split: Split,
    opts: &EventFrameOptions,
) -> Result<EventFrameSet, DatasetError> {
    check_request(frames, opts)?;
    let dir = locate_event_frames(root, frames)?;
    load_frames_dir(&dir, frames, split, opts)
}

/// Class names, and the files of a split with their labels.
type SplitFiles = (Vec<String>, Vec<(PathBuf, u16)>);

/// Files of `split` with their labels, and the class names, of a frames folder.
fn split_files(dir: &Path, split: Split, max_per_class: Option<usize>) -> Result<SplitFiles, DatasetError> {
    let class_dirs = sorted_entries(dir, |p| p.is_dir())?;
    if class_dirs.len() != CIFAR10_DVS_CLASSES.len() {
        let names: Vec<String> =
            class_dirs.iter().map(|d| d.file_name().unwrap_or_default().to_string_lossy().into_owned()).collect();
        return Err(DatasetError::Layout {
            path: dir.to_path_buf(),
            reason: format!(
                "expected {} class folders for {NAME}, found {}: {}",
                CIFAR10_DVS_CLASSES.len(),
                names.len(),
                names.join(", ")
            ),
        });
    }
    let mut classes = Vec::with_capacity(class_dirs.len());
    let mut files = Vec::new();
    for (label, class_dir) in class_dirs.iter().enumerate() {
        let all =
            sorted_entries(class_dir, |p| p.is_file() && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz")))?;
        if all.is_empty() {
            return Err(DatasetError::Layout {
                path: class_dir.clone(),
                reason: "the class folder holds no .npz file".into(),
            });
        }
        let cut = train_count(all.len());
        let part = match split {
            Split::Train => &all[..cut],
            Split::Test => &all[cut..],
        };
        let take = part.len().min(max_per_class.unwrap_or(usize::MAX));
        files.extend(part[..take].iter().map(|p| (p.clone(), label as u16)));
        classes.push(class_dir.file_name().unwrap_or_default().to_string_lossy().into_owned());
    }
    Ok((classes, files))
}

/// Reads `frames.npy` of one `.npz` into `out` (which has the expected sample length) after
/// checking its shape against `expect`; non-finite values are an error.
fn read_sample(path: &Path, expect: &[usize; 4], first: &Path, out: &mut [f32]) -> Result<(), DatasetError> {
    let bytes = npy::read_npz_member(path, FRAMES_MEMBER)?;
    let array = npy::parse(&bytes, path, Some(FRAMES_MEMBER))?;
    if array.shape != expect {
        return Err(DatasetError::Malformed {
            path: path.to_path_buf(),
            location: format!("member `{FRAMES_MEMBER}`, header field shape"),
            reason: format!(
                "shape {} differs from {} of {} (all samples must have the same shape)",
                npy::shape_str(&array.shape),
                npy::shape_str(expect),
                first.display()
            ),
        });
    }
    array.read_f32_into(out);
    if let Some(k) = out.iter().position(|v| !v.is_finite()) {
        return Err(DatasetError::Corrupt {
            path: path.to_path_buf(),
            offset: (array.data_offset + k * array.dtype.size()) as u64,
            reason: format!("member `{FRAMES_MEMBER}`: element {k} is not a finite number"),
        });
    }
    Ok(())
}

/// Shape `[T, 2, H, W]` of the first sample, checked against the requested frame count.
fn first_shape(path: &Path, frames: usize) -> Result<[usize; 4], DatasetError> {
    let bytes = npy::read_npz_member(path, FRAMES_MEMBER)?;
    let array = npy::parse(&bytes, path, Some(FRAMES_MEMBER))?;
    let bad = |reason: String| DatasetError::Malformed {
        path: path.to_path_buf(),
        location: format!("member `{FRAMES_MEMBER}`, header field shape"),
        reason,
    };
    let &[t, c, h, w] = array.shape.as_slice() else {
        return Err(bad(format!("expected 4 dimensions [T, 2, H, W], found shape {}", npy::shape_str(&array.shape))));
    };
    if t != frames {
        return Err(bad(format!(
            "shape {} has {t} frames, but the folder {} holds {frames}-frame samples",
            npy::shape_str(&array.shape),
            frames_folder(frames)
        )));
    }
    if c != CHANNELS {
        return Err(bad(format!(
            "shape {} has {c} channels, expected {CHANNELS} polarities [T, 2, H, W]",
            npy::shape_str(&array.shape)
        )));
    }
    if h == 0 || w == 0 {
        return Err(bad(format!("shape {} has an empty frame", npy::shape_str(&array.shape))));
    }
    Ok([t, c, h, w])
}

/// Loads `split` from a frames folder `dir` (`.../frames_number_<frames>_split_by_number`, with
/// the 10 class folders of CIFAR10-DVS).
pub fn load_frames_dir(
    dir: &Path,
    frames: usize,
    split: Split,
    opts: &EventFrameOptions,
) -> Result<EventFrameSet, DatasetError> {
    check_request(frames, opts)?;
    let (classes, files) = split_files(dir, split, opts.max_per_class)?;
    let Some((first, _)) = files.first() else {
        return Err(DatasetError::Layout {
            path: dir.to_path_buf(),
            reason: format!(
                "the {split} split is empty (with the 9:1 split per class, a class needs at least 2 files to have a \
                 test sample)"
            ),
        });
    };
    let shape = first_shape(first, frames)?;
    let per = shape.iter().product::<usize>();
    let total = files.len().checked_mul(per);
    let mut data: Vec<f32> = Vec::new();
    if total.is_none_or(|t| data.try_reserve_exact(t).is_err()) {
        return Err(invalid(format!(
            "cannot allocate {:.1} GB for {} samples of shape {} as f32 (the split is held in memory); set \
             max_per_class to load fewer samples",
            files.len() as f64 * per as f64 * 4.0 / 1e9,
            files.len(),
            npy::shape_str(&shape)
        )));
    }
    data.resize(files.len() * per, 0.0);
    data.par_chunks_mut(per)
        .zip(files.par_iter())
        .try_for_each(|(out, (path, _))| read_sample(path, &shape, first, out))?;
    Ok(EventFrameSet {
        name: NAME.to_string(),
        frames,
        channels: CHANNELS,
        height: shape[2],
        width: shape[3],
        data,
        labels: files.iter().map(|(_, l)| *l).collect(),
        num_classes: classes.len(),
        class_names: classes,
    })
}
