//! A spec run as three shards on one cache, then merged, gives the values of one run; the ANN
//! is trained once. `runner export` writes the NIR file of a method's SNN, and never trains.

use std::path::Path;

use runner::export::{ExportFormat, ExportRequest, export};
use runner::report::{ResultRow, read_csv};
use runner::run::{Mode, RunOptions, Shard, run_spec};

const SPEC: &str = r#"
[experiment]
name = "shards"
seeds = [0]
[dataset]
name = "synthetic-shapes2d"
[dataset.synthetic]
train_size = 400
test_size = 100
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
epochs = 2
[convert]
calibration_images = 100
[[method]]
kind = "max-norm"
[[method]]
kind = "robust-norm"
[[method]]
kind = "channel-norm"
[[method]]
kind = "snn-calibration"
label = "calibration"
[[method]]
kind = "robust-norm"
label = "robust-half"
[method.neuron]
v_init = "half"
[eval]
timesteps = [4, 16]
batch_size = 100
chunk = 16
[table]
rows = ["method"]
"#;

fn options(dir: &Path, cache: &str) -> RunOptions {
    RunOptions {
        data_dir: Some(dir.join("data")),
        cache_dir: dir.join(cache),
        results_dir: dir.join(format!("results-{cache}")),
        device_name: "flex".into(),
        overrides: vec![],
        results_dir_chosen: false,
    }
}

/// Everything but timings, which differ from run to run.
fn values(rows: &[ResultRow]) -> Vec<(String, u32, String, String, f64)> {
    let mut v: Vec<_> = rows
        .iter()
        .filter(|r| !r.metric.contains("seconds"))
        .map(|r| (r.method.clone(), r.t, r.metric.clone(), r.layer.clone(), r.value))
        .collect();
    v.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    v
}

#[test]
fn three_shards_then_merge_give_the_values_of_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("sharded.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let shared = options(dir.path(), "shared");
    for index in 0..3 {
        let out = run_spec(&spec, &shared, Mode::Shard(Shard { index, count: 3 })).unwrap();
        assert!(!out.join("results.csv").exists(), "a shard writes no table");
    }
    // One training for all shards: one train entry, trained here.
    let trained = entry_dirs(&dir.path().join("shared/train"));
    assert_eq!(trained.len(), 1, "{trained:?}");
    assert!(trained[0].join("last-epoch.bpk").exists());
    // 1 ANN stage + 5 methods = 6 stages, 2 per shard; merge computes nothing.
    assert_eq!(entries(&dir.path().join("shared/eval")), 5);
    let merged = read_csv(&run_spec(&spec, &shared, Mode::CacheOnly).unwrap().join("results.csv")).unwrap();

    // One run on a fresh cache, from the same ANN (the checkpoint the shards shipped: a second
    // training in one process would not draw the same initial weights).
    let whole = RunOptions { cache_dir: dir.path().join("one"), ..shared.clone() };
    let one = read_csv(&run_spec(&spec, &whole, Mode::Compute).unwrap().join("results.csv")).unwrap();
    assert!(
        !dir.path().join("one/train").read_dir().unwrap().any(|e| e.unwrap().path().join("last-epoch.bpk").exists())
    );
    assert_eq!(values(&merged), values(&one));
    assert!(values(&one).iter().any(|(m, t, metric, ..)| m == "calibration" && *t == 16 && metric == "accuracy"));

    // A bad shard is a clear error.
    let err = "3/3".parse::<Shard>().unwrap_err();
    assert!(err.contains("0 <= i < n"), "{err}");
    assert_eq!("1/4".parse::<Shard>().unwrap(), Shard { index: 1, count: 4 });
}

#[test]
fn export_writes_a_nir_file_of_a_methods_snn_and_never_trains() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("exported.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let opts = options(dir.path(), "cache");
    let out = dir.path().join("out/robust.nir");
    let request = |method: &str| ExportRequest {
        spec: spec.clone(),
        method: method.into(),
        variant: None,
        seed: None,
        timesteps: None,
        out: out.clone(),
        format: ExportFormat::Nir,
    };
    let err = format!("{:#}", export(&request("robust-norm"), &opts).unwrap_err());
    assert!(err.contains("run the spec first"), "{err}");
    assert!(!out.exists());

    run_spec(&spec, &opts, Mode::Compute).unwrap();
    let summary = export(&request("robust-norm"), &opts).unwrap();
    assert!(summary.contains("T = 16"), "{summary}");
    let graph = snn::nir::read_nir(std::fs::read(&out).unwrap()).unwrap();
    let types: Vec<&str> = graph.nodes.iter().map(|(_, n)| n.type_name()).collect();
    for t in ["Input", "Conv2d", "I", "Threshold", "Scale", "AvgPool2d", "Flatten", "Affine", "Output"] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    assert!(graph.metadata.iter().any(|(k, v)| k == "timesteps" && v == "16"));

    // Neurons that start at θ/2: NIR cannot say so, and export says why.
    let err = format!("{:#}", export(&request("robust-half"), &opts).unwrap_err());
    assert!(err.contains("initial state"), "{err}");
    let err = format!("{:#}", export(&request("nope"), &opts).unwrap_err());
    assert!(err.contains("no method `nope`") && err.contains("robust-norm"), "{err}");
}

/// Writes a CIFAR-10 binary layout (5 training files of `per_file` records, one test file of
/// `test` records) with labels from `label(i)` and pixels `i·7 + label·40`.
fn write_cifar10(dir: &Path, per_file: usize, test: usize, label: impl Fn(usize) -> u8) {
    let dir = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let records = |n: usize, offset: usize| -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                let l = label(i + offset);
                std::iter::once(l).chain((0..3072).map(move |p| ((p * 7 + l as usize * 40 + i) % 256) as u8))
            })
            .collect()
    };
    for f in 1..=5 {
        std::fs::write(dir.join(format!("data_batch_{f}.bin")), records(per_file, f * per_file)).unwrap();
    }
    std::fs::write(dir.join("test_batch.bin"), records(test, 0)).unwrap();
}

/// The entry folders of one cache stage (lock files and the like left out); none if absent.
fn entry_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map_or_else(|_| Vec::new(), |d| d.map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect())
}

fn entries(dir: &Path) -> usize {
    entry_dirs(dir).len()
}

#[test]
fn new_test_files_or_weights_under_the_same_names_are_evaluated_afresh() {
    let (dir, spec, text, opts) = cifar_fixture();
    run_spec(&spec, &opts, Mode::Compute).unwrap();
    let (ann, eval) = (dir.path().join("cache/ann"), dir.path().join("cache/eval"));
    assert_eq!((entries(&ann), entries(&eval)), (1, 1));
    // The same run again computes nothing new.
    run_spec(&spec, &opts, Mode::Compute).unwrap();
    assert_eq!((entries(&ann), entries(&eval)), (1, 1));
    // Other test files (same names, same sizes, other labels): new ANN and SNN evaluations,
    // on the same trained ANN.
    let test_file = dir.path().join("data/cifar-10-batches-bin/test_batch.bin");
    let mut test = std::fs::read(&test_file).unwrap();
    test.chunks_mut(3073).for_each(|r| r[0] = (r[0] + 3) % 10);
    std::fs::write(&test_file, &test).unwrap();
    run_spec(&spec, &opts, Mode::Compute).unwrap();
    assert_eq!((entries(&ann), entries(&eval), entries(&dir.path().join("cache/train"))), (2, 2, 1));

    // Imported weights: a different file of the same size under the same name is a new ANN.
    let trained = entry_dirs(&dir.path().join("cache/train"));
    let weights = dir.path().join("weights.bpk");
    std::fs::copy(trained[0].join("model.bpk"), &weights).unwrap();
    let imported = text.replace("width = 0.5\n", &format!("width = 0.5\nweights = \"{}\"\n", weights.display()));
    std::fs::write(&spec, &imported).unwrap();
    run_spec(&spec, &opts, Mode::Compute).unwrap();
    assert_eq!(entries(&eval), 3);
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1; // one bit of the last parameter
    std::fs::write(&weights, &bytes).unwrap();
    run_spec(&spec, &opts, Mode::Compute).unwrap();
    assert_eq!(entries(&eval), 4, "changed weights of the same size must not reuse the old results");
}

#[test]
fn an_empty_training_set_is_an_error_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("empty.toml");
    std::fs::write(&spec, SPEC.replace("[dataset]\n", "[dataset]\ntrain_subset = 0\n")).unwrap();
    let opts = options(dir.path(), "cache");
    let err = format!("{:#}", run_spec(&spec, &opts, Mode::Compute).unwrap_err());
    assert!(err.contains("dataset.train_subset") && err.contains("empty.toml"), "{err}");
    assert!(!dir.path().join("cache/train").exists(), "nothing is cached");
    // `runner plan` catches it, and the synthetic sizes, naming the key.
    let plan = |text: String| {
        std::fs::write(&spec, text).unwrap();
        format!("{:#}", runner::run::plan_spec(&spec, &opts).unwrap_err())
    };
    assert!(plan(SPEC.replace("[dataset]\n", "[dataset]\ntrain_subset = 0\n")).contains("dataset.train_subset"));
    for key in ["train_size", "test_size", "image_size"] {
        let text = SPEC.replace(&format!("{key} = "), &format!("{key} = 0\n# was "));
        let err = plan(text);
        assert!(err.contains(&format!("dataset.synthetic.{key}")) && err.contains("at least 1"), "{err}");
    }
}

#[test]
fn a_damaged_cache_entry_is_moved_aside_and_recomputed_never_used() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("damaged.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let opts = options(dir.path(), "cache");
    let first = read_csv(&run_spec(&spec, &opts, Mode::Compute).unwrap().join("results.csv")).unwrap();
    let eval = dir.path().join("cache/eval");
    let entry = entry_dirs(&eval)[0].clone();
    assert!(
        entry.join("checksums.json").exists(),
        "{:?}",
        std::fs::read_dir(&entry).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>()
    );
    // One changed digit in a stored accuracy: the table must not show it.
    let measures = entry.join("measures.json");
    let text = std::fs::read_to_string(&measures).unwrap();
    let at = text.find("\"value\": ").unwrap() + 9;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'7' { b'8' } else { b'7' };
    std::fs::write(&measures, &bytes).unwrap();
    // And a damaged trained model (the committed checkpoint stands in for it).
    let model = entry_dirs(&dir.path().join("cache/train"))[0].join("model.bpk");
    let mut weights = std::fs::read(&model).unwrap();
    let last = weights.len() - 1;
    weights[last] ^= 0x40;
    std::fs::write(&model, &weights).unwrap();

    let again = read_csv(&run_spec(&spec, &opts, Mode::Compute).unwrap().join("results.csv")).unwrap();
    assert_eq!(values(&again), values(&first));
    let names = |d: &Path| -> Vec<String> {
        std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
    };
    assert!(names(&eval).iter().any(|n| n.contains(".bad-")), "{:?}", names(&eval));
    assert!(names(&dir.path().join("cache/train")).iter().any(|n| n.contains(".bad-")));
}

/// The tiny CIFAR-10 spec of these tests: 1 epoch, max-norm at T = 4.
fn cifar_spec_text() -> String {
    let text = SPEC
        .replace(
            "name = \"synthetic-shapes2d\"\n[dataset.synthetic]\ntrain_size = 400\ntest_size = 100\nimage_size = 12\nseed = 3\n",
            "name = \"cifar10\"\n",
        )
        .replace("epochs = 2", "epochs = 1")
        .replace("calibration_images = 100", "calibration_images = 50");
    text[..text.find("[[method]]").unwrap()].to_string()
        + "[[method]]\nkind = \"max-norm\"\n[eval]\ntimesteps = [4]\nbatch_size = 20\n[table]\nrows = [\"method\"]\n"
}

/// A temporary directory with a tiny CIFAR-10 copy, [`cifar_spec_text`] written to
/// `cifar.toml` there, and options with a cache in it.
fn cifar_fixture() -> (tempfile::TempDir, std::path::PathBuf, String, RunOptions) {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(&dir.path().join("data"), 20, 40, |i| (i % 10) as u8);
    let spec = dir.path().join("cifar.toml");
    let text = cifar_spec_text();
    std::fs::write(&spec, &text).unwrap();
    let opts = options(dir.path(), "cache");
    (dir, spec, text, opts)
}

#[test]
fn report_and_merge_read_only_the_cache_no_data_and_no_weights_file() {
    let (dir, spec, text, opts) = cifar_fixture();
    // Never run: a report says so and writes nothing.
    let err = format!("{:#}", run_spec(&spec, &opts, Mode::CacheOnly).unwrap_err());
    assert!(err.contains("run it first") && err.contains("cifar.toml"), "{err}");
    assert!(!dir.path().join("results-cache/cifar").exists());

    run_spec(&spec, &opts, Mode::Compute).unwrap();
    // A spec importing that ANN's weights (the case `report` used to fail on).
    let weights = dir.path().join("weights.bpk");
    std::fs::copy(entry_dirs(&dir.path().join("cache/train"))[0].join("model.bpk"), &weights).unwrap();
    let imported = text.replace("width = 0.5\n", &format!("width = 0.5\nweights = \"{}\"\n", weights.display()));
    std::fs::write(&spec, &imported).unwrap();
    let computed = read_csv(&run_spec(&spec, &opts, Mode::Compute).unwrap().join("results.csv")).unwrap();

    // Without the data and without the weights file, report and merge render the same values.
    std::fs::rename(dir.path().join("data"), dir.path().join("data-gone")).unwrap();
    std::fs::remove_file(&weights).unwrap();
    // Editing the table's title does not hide what was computed.
    std::fs::write(&spec, imported.replace("[table]\n", "[table]\ntitle = \"Retitled\"\n")).unwrap();
    let out = run_spec(&spec, &opts, Mode::CacheOnly).unwrap();
    let reported = read_csv(&out.join("results.csv")).unwrap();
    assert_eq!(values(&reported), values(&computed));
    assert!(std::fs::read_to_string(out.join("table.md")).unwrap().contains("Retitled"));

    // Every value computed in a cache entry names it and carries its provenance; values
    // derived while rendering (loss, energy) name none.
    for row in &reported {
        let measured =
            ["accuracy", "spikes", "sops", "multiplications", "conversion_seconds"].contains(&row.metric.as_str());
        let derived = ["loss", "rate", "energy_j", "energy_mj", "energy_ratio", "synaptic_energy_ratio"]
            .contains(&row.metric.as_str());
        if measured {
            assert!(!row.stage_key.is_empty(), "{row:?}");
        }
        if derived {
            assert!(row.stage_key.is_empty(), "{row:?}");
        }
        if let Some((stage, key)) = row.stage_key.split_once('/') {
            assert!(["ann", "eval", "variant"].contains(&stage), "{row:?}");
            assert!(dir.path().join("cache").join(stage).join(key).exists(), "{row:?}");
        }
        assert!(!row.git_hash.is_empty() && !row.date.is_empty(), "{row:?}");
    }
    assert!(reported.iter().any(|r| r.method == "max-norm" && r.stage_key.starts_with("eval/")));
    let ann = reported.iter().find(|r| r.method == "ann" && r.metric == "accuracy").unwrap();
    let recorded: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("cache").join(&ann.stage_key).join("provenance.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(recorded["git_hash"], ann.git_hash.as_str(), "the provenance of the computation, not of the report");
    // Each entry also keeps what its key was made from.
    let eval = reported.iter().find(|r| r.method == "max-norm").unwrap();
    let inputs: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("cache").join(&eval.stage_key).join("spec.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(inputs["method"]["kind"], "max-norm", "{inputs}");
    assert!(inputs["test_fingerprint"].is_string() && inputs["ann"].is_string(), "{inputs}");
}

#[test]
fn two_runs_of_one_spec_on_one_cache_both_finish_and_do_the_work_once() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("twice.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let opts = options(dir.path(), "cache");
    let runs: Vec<_> = (0..2)
        .map(|i| {
            let (spec, opts) =
                (spec.clone(), RunOptions { results_dir: dir.path().join(format!("out{i}")), ..opts.clone() });
            std::thread::spawn(move || run_spec(&spec, &opts, Mode::Compute).map_err(|e| format!("{e:#}")))
        })
        .collect();
    let outs: Vec<_> = runs.into_iter().map(|r| r.join().unwrap().unwrap()).collect();
    let tables: Vec<_> = outs.iter().map(|o| values(&read_csv(&o.join("results.csv")).unwrap())).collect();
    assert_eq!(tables[0], tables[1]);
    assert_eq!(entries(&dir.path().join("cache/train")), 1, "trained once");
    assert_eq!(entries(&dir.path().join("cache/eval")), 5, "each method evaluated once");
    assert_eq!(entries(&dir.path().join("cache/ann")), 1);
    let leftovers: Vec<_> = walk(&dir.path().join("cache")).into_iter().filter(|p| p.ends_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Every file under `dir`, as strings.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

#[test]
fn a_set_run_writes_beside_the_spec_table_unless_a_results_dir_is_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("quick.toml");
    std::fs::write(&spec, SPEC.replace("epochs = 2", "epochs = 1")).unwrap();
    let overrides = vec!["eval.timesteps=[4]".to_string()];
    let opts = RunOptions { overrides: overrides.clone(), ..options(dir.path(), "cache") };
    let out = run_spec(&spec, &opts, Mode::Compute).unwrap();
    let folder = out.file_name().unwrap().to_string_lossy().into_owned();
    assert!(folder.starts_with("quick+") && folder.len() == "quick+".len() + 8, "{folder}");
    let chosen = RunOptions { results_dir_chosen: true, results_dir: dir.path().join("mine"), ..opts };
    assert_eq!(run_spec(&spec, &chosen, Mode::Compute).unwrap(), dir.path().join("mine/quick"));
}

/// Writes an IDX split of `count` blank `side`×`side` images (labels 0) into `dir`.
fn write_idx_split(dir: &Path, images: &str, labels: &str, count: u32, side: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let mut img = Vec::new();
    for v in [0x0803, count, side, side] {
        img.extend(u32::to_be_bytes(v));
    }
    img.resize(16 + (count * side * side) as usize, 0);
    std::fs::write(dir.join(images), img).unwrap();
    let mut lbl = Vec::new();
    for v in [0x0801, count] {
        lbl.extend(u32::to_be_bytes(v));
    }
    lbl.resize(8 + count as usize, 0);
    std::fs::write(dir.join(labels), lbl).unwrap();
}

#[test]
fn an_empty_or_mismatched_idx_split_is_caught_by_plan_and_fails_a_run_before_training() {
    let text = SPEC
        .replace(
            "name = \"synthetic-shapes2d\"\n[dataset.synthetic]\ntrain_size = 400\ntest_size = 100\nimage_size = 12\nseed = 3\n",
            "name = \"fashion-mnist\"\n",
        )
        .replace("epochs = 2", "epochs = 1")
        .replace("calibration_images = 100", "calibration_images = 4");
    for (train_count, train_side, expected) in
        [(0, 28, "training images file holds 0 images"), (6, 14, "training images are 14x14 but test images 28x28")]
    {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data/fashion-mnist");
        write_idx_split(&data, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", train_count, train_side);
        write_idx_split(&data, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 5, 28);
        let spec = dir.path().join("idx.toml");
        std::fs::write(&spec, &text).unwrap();
        let opts = options(dir.path(), "cache");
        let plan = format!("{:#}", runner::run::plan_spec(&spec, &opts).unwrap_err());
        assert!(plan.contains(expected) && plan.contains("idx.toml") && plan.contains("fashion-mnist"), "{plan}");
        let run = format!("{:#}", run_spec(&spec, &opts, Mode::Compute).unwrap_err());
        assert!(run.contains("fashion-mnist"), "{run}");
        assert!(!dir.path().join("cache/train").exists(), "nothing trained or cached: {run}");
    }
}

#[test]
fn an_exit_frontier_without_an_early_exit_readout_is_a_plan_error() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("frontier.toml");
    std::fs::write(&spec, SPEC.replace("[eval]\n", "[eval]\nexit_frontier = true\n")).unwrap();
    let err = format!("{:#}", runner::run::plan_spec(&spec, &options(dir.path(), "cache")).unwrap_err());
    assert!(err.contains("eval.exit_frontier") && err.contains("early-exit") && err.contains("frontier.toml"), "{err}");
}
