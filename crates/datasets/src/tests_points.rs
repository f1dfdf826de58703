//! Crate-level tests of the point-cloud loaders: layouts, resolution through [`DataRoot`],
//! errors, and the real ModelNet10 copy when it is present.

use super::*;
use crate::pointcloud::centroid_and_radius;
use std::path::{Path, PathBuf};

fn only(root: &Path) -> DataRoot {
    DataRoot { explicit: Some(root.to_path_buf()), env: None, project: root.join("no-project-dir") }
}

fn opts(num_points: usize) -> PointOptions {
    PointOptions { num_points, ..PointOptions::default() }
}

/// Cloud `k` of class `c`: 5 seeded random points (multiples of 1/8 in [0, 125)), so that no
/// two clouds are similar (equal after centring and scaling).
fn cloud(c: usize, k: usize) -> Vec<[f32; 3]> {
    let mut rng = Rng::new((c * 1000 + k) as u64);
    (0..5).map(|_| [0; 3].map(|_: i32| rng.below(1000) as f32 / 8.0)).collect()
}

fn flat(points: &[[f32; 3]]) -> Vec<f32> {
    points.iter().flatten().copied().collect()
}

fn normalised(points: &[[f32; 3]]) -> Vec<f32> {
    let mut v = flat(points);
    normalize_unit_sphere(&mut v);
    v
}

/// `<dir>/<class>/<split>/<class>_NNNN.pcd` for the ModelNet10 classes, created in reverse
/// order (the loader must sort them): `train` files per class for train, `test` for test.
fn write_pcd_tree(dir: &Path, classes: &[&str], train: usize, test: usize) {
    for (c, class) in classes.iter().enumerate().rev() {
        for (split, count, first) in [("train", train, 1), ("test", test, 100)] {
            let d = dir.join(class).join(split);
            std::fs::create_dir_all(&d).unwrap();
            for k in 0..count {
                let bytes = pcd::tests::binary_pcd(&cloud(c, first + k));
                std::fs::write(d.join(format!("{class}_{:04}.pcd", first + k)), bytes).unwrap();
            }
        }
    }
}

fn assert_unit_sphere(set: &PointCloudSet) {
    for i in 0..set.len() {
        let (c, r) = centroid_and_radius(set.sample(i));
        assert!(c.iter().all(|v| v.abs() < 1e-5), "sample {i}: centroid {c:?}");
        assert!((r - 1.0).abs() < 1e-5, "sample {i}: radius {r}");
    }
}

#[test]
fn modelnet10_pcd_class_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let pcd_dir = tmp.path().join("modelnet10-pcd1024/ModelNet10/pcd");
    write_pcd_tree(&pcd_dir, &pointsets::MODELNET10_CLASSES, 2, 1);
    // junk that must not count as a class
    std::fs::create_dir_all(pcd_dir.join(".cache/train")).unwrap();
    std::fs::write(pcd_dir.join("README.txt"), "hi").unwrap();
    let root = only(tmp.path());
    assert_eq!(locate_points("modelnet10", Split::Train, &root, &opts(5)).unwrap(), pcd_dir);

    let train = load_points("modelnet10", Split::Train, &root, &opts(5)).unwrap();
    assert_eq!(train.name, "modelnet10");
    assert_eq!((train.len(), train.num_points, train.num_classes), (20, 5, 10));
    assert_eq!(train.class_names, pointsets::MODELNET10_CLASSES.map(String::from).to_vec());
    assert_eq!(train.class_counts(), vec![2; 10]);
    // sorted by class, then by file name; values are the file's points, normalised
    assert_eq!(train.labels[..4], [0, 0, 1, 1]);
    assert_eq!(train.sample(3), &normalised(&cloud(1, 2))[..]);
    assert_eq!(train.sample(19), &normalised(&cloud(9, 2))[..]);
    assert_unit_sphere(&train);
    let test = load_points("modelnet10", Split::Test, &root, &opts(5)).unwrap();
    assert_eq!(test.len(), 10);
    assert_eq!(test.sample(6), &normalised(&cloud(6, 100))[..]);

    // fewer points than asked: the cloud is repeated cyclically
    let more = load_points("modelnet10", Split::Test, &root, &opts(12)).unwrap();
    for j in 0..12 {
        assert_eq!(more.sample(4)[3 * j..3 * j + 3], more.sample(4)[3 * (j % 5)..3 * (j % 5) + 3]);
    }
    assert_unit_sphere(&more);

    // more points than asked: a seeded random subset
    let a = load_points("modelnet10", Split::Train, &root, &opts(3)).unwrap();
    let b = load_points("modelnet10", Split::Train, &root, &opts(3)).unwrap();
    let c = load_points("modelnet10", Split::Train, &root, &PointOptions { seed: 1, ..opts(3) }).unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_ne!(a.fingerprint(), c.fingerprint());
    assert_eq!(a.labels, c.labels);
    assert_unit_sphere(&a);
}

#[test]
fn pcd_layout_variants_resolve() {
    let classes = &pointsets::MODELNET10_CLASSES;
    for (sub, inner) in [
        ("modelnet10", ""),
        ("modelnet10", "pcd"),
        ("modelnet10", "ModelNet10/pcd"),
        ("ModelNet10", ""),
        ("ModelNet10", "pcd"),
        ("modelnet10-pcd1024", "pcd"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = if inner.is_empty() { tmp.path().join(sub) } else { tmp.path().join(sub).join(inner) };
        write_pcd_tree(&dir, classes, 1, 1);
        let got = locate_points("modelnet10", Split::Test, &only(tmp.path()), &opts(5)).unwrap();
        assert_eq!(got, dir, "{sub}/{inner}");
    }
    // explicit root before env before project
    let tmp = tempfile::tempdir().unwrap();
    let (x, e, p) = (tmp.path().join("x"), tmp.path().join("e"), tmp.path().join("p"));
    for r in [&e, &p] {
        write_pcd_tree(&r.join("modelnet10"), classes, 1, 1);
    }
    let root = DataRoot { explicit: Some(x.clone()), env: Some(e.clone()), project: p.clone() };
    assert_eq!(locate_points("modelnet10", Split::Test, &root, &opts(5)).unwrap(), e.join("modelnet10"));
    write_pcd_tree(&x.join("ModelNet10"), classes, 1, 1);
    assert_eq!(locate_points("modelnet10", Split::Test, &root, &opts(5)).unwrap(), x.join("ModelNet10"));
}

#[test]
fn wrong_number_of_class_folders_is_a_layout_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("modelnet10");
    write_pcd_tree(&dir, &pointsets::MODELNET10_CLASSES[..9], 1, 1);
    let err = load_points("modelnet10", Split::Train, &only(tmp.path()), &opts(5)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DatasetError::Layout { .. }), "{msg}");
    assert!(msg.contains("expected 10 class folders") && msg.contains("found 9"), "{msg}");
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
}

#[test]
fn corrupt_pcd_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("modelnet10");
    write_pcd_tree(&dir, &pointsets::MODELNET10_CLASSES, 1, 1);
    let bad = dir.join("sofa/test/sofa_0100.pcd");
    let bytes = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() - 7]).unwrap();
    let err = load_points("modelnet10", Split::Test, &only(tmp.path()), &opts(5)).unwrap_err();
    assert!(matches!(err, DatasetError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("sofa_0100.pcd") && err.to_string().contains("truncated"), "{err}");
    // the train split is intact
    assert_eq!(load_points("modelnet10", Split::Train, &only(tmp.path()), &opts(5)).unwrap().len(), 10);
}

#[test]
fn subsets_are_seeded_and_keep_each_sample() {
    let tmp = tempfile::tempdir().unwrap();
    write_pcd_tree(&tmp.path().join("modelnet10"), &pointsets::MODELNET10_CLASSES, 3, 1);
    let root = only(tmp.path());
    let full = load_points("modelnet10", Split::Train, &root, &opts(3)).unwrap();
    assert_eq!(full.len(), 30);
    let o = PointOptions { train_size: 7, ..opts(3) };
    let a = load_points("modelnet10", Split::Train, &root, &o).unwrap();
    assert_eq!(a.len(), 7);
    assert_eq!(a.fingerprint(), load_points("modelnet10", Split::Train, &root, &o).unwrap().fingerprint());
    // each kept sample is identical to the same file's sample in the full set (the point
    // subsample does not depend on train_size), in file order
    let mut last = None;
    for i in 0..a.len() {
        let j = (0..full.len()).find(|&j| full.sample(j) == a.sample(i)).expect("sample of the full set");
        assert_eq!(full.labels[j], a.labels[i]);
        assert!(last.is_none_or(|l| l < j), "file order");
        last = Some(j);
    }
    let picks = |seed| {
        let s = load_points("modelnet10", Split::Train, &root, &PointOptions { seed, ..o.clone() }).unwrap();
        (0..s.len()).map(|i| s.sample(i).to_vec()).collect::<Vec<_>>()
    };
    assert!((1..6).any(|seed| picks(seed) != picks(0)), "the seed changes the subset");
    let all = PointOptions { train_size: 1000, ..opts(3) };
    assert_eq!(load_points("modelnet10", Split::Train, &root, &all).unwrap().fingerprint(), full.fingerprint());
}

#[test]
fn official_off_meshes_are_sampled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ModelNet10");
    for (c, class) in pointsets::MODELNET10_CLASSES.iter().enumerate() {
        for split in ["train", "test"] {
            let d = dir.join(class).join(split);
            std::fs::create_dir_all(&d).unwrap();
            // class c: a box of length 1 + c along x, glued header on odd classes
            let off = off::tests::box_off(1.0 + c as f64, 1.0, 1.0, c % 2 == 1);
            std::fs::write(d.join(format!("{class}_0001.off")), off).unwrap();
        }
    }
    let root = only(tmp.path());
    assert_eq!(locate_points("modelnet10", Split::Test, &root, &opts(64)).unwrap(), dir);
    let set = load_points("modelnet10", Split::Test, &root, &opts(400)).unwrap();
    assert_eq!((set.len(), set.num_points), (10, 400));
    assert_eq!(set.labels, (0..10).collect::<Vec<u16>>());
    assert_unit_sphere(&set);
    // the extents follow the box's aspect ratio (x length 1 + c, y and z length 1)
    for c in [0usize, 3, 9] {
        let s = set.sample(c);
        let ext = |k: usize| {
            let v = s.chunks(3).map(|p| p[k]);
            v.clone().fold(f32::MIN, f32::max) - v.fold(f32::MAX, f32::min)
        };
        let ratio = ext(0) / ext(1);
        assert!((ratio - (1.0 + c as f32)).abs() < 0.1 * (1.0 + c as f32), "class {c}: {ratio}");
        assert!((ext(1) / ext(2) - 1.0).abs() < 0.1);
    }
    let again = load_points("modelnet10", Split::Test, &root, &opts(400)).unwrap();
    assert_eq!(set.fingerprint(), again.fingerprint());
    let other = load_points("modelnet10", Split::Test, &root, &PointOptions { seed: 9, ..opts(400) }).unwrap();
    assert_ne!(set.fingerprint(), other.fingerprint());
    let train = load_points("modelnet10", Split::Train, &root, &opts(400)).unwrap();
    assert_ne!(set.sample(0), train.sample(0), "train and test draw from different seeds");

    // a mesh without area is an error naming it
    std::fs::write(dir.join("desk/test/desk_0001.off"), "OFF\n3 1 0\n0 0 0\n1 1 1\n2 2 2\n3 0 1 2\n").unwrap();
    let err = load_points("modelnet10", Split::Test, &root, &opts(8)).unwrap_err();
    assert!(matches!(err, DatasetError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("desk_0001.off") && err.to_string().contains("no surface area"), "{err}");
}

/// `modelnet40_normal_resampled`-style directory with a few shapes.
fn write_text_layout(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let names40 = pointsets::MODELNET40_CLASSES.join("\n") + "\n";
    std::fs::write(dir.join("modelnet40_shape_names.txt"), names40).unwrap();
    std::fs::write(dir.join("modelnet10_shape_names.txt"), pointsets::MODELNET10_CLASSES.join("\n")).unwrap();
    std::fs::write(dir.join("modelnet40_train.txt"), "airplane_0001\nnight_stand_0002\n\nxbox_0001\n").unwrap();
    std::fs::write(dir.join("modelnet40_test.txt"), "xbox_0001\n").unwrap();
    std::fs::write(dir.join("modelnet10_train.txt"), "night_stand_0002\n").unwrap();
    std::fs::write(dir.join("modelnet10_test.txt"), "night_stand_0002\n").unwrap();
    let write = |class: &str, id: &str, text: String| {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        std::fs::write(dir.join(class).join(format!("{id}.txt")), text).unwrap();
    };
    // 6 points with normals
    let airplane: String = (0..6).map(|j| format!("{}.5,{},{},0.0,0.0,1.0\n", j, -j, j * j)).collect();
    write("airplane", "airplane_0001", airplane);
    // 2 points, xyz only, whitespace separated, CRLF
    write("night_stand", "night_stand_0002", "1 2 3\r\n4 5 7\r\n".into());
    write("xbox", "xbox_0001", "0,0,0\n1,0,0\n0,1,0\n0,0,1\n".into());
}

#[test]
fn modelnet_text_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("modelnet40_normal_resampled");
    write_text_layout(&dir);
    let root = only(tmp.path());
    assert_eq!(locate_points("modelnet40", Split::Train, &root, &opts(4)).unwrap(), dir);
    let set = load_points("modelnet40", Split::Train, &root, &opts(4)).unwrap();
    assert_eq!(set.labels, vec![0, 23, 39]);
    assert_eq!(set.num_classes, 40);
    assert_eq!(set.class_names[23], "night_stand");
    // the first 4 of 6 points
    let first4: Vec<[f32; 3]> = (0..4).map(|j| [j as f32 + 0.5, -j as f32, (j * j) as f32]).collect();
    assert_eq!(set.sample(0), &normalised(&first4)[..]);
    // 2 points repeated to 4
    let rep = normalised(&[[1.0, 2.0, 3.0], [4.0, 5.0, 7.0], [1.0, 2.0, 3.0], [4.0, 5.0, 7.0]]);
    assert_eq!(set.sample(1), &rep[..]);
    assert_unit_sphere(&set);
    assert_eq!(load_points("modelnet40", Split::Test, &root, &opts(4)).unwrap().labels, vec![39]);

    // ModelNet10 from the same directory, with its own class list
    let ten = load_points("modelnet10", Split::Train, &root, &opts(4)).unwrap();
    assert_eq!((ten.labels.clone(), ten.num_classes), (vec![6], 10));
    assert_eq!(ten.sample(0), set.sample(1));

    // errors: a bad number (with its line), an unknown class, a missing point file
    std::fs::write(dir.join("xbox/xbox_0001.txt"), "0,0,0\n1,0,0\n0,one,0\n").unwrap();
    let err = load_points("modelnet40", Split::Test, &root, &opts(4)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("xbox_0001.txt") && msg.contains("line 3") && msg.contains("`one`"), "{msg}");
    std::fs::write(dir.join("modelnet40_test.txt"), "xbox_0001\nspaceship_0001\n").unwrap();
    let err = load_points("modelnet40", Split::Test, &root, &opts(4)).unwrap_err();
    assert!(matches!(err, DatasetError::Layout { .. }), "{err}");
    assert!(err.to_string().contains("line 2") && err.to_string().contains("spaceship_0001"), "{err}");
    std::fs::write(dir.join("modelnet40_test.txt"), "xbox_0002\n").unwrap();
    let err = load_points("modelnet40", Split::Test, &root, &opts(4)).unwrap_err();
    assert!(matches!(err, DatasetError::Io { .. }), "{err}");
    assert!(err.to_string().contains("xbox_0002.txt"), "{err}");
    std::fs::write(dir.join("modelnet40_shape_names.txt"), "airplane\nxbox\n").unwrap();
    let err = load_points("modelnet40", Split::Test, &root, &opts(4)).unwrap_err();
    assert!(err.to_string().contains("expected 40 class names, found 2"), "{err}");
}

/// Found by the loader property tests: a damaged class-name list (one byte of `night_stand`
/// flipped) was reported against the split list alone, which is intact.
#[test]
fn unknown_class_in_the_text_layout_names_both_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("modelnet40_normal_resampled");
    write_text_layout(&dir);
    let names = dir.join("modelnet40_shape_names.txt");
    let text = std::fs::read_to_string(&names).unwrap().replace("night_stand", "night_stane");
    std::fs::write(&names, text).unwrap();
    let err = load_points("modelnet40", Split::Train, &only(tmp.path()), &opts(4)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DatasetError::Layout { .. }), "{msg}");
    assert!(msg.contains("modelnet40_train.txt") && msg.contains("night_stand_0002"), "{msg}");
    assert!(msg.contains("modelnet40_shape_names.txt"), "{msg}");
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

/// Point `j` of sample `i` of the h5py fixtures (see testdata/make_h5_fixtures.py).
fn fixture_cloud(i: usize, points: usize) -> Vec<[f32; 3]> {
    (0..points).map(|j| [i as f32 + j as f32 / 16.0, -(j as f32) / 8.0, 2.0 * i as f32 - j as f32 / 32.0]).collect()
}

#[cfg(feature = "hdf5")]
#[test]
fn modelnet40_hdf5_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("modelnet40_ply_hdf5_2048");
    std::fs::create_dir_all(&dir).unwrap();
    // train: two files written by the Rust writer, 5 points per sample
    let c = |k: usize| flat(&cloud(k, k + 1));
    h5::tests::write_modelnet_h5(&dir.join("ply_data_train0.h5"), &[c(0), c(1)].concat(), 5, &[3, 0]);
    h5::tests::write_modelnet_h5(&dir.join("ply_data_train1.h5"), &c(2), 5, &[39]);
    h5::tests::write_modelnet_h5(&dir.join("ply_data_train3.h5"), &c(3), 5, &[1]); // not contiguous: ignored
    // test: the h5py-written fixture (gzip, several chunks)
    std::fs::copy(fixture("ply_data_test0.h5"), dir.join("ply_data_test0.h5")).unwrap();
    let root = only(tmp.path());
    assert_eq!(locate_points("modelnet40", Split::Train, &root, &opts(3)).unwrap(), dir);

    let train = load_points("modelnet40", Split::Train, &root, &opts(3)).unwrap();
    assert_eq!(train.labels, vec![3, 0, 39]);
    assert_eq!(train.class_names[39], "xbox");
    for k in 0..3 {
        assert_eq!(train.sample(k), &normalised(&cloud(k, k + 1)[..3])[..], "first 3 points of sample {k}");
    }
    let test = load_points("modelnet40", Split::Test, &root, &opts(16)).unwrap();
    assert_eq!(test.labels, vec![4, 39, 0]);
    for i in 0..3 {
        let expect = normalised(&fixture_cloud(i, 16));
        for (a, b) in test.sample(i).iter().zip(&expect) {
            assert!((a - b).abs() < 1e-6, "sample {i}: {a} vs {b}");
        }
    }
    let more = load_points("modelnet40", Split::Test, &root, &opts(20)).unwrap();
    assert_eq!(more.sample(1)[48..51], more.sample(1)[0..3], "point 16 repeats point 0");
    assert_unit_sphere(&more);
    let sub = load_points("modelnet40", Split::Test, &root, &PointOptions { test_size: 2, ..opts(16) }).unwrap();
    assert_eq!(sub.len(), 2);
    assert!((0..2).all(|i| (0..3).any(|j| test.sample(j) == sub.sample(i))));

    // shape_names.txt overrides the built-in names, and must have 40 lines
    std::fs::write(dir.join("shape_names.txt"), (0..40).map(|k| format!("c{k}\n")).collect::<String>()).unwrap();
    assert_eq!(load_points("modelnet40", Split::Test, &root, &opts(4)).unwrap().class_names[4], "c4");
    std::fs::write(dir.join("shape_names.txt"), "a\nb\n").unwrap();
    assert!(matches!(load_points("modelnet40", Split::Test, &root, &opts(4)), Err(DatasetError::Layout { .. })));
    std::fs::remove_file(dir.join("shape_names.txt")).unwrap();

    // a label out of range, and a truncated file, are errors naming the file
    h5::tests::write_modelnet_h5(&dir.join("ply_data_train1.h5"), &c(2), 5, &[40]);
    let err = load_points("modelnet40", Split::Train, &root, &opts(3)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("ply_data_train1.h5") && msg.contains("\"label\"") && msg.contains("40"), "{msg}");
    let bytes = std::fs::read(fixture("ply_data_test0.h5")).unwrap();
    std::fs::write(dir.join("ply_data_test0.h5"), &bytes[..bytes.len() / 2]).unwrap();
    let err = load_points("modelnet40", Split::Test, &root, &opts(4)).unwrap_err();
    assert!(err.to_string().contains("ply_data_test0.h5"), "{err}");
    std::fs::write(dir.join("ply_data_test0.h5"), b"not an hdf5 file").unwrap();
    let err = load_points("modelnet40", Split::Test, &root, &opts(4)).unwrap_err();
    assert!(matches!(err, DatasetError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("ply_data_test0.h5"), "{err}");
}

#[cfg(feature = "hdf5")]
#[test]
fn hdf5_shape_and_dataset_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("modelnet40");
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("ply_data_test0.h5");
    let root = only(tmp.path());
    let cases: Vec<(hdf5_pure::FileBuilder, &str)> = vec![
        {
            let mut b = hdf5_pure::FileBuilder::new();
            b.create_dataset("data").with_f32_data(&[0.0; 6]).with_shape(&[1, 3, 2]);
            b.create_dataset("label").with_u8_data(&[0]).with_shape(&[1]);
            (b, "[N, points, 3]")
        },
        {
            let mut b = hdf5_pure::FileBuilder::new();
            b.create_dataset("data").with_f32_data(&[0.0; 6]).with_shape(&[2, 1, 3]);
            b.create_dataset("label").with_u8_data(&[0]).with_shape(&[1]);
            (b, "one per sample")
        },
        {
            let mut b = hdf5_pure::FileBuilder::new();
            b.create_dataset("data").with_f32_data(&[0.0; 6]).with_shape(&[2, 1, 3]);
            (b, "\"label\"")
        },
        {
            let mut b = hdf5_pure::FileBuilder::new();
            b.create_dataset("data").with_i32_data(&[0; 6]).with_shape(&[2, 1, 3]);
            b.create_dataset("label").with_u8_data(&[0, 0]).with_shape(&[2]);
            (b, "float")
        },
        {
            let mut b = hdf5_pure::FileBuilder::new();
            b.create_dataset("data").with_f32_data(&[0.0, f32::NAN, 0.0]).with_shape(&[1, 1, 3]);
            b.create_dataset("label").with_u8_data(&[0]).with_shape(&[1]);
            (b, "non-finite")
        },
    ];
    for (b, needle) in cases {
        b.write(&f).unwrap();
        let err = load_points("modelnet40", Split::Test, &root, &opts(4)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("ply_data_test0.h5") && msg.contains(needle), "{needle}: {msg}");
    }
}

#[cfg(feature = "hdf5")]
#[test]
fn scanobjectnn_hdf5_variants() {
    let tmp = tempfile::tempdir().unwrap();
    let split_dir = tmp.path().join("ScanObjectNN/h5_files/main_split");
    std::fs::create_dir_all(&split_dir).unwrap();
    let test_file = split_dir.join("test_objectdataset_augmentedrot_scale75.h5");
    std::fs::copy(fixture("test_objectdataset_augmentedrot_scale75.h5"), &test_file).unwrap();
    let root = only(tmp.path());
    assert_eq!(locate_points("scanobjectnn", Split::Test, &root, &opts(8)).unwrap(), test_file);
    let test = load_points("scanobjectnn", Split::Test, &root, &opts(8)).unwrap();
    assert_eq!(test.labels, vec![14, 0, 7]);
    assert_eq!((test.num_classes, test.class_names[14].as_str(), test.class_names[0].as_str()), (15, "toilet", "bag"));
    let expect = normalised(&fixture_cloud(2, 8));
    assert!(test.sample(2).iter().zip(&expect).all(|(a, b)| (a - b).abs() < 1e-6));

    // OBJ_ONLY lives in main_split_nobg/, written here by the Rust writer
    let nobg = tmp.path().join("ScanObjectNN/h5_files/main_split_nobg");
    std::fs::create_dir_all(&nobg).unwrap();
    h5::tests::write_scan_h5(&nobg.join("training_objectdataset.h5"), &flat(&cloud(1, 1)), 5, &[9]);
    let o = PointOptions { scanobjectnn_variant: "obj_only".into(), ..opts(5) };
    let train = load_points("scanobjectnn", Split::Train, &root, &o).unwrap();
    assert_eq!((train.labels.clone(), train.sample(0).to_vec()), (vec![9], normalised(&cloud(1, 1))));
    let err = load_points("scanobjectnn", Split::Test, &root, &o).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DatasetError::Missing { .. }));
    assert!(msg.contains("main_split_nobg/test_objectdataset.h5") && msg.contains("obj_only"), "{msg}");
    assert!(msg.contains(&tmp.path().join("ScanObjectNN/h5_files").display().to_string()), "{msg}");

    let bad = PointOptions { scanobjectnn_variant: "hardest".into(), ..opts(5) };
    let err = load_points("scanobjectnn", Split::Test, &root, &bad).unwrap_err();
    assert!(matches!(err, DatasetError::InvalidOptions { .. }));
    assert!(err.to_string().contains("pb_t50_rs"), "{err}");
}

#[cfg(not(feature = "hdf5"))]
#[test]
fn hdf5_is_unsupported_without_the_feature() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("modelnet40_ply_hdf5_2048");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(fixture("ply_data_test0.h5"), dir.join("ply_data_test0.h5")).unwrap();
    let err = load_points("modelnet40", Split::Test, &only(tmp.path()), &opts(4)).unwrap_err();
    assert!(matches!(err, DatasetError::Unsupported { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("ply_data_test0.h5") && msg.contains("hdf5") && msg.contains("datasets/README.md"), "{msg}");
    let _ = fixture_cloud(0, 1);
}

#[test]
fn missing_point_datasets_list_searched_dirs_and_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let (x, e, p) = (tmp.path().join("x"), tmp.path().join("e"), tmp.path().join("p"));
    let root = DataRoot { explicit: Some(x.clone()), env: Some(e.clone()), project: p.clone() };
    for name in ["modelnet10", "modelnet40", "scanobjectnn"] {
        let err = load_points(name, Split::Test, &root, &opts(16)).unwrap_err();
        let msg = err.to_string();
        let DatasetError::Missing { dataset, searched, hint } = err else { panic!("expected Missing, got {msg}") };
        assert_eq!(dataset, name);
        assert_eq!(searched, root.candidates(name), "nothing exists, so only the candidates were looked at");
        assert!(!searched.is_empty());
        for s in &searched {
            assert!(msg.contains(&s.display().to_string()), "{msg}");
        }
        assert!(hint.contains(&format!("scripts/fetch-datasets.sh {name}")), "{hint}");
        assert!(msg.contains("--data-dir") && msg.contains("SNN_DATA_DIR"), "{msg}");
    }
    let c = root.candidates("modelnet10");
    for d in ["x/modelnet10", "x/ModelNet10", "x/modelnet10-pcd1024", "e/modelnet10", "p/modelnet10-pcd1024"] {
        assert!(c.contains(&tmp.path().join(d)), "{d} in {c:?}");
    }
    // an existing candidate: its existing known sub-directories are listed too
    std::fs::create_dir_all(x.join("modelnet10-pcd1024/ModelNet10/pcd/chair/test")).unwrap();
    let err = load_points("modelnet10", Split::Test, &root, &opts(16)).unwrap_err();
    let DatasetError::Missing { searched, hint, .. } = err else { panic!() };
    let pos = |d: &str| searched.iter().position(|s| *s == tmp.path().join(d)).unwrap_or_else(|| panic!("{d}"));
    assert!(pos("x/modelnet10-pcd1024") < pos("x/modelnet10-pcd1024/ModelNet10/pcd"));
    assert!(pos("x/modelnet10-pcd1024/ModelNet10/pcd") < pos("e/modelnet10"));
    assert!(!searched.contains(&x.join("modelnet10-pcd1024/pcd")), "only existing sub-directories");
    assert!(hint.contains("<class>/test/*.pcd") && hint.contains("modelnet10_test.txt"), "{hint}");
}

#[test]
fn names_options_and_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let root = only(tmp.path());
    let err = load_points("mnist", Split::Test, &root, &opts(16)).unwrap_err();
    assert!(matches!(err, DatasetError::UnknownDataset { .. }));
    for n in POINT_DATASET_NAMES {
        assert!(err.to_string().contains(n), "{err}");
        assert!(is_point_dataset(n));
        assert_eq!(default_point_augment(n), Some(PointAugment::default()));
        assert!(!DATASET_NAMES.contains(n));
    }
    assert!(!is_point_dataset("cifar10"));
    assert!(default_point_augment("cifar10").is_none());
    let a = PointAugment::default();
    assert_eq!((a.dropout_max, a.scale_low, a.scale_high, a.shift), (0.875, 0.8, 1.25, 0.1));
    for n in [0, MAX_NUM_POINTS + 1] {
        let e = load_points("synthetic-shapes3d", Split::Test, &root, &opts(n)).unwrap_err();
        assert!(matches!(e, DatasetError::InvalidOptions { .. }), "{e}");
        assert!(matches!(
            load_points("modelnet10", Split::Test, &root, &opts(n)),
            Err(DatasetError::InvalidOptions { .. })
        ));
    }
    let d = PointOptions::default();
    assert_eq!((d.num_points, d.train_size, d.test_size, d.seed), (1024, 0, 0, 0));
    assert_eq!(d.scanobjectnn_variant, "pb_t50_rs");
    let parsed: PointOptions = serde_json::from_str(r#"{"num_points": 512, "seed": 3}"#).unwrap();
    assert_eq!(parsed, PointOptions { num_points: 512, seed: 3, ..PointOptions::default() });
    assert!(serde_json::from_str::<PointOptions>(r#"{"num_point": 512}"#).is_err(), "unknown fields are rejected");
    let a2: PointAugment = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
    assert_eq!(a2, a);
}

#[test]
fn synthetic_shapes3d_through_load_points() {
    let tmp = tempfile::tempdir().unwrap();
    let root = only(tmp.path());
    let o = PointOptions { num_points: 64, train_size: 30, test_size: 20, seed: 4, ..PointOptions::default() };
    let train = load_points("synthetic-shapes3d", Split::Train, &root, &o).unwrap();
    let test = load_points("synthetic-shapes3d", Split::Test, &root, &o).unwrap();
    assert_eq!((train.len(), test.len(), train.num_points, train.num_classes), (30, 20, 64, 10));
    assert_ne!(train.fingerprint(), test.fingerprint());
    assert_eq!(train.fingerprint(), load_points("synthetic-shapes3d", Split::Train, &root, &o).unwrap().fingerprint());
    assert_unit_sphere(&test);
    assert!(matches!(
        locate_points("synthetic-shapes3d", Split::Train, &root, &o),
        Err(DatasetError::InvalidOptions { .. })
    ));
    let (batch, labels) = make_point_batch(&test, &[3, 1], None);
    assert_eq!(batch.len(), 2 * 3 * 64);
    assert_eq!(labels, vec![i64::from(test.labels[3]), i64::from(test.labels[1])]);
    assert_eq!(batch[64], test.sample(3)[1], "y plane starts at num_points");
}

/// The real ModelNet10 copy (PCD, 1,024 points): loaded whenever it is present, either
/// beside the project (`../shared/datasets`, as on the development machines and in CI) or
/// under `$SNN_DATA_DIR`.
#[test]
fn real_modelnet10_test_split_when_present() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets");
    let mut roots = Vec::new();
    if shared.join("modelnet10-pcd1024").is_dir() {
        roots.push(shared.canonicalize().unwrap());
    }
    if let Some(env) = DataRoot::from_env(None).env {
        let r = only(&env);
        if locate_points("modelnet10", Split::Test, &r, &PointOptions::default()).is_ok() {
            roots.push(env);
        } else {
            println!("SNN_DATA_DIR={} holds no ModelNet10", env.display());
        }
    }
    if roots.is_empty() {
        println!("skipped: no ModelNet10 beside the project or under SNN_DATA_DIR");
        return;
    }
    for r in roots {
        let root = only(&r);
        let dir = locate_points("modelnet10", Split::Test, &root, &PointOptions::default()).unwrap();
        println!("ModelNet10 test split from {}", dir.display());
        let set = load_points("modelnet10", Split::Test, &root, &PointOptions::default()).unwrap();
        assert_eq!((set.len(), set.num_points, set.num_classes), (908, 1024, 10));
        assert_eq!(set.class_names, pointsets::MODELNET10_CLASSES.map(String::from).to_vec());
        assert_eq!(set.class_counts(), vec![50, 100, 100, 86, 86, 100, 86, 100, 100, 100]);
        assert_unit_sphere(&set);
        assert!(set.points.iter().all(|v| v.is_finite()));
    }
}
