//! Crate-level tests of the ShapeNetPart loader on small release directories written in the
//! real format (`synsetoffset2category.txt`, `train_test_split/*.json`, `<synset>/<id>.txt`).

use super::*;
use crate::pointcloud::{Reduce, centroid_and_radius, fit_indices};
use crate::pointsets::sample_seed;
use std::path::Path;

fn only(root: &Path) -> DataRoot {
    DataRoot { explicit: Some(root.to_path_buf()), env: None, project: root.join("no-project-dir") }
}

fn opts(num_points: usize) -> PointOptions {
    PointOptions { num_points, ..PointOptions::default() }
}

/// A shape of the test release: its category index, shape id and number of points.
struct Shape {
    cat: usize,
    id: &'static str,
    points: usize,
}

/// Points of shape `id`: seeded random coordinates (multiples of 1/64), part label of point `j`
/// = the category's `j % count`-th part (its own range of global part ids, see
/// `shapenet_part::PART_COUNTS`).
fn shape_points(cat: usize, id: &str, m: usize) -> (Vec<f32>, Vec<u8>) {
    let seed = id.bytes().fold(cat as u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let mut rng = Rng::new(seed);
    let points = (0..3 * m).map(|_| rng.below(4096) as f32 / 64.0 - 32.0).collect();
    let own = &shapenet_part::category_parts()[cat];
    let parts = (0..m).map(|j| (own.start + j % own.len()) as u8).collect();
    (points, parts)
}

/// The text of a point file as the release writes it: `x y z nx ny nz part` with `%f` floats.
fn point_file(points: &[f32], parts: &[u8]) -> String {
    points
        .chunks(3)
        .zip(parts)
        .map(|(p, &l)| format!("{:.6} {:.6} {:.6} 0.000000 0.000000 1.000000 {:.6}\n", p[0], p[1], p[2], f32::from(l)))
        .collect()
}

/// A JSON list as Python's `json.dump` writes it (`["a", "b"]`).
fn json_list(entries: &[String]) -> String {
    format!("[{}]", entries.iter().map(|e| format!("\"{e}\"")).collect::<Vec<_>>().join(", "))
}

/// Writes a release directory with all 16 categories listed and the given shapes per list.
fn write_release(dir: &Path, train: &[Shape], val: &[Shape], test: &[Shape]) {
    std::fs::create_dir_all(dir.join("train_test_split")).unwrap();
    let cats: String = shapenet_part::CATEGORIES.iter().map(|(n, s)| format!("{n}\t{s}\n")).collect();
    std::fs::write(dir.join("synsetoffset2category.txt"), cats).unwrap();
    for (list, shapes) in [("train", train), ("val", val), ("test", test)] {
        let mut entries = Vec::new();
        // listed in reverse (the real lists are shuffled): the loader sorts
        for s in shapes.iter().rev() {
            let synset = shapenet_part::CATEGORIES[s.cat].1;
            std::fs::create_dir_all(dir.join(synset)).unwrap();
            let (p, l) = shape_points(s.cat, s.id, s.points);
            std::fs::write(dir.join(synset).join(format!("{}.txt", s.id)), point_file(&p, &l)).unwrap();
            entries.push(format!("shape_data/{synset}/{}", s.id));
        }
        std::fs::write(dir.join(format!("train_test_split/shuffled_{list}_file_list.json")), json_list(&entries))
            .unwrap();
    }
}

fn standard_release(dir: &Path) {
    write_release(
        dir,
        &[
            Shape { cat: 0, id: "b2", points: 40 },
            Shape { cat: 4, id: "c1", points: 7 },
            Shape { cat: 0, id: "a1", points: 9 },
        ],
        &[Shape { cat: 0, id: "a9", points: 12 }],
        &[Shape { cat: 15, id: "t1", points: 30 }, Shape { cat: 4, id: "c2", points: 5 }],
    );
}

/// What the loader must produce for a shape at index `i` of the sorted split.
fn expected_sample(cat: usize, id: &str, m: usize, n: usize, seed: u64, split: Split, i: usize) -> (Vec<f32>, Vec<u8>) {
    let (p, l) = shape_points(cat, id, m);
    let idx = fit_indices(m, n, Reduce::Random(sample_seed(seed, split, i)));
    let mut pts: Vec<f32> = idx.iter().flat_map(|&s| p[3 * s..3 * s + 3].to_vec()).collect();
    normalize_unit_sphere(&mut pts);
    (pts, idx.iter().map(|&s| l[s]).collect())
}

fn assert_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    for (k, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() < 1e-5, "{what}: value {k}: {x} vs {y}");
    }
}

#[test]
fn shapenet_part_release_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shapenetcore_partanno_segmentation_benchmark_v0_normal");
    standard_release(&dir);
    let root = only(tmp.path());
    assert!(is_point_dataset("shapenet-part") && POINT_DATASET_NAMES.contains(&"shapenet-part"));
    assert_eq!(locate_points("shapenet-part", Split::Train, &root, &opts(16)).unwrap(), dir);

    let n = 16;
    let train = load_shapenet_part(Split::Train, &root, &opts(n)).unwrap();
    let c = &train.cloud;
    assert_eq!(c.name, "shapenet-part");
    assert_eq!((c.len(), c.num_points, c.num_classes), (4, n, 16));
    assert_eq!(c.class_names, shapenet_part::CATEGORIES.map(|(name, _)| name.to_string()).to_vec());
    // train + val, sorted by category then shape id
    assert_eq!(c.labels, vec![0, 0, 0, 4]);
    assert_eq!(train.part_labels.len(), 4 * n);
    for (i, (cat, id, m)) in [(0, "a1", 9), (0, "a9", 12), (0, "b2", 40), (4, "c1", 7)].into_iter().enumerate() {
        let (pts, parts) = expected_sample(cat, id, m, n, 0, Split::Train, i);
        assert_close(c.sample(i), &pts, id);
        assert_eq!(train.sample_parts(i), &parts[..], "{id}");
        let (_, r) = centroid_and_radius(c.sample(i));
        assert!((r - 1.0).abs() < 1e-5, "{id}: radius {r}");
    }
    // fewer points than asked: repeated cyclically, the part labels with them
    let (raw, raw_parts) = shape_points(0, "a1", 9);
    let mut rep: Vec<f32> = (0..n).flat_map(|j| raw[3 * (j % 9)..3 * (j % 9) + 3].to_vec()).collect();
    normalize_unit_sphere(&mut rep);
    assert_close(c.sample(0), &rep, "a1 repeated");
    assert_eq!(train.sample_parts(0), &(0..n).map(|j| raw_parts[j % 9]).collect::<Vec<_>>()[..]);
    // more points than asked: a subset in file order, parts following their points
    let (raw, _) = shape_points(0, "b2", 40);
    let idx = fit_indices(40, n, Reduce::Random(sample_seed(0, Split::Train, 2)));
    assert!(idx.windows(2).all(|w| w[0] < w[1]) && idx.len() == n);
    assert!(idx.iter().any(|&s| s >= n), "a random subset, not the first points: {idx:?}");
    let sub: Vec<f32> = idx.iter().flat_map(|&s| raw[3 * s..3 * s + 3].to_vec()).collect();
    let mut sub_n = sub.clone();
    normalize_unit_sphere(&mut sub_n);
    assert_close(c.sample(2), &sub_n, "b2 subset");
    assert!(train.sample_parts(2).iter().zip(&idx).all(|(&p, &s)| usize::from(p) == s % 4));

    // load_points gives the same clouds
    let plain = load_points("shapenet-part", Split::Train, &root, &opts(n)).unwrap();
    assert_eq!(plain.fingerprint(), c.fingerprint());
    assert_eq!(plain.labels, c.labels);

    let test = load_shapenet_part(Split::Test, &root, &opts(n)).unwrap();
    assert_eq!(test.cloud.labels, vec![4, 15]);
    let (pts, parts) = expected_sample(15, "t1", 30, n, 0, Split::Test, 1);
    assert_close(test.cloud.sample(1), &pts, "t1");
    assert_eq!(test.sample_parts(1), &parts[..]);
    assert!(test.sample_parts(1).iter().all(|&p| (47..50).contains(&p)));

    // seeds and subsets
    let seeded = load_points("shapenet-part", Split::Train, &root, &PointOptions { seed: 5, ..opts(n) }).unwrap();
    assert_ne!(seeded.fingerprint(), c.fingerprint());
    assert_eq!(seeded.sample(0), c.sample(0), "a cloud with fewer points does not depend on the seed");
    let again = load_points("shapenet-part", Split::Train, &root, &opts(n)).unwrap();
    assert_eq!(again.fingerprint(), c.fingerprint());
    let sub = load_shapenet_part(Split::Train, &root, &PointOptions { train_size: 2, ..opts(n) }).unwrap();
    assert_eq!((sub.cloud.len(), sub.part_labels.len()), (2, 2 * n));
    for i in 0..2 {
        let j = (0..4).find(|&j| c.sample(j) == sub.cloud.sample(i)).expect("a sample of the full split");
        assert_eq!(sub.sample_parts(i), train.sample_parts(j));
    }
    // batches work as for the other point sets
    let (batch, labels) = make_point_batch(c, &[3, 0], None);
    assert_eq!((batch.len(), labels), (2 * 3 * n, vec![4, 0]));
}

#[test]
fn shapenet_part_directory_variants_resolve() {
    for sub in [
        "shapenetcore_partanno_segmentation_benchmark_v0_normal",
        "shapenet-part",
        "shapenet-part/shapenetcore_partanno_segmentation_benchmark_v0_normal",
        "ShapeNetPart/shapenetcore_partanno_segmentation_benchmark_v0_normal",
        "shapenet_part",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(sub);
        write_release(&dir, &[Shape { cat: 1, id: "x", points: 3 }], &[], &[Shape { cat: 2, id: "y", points: 3 }]);
        let root = only(tmp.path());
        assert_eq!(locate_points("shapenet-part", Split::Test, &root, &opts(4)).unwrap(), dir, "{sub}");
        assert_eq!(load_points("shapenet-part", Split::Train, &root, &opts(4)).unwrap().labels, vec![1], "{sub}");
    }
    // an empty val list is fine; the json may be pretty-printed
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shapenet-part");
    write_release(&dir, &[Shape { cat: 3, id: "z", points: 3 }], &[], &[]);
    std::fs::write(dir.join("train_test_split/shuffled_train_file_list.json"), "[\n    \"shape_data/02958343/z\"\n]\n")
        .unwrap();
    let set = load_points("shapenet-part", Split::Train, &only(tmp.path()), &opts(4)).unwrap();
    assert_eq!(set.labels, vec![3]);
    assert!(load_points("shapenet-part", Split::Test, &only(tmp.path()), &opts(4)).unwrap().is_empty());
}

#[test]
fn shapenet_part_bad_files_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shapenetcore_partanno_segmentation_benchmark_v0_normal");
    let root = only(tmp.path());
    let err_of = |split| load_points("shapenet-part", split, &root, &opts(8)).unwrap_err();
    let split_file = |s: &str| dir.join(format!("train_test_split/shuffled_{s}_file_list.json"));

    standard_release(&dir);
    let cats = dir.join("synsetoffset2category.txt");
    let lines: Vec<String> = shapenet_part::CATEGORIES.iter().map(|(n, s)| format!("{n}\t{s}")).collect();
    std::fs::write(&cats, lines[..15].join("\n")).unwrap();
    let e = err_of(Split::Train);
    assert!(matches!(e, DatasetError::Layout { .. }), "{e}");
    assert!(
        e.to_string().contains("synsetoffset2category.txt")
            && e.to_string().contains("expected 16 categories, found 15"),
        "{e}"
    );
    std::fs::write(&cats, lines.join("\n").replace("Bag\t02773838", "Bag")).unwrap();
    let e = err_of(Split::Train);
    assert!(e.to_string().contains("synsetoffset2category.txt: line 2"), "{e}");
    std::fs::write(&cats, lines.join("\n").replace("02773838", "02691156")).unwrap();
    assert!(err_of(Split::Train).to_string().contains("listed twice"));

    standard_release(&dir);
    std::fs::write(split_file("val"), "[\"shape_data/02691156/a9\", ]").unwrap();
    let e = err_of(Split::Train);
    assert!(matches!(e, DatasetError::Malformed { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("shuffled_val_file_list.json") && msg.contains("byte 27") && msg.contains("expected a string"),
        "{msg}"
    );
    assert_eq!(load_points("shapenet-part", Split::Test, &root, &opts(8)).unwrap().len(), 2, "test split intact");

    // A point labelled with a part of another category (Table's part 47 in an Airplane file).
    standard_release(&dir);
    let airplane = dir.join(shapenet_part::CATEGORIES[0].1).join("a1.txt");
    let text = std::fs::read_to_string(&airplane).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[2] = "0.5 0.5 0.5 0 0 1 47.000000".into();
    std::fs::write(&airplane, lines.join("\n")).unwrap();
    let e = err_of(Split::Train);
    assert!(matches!(e, DatasetError::Malformed { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("a1.txt") && msg.contains("point 3") && msg.contains("not a part of Airplane"), "{msg}");

    standard_release(&dir);
    std::fs::write(split_file("val"), "[\"shape_data/99999999/a9\"]").unwrap();
    let e = err_of(Split::Train);
    assert!(matches!(e, DatasetError::Layout { .. }), "{e}");
    assert!(e.to_string().contains("entry 0") && e.to_string().contains("synset 99999999 is not in"), "{e}");
    std::fs::write(split_file("val"), "[\"a9\"]").unwrap();
    assert!(err_of(Split::Train).to_string().contains("shape_data/<synset>/<shape id>"));
    std::fs::write(split_file("val"), "[\"shape_data/02691156/zz\"]").unwrap();
    let e = err_of(Split::Train);
    assert!(matches!(e, DatasetError::Io { .. }) && e.to_string().contains("02691156/zz.txt"), "{e}");

    standard_release(&dir);
    let t1 = dir.join("04379243/t1.txt");
    let text = std::fs::read_to_string(&t1).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[4] = "0.1 0.2 0.3 0 0 1";
    std::fs::write(&t1, lines.join("\n")).unwrap();
    let e = err_of(Split::Test);
    assert!(matches!(e, DatasetError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("t1.txt: line 5") && e.to_string().contains("found 6 fields"), "{e}");
    lines[4] = "0.1 0.2 0.3 0 0 1 7.5";
    std::fs::write(&t1, lines.join("\n")).unwrap();
    assert!(err_of(Split::Test).to_string().contains("part label `7.5`"));
}

#[test]
fn missing_shapenet_part_lists_searched_dirs_and_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let (x, e, p) = (tmp.path().join("x"), tmp.path().join("e"), tmp.path().join("p"));
    let root = DataRoot { explicit: Some(x.clone()), env: Some(e.clone()), project: p.clone() };
    let err = load_shapenet_part(Split::Train, &root, &opts(16)).unwrap_err();
    let msg = err.to_string();
    let DatasetError::Missing { dataset, searched, hint } = err else { panic!("expected Missing, got {msg}") };
    assert_eq!(dataset, "shapenet-part");
    assert_eq!(searched, root.candidates("shapenet-part"));
    for d in [
        "x/shapenetcore_partanno_segmentation_benchmark_v0_normal",
        "x/shapenet-part",
        "e/ShapeNetPart",
        "p/shapenet_part",
    ] {
        assert!(searched.contains(&tmp.path().join(d)), "{d} in {searched:?}");
        assert!(msg.contains(&tmp.path().join(d).display().to_string()), "{msg}");
    }
    assert!(hint.contains("shapenetcore_partanno_segmentation_benchmark_v0_normal.zip"), "{hint}");
    assert!(hint.contains("shuffled_train_file_list.json") && hint.contains("shuffled_val_file_list.json"), "{hint}");
    assert!(msg.contains("--data-dir") && msg.contains("SNN_DATA_DIR"), "{msg}");
    assert!(!hint.contains("scripts/fetch-datasets.sh shapenet-part"), "the script does not fetch it: {hint}");

    // a release with only the test list: test loads, train is missing (and names the nested dir)
    let dir = x.join("shapenet-part/shapenetcore_partanno_segmentation_benchmark_v0_normal");
    write_release(&dir, &[], &[], &[Shape { cat: 5, id: "q", points: 4 }]);
    std::fs::remove_file(dir.join("train_test_split/shuffled_val_file_list.json")).unwrap();
    assert_eq!(load_shapenet_part(Split::Test, &root, &opts(4)).unwrap().cloud.labels, vec![5]);
    let err = load_shapenet_part(Split::Train, &root, &opts(4)).unwrap_err();
    let DatasetError::Missing { searched, .. } = err else { panic!("{err}") };
    assert!(searched.contains(&dir), "{searched:?}");
    // the usual option checks apply
    assert!(matches!(load_shapenet_part(Split::Test, &root, &opts(0)), Err(DatasetError::InvalidOptions { .. })));
    assert_eq!(default_point_augment("shapenet-part"), Some(PointAugment::default()));
}
