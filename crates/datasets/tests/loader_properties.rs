//! Property tests of every file loader: a valid small file in the real format, then random
//! truncations and byte flips (and, for text formats, runs of digits that inflate a number).
//! The property: the load returns (a panic fails the case), an error names the damaged file,
//! and a load that succeeds gives consistent data (counts agree with the shapes, labels below
//! the class count, finite coordinates on the unit sphere).
//!
//! The runs are deterministic: a fixed seed and [`CASES`] cases per property, no persistence
//! files. `PROPTEST_CASES=N` and `PROPTEST_RNG_SEED=S` explore further, e.g.
//! `PROPTEST_CASES=2000 cargo test -p datasets --test loader_properties`.

use std::path::{Path, PathBuf};

use datasets::cifar::{self, Variant};
use datasets::{DataRoot, DatasetError, PointCloudSet, PointOptions, Split, idx};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::RngSeed;

/// Cases per property. Each case writes and loads a handful of small files (well under 10 ms
/// in a debug build), and the header-count inflations that found the PCD bugs need about 150
/// cases at this seed, so every property runs 256.
const CASES: u32 = 256;

fn config() -> ProptestConfig {
    let env = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() { env.cases } else { CASES },
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() { env.rng_seed } else { RngSeed::Fixed(0x5eed) },
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..env
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations

/// One change to a file's bytes.
#[derive(Clone, Debug)]
enum Edit {
    /// Replace the byte at a position (anywhere, or in the "hot" structural bytes): binary
    /// formats XOR it with `value` (never 0), text formats set a syntax character or `value`.
    Flip { at: Index, hot: bool, value: u8, syntax: bool },
    /// Text formats: insert this many `9`s before a number (among those in the hot bytes, or
    /// anywhere), so that a count or a size grows huge.
    Digits { at: Index, hot: bool, count: usize },
}

/// Edits applied in order, then an optional truncation.
#[derive(Clone, Debug)]
struct Mutation {
    edits: Vec<Edit>,
    /// Keep strictly fewer bytes than the (edited) file has.
    truncate: Option<Index>,
}

/// Characters that matter to the text formats' parsers.
const SYNTAX: &[u8] = b"0123456789 \n\t\r,.-+eE#[]{}\"=:_/\\nafiOFPDxyz";

fn flip() -> impl Strategy<Value = Edit> + Clone {
    (any::<Index>(), any::<bool>(), 1u8..=255, any::<bool>()).prop_map(|(at, hot, value, syntax)| Edit::Flip {
        at,
        hot,
        value,
        syntax,
    })
}

/// Mostly among the hot numbers (header counts and sizes).
fn digits() -> impl Strategy<Value = Edit> {
    (any::<Index>(), prop::bool::weighted(0.75), 1usize..=20).prop_map(|(at, hot, count)| Edit::Digits {
        at,
        hot,
        count,
    })
}

/// A truncation, 1–8 flips, or both; text formats also: one or two inflated numbers.
fn mutation(text: bool) -> BoxedStrategy<Mutation> {
    let flips = proptest::collection::vec(flip(), 1..=8);
    let base = prop_oneof![
        any::<Index>().prop_map(|t| Mutation { edits: Vec::new(), truncate: Some(t) }),
        flips.clone().prop_map(|edits| Mutation { edits, truncate: None }),
        (flips, any::<Index>()).prop_map(|(edits, t)| Mutation { edits, truncate: Some(t) }),
    ];
    if text {
        let inflate = proptest::collection::vec(digits(), 1..=2).prop_map(|edits| Mutation { edits, truncate: None });
        prop_oneof![3 => base, 1 => inflate].boxed()
    } else {
        base.boxed()
    }
}

/// A file's bytes after `m`; `hot` are the positions where the format's structure lives
/// (headers, label bytes), targeted by the edits marked `hot`.
fn mutate(bytes: &[u8], m: &Mutation, hot: &[usize], text: bool) -> Vec<u8> {
    let mut b = bytes.to_vec();
    // starts of the digit runs (in the original bytes; later edits may shift them a little)
    let numbers = |among: &mut dyn Iterator<Item = usize>| -> Vec<usize> {
        among.filter(|&i| bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit())).collect()
    };
    let (hot_numbers, all_numbers) = (numbers(&mut hot.iter().copied()), numbers(&mut (0..bytes.len())));
    let pick = |b: &Vec<u8>, at: &Index, h: bool| -> Option<usize> {
        if b.is_empty() {
            return None;
        }
        let p = if h && !hot.is_empty() { hot[at.index(hot.len())] } else { at.index(b.len()) };
        Some(p.min(b.len() - 1))
    };
    for e in &m.edits {
        match e {
            Edit::Flip { at, hot: h, value, syntax } => {
                if let Some(p) = pick(&b, at, *h) {
                    b[p] = if text && *syntax { SYNTAX[usize::from(*value) % SYNTAX.len()] } else { b[p] ^ value };
                }
            }
            Edit::Digits { at, hot: h, count } => {
                let among = if *h && !hot_numbers.is_empty() { &hot_numbers } else { &all_numbers };
                let p = if among.is_empty() { pick(&b, at, false) } else { Some(among[at.index(among.len())]) };
                if let Some(p) = p {
                    let p = p.min(b.len());
                    b.splice(p..p, std::iter::repeat_n(b'9', *count));
                }
            }
        }
    }
    if let Some(t) = &m.truncate
        && !b.is_empty()
    {
        b.truncate(t.index(b.len()));
    }
    b
}

/// The error's message with its whole source chain.
fn full_message(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

/// The property on an error: its message names `file` (by file name).
fn names_file(e: &DatasetError, file: &Path) -> Result<(), TestCaseError> {
    let msg = full_message(e);
    let name = file.file_name().unwrap().to_string_lossy();
    prop_assert!(msg.contains(&*name), "the error does not name {name}: {msg}");
    Ok(())
}

/// Writes `bytes` mutated by `m` over `file`.
fn damage(file: &Path, bytes: &[u8], m: &Mutation, hot: &[usize], text: bool) {
    std::fs::write(file, mutate(bytes, m, hot, text)).unwrap();
}

/// A fresh scratch directory, in memory (`/dev/shm`) where there is one: each case writes and
/// removes a handful of files, which on a busy disk costs far more than the parsing.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    shm.is_dir().then(|| tempfile::tempdir_in(shm).ok()).flatten().unwrap_or_else(|| tempfile::tempdir().unwrap())
}

fn only(root: &Path) -> DataRoot {
    DataRoot { explicit: Some(root.to_path_buf()), env: None, project: root.join("no-project-dir") }
}

fn opts(num_points: usize) -> PointOptions {
    PointOptions { num_points, ..PointOptions::default() }
}

/// A loaded point set is consistent: sizes, labels, class names, finite coordinates within the
/// unit sphere.
fn check_cloud(set: &PointCloudSet, num_points: usize, num_classes: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(set.num_points, num_points);
    prop_assert_eq!(set.num_classes, num_classes);
    prop_assert_eq!(set.class_names.len(), num_classes);
    prop_assert_eq!(set.points.len(), set.len() * num_points * 3);
    prop_assert!(set.labels.iter().all(|&l| usize::from(l) < num_classes), "labels {:?}", set.labels);
    prop_assert!(set.points.iter().all(|v| v.is_finite()), "non-finite coordinate in a loaded set");
    for i in 0..set.len() {
        let r = set.sample(i).chunks(3).map(|p| p.iter().map(|v| v * v).sum::<f32>().sqrt()).fold(0f32, f32::max);
        prop_assert!(r <= 1.0 + 1e-4, "sample {} has radius {}", i, r);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Writers of valid small files

fn idx_images(n: u32, r: u32, c: u32) -> Vec<u8> {
    let mut v = idx::IMAGES_MAGIC.to_be_bytes().to_vec();
    for d in [n, r, c] {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend((0..n * r * c).map(|i| (i * 7 % 256) as u8));
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = idx::LABELS_MAGIC.to_be_bytes().to_vec();
    v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// CIFAR records: label byte(s), then 3072 pixels.
fn cifar_records(labels: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        v.extend_from_slice(l);
        v.extend((0..cifar::IMAGE_BYTES).map(|j| ((i * 31 + j) % 251) as u8));
    }
    v
}

/// Cloud `k`: 6 distinct points with coordinates that are multiples of 1/4.
fn cloud(k: usize) -> Vec<[f32; 3]> {
    (0..6).map(|j| [(k + j) as f32 * 0.25, (j * j) as f32 * 0.5 - 1.0, (k * 3 + j % 4) as f32 * 0.75]).collect()
}

/// A binary PCD v0.7 file as in the ModelNet10 copy; returns the bytes and the header length.
fn binary_pcd(points: &[[f32; 3]]) -> (Vec<u8>, usize) {
    let n = points.len();
    let mut out = format!(
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\n\
         COUNT 1 1 1\nWIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA binary\n"
    )
    .into_bytes();
    let header = out.len();
    for p in points {
        for v in p {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    (out, header)
}

/// An ASCII PCD file with an extra field; `minimal`: only the required header lines (no
/// COUNT, HEIGHT or POINTS: the point count is WIDTH). Returns the bytes and the header length.
fn ascii_pcd(points: &[[f32; 3]], minimal: bool) -> (Vec<u8>, usize) {
    let n = points.len();
    let mut out = if minimal {
        format!("FIELDS x y z intensity\nSIZE 4 4 4 2\nTYPE F F F U\nWIDTH {n}\nDATA ascii\n")
    } else {
        format!(
            "VERSION .7\nFIELDS x y z intensity\nSIZE 4 4 4 2\nTYPE F F F U\nCOUNT 1 1 1 1\nWIDTH {n}\nHEIGHT 1\n\
             POINTS {n}\nDATA ascii\n"
        )
    };
    let header = out.len();
    for (j, p) in points.iter().enumerate() {
        out.push_str(&format!("{} {} {} {j}\n", p[0], p[1], p[2]));
    }
    (out.into_bytes(), header)
}

/// A box of size `sx x 1 x 2` as an OFF file with quads (counts glued to the header when
/// `glued`, as in some official ModelNet files).
fn box_off(sx: f64, glued: bool) -> Vec<u8> {
    let mut s = String::from(if glued { "OFF8 6 0\n" } else { "OFF\n# a box\n8 6 0\n" });
    for i in 0..8 {
        let (x, y, z) = (((i & 1) as f64) * sx, (i >> 1 & 1) as f64, ((i >> 2 & 1) as f64) * 2.0);
        s.push_str(&format!("{x} {y} {z}\n"));
    }
    for f in ["4 0 1 3 2", "4 4 5 7 6", "4 0 1 5 4", "4 2 3 7 6", "4 0 2 6 4", "4 1 3 7 5"] {
        s.push_str(f);
        s.push('\n');
    }
    s.into_bytes()
}

const MODELNET10: [&str; 10] =
    ["bathtub", "bed", "chair", "desk", "dresser", "monitor", "night_stand", "sofa", "table", "toilet"];

/// `<dir>/<class>/test/<class>_0001.<ext>` for the ten ModelNet10 classes; returns the files.
fn class_tree(dir: &Path, ext: &str, mut file: impl FnMut(usize) -> Vec<u8>) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for (c, class) in MODELNET10.iter().enumerate() {
        let d = dir.join(class).join("test");
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(format!("{class}_0001.{ext}"));
        let bytes = file(c);
        std::fs::write(&p, &bytes).unwrap();
        out.push((p, bytes));
    }
    out
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

fn whole(bytes: &[u8]) -> Vec<usize> {
    (0..bytes.len()).collect()
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config())]

    /// MNIST-style IDX files, plain or gzip: damage the image file or the label file.
    #[test]
    fn idx_image_and_label_files(m in mutation(false), labels_file: bool, gzip: bool) {
        let tmp = scratch();
        let suffix = if gzip { ".gz" } else { "" };
        let img = tmp.path().join(format!("t10k-images-idx3-ubyte{suffix}"));
        let lbl = tmp.path().join(format!("t10k-labels-idx1-ubyte{suffix}"));
        let (imgs, lbls) = (idx_images(3, 4, 5), idx_labels(&[7, 0, 9]));
        let (target, plain, hot) = if labels_file { (&lbl, &lbls, 0..8) } else { (&img, &imgs, 0..16) };
        let other = if labels_file { (&img, &imgs) } else { (&lbl, &lbls) };
        let wrap = |b: &[u8]| if gzip { gz(b) } else { b.to_vec() };
        std::fs::write(other.0, wrap(other.1)).unwrap();
        // gzip: damage the compressed stream itself
        let bytes = wrap(plain);
        let hot: Vec<usize> = if gzip { whole(&bytes) } else { hot.collect() };
        damage(target, &bytes, &m, &hot, false);
        match idx::load_files(&img, &lbl, "mnist", &idx::MNIST_CLASSES) {
            Ok(set) => {
                let [c, h, w] = set.shape;
                prop_assert_eq!(c, 1);
                prop_assert_eq!(set.pixels.len(), set.labels.len() * h * w);
                prop_assert!(set.labels.iter().all(|&l| l < 10));
            }
            Err(e) => names_file(&e, target)?,
        }
    }

    /// CIFAR-10 and CIFAR-100 binary batches (test split).
    #[test]
    fn cifar_binary_batches(m in mutation(false), hundred: bool) {
        let tmp = scratch();
        let (variant, file, bytes) = if hundred {
            (Variant::Cifar100, "test.bin", cifar_records(&[&[3, 99], &[19, 0], &[0, 42]]))
        } else {
            (Variant::Cifar10, "test_batch.bin", cifar_records(&[&[3], &[9], &[0]]))
        };
        let rec = variant.record_size();
        let hot: Vec<usize> = (0..3).flat_map(|r| r * rec..r * rec + rec - cifar::IMAGE_BYTES).collect();
        let path = tmp.path().join(file);
        damage(&path, &bytes, &m, &hot, false);
        match cifar::load_dir(tmp.path(), variant, Split::Test) {
            Ok(set) => {
                prop_assert_eq!(set.pixels.len(), set.labels.len() * cifar::IMAGE_BYTES);
                prop_assert!(set.labels.iter().all(|&l| usize::from(l) < variant.num_classes()));
                prop_assert_eq!(set.class_names.len(), variant.num_classes());
            }
            Err(e) => names_file(&e, &path)?,
        }
    }

    /// PCD class folders (ModelNet10 layout): binary PCD, ASCII PCD, or ASCII PCD with only the
    /// required header lines; damage one class's file (hot: its header).
    #[test]
    fn pcd_class_folders(m in mutation(true), which: Index, kind in 0..3u8) {
        let tmp = scratch();
        let dir = tmp.path().join("modelnet10");
        let mut header = 0;
        let files = class_tree(&dir, "pcd", |c| {
            let (b, h) = if kind == 0 { binary_pcd(&cloud(c)) } else { ascii_pcd(&cloud(c), kind == 2) };
            header = h;
            b
        });
        let (path, bytes) = &files[which.index(files.len())];
        damage(path, bytes, &m, &(0..header).collect::<Vec<_>>(), true);
        match datasets::load_points("modelnet10", Split::Test, &only(tmp.path()), &opts(8)) {
            Ok(set) => {
                prop_assert_eq!(set.len(), 10);
                check_cloud(&set, 8, 10)?;
            }
            Err(e) => names_file(&e, path)?,
        }
    }

    /// OFF meshes in class folders (official ModelNet layout), sampled to 16 points.
    #[test]
    fn off_class_folders(m in mutation(true), which: Index) {
        let tmp = scratch();
        let dir = tmp.path().join("ModelNet10");
        let files = class_tree(&dir, "off", |c| box_off(1.0 + c as f64, c % 2 == 1));
        let (path, bytes) = &files[which.index(files.len())];
        damage(path, bytes, &m, &whole(bytes), true);
        match datasets::load_points("modelnet10", Split::Test, &only(tmp.path()), &opts(16)) {
            Ok(set) => {
                prop_assert_eq!(set.len(), 10);
                check_cloud(&set, 16, 10)?;
            }
            Err(e) => names_file(&e, path)?,
        }
    }

    /// The `modelnet40_normal_resampled` text layout: damage a point file, the split list or
    /// the class-name list.
    #[test]
    fn modelnet_text_layout(m in mutation(true), which: Index) {
        let tmp = scratch();
        let dir = tmp.path().join("modelnet40_normal_resampled");
        let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
        let mut write = |rel: String, text: String| {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, &text).unwrap();
            files.push((p, text.into_bytes()));
        };
        let names: String = datasets::pointsets::MODELNET40_CLASSES.iter().map(|c| format!("{c}\n")).collect();
        write("modelnet40_shape_names.txt".into(), names);
        write("modelnet40_test.txt".into(), "airplane_0001\nnight_stand_0002\nxbox_0003\n".into());
        for (k, (class, id)) in [("airplane", "airplane_0001"), ("night_stand", "night_stand_0002"), ("xbox", "xbox_0003")]
            .into_iter()
            .enumerate()
        {
            let pts: String = cloud(k).iter().map(|p| format!("{:.6},{:.6},{:.6},0.0,0.0,1.0\n", p[0], p[1], p[2])).collect();
            write(format!("{class}/{id}.txt"), pts);
        }
        let (path, bytes) = &files[which.index(files.len())];
        damage(path, bytes, &m, &whole(bytes), true);
        match datasets::load_points("modelnet40", Split::Test, &only(tmp.path()), &opts(8)) {
            Ok(set) => check_cloud(&set, 8, 40)?,
            // a damaged split list may name a shape whose file does not exist: that error names
            // the missing point file, which is right, so accept the list's directory too
            Err(e) => {
                let list = dir.join("modelnet40_test.txt");
                if *path == list && matches!(e, DatasetError::Io { .. }) {
                    prop_assert!(full_message(&e).contains(".txt"), "{}", e);
                } else {
                    names_file(&e, path)?;
                }
            }
        }
    }

    /// HDF5 files: ModelNet40 `ply_data_test0.h5` (h5py, gzip chunks) and ScanObjectNN
    /// (h5py, contiguous), both written by libhdf5.
    #[test]
    fn hdf5_point_files(m in mutation(false), scan: bool) {
        let tmp = scratch();
        let (name, path) = if scan {
            let d = tmp.path().join("ScanObjectNN/h5_files/main_split");
            std::fs::create_dir_all(&d).unwrap();
            ("scanobjectnn", d.join("test_objectdataset_augmentedrot_scale75.h5"))
        } else {
            let d = tmp.path().join("modelnet40_ply_hdf5_2048");
            std::fs::create_dir_all(&d).unwrap();
            ("modelnet40", d.join("ply_data_test0.h5"))
        };
        let bytes = std::fs::read(fixture(path.file_name().unwrap().to_str().unwrap())).unwrap();
        // the superblock and the root group's headers come first
        let hot: Vec<usize> = (0..bytes.len().min(1024)).collect();
        damage(&path, &bytes, &m, &hot, false);
        let classes = if scan { 15 } else { 40 };
        match datasets::load_points(name, Split::Test, &only(tmp.path()), &opts(8)) {
            Ok(set) => {
                prop_assert_eq!(set.len(), 3);
                check_cloud(&set, 8, classes)?;
            }
            Err(e) => names_file(&e, &path)?,
        }
    }

    /// SpikingJelly `.npz` event frames (CIFAR10-DVS layout, one file per class, stored and
    /// DEFLATE archives): damage one class's archive.
    #[test]
    fn npz_event_frames(m in mutation(false), which: Index, npy_header: bool) {
        let tmp = scratch();
        let dir = tmp.path().join("cifar10-dvs").join(datasets::event_frames::frames_folder(2));
        let mut files = Vec::new();
        for (c, class) in datasets::event_frames::CIFAR10_DVS_CLASSES.iter().enumerate() {
            let d = dir.join(class);
            std::fs::create_dir_all(&d).unwrap();
            let src = if c % 2 == 0 { "frames_stored.npz" } else { "frames_deflated.npz" };
            let bytes = std::fs::read(fixture(src)).unwrap();
            let p = d.join(format!("{class}_0000.npz"));
            std::fs::write(&p, &bytes).unwrap();
            files.push((p, bytes));
        }
        let (path, bytes) = &files[which.index(files.len())];
        // the local header and the .npy header (stored archives), and the central directory
        let len = bytes.len();
        let hot: Vec<usize> = if npy_header { (0..len.min(200)).collect() } else { (len.saturating_sub(250)..len).collect() };
        damage(path, bytes, &m, &hot, false);
        match datasets::load_event_frames(&only(tmp.path()), 2, Split::Train) {
            Ok(set) => {
                prop_assert_eq!(set.len(), 10);
                prop_assert_eq!(set.sample_shape(), [2, 2, 3, 4]);
                prop_assert_eq!(set.data.len(), set.len() * set.sample_len());
                prop_assert!(set.data.iter().all(|v| v.is_finite()));
                prop_assert!(set.labels.iter().all(|&l| usize::from(l) < set.num_classes));
            }
            Err(e) => names_file(&e, path)?,
        }
    }

    /// ShapeNetPart release directory: damage the category file, the test list or a point file.
    #[test]
    fn shapenet_part_release(m in mutation(true), which: Index) {
        use datasets::shapenet_part::{CATEGORIES, NUM_PARTS};
        let tmp = scratch();
        let dir = tmp.path().join(datasets::shapenet_part::RELEASE_DIR);
        let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
        let mut write = |rel: String, text: String| {
            let p = dir.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, &text).unwrap();
            files.push((p, text.into_bytes()));
        };
        write("synsetoffset2category.txt".into(), CATEGORIES.iter().map(|(n, s)| format!("{n}\t{s}\n")).collect());
        let shapes = [(0usize, "1a04e3eab45ca15d"), (4, "c1b2"), (15, "t9")];
        let list: Vec<String> = shapes.iter().map(|(c, id)| format!("\"shape_data/{}/{id}\"", CATEGORIES[*c].1)).collect();
        write("train_test_split/shuffled_test_file_list.json".into(), format!("[{}]", list.join(", ")));
        write("train_test_split/shuffled_train_file_list.json".into(), "[]".into());
        write("train_test_split/shuffled_val_file_list.json".into(), "[]".into());
        for (k, (c, id)) in shapes.iter().enumerate() {
            let text: String = cloud(k)
                .iter()
                .enumerate()
                .map(|(j, p)| {
                    let own = &datasets::shapenet_part::category_parts()[*c];
                    let part = (own.start + j % own.len()) as f32;
                    format!("{:.6} {:.6} {:.6} 0.000000 0.000000 1.000000 {part:.6}\n", p[0], p[1], p[2])
                })
                .collect();
            write(format!("{}/{id}.txt", CATEGORIES[*c].1), text);
        }
        // the train and val lists are not read for the test split
        files.retain(|(p, _)| !p.to_string_lossy().contains("_train_") && !p.to_string_lossy().contains("_val_"));
        let (path, bytes) = &files[which.index(files.len())];
        damage(path, bytes, &m, &whole(bytes), true);
        match datasets::load_shapenet_part(Split::Test, &only(tmp.path()), &opts(8)) {
            Ok(set) => {
                check_cloud(&set.cloud, 8, 16)?;
                prop_assert_eq!(set.part_labels.len(), set.cloud.len() * 8);
                prop_assert!(set.part_labels.iter().all(|&p| usize::from(p) < NUM_PARTS));
                for i in 0..set.len() {
                    let own = set.parts_of_sample(i);
                    prop_assert!(set.sample_parts(i).iter().all(|&p| own.contains(&usize::from(p))));
                }
            }
            Err(e) => {
                let list = dir.join("train_test_split/shuffled_test_file_list.json");
                if *path == list && matches!(e, DatasetError::Io { .. }) {
                    // a damaged list entry names a point file that does not exist
                    prop_assert!(full_message(&e).contains(".txt"), "{}", e);
                } else {
                    names_file(&e, path)?;
                }
            }
        }
    }
}
