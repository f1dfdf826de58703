//! Training: resume from the last completed epoch; NaN losses stop with a clear error.

use std::path::Path;

use burn::prelude::Device;
use datasets::DataRoot;
use runner::cache::Cache;
use runner::data::Data;
use runner::spec::{Spec, parse_table};
use runner::train::{train_key, train_or_load};

fn spec(epochs: usize, lr: f64) -> Spec {
    let text = format!(
        r#"
[dataset]
name = "synthetic-shapes2d"
[dataset.synthetic]
train_size = 200
test_size = 50
image_size = 12
seed = 3
[model]
name = "small-cnn"
width = 0.25
[train]
optimizer = "sgd"
lr = {lr:e}
batch_size = 50
epochs = {epochs}
schedule = "constant"
[[method]]
kind = "max-norm"
[eval]
timesteps = [1]
"#
    );
    parse_table(Path::new("t.toml"), &toml::from_str(&text).unwrap()).unwrap()
}

#[test]
fn training_resumes_from_the_last_completed_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let shipped = dir.path().join("shipped");
    let device = Device::flex();
    let one = spec(1, 0.05);
    let data = Data::load(&one.dataset, &DataRoot::from_env(None)).unwrap();
    let first = train_or_load(&one, 0, &data, &cache, &device, &shipped).unwrap();
    assert_eq!(first.progress.epochs_done, 1);

    // Pretend a 2-epoch run was killed after its first epoch: its directory holds the
    // 1-epoch checkpoint, optimizer state and progress, but no DONE marker.
    let two = spec(2, 0.05);
    let fp = data.train_fingerprint.clone();
    assert_eq!(fp, data.train.fingerprint());
    let (src, dst) = (cache.dir("train", &train_key(&one, 0, &fp)), cache.dir("train", &train_key(&two, 0, &fp)));
    std::fs::create_dir_all(&dst).unwrap();
    for f in ["last-epoch.bpk", "last-epoch-optim.bpk", "progress.json"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    let resumed = train_or_load(&two, 0, &data, &cache, &device, &shipped).unwrap();
    assert_eq!(resumed.progress.epochs_done, 2);
    assert_eq!(resumed.progress.history.len(), 2);
    assert_eq!(resumed.progress.history[0], first.progress.history[0], "epoch 1 must not be retrained");
    assert!(cache.is_done("train", &train_key(&two, 0, &fp)));
}

#[test]
fn a_diverging_loss_stops_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let s = spec(3, 1e30);
    let data = Data::load(&s.dataset, &DataRoot::from_env(None)).unwrap();
    let err =
        train_or_load(&s, 0, &data, &cache, &Device::flex(), &dir.path().join("shipped")).err().expect("must fail");
    let msg = format!("{err:#}");
    assert!(msg.contains("diverged") && msg.contains("epoch"), "{msg}");
}
