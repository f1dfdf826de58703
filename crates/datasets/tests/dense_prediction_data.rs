//! Data for dense prediction: the `synthetic-detection` generator and the PASCAL VOC loader.
//!
//! The VOC tests write a tiny `VOCdevkit/VOC2012` tree in the real formats (XML annotations,
//! palette PNG masks encoded here byte by byte, grayscale and RGB PNGs and JPEGs written by the
//! `image` crate, split files) and check what the loader reads back.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use datasets::detection_metrics::{BoundingBox, ConfusionMatrix, Detection, coco_eval, voc_ap};
use datasets::synthetic_detection::{
    self, SHAPE_NAMES, SyntheticDetectionOptions, SyntheticDetectionSet, generate, generate_sample,
};
use datasets::voc::{self, IGNORE_INDEX, VOC_CLASSES, VocOptions, VocTask};
use datasets::{DataRoot, DatasetError, Split};

// ---------------------------------------------------------------------------------------------
// synthetic-detection

fn small(seed: u64) -> SyntheticDetectionOptions {
    SyntheticDetectionOptions { train_size: 40, test_size: 20, seed, ..SyntheticDetectionOptions::default() }
}

/// The tight box and pixel count of every instance id of an instance map.
fn boxes_from_instances(instances: &[u32], size: usize) -> Vec<(BoundingBox, usize)> {
    let n = instances.iter().copied().max().unwrap_or(0) as usize;
    let mut ext = vec![(usize::MAX, usize::MAX, 0, 0, 0usize); n];
    for (p, &k) in instances.iter().enumerate() {
        if k > 0 {
            let (x, y) = (p % size, p / size);
            let e = &mut ext[k as usize - 1];
            *e = (e.0.min(x), e.1.min(y), e.2.max(x), e.3.max(y), e.4 + 1);
        }
    }
    ext.iter()
        .map(|&(x0, y0, x1, y1, c)| {
            (BoundingBox::new(x0 as f64, y0 as f64, (x1 - x0 + 1) as f64, (y1 - y0 + 1) as f64), c)
        })
        .collect()
}

#[test]
fn synthetic_is_deterministic_and_seed_dependent() {
    let a = generate(&small(0), Split::Train).unwrap();
    let b = generate(&small(0), Split::Train).unwrap();
    assert_eq!(a, b, "same options, identical samples");
    assert_eq!(a.fingerprint(), b.fingerprint());
    let c = generate(&small(1), Split::Train).unwrap();
    assert_ne!(a.fingerprint(), c.fingerprint());
    assert!(a.samples.iter().zip(&c.samples).all(|(x, y)| x.pixels != y.pixels), "seeds differ");
    let test = generate(&small(0), Split::Test).unwrap();
    assert_eq!(test.len(), 20);
    assert!(test.samples.iter().all(|t| a.samples.iter().all(|s| s.pixels != t.pixels)), "splits differ");
    assert_eq!(generate_sample(&small(0), Split::Train, 7).unwrap(), a.samples[7]);
    assert_eq!(generate_sample(&small(0), Split::Test, 3).unwrap(), test.samples[3]);
}

#[test]
fn synthetic_boxes_are_tight_and_areas_count_visible_pixels() {
    let set = generate(&SyntheticDetectionOptions { max_objects: 8, ..small(2) }, Split::Train).unwrap();
    let s = set.image_size;
    let mut occluded = 0;
    for (i, sample) in set.samples.iter().enumerate() {
        let recomputed = boxes_from_instances(&sample.instances, s);
        assert_eq!(recomputed.len(), sample.objects.len(), "sample {i}: one instance id per object");
        for (o, (bbox, count)) in sample.objects.iter().zip(&recomputed) {
            assert_eq!(o.bbox, *bbox, "sample {i}: the box is tight around the visible pixels");
            assert_eq!(o.area, *count, "sample {i}: area = visible pixel count");
            assert!(o.area > 0, "fully occluded objects are dropped");
            if o.bbox.w.max(o.bbox.h) + 2.0 < f64::from(o.size) {
                occluded += 1;
            }
        }
        for (p, (&m, &k)) in sample.mask.iter().zip(&sample.instances).enumerate() {
            let expect = if k == 0 { 0 } else { sample.objects[k as usize - 1].class as u32 + 1 };
            assert_eq!(m, expect, "sample {i} pixel {p}: mask label = 1 + class of the visible object");
        }
        let labelled = sample.mask.iter().filter(|&&m| m != 0).count();
        assert_eq!(sample.objects.iter().map(|o| o.area).sum::<usize>(), labelled, "no pixel counted twice");
        let in_mask: BTreeSet<u32> = sample.mask.iter().copied().filter(|&m| m != 0).collect();
        let of_objects: BTreeSet<u32> = sample.objects.iter().map(|o| o.class as u32 + 1).collect();
        assert_eq!(in_mask, of_objects, "sample {i}: every object's class is in the mask, and only those");
    }
    assert!(occluded > 0, "some objects are partly hidden by later ones");
}

#[test]
fn synthetic_follows_the_config() {
    let opts = SyntheticDetectionOptions {
        image_size: 48,
        classes: 8,
        max_objects: 6,
        min_scale: 0.2,
        max_scale: 0.6,
        train_size: 60,
        test_size: 1,
        seed: 9,
    };
    let set = generate(&opts, Split::Train).unwrap();
    assert_eq!(set.len(), 60);
    assert_eq!(set.image_shape(), [3, 48, 48]);
    assert_eq!(set.num_classes, 8);
    assert_eq!(set.num_labels(), 9);
    assert_eq!(set.class_names, SHAPE_NAMES);
    let mut classes = BTreeSet::new();
    let (mut smallest, mut largest) = (f32::MAX, 0f32);
    let mut counts = BTreeSet::new();
    for sample in &set.samples {
        assert_eq!(sample.pixels.len(), 3 * 48 * 48);
        assert_eq!(sample.mask.len(), 48 * 48);
        assert_eq!(sample.instances.len(), 48 * 48);
        assert!((1..=6).contains(&sample.objects.len()), "{}", sample.objects.len());
        counts.insert(sample.objects.len());
        let (lo, hi) = sample.pixels.iter().fold((255u8, 0u8), |(lo, hi), &p| (lo.min(p), hi.max(p)));
        assert!(hi - lo > 60, "the image has contrast");
        for o in &sample.objects {
            assert!(o.class < 8);
            classes.insert(o.class);
            assert!(o.size >= 0.2 * 48.0 - 1e-3 && o.size <= 0.6 * 48.0 + 1e-3, "size {}", o.size);
            smallest = smallest.min(o.size);
            largest = largest.max(o.size);
            let b = o.bbox;
            assert!(b.x >= 0.0 && b.y >= 0.0 && b.x + b.w <= 48.0 && b.y + b.h <= 48.0, "{b:?} inside the image");
            assert!(b.w <= f64::from(o.size).ceil() + 1.0 && b.h <= f64::from(o.size).ceil() + 1.0, "{b:?}");
        }
    }
    assert_eq!(classes.len(), 8, "every shape class occurs");
    assert!(counts.len() >= 4, "object counts vary: {counts:?}");
    assert!(smallest < 13.0 && largest > 22.0, "a spread of sizes: {smallest}..{largest}");

    // One object of one class alone: the box is the whole shape.
    let one = SyntheticDetectionOptions { classes: 1, max_objects: 1, ..small(4) };
    let set = generate(&one, Split::Test).unwrap();
    for sample in &set.samples {
        let [o] = sample.objects.as_slice() else { panic!("exactly one object") };
        assert_eq!(o.class, 0);
        assert!((o.bbox.w - f64::from(o.size)).abs() <= 1.0, "square side {} vs size {}", o.bbox.w, o.size);
        assert_eq!(o.area as f64, o.bbox.area(), "a filled square fills its box");
    }
}

#[test]
fn synthetic_ground_truth_feeds_the_metrics() {
    let set: SyntheticDetectionSet = generate(&small(5), Split::Test).unwrap();
    let gt = set.ground_truth();
    assert_eq!(gt.len(), set.samples.iter().map(|s| s.objects.len()).sum::<usize>());
    for g in &gt {
        let o = set.samples[g.image as usize].objects.iter().find(|o| o.bbox == g.bbox).unwrap();
        assert_eq!(g.category, o.class as u32 + 1);
        assert_eq!(g.area, o.area as f64);
        assert!(!g.iscrowd);
    }
    let perfect: Vec<Detection> =
        gt.iter().map(|g| Detection { image: g.image, category: g.category, bbox: g.bbox, score: 1.0 }).collect();
    assert_eq!(voc_ap(&gt, &perfect).unwrap().map, Some(1.0));
    assert!((coco_eval(&gt, &perfect).unwrap().ap() - 1.0).abs() < 1e-12);
    let mut cm = ConfusionMatrix::new(set.num_labels(), None);
    for s in &set.samples {
        cm.add(&s.mask, &s.mask).unwrap();
    }
    assert_eq!(cm.scores().pixel_accuracy, Some(1.0));
}

#[test]
fn synthetic_bad_options_name_the_key() {
    let d = small(0);
    let cases: Vec<(SyntheticDetectionOptions, &str)> = vec![
        (SyntheticDetectionOptions { image_size: 8, ..d.clone() }, "image_size"),
        (SyntheticDetectionOptions { image_size: 5000, ..d.clone() }, "image_size"),
        (SyntheticDetectionOptions { classes: 0, ..d.clone() }, "classes"),
        (SyntheticDetectionOptions { classes: 9, ..d.clone() }, "classes"),
        (SyntheticDetectionOptions { max_objects: 0, ..d.clone() }, "max_objects"),
        (SyntheticDetectionOptions { max_objects: 65, ..d.clone() }, "max_objects"),
        (SyntheticDetectionOptions { min_scale: 0.0, ..d.clone() }, "min_scale"),
        (SyntheticDetectionOptions { min_scale: f32::NAN, ..d.clone() }, "min_scale"),
        (SyntheticDetectionOptions { max_scale: 1.5, ..d.clone() }, "max_scale"),
        (SyntheticDetectionOptions { min_scale: 0.6, max_scale: 0.4, ..d.clone() }, "min_scale"),
        (SyntheticDetectionOptions { min_scale: 0.05, ..d.clone() }, "min_scale"),
        (SyntheticDetectionOptions { train_size: usize::MAX / 2, ..d.clone() }, "train_size"),
        (SyntheticDetectionOptions { test_size: 1 << 40, ..d.clone() }, "test_size"),
    ];
    for (opts, key) in cases {
        let err = generate(&opts, Split::Train).unwrap_err();
        assert!(matches!(err, DatasetError::InvalidOptions { .. }), "{err}");
        assert!(err.to_string().contains(key), "`{err}` names {key}");
        assert!(err.to_string().contains(synthetic_detection::NAME));
    }
    assert!(generate(&SyntheticDetectionOptions { train_size: 0, ..d.clone() }, Split::Train).unwrap().is_empty());

    // serde: defaults for missing keys, unknown keys rejected.
    let parsed: SyntheticDetectionOptions = toml::from_str("image_size = 32\nseed = 3").unwrap();
    assert_eq!(parsed, SyntheticDetectionOptions { image_size: 32, seed: 3, ..SyntheticDetectionOptions::default() });
    let err = toml::from_str::<SyntheticDetectionOptions>("image_sise = 32").unwrap_err();
    assert!(err.to_string().contains("image_sise"), "{err}");
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(serde_json::from_str::<SyntheticDetectionOptions>(&json).unwrap(), d);
}

// ---------------------------------------------------------------------------------------------
// PASCAL VOC: writing a tree in the real formats

/// A PNG chunk: length, type, data, CRC-32 of type and data.
fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = ((p - i16::from(a)).abs(), (p - i16::from(b)).abs(), (p - i16::from(c)).abs());
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// A palette PNG (colour type 3) of bit depth `depth` holding `labels` (row-major) as indices,
/// with the VOC colour map as palette. Row `y` uses filter type `y % 5`, so every PNG filter
/// is exercised.
fn palette_png(width: usize, height: usize, labels: &[u8], depth: u8) -> Vec<u8> {
    let per_byte = 8 / usize::from(depth);
    let stride = width.div_ceil(per_byte);
    let mut rows = vec![vec![0u8; stride]; height];
    for (y, row) in rows.iter_mut().enumerate() {
        for x in 0..width {
            let shift = 8 - usize::from(depth) * (x % per_byte + 1);
            row[x / per_byte] |= labels[y * width + x] << shift;
        }
    }
    let mut raw = Vec::new();
    for y in 0..height {
        let filter = (y % 5) as u8;
        raw.push(filter);
        let zero = vec![0u8; stride];
        let prev = if y > 0 { &rows[y - 1] } else { &zero };
        let cur = &rows[y];
        for i in 0..stride {
            let a = if i > 0 { cur[i - 1] } else { 0 };
            let b = prev[i];
            let c = if i > 0 { prev[i - 1] } else { 0 };
            let pred = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                _ => paeth(a, b, c),
            };
            raw.push(cur[i].wrapping_sub(pred));
        }
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).unwrap();
    let idat = z.finish().unwrap();
    let mut png = vec![137, 80, 78, 71, 13, 10, 26, 10];
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(width as u32).to_be_bytes());
    ihdr.extend_from_slice(&(height as u32).to_be_bytes());
    ihdr.extend_from_slice(&[depth, 3, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    let palette: Vec<u8> = voc::voc_colormap()[..1 << depth].iter().flatten().copied().collect();
    chunk(&mut png, b"PLTE", &palette);
    // Split the image data over two IDAT chunks, as encoders may.
    let half = idat.len() / 2;
    chunk(&mut png, b"IDAT", &idat[..half]);
    chunk(&mut png, b"IDAT", &idat[half..]);
    chunk(&mut png, b"IEND", &[]);
    png
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

struct Obj<'a> {
    name: &'a str,
    corners: [&'a str; 4],
    difficult: Option<&'a str>,
    truncated: Option<&'a str>,
}

fn annotation_xml(file: &str, width: usize, height: usize, objects: &[Obj]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\"?>\n<annotation>\n\t<folder>VOC2012</folder>\n\t<filename>{file}</filename>\n\
         \t<source><database>The VOC2008 Database</database></source>\n\
         \t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n\t\t<depth>3</depth>\n\t</size>\n\
         \t<segmented>1</segmented>\n"
    );
    for o in objects {
        xml.push_str(&format!("\t<object>\n\t\t<name>{}</name>\n\t\t<pose>Unspecified</pose>\n", o.name));
        if let Some(t) = o.truncated {
            xml.push_str(&format!("\t\t<truncated>{t}</truncated>\n"));
        }
        if let Some(d) = o.difficult {
            xml.push_str(&format!("\t\t<difficult>{d}</difficult>\n"));
        }
        let [x0, y0, x1, y1] = o.corners;
        xml.push_str(&format!(
            "\t\t<bndbox>\n\t\t\t<xmin>{x0}</xmin>\n\t\t\t<ymin>{y0}</ymin>\n\t\t\t<xmax>{x1}</xmax>\n\t\t\t<ymax>{y1}</ymax>\n\t\t</bndbox>\n"
        ));
        if o.name == "person" {
            // Person-layout parts have their own name and box; they are not objects.
            xml.push_str("\t\t<part>\n\t\t\t<name>head</name>\n\t\t\t<bndbox><xmin>6</xmin><ymin>6</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>\n\t\t</part>\n");
        }
        xml.push_str("\t</object>\n");
    }
    xml.push_str("</annotation>\n");
    xml
}

/// Labels of image `2008_000001` (20×16): background, a dog (label 12) rectangle at columns
/// 0..10, rows 1..12, a person (label 15) at columns 12..20, rows 4..16, a void (255) line
/// at column 10.
fn mask_1() -> Vec<u8> {
    let (w, h) = (20, 16);
    let mut m = vec![0u8; w * h];
    for y in 0..h {
        for x in 0..w {
            m[y * w + x] = if x == 10 {
                255
            } else if x < 10 && (1..12).contains(&y) {
                12
            } else if x >= 12 && y >= 4 {
                15
            } else {
                0
            };
        }
    }
    m
}

/// `<tmp>/VOCdevkit/VOC2012` with three images:
/// `2008_000001` (20×16, dog + difficult person, palette mask), `2008_000002` (12×10, a
/// tvmonitor with fractional corners and no flags, grayscale mask), `2008_000003` (8×8, no
/// object, RGB-coloured mask).
fn voc_tree() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("VOCdevkit/VOC2012");
    jpeg(&dir.join("JPEGImages/2008_000001.jpg"), 20, 16, [200, 30, 30]);
    jpeg(&dir.join("JPEGImages/2008_000002.jpg"), 12, 10, [30, 200, 30]);
    jpeg(&dir.join("JPEGImages/2008_000003.jpg"), 8, 8, [30, 30, 200]);
    let a1 = annotation_xml(
        "2008_000001.jpg",
        20,
        16,
        &[
            Obj { name: "dog", corners: ["1", "2", "10", "12"], difficult: Some("0"), truncated: Some("1") },
            Obj { name: "person", corners: ["13", "5", "20", "16"], difficult: Some("1"), truncated: Some("0") },
        ],
    );
    write(&dir.join("Annotations/2008_000001.xml"), a1.as_bytes());
    let a2 = annotation_xml(
        "2008_000002.jpg",
        12,
        10,
        &[Obj { name: " tvmonitor ", corners: ["3.5", "2", "9.5", "8"], difficult: None, truncated: None }],
    );
    write(&dir.join("Annotations/2008_000002.xml"), a2.as_bytes());
    write(&dir.join("Annotations/2008_000003.xml"), annotation_xml("2008_000003.jpg", 8, 8, &[]).as_bytes());
    write(&dir.join("SegmentationClass/2008_000001.png"), &palette_png(20, 16, &mask_1(), 8));
    let gray = image::GrayImage::from_fn(12, 10, |x, y| {
        image::Luma([if x < 6 {
            20
        } else if y == 0 {
            255
        } else {
            0
        }])
    });
    gray.save_with_format(dir.join("SegmentationClass/2008_000002.png"), image::ImageFormat::Png).unwrap();
    let cmap = voc::voc_colormap();
    let rgb = image::RgbImage::from_fn(8, 8, |x, _| image::Rgb(cmap[if x < 4 { 0 } else { 7 }]));
    rgb.save_with_format(dir.join("SegmentationClass/2008_000003.png"), image::ImageFormat::Png).unwrap();
    write(&dir.join("ImageSets/Main/train.txt"), b"2008_000001\n\n2008_000002  \n");
    write(&dir.join("ImageSets/Main/val.txt"), b"2008_000003\n");
    write(&dir.join("ImageSets/Main/trainval.txt"), b"2008_000001\n2008_000002\n2008_000003\n");
    write(&dir.join("ImageSets/Main/dog_train.txt"), b"2008_000001  1\n2008_000002 -1\n");
    write(&dir.join("ImageSets/Segmentation/train.txt"), b"2008_000001\n2008_000003\n");
    write(&dir.join("ImageSets/Segmentation/val.txt"), b"2008_000002\n");
    (tmp, dir)
}

fn root_at(path: &Path) -> DataRoot {
    DataRoot { explicit: Some(path.to_path_buf()), env: None, project: path.join("no-such-project-dir") }
}

// ---------------------------------------------------------------------------------------------
// PASCAL VOC: tests

#[test]
fn voc_detection_boxes_classes_and_flags() {
    let (tmp, dir) = voc_tree();
    let set = voc::load(&root_at(tmp.path()), "train", &VocOptions::default()).unwrap();
    assert_eq!(set.name, "voc");
    assert_eq!((set.year.as_str(), set.split.as_str(), set.task), ("2012", "train", VocTask::Detection));
    assert_eq!(set.class_names, VOC_CLASSES);
    assert_eq!(set.num_labels(), 21);
    let ids: Vec<&str> = set.samples.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["2008_000001", "2008_000002"]);

    let s = &set.samples[0];
    assert_eq!((s.width, s.height, s.pixels.len()), (20, 16, 3 * 20 * 16));
    let mean = |c: usize| s.pixels[c * 320..(c + 1) * 320].iter().map(|&p| f64::from(p)).sum::<f64>() / 320.0;
    assert!(mean(0) > 180.0 && mean(1) < 50.0 && mean(2) < 50.0, "planar RGB of a red JPEG");
    assert!(s.mask.is_none());
    let a = s.annotation.as_ref().unwrap();
    assert_eq!((a.filename.as_str(), a.width, a.height, a.segmented), ("2008_000001.jpg", 20, 16, true));
    assert_eq!(a.objects.len(), 2, "the person's <part> is not an object");
    let (dog, person) = (&a.objects[0], &a.objects[1]);
    assert_eq!(VOC_CLASSES[dog.class], "dog");
    assert_eq!(dog.corners, [1.0, 2.0, 10.0, 12.0]);
    assert_eq!(dog.bbox, BoundingBox::new(0.0, 1.0, 10.0, 11.0), "1-based inclusive corners -> COCO xywh");
    assert!(dog.truncated && !dog.difficult);
    assert_eq!(VOC_CLASSES[person.class], "person");
    assert_eq!(person.bbox, BoundingBox::new(12.0, 4.0, 8.0, 12.0));
    assert!(person.difficult && !person.truncated);

    let tv = &set.samples[1].annotation.as_ref().unwrap().objects[0];
    assert_eq!(VOC_CLASSES[tv.class], "tvmonitor", "names are trimmed");
    assert_eq!(tv.bbox, BoundingBox::new(2.5, 1.0, 7.0, 7.0), "fractional corners use the same formula");
    assert!(!tv.difficult && !tv.truncated, "absent flags are false");

    let gt = set.ground_truth();
    assert_eq!(gt.len(), 3);
    assert_eq!((gt[0].image, gt[0].category, gt[0].iscrowd, gt[0].area), (0, 12, false, 110.0));
    assert_eq!((gt[1].image, gt[1].category, gt[1].iscrowd, gt[1].area), (0, 15, true, 96.0));
    assert_eq!((gt[2].image, gt[2].category), (1, 20));
    // The box convention agrees with the devkit: a detection equal to the box has IoU 1, and a
    // difficult object is neither missed nor a false positive.
    let dets = [Detection { image: 0, category: 12, bbox: BoundingBox::new(0.0, 1.0, 10.0, 11.0), score: 0.9 }];
    let summary = voc_ap(&gt, &dets).unwrap();
    assert_eq!(summary.category_ap.get(&12), Some(&1.0));
    assert!(!summary.category_ap.contains_key(&15), "a category with only difficult objects is not scored");

    // Direct directory, other split files, subsets, labels only.
    let all = voc::load_dir(&dir, "trainval", &VocOptions::default()).unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.samples[2].annotation.as_ref().unwrap().objects.is_empty());
    let per_class = voc::load_dir(&dir, "dog_train", &VocOptions::default()).unwrap();
    assert_eq!(per_class.len(), 2, "per-class files: the first token of each line is the id");
    let first = voc::load_dir(&dir, "trainval", &VocOptions { max_images: Some(1), ..VocOptions::default() }).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first.samples[0], all.samples[0]);
    let labels_only =
        voc::load_dir(&dir, "train", &VocOptions { decode_images: false, ..VocOptions::default() }).unwrap();
    assert!(labels_only.samples.iter().all(|s| s.pixels.is_empty()));
    assert_eq!((labels_only.samples[1].width, labels_only.samples[1].height), (12, 10));
    assert_eq!(labels_only.ground_truth(), gt);
    assert_eq!(voc::split_name(Split::Train), "train");
    assert_eq!(voc::split_name(Split::Test), "val");
    let val = voc::load(&root_at(tmp.path()), voc::split_name(Split::Test), &VocOptions::default()).unwrap();
    assert_eq!(val.samples[0].id, "2008_000003");
}

#[test]
fn voc_segmentation_masks_and_void() {
    let (tmp, dir) = voc_tree();
    let opts = VocOptions { task: VocTask::Segmentation, ..VocOptions::default() };
    let set = voc::load(&root_at(tmp.path()), "train", &opts).unwrap();
    let ids: Vec<&str> = set.samples.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["2008_000001", "2008_000003"], "ImageSets/Segmentation, not Main");
    let m1 = set.samples[0].mask.as_ref().unwrap();
    let expect: Vec<u32> = mask_1().into_iter().map(u32::from).collect();
    assert_eq!(*m1, expect, "palette indices, whatever the palette colours");
    assert_eq!(m1[10], IGNORE_INDEX, "255 is the void label");
    assert_eq!(m1[2 * 20 + 3], 1 + VOC_CLASSES.iter().position(|c| *c == "dog").unwrap() as u32);
    assert!(set.samples[0].annotation.is_some(), "the XML is read when present");
    let m3 = set.samples[1].mask.as_ref().unwrap();
    assert_eq!(m3[..8], [0, 0, 0, 0, 7, 7, 7, 7], "RGB masks map back through the VOC colour map");

    let val = voc::load_dir(&dir, "val", &opts).unwrap();
    let m2 = val.samples[0].mask.as_ref().unwrap();
    assert_eq!((m2[0], m2[6], m2[12 + 6]), (20, 255, 0), "grayscale masks: the values are the labels");

    // Scoring a mask against itself with the VOC ignore index.
    let mut cm = ConfusionMatrix::new(set.num_labels(), Some(IGNORE_INDEX));
    cm.add(m1, m1).unwrap();
    assert_eq!(cm.pixels(), (20 * 16 - 16) as u64, "void pixels are not counted");
    assert_eq!(cm.scores().pixel_accuracy, Some(1.0));

    // A 4-bit palette PNG reads the same.
    let small: Vec<u8> = (0..7 * 3).map(|i| (i % 16) as u8).collect();
    let p = tmp.path().join("four_bit.png");
    write(&p, &palette_png(7, 3, &small, 4));
    let map = voc::read_mask(&p).unwrap();
    assert_eq!((map.width, map.height), (7, 3));
    assert_eq!(map.labels, small.iter().map(|&l| u32::from(l)).collect::<Vec<_>>());
}

#[test]
fn voc_bad_masks_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad_label.png");
    write(&p, &palette_png(4, 2, &[0, 1, 2, 30, 0, 0, 0, 0], 8));
    let err = voc::read_mask(&p).unwrap_err();
    assert!(matches!(err, DatasetError::Malformed { ref location, .. } if location == "pixel (3, 0)"), "{err}");
    let mut bytes = palette_png(4, 2, &[0; 8], 8);
    let n = bytes.len();
    bytes[n - 20] ^= 0xff;
    write(&p, &bytes);
    assert!(matches!(voc::read_mask(&p), Err(DatasetError::Corrupt { .. })));
    write(&p, &bytes[..n / 2]);
    assert!(matches!(voc::read_mask(&p), Err(DatasetError::Corrupt { .. })));
    write(&p, b"not a png");
    assert!(matches!(voc::read_mask(&p), Err(DatasetError::Corrupt { .. })));
    let rgb = image::RgbImage::from_pixel(2, 2, image::Rgb([1, 2, 3]));
    rgb.save_with_format(&p, image::ImageFormat::Png).unwrap();
    let err = voc::read_mask(&p).unwrap_err();
    assert!(err.to_string().contains("colour map"), "{err}");
}

#[test]
fn voc_bad_annotations_are_errors() {
    let path = Path::new("Annotations/x.xml");
    let obj = |name, corners, difficult| Obj { name, corners, difficult, truncated: None };
    let cases = [
        (annotation_xml("x", 8, 8, &[obj("unicorn", ["1", "1", "2", "2"], None)]), "unknown class `unicorn`"),
        (annotation_xml("x", 8, 8, &[obj("cat", ["5", "1", "2", "2"], None)]), "not ordered"),
        (annotation_xml("x", 8, 8, &[obj("cat", ["1", "1", "two", "2"], None)]), "<xmax>"),
        (annotation_xml("x", 8, 8, &[obj("cat", ["1", "1", "2", "2"], Some("yes"))]), "<difficult>"),
        ("<annotation><object>".to_string(), "not well-formed XML"),
        ("<root/>".to_string(), "<annotation>"),
        ("<annotation><filename>a</filename></annotation>".to_string(), "<size>"),
    ];
    for (xml, needle) in cases {
        let err = voc::parse_annotation_str(&xml, path).unwrap_err();
        assert!(matches!(err, DatasetError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains(needle), "`{err}` mentions {needle}");
        assert!(err.to_string().contains("x.xml"), "{err}");
    }
}

#[test]
fn voc_missing_data_and_bad_options() {
    let tmp = tempfile::tempdir().unwrap();
    let err = voc::load(&root_at(tmp.path()), "train", &VocOptions::default()).unwrap_err();
    let DatasetError::Missing { ref searched, .. } = err else { panic!("{err}") };
    assert!(searched.contains(&tmp.path().join("VOCdevkit/VOC2012")), "{searched:?}");
    let msg = err.to_string();
    for needle in ["VOCdevkit/VOC2012", "ImageSets/Main/train.txt", "JPEGImages/<id>.jpg", "Annotations/<id>.xml"] {
        assert!(msg.contains(needle), "`{msg}` mentions {needle}");
    }
    let seg = VocOptions { task: VocTask::Segmentation, year: "2007".into(), ..VocOptions::default() };
    let msg = voc::load(&root_at(tmp.path()), "val", &seg).unwrap_err().to_string();
    assert!(msg.contains("VOCdevkit/VOC2007") && msg.contains("SegmentationClass/<id>.png"), "{msg}");
    let nowhere = tmp.path().join("nowhere");
    let err = voc::load_dir(&nowhere, "train", &VocOptions::default()).unwrap_err();
    assert!(matches!(err, DatasetError::Missing { .. }));
    assert!(err.to_string().contains(&nowhere.display().to_string()), "{err}");

    // A tree without the asked split names the split file.
    let (tree, dir) = voc_tree();
    let err = voc::load_dir(&dir, "test", &VocOptions::default()).unwrap_err();
    assert!(err.to_string().contains("ImageSets/Main/test.txt"), "{err}");
    // An id whose image is missing names the file.
    write(&dir.join("ImageSets/Main/broken.txt"), b"2008_000009\n");
    let err = voc::load_dir(&dir, "broken", &VocOptions::default()).unwrap_err();
    assert!(err.to_string().contains("2008_000009.xml"), "{err}");

    for (opts, split, key) in [
        (VocOptions { year: "20x2".into(), ..VocOptions::default() }, "train", "year"),
        (VocOptions { max_images: Some(0), ..VocOptions::default() }, "train", "max_images"),
        (VocOptions::default(), "../train", "split"),
        (VocOptions::default(), "", "split"),
    ] {
        let err = voc::load(&root_at(tree.path()), split, &opts).unwrap_err();
        assert!(matches!(err, DatasetError::InvalidOptions { .. }), "{err}");
        assert!(err.to_string().contains(key), "`{err}` names {key}");
    }
    let parsed: VocOptions = toml::from_str("task = \"segmentation\"\nmax_images = 5").unwrap();
    assert_eq!(parsed, VocOptions { task: VocTask::Segmentation, max_images: Some(5), ..VocOptions::default() });
    assert!(toml::from_str::<VocOptions>("years = \"2007\"").is_err());
}
