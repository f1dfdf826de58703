//! The real dense data sets (`voc`, `coco`) in specs: the missing-data message of `runner
//! plan`, the `[dataset.dense]` spec errors, and a tiny run on PASCAL VOC files written here.

use std::path::Path;

use runner::report::read_csv;
use runner::run::{Mode, plan_spec, run_spec};

mod common;
use common::options;

const SEGMENT: &str = r#"
[experiment]
name = "voc-segment"
[dataset]
name = "voc"
[dataset.dense]
image_size = 32
task = "segmentation"
[model]
name = "fcn-vgg"
width = 0.125
[train]
optimizer = "adam"
lr = 0.002
weight_decay = 0.0
batch_size = 4
epochs = 1
[convert]
calibration_images = 8
[[method]]
kind = "robust-norm"
[eval]
timesteps = [4]
batch_size = 4
chunk = 4
[table]
metric = "miou"
also = ["loss", "pixel_accuracy"]
"#;

fn plan_error(dir: &Path, name: &str, text: &str) -> String {
    let spec = dir.join(format!("{name}.toml"));
    std::fs::write(&spec, text).unwrap();
    format!("{:#}", plan_spec(&spec, &options(dir)).unwrap_err())
}

#[test]
fn plan_names_the_missing_voc_and_coco_files_and_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let err = plan_error(dir.path(), "voc", SEGMENT);
    let data = dir.path().join("data");
    for needle in [
        "voc.toml".to_string(),
        "dataset `voc (VOC2012, train)` not found".into(),
        data.join("VOCdevkit/VOC2012").display().to_string(),
        "ImageSets/Segmentation/train.txt".into(),
        "VOCtrainval_11-May-2012.tar".into(),
        "--data-dir".into(),
    ] {
        assert!(err.contains(&needle), "`{err}` mentions {needle}");
    }
    let coco = SEGMENT
        .replace("name = \"voc\"", "name = \"coco\"")
        .replace("task = \"segmentation\"", "test_split = \"minival\"");
    let err = plan_error(dir.path(), "coco", &coco);
    for needle in ["coco (train2017)", "annotations/instances_train2017.json", "cocodataset.org"] {
        assert!(err.contains(needle), "`{err}` mentions {needle}");
    }
    assert!(!dir.path().join("results").exists() && !dir.path().join("cache").exists());
}

#[test]
fn dense_options_are_checked_with_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (SEGMENT.replace("task = \"segmentation\"\n", ""), "dataset.dense.task", "task = \"segmentation\""),
        (SEGMENT.replace("image_size = 32", "image_size = 36"), "dataset.dense.image_size", "multiple of 8"),
        (SEGMENT.replace("image_size = 32", "image_size = 8"), "dataset.dense", "image_size 8"),
        (SEGMENT.replace("image_size = 32", "size = 32"), "dataset.dense", "unknown field `size`"),
        (SEGMENT.replace("name = \"voc\"", "name = \"coco\""), "dataset.dense", "task applies to voc only"),
        (
            SEGMENT.replace("name = \"voc\"", "name = \"synthetic-detection\""),
            "dataset.dense",
            "not of `synthetic-detection`",
        ),
        (
            SEGMENT.replace("[dataset.dense]", "[dataset.detection]\nclasses = 2\n[dataset.dense]"),
            "dataset.detection",
            "`voc`",
        ),
        (SEGMENT.replace("fcn-vgg", "small-cnn"), "model.name", "holds boxes and masks"),
        (SEGMENT.replace("name = \"voc\"", "name = \"vocc\""), "dataset.name", "coco"),
    ];
    for (i, (text, key, message)) in cases.iter().enumerate() {
        let err = plan_error(dir.path(), &format!("bad{i}"), text);
        assert!(err.contains(&format!("bad{i}.toml")) && err.contains(key) && err.contains(message), "{err}");
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// `<root>/VOCdevkit/VOC2012` with `n` 40×30 images, each a bright dog rectangle (label 12,
/// with a void border of 255) on a dark background, listed in the train and val files of both
/// tasks.
fn voc_tree(root: &Path, n: usize) {
    let dir = root.join("VOCdevkit/VOC2012");
    let mut ids = String::new();
    for k in 0..n {
        let id = format!("2012_{k:06}");
        ids.push_str(&id);
        ids.push('\n');
        let (x0, y0) = (2 + (k * 5) % 16, 3 + (k * 3) % 10);
        let (x1, y1) = (x0 + 18, y0 + 14);
        let inside = |x: u32, y: u32, m: usize| {
            (x0 - m..=x1 + m).contains(&(x as usize)) && (y0 - m..=y1 + m).contains(&(y as usize))
        };
        let jpeg = image::RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb(if inside(x, y, 0) { [230, 200, 60] } else { [20, 30, 60 + (k as u8) * 10] })
        });
        std::fs::create_dir_all(dir.join("JPEGImages")).unwrap();
        jpeg.save_with_format(dir.join(format!("JPEGImages/{id}.jpg")), image::ImageFormat::Jpeg).unwrap();
        let mask = image::GrayImage::from_fn(40, 30, |x, y| {
            image::Luma([if inside(x, y, 0) {
                12
            } else if inside(x, y, 1) {
                255
            } else {
                0
            }])
        });
        std::fs::create_dir_all(dir.join("SegmentationClass")).unwrap();
        mask.save_with_format(dir.join(format!("SegmentationClass/{id}.png")), image::ImageFormat::Png).unwrap();
        let xml = format!(
            "<annotation><size><width>40</width><height>30</height></size><object><name>dog</name>\
             <difficult>{}</difficult><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax>\
             </bndbox></object></annotation>",
            u8::from(k == 1),
            x0 + 1,
            y0 + 1,
            x1 + 1,
            y1 + 1
        );
        write(&dir.join(format!("Annotations/{id}.xml")), xml.as_bytes());
    }
    for task in ["Main", "Segmentation"] {
        for split in ["train", "val"] {
            write(&dir.join(format!("ImageSets/{task}/{split}.txt")), ids.as_bytes());
        }
    }
}

#[test]
fn a_segmenter_and_a_detector_run_on_voc_files() {
    let dir = tempfile::tempdir().unwrap();
    voc_tree(&dir.path().join("data"), 8);
    let spec = dir.path().join("segment.toml");
    std::fs::write(&spec, SEGMENT.replace("[dataset.dense]", "[dataset.dense]\ntest_size = 4")).unwrap();
    plan_spec(&spec, &options(dir.path())).unwrap();
    let out = run_spec(&spec, &options(dir.path()), Mode::Compute).unwrap();
    let rows = read_csv(&out.join("results.csv")).unwrap();
    let value = |method: &str, metric: &str| {
        rows.iter()
            .find(|r| r.method == method && r.metric == metric && r.layer.is_empty())
            .unwrap_or_else(|| panic!("no {metric} row for {method}"))
            .value
    };
    for method in ["ann", "robust-norm"] {
        for metric in ["miou", "pixel_accuracy"] {
            let v = value(method, metric);
            assert!((0.0..=100.0).contains(&v), "{method} {metric} = {v}");
        }
    }

    let detect = SEGMENT
        .replace("name = \"voc-segment\"", "name = \"voc-detect\"")
        .replace("task = \"segmentation\"", "task = \"detection\"\ntest_size = 4")
        .replace("fcn-vgg", "yolo-vgg")
        .replace("metric = \"miou\"", "metric = \"map50\"")
        .replace("\"pixel_accuracy\"", "\"map50_95\"");
    let spec = dir.path().join("detect.toml");
    std::fs::write(&spec, detect).unwrap();
    let out = run_spec(&spec, &options(dir.path()), Mode::Compute).unwrap();
    let rows = read_csv(&out.join("results.csv")).unwrap();
    for method in ["ann", "robust-norm"] {
        let v = rows.iter().find(|r| r.method == method && r.metric == "map50").unwrap().value;
        assert!((0.0..=100.0).contains(&v), "{method} map50 = {v}");
    }
}
