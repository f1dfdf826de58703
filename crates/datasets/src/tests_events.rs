//! Crate-level tests of the event-frame loader (SpikingJelly CIFAR10-DVS frames) on small
//! `.npz` files written in NumPy's format: a ZIP archive (stored or DEFLATE members, ZIP64
//! extra fields as NumPy forces them) holding `frames.npy` with a real `.npy` header.

use super::*;
use crate::event_frames::{CIFAR10_DVS_CLASSES, frames_folder, load_frames_dir, train_count};
use crate::npy::tests::{Member, npy_bytes, zip_bytes};
use std::path::{Path, PathBuf};

fn only(root: &Path) -> DataRoot {
    DataRoot { explicit: Some(root.to_path_buf()), env: None, project: root.join("no-project-dir") }
}

const T: usize = 3;
const H: usize = 4;
const W: usize = 5;

/// Value of element `e` (C order over `[T, 2, H, W]`) of file `k` of class `c`: a small
/// integer, exact in every dtype.
fn value(c: usize, k: usize, e: usize) -> f64 {
    ((c * 7 + k * 3 + e * 11) % 97) as f64
}

/// The NumPy type string and raw bytes of `values` for the dtype used by class `c` (each class
/// another dtype: SpikingJelly's float64, and the others `.npy` allows).
fn encode(c: usize, values: &[f64]) -> (&'static str, Vec<u8>) {
    let descr = ["<f8", "<f4", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "|i1"][c % 10];
    let bytes = values
        .iter()
        .flat_map(|&v| match descr {
            "<f8" => v.to_le_bytes().to_vec(),
            "<f4" => (v as f32).to_le_bytes().to_vec(),
            "|u1" => vec![v as u8],
            "|i1" => vec![v as i8 as u8],
            "<i2" => (v as i16).to_le_bytes().to_vec(),
            "<u2" => (v as u16).to_le_bytes().to_vec(),
            "<i4" => (v as i32).to_le_bytes().to_vec(),
            "<u4" => (v as u32).to_le_bytes().to_vec(),
            "<i8" => (v as i64).to_le_bytes().to_vec(),
            _ => (v as u64).to_le_bytes().to_vec(),
        })
        .collect();
    (descr, bytes)
}

/// An `.npz` as `np.savez_compressed(path, frames=a)` writes it (or `np.savez` for `Stored`).
fn npz(descr: &str, shape: &[usize], data: &[u8], how: Member) -> Vec<u8> {
    zip_bytes(&[("frames.npy", &npy_bytes(descr, false, shape, data, 1))], how)
}

fn file_name(c: usize, k: usize) -> String {
    format!("cifar10_{}_{k}.npz", CIFAR10_DVS_CLASSES[c])
}

/// `<dir>/<class>/cifar10_<class>_<k>.npz` for the 10 classes, `per_class` files each, created
/// in reverse order; members stored, deflated or streamed depending on the file.
fn write_frames(dir: &Path, per_class: usize) {
    for c in (0..10).rev() {
        let d = dir.join(CIFAR10_DVS_CLASSES[c]);
        std::fs::create_dir_all(&d).unwrap();
        for k in (0..per_class).rev() {
            let values: Vec<f64> = (0..T * 2 * H * W).map(|e| value(c, k, e)).collect();
            let (descr, data) = encode(c, &values);
            let how = [Member::Deflated, Member::Stored, Member::DeflatedStreamed][(c + k) % 3];
            std::fs::write(d.join(file_name(c, k)), npz(descr, &[T, 2, H, W], &data, how)).unwrap();
        }
    }
}

fn expected(c: usize, k: usize) -> Vec<f32> {
    (0..T * 2 * H * W).map(|e| value(c, k, e) as f32).collect()
}

/// File index `k` of position `pos` in a class's sorted file list of 11 files
/// (`_0, _1, _10, _2, …, _9`).
fn sorted_k(pos: usize) -> usize {
    [0, 1, 10, 2, 3, 4, 5, 6, 7, 8, 9][pos]
}

fn frames_dir(root: &Path) -> PathBuf {
    root.join("cifar10-dvs").join(frames_folder(T))
}

#[test]
fn cifar10_dvs_frames_split_and_values() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = frames_dir(tmp.path());
    write_frames(&dir, 11);
    // junk that must be ignored
    std::fs::write(dir.join("airplane/notes.txt"), "x").unwrap();
    std::fs::write(dir.join("airplane/.hidden.npz"), "x").unwrap();
    std::fs::create_dir_all(dir.join(".cache")).unwrap();
    let root = only(tmp.path());
    assert_eq!(locate_event_frames(&root, T).unwrap(), dir);
    assert_eq!(CIFAR10_DVS, "cifar10-dvs");
    assert_eq!(EVENT_DATASET_NAMES, &["cifar10-dvs"]);

    let train = load_event_frames(&root, T, Split::Train).unwrap();
    assert_eq!(train.name, "cifar10-dvs");
    assert_eq!(train.sample_shape(), [T, 2, H, W]);
    assert_eq!((train.frames, train.channels, train.height, train.width), (T, 2, H, W));
    assert_eq!(train.sample_len(), T * 2 * H * W);
    assert_eq!(train.data.len(), train.len() * train.sample_len());
    assert_eq!(train.class_names, CIFAR10_DVS_CLASSES.map(String::from).to_vec());
    assert_eq!(train.num_classes, 10);
    // ceil(0.9 * 11) = 10 train files per class, in sorted file-name order
    assert_eq!(train.len(), 100);
    assert_eq!(train.class_counts(), vec![10; 10]);
    assert!(train.labels.windows(2).all(|w| w[0] <= w[1]));
    for c in 0..10 {
        for pos in 0..10 {
            let i = c * 10 + pos;
            assert_eq!(train.labels[i], c as u16);
            assert_eq!(train.sample(i), &expected(c, sorted_k(pos))[..], "class {c} position {pos}");
        }
    }
    // the C-order index formula of the docs
    let s = train.sample(13);
    let (t, ch, y, x) = (2, 1, 3, 4);
    assert_eq!(s[((t * 2 + ch) * H + y) * W + x], value(1, 2, ((t * 2 + ch) * H + y) * W + x) as f32);

    let test = load_event_frames(&root, T, Split::Test).unwrap();
    assert_eq!(test.len(), 10);
    assert_eq!(test.labels, (0..10).collect::<Vec<u16>>());
    for c in 0..10 {
        assert_eq!(test.sample(c), &expected(c, 9)[..], "test sample of class {c} is its last sorted file");
    }
    assert_ne!(test.fingerprint(), train.fingerprint());
    assert_eq!(test.fingerprint(), load_event_frames(&root, T, Split::Test).unwrap().fingerprint());
    let sub = test.subset(&[3, 3, 0]);
    assert_eq!((sub.labels.clone(), sub.sample(1)), (vec![3, 3, 0], test.sample(3)));

    // max_per_class keeps the first files of each class's part of the split
    let few = load_event_frames_with(&root, T, Split::Train, &EventFrameOptions { max_per_class: Some(3) }).unwrap();
    assert_eq!((few.len(), few.class_counts()), (30, vec![3; 10]));
    assert_eq!(few.sample(5), &expected(1, 10)[..]);
    let err =
        load_event_frames_with(&root, T, Split::Train, &EventFrameOptions { max_per_class: Some(0) }).unwrap_err();
    assert!(matches!(err, DatasetError::InvalidOptions { .. }), "{err}");
    for bad in [0, event_frames::MAX_FRAMES + 1] {
        assert!(matches!(load_event_frames(&root, bad, Split::Test), Err(DatasetError::InvalidOptions { .. })));
    }
    let o: EventFrameOptions = toml::from_str("max_per_class = 5").unwrap();
    assert_eq!(o.max_per_class, Some(5));
}

#[test]
fn nine_to_one_split_sizes() {
    assert_eq!(train_count(1000), 900, "CIFAR10-DVS: 900 train / 100 test per class");
    for (n, k) in [(0, 0), (1, 1), (2, 2), (9, 9), (10, 9), (11, 10), (19, 18), (20, 18), (21, 19)] {
        assert_eq!(train_count(n), k, "n = {n}");
    }
    // one file per class: the test split is empty, and says why
    let tmp = tempfile::tempdir().unwrap();
    let dir = frames_dir(tmp.path());
    write_frames(&dir, 1);
    let root = only(tmp.path());
    assert_eq!(load_event_frames(&root, T, Split::Train).unwrap().len(), 10);
    let err = load_event_frames(&root, T, Split::Test).unwrap_err();
    assert!(matches!(err, DatasetError::Layout { .. }), "{err}");
    assert!(err.to_string().contains("test split is empty"), "{err}");
}

#[test]
fn event_frame_roots_and_missing_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let (x, e, p) = (tmp.path().join("x"), tmp.path().join("e"), tmp.path().join("p"));
    let root = DataRoot { explicit: Some(x.clone()), env: Some(e.clone()), project: p.clone() };
    let err = load_event_frames(&root, 10, Split::Train).unwrap_err();
    let msg = err.to_string();
    let DatasetError::Missing { dataset, searched, hint } = err else { panic!("expected Missing, got {msg}") };
    assert_eq!(dataset, "cifar10-dvs");
    let expect: Vec<PathBuf> =
        root.candidates("cifar10-dvs").iter().map(|c| c.join("frames_number_10_split_by_number")).collect();
    assert_eq!(searched, expect);
    for d in ["x/cifar10-dvs", "x/CIFAR10-DVS", "e/cifar10_dvs", "p/CIFAR10DVS"] {
        let f = tmp.path().join(d).join("frames_number_10_split_by_number");
        assert!(msg.contains(&f.display().to_string()), "{d}: {msg}");
    }
    assert!(hint.contains("SpikingJelly") && hint.contains("frames_number=10"), "{hint}");
    assert!(hint.contains("frames_number_10_split_by_number/<class>/*.npz"), "{hint}");
    assert!(msg.contains("--data-dir") && msg.contains("SNN_DATA_DIR"), "{msg}");

    // frames for another T exist: named in the hint, still Missing
    write_frames(&frames_dir(&e), 2);
    let err = load_event_frames(&root, 10, Split::Train).unwrap_err();
    let DatasetError::Missing { hint, .. } = &err else { panic!("{err}") };
    assert!(hint.contains("frames_number_3_split_by_number (3 frames)"), "{hint}");
    // the env root has them; an explicit root with them wins
    assert_eq!(locate_event_frames(&root, T).unwrap(), frames_dir(&e));
    let other = x.join("CIFAR10DVS").join(frames_folder(T));
    write_frames(&other, 2);
    assert_eq!(locate_event_frames(&root, T).unwrap(), other);
    // an empty frames folder does not count
    let empty = tmp.path().join("y/cifar10-dvs").join(frames_folder(T));
    std::fs::create_dir_all(&empty).unwrap();
    let r2 = DataRoot { explicit: Some(tmp.path().join("y")), env: Some(e.clone()), project: p.clone() };
    assert_eq!(locate_event_frames(&r2, T).unwrap(), frames_dir(&e));
}

#[test]
fn bad_event_frame_files_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = frames_dir(tmp.path());
    let root = only(tmp.path());
    let load = |split| load_event_frames(&root, T, split);
    let reset = || {
        std::fs::remove_dir_all(&dir).ok();
        write_frames(&dir, 10);
    };
    let f32s = |n: usize| vec![0u8; 4 * n];
    // 10 files per class: 9 train, 1 test (the last sorted file, `_9`)
    let victim = dir.join("dog").join(file_name(5, 9));

    reset();
    std::fs::write(&victim, npz("<f4", &[T, 2, H, W + 1], &f32s(T * 2 * H * (W + 1)), Member::Deflated)).unwrap();
    let err = load(Split::Test).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DatasetError::Malformed { .. }), "{msg}");
    assert!(msg.contains("cifar10_dog_9.npz") && msg.contains("frames.npy"), "{msg}");
    assert!(
        msg.contains("shape (3, 2, 4, 6) differs from (3, 2, 4, 5)") && msg.contains("cifar10_airplane_9.npz"),
        "{msg}"
    );
    assert_eq!(load(Split::Train).unwrap().len(), 90, "the train split is intact");

    // the first file fixes the shape, which must be [T, 2, H, W] with T from the folder name
    let first = dir.join("airplane").join(file_name(0, 9));
    for (shape, needle) in [
        (vec![T + 1, 2, H, W], "has 4 frames, but the folder frames_number_3_split_by_number"),
        (vec![T, 3, H, W], "has 3 channels"),
        (vec![T, 2, H * W], "expected 4 dimensions"),
        (vec![T, 2, 0, W], "empty frame"),
    ] {
        reset();
        let n: usize = shape.iter().product();
        std::fs::write(&first, npz("<f4", &shape, &f32s(n), Member::Stored)).unwrap();
        let err = load(Split::Test).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("cifar10_airplane_9.npz") && msg.contains(needle), "{needle}: {msg}");
    }

    // bad .npy headers
    let good = npy_bytes("<f4", false, &[T, 2, H, W], &f32s(T * 2 * H * W), 1);
    for (bytes, needle, unsupported) in [
        (npy_bytes("<f4", true, &[T, 2, H, W], &f32s(T * 2 * H * W), 1), "Fortran", true),
        (npy_bytes(">f4", false, &[T, 2, H, W], &f32s(T * 2 * H * W), 1), "big-endian", true),
        (npy_bytes("<f2", false, &[T, 2, H, W], &f32s(T * H * W), 1), "`<f2`", true),
        (good[..good.len() - 4].to_vec(), "truncated", false),
        ([b"\x93NUMPX".as_slice(), &good[6..]].concat(), "\\x93NUMPY", false),
        (good.iter().map(|&b| if b == b'{' { b'(' } else { b }).collect(), "dict literal", false),
    ] {
        reset();
        std::fs::write(&victim, zip_bytes(&[("frames.npy", &bytes)], Member::Deflated)).unwrap();
        let err = load(Split::Test).unwrap_err();
        let msg = err.to_string();
        assert_eq!(matches!(err, DatasetError::Unsupported { .. }), unsupported, "{msg}");
        assert!(
            msg.contains("cifar10_dog_9.npz") && msg.contains("frames.npy") && msg.contains(needle),
            "{needle}: {msg}"
        );
    }

    // a NaN, an archive without frames.npy, a file that is not a ZIP archive
    reset();
    let mut vals = vec![1.0f32; T * 2 * H * W];
    vals[7] = f32::NAN;
    let data: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&victim, npz("<f4", &[T, 2, H, W], &data, Member::Stored)).unwrap();
    let err = load(Split::Test).unwrap_err();
    assert!(matches!(err, DatasetError::Corrupt { .. }) && err.to_string().contains("element 7"), "{err}");
    std::fs::write(&victim, zip_bytes(&[("arr_0.npy", &good)], Member::Stored)).unwrap();
    let err = load(Split::Test).unwrap_err();
    assert!(
        err.to_string().contains("cifar10_dog_9.npz")
            && err.to_string().contains("no member `frames.npy` (members: arr_0.npy)"),
        "{err}"
    );
    std::fs::write(&victim, &good).unwrap();
    let err = load(Split::Test).unwrap_err();
    assert!(matches!(err, DatasetError::Malformed { .. }) && err.to_string().contains("ZIP"), "{err}");

    // class folders: not 10, or one without .npz files
    reset();
    std::fs::remove_dir_all(dir.join("truck")).unwrap();
    let err = load(Split::Train).unwrap_err();
    assert!(matches!(err, DatasetError::Layout { .. }), "{err}");
    assert!(err.to_string().contains("expected 10 class folders for cifar10-dvs, found 9"), "{err}");
    std::fs::create_dir_all(dir.join("truck")).unwrap();
    std::fs::write(dir.join("truck/readme.txt"), "no frames").unwrap();
    let err = load(Split::Train).unwrap_err();
    assert!(err.to_string().contains("truck") && err.to_string().contains("no .npz file"), "{err}");

    // load_frames_dir reads a frames folder directly
    reset();
    let set = load_frames_dir(&dir, T, Split::Test, &EventFrameOptions::default()).unwrap();
    assert_eq!(set.len(), 10);
}
