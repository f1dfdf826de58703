//! A spec with `ship_stages` copies each finished stage to `results/stages/`; a run on a fresh
//! cache (a new machine) restores them instead of recomputing them.

use runner::report::read_csv;
use runner::run::{Mode, SHIPPED_STAGES_DIR, run_spec};

mod common;
use common::{options, value};

const SPEC: &str = r#"
[experiment]
name = "shipped"
ship_stages = true
[dataset]
name = "synthetic-shapes2d"
[dataset.synthetic]
train_size = 200
test_size = 50
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
calibration_images = 50
[[method]]
kind = "robust-norm"
[eval]
timesteps = [8]
batch_size = 50
"#;

/// The stage directories (`<stage>/<key>`) under `dir`.
fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for stage in std::fs::read_dir(dir).unwrap() {
        let stage = stage.unwrap().path();
        for key in std::fs::read_dir(&stage).unwrap() {
            let key = key.unwrap().path();
            out.push(format!(
                "{}/{}",
                stage.file_name().unwrap().to_string_lossy(),
                key.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn shipped_stages_are_restored_on_a_fresh_cache_instead_of_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("shipped.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let first = options(dir.path());
    let out = run_spec(&spec, &first, Mode::Compute).unwrap();
    let shipped = first.results_dir.join(SHIPPED_STAGES_DIR);
    let stages = entries(&shipped);
    assert_eq!(stages.iter().filter(|s| s.starts_with("ann/")).count(), 1, "{stages:?}");
    assert_eq!(stages.iter().filter(|s| s.starts_with("eval/")).count(), 1, "{stages:?}");
    for s in &stages {
        for f in runner::cache::SHIPPED_STAGE_FILES {
            assert!(shipped.join(s).join(f).is_file(), "{s}/{f}");
        }
    }
    let rows = read_csv(&out.join("results.csv")).unwrap();
    let accuracy = value(&rows, "robust-norm", 8, "accuracy");

    // Mark the shipped SNN accuracy so that its use shows: a fresh cache must take it from
    // there, not recompute it.
    let eval = stages.iter().find(|s| s.starts_with("eval/")).unwrap();
    let measures = shipped.join(eval).join("measures.json");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&measures).unwrap()).unwrap();
    let row = json
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["metric"] == "accuracy" && m["t"] == 8 && m["layer"] == "")
        .unwrap();
    assert_eq!(row["value"].as_f64(), Some(accuracy));
    row["value"] = 12.5.into();
    std::fs::write(&measures, serde_json::to_string(&json).unwrap()).unwrap();
    let fresh = runner::run::RunOptions { cache_dir: dir.path().join("fresh-cache"), ..first.clone() };
    let rows = read_csv(&run_spec(&spec, &fresh, Mode::Compute).unwrap().join("results.csv")).unwrap();
    assert_eq!(value(&rows, "robust-norm", 8, "accuracy"), 12.5);
    // A report (which never computes) needs a run on this cache first: the variant's record
    // (data fingerprints, ANN keys) is written by a run, not shipped.
    let report = runner::run::RunOptions { cache_dir: dir.path().join("report-cache"), ..first.clone() };
    let err = run_spec(&spec, &report, Mode::CacheOnly).unwrap_err();
    assert!(format!("{err:#}").contains("run it first"), "{err:#}");

    // Without `ship_stages` nothing new is written there (restoring still works).
    let quiet = SPEC.replace("ship_stages = true\n", "").replace("kind = \"robust-norm\"", "kind = \"max-norm\"");
    std::fs::write(&spec, quiet).unwrap();
    run_spec(&spec, &fresh, Mode::Compute).unwrap();
    assert_eq!(entries(&shipped), stages);
}
