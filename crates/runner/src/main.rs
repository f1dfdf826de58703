//! `runner`: run ANN-to-SNN conversion experiment specs.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use runner::bench::{BenchOptions, SpecBenchRequest, bench, bench_spec};
use runner::export::{ExportFormat, ExportRequest, export};
use runner::run::{Mode, RunOptions, run_spec};

#[derive(Parser)]
#[command(
    name = "runner",
    version = runner::VERSION,
    about = "Train, convert and simulate: regenerate ANN-to-SNN conversion tables"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    global: Global,
}

#[derive(Args, Clone)]
struct Global {
    /// Data root (before $SNN_DATA_DIR, ./datasets and system paths).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Stage cache directory.
    #[arg(long, global = true, default_value = ".cache")]
    cache_dir: PathBuf,
    /// Where <spec stem>/ is written (default `results`; with `--set` overrides and no
    /// `--results-dir`, `results/<spec stem>+<hash of the overrides>/`).
    #[arg(long, global = true)]
    results_dir: Option<PathBuf>,
    /// Backend: flex (CPU, default), ndarray or wgpu (when compiled in).
    #[arg(long, global = true, default_value = "flex")]
    device: String,
    /// Override a spec field, e.g. `--set train.epochs=1` (repeatable).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ListFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a spec (train or load, convert, simulate, write results). `runner SPEC` works too.
    Run {
        /// Spec file (experiments/*.toml).
        spec: PathBuf,
        /// Compute only shard `i` of `n` (0-based) of the spec's stages into the cache and write
        /// no table; `runner merge` assembles the table once every shard has run (see
        /// scripts/slurm-array.sh).
        #[arg(long, value_name = "i/n")]
        shard: Option<runner::run::Shard>,
    },
    /// Assemble the table of a sharded run from the (shared) cache, computing nothing.
    Merge {
        /// Spec file.
        spec: PathBuf,
    },
    /// Re-render a spec's table and plot from the cache, without computing.
    Report {
        /// Spec file.
        spec: PathBuf,
    },
    /// Validate a spec and print what a run would do, without computing.
    Plan {
        /// Spec file.
        spec: PathBuf,
    },
    /// List models, datasets, methods, neurons, readouts, figures and devices.
    List {
        /// `text` (aligned columns) or `json` (for scripts).
        #[arg(long, value_enum, default_value = "text")]
        format: ListFormat,
    },
    /// Convert a spec's ANN with one of its methods and write the SNN for other tools (NIR).
    Export {
        /// Spec file.
        spec: PathBuf,
        /// The method's label in the spec.
        #[arg(long)]
        method: String,
        /// The variant's label (when the spec has sweeps).
        #[arg(long)]
        variant: Option<String>,
        /// Seed (default: the spec's first).
        #[arg(long)]
        seed: Option<u64>,
        /// T the network is exported for (default: the method's largest evaluated T).
        #[arg(long)]
        timesteps: Option<u32>,
        /// Output format.
        #[arg(long, value_enum, default_value = "nir")]
        format: ExportFormat,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a shell completion script (e.g. `runner completions bash > /etc/bash_completion.d/runner`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Measure ANN inference/training, conversion and SNN simulation throughput: on random
    /// data and an untrained zoo model, or (`--spec`, `--method`) on a spec's trained ANN, one
    /// of its methods and its test images, with the dense and the event-driven engine.
    Bench {
        /// A spec whose trained ANN (cached or committed; never trained here) is measured.
        #[arg(long, requires = "method")]
        spec: Option<PathBuf>,
        /// With --spec: the method's label.
        #[arg(long, requires = "spec")]
        method: Option<String>,
        /// With --spec: the variant's label (needed when the spec has sweeps).
        #[arg(long, requires = "spec")]
        variant: Option<String>,
        /// With --spec: write the figures as long-form CSV here.
        #[arg(long, requires = "spec")]
        out: Option<PathBuf>,
        /// Zoo model.
        #[arg(long, default_value = "resnet20-he")]
        model: String,
        /// Width multiplier.
        #[arg(long, default_value_t = 1.0)]
        width: f32,
        /// Batch size (default: 128; with --spec, 100 test images).
        #[arg(long)]
        batch: Option<usize>,
        /// Input shape CxHxW.
        #[arg(long, default_value = "3x32x32")]
        input: String,
        /// Number of classes.
        #[arg(long, default_value_t = 10)]
        classes: usize,
        /// SNN time steps.
        #[arg(long, default_value_t = 16)]
        timesteps: usize,
        /// Timed repetitions.
        #[arg(long, default_value_t = 3)]
        iters: usize,
    },
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The message and its causes, without a backtrace: these are the user's errors (a
            // missing file, a bad key), and RUST_BACKTRACE is often set on research machines.
            eprintln!("Error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    // `runner experiments/x.toml` is shorthand for `runner run experiments/x.toml`.
    let mut args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().skip(1).position(|a| a.ends_with(".toml")) {
        let before = &args[1..=pos];
        if !before.iter().any(|a| ["run", "report", "plan", "merge", "export", "bench"].contains(&a.as_str())) {
            args.insert(1, "run".into());
        }
    }
    let cli = Cli::parse_from(args);
    let g = cli.global;
    let opts = RunOptions {
        data_dir: g.data_dir,
        cache_dir: g.cache_dir,
        results_dir_chosen: g.results_dir.is_some(),
        results_dir: g.results_dir.unwrap_or_else(|| PathBuf::from("results")),
        device_name: g.device.clone(),
        overrides: g.overrides,
    };
    match cli.command {
        Command::Run { spec, shard: None } => run_spec(&spec, &opts, Mode::Compute).map(|_| ()),
        Command::Run { spec, shard: Some(shard) } => run_spec(&spec, &opts, Mode::Shard(shard)).map(|_| ()),
        Command::Report { spec } | Command::Merge { spec } => run_spec(&spec, &opts, Mode::CacheOnly).map(|_| ()),
        Command::Plan { spec } => runner::run::plan_spec(&spec, &opts),
        Command::List { format } => {
            match format {
                ListFormat::Text => list(),
                ListFormat::Json => println!("{}", serde_json::to_string_pretty(&list_json())?),
            }
            Ok(())
        }
        Command::Export { spec, method, variant, seed, timesteps, format, out } => {
            let request = ExportRequest { spec, method, variant, seed, timesteps, out, format };
            println!("{}", export(&request, &opts)?);
            Ok(())
        }
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "runner", &mut script);
            // A closed pipe (`runner completions bash | head`) is not an error.
            match std::io::Write::write_all(&mut std::io::stdout(), &script) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => Ok(other?),
            }
        }
        Command::Bench { spec: Some(spec), method, variant, out, batch, timesteps, iters, .. } => {
            let method = method.context("--spec needs --method")?;
            let request =
                SpecBenchRequest { spec, method, variant, timesteps, batch: batch.unwrap_or(100), iters, out };
            bench_spec(&request, &opts).map(|_| ())
        }
        Command::Bench { spec: None, model, width, batch, input, classes, timesteps, iters, .. } => {
            let batch = batch.unwrap_or(128);
            let dims: Vec<usize> = input.split('x').map(|s| s.parse()).collect::<Result<_, _>>()?;
            anyhow::ensure!(dims.len() == 3, "--input must look like 3x32x32");
            let device = runner::device::select_device(&g.device)?;
            let o = BenchOptions { model, width, batch, input: [dims[0], dims[1], dims[2]], classes, timesteps, iters };
            bench(&o, &device, &g.device)
        }
    }
}

/// What `runner list` prints, as JSON: names, and descriptions where they exist.
fn list_json() -> serde_json::Value {
    let described = |entries: Vec<(&str, &str)>| -> Vec<serde_json::Value> {
        entries
            .into_iter()
            .map(|(name, description)| serde_json::json!({"name": name, "description": description}))
            .collect()
    };
    let mut datasets: Vec<serde_json::Value> =
        datasets::DATASET_NAMES.iter().map(|d| serde_json::json!({"name": d, "kind": "images"})).collect();
    datasets
        .extend(datasets::POINT_DATASET_NAMES.iter().map(|d| serde_json::json!({"name": d, "kind": "point clouds"})));
    datasets
        .extend(datasets::EVENT_DATASET_NAMES.iter().map(|d| serde_json::json!({"name": d, "kind": "event frames"})));
    datasets
        .push(serde_json::json!({"name": datasets::synthetic_detection::NAME, "kind": "images with boxes and masks"}));
    datasets.extend(
        datasets::dense::REAL_DENSE_NAMES
            .iter()
            .map(|d| serde_json::json!({"name": d, "kind": "images with boxes and masks"})),
    );
    serde_json::json!({
        "version": runner::VERSION,
        "models": zoo::MODEL_NAMES,
        "datasets": datasets,
        "methods": described(convert::method_kinds().iter().map(|k| (k.name, k.description)).collect()),
        "neurons": described(snn::neuron_kinds().iter().map(|k| (k.name, k.description)).collect()),
        "readouts": described(snn::readout_kinds().iter().map(|k| (k.name, k.description)).collect()),
        "figures": described(runner::report::FIGURES.to_vec()),
        "devices": runner::device::available_devices(),
    })
}

fn list() {
    println!("models:");
    for m in zoo::MODEL_NAMES {
        println!("  {m}");
    }
    println!("datasets:");
    for d in datasets::DATASET_NAMES {
        println!("  {d}");
    }
    for d in datasets::POINT_DATASET_NAMES {
        println!("  {d} (point clouds)");
    }
    for d in datasets::EVENT_DATASET_NAMES {
        println!("  {d} (event frames: [dataset.events] frames = N)");
    }
    println!("  {} (images with boxes and masks: yolo-vgg, fcn-vgg)", datasets::synthetic_detection::NAME);
    for d in datasets::dense::REAL_DENSE_NAMES {
        println!("  {d} (images with boxes and masks, resized: yolo-vgg, fcn-vgg; [dataset.dense] options)");
    }
    // Every section's names padded to one column.
    let methods: Vec<(&str, &str)> = convert::method_kinds().iter().map(|k| (k.name, k.description)).collect();
    let neurons: Vec<(&str, &str)> = snn::neuron_kinds().iter().map(|k| (k.name, k.description)).collect();
    let readouts: Vec<(&str, &str)> = snn::readout_kinds().iter().map(|k| (k.name, k.description)).collect();
    let figures: Vec<(&str, &str)> = runner::report::FIGURES.to_vec();
    let width = [&methods, &neurons, &readouts, &figures].iter().flat_map(|s| s.iter().map(|(n, _)| n.len())).max();
    let width = width.unwrap_or(0);
    for (title, entries) in [
        ("methods ([[method]] kind):", &methods),
        ("neurons ([method.neuron] kind; default: the method's):", &neurons),
        ("readouts ([method.readout] kind; default: the method's, else accumulate):", &readouts),
        ("figures ([table] figures = [...]):", &figures),
    ] {
        println!("{title}");
        for (name, what) in entries {
            println!("  {name:<width$} {what}");
        }
    }
    println!("devices: {}", runner::device::available_devices().join(", "));
}
