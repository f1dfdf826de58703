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
    let (src, dst) =
        (cache.dir("train", &train_key(&one, 0, &fp).unwrap()), cache.dir("train", &train_key(&two, 0, &fp).unwrap()));
    std::fs::create_dir_all(&dst).unwrap();
    for f in ["last-epoch.bpk", "last-epoch-optim.bpk", "progress.json"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    let resumed = train_or_load(&two, 0, &data, &cache, &device, &shipped).unwrap();
    assert_eq!(resumed.progress.epochs_done, 2);
    assert_eq!(resumed.progress.history.len(), 2);
    assert_eq!(resumed.progress.history[0], first.progress.history[0], "epoch 1 must not be retrained");
    assert!(cache.is_done("train", &train_key(&two, 0, &fp).unwrap()));
}

#[test]
fn a_committed_partial_training_resumes_on_a_fresh_cache() {
    // The files of an unfinished 2-epoch run (after epoch 1) committed under
    // `<shipped>/partial/<key>/`: a fresh cache resumes from them instead of starting over.
    let dir = tempfile::tempdir().unwrap();
    let shipped = dir.path().join("shipped");
    let device = Device::flex();
    let one = spec(1, 0.05);
    let data = Data::load(&one.dataset, &DataRoot::from_env(None)).unwrap();
    let first_cache = Cache::new(dir.path().join("cache1"));
    let first = train_or_load(&one, 0, &data, &first_cache, &device, &shipped).unwrap();
    let two = spec(2, 0.05);
    let fp = data.train_fingerprint.clone();
    let src = first_cache.dir("train", &train_key(&one, 0, &fp).unwrap());
    let partial = shipped.join(runner::train::PARTIAL_DIR).join(train_key(&two, 0, &fp).unwrap());
    std::fs::create_dir_all(&partial).unwrap();
    for f in ["last-epoch.bpk", "last-epoch-optim.bpk"] {
        std::fs::copy(src.join(f), partial.join(f)).unwrap();
    }
    // Mark the committed epoch's loss, so a retrained epoch 1 would show.
    let mut progress: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("progress.json")).unwrap()).unwrap();
    progress["history"][0][0] = serde_json::json!(123.0);
    std::fs::write(partial.join("progress.json"), serde_json::to_vec(&progress).unwrap()).unwrap();
    let fresh = Cache::new(dir.path().join("cache2"));
    let resumed = train_or_load(&two, 0, &data, &fresh, &device, &shipped).unwrap();
    assert_eq!(resumed.progress.epochs_done, 2);
    assert_eq!(resumed.progress.history[0].0, 123.0, "epoch 1 comes from the committed state, not retrained");
    assert_ne!(first.progress.history[0].0, 123.0);
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

/// ReLU in every slot, keeping each slot's output.
struct ReluRecorder(Vec<Vec<f32>>);

impl zoo::SlotHook for ReluRecorder {
    fn apply(&mut self, _slot: usize, x: burn::prelude::Tensor<4>) -> burn::prelude::Tensor<4> {
        let y = burn::tensor::activation::relu(x);
        self.0.push(zoo::tensor_values(y.clone()));
        y
    }
}

fn percentile_of_positive(values: &[f32], p: f64) -> f32 {
    let mut positive: Vec<f32> = values.iter().copied().filter(|v| *v > 0.0).collect();
    zoo::percentile_of(&mut positive, p)
}

fn fine_tune_spec(base: &Spec, init: &Path, qcfs: bool) -> Spec {
    let mut s = base.clone();
    s.train.init_weights = Some(init.to_path_buf());
    if qcfs {
        s.model.activation = zoo::AnnActivation::Qcfs;
        s.model.qcfs_levels = 4;
        s.train.qcfs_lambda_percentile = Some(99.0);
    }
    s
}

#[test]
fn fine_tuning_starts_from_init_weights_with_qcfs_bounds_from_data() {
    use burn::module::Module;
    use zoo::Convertible;
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let shipped = dir.path().join("shipped");
    let device = Device::flex();
    let relu = spec(1, 0.05);
    let data = Data::load(&relu.dataset, &DataRoot::from_env(None)).unwrap();
    let trained = train_or_load(&relu, 0, &data, &cache, &device, &shipped).unwrap();
    let init = dir.path().join("relu.bpk");
    trained.model.clone().save_file(&init).unwrap();

    // The starting point: the ReLU weights, and λ_l = p99 of slot l's positive ReLU outputs on
    // the first batch of epoch 1's order.
    let qcfs = fine_tune_spec(&relu, &init, true);
    let fresh = zoo::build_model(&qcfs.model, data.input_shape(), data.classes(), &device).unwrap();
    let start = runner::train::initial_model(&qcfs, 0, &data, fresh, &device).unwrap();
    let first = runner::train::first_training_batch(data.train.len(), qcfs.train.batch_size, 0);
    let (x, _, _) = runner::data::batch_tensors(&data.train, &first, &data.norm, None, &device);
    let mut reference = ReluRecorder(Vec::new());
    let want_logits =
        zoo::tensor_values(trained.model.forward_ctx(x.clone(), &mut zoo::ForwardCtx::with_hook(&mut reference)));
    let lambdas = start.activation().expect("QCFS model").lambdas();
    assert_eq!(lambdas.len(), reference.0.len());
    for (slot, (got, outputs)) in lambdas.iter().zip(&reference.0).enumerate() {
        let want = percentile_of_positive(outputs, 99.0);
        assert!((got - want).abs() <= 1e-4 * want.max(1.0), "slot {slot}: λ {got} vs p99 {want}");
        assert!((got - 8.0).abs() > 1e-3, "slot {slot} kept the fixed init");
    }
    let mut relu_hook = ReluRecorder(Vec::new());
    let got_logits = zoo::tensor_values(start.forward_ctx(x.clone(), &mut zoo::ForwardCtx::with_hook(&mut relu_hook)));
    assert_eq!(got_logits, want_logits, "the QCFS model must start from the ReLU weights");

    // Fine-tuning trains the imported weights (not only λ): a ReLU fine-tune moves the logits.
    let tuned = train_or_load(&fine_tune_spec(&relu, &init, false), 0, &data, &cache, &device, &shipped).unwrap();
    assert_ne!(zoo::tensor_values(tuned.model.forward(x.clone())), zoo::tensor_values(trained.model.forward(x)));
    assert_ne!(tuned.key, trained.key);
    let tuned_qcfs = train_or_load(&qcfs, 0, &data, &cache, &device, &shipped).unwrap();
    assert_eq!(tuned_qcfs.progress.epochs_done, 1);
}

#[test]
fn a_missing_init_weights_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("cache"));
    let s = fine_tune_spec(&spec(1, 0.05), &dir.path().join("nowhere.bpk"), false);
    let data = Data::load(&s.dataset, &DataRoot::from_env(None)).unwrap();
    let err =
        train_or_load(&s, 0, &data, &cache, &Device::flex(), &dir.path().join("shipped")).err().expect("must fail");
    let msg = format!("{err:#}");
    assert!(msg.contains("train.init_weights") && msg.contains("nowhere.bpk"), "{msg}");
}

#[test]
fn init_weights_are_keyed_by_their_contents_not_their_name_or_place() {
    let dir = tempfile::tempdir().unwrap();
    let base = spec(1, 0.05);
    let (a, b) = (dir.path().join("a/w.bpk"), dir.path().join("b/w.bpk"));
    for (path, bytes) in [(&a, b"same bytes, same size"), (&b, b"same bytes, same size")] {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let key = |init: &Path| train_key(&fine_tune_spec(&base, init, false), 0, "fp").unwrap();
    assert_eq!(key(&a), key(&b), "the same file in another place is the same ANN");
    // Another file of the same name and size (a retrained checkpoint) is another ANN.
    std::fs::write(&b, b"other bytes, same size").unwrap();
    assert_ne!(key(&a), key(&b));
    assert_ne!(key(&a), train_key(&base, 0, "fp").unwrap());
}
