//! Dense prediction end to end: a YOLO-style detector and an FCN-style segmenter on
//! `synthetic-detection` through training, conversion, simulation and reporting, scored by
//! mAP and mIoU; and the spec errors that pair a model with the wrong kind of data.

use std::path::Path;

use runner::report::{ResultRow, read_csv};
use runner::run::{Mode, plan_spec, run_spec};

mod common;
use common::{options, value};

const DETECTION: &str = r#"
[experiment]
name = "dense"
[dataset]
name = "synthetic-detection"
[dataset.detection]
image_size = 32
classes = 2
max_objects = 2
min_scale = 0.25
max_scale = 0.6
train_size = 96
test_size = 16
seed = 3
[model]
name = "yolo-vgg"
width = 0.125
[train]
optimizer = "adam"
lr = 0.002
weight_decay = 0.0
batch_size = 16
epochs = 1
[convert]
calibration_images = 32
[[method]]
kind = "robust-norm"
[[method]]
kind = "ltb"
label = "ltb-de"
iterations = 5
delayed_evaluation = true
[eval]
timesteps = [4, 32]
batch_size = 8
chunk = 8
[table]
metric = "map50"
also = ["loss"]
figures = ["detections"]
"#;

/// Runs `text` as a spec in `dir`; returns its result rows and table.
fn run(dir: &Path, name: &str, text: &str) -> (Vec<ResultRow>, String) {
    let spec = dir.join(format!("{name}.toml"));
    std::fs::write(&spec, text).unwrap();
    let out = run_spec(&spec, &options(dir), Mode::Compute).unwrap();
    for f in ["results.csv", "table.md", "accuracy_vs_t.svg"] {
        assert!(out.join(f).exists(), "{name}: {f} missing");
    }
    (read_csv(&out.join("results.csv")).unwrap(), std::fs::read_to_string(out.join("table.md")).unwrap())
}

#[test]
fn a_detector_and_a_segmenter_run_end_to_end_scored_by_map_and_miou() {
    let dir = tempfile::tempdir().unwrap();
    // `runner plan` accepts the procedural set (nothing on disk) before the run.
    std::fs::write(dir.path().join("detect.toml"), DETECTION).unwrap();
    plan_spec(&dir.path().join("detect.toml"), &options(dir.path())).unwrap();
    let (rows, table) = run(dir.path(), "detect", DETECTION);
    for method in ["ann", "robust-norm"] {
        for t in if method == "ann" { vec![0] } else { vec![4, 32] } {
            for metric in ["map50", "map50_95"] {
                let v = value(&rows, method, t, metric);
                assert!((0.0..=100.0).contains(&v), "{method} T={t} {metric} = {v}");
            }
        }
    }
    assert!(!rows.iter().any(|r| r.metric == "accuracy"), "a detector has no accuracy rows");
    // Delayed evaluation's window is decoded the same way.
    for t in [4, 32] {
        assert!((0.0..=100.0).contains(&value(&rows, "ltb-de", t, "map50")));
    }
    // The conversion loss is of the primary metric, mAP@0.5.
    let loss = value(&rows, "robust-norm", 32, "loss");
    let want = value(&rows, "ann", 0, "map50") - value(&rows, "robust-norm", 32, "map50");
    assert!((loss - want).abs() < 1e-9, "loss {loss} vs ANN − SNN mAP {want}");
    assert!(rows.iter().any(|r| r.metric == "sops" && r.value > 0.0), "the detector's SNN spikes");
    assert!(table.contains("map50") && table.contains("T=32"), "{table}");
    // The ground truth of the first test images is drawn, whatever the detector found.
    let svg = std::fs::read_to_string(dir.path().join("results/detect/detections.svg")).unwrap();
    assert!(svg.contains(r#"class="truth""#) && svg.contains("robust-norm, T=32"), "{svg}");

    let segment = DETECTION
        .replace("yolo-vgg", "fcn-vgg")
        .replace("metric = \"map50\"", "metric = \"miou\"")
        .replace("figures = [\"detections\"]", "");
    let (rows, table) = run(dir.path(), "segment", &segment);
    for (method, t) in [("ann", 0), ("robust-norm", 4), ("robust-norm", 32)] {
        for metric in ["miou", "pixel_accuracy"] {
            let v = value(&rows, method, t, metric);
            assert!((0.0..=100.0).contains(&v), "{method} T={t} {metric} = {v}");
        }
    }
    // Background is most of every image: even one epoch gets most pixels right.
    assert!(value(&rows, "ann", 0, "pixel_accuracy") > 50.0);
    let loss = value(&rows, "robust-norm", 32, "loss");
    let want = value(&rows, "ann", 0, "miou") - value(&rows, "robust-norm", 32, "miou");
    assert!((loss - want).abs() < 1e-9, "loss {loss} vs ANN − SNN mIoU {want}");
    assert!(table.contains("miou"), "{table}");
}

#[test]
fn models_and_data_of_different_tasks_are_refused_before_any_computation() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (DETECTION.replace("yolo-vgg", "small-cnn"), "model.name", "holds boxes and masks"),
        (
            DETECTION.replace("name = \"synthetic-detection\"", "name = \"synthetic-shapes2d\"").replace(
                "[dataset.detection]\nimage_size = 32\nclasses = 2\nmax_objects = 2\nmin_scale = 0.25\nmax_scale = 0.6\ntrain_size = 96\ntest_size = 16\nseed = 3\n",
                "",
            ),
            "model.name",
            "needs a data set with dense labels",
        ),
        (DETECTION.replace("max_objects = 2", "max_objects = 0"), "dataset.detection", "max_objects"),
        (
            DETECTION.replace("kind = \"robust-norm\"", "kind = \"robust-norm\"\n[method.readout]\nkind = \"ilif-decode\""),
            "method[0].readout",
            "predicted classes only",
        ),
    ];
    for (i, (text, key, message)) in cases.iter().enumerate() {
        let spec = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&spec, text).unwrap();
        let err = format!("{:#}", plan_spec(&spec, &options(dir.path())).unwrap_err());
        assert!(err.contains(&format!("bad{i}.toml")) && err.contains(key) && err.contains(message), "{err}");
    }
    assert!(!dir.path().join("results").exists() && !dir.path().join("cache").exists());
    // A normalisation of the wrong channel count stops the run before training, naming the key.
    let spec = dir.path().join("norm.toml");
    let text =
        DETECTION.replace("[dataset.detection]", "normalization = { mean = [0.5], std = [0.25] }\n[dataset.detection]");
    std::fs::write(&spec, text).unwrap();
    let err = format!("{:#}", run_spec(&spec, &options(dir.path()), Mode::Compute).unwrap_err());
    assert!(err.contains("dataset.normalization") && err.contains("has 3"), "{err}");
    assert!(!dir.path().join("results").exists());
}
