//! ANN training (burn, custom loop) with a resumable, content-addressed cache.

use std::io::IsTerminal;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use zoo::{Network, build_model, import_weights};

use crate::cache::{Cache, read_json, write_json, write_with};
use crate::data::{Data, batch_tensors};
use crate::plan::{TRAIN_STAGE_VERSION, stage_key};
use crate::spec::{AugmentChoice, OptimizerKind, Schedule, Spec, TrainSection};

/// Training progress saved after each completed epoch.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainProgress {
    /// Completed epochs.
    pub epochs_done: usize,
    /// Per epoch: (train loss, train accuracy %, test metric %, seconds). The test metric is
    /// the task's primary one (accuracy; `map50` for detectors, `miou` for segmenters), and a
    /// dense task's train accuracy is 0 (not measured).
    pub history: Vec<(f64, f64, f64, f64)>,
}

/// A trained (or imported) ANN.
pub struct TrainedAnn {
    /// The network on the inference device.
    pub model: Network,
    /// Cache key of the training stage (or of the imported weights).
    pub key: String,
    /// Training log (empty for imported weights).
    pub progress: TrainProgress,
}

/// Key of the training stage: dataset, model, train section, seed, training code version,
/// and the training data fingerprint.
///
/// With `train.init_weights`, the key holds the SHA-256 of that file's contents instead of its
/// path, so it does not depend on where the data root is on a machine (`resolve_weights` makes
/// the path absolute before training), and a different file under the same name is a new key.
pub fn train_key(spec: &Spec, seed: u64, fingerprint: &str) -> Result<String> {
    Ok(match &spec.train.init_weights {
        None => stage_key("train", TRAIN_STAGE_VERSION, &(&spec.dataset, &spec.model, &spec.train, seed, fingerprint)),
        Some(path) => {
            let mut train = spec.train.clone();
            train.init_weights = None;
            let sha256 = crate::cache::file_sha256(path).with_context(|| "train.init_weights".to_string())?;
            stage_key(
                "train",
                TRAIN_STAGE_VERSION,
                &(&spec.dataset, &spec.model, &train, seed, fingerprint, ("init_weights_sha256", sha256)),
            )
        }
    })
}

/// Key of an imported ANN (`model.weights`): the model section and the SHA-256 of the
/// weights file, so a retrained file under the same name and size is a new key. Computed
/// without loading the weights.
pub fn import_key(spec: &Spec) -> Result<Option<String>> {
    let Some(weights) = &spec.model.weights else {
        return Ok(None);
    };
    let sha256 = crate::cache::file_sha256(weights).with_context(|| "model.weights".to_string())?;
    Ok(Some(stage_key("import", TRAIN_STAGE_VERSION, &(&spec.model, sha256))))
}

/// Key of the ANN a spec's evaluations start from: [`import_key`] for imported weights, else
/// [`train_key`].
pub fn ann_base_key(spec: &Spec, seed: u64, fingerprint: &str) -> Result<String> {
    match import_key(spec)? {
        Some(key) => Ok(key),
        None => train_key(spec, seed, fingerprint),
    }
}

/// Saves a module's parameters to `path` (burnpack) under a temporary name, then renames it:
/// a reader, or a run killed midway, never sees a half-written checkpoint.
fn save_module<M: Module>(model: &M, path: &std::path::Path) -> Result<()> {
    write_with(path, |tmp| Ok(model.clone().save_file(tmp)?)).with_context(|| format!("saving {}", path.display()))
}

/// Checkpoints up to this size are copied next to the results they produced.
pub const SHIPPED_CHECKPOINT_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Returns the cached ANN for `spec` and `seed`, training (or resuming) it when needed, or
/// imports `model.weights` when the spec names a weights file.
///
/// `shipped`: the directory of committed checkpoints (`results/checkpoints`). A
/// checkpoint named by the training key is used instead of training when the cache lacks
/// it, and a freshly trained checkpoint under 16 MB is copied there.
pub fn train_or_load(
    spec: &Spec,
    seed: u64,
    data: &Data,
    cache: &Cache,
    device: &Device,
    shipped: &std::path::Path,
) -> Result<TrainedAnn> {
    let build = |device: &Device| build_model(&spec.model, data.input_shape(), data.model_classes(&spec.model), device);
    if let Some(weights) = &spec.model.weights {
        let model = import_weights(build(device)?, weights)?;
        let key = import_key(spec)?.expect("spec imports weights");
        return Ok(TrainedAnn { model, key, progress: TrainProgress::default() });
    }
    let key = train_key(spec, seed, &data.train_fingerprint)?;
    let dir = cache.dir("train", &key);
    let final_path = dir.join("model.bpk");
    let (shipped_model, shipped_progress) =
        (shipped.join(format!("{key}.bpk")), shipped.join(format!("{key}.progress.json")));
    let model = if cache.is_done("train", &key) {
        build(device)?.try_load_file(&final_path).with_context(|| format!("loading {}", final_path.display()))?
    } else if shipped_model.exists() && shipped_progress.exists() {
        eprintln!("using the committed checkpoint {}", shipped_model.display());
        let model = build(device)?
            .try_load_file(&shipped_model)
            .with_context(|| format!("loading {}", shipped_model.display()))?;
        std::fs::create_dir_all(&dir)?;
        save_module(&model, &final_path)?;
        write_json(&dir.join("progress.json"), &read_json::<TrainProgress>(&shipped_progress)?)?;
        cache.mark_done("train", &key)?;
        model
    } else {
        std::fs::create_dir_all(&dir)?;
        write_json(&dir.join("spec.json"), &(&spec.dataset, &spec.model, &spec.train, seed))?;
        restore_partial(&shipped.join(PARTIAL_DIR).join(&key), &dir)?;
        let model = run_training(spec, seed, data, &dir, device)?;
        save_module(&model, &final_path)?;
        cache.mark_done("train", &key)?;
        model
    };
    let progress: TrainProgress = read_json(&dir.join("progress.json"))?;
    Ok(TrainedAnn { model, key, progress })
}

/// Sub-directory of the committed checkpoints holding interrupted trainings: `partial/<key>/`
/// with the files of a cache entry that has not finished (`last-epoch.bpk`,
/// `last-epoch-optim.bpk`, `progress.json`), committed so that a long training survives a
/// fresh machine.
pub const PARTIAL_DIR: &str = "partial";

/// The files of a committed partial training.
const PARTIAL_FILES: [&str; 3] = ["last-epoch.bpk", "last-epoch-optim.bpk", "progress.json"];

/// Copies a committed partial training (`from`) into an empty cache entry (`dir`), so the
/// training resumes from its last completed epoch instead of starting over. Nothing happens
/// when the entry has progress of its own or nothing was committed.
fn restore_partial(from: &std::path::Path, dir: &std::path::Path) -> Result<()> {
    if dir.join("progress.json").exists() || !PARTIAL_FILES.iter().all(|f| from.join(f).exists()) {
        return Ok(());
    }
    eprintln!("resuming from the committed partial training {}", from.display());
    for f in PARTIAL_FILES {
        crate::cache::write_file(&dir.join(f), &std::fs::read(from.join(f))?)?;
    }
    Ok(())
}

/// Copies a cached training checkpoint under 16 MB to `shipped` (next to the results it
/// produced) unless it is already there, so tables regenerate without retraining.
pub fn ship_checkpoint(cache: &Cache, key: &str, shipped: &std::path::Path) -> Result<()> {
    let dir = cache.dir("train", key);
    let (model, progress) = (dir.join("model.bpk"), dir.join("progress.json"));
    let target = shipped.join(format!("{key}.bpk"));
    if !cache.is_done("train", key) || target.exists() {
        return Ok(());
    }
    if std::fs::metadata(&model)?.len() <= SHIPPED_CHECKPOINT_MAX_BYTES {
        crate::cache::write_file(&target, &std::fs::read(&model)?)?;
        crate::cache::write_file(&shipped.join(format!("{key}.progress.json")), &std::fs::read(&progress)?)?;
    }
    Ok(())
}

fn learning_rate(t: &TrainSection, epoch: usize, iter: usize, iters_per_epoch: usize) -> f64 {
    match t.schedule {
        Schedule::Constant => t.lr,
        Schedule::Step => t.lr * t.gamma.powi(t.milestones.iter().filter(|m| epoch >= **m).count() as i32),
        Schedule::Cosine => {
            let total = (t.epochs * iters_per_epoch).max(1) as f64;
            let done = (epoch * iters_per_epoch + iter) as f64;
            0.5 * t.lr * (1.0 + (std::f64::consts::PI * done / total).cos())
        }
    }
}

fn make_optimizer(t: &TrainSection) -> ModuleOptimizer {
    let decay = (t.weight_decay > 0.0).then(|| WeightDecayConfig::new(t.weight_decay as f32));
    match t.optimizer {
        OptimizerKind::Sgd => SgdConfig::new()
            .with_momentum((t.momentum > 0.0).then(|| MomentumConfig::new().with_momentum(t.momentum)))
            .with_weight_decay(decay)
            .init(),
        OptimizerKind::Adam => AdamConfig::new().with_weight_decay(decay).init(),
    }
}

fn run_training(spec: &Spec, seed: u64, data: &Data, dir: &std::path::Path, device: &Device) -> Result<Network> {
    let t = &spec.train;
    let ad = device.clone().autodiff();
    ad.seed(seed);
    let mut model = build_model(&spec.model, data.input_shape(), data.model_classes(&spec.model), &ad)?;
    let mut optim = make_optimizer(t);
    let mut progress = TrainProgress::default();
    let ckpt = dir.join("last-epoch.bpk");
    let optim_ckpt = dir.join("last-epoch-optim.bpk");
    let resuming = dir.join("progress.json").exists() && ckpt.exists();
    if !resuming {
        model = initial_model(spec, seed, data, model, &ad)?;
    } else {
        progress = read_json(&dir.join("progress.json"))?;
        model = model.try_load_file(&ckpt).with_context(|| format!("resuming from {}", ckpt.display()))?;
        if optim_ckpt.exists() {
            optim = optim.load_record(burn::optim::OptimizerRecord::load(&optim_ckpt)?);
        }
        eprintln!("resuming training from epoch {} ({})", progress.epochs_done, dir.display());
    }
    let task = crate::task::Task::of(&model, &data.train)?;
    let ce = CrossEntropyLossConfig::new()
        .with_smoothing((t.label_smoothing > 0.0).then_some(t.label_smoothing as f32))
        .init(&ad);
    let augment = match &t.augment {
        None | Some(AugmentChoice::DatasetDefault(true)) => data.augment.clone(),
        Some(AugmentChoice::DatasetDefault(false)) => None,
        Some(AugmentChoice::Images(a)) => Some(crate::data::TrainAugment::Images(datasets::Augment {
            crop_padding: a.crop_padding,
            horizontal_flip: a.horizontal_flip,
        })),
    };
    let n = data.train.len();
    crate::data::warn_clamped("train.batch_size", t.batch_size, n, "training samples");
    let iters = n.div_ceil(t.batch_size);
    let test_idx: Vec<usize> = (0..data.test.len()).collect();
    for epoch in progress.epochs_done..t.epochs {
        let start = Instant::now();
        let order = datasets::shuffled_indices(n, seed, epoch as u64);
        let mut rng = datasets::Rng::new(datasets::derive_seed(seed, 1000 + epoch as u64));
        let bar = progress_bar(iters as u64, &format!("epoch {}/{}", epoch + 1, t.epochs));
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        for (it, idx) in order.chunks(t.batch_size).enumerate() {
            let lr = learning_rate(t, epoch, it, iters);
            let aug = augment.as_ref().map(|a| (a, &mut rng));
            let (x, y, labels) = batch_tensors(&data.train, idx, &data.norm, aug, &ad);
            let logits = model.forward(x);
            let loss = match task.is_dense() {
                true => task.dense_loss(logits.clone(), &data.train, idx),
                false => ce.forward(logits.clone(), y),
            };
            let loss_value = loss.clone().into_scalar::<f32>() as f64;
            if !loss_value.is_finite() {
                bail!(
                    "training diverged: loss is {loss_value} at epoch {}, batch {it} (lr {lr:.4}); \
                     lower train.lr or check the data normalisation",
                    epoch + 1
                );
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            if !task.is_dense() {
                let pred = zoo::tensor_values(logits.argmax(1).float());
                correct += pred.iter().zip(&labels).filter(|(p, l)| **p as i64 == **l).count();
            }
            seen += idx.len();
            loss_sum += loss_value * idx.len() as f64;
            let acc = match task.is_dense() {
                true => String::new(),
                false => format!(" acc {:.2}%", 100.0 * correct as f64 / seen as f64),
            };
            bar.set_message(format!("loss {:.4}{acc} lr {lr:.4}", loss_sum / seen as f64));
            bar.inc(1);
            if bar.is_hidden() && (it + 1) % (iters / 5).max(1) == 0 && it + 1 < iters {
                eprintln!(
                    "  epoch {}/{} batch {}/{iters}: loss {:.4}{acc} lr {lr:.4} ({:.0}s)",
                    epoch + 1,
                    t.epochs,
                    it + 1,
                    loss_sum / seen as f64,
                    start.elapsed().as_secs_f64()
                );
            }
        }
        bar.finish_and_clear();
        let valid = model.valid();
        let test_acc = ann_primary_metric(&valid, &task, data, &test_idx, 250, device)?;
        let secs = start.elapsed().as_secs_f64();
        let train_loss = loss_sum / seen as f64;
        let train_acc = 100.0 * correct as f64 / seen as f64;
        let metric = task.primary_metric();
        // A dense task's training accuracy is not measured.
        let train = if task.is_dense() { String::new() } else { format!(", train {train_acc:.2}%") };
        eprintln!(
            "epoch {}/{}: loss {train_loss:.4}{train}, test {metric} {test_acc:.2}%, {secs:.0}s ({:.0} img/s)",
            epoch + 1,
            t.epochs,
            seen as f64 / secs
        );
        progress.history.push((train_loss, train_acc, test_acc, secs));
        progress.epochs_done = epoch + 1;
        // Each file is written under a temporary name and renamed; the progress last, so a
        // run killed in between resumes from an epoch whose weights are complete.
        save_module(&model, &ckpt)?;
        write_with(&optim_ckpt, |tmp| Ok(optim.to_record().save(tmp)?))?;
        write_json(&dir.join("progress.json"), &progress)?;
    }
    if !dir.join("progress.json").exists() {
        write_json(&dir.join("progress.json"), &progress)?;
    }
    Ok(model.valid().to_device(device))
}

/// The model training starts from: `train.init_weights` loaded into the fresh build, then
/// QCFS bounds from data (`train.qcfs_lambda_percentile`) on the first batch of epoch 1's
/// order, without augmentation.
pub fn initial_model(spec: &Spec, seed: u64, data: &Data, model: Network, device: &Device) -> Result<Network> {
    let t = &spec.train;
    let mut model = model;
    if let Some(path) = &t.init_weights {
        model = import_weights(model, path).with_context(|| format!("train.init_weights `{}`", path.display()))?;
        eprintln!("fine-tuning from {}", path.display());
    }
    if let Some(p) = t.qcfs_lambda_percentile {
        let first = first_training_batch(data.train.len(), t.batch_size, seed);
        let (x, _, _) = batch_tensors(&data.train, &first, &data.norm, None, device);
        model = model.with_lambda_from_data(x, p);
        let lambdas = model.activation().map(|a| a.lambdas()).unwrap_or_default();
        eprintln!("QCFS λ from the p{p} of the first batch: {lambdas:.3?}");
    }
    Ok(model)
}

/// Indices of the first training batch of epoch 1 (what `qcfs_lambda_percentile` uses).
pub fn first_training_batch(train_len: usize, batch_size: usize, seed: u64) -> Vec<usize> {
    let mut order = datasets::shuffled_indices(train_len, seed, 0);
    order.truncate(batch_size);
    order
}

/// The ANN's primary metric of `task` on `indices` of the test set, percent: accuracy, or a
/// dense task's first metric ([`Task::score`](crate::task::Task::score)).
pub fn ann_primary_metric(
    model: &Network,
    task: &crate::task::Task,
    data: &Data,
    indices: &[usize],
    batch: usize,
    device: &Device,
) -> Result<f64> {
    if !task.is_dense() {
        let (c, n) = ann_correct(model, data, indices, batch, device);
        return Ok(100.0 * c as f64 / n.max(1) as f64);
    }
    let outputs = ann_outputs(model, data, indices, batch, device);
    Ok(task.score(&outputs, &data.test, indices)?[0].1)
}

/// The ANN's outputs on `indices` of the test set, `[n × D]` in that order.
pub fn ann_outputs(model: &Network, data: &Data, indices: &[usize], batch: usize, device: &Device) -> Vec<f32> {
    let mut out = Vec::new();
    for idx in indices.chunks(batch.max(1)) {
        let (x, _, _) = batch_tensors(&data.test, idx, &data.norm, None, device);
        out.extend(zoo::tensor_values(model.forward(x)));
    }
    out
}

/// Correct predictions of the ANN on `indices` of the test set: (correct, total).
pub fn ann_correct(model: &Network, data: &Data, indices: &[usize], batch: usize, device: &Device) -> (usize, usize) {
    let mut correct = 0;
    for idx in indices.chunks(batch.max(1)) {
        let (x, _, labels) = batch_tensors(&data.test, idx, &data.norm, None, device);
        let pred = zoo::tensor_values(model.forward(x).argmax(1).float());
        correct += pred.iter().zip(&labels).filter(|(p, l)| **p as i64 == **l).count();
    }
    (correct, indices.len())
}

/// A progress bar on a terminal; hidden (with periodic plain log lines by callers) otherwise.
pub fn progress_bar(len: u64, prefix: &str) -> ProgressBar {
    if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(prefix.to_string());
        bar
    } else {
        ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden())
    }
}
