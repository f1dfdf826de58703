//! `runner bench`: throughput figures, on fixed shapes with random data ([`bench`]) or on a
//! spec's own trained ANN, method and test images ([`bench_spec`]): the dense ANN, the SNN on
//! the dense engine and on the event-driven engine, measured one after the other in one run.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use convert::methods::max_norm::MaxNorm;
use convert::{MethodConfig, SpecOverrides};
use datasets::DataRoot;
use serde::Serialize;
use snn::{SimConfig, SimInput, SparseNetwork, simulate_input};
use zoo::{ModelSpec, build_model};

use crate::cache::write_file;
use crate::data::{Data, batch_tensors, calibration_batches};
use crate::evaluate::config_at;
use crate::export::{load_trained, select_method};
use crate::plan::expand;
use crate::run::{RunOptions, with_resolved_weights};
use crate::spec::load_spec;

/// Bench settings.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Zoo model name.
    pub model: String,
    /// Width multiplier.
    pub width: f32,
    /// Batch size.
    pub batch: usize,
    /// Input `[C, H, W]`.
    pub input: [usize; 3],
    /// Classes.
    pub classes: usize,
    /// Simulation time steps.
    pub timesteps: usize,
    /// Timed repetitions per figure.
    pub iters: usize,
}

/// Runs the benchmark and prints the figures.
pub fn bench(opts: &BenchOptions, device: &Device, device_name: &str) -> Result<()> {
    let spec: ModelSpec = toml::from_str(&format!("name = \"{}\"\nwidth = {}", opts.model, opts.width))?;
    let [c, h, w] = opts.input;
    let b = opts.batch;
    println!(
        "machine: {} | {} logical cores | backend {device_name} | burn {}",
        cpu_model(),
        cores(),
        crate::provenance::BURN_VERSION
    );
    println!("model {} (width {}), batch {b}, input {c}x{h}x{w}", opts.model, opts.width);
    let x = || Tensor::<4>::random([b, c, h, w], Distribution::Normal(0.0, 1.0), device);

    // ANN inference.
    let model = build_model(&spec, opts.input, opts.classes, device)?;
    let _ = zoo::tensor_values(model.forward(x())); // warm-up
    let start = Instant::now();
    for _ in 0..opts.iters {
        let _ = zoo::tensor_values(model.forward(x()));
    }
    let infer = (opts.iters * b) as f64 / start.elapsed().as_secs_f64();
    println!("ANN inference:      {infer:>10.1} img/s");

    // ANN training (SGD step incl. backward).
    let ad = device.clone().autodiff();
    let mut train_model = build_model(&spec, opts.input, opts.classes, &ad)?;
    let mut optim = SgdConfig::new().init();
    let ce = CrossEntropyLossConfig::new().init(&ad);
    let labels = Tensor::<1, Int>::from_data(
        burn::tensor::TensorData::new((0..b as i64).map(|i| i % opts.classes as i64).collect::<Vec<_>>(), [b]),
        &ad,
    );
    let mut step = |m: zoo::Network| {
        let xb = Tensor::<4>::random([b, c, h, w], Distribution::Normal(0.0, 1.0), &ad);
        let loss = ce.forward(m.forward(xb), labels.clone());
        let _ = loss.clone().into_scalar::<f32>();
        let g = GradientsParams::from_grads(loss.backward(), &m);
        optim.step(0.01, m, g)
    };
    train_model = step(train_model);
    let start = Instant::now();
    for _ in 0..opts.iters {
        train_model = step(train_model);
    }
    let train = (opts.iters * b) as f64 / start.elapsed().as_secs_f64();
    println!("ANN training:       {train:>10.1} img/s");
    drop(train_model);

    // Conversion (max-norm on one calibration batch).
    let start = Instant::now();
    let conv = convert::convert(
        &model,
        &MethodConfig::new(MaxNorm::default()).map_err(anyhow::Error::msg)?,
        &SpecOverrides::default(),
        &[x()],
    )?;
    let conv_secs = start.elapsed().as_secs_f64();
    println!("conversion:         {conv_secs:>10.3} s (max-norm, 1 batch of {b})");

    // SNN simulation.
    let labels: Vec<i64> = (0..b as i64).collect();
    let start = Instant::now();
    let _ = snn::simulate_batch(&conv.network, x(), &labels, opts.timesteps, opts.timesteps);
    let sim = (b * opts.timesteps) as f64 / start.elapsed().as_secs_f64();
    println!(
        "SNN simulation:     {sim:>10.1} img·step/s (T = {}, {:.1} img/s)",
        opts.timesteps,
        sim / opts.timesteps as f64
    );
    let _ = model.valid();
    Ok(())
}

/// What `runner bench --spec` measures.
#[derive(Clone, Debug)]
pub struct SpecBenchRequest {
    /// The spec file.
    pub spec: PathBuf,
    /// The method's label in the spec.
    pub method: String,
    /// The variant's label (needed when the spec has sweeps).
    pub variant: Option<String>,
    /// T of the simulated window.
    pub timesteps: usize,
    /// Test images simulated (one batch).
    pub batch: usize,
    /// Timed repetitions of the ANN pass.
    pub iters: usize,
    /// Long-form CSV written here (metric rows, like results.csv).
    pub out: Option<PathBuf>,
}

/// One figure of a spec benchmark.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    /// Network architecture.
    pub model: String,
    /// The method's label.
    pub method: String,
    /// The simulated T (0 for ANN figures).
    #[serde(rename = "T")]
    pub t: usize,
    /// Metric name.
    pub metric: String,
    /// Layer (graph node) for per-layer figures, else "".
    pub layer: String,
    /// Value.
    pub value: f64,
    /// Images measured.
    pub n_images: usize,
    /// CPU model and logical cores.
    pub machine: String,
    /// Git commit of the code measured.
    pub git_hash: String,
}

/// Benchmarks a spec's trained ANN and its SNN (one method) on the first `batch` test images;
/// prints the figures and returns them (also written to `request.out` as CSV).
pub fn bench_spec(request: &SpecBenchRequest, opts: &RunOptions) -> Result<Vec<BenchRow>> {
    let file = &request.spec;
    let (raw, spec) = load_spec(file, &opts.overrides)?;
    let variants = expand(file, &raw, &spec)?;
    let (variant, method) = select_method(file, &variants, &request.method, request.variant.as_deref())?;
    let seed = spec.experiment.seeds[0];
    let root = DataRoot::from_env(opts.data_dir.clone());
    let spec = with_resolved_weights(&variant.spec, &root)?;
    let device = crate::device::select_device(&opts.device_name)?;
    let data = Data::load(&spec.dataset, &root)?;
    let ann = load_trained(file, &spec, seed, &data, opts, &device)?;
    let t = request.timesteps;
    let machine = format!("{} ({} logical cores)", cpu_model(), cores());
    let git_hash = crate::provenance::Provenance::current(&opts.device_name).git_hash;
    let idx: Vec<usize> = data.test_indices(&spec.eval).into_iter().take(request.batch).collect();
    let n = idx.len();
    let (x, _, labels) = batch_tensors(&data.test, &idx, &data.norm, None, &device);
    println!("machine: {machine} | backend {} | burn {}", opts.device_name, crate::provenance::BURN_VERSION);
    println!(
        "{}: {} on {}, method `{}`, T = {t}, {n} test images",
        file.display(),
        spec.model.name,
        spec.dataset.name,
        method.label
    );
    let mut rows = Vec::new();
    let mut row = |t: usize, metric: &str, layer: &str, value: f64| {
        rows.push(BenchRow {
            model: spec.model.name.clone(),
            method: method.label.clone(),
            t,
            metric: metric.into(),
            layer: layer.into(),
            value,
            n_images: n,
            machine: machine.clone(),
            git_hash: git_hash.clone(),
        })
    };

    // The dense ANN.
    reset_peak_rss();
    let _ = zoo::tensor_values(ann.model.forward(x.clone())); // warm-up
    let start = Instant::now();
    for _ in 0..request.iters {
        let _ = zoo::tensor_values(ann.model.forward(x.clone()));
    }
    let ann_rate = (request.iters * n) as f64 / start.elapsed().as_secs_f64();
    row(0, "ann_img_per_s", "", ann_rate);
    row(0, "peak_rss_mb", "ann", peak_rss_mb());
    println!("ANN (dense):               {ann_rate:>10.1} img/s");

    // Conversion, as a run does it (calibrated at T for methods calibrated per T).
    let config = config_at(method, &spec.convert, t as u32)?;
    let calib = calibration_batches(&data, spec.convert.calibration_images, spec.convert.batch_size, seed, &device);
    let conversion = convert::convert(&ann.model, &config, &method.overrides(), &calib)
        .with_context(|| format!("converting with `{}`", method.label))?;
    row(t, "conversion_seconds", "", conversion.seconds);
    println!("conversion:                {:>10.2} s", conversion.seconds);
    let net = &conversion.network;
    let sim_config = SimConfig::new(t, spec.eval.chunk);
    let input = SimInput::Static(x);

    // The SNN on the dense engine.
    reset_peak_rss();
    let start = Instant::now();
    let (dense, _) = simulate_input(net, &input, &labels, &sim_config);
    let dense_rate = (n * t) as f64 / start.elapsed().as_secs_f64();
    row(t, "snn_dense_img_steps_per_s", "", dense_rate);
    row(t, "peak_rss_mb", "snn_dense", peak_rss_mb());
    row(t, "dense_over_ann", "", dense_rate / ann_rate);
    println!("SNN, dense engine:         {dense_rate:>10.1} img·step/s ({:.2}x the ANN img/s)", dense_rate / ann_rate);

    // The SNN on the event-driven engine.
    match SparseNetwork::compile(net, data.input_shape()) {
        Err(e) => println!("SNN, event-driven engine:  not available ({e})"),
        Ok(sparse) => {
            reset_peak_rss();
            let start = Instant::now();
            let (event, _, loads) = sparse.simulate(net, &input, &labels, &sim_config);
            let event_rate = (n * t) as f64 / start.elapsed().as_secs_f64();
            row(t, "snn_sparse_img_steps_per_s", "", event_rate);
            row(t, "peak_rss_mb", "snn_sparse", peak_rss_mb());
            row(t, "sparse_over_ann", "", event_rate / ann_rate);
            row(t, "sparse_over_dense", "", event_rate / dense_rate);
            println!(
                "SNN, event-driven engine:  {event_rate:>10.1} img·step/s ({:.2}x the ANN img/s, {:.2}x the dense engine)",
                event_rate / ann_rate,
                event_rate / dense_rate
            );
            let accuracy = |o: &snn::SimOutput| 100.0 * o.correct_at_t[t - 1] as f64 / n as f64;
            let spikes = |o: &snn::SimOutput| o.spikes.iter().flatten().sum::<u64>();
            row(t, "accuracy_dense", "", accuracy(&dense));
            row(t, "accuracy_sparse", "", accuracy(&event));
            println!(
                "agreement: accuracy {:.2} % (dense) vs {:.2} % (event-driven); spikes {} vs {}",
                accuracy(&dense),
                accuracy(&event),
                spikes(&dense),
                spikes(&event)
            );
            // Each layer's two paths timed alone: below the crossover density the event-driven
            // kernel is the cheaper one (what a per-layer choice of path would go by).
            let timings = sparse.time_kernels(net, data.input_shape(), n, request.iters, &device)?;
            println!(
                "per synaptic layer: input density per step; µs per sample of the event-driven kernel at \
                 density 1 and of the dense layer; the density at which they cost the same"
            );
            for l in &loads {
                row(t, "spike_density", &l.layer, l.density());
                let Some(k) = timings.iter().find(|k| k.layer == l.layer) else {
                    println!("  {:<28} {:>8.4}", l.layer, l.density());
                    continue;
                };
                row(t, "event_dense_input_us", &l.layer, 1e6 * k.event_dense_input_seconds);
                row(t, "dense_layer_us", &l.layer, 1e6 * k.dense_seconds);
                row(t, "crossover_density", &l.layer, k.crossover_density());
                println!(
                    "  {:<28} {:>8.4}   {:>9.1} µs {:>9.1} µs   crossover {:>6.3}{}",
                    l.layer,
                    l.density(),
                    1e6 * k.event_dense_input_seconds,
                    1e6 * k.dense_seconds,
                    k.crossover_density(),
                    if l.density() > k.crossover_density() { "   (dense cheaper)" } else { "" }
                );
            }
        }
    }
    if let Some(out) = &request.out {
        let mut w = csv::Writer::from_writer(Vec::new());
        for r in &rows {
            w.serialize(r)?;
        }
        write_file(out, &w.into_inner().context("writing the CSV")?)?;
        println!("wrote {}", out.display());
    }
    Ok(rows)
}

/// Resets the process's peak resident set (Linux; elsewhere a no-op).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set since the last reset, in MiB (Linux `VmHWM`; 0 where unknown).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}
