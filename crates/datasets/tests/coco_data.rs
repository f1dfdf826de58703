//! MS COCO instances files and the conversion of VOC and COCO to the dense sample form, on
//! small trees written in the real formats into a temporary directory.

use std::path::{Path, PathBuf};

use datasets::coco::{self, CocoOptions, IGNORE_INDEX};
use datasets::dense::{self, DenseOptions};
use datasets::synthetic_detection::SyntheticDetectionSet;
use datasets::voc::{self, VocTask};
use datasets::{DataRoot, DatasetError, Split};

fn root_at(path: &Path) -> DataRoot {
    DataRoot { explicit: Some(path.to_path_buf()), env: None, project: path.join("no-such-project-dir") }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn jpeg(path: &Path, width: u32, height: u32, colour: [u8; 3]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(width, height, image::Rgb(colour))
        .save_with_format(path, image::ImageFormat::Jpeg)
        .unwrap();
}

/// Pixel (x, y) of `b.png`.
fn b_pixel(x: u32, y: u32) -> [u8; 3] {
    [10 * x as u8, 20 * y as u8, 7]
}

/// The instances file of the fixture (see [`coco_tree`]).
fn instances_json() -> serde_json::Value {
    serde_json::json!({
        "info": {"description": "fixture"},
        "images": [
            {"id": 10, "file_name": "a.jpg", "width": 8, "height": 6, "license": 1},
            {"id": 20, "file_name": "b.png", "width": 5, "height": 4},
            {"id": 30, "file_name": "c.jpg", "width": 4, "height": 4},
        ],
        // Sparse ids out of order: classes by ascending id are person 0, car 1, dog 2.
        "categories": [
            {"id": 18, "name": "dog", "supercategory": "animal"},
            {"id": 1, "name": "person", "supercategory": "person"},
            {"id": 3, "name": "car", "supercategory": "vehicle"},
        ],
        "annotations": [
            // Image 10: a dog rectangle, pixel centres x 1.5..3.5, y 1.5..2.5.
            {"id": 100, "image_id": 10, "category_id": 18, "iscrowd": 0, "area": 6.0,
             "bbox": [1, 1, 3, 2], "segmentation": [[1, 1, 4, 1, 4, 3, 1, 3]]},
            // Image 10: a person of two polygons, a triangle and a unit square.
            {"id": 101, "image_id": 10, "category_id": 1, "iscrowd": 0, "area": 5.5,
             "bbox": [5, 0, 3, 5], "segmentation": [[5, 0, 8, 0, 8, 3], [7, 4, 8, 4, 8, 5, 7, 5]]},
            // Image 10: a crowd of cars, uncompressed RLE (column-major): (0,0), (0,1), (0,2), (1,0).
            {"id": 102, "image_id": 10, "category_id": 3, "iscrowd": 1, "area": 4.0,
             "bbox": [0, 0, 2, 3], "segmentation": {"counts": [0, 3, 3, 1, 41], "size": [6, 8]}},
            // Image 20: a tiny person without segmentation (dropped when resized).
            {"id": 200, "image_id": 20, "category_id": 1, "iscrowd": 0,
             "bbox": [4.0, 3.0, 0.2, 0.2]},
            // Image 20: a person, compressed RLE of runs [9, 2, 2, 2, 5]: columns 2-3, rows 1-2.
            {"id": 201, "image_id": 20, "category_id": 1, "iscrowd": 0, "area": 4,
             "bbox": [2, 1, 2, 2], "segmentation": {"counts": "92203", "size": [4, 5]}},
            // Image 20: a car square at the top left (no `id`, no `iscrowd`, no `area`).
            {"image_id": 20, "category_id": 3,
             "bbox": [0, 0, 2, 2], "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]},
        ]
    })
}

/// `<tmp>/coco` with `annotations/instances_val2017.json` and `val2017/`: `a.jpg` (8×6, solid
/// colour, a dog, a person and a crowd of cars), `b.png` (5×4, every pixel distinct, two
/// persons and a car), `c.jpg` (4×4, no annotation).
fn coco_tree() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("coco");
    jpeg(&dir.join("val2017/a.jpg"), 8, 6, [200, 40, 40]);
    image::RgbImage::from_fn(5, 4, |x, y| image::Rgb(b_pixel(x, y)))
        .save_with_format(dir.join("val2017/b.png"), image::ImageFormat::Png)
        .unwrap();
    jpeg(&dir.join("val2017/c.jpg"), 4, 4, [20, 200, 20]);
    write(&dir.join("annotations/instances_val2017.json"), instances_json().to_string().as_bytes());
    (tmp, dir)
}

/// A `w × h` label map with `label` at the listed (x, y) pixels, 0 elsewhere.
fn map_with(w: usize, h: usize, pixels: &[(usize, usize, u32)]) -> Vec<u32> {
    let mut m = vec![0; w * h];
    for &(x, y, l) in pixels {
        m[y * w + x] = l;
    }
    m
}

#[test]
fn coco_boxes_classes_and_masks_match_hand_computed_values() {
    let (tmp, _) = coco_tree();
    let set = coco::load(&root_at(tmp.path()), coco::split_name(Split::Test), &CocoOptions::default()).unwrap();
    assert_eq!(set.class_names, ["person", "car", "dog"]);
    assert_eq!(set.category_ids, [1, 3, 18]);
    assert_eq!((set.len(), set.num_labels()), (3, 4));
    let ids: Vec<u64> = set.samples.iter().map(|s| s.id).collect();
    assert_eq!(ids, [10, 20, 30], "file order");

    let a = &set.samples[0];
    let classes: Vec<(usize, u64, bool)> = a.objects.iter().map(|o| (o.class, o.category_id, o.iscrowd)).collect();
    assert_eq!(classes, [(2, 18, false), (0, 1, false), (1, 3, true)]);
    assert_eq!(<[f64; 4]>::from(a.objects[0].bbox), [1.0, 1.0, 3.0, 2.0]);
    assert_eq!((a.objects[0].annotation_id, a.objects[0].area), (Some(100), 6.0));
    assert_eq!((a.width, a.height, a.pixels.len()), (8, 6, 3 * 8 * 6));
    let dog: Vec<(usize, usize, u32)> = (1..4).flat_map(|x| (1..3).map(move |y| (x, y, 3))).collect();
    let person = [(5, 0, 1), (6, 0, 1), (7, 0, 1), (6, 1, 1), (7, 1, 1), (7, 2, 1), (7, 4, 1)];
    let crowd = [(0, 0, IGNORE_INDEX), (0, 1, IGNORE_INDEX), (0, 2, IGNORE_INDEX), (1, 0, IGNORE_INDEX)];
    let all: Vec<_> = dog.iter().chain(&person).chain(&crowd).copied().collect();
    assert_eq!(a.mask.as_deref().unwrap(), map_with(8, 6, &all), "polygons at pixel centres, RLE column-major");
    let instance = |list: &[(usize, usize, u32)], id: u32| list.iter().map(|&(x, y, _)| (x, y, id)).collect::<Vec<_>>();
    let ids: Vec<_> = [instance(&dog, 1), instance(&person, 2), instance(&crowd, 3)].concat();
    assert_eq!(a.instances.as_deref().unwrap(), map_with(8, 6, &ids));
    assert!(a.pixels[..48].iter().all(|&r| r.abs_diff(200) <= 8), "planar RGB: the red plane first");

    let b = &set.samples[1];
    assert_eq!(b.objects.len(), 3);
    assert_eq!((b.objects[2].annotation_id, b.objects[2].iscrowd, b.objects[2].area), (None, false, 4.0));
    let labels = [(2, 1, 1), (3, 1, 1), (2, 2, 1), (3, 2, 1), (0, 0, 2), (1, 0, 2), (0, 1, 2), (1, 1, 2)];
    assert_eq!(b.mask.as_deref().unwrap(), map_with(5, 4, &labels), "compressed RLE and a polygon");
    for (x, y) in [(0, 0), (4, 3), (2, 1)] {
        let i = y as usize * 5 + x as usize;
        let rgb = [b.pixels[i], b.pixels[20 + i], b.pixels[40 + i]];
        assert_eq!(rgb, b_pixel(x, y), "PNG pixels are exact");
    }
    let c = &set.samples[2];
    assert!(c.objects.is_empty() && c.mask.as_ref().unwrap().iter().all(|&l| l == 0), "kept without objects");

    let truth = set.ground_truth();
    assert_eq!(truth.len(), 6);
    assert_eq!((truth[0].image, truth[0].category, truth[0].iscrowd), (0, 3, false), "category = 1 + class");
    assert_eq!((truth[2].image, truth[2].category, truth[2].iscrowd), (0, 2, true));
    assert_eq!(truth[5].image, 1);

    let first = coco::load(&root_at(tmp.path()), "val2017", &CocoOptions { max_images: Some(1), ..Default::default() });
    assert_eq!(first.unwrap().len(), 1);
    let labels_only = CocoOptions { decode_images: false, masks: false, ..Default::default() };
    let bare = coco::load(&root_at(tmp.path()), "val2017", &labels_only).unwrap();
    assert!(bare.samples.iter().all(|s| s.pixels.is_empty() && s.mask.is_none() && s.instances.is_none()));
    assert_eq!(bare.samples[0].objects, set.samples[0].objects);
}

#[test]
fn compressed_rle_strings_decode_as_pycocotools_writes_them() {
    // Runs 0-2 as they are; from the fourth on, differences to the run two before.
    assert_eq!(coco::decode_rle_string("92203").unwrap(), [9, 2, 2, 2, 5]);
    assert_eq!(coco::encode_rle_string(&[9, 2, 2, 2, 5]), "92203");
    // 100 = 4 + 3·32: two 5-bit groups, the first with the continuation bit ('T' = 48 + 36).
    assert_eq!(coco::decode_rle_string("T3").unwrap(), [100]);
    // A negative difference: 1 − 5 = −4 is one group with the sign bit ('L' = 48 + 28).
    assert_eq!(coco::decode_rle_string("355L").unwrap(), [3, 5, 5, 1]);
    let runs = [0, 17, 3_000, 40, 2, 123_456, 7, 7, 0, 1];
    assert_eq!(coco::decode_rle_string(&coco::encode_rle_string(&runs)).unwrap(), runs);
    for (bad, needle) in
        [("9 2", "character 1"), ("T", "ends inside"), ("3L", "negative"), ("ooooooooooooooo", "64 bits")]
    {
        let err = coco::decode_rle_string(bad).unwrap_err();
        assert!(err.contains(needle), "{bad}: {err}");
    }
}

#[test]
fn bad_annotation_files_name_the_file_and_the_key() {
    let path = Path::new("coco/annotations/instances_val2017.json");
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = instances_json();
        f(&mut v);
        v.to_string().into_bytes()
    };
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (b"{\"images\": [".to_vec(), "line 1", "not valid JSON"),
        ((instances_json().to_string() + " x").into_bytes(), "line 1", "trailing"),
        (edit(&|v| drop(v.as_object_mut().unwrap().remove("categories"))), "", "missing field `categories`"),
        (
            edit(&|v| drop(v["annotations"][1].as_object_mut().unwrap().remove("bbox"))),
            "annotations[1]",
            "missing field `bbox`",
        ),
        (edit(&|v| v["annotations"][2]["category_id"] = 99.into()), "annotations[2].category_id", "99"),
        (edit(&|v| v["annotations"][0]["image_id"] = 11.into()), "annotations[0].image_id", "11"),
        (edit(&|v| v["annotations"][0]["bbox"] = serde_json::json!([1, 2, 3])), "annotations[0].bbox", "length"),
        (edit(&|v| v["annotations"][0]["bbox"] = serde_json::json!([1, 2, -3, 1])), "annotations[0].bbox", "w, h"),
        (edit(&|v| v["annotations"][0]["iscrowd"] = 2.into()), "annotations[0].iscrowd", "not 0 or 1"),
        (
            edit(&|v| v["annotations"][0]["segmentation"] = serde_json::json!([[1, 2, 3]])),
            "segmentation[0]",
            "3 values",
        ),
        (edit(&|v| v["annotations"][0]["segmentation"] = "x".into()), "annotations[0].segmentation", "polygons"),
        (edit(&|v| v["annotations"][4]["segmentation"]["counts"] = "9 2".into()), "segmentation.counts", "character"),
        (
            edit(&|v| v["annotations"][4]["segmentation"]["counts"] = serde_json::json!([9, 20])),
            "annotations[4].segmentation.counts",
            "more than",
        ),
        (
            edit(&|v| v["annotations"][4]["segmentation"]["size"] = serde_json::json!([5, 4])),
            "segmentation.size",
            "[5, 4]",
        ),
        (edit(&|v| v["images"][1]["id"] = 10.into()), "images[1].id", "duplicate"),
        (edit(&|v| v["categories"][2]["id"] = 1.into()), "categories[2].id", "duplicate"),
        (edit(&|v| v["images"][0]["file_name"] = "../a.jpg".into()), "images[0].file_name", "../a.jpg"),
        (edit(&|v| v["images"][0]["width"] = 0.into()), "images[0].width", "empty"),
        (edit(&|v| v["images"][0]["width"] = "8".into()), "images[0].width", "invalid type"),
    ];
    for (bytes, key, needle) in cases {
        let err = coco::parse_index(&bytes, path).unwrap_err();
        assert!(matches!(err, DatasetError::Malformed { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("instances_val2017.json"), "{msg}");
        assert!(msg.contains(key) && msg.contains(needle), "`{msg}` names {key} and {needle}");
    }
    // Through the loader: the real path, and a missing image file names the image.
    let (tmp, dir) = coco_tree();
    write(&dir.join("annotations/instances_val2017.json"), b"[1, 2]");
    let err = coco::load(&root_at(tmp.path()), "val2017", &CocoOptions::default()).unwrap_err();
    assert!(err.to_string().contains(&dir.join("annotations").display().to_string()), "{err}");
    write(&dir.join("annotations/instances_val2017.json"), instances_json().to_string().as_bytes());
    std::fs::remove_file(dir.join("val2017/c.jpg")).unwrap();
    let err = coco::load(&root_at(tmp.path()), "val2017", &CocoOptions::default()).unwrap_err();
    assert!(err.to_string().contains("c.jpg"), "{err}");
    // An image whose size is not the file's.
    jpeg(&dir.join("val2017/c.jpg"), 5, 4, [0, 0, 0]);
    let err = coco::load(&root_at(tmp.path()), "val2017", &CocoOptions::default()).unwrap_err();
    assert!(matches!(err, DatasetError::Layout { .. }) && err.to_string().contains("5x4"), "{err}");
}

#[test]
fn missing_coco_names_every_place_looked_in_and_how_to_get_it() {
    let tmp = tempfile::tempdir().unwrap();
    let err = coco::load(&root_at(tmp.path()), "val2017", &CocoOptions::default()).unwrap_err();
    let DatasetError::Missing { ref searched, .. } = err else { panic!("{err}") };
    for dir in [tmp.path().join("coco"), tmp.path().join("COCO"), tmp.path().to_path_buf()] {
        assert!(searched.contains(&dir), "{searched:?}");
    }
    let msg = err.to_string();
    for needle in ["coco (val2017)", "annotations/instances_val2017.json", "cocodataset.org", "--data-dir"] {
        assert!(msg.contains(needle), "`{msg}` mentions {needle}");
    }
    // The annotation file alone is not enough: the image folder is needed too.
    write(&tmp.path().join("COCO/annotations/instances_val2017.json"), b"{}");
    assert!(matches!(coco::locate(&root_at(tmp.path()), "val2017"), Err(DatasetError::Missing { .. })));
    std::fs::create_dir_all(tmp.path().join("COCO/val2017")).unwrap();
    assert_eq!(coco::locate(&root_at(tmp.path()), "val2017").unwrap(), tmp.path().join("COCO"));
    let err = coco::load(&root_at(tmp.path()), "../val", &CocoOptions::default()).unwrap_err();
    assert!(matches!(err, DatasetError::InvalidOptions { .. }), "{err}");
}

/// Every object's instance pixels have their centres inside its box, and carry its label.
fn assert_masks_inside_boxes(set: &SyntheticDetectionSet) {
    let s = set.image_size;
    for (k, sample) in set.samples.iter().enumerate() {
        assert_eq!((sample.pixels.len(), sample.mask.len(), sample.instances.len()), (3 * s * s, s * s, s * s));
        for (i, o) in sample.objects.iter().enumerate() {
            let b = o.bbox;
            let mut count = 0;
            for (p, &id) in sample.instances.iter().enumerate() {
                if id as usize != i + 1 {
                    continue;
                }
                count += 1;
                let (cx, cy) = ((p % s) as f64 + 0.5, (p / s) as f64 + 0.5);
                assert!(
                    cx >= b.x && cx <= b.x + b.w && cy >= b.y && cy <= b.y + b.h,
                    "sample {k} object {i}: pixel ({cx}, {cy}) outside {b:?}"
                );
                let want = if o.crowd { 255 } else { o.class as u32 + 1 };
                assert_eq!(sample.mask[p], want, "sample {k} object {i}");
            }
            assert!(count > 0 || o.area == 0, "sample {k} object {i} lost its mask");
        }
    }
}

#[test]
fn resizing_scales_boxes_and_masks_together() {
    let (tmp, _) = coco_tree();
    let set = coco::load(&root_at(tmp.path()), "val2017", &CocoOptions::default()).unwrap();
    let dense = dense::from_coco(&set, 16).unwrap();
    assert_eq!((dense.name.as_str(), dense.image_size, dense.num_classes), ("coco", 16, 3));
    assert_eq!((dense.ignore_label, dense.class_names.clone()), (Some(255), set.class_names.clone()));
    // 8×6 → 16×16: x × 2, y × 8/3.
    let a = &dense.samples[0];
    let dog = <[f64; 4]>::from(a.objects[0].bbox);
    for (got, want) in dog.iter().zip([2.0, 8.0 / 3.0, 6.0, 16.0 / 3.0]) {
        assert!((got - want).abs() < 1e-9, "{dog:?}");
    }
    assert_eq!((a.objects[0].area, a.objects[0].size), (32, 6.0), "area 6 · 2 · 8/3; size the larger side");
    assert!(a.objects[2].crowd && !a.objects[0].crowd);
    assert!(a.pixels[..256].iter().all(|&r| r.abs_diff(200) <= 10), "a solid image stays solid");
    // The tiny person of image 20 (0.64 × 0.8 pixels once scaled) is dropped, and the
    // instance ids of the others renumbered.
    let b = &dense.samples[1];
    assert_eq!(b.objects.iter().map(|o| o.class).collect::<Vec<_>>(), [0, 1]);
    assert!(b.instances.contains(&2) && b.instances.iter().all(|&i| i <= 2));
    assert_masks_inside_boxes(&dense);
    // The ground truth keeps the crowd flag; the fingerprint sees it.
    let truth = dense.ground_truth();
    assert!(truth.iter().any(|g| g.iscrowd) && truth.iter().any(|g| !g.iscrowd));
    let mut plain = dense.clone();
    plain.samples[0].objects[2].crowd = false;
    assert_ne!(plain.fingerprint(), dense.fingerprint());
    // The same through the streaming loader, the split and its size from the options.
    let opts = DenseOptions { image_size: 16, test_size: Some(2), ..DenseOptions::default() };
    let loaded = dense::load("coco", Split::Test, &root_at(tmp.path()), &opts).unwrap();
    assert_eq!(loaded.samples[..], dense.samples[..2]);
    assert!(dense::from_coco(&set, 8).unwrap_err().to_string().contains("image_size 8"));
}

/// `<tmp>/VOCdevkit/VOC2012` with two images for segmentation: `2008_000001` (20×10, a dog
/// on the left half with a void column between, a difficult person at the right) and
/// `2008_000002` (10×20, no object).
fn voc_tree() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("VOCdevkit/VOC2012");
    jpeg(&dir.join("JPEGImages/2008_000001.jpg"), 20, 10, [30, 30, 200]);
    jpeg(&dir.join("JPEGImages/2008_000002.jpg"), 10, 20, [30, 200, 30]);
    let object = |name: &str, corners: [u32; 4], difficult: u32| {
        format!(
            "<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{}</xmin><ymin>{}</ymin>\
             <xmax>{}</xmax><ymax>{}</ymax></bndbox></object>",
            corners[0], corners[1], corners[2], corners[3]
        )
    };
    let xml = |w: u32, h: u32, objects: &str| {
        format!("<annotation><size><width>{w}</width><height>{h}</height></size>{objects}</annotation>")
    };
    let objects = object("dog", [1, 1, 9, 10], 0) + &object("person", [12, 3, 20, 10], 1);
    write(&dir.join("Annotations/2008_000001.xml"), xml(20, 10, &objects).as_bytes());
    write(&dir.join("Annotations/2008_000002.xml"), xml(10, 20, "").as_bytes());
    let dog = 1 + voc::VOC_CLASSES.iter().position(|c| *c == "dog").unwrap() as u8;
    let person = 1 + voc::VOC_CLASSES.iter().position(|c| *c == "person").unwrap() as u8;
    let mask = image::GrayImage::from_fn(20, 10, |x, y| {
        image::Luma([match x {
            9 => 255,
            0..9 => dog,
            11.. if y >= 2 => person,
            _ => 0,
        }])
    });
    std::fs::create_dir_all(dir.join("SegmentationClass")).unwrap();
    mask.save_with_format(dir.join("SegmentationClass/2008_000001.png"), image::ImageFormat::Png).unwrap();
    image::GrayImage::new(10, 20)
        .save_with_format(dir.join("SegmentationClass/2008_000002.png"), image::ImageFormat::Png)
        .unwrap();
    write(&dir.join("ImageSets/Segmentation/train.txt"), b"2008_000001\n2008_000002\n");
    write(&dir.join("ImageSets/Segmentation/val.txt"), b"2008_000002\n");
    write(&dir.join("ImageSets/Main/train.txt"), b"2008_000001\n");
    tmp
}

#[test]
fn voc_converts_with_its_void_label_and_difficult_objects() {
    let tmp = voc_tree();
    let root = root_at(tmp.path());
    let opts = DenseOptions { image_size: 16, task: Some(VocTask::Segmentation), ..DenseOptions::default() };
    let set = dense::load("voc", Split::Train, &root, &opts).unwrap();
    assert_eq!((set.name.as_str(), set.len(), set.num_classes, set.ignore_label), ("voc", 2, 20, Some(255)));
    let s = &set.samples[0];
    // 20×10 → 16×16: column 9 (void) is the source of output columns whose centre maps into it.
    assert!(s.mask.contains(&255) && s.mask.contains(&0));
    let dog = s.objects.iter().find(|o| o.class == voc::VOC_CLASSES.iter().position(|c| *c == "dog").unwrap());
    let b = dog.unwrap().bbox;
    // VOC corners 1..9 × 1..10 → [0, 0, 9, 10] → × (0.8, 1.6).
    assert_eq!(<[f64; 4]>::from(b), [0.0, 0.0, 9.0 * 0.8, 16.0]);
    for (p, &l) in s.mask.iter().enumerate() {
        if l == 12 {
            assert!(((p % 16) as f64 + 0.5) <= b.x + b.w, "dog pixel {p} outside its box");
        }
    }
    assert!(s.objects.iter().any(|o| o.crowd), "the difficult person is kept, flagged");
    assert_eq!(s.instances, s.mask, "VOC has no instance ids here: the label map");
    assert!(set.samples[1].objects.is_empty() && set.samples[1].mask.iter().all(|&l| l == 0));
    // The same set from the eager loader.
    let vopts = voc::VocOptions { task: VocTask::Segmentation, ..voc::VocOptions::default() };
    let eager = dense::from_voc(&voc::load(&root, "train", &vopts).unwrap(), 16).unwrap();
    assert_eq!(eager, set);
    // A detection split has boxes but no label maps: every pixel ignored.
    let det = dense::load("voc", Split::Train, &root, &DenseOptions { image_size: 16, ..DenseOptions::default() });
    let det = det.unwrap();
    assert_eq!(det.len(), 1);
    assert!(det.samples[0].mask.iter().all(|&l| l == 255) && det.samples[0].objects.len() == 2);
}

#[test]
fn dense_options_are_checked_and_missing_data_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let root = root_at(tmp.path());
    let err = dense::check_available("voc", Split::Test, &root, &DenseOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DatasetError::Missing { .. }), "{msg}");
    assert!(msg.contains("VOCdevkit/VOC2012") && msg.contains("ImageSets/Main/val.txt"), "{msg}");
    let seg = DenseOptions { task: Some(VocTask::Segmentation), year: Some("2007".into()), ..DenseOptions::default() };
    let msg = dense::check_available("voc", Split::Train, &root, &seg).unwrap_err().to_string();
    assert!(msg.contains("VOC2007") && msg.contains("ImageSets/Segmentation/train.txt"), "{msg}");
    let msg = dense::load("coco", Split::Train, &root, &DenseOptions::default()).unwrap_err().to_string();
    assert!(msg.contains("instances_train2017.json"), "{msg}");
    let custom = DenseOptions { test_split: Some("minival".into()), ..DenseOptions::default() };
    let msg = dense::check_available("coco", Split::Test, &root, &custom).unwrap_err().to_string();
    assert!(msg.contains("instances_minival.json"), "{msg}");

    for (name, opts, key) in [
        ("voc", DenseOptions { image_size: 8, ..DenseOptions::default() }, "image_size"),
        ("coco", DenseOptions { year: Some("2012".into()), ..DenseOptions::default() }, "year"),
        ("coco", DenseOptions { task: Some(VocTask::Segmentation), ..DenseOptions::default() }, "task"),
        ("voc", DenseOptions { year: Some("twelve".into()), ..DenseOptions::default() }, "year"),
        ("voc", DenseOptions { train_size: Some(0), ..DenseOptions::default() }, "train_size"),
        ("coco", DenseOptions { test_split: Some("../x".into()), ..DenseOptions::default() }, "test_split"),
        ("mnist", DenseOptions::default(), "voc, coco"),
    ] {
        let err = opts.validate(name).unwrap_err().to_string();
        assert!(err.contains(key), "{name}: `{err}` names {key}");
    }
    let parsed: DenseOptions = toml::from_str("year = 2007\ntask = \"segmentation\"\ntest_size = 5").unwrap();
    assert_eq!(parsed.year.as_deref(), Some("2007"), "a TOML integer year");
    assert_eq!((parsed.image_size, parsed.task, parsed.test_size), (128, Some(VocTask::Segmentation), Some(5)));
    assert_eq!(parsed.split_name("voc", Split::Test), "val");
    assert_eq!(DenseOptions::default().split_name("coco", Split::Train), "train2017");
    assert!(toml::from_str::<DenseOptions>("size = 64").is_err(), "unknown keys are errors");
}
