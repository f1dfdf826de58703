//! `runner bench`: throughput figures on fixed shapes with random data.

use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use convert::methods::max_norm::MaxNorm;
use convert::{MethodConfig, SpecOverrides};
use zoo::{ModelSpec, build_model};

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
