//! Crate-level tests: dataset resolution through [`DataRoot`] and the public entry points.

use super::*;
use std::path::{Path, PathBuf};

fn root_in(explicit: Option<&Path>, env: Option<&Path>, project: &Path) -> DataRoot {
    DataRoot {
        explicit: explicit.map(Path::to_path_buf),
        env: env.map(Path::to_path_buf),
        project: project.to_path_buf(),
    }
}

#[test]
fn unknown_dataset_lists_valid_names() {
    let tmp = tempfile::tempdir().unwrap();
    let err = load_images("imagenet-21k", Split::Train, &root_in(None, None, tmp.path()), &SyntheticOptions::default())
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DatasetError::UnknownDataset { .. }));
    for n in DATASET_NAMES {
        assert!(msg.contains(n), "{msg}");
    }
    assert!(msg.contains("imagenet-21k"));
}

#[test]
fn missing_dataset_lists_searched_paths_and_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let x = tmp.path().join("x");
    let e = tmp.path().join("e");
    let p = tmp.path().join("p");
    let root = root_in(Some(&x), Some(&e), &p);
    for name in ["mnist", "cifar10", "cifar100", "imagenet"] {
        let err = load_images(name, Split::Test, &root, &SyntheticOptions::default()).unwrap_err();
        let msg = err.to_string();
        let DatasetError::Missing { dataset, searched, hint } = err else {
            panic!("expected Missing, got {msg}");
        };
        assert_eq!(dataset, name);
        assert_eq!(searched, root.candidates(name));
        for s in &searched {
            assert!(msg.contains(&s.display().to_string()), "{msg}");
        }
        assert!(hint.contains(&format!("scripts/fetch-datasets.sh {name}")), "{hint}");
        assert!(msg.contains("--data-dir") && msg.contains("SNN_DATA_DIR"), "{msg}");
        assert!(msg.contains(name));
    }
    let hint = error::missing_hint("fashion-mnist", "files");
    assert!(hint.contains("apt-get install dataset-fashion-mnist"), "{hint}");
    assert!(hint.contains("scripts/fetch-datasets.sh fashion-mnist"), "{hint}");
}

#[test]
fn explicit_root_wins_over_env_and_project() {
    let tmp = tempfile::tempdir().unwrap();
    let x = tmp.path().join("x");
    let e = tmp.path().join("e");
    let p = tmp.path().join("p");
    // env: official sub-directory layout; explicit: files directly in the root
    let env_dir = e.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&env_dir).unwrap();
    cifar::tests::write_cifar10(&env_dir);
    std::fs::create_dir_all(&x).unwrap();
    cifar::tests::write_cifar10(&x);
    let test_file = x.join("test_batch.bin");
    std::fs::write(&test_file, cifar::tests::record(&[9], 1)).unwrap();

    let opts = SyntheticOptions::default();
    let set = load_images("cifar10", Split::Test, &root_in(Some(&x), Some(&e), &p), &opts).unwrap();
    assert_eq!(set.labels, vec![9], "explicit root used");
    let set = load_images("cifar10", Split::Test, &root_in(None, Some(&e), &x), &opts).unwrap();
    assert_eq!(set.labels, vec![5, 6, 7], "env root before project");
    let set = load_images("cifar10", Split::Test, &root_in(None, None, &x), &opts).unwrap();
    assert_eq!(set.labels, vec![9], "project root used last");
    assert_eq!(set.name, "cifar10");
}

#[test]
fn mnist_found_in_torchvision_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("MNIST/raw");
    std::fs::create_dir_all(&raw).unwrap();
    std::fs::write(raw.join("train-images-idx3-ubyte.gz"), idx::tests::gz(&idx::tests::images_bytes(4, 28, 28)))
        .unwrap();
    std::fs::write(raw.join("train-labels-idx1-ubyte"), idx::tests::labels_bytes(&[1, 1, 2, 3])).unwrap();
    let root = root_in(Some(tmp.path()), None, &tmp.path().join("none"));
    let set = load_images("mnist", Split::Train, &root, &SyntheticOptions::default()).unwrap();
    assert_eq!(set.shape, [1, 28, 28]);
    assert_eq!(set.labels, vec![1, 1, 2, 3]);
    assert_eq!(set.name, "mnist");
    assert_eq!(set.class_names[3], "3");
    // the test split is not there
    assert!(matches!(
        load_images("mnist", Split::Test, &root, &SyntheticOptions::default()),
        Err(DatasetError::Missing { .. })
    ));
}

#[test]
fn synthetic_through_load_images() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = SyntheticOptions { train_size: 30, test_size: 20, image_size: 16, seed: 4 };
    let root = root_in(None, None, tmp.path());
    let train = load_images("synthetic-shapes2d", Split::Train, &root, &opts).unwrap();
    let test = load_images("synthetic-shapes2d", Split::Test, &root, &opts).unwrap();
    assert_eq!((train.len(), test.len()), (30, 20));
    assert_eq!(train.shape, [1, 16, 16]);
    assert_ne!(train.fingerprint(), test.fingerprint());
    assert_eq!(train.num_classes, 10);
}

#[test]
fn imagenet_through_load_images() {
    let tmp = imagenet::tests::tree();
    let root = root_in(None, Some(tmp.path()), &tmp.path().join("none"));
    let synthetic = SyntheticOptions::default();
    let all = load_images("imagenet", Split::Test, &root, &synthetic).unwrap();
    assert_eq!((all.len(), all.shape, all.num_classes), (6, [3, 224, 224], 3));
    let opts = ImageNetOptions { image_size: 8, resize: 8, max_per_class: Some(2) };
    let some = load_images_with("imagenet", Split::Train, &root, &synthetic, &opts).unwrap();
    assert_eq!(some.labels, [0, 0, 1, 2, 2]);
    assert_eq!(some.shape, [3, 8, 8]);
    let other = load_images_with("synthetic-shapes2d", Split::Test, &root, &synthetic, &opts).unwrap();
    assert_eq!(other.len(), synthetic.test_size, "imagenet options are ignored for other sets");
}

#[test]
fn defaults() {
    assert_eq!(SyntheticOptions::default().train_size, 4000);
    assert_eq!(SyntheticOptions::default().image_size, 28);
    let c = default_normalization("cifar10").unwrap();
    assert_eq!(c.mean, vec![0.4914, 0.4822, 0.4465]);
    assert_eq!(c.std, vec![0.2470, 0.2435, 0.2616]);
    assert_eq!(default_normalization("cifar100").unwrap().mean[0], 0.5071);
    assert_eq!(default_normalization("mnist").unwrap().std, vec![0.3081]);
    assert_eq!(default_normalization("fashion-mnist").unwrap().mean, vec![0.2860]);
    assert!(default_normalization("synthetic-shapes2d").is_some());
    let i = default_normalization("imagenet").unwrap();
    assert_eq!((i.mean, i.std), (vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225]));
    assert!(default_augment("imagenet").is_none());
    assert!(default_normalization("nope").is_none());
    for n in DATASET_NAMES {
        assert!(default_normalization(n).is_some(), "{n}");
    }
    let a = default_augment("cifar10").unwrap();
    assert_eq!(a.crop_padding, 4);
    assert!(a.horizontal_flip);
    assert!(default_augment("cifar100").is_some());
    assert!(default_augment("mnist").is_none());
    assert!(default_augment("synthetic-shapes2d").is_none());
    assert_eq!(Split::Test.to_string(), "test");
}

/// Loads the Debian `dataset-fashion-mnist` copy when it is installed.
#[test]
fn system_fashion_mnist_if_installed() {
    let sys = PathBuf::from("/usr/share/datasets/fashion-mnist");
    if idx::find_split(&sys, Split::Train).is_none() {
        println!("skipped: {} not installed", sys.display());
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = root_in(None, None, &tmp.path().join("none"));
    let opts = SyntheticOptions::default();
    let train = load_images("fashion-mnist", Split::Train, &root, &opts).unwrap();
    let test = load_images("fashion-mnist", Split::Test, &root, &opts).unwrap();
    assert_eq!(train.len(), 60_000);
    assert_eq!(test.len(), 10_000);
    assert_eq!(train.shape, [1, 28, 28]);
    assert_eq!(train.class_counts(), vec![6000; 10]);
    assert_eq!(test.class_counts(), vec![1000; 10]);
    let mean = train.pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / train.pixels.len() as f64 / 255.0;
    assert!((mean - 0.2860).abs() < 0.001, "mean {mean}");
}

/// Loads CIFAR-10 from `$SNN_DATA_DIR` when it points at a root holding it.
#[test]
fn cifar10_from_snn_data_dir_if_present() {
    let root = DataRoot::from_env(None);
    let Some(env) = root.env.clone() else {
        println!("skipped: SNN_DATA_DIR is not set");
        return;
    };
    let only_env = DataRoot { explicit: None, env: Some(env.clone()), project: env.clone() };
    let dir =
        only_env.candidates("cifar10").into_iter().find(|d| cifar::has_split(d, cifar::Variant::Cifar10, Split::Train));
    if dir.is_none() {
        println!("skipped: no CIFAR-10 under SNN_DATA_DIR={}", env.display());
        return;
    }
    let opts = SyntheticOptions::default();
    let train = load_images("cifar10", Split::Train, &only_env, &opts).unwrap();
    let test = load_images("cifar10", Split::Test, &only_env, &opts).unwrap();
    assert_eq!(train.len(), 50_000);
    assert_eq!(test.len(), 10_000);
    assert_eq!(train.shape, [3, 32, 32]);
    assert_eq!(train.class_counts(), vec![5000; 10]);
    assert_eq!(test.class_counts(), vec![1000; 10]);
    assert_eq!(train.class_names[0], "airplane");
}
