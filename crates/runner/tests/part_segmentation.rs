//! Part segmentation end to end: a PointNet part segmenter on `synthetic-parts3d` through
//! training, conversion, simulation and reporting, scored by class and instance mIoU and per
//! category; and the spec errors that pair it with the wrong kind of data.

use runner::report::read_csv;
use runner::run::{Mode, plan_spec, run_spec};

mod common;
use common::{options, value};

const PARTS: &str = r#"
[experiment]
name = "parts"
[dataset]
name = "synthetic-parts3d"
[dataset.points]
num_points = 128
train_size = 240
test_size = 12
seed = 2
[model]
name = "pointnet-partseg"
width = 0.25
[train]
optimizer = "adam"
lr = 0.01
weight_decay = 0.0
batch_size = 16
epochs = 10
[convert]
calibration_images = 32
[[method]]
kind = "robust-norm"
[eval]
timesteps = [4, 256]
batch_size = 12
chunk = 16
[table]
metric = "miou"
also = ["loss", "instance_miou"]
summary = ["miou_cube", "miou_axis-cross"]
"#;

#[test]
fn a_part_segmenter_runs_end_to_end_scored_by_miou_per_category() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("parts.toml");
    std::fs::write(&spec, PARTS).unwrap();
    plan_spec(&spec, &options(dir.path())).unwrap();
    let out = run_spec(&spec, &options(dir.path()), Mode::Compute).unwrap();
    let rows = read_csv(&out.join("results.csv")).unwrap();
    let categories = ["cube", "cylinder", "cone", "pyramid", "cube-and-sphere", "axis-cross"];
    for (method, t) in [("ann", 0), ("robust-norm", 4), ("robust-norm", 256)] {
        let per_category: Vec<f64> = categories.iter().map(|c| value(&rows, method, t, &format!("miou_{c}"))).collect();
        // 12 test clouds, two of each category: the class mIoU is the mean of the six.
        let mean = per_category.iter().sum::<f64>() / 6.0;
        let miou = value(&rows, method, t, "miou");
        assert!((miou - mean).abs() < 1e-9, "{method} T={t}: miou {miou} vs mean of categories {mean}");
        // With two shapes per category, the instance mIoU is the same mean.
        assert!((value(&rows, method, t, "instance_miou") - mean).abs() < 1e-9);
        assert!(per_category.iter().all(|v| (0.0..=100.0).contains(v)), "{per_category:?}");
    }
    // Ten epochs on 240 clouds learn the parts well beyond one part per category everywhere
    // (about 30 % here).
    assert!(value(&rows, "ann", 0, "miou") > 50.0, "{}", value(&rows, "ann", 0, "miou"));
    let loss = value(&rows, "robust-norm", 256, "loss");
    let want = value(&rows, "ann", 0, "miou") - value(&rows, "robust-norm", 256, "miou");
    assert!((loss - want).abs() < 1e-9, "loss {loss} vs ANN − SNN mIoU {want}");
    // The SNN approaches the ANN as T grows (measured: 27 points at T = 4, 1.2 at T = 256).
    let gap = |t| (value(&rows, "ann", 0, "miou") - value(&rows, "robust-norm", t, "miou")).abs();
    assert!(gap(256) < 5.0 && gap(256) < gap(4) / 2.0, "gap at T=256 {} vs T=4 {}", gap(256), gap(4));
    assert!(rows.iter().any(|r| r.metric == "sops" && r.value > 0.0), "the segmenter's SNN spikes");
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("instance_miou") && table.contains("miou_axis-cross"), "{table}");
}

#[test]
fn part_segmenters_and_part_sets_pair_only_with_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    };
    // A part segmenter on a set without part labels is refused, naming the key.
    let wrong = write("wrong", &PARTS.replace("synthetic-parts3d", "synthetic-shapes3d"));
    let e = format!("{:#}", plan_spec(&wrong, &options(dir.path())).unwrap_err());
    assert!(e.contains("model.name") && e.contains("part labels"), "{e}");
    // A classifier learns the categories of a part set.
    let classifier = PARTS
        .replace("pointnet-partseg", "pointnet")
        .replace("metric = \"miou\"", "metric = \"accuracy\"")
        .replace("also = [\"loss\", \"instance_miou\"]\nsummary = [\"miou_cube\", \"miou_axis-cross\"]", "");
    plan_spec(&write("classify", &classifier), &options(dir.path())).unwrap();
}
