//! End-to-end: a spec on synthetic data through training, conversion, simulation and
//! reporting; the SNN approaches the ANN as T grows; bad specs write nothing.

use std::path::Path;

use runner::report::read_csv;
use runner::run::{Mode, run_spec};

mod common;
use common::options;

const SPEC: &str = r#"
[experiment]
name = "e2e"
[dataset]
name = "synthetic-shapes2d"
[dataset.synthetic]
train_size = 1000
test_size = 200
image_size = 16
seed = 1
[model]
name = "small-cnn"
width = 0.5
[train]
optimizer = "adam"
lr = 0.003
weight_decay = 0.0
batch_size = 50
epochs = 3
[convert]
calibration_images = 200
[[method]]
kind = "max-norm"
[[method]]
kind = "robust-norm"
[eval]
timesteps = [4, 16, 64, 256]
batch_size = 100
chunk = 32
[table]
rows = ["method"]
[[table.paper]]
method = "robust-norm"
T = 64
value = 90.0
"#;

fn accuracy(rows: &[runner::report::ResultRow], method: &str, t: u32) -> f64 {
    rows.iter()
        .find(|r| r.method == method && r.t == t && r.metric == "accuracy" && r.layer.is_empty())
        .unwrap_or_else(|| panic!("no accuracy row for {method} T={t}"))
        .value
}

#[test]
fn spec_runs_end_to_end_and_snn_approaches_ann() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("e2e_spec.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let opts = options(dir.path());
    let out = run_spec(&spec, &opts, Mode::Compute).unwrap();
    assert_eq!(out, dir.path().join("results/e2e_spec"));
    for f in ["results.csv", "table.md", "accuracy_vs_t.svg", "spec.resolved.toml"] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let rows = read_csv(&out.join("results.csv")).unwrap();
    let ann = accuracy(&rows, "ann", 0);
    assert!(ann > 60.0, "the small CNN should learn synthetic shapes: {ann}");
    let early = accuracy(&rows, "robust-norm", 4);
    let late = accuracy(&rows, "robust-norm", 256);
    assert!((ann - late).abs() <= 3.0, "SNN at T=256 ({late}) should be within 3 pp of the ANN ({ann})");
    assert!((ann - late).abs() < (ann - early).abs(), "the gap should shrink with T: T=4 {early}, T=256 {late}");
    assert!(rows.iter().all(|r| r.n_images == 200));
    assert!(rows.iter().any(|r| r.metric == "sops" && r.value > 0.0));
    assert!(rows.iter().any(|r| r.metric == "firing_rate" && r.layer == "relu1"));
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("robust-norm") && table.contains("T=256") && table.contains("90.00"), "{table}");

    // `report` re-renders from the cache without computing and gives the same numbers.
    for f in ["results.csv", "table.md", "accuracy_vs_t.svg"] {
        std::fs::remove_file(out.join(f)).unwrap();
    }
    run_spec(&spec, &opts, Mode::CacheOnly).unwrap();
    assert!(out.join("table.md").exists());
    let again = read_csv(&out.join("results.csv")).unwrap();
    let strip = |rows: &[runner::report::ResultRow]| {
        rows.iter().map(|r| (r.method.clone(), r.t, r.metric.clone(), r.layer.clone(), r.value)).collect::<Vec<_>>()
    };
    let (a, b) = (strip(&rows), strip(&again));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }

    // The trained ANN (< 5 MB) is shipped beside the results, in the checkpoint folder all
    // specs share; with an empty cache it is loaded instead of retrained, and the numbers are
    // the same.
    assert!(!out.join("checkpoints").exists(), "checkpoints are no longer kept per spec");
    let shared = opts.results_dir.join(runner::run::SHIPPED_CHECKPOINTS_DIR);
    let ckpts: Vec<_> = std::fs::read_dir(shared).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(ckpts.iter().any(|p| p.extension().is_some_and(|e| e == "bpk")), "{ckpts:?}");
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    run_spec(&spec, &opts, Mode::Compute).unwrap();
    let retrained = std::fs::read_dir(dir.path().join("cache/train"))
        .unwrap()
        .any(|e| e.unwrap().path().join("last-epoch.bpk").exists());
    assert!(!retrained, "the shipped checkpoint must be used instead of training");
    let reloaded = read_csv(&out.join("results.csv")).unwrap();
    assert_eq!(accuracy(&reloaded, "robust-norm", 256), late);

    // A conversion-parameter override reuses the cached ANN (no new train entry).
    let trained = std::fs::read_dir(dir.path().join("cache/train")).unwrap().count();
    let mut o = opts.clone();
    o.overrides = vec!["method.robust-norm.percentile=99.0".into(), "eval.timesteps=[8]".into()];
    let before = std::fs::read(out.join("results.csv")).unwrap();
    let changed = run_spec(&spec, &o, Mode::Compute).unwrap();
    assert_eq!(std::fs::read_dir(dir.path().join("cache/train")).unwrap().count(), trained);
    // ... and writes its table beside the spec's own, which it leaves as it was.
    let folder = changed.file_name().unwrap().to_string_lossy().into_owned();
    assert!(folder.starts_with("e2e_spec+") && folder.len() == "e2e_spec+".len() + 8, "{folder}");
    assert!(changed.join("results.csv").exists());
    assert_eq!(std::fs::read(out.join("results.csv")).unwrap(), before);
}

#[test]
fn bad_specs_fail_clearly_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let cases = [
        (SPEC.replace("[eval]", "[eval]\nwhatever = 3"), "whatever"),
        (SPEC.replace("small-cnn", "resnet-1000"), "resnet20-he"),
        (SPEC.replace("kind = \"max-norm\"", "kind = \"magic\""), "robust-norm"),
        (SPEC.replace("epochs = 3", "epochs = \"three\""), "train.epochs"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let spec = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&spec, text).unwrap();
        let err = format!("{:#}", run_spec(&spec, &opts, Mode::Compute).unwrap_err());
        assert!(err.contains(&format!("bad{i}.toml")) && err.contains(expected), "{err}");
    }
    assert!(!dir.path().join("results").exists(), "nothing may be written for a bad spec");
    assert!(!dir.path().join("cache").exists());
}

#[test]
fn missing_dataset_says_where_it_looked_and_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("c100.toml");
    let text = SPEC
        .replace("name = \"synthetic-shapes2d\"", "name = \"cifar100\"")
        .replace("[dataset.synthetic]\ntrain_size = 1000\ntest_size = 200\nimage_size = 16\nseed = 1\n", "");
    std::fs::write(&spec, text).unwrap();
    let err = format!("{:#}", run_spec(&spec, &options(dir.path()), Mode::Compute).unwrap_err());
    assert!(err.contains("cifar100") && err.contains("fetch-datasets.sh"), "{err}");
    assert!(err.contains(&dir.path().join("data").display().to_string()), "{err}");
    assert!(!dir.path().join("results").exists());
    // `runner plan` stops on it too, before any computation.
    let plan = format!("{:#}", runner::run::plan_spec(&spec, &options(dir.path())).unwrap_err());
    assert!(plan.contains("cifar100") && plan.contains("looked in"), "{plan}");
    // A procedural set needs nothing on disk.
    std::fs::write(&spec, SPEC).unwrap();
    runner::run::plan_spec(&spec, &options(dir.path())).unwrap();
}

#[test]
fn qcfs_trained_network_converts_nearly_losslessly_at_t_equal_l() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("qcfs.toml");
    let text = SPEC
        .replace("width = 0.5", "width = 1.0\nactivation = \"qcfs\"\nqcfs_levels = 4\nqcfs_lambda_init = 2.0")
        .replace("epochs = 3", "epochs = 6")
        .replace(
            "[[method]]\nkind = \"max-norm\"\n[[method]]\nkind = \"robust-norm\"\n",
            "[[method]]\nkind = \"qcfs\"\n[[method]]\nkind = \"opt-shift\"\n",
        )
        .replace("timesteps = [4, 16, 64, 256]", "timesteps = [4, 16, 64]")
        .replace("method = \"robust-norm\"", "method = \"qcfs\"");
    std::fs::write(&spec, text).unwrap();
    let out = run_spec(&spec, &options(dir.path()), Mode::Compute).unwrap();
    let rows = read_csv(&out.join("results.csv")).unwrap();
    let ann = accuracy(&rows, "ann", 0);
    assert!(ann > 60.0, "the QCFS network should learn: {ann}");
    let at_l = accuracy(&rows, "qcfs", 4);
    eprintln!(
        "qcfs: ANN {ann}, T=4 {at_l}, T=16 {}, T=64 {}",
        accuracy(&rows, "qcfs", 16),
        accuracy(&rows, "qcfs", 64)
    );
    let long = accuracy(&rows, "qcfs", 64);
    assert!((ann - long).abs() <= 3.0, "QCFS SNN at T=64 ({long}) vs ANN ({ann})");
    assert!((ann - at_l).abs() <= 3.0, "QCFS at T = L = 4 should match the ANN: {at_l} vs {ann}");
}

#[test]
fn qcfs_conversion_rejects_a_relu_network() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("relu_qcfs.toml");
    std::fs::write(&spec, SPEC.replace("kind = \"max-norm\"", "kind = \"qcfs\"")).unwrap();
    let err = format!("{:#}", run_spec(&spec, &options(dir.path()), Mode::Compute).unwrap_err());
    assert!(err.contains("activation = \"qcfs\""), "{err}");
}

#[test]
fn calibrate_at_eval_t_converts_once_per_t_for_methods_with_a_calibration_t() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("per_t.toml");
    let text = SPEC
        .replace("calibration_images = 200", "calibration_images = 64\nbatch_size = 32\ncalibrate_at_eval_t = true")
        .replace(
            "[[method]]\nkind = \"robust-norm\"",
            "[[method]]\nkind = \"lan2023\"\nthreshold_init = \"kl-histogram\"\ncalibration_batches = 2",
        )
        .replace("timesteps = [4, 16, 64, 256]", "timesteps = [2, 8]")
        .replace("method = \"robust-norm\"", "method = \"lan2023\"");
    std::fs::write(&spec, text).unwrap();
    let out = run_spec(&spec, &options(dir.path()), Mode::Compute).unwrap();
    let rows = read_csv(&out.join("results.csv")).unwrap();
    let value = |method: &str, t: u32, metric: &str| -> Vec<f64> {
        rows.iter().filter(|r| r.method == method && r.t == t && r.metric == metric).map(|r| r.value).collect()
    };
    // lan2023: one conversion per T, each with its own thresholds (reported at that T), and the
    // row's T = 0 conversion time is the sum of the two.
    let (th2, th8) = (value("lan2023", 2, "threshold"), value("lan2023", 8, "threshold"));
    assert!(!th2.is_empty() && th2.len() == th8.len() && value("lan2023", 0, "threshold").is_empty());
    assert_ne!(th2, th8, "calibrated at T = 2 and T = 8: different thresholds");
    let secs = |t| value("lan2023", t, "conversion_seconds")[0];
    assert!((secs(0) - secs(2) - secs(8)).abs() < 1e-9);
    // The row's simulation time: one row, at T = 0.
    let sim = value("lan2023", 0, "simulation_seconds");
    assert!(sim.len() == 1 && sim[0] > 0.0, "{sim:?}");
    assert!(value("lan2023", 2, "simulation_seconds").is_empty());
    for t in [2, 8] {
        assert_eq!(value("lan2023", t, "accuracy").len(), 1);
    }
    // max-norm has no calibration T: one conversion, thresholds at T = 0.
    assert!(!value("max-norm", 0, "threshold").is_empty() && value("max-norm", 2, "threshold").is_empty());
    assert!(out.join("omega_vs_t.svg").exists(), "lan2023 has a dynamic threshold");
}

#[test]
fn plan_reports_a_missing_weights_file() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("missing_init.toml");
    let text = SPEC.replace("[train]\n", "[train]\ninit_weights = \"nowhere/init.bpk\"\n");
    std::fs::write(&spec, text).unwrap();
    let err = runner::run::plan_spec(&spec, &options(dir.path())).expect_err("plan must fail");
    let msg = format!("{err:#}");
    assert!(msg.contains("train.init_weights") && msg.contains("nowhere/init.bpk"), "{msg}");
    // The same spec without the file plans fine.
    std::fs::write(&spec, SPEC).unwrap();
    runner::run::plan_spec(&spec, &options(dir.path())).unwrap();
}

/// Adaptive Calibration through the runner: the conversion's own rows (φ per layer named by
/// slot, the search curves, IAT's thresholds) reach results.csv, early exit gives the exit
/// rows and energy, and the requested figures are drawn.
#[test]
fn adafire_with_ssc_and_iat_reports_its_search_and_draws_its_figures() {
    let spec_text = r#"
[dataset]
name = "synthetic-shapes2d"
[dataset.synthetic]
train_size = 300
test_size = 60
image_size = 12
seed = 3
[model]
name = "small-cnn"
width = 0.5
[train]
optimizer = "adam"
lr = 0.003
weight_decay = 0.0
batch_size = 50
epochs = 1
[convert]
calibration_images = 64
batch_size = 32
[[method]]
kind = "adafire"
label = "adafire+ssc+iat"
timesteps = 4
search_images = 16
correction_images = 32
iat_images = 64
ssc = true
ssc_ratios = [1.0, 2.0, 4.0]
iat = "adaptive"
[eval]
timesteps = [4]
batch_size = 60
chunk = 4
exit_frontier = true
[table]
rows = ["method"]
figures = ["accuracy_vs_energy", "accuracy_vs_exit_step", "exit_step_distribution", "sensitivity_vs_phi", "sensitivity_vs_rho", "pareto_frontier", "exit_frontier"]
"#;
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("adafire_spec.toml");
    std::fs::write(&spec, spec_text).unwrap();
    let out = run_spec(&spec, &options(dir.path()), Mode::Compute).unwrap();
    let rows = read_csv(&out.join("results.csv")).unwrap();
    let of = |metric: &str| rows.iter().filter(|r| r.method == "adafire+ssc+iat" && r.metric == metric).count();
    let slots = rows.iter().filter(|r| r.metric == "phi").count();
    assert!(slots >= 3, "one φ per slot: {slots}");
    assert!(rows.iter().filter(|r| r.metric == "phi").all(|r| !r.layer.starts_with("slot ") && !r.layer.is_empty()));
    assert_eq!(of("sensitivity_phi8"), slots);
    assert_eq!(of("rho"), slots);
    assert_eq!(of("iat_alpha"), 4);
    assert_eq!(of("exit_share"), 4);
    assert_eq!(of("mean_exit_step"), 1);
    assert_eq!(of("energy_mj"), 1);
    let share: f64 = rows.iter().filter(|r| r.metric == "exit_share").map(|r| r.value).sum();
    assert!((share - 1.0).abs() < 1e-9, "exit shares sum to 1: {share}");
    // The exit frontier replays the readout's own rule (fitted, Δ = 0) exactly as it ran.
    let value = |metric: &str, layer: &str| {
        rows.iter()
            .find(|r| r.method == "adafire+ssc+iat" && r.metric == metric && r.layer == layer && r.t == 4)
            .unwrap_or_else(|| panic!("no {metric} row for `{layer}`"))
            .value
    };
    assert_eq!(value("frontier_accuracy", "fitted Δ=+0.00"), value("accuracy", ""));
    assert!((value("frontier_mean_step", "fitted Δ=+0.00") - value("mean_exit_step", "")).abs() < 1e-12);
    assert_eq!(value("frontier_mean_step", "fixed t=4"), 4.0);
    assert_eq!(of("frontier_accuracy"), 4 + 38 + 26 + 38 + 1);
    assert_eq!(value("frontier_accuracy", "stable prediction"), value("frontier_accuracy", "fixed t=4"));
    assert!(value("frontier_speedup_fixed", "") >= 1.0, "fixed t=T is in its own family");
    for f in [
        "accuracy_vs_energy",
        "accuracy_vs_exit_step",
        "exit_step_distribution",
        "sensitivity_vs_phi",
        "sensitivity_vs_rho",
        "pareto_frontier",
        "exit_frontier",
    ] {
        let svg = std::fs::read_to_string(out.join(format!("{f}.svg"))).unwrap_or_else(|e| panic!("{f}.svg: {e}"));
        assert!(svg.starts_with("<svg") && svg.contains(r#"class="series""#), "{f}.svg has no series");
    }
}

#[test]
fn an_unknown_figure_is_a_spec_error_naming_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("bad_figure.toml");
    std::fs::write(
        &spec,
        SPEC.replace("rows = [\"method\"]", "rows = [\"method\"]\nfigures = [\"accuracy_vs_nothing\"]"),
    )
    .unwrap();
    let err = format!("{:#}", run_spec(&spec, &options(dir.path()), Mode::Compute).unwrap_err());
    assert!(err.contains("accuracy_vs_nothing") && err.contains("pareto_frontier"), "{err}");
    assert!(!dir.path().join("results/bad_figure").exists(), "nothing written");
}

#[test]
fn spikeconverter_runs_at_its_own_t_per_t_and_reports_its_pipelined_latency() {
    // SpikeConverter (eval_timesteps = [2, 8], converted once per T without calibrate_at_eval_t)
    // beside max-norm at the spec's T; at T = 8 its 8-bit layers match the ANN closely.
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("sc.toml");
    let text = SPEC
        .replace("[[method]]\nkind = \"robust-norm\"", "[[method]]\nkind = \"spikeconverter\"\neval_timesteps = [2, 8]")
        .replace("timesteps = [4, 16, 64, 256]", "timesteps = [4, 16]")
        .replace("method = \"robust-norm\"", "method = \"spikeconverter\"");
    std::fs::write(&spec, text).unwrap();
    let out = run_spec(&spec, &options(dir.path()), Mode::Compute).unwrap();
    let rows = read_csv(&out.join("results.csv")).unwrap();
    let value = |method: &str, t: u32, metric: &str| -> Option<f64> {
        rows.iter()
            .find(|r| r.method == method && r.t == t && r.metric == metric && r.layer.is_empty())
            .map(|r| r.value)
    };
    let ts = |method: &str| -> Vec<u32> {
        let mut t: Vec<u32> =
            rows.iter().filter(|r| r.method == method && r.metric == "accuracy").map(|r| r.t).collect();
        t.sort_unstable();
        t
    };
    assert_eq!(ts("spikeconverter"), vec![2, 8]);
    assert_eq!(ts("max-norm"), vec![4, 16]);
    // small-cnn has 3 slots: latency (L + 1)·T, a new sample every 2T.
    let slots =
        rows.iter().filter(|r| r.method == "spikeconverter" && r.t == 8 && r.metric == "threshold_ratio").count();
    assert!(slots >= 2);
    assert_eq!(value("spikeconverter", 8, "latency_steps"), Some(((slots + 1) * 8) as f64));
    assert_eq!(value("spikeconverter", 8, "pipelined_steps_per_sample"), Some(16.0));
    assert_eq!(value("max-norm", 16, "latency_steps"), None, "rate-coded networks have no pipeline latency");
    // Operation counts for every method.
    assert!(value("max-norm", 16, "additions").is_some() && value("spikeconverter", 8, "multiplications").is_some());
    let ann = value("ann", 0, "accuracy").unwrap();
    let sc = value("spikeconverter", 8, "accuracy").unwrap();
    assert!((ann - sc).abs() <= 2.0, "ANN {ann} vs SpikeConverter at T = 8 {sc}");
}

#[test]
fn layer_analysis_reports_sin_ratio_by_step_and_activation_error_per_slot() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("la.toml");
    let text = SPEC
        .replace("timesteps = [4, 16, 64, 256]", "timesteps = [4, 16]\nlayer_analysis = true")
        .replace("[[method]]\nkind = \"robust-norm\"\n", "");
    std::fs::write(&spec, text.replace("method = \"robust-norm\"", "method = \"max-norm\"")).unwrap();
    let out = run_spec(&spec, &options(dir.path()), Mode::Compute).unwrap();
    let rows = read_csv(&out.join("results.csv")).unwrap();
    let get = |t: u32, metric: &str, layer: &str| {
        rows.iter()
            .find(|r| r.method == "max-norm" && r.t == t && r.metric == metric && r.layer == layer)
            .map(|r| r.value)
    };
    let slots: Vec<String> = rows
        .iter()
        .filter(|r| r.method == "max-norm" && r.metric == "activation_error")
        .map(|r| r.layer.clone())
        .collect();
    assert!(slots.len() >= 2, "an activation error per slot: {slots:?}");
    assert!(rows.iter().filter(|r| r.metric == "activation_error").all(|r| r.t == 16), "only at the run's T");
    let (s4, s16) = (get(4, "sin_ratio", "").unwrap(), get(16, "sin_ratio", "").unwrap());
    assert!((0.0..=1.0).contains(&s4) && s4 <= s16 && s16 <= 1.0, "SIN ratio grows with t: {s4} → {s16}");
    for l in &slots {
        let (a, b) = (get(4, "sin_ratio", l), get(16, "sin_ratio", l));
        if let (Some(a), Some(b)) = (a, b) {
            assert!(a <= b, "{l}: {a} → {b}");
        }
    }
}

/// Writes a `frames.npy` (`[frames, 2, side, side]` f32) inside a stored `.npz`, as
/// `np.savez` would.
fn write_npz(path: &Path, frames: usize, side: usize, values: &[f32]) {
    use std::io::Write;
    let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({frames}, 2, {side}, {side}), }}");
    let mut h = header.into_bytes();
    while (10 + h.len() + 1) % 64 != 0 {
        h.push(b' ');
    }
    h.push(b'\n');
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    npy.extend((h.len() as u16).to_le_bytes());
    npy.extend(h);
    npy.extend(values.iter().flat_map(|v| v.to_le_bytes()));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("frames.npy", opts).unwrap();
    zip.write_all(&npy).unwrap();
    zip.finish().unwrap();
}

#[test]
fn event_frames_train_on_the_mean_frame_and_simulate_frame_by_frame() {
    // A CIFAR10-DVS layout (SpikingJelly frames, 10 classes × 10 samples, 9:1 split) with a
    // class-dependent blob that moves over the 4 frames.
    let dir = tempfile::tempdir().unwrap();
    let (frames, side) = (4usize, 8usize);
    let base = dir.path().join("data/cifar10-dvs/frames_number_4_split_by_number");
    for (c, class) in
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"].iter().enumerate()
    {
        std::fs::create_dir_all(base.join(class)).unwrap();
        for i in 0..10 {
            let mut v = vec![0f32; frames * 2 * side * side];
            for f in 0..frames {
                let (row, col) = (c % 4 * 2, (c / 4 * 2 + f) % side);
                let pol = c % 2;
                v[((f * 2 + pol) * side + row) * side + col] = 3.0 + (i % 3) as f32;
                v[((f * 2 + 1 - pol) * side + (row + 1)) * side + col] = 1.0;
            }
            write_npz(&base.join(class).join(format!("{i:03}.npz")), frames, side, &v);
        }
    }
    let spec = dir.path().join("dvs.toml");
    let text = SPEC
        .replace(
            "name = \"synthetic-shapes2d\"\n[dataset.synthetic]\ntrain_size = 1000\ntest_size = 200\nimage_size = 16\nseed = 1\n",
            "name = \"cifar10-dvs\"\n[dataset.events]\nframes = 4\n",
        )
        .replace("epochs = 3", "epochs = 8")
        .replace("batch_size = 50", "batch_size = 10")
        .replace("calibration_images = 200", "calibration_images = 90")
        .replace("timesteps = [4, 16, 64, 256]", "timesteps = [4, 8]");
    std::fs::write(&spec, &text).unwrap();
    runner::run::plan_spec(&spec, &options(dir.path())).unwrap();
    let out = run_spec(&spec, &options(dir.path()), Mode::Compute).unwrap();
    let rows = read_csv(&out.join("results.csv")).unwrap();
    let ann = accuracy(&rows, "ann", 0);
    assert!(ann >= 50.0, "the ANN learns the mean frames of 10 blobs: {ann}");
    // The SNN sees the frames one by one and still follows the ANN by T = 8 (2 passes).
    let snn = accuracy(&rows, "max-norm", 8);
    assert!(snn >= ann - 30.0, "ANN {ann} vs SNN {snn}");
    // Without the [dataset.events] section the spec is an error naming it.
    std::fs::write(&spec, text.replace("[dataset.events]\nframes = 4\n", "")).unwrap();
    let e = format!("{:#}", runner::run::plan_spec(&spec, &options(dir.path())).unwrap_err());
    assert!(e.contains("dataset.events"), "{e}");
}

#[test]
fn exact_prefix_analysis_reaches_the_ann_when_every_slot_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("prefix.toml");
    let text = SPEC
        .replace("timesteps = [4, 16, 64, 256]", "timesteps = [2, 8]\nexact_prefix_analysis = true")
        .replace("[[method]]\nkind = \"robust-norm\"\n", "");
    std::fs::write(&spec, text.replace("method = \"robust-norm\"", "method = \"max-norm\"")).unwrap();
    let out = run_spec(&spec, &options(dir.path()), Mode::Compute).unwrap();
    let rows = read_csv(&out.join("results.csv")).unwrap();
    let ann = rows.iter().find(|r| r.method == "ann" && r.metric == "accuracy").unwrap();
    let slots: Vec<String> =
        rows.iter().filter(|r| r.method == "max-norm" && r.metric == "threshold").map(|r| r.layer.clone()).collect();
    assert!(slots.len() >= 2, "{slots:?}");
    for t in [2, 8] {
        let exact: Vec<(String, f64)> = rows
            .iter()
            .filter(|r| r.method == "max-norm" && r.t == t && r.metric == "accuracy_exact_to")
            .map(|r| (r.layer.clone(), r.value))
            .collect();
        let order: Vec<&String> = exact.iter().map(|(l, _)| l).collect();
        assert_eq!(order, slots.iter().collect::<Vec<_>>(), "one row per slot, in order, at T = {t}");
        // Every slot exact: the ANN itself, whatever T (up to a float tie in the sums: one image).
        let (_, all_exact) = exact.last().unwrap();
        assert!(
            (all_exact - ann.value).abs() <= 100.0 / ann.n_images as f64,
            "T = {t}: {all_exact} vs ANN {}",
            ann.value
        );
        let snn = rows.iter().find(|r| r.method == "max-norm" && r.t == t && r.metric == "accuracy").unwrap().value;
        if t == 2 {
            assert!(snn + 5.0 < ann.value, "at T = 2 spiking must cost something to measure: {snn} vs {}", ann.value);
        }
    }
}
