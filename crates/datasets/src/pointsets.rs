//! File-backed point-cloud datasets (ModelNet10, ModelNet40, ScanObjectNN, ShapeNetPart):
//! where they are looked for, which layouts are accepted, and how samples are prepared.
//!
//! # Search
//! For each directory `D` of [`DataRoot::candidates`] (in order) the loader looks at `D` and at
//! those of its sub-directories `pcd/`, `ModelNet10/pcd/` (`ModelNet40/pcd/`), `ModelNet10/`
//! (`ModelNet40/`), `modelnet40_normal_resampled/` and `modelnet40_ply_hdf5_2048/` (ScanObjectNN:
//! `h5_files/`; ShapeNetPart: `shapenetcore_partanno_segmentation_benchmark_v0_normal/`) that
//! exist, and uses the first that holds the requested split in one of the layouts below (tried
//! in this order; ShapeNetPart has only its own, see [`crate::shapenet_part`]):
//!
//! 1. **PCD class folders**: `<class>/<split>/*.pcd`, classes = the sub-directories that have a
//!    `train/` or `test/` folder with `.pcd` files, sorted by name (label = rank).
//! 2. **OFF class folders** (official ModelNet meshes): `<class>/<split>/*.off`, same rules.
//! 3. **Text layout** (`modelnet40_normal_resampled`): `modelnetNN_shape_names.txt` (class per
//!    line, label = line order), `modelnetNN_<split>.txt` (one shape id such as
//!    `night_stand_0001` per line) and `<class>/<id>.txt` with `x,y,z[,nx,ny,nz]` per line.
//! 4. **HDF5** (ModelNet40 only): `ply_data_<split>0.h5`, `ply_data_<split>1.h5`, … with
//!    optional `shape_names.txt`. ScanObjectNN: `<variant dir>/<training|test>_objectdataset<suffix>.h5`.
//!
//! # Samples
//! Every sample ends up with exactly `num_points` points, centred on its centroid and scaled to
//! the unit sphere. Reduction of larger clouds: PCD files — a seeded random subset (kept in file
//! order), since PCD files may be in scan order; text and HDF5 files — the first `num_points`
//! points, since those files are already random samples (this is what the reference
//! PointNet/PointNet++/DGCNN loaders do); OFF meshes — `num_points` area-weighted seeded
//! surface samples; ShapeNetPart files — a seeded random subset, like PCD. Clouds with fewer
//! points are repeated cyclically. All seeds derive from
//! ([`PointOptions::seed`], split, index of the file in the full sorted split list), so a
//! sample's points do not depend on `train_size`/`test_size`.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::error::{DatasetError, missing_hint};
use crate::pointcloud::{PointCloudSet, Reduce, fit_points, normalize_unit_sphere};
use crate::rng::{Rng, derive_seed, sample_indices};
use crate::{DataRoot, PointOptions, Split};

/// ModelNet10 class names (alphabetical, label = index).
pub const MODELNET10_CLASSES: [&str; 10] =
    ["bathtub", "bed", "chair", "desk", "dresser", "monitor", "night_stand", "sofa", "table", "toilet"];

/// ModelNet40 class names (alphabetical, label = index; as in `shape_names.txt`).
pub const MODELNET40_CLASSES: [&str; 40] = [
    "airplane",
    "bathtub",
    "bed",
    "bench",
    "bookshelf",
    "bottle",
    "bowl",
    "car",
    "chair",
    "cone",
    "cup",
    "curtain",
    "desk",
    "door",
    "dresser",
    "flower_pot",
    "glass_box",
    "guitar",
    "keyboard",
    "lamp",
    "laptop",
    "mantel",
    "monitor",
    "night_stand",
    "person",
    "piano",
    "plant",
    "radio",
    "range_hood",
    "sink",
    "sofa",
    "stairs",
    "stool",
    "table",
    "tent",
    "toilet",
    "tv_stand",
    "vase",
    "wardrobe",
    "xbox",
];

/// ScanObjectNN class names in label order (as in the dataset's `shape_names.txt`).
pub const SCANOBJECTNN_CLASSES: [&str; 15] = [
    "bag", "bin", "box", "cabinet", "chair", "desk", "display", "door", "shelf", "table", "bed", "pillow", "sink",
    "sofa", "toilet",
];

/// ScanObjectNN variants: (option value, directory, file-name suffix). `pb_t50_rs` is the
/// hardest and most reported one (`main_split/*_objectdataset_augmentedrot_scale75.h5`).
pub const SCANOBJECTNN_VARIANTS: [(&str, &str, &str); 6] = [
    ("obj_bg", "main_split", ""),
    ("obj_only", "main_split_nobg", ""),
    ("pb_t25", "main_split", "_augmented25_norot"),
    ("pb_t25_r", "main_split", "_augmented25rot"),
    ("pb_t50_r", "main_split", "_augmentedrot"),
    ("pb_t50_rs", "main_split", "_augmentedrot_scale75"),
];

/// Class count of a file-backed dataset.
fn num_classes(name: &str) -> usize {
    match name {
        "modelnet10" => 10,
        "modelnet40" => 40,
        crate::shapenet_part::NAME => crate::shapenet_part::CATEGORIES.len(),
        _ => 15,
    }
}

/// Sub-directories of a candidate directory that are probed (after the directory itself).
fn nestings(name: &str) -> &'static [&'static str] {
    match name {
        "modelnet10" => &["pcd", "ModelNet10/pcd", "ModelNet10", "modelnet40_normal_resampled"],
        "modelnet40" => {
            &["pcd", "ModelNet40/pcd", "ModelNet40", "modelnet40_normal_resampled", "modelnet40_ply_hdf5_2048"]
        }
        crate::shapenet_part::NAME => &[crate::shapenet_part::RELEASE_DIR],
        _ => &["h5_files"],
    }
}

/// Stream number of a split (for seeds).
fn split_stream(split: Split) -> u64 {
    match split {
        Split::Train => 0x5043_5452_4149_4e31,
        Split::Test => 0x5043_5445_5354_3032,
    }
}

/// Seed of the sample at `index` of the full (sorted) list of a split.
pub(crate) fn sample_seed(seed: u64, split: Split, index: usize) -> u64 {
    derive_seed(derive_seed(seed, split_stream(split)), index as u64)
}

/// Which of `total` samples to keep: all when `limit` is 0 or at least `total`, else a seeded
/// subset of `limit` indices in ascending order.
pub(crate) fn select(total: usize, limit: usize, seed: u64, split: Split) -> Vec<usize> {
    if limit == 0 || limit >= total {
        return (0..total).collect();
    }
    sample_indices(total, limit, derive_seed(seed, split_stream(split) ^ 0x5355_4253_4554))
}

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> DatasetError {
    DatasetError::Io { path: path.to_path_buf(), source }
}

/// A directory layout that holds the requested split.
enum Layout {
    /// `<class>/<split>/*.<ext>`.
    ClassFolders { dir: PathBuf, ext: &'static str, classes: Vec<String>, files: Vec<(PathBuf, u16)> },
    /// `modelnetNN_*.txt` index files and `<class>/<id>.txt` point files.
    Text { dir: PathBuf, prefix: &'static str },
    /// `ply_data_<split>K.h5` files.
    ModelNetH5 { dir: PathBuf, files: Vec<PathBuf> },
    /// One ScanObjectNN file.
    ScanH5 { file: PathBuf },
    /// A ShapeNetPart release directory.
    ShapeNetPart { dir: PathBuf },
}

/// Sorted names of the entries of `dir` that satisfy `keep`, or `None` when `dir` is not a
/// readable directory.
fn sorted_entries(dir: &Path, keep: impl Fn(&Path) -> bool) -> Option<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).ok()?;
    let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| keep(p)).collect();
    v.sort();
    Some(v)
}

fn has_ext(p: &Path, ext: &str) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext)) && p.is_file()
}

/// Class folders of `dir` holding `.ext` files, and the files of `split`.
fn class_folders(dir: &Path, ext: &'static str, split: Split) -> Option<Layout> {
    let subdirs =
        sorted_entries(dir, |p| p.is_dir() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))?;
    let mut classes = Vec::new();
    let mut files = Vec::new();
    for c in subdirs {
        let list = |s: Split| sorted_entries(&c.join(s.as_str()), |p| has_ext(p, ext)).unwrap_or_default();
        let own = list(split);
        let other = if own.is_empty() {
            list(if split == Split::Train { Split::Test } else { Split::Train })
        } else {
            Vec::new()
        };
        if own.is_empty() && other.is_empty() {
            continue;
        }
        let label = classes.len() as u16;
        classes.push(c.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        files.extend(own.into_iter().map(|f| (f, label)));
    }
    if files.is_empty() {
        return None;
    }
    Some(Layout::ClassFolders { dir: dir.to_path_buf(), ext, classes, files })
}

fn detect(name: &str, dir: &Path, split: Split, opts: &PointOptions) -> Result<Option<Layout>, DatasetError> {
    if name == "scanobjectnn" {
        let (sub, suffix) = scan_variant(opts)?;
        let file = dir.join(sub).join(format!("{}_objectdataset{suffix}.h5", scan_prefix(split)));
        return Ok(file.is_file().then_some(Layout::ScanH5 { file }));
    }
    if name == crate::shapenet_part::NAME {
        let holds = crate::shapenet_part::holds_split(dir, split);
        return Ok(holds.then(|| Layout::ShapeNetPart { dir: dir.to_path_buf() }));
    }
    for ext in ["pcd", "off"] {
        if let Some(l) = class_folders(dir, ext, split) {
            return Ok(Some(l));
        }
    }
    let prefix = if name == "modelnet10" { "modelnet10" } else { "modelnet40" };
    if dir.join(format!("{prefix}_shape_names.txt")).is_file() && dir.join(format!("{prefix}_{split}.txt")).is_file() {
        return Ok(Some(Layout::Text { dir: dir.to_path_buf(), prefix }));
    }
    if name == "modelnet40" {
        let files: Vec<PathBuf> =
            (0..).map(|k| dir.join(format!("ply_data_{split}{k}.h5"))).take_while(|f| f.is_file()).collect();
        if !files.is_empty() {
            return Ok(Some(Layout::ModelNetH5 { dir: dir.to_path_buf(), files }));
        }
    }
    Ok(None)
}

fn scan_prefix(split: Split) -> &'static str {
    match split {
        Split::Train => "training",
        Split::Test => "test",
    }
}

/// (directory, file-name suffix) of the configured ScanObjectNN variant.
pub(crate) fn scan_variant(opts: &PointOptions) -> Result<(&'static str, &'static str), DatasetError> {
    let v = opts.scanobjectnn_variant.as_str();
    SCANOBJECTNN_VARIANTS.iter().find(|(n, _, _)| *n == v).map(|&(_, d, s)| (d, s)).ok_or_else(|| {
        DatasetError::InvalidOptions {
            dataset: "scanobjectnn".into(),
            reason: format!(
                "scanobjectnn_variant `{v}` is not one of: {}",
                SCANOBJECTNN_VARIANTS.iter().map(|v| v.0).collect::<Vec<_>>().join(", ")
            ),
        }
    })
}

/// What a directory must contain, for the Missing error.
fn expected(name: &str, split: Split, opts: &PointOptions) -> String {
    match name {
        "scanobjectnn" => match scan_variant(opts) {
            Ok((dir, suffix)) => format!(
                "`{dir}/{}_objectdataset{suffix}.h5` (ScanObjectNN variant `{}`; directly or under `h5_files/`)",
                scan_prefix(split),
                opts.scanobjectnn_variant
            ),
            Err(_) => "a ScanObjectNN HDF5 file".into(),
        },
        crate::shapenet_part::NAME => crate::shapenet_part::expected(split),
        _ => {
            let (nn, official) = if name == "modelnet10" { ("10", "ModelNet10") } else { ("40", "ModelNet40") };
            let mut s = format!(
                "class folders `<class>/{split}/*.pcd` or `<class>/{split}/*.off` (directly, or under `pcd/`, \
                 `{official}/pcd/` or `{official}/`), or the text layout `modelnet{nn}_shape_names.txt` + \
                 `modelnet{nn}_{split}.txt` + `<class>/<id>.txt` (directly or under `modelnet40_normal_resampled/`)"
            );
            if nn == "40" {
                s.push_str(&format!(", or `ply_data_{split}0.h5` … (directly or under `modelnet40_ply_hdf5_2048/`)"));
            }
            s
        }
    }
}

/// Finds the layout holding `split` of `name`, searching as described in the module docs.
fn find(name: &str, split: Split, root: &DataRoot, opts: &PointOptions) -> Result<Layout, DatasetError> {
    let mut searched: Vec<PathBuf> = Vec::new();
    let push = |p: &Path, searched: &mut Vec<PathBuf>| -> bool {
        if searched.iter().any(|s| s == p) {
            return false;
        }
        searched.push(p.to_path_buf());
        true
    };
    for cand in root.candidates(name) {
        if !push(&cand, &mut searched) || !cand.is_dir() {
            continue;
        }
        let mut probe = vec![cand.clone()];
        for nest in nestings(name) {
            let d = cand.join(nest);
            if d.is_dir() && push(&d, &mut searched) {
                probe.push(d);
            }
        }
        for dir in probe {
            if let Some(layout) = detect(name, &dir, split, opts)? {
                return Ok(layout);
            }
        }
    }
    Err(DatasetError::Missing {
        dataset: name.to_string(),
        searched,
        hint: missing_hint(name, &expected(name, split, opts)),
    })
}

/// The directory (ScanObjectNN: the HDF5 file) that [`load`] reads `split` of `name` from.
pub(crate) fn locate(name: &str, split: Split, root: &DataRoot, opts: &PointOptions) -> Result<PathBuf, DatasetError> {
    Ok(match find(name, split, root, opts)? {
        Layout::ClassFolders { dir, .. }
        | Layout::Text { dir, .. }
        | Layout::ModelNetH5 { dir, .. }
        | Layout::ShapeNetPart { dir } => dir,
        Layout::ScanH5 { file } => file,
    })
}

/// Loads a file-backed point dataset (`name` is one of modelnet10, modelnet40, scanobjectnn,
/// shapenet-part).
pub(crate) fn load(
    name: &str,
    split: Split,
    root: &DataRoot,
    opts: &PointOptions,
) -> Result<PointCloudSet, DatasetError> {
    match find(name, split, root, opts)? {
        Layout::ShapeNetPart { dir } => Ok(crate::shapenet_part::load_dir(&dir, split, opts)?.cloud),
        layout => load_layout(name, layout, split, opts),
    }
}

fn load_layout(name: &str, layout: Layout, split: Split, opts: &PointOptions) -> Result<PointCloudSet, DatasetError> {
    let k = num_classes(name);
    let n = opts.num_points;
    let limit = match split {
        Split::Train => opts.train_size,
        Split::Test => opts.test_size,
    };
    let (points, labels, class_names) = match layout {
        Layout::ClassFolders { dir, ext, classes, files } => {
            if classes.len() != k {
                return Err(DatasetError::Layout {
                    path: dir,
                    reason: format!(
                        "expected {k} class folders with `{ext}` files for {name}, found {}: {}",
                        classes.len(),
                        classes.join(", ")
                    ),
                });
            }
            let keep = select(files.len(), limit, opts.seed, split);
            let mut points = Vec::with_capacity(keep.len() * n * 3);
            let mut labels = Vec::with_capacity(keep.len());
            for i in keep {
                let (path, label) = &files[i];
                let seed = sample_seed(opts.seed, split, i);
                let mut s = if ext == "pcd" {
                    fit_points(&crate::pcd::read_pcd(path)?, n, Reduce::Random(seed))
                } else {
                    crate::off::read_off(path)?.sample_surface(n, &mut Rng::new(seed)).ok_or_else(|| {
                        DatasetError::Malformed {
                            path: path.clone(),
                            location: "faces".into(),
                            reason: "the mesh has no surface area to sample points from".into(),
                        }
                    })?
                };
                normalize_unit_sphere(&mut s);
                points.extend_from_slice(&s);
                labels.push(*label);
            }
            (points, labels, classes)
        }
        Layout::Text { dir, prefix } => load_text(&dir, prefix, k, split, limit, opts)?,
        Layout::ModelNetH5 { dir, files } => {
            let names_file = dir.join("shape_names.txt");
            let classes = if names_file.is_file() {
                read_names(&names_file, k)?
            } else {
                MODELNET40_CLASSES.iter().map(|s| s.to_string()).collect()
            };
            let (p, l) = read_h5(&files, k, split, limit, opts)?;
            (p, l, classes)
        }
        Layout::ScanH5 { file } => {
            let (p, l) = read_h5(&[file], k, split, limit, opts)?;
            (p, l, SCANOBJECTNN_CLASSES.iter().map(|s| s.to_string()).collect())
        }
        Layout::ShapeNetPart { dir } => return Ok(crate::shapenet_part::load_dir(&dir, split, opts)?.cloud),
    };
    Ok(PointCloudSet { name: name.to_string(), points, labels, num_points: n, num_classes: k, class_names })
}

fn read_h5(
    files: &[PathBuf],
    k: usize,
    split: Split,
    limit: usize,
    opts: &PointOptions,
) -> Result<(Vec<f32>, Vec<u16>), DatasetError> {
    let select = |total: usize| select(total, limit, opts.seed, split);
    crate::h5::read_clouds(&crate::h5::H5Request {
        files,
        num_classes: k,
        num_points: opts.num_points,
        select: &select,
    })
}

/// Non-empty trimmed lines of a text file, with their 1-based line numbers.
pub(crate) fn text_lines(path: &Path) -> Result<Vec<(usize, String)>, DatasetError> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .filter(|(_, l)| !l.is_empty())
        .collect())
}

/// Class names from a `shape_names.txt`-style file; there must be exactly `k`.
fn read_names(path: &Path, k: usize) -> Result<Vec<String>, DatasetError> {
    let names: Vec<String> = text_lines(path)?.into_iter().map(|(_, l)| l).collect();
    if names.len() != k {
        return Err(DatasetError::Layout {
            path: path.to_path_buf(),
            reason: format!("expected {k} class names, found {}", names.len()),
        });
    }
    Ok(names)
}

/// Points (point-major xyz), labels and class names of a loaded split.
type Loaded = (Vec<f32>, Vec<u16>, Vec<String>);

fn load_text(
    dir: &Path,
    prefix: &str,
    k: usize,
    split: Split,
    limit: usize,
    opts: &PointOptions,
) -> Result<Loaded, DatasetError> {
    let names_file = dir.join(format!("{prefix}_shape_names.txt"));
    let classes = read_names(&names_file, k)?;
    let list = dir.join(format!("{prefix}_{split}.txt"));
    let mut items = Vec::new();
    for (line, id) in text_lines(&list)? {
        let class = id.rsplit_once('_').map(|(c, _)| c).unwrap_or("");
        let Some(label) = classes.iter().position(|c| c == class) else {
            return Err(DatasetError::Layout {
                path: list.clone(),
                // either file may be the damaged one: name both
                reason: format!(
                    "line {line}: shape id `{id}` does not start with a class name of {} followed by `_NNNN`",
                    names_file.display()
                ),
            });
        };
        items.push((dir.join(class).join(format!("{id}.txt")), label as u16));
    }
    let keep = select(items.len(), limit, opts.seed, split);
    let mut points = Vec::with_capacity(keep.len() * opts.num_points * 3);
    let mut labels = Vec::with_capacity(keep.len());
    for i in keep {
        let (path, label) = &items[i];
        let raw = read_text_points(path, opts.num_points)?;
        let mut s = fit_points(&raw, opts.num_points, Reduce::First);
        normalize_unit_sphere(&mut s);
        points.extend_from_slice(&s);
        labels.push(*label);
    }
    Ok((points, labels, classes))
}

/// Reads up to `max` points from a text point file: one point per line, at least three
/// numbers separated by commas and/or whitespace (`x,y,z,nx,ny,nz` in
/// `modelnet40_normal_resampled`); only x, y, z are kept. Stops after `max` points.
pub fn read_text_points(path: &Path, max: usize) -> Result<Vec<f32>, DatasetError> {
    let f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let reader = std::io::BufReader::new(f);
    let mut out = Vec::with_capacity(max.min(1 << 20) * 3);
    let mut line = String::new();
    let mut reader = reader;
    let mut line_no = 0usize;
    while out.len() < max * 3 {
        line.clear();
        let read = reader.read_line(&mut line).map_err(|e| io_err(path, e))?;
        if read == 0 {
            break;
        }
        line_no += 1;
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        let mut toks = t.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty());
        for axis in ["x", "y", "z"] {
            let malformed = |reason: String| DatasetError::Malformed {
                path: path.to_path_buf(),
                location: format!("line {line_no}"),
                reason,
            };
            let tok = toks.next().ok_or_else(|| malformed(format!("expected x,y,z[,nx,ny,nz], missing {axis}")))?;
            let v = tok
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| malformed(format!("{axis} `{tok}` is not a finite number")))?;
            out.push(v);
        }
    }
    if out.is_empty() {
        return Err(DatasetError::Malformed {
            path: path.to_path_buf(),
            location: "line 1".into(),
            reason: "the file holds no points".into(),
        });
    }
    Ok(out)
}
