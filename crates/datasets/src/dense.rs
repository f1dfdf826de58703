//! Real photographs with dense labels, PASCAL VOC ([`crate::voc`]) and MS COCO
//! ([`crate::coco`]), in the dense sample form of `synthetic-detection`
//! ([`SyntheticDetectionSet`]): square images of one size with their objects (class, box) and
//! per-pixel labels, what the detection and segmentation networks train and are scored on.
//!
//! # Resizing
//! Every image is resized as a whole to `S × S` ([`DenseOptions::image_size`], default
//! [`DEFAULT_IMAGE_SIZE`] = 128): no crop and no letterbox, so the aspect ratio is not kept
//! (as YOLOv2 (Redmon & Farhadi 2017) resizes its inputs).
//! * pixels: bilinear, the `image` crate's triangle filter, which widens its support when
//!   shrinking (an antialiased bilinear, like PIL's and torchvision's);
//! * label maps: nearest, output pixel `(x, y)` takes the source pixel under its centre,
//!   `(⌊(x + 0.5) · w / S⌋, ⌊(y + 0.5) · h / S⌋)`;
//! * boxes: `x` and `w` scaled by `S / w_image`, `y` and `h` by `S / h_image`, clipped to the
//!   image; an object whose scaled box is less than 1 pixel wide or high is dropped;
//! * areas: scaled by both factors and rounded (COCO's area ranges (small, medium, large)
//!   therefore refer to the resized image).
//!
//! The centre sampling keeps masks and boxes consistent: a label-map pixel of an object whose
//! source pixels lie in its box has its centre inside the scaled box.
//!
//! # Labels
//! * `mask`: `0` background, `1 + class`, and the ignore label 255
//!   ([`SyntheticDetectionSet::ignore_label`] `= Some(255)`): VOC's void pixels, COCO's crowd
//!   regions. A VOC *detection* split has no label maps: every pixel of its masks is 255
//!   (nothing to score; a segmentation network needs `task = segmentation`).
//! * `instances`: COCO's instance map (`1 + i` for a pixel of `objects[i]`, renumbered after
//!   dropping objects, `0` elsewhere). VOC's instance masks (`SegmentationObject/`) are not
//!   read: for VOC, `instances` is a copy of `mask`.
//! * objects: [`ShapeObject`] with `crowd` = VOC `difficult` or COCO `iscrowd` (ignored by
//!   the metrics, not a training target), `size` = the larger side of the scaled box.
//!
//! # Splits and limits
//! [`DenseOptions::train_split`] and [`DenseOptions::test_split`] name the split files (VOC,
//! default `train` and `val`) or folders (COCO, default `train2017` and `val2017`);
//! `train_size` and `test_size` keep the first images of a split. Images are loaded, resized
//! and dropped one at a time on all cores, so only the resized split is held in memory
//! (11 bytes a pixel: at S = 128 about 180 kB an image). A split of more than
//! [`MAX_SPLIT_PIXELS`] pixels at size S is refused: limit it with `train_size`/`test_size`.

use rayon::prelude::*;

use crate::coco::{self, CocoOptions, CocoSample, CocoSet};
use crate::detection_metrics::BoundingBox;
use crate::error::DatasetError;
use crate::synthetic_detection::{
    DetectionSample, MAX_IMAGE_SIZE, MAX_SPLIT_PIXELS, MIN_IMAGE_SIZE, ShapeObject, SyntheticDetectionSet,
};
use crate::voc::{self, VocOptions, VocSample, VocSet, VocTask};
use crate::{DataRoot, Split};

/// The real dense data sets: `voc`, `coco`.
pub const REAL_DENSE_NAMES: [&str; 2] = [voc::NAME, coco::NAME];

/// Default side of the resized images. Small enough to train the VGG-style detectors and
/// segmenters on a CPU (YOLOv2's 416 is not); a multiple of 8, the networks' stride.
pub const DEFAULT_IMAGE_SIZE: usize = 128;

/// The ignore label of the converted masks (VOC void, COCO crowd).
pub const IGNORE_LABEL: u32 = 255;

/// True for [`REAL_DENSE_NAMES`].
pub fn is_real_dense(name: &str) -> bool {
    REAL_DENSE_NAMES.contains(&name)
}

fn default_image_size() -> usize {
    DEFAULT_IMAGE_SIZE
}

/// Options of the real dense sets (`[dataset.dense]` in a spec). Missing fields take their
/// defaults when deserialised: `image_size` 128; VOC `year` `"2012"` and `task` detection;
/// splits VOC `train`/`val`, COCO `train2017`/`val2017`; no size limit.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenseOptions {
    /// Side `S` of the resized square images ([`MIN_IMAGE_SIZE`]..=[`MAX_IMAGE_SIZE`]).
    #[serde(default = "default_image_size")]
    pub image_size: usize,
    /// VOC only: release year, the `<year>` of `VOCdevkit/VOC<year>` (default `"2012"`; a
    /// TOML integer is accepted).
    #[serde(default, deserialize_with = "year_from", skip_serializing_if = "Option::is_none")]
    pub year: Option<String>,
    /// VOC only: `detection` (default; `ImageSets/Main`, boxes, no label maps) or
    /// `segmentation` (`ImageSets/Segmentation`, label maps and the boxes of the annotation
    /// files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<VocTask>,
    /// Training split: VOC split file name (default `train`), COCO split folder (default
    /// `train2017`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_split: Option<String>,
    /// Test split: VOC split file name (default `val`), COCO split folder (default `val2017`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_split: Option<String>,
    /// Keep the first this many training images (default: the whole split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_size: Option<usize>,
    /// Keep the first this many test images (default: the whole split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_size: Option<usize>,
}

impl Default for DenseOptions {
    fn default() -> Self {
        DenseOptions {
            image_size: DEFAULT_IMAGE_SIZE,
            year: None,
            task: None,
            train_split: None,
            test_split: None,
            train_size: None,
            test_size: None,
        }
    }
}

fn year_from<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a release year such as 2012 or \"2012\"")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Some(s.to_string()))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
    }
    d.deserialize_any(Visitor)
}

fn invalid(dataset: &str, reason: String) -> DatasetError {
    DatasetError::InvalidOptions { dataset: dataset.to_string(), reason }
}

impl DenseOptions {
    /// Checks the options for data set `name` (`voc` or `coco`); the error names the key.
    pub fn validate(&self, name: &str) -> Result<(), DatasetError> {
        if !is_real_dense(name) {
            return Err(DatasetError::UnknownDataset { name: name.to_string(), valid: REAL_DENSE_NAMES.join(", ") });
        }
        let size = self.image_size;
        if !(MIN_IMAGE_SIZE..=MAX_IMAGE_SIZE).contains(&size) {
            return Err(invalid(name, format!("image_size {size} is outside {MIN_IMAGE_SIZE}..={MAX_IMAGE_SIZE}")));
        }
        if name == coco::NAME {
            for (key, set) in [("year", self.year.is_some()), ("task", self.task.is_some())] {
                if set {
                    return Err(invalid(
                        name,
                        format!("{key} applies to voc only (COCO's instances files give boxes and masks alike)"),
                    ));
                }
            }
        } else {
            self.voc_options(None).validate()?;
        }
        for (key, split) in [("train_split", &self.train_split), ("test_split", &self.test_split)] {
            if let Some(s) = split
                && (s.is_empty() || s.starts_with('.') || s.contains(['/', '\\']))
            {
                return Err(invalid(name, format!("{key} `{s}` is not a split name (e.g. train, val2017)")));
            }
        }
        for (key, n) in [("train_size", self.train_size), ("test_size", self.test_size)] {
            if n == Some(0) {
                return Err(invalid(name, format!("{key} must be at least 1 (or absent for the whole split)")));
            }
        }
        Ok(())
    }

    /// The split read for `split` of data set `name` (see the fields for the defaults).
    pub fn split_name(&self, name: &str, split: Split) -> String {
        let given = match split {
            Split::Train => &self.train_split,
            Split::Test => &self.test_split,
        };
        given.clone().unwrap_or_else(|| {
            if name == coco::NAME { coco::split_name(split) } else { voc::split_name(split) }.to_string()
        })
    }

    /// The image limit of `split` (`train_size` or `test_size`).
    pub fn limit(&self, split: Split) -> Option<usize> {
        match split {
            Split::Train => self.train_size,
            Split::Test => self.test_size,
        }
    }

    /// The VOC loader's options: `year`, `task`, images decoded, at most `max_images`.
    pub fn voc_options(&self, max_images: Option<usize>) -> VocOptions {
        VocOptions {
            year: self.year.clone().unwrap_or_else(|| VocOptions::default().year),
            task: self.task.unwrap_or_default(),
            max_images,
            decode_images: true,
        }
    }
}

/// Whether `split` of `name` (`voc` or `coco`) can be found under `root`, without reading it:
/// `Ok` or the error a [`load`] would stop with ([`DatasetError::Missing`] naming every
/// directory looked in), after checking the options.
pub fn check_available(name: &str, split: Split, root: &DataRoot, opts: &DenseOptions) -> Result<(), DatasetError> {
    opts.validate(name)?;
    let split = opts.split_name(name, split);
    if name == coco::NAME {
        coco::locate(root, &split).map(|_| ())
    } else {
        voc::locate(root, &split, &opts.voc_options(None)).map(|_| ())
    }
}

fn check_pixels(name: &str, split: Split, n: usize, size: usize) -> Result<(), DatasetError> {
    if n.checked_mul(size * size).is_none_or(|t| t > MAX_SPLIT_PIXELS) {
        let key = match split {
            Split::Train => "train_size",
            Split::Test => "test_size",
        };
        return Err(invalid(
            name,
            format!(
                "the {split} split has {n} images: {n} images of {size}x{size} exceed the limit of {MAX_SPLIT_PIXELS} \
                 pixels per split; keep fewer with {key} (at most {}) or lower image_size",
                MAX_SPLIT_PIXELS / (size * size)
            ),
        ));
    }
    Ok(())
}

/// Loads `split` of `name` (`voc` or `coco`, see the module docs) resized to
/// `opts.image_size`: each image is read, resized and its full-size copy dropped before the
/// next, on all cores. Errors: the options ([`DatasetError::InvalidOptions`]), a split not
/// found ([`DatasetError::Missing`]), a bad file (the loaders' errors, naming the file).
pub fn load(
    name: &str,
    split: Split,
    root: &DataRoot,
    opts: &DenseOptions,
) -> Result<SyntheticDetectionSet, DatasetError> {
    opts.validate(name)?;
    let split_name = opts.split_name(name, split);
    let size = opts.image_size;
    let limit = opts.limit(split).unwrap_or(usize::MAX);
    if name == coco::NAME {
        let dir = coco::locate(root, &split_name)?;
        let mut index = coco::read_index(&coco::annotation_file(&dir, &split_name))?;
        index.images.truncate(limit);
        check_pixels(name, split, index.images.len(), size)?;
        let images = dir.join(&split_name);
        let copts = CocoOptions::default();
        let samples = index
            .images
            .par_iter()
            .map(|image| coco::load_sample(&images, &index, image, &copts).and_then(|s| coco_sample(&s, size)))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(SyntheticDetectionSet {
            name: coco::NAME.to_string(),
            image_size: size,
            num_classes: index.categories.len(),
            class_names: index.categories.iter().map(|c| c.name.clone()).collect(),
            samples,
            ignore_label: Some(IGNORE_LABEL),
        });
    }
    let vopts = opts.voc_options(None);
    let dir = voc::locate(root, &split_name, &vopts)?;
    let list = voc::split_file(&dir, &split_name, vopts.task);
    let mut ids = voc::read_split_file(&list)?;
    if ids.is_empty() {
        return Err(DatasetError::Layout { path: list, reason: "the split file lists no image id".into() });
    }
    ids.truncate(limit);
    check_pixels(name, split, ids.len(), size)?;
    let samples = ids
        .par_iter()
        .map(|id| voc::load_sample(&dir, id, &vopts).and_then(|s| voc_sample(&s, size)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(voc_set(samples, size))
}

fn voc_set(samples: Vec<DetectionSample>, size: usize) -> SyntheticDetectionSet {
    SyntheticDetectionSet {
        name: voc::NAME.to_string(),
        image_size: size,
        num_classes: voc::VOC_CLASSES.len(),
        class_names: voc::VOC_CLASSES.iter().map(|c| c.to_string()).collect(),
        samples,
        ignore_label: Some(IGNORE_LABEL),
    }
}

/// A loaded VOC split resized to `image_size × image_size` (see the module docs). The images
/// must have been decoded; `image_size` must be in
/// [`MIN_IMAGE_SIZE`]..=[`MAX_IMAGE_SIZE`].
pub fn from_voc(set: &VocSet, image_size: usize) -> Result<SyntheticDetectionSet, DatasetError> {
    check_size(voc::NAME, image_size)?;
    let samples = set.samples.par_iter().map(|s| voc_sample(s, image_size)).collect::<Result<Vec<_>, _>>()?;
    Ok(voc_set(samples, image_size))
}

/// A loaded COCO split resized to `image_size × image_size` (see the module docs). The
/// images must have been decoded; without label maps (`CocoOptions::masks = false`) every
/// mask pixel is the ignore label.
pub fn from_coco(set: &CocoSet, image_size: usize) -> Result<SyntheticDetectionSet, DatasetError> {
    check_size(coco::NAME, image_size)?;
    let samples = set.samples.par_iter().map(|s| coco_sample(s, image_size)).collect::<Result<Vec<_>, _>>()?;
    Ok(SyntheticDetectionSet {
        name: coco::NAME.to_string(),
        image_size,
        num_classes: set.class_names.len(),
        class_names: set.class_names.clone(),
        samples,
        ignore_label: Some(IGNORE_LABEL),
    })
}

fn check_size(name: &str, size: usize) -> Result<(), DatasetError> {
    if !(MIN_IMAGE_SIZE..=MAX_IMAGE_SIZE).contains(&size) {
        return Err(invalid(name, format!("image_size {size} is outside {MIN_IMAGE_SIZE}..={MAX_IMAGE_SIZE}")));
    }
    Ok(())
}

/// One object before resizing: class, box, area, crowd.
struct SourceObject {
    class: usize,
    bbox: BoundingBox,
    area: f64,
    crowd: bool,
}

/// One image before resizing.
struct Source<'a> {
    name: &'a str,
    id: String,
    width: usize,
    height: usize,
    pixels: &'a [u8],
    mask: Option<&'a [u32]>,
    /// `Some` with instance ids `1 + i` of `objects[i]`; `None` to copy the mask.
    instances: Option<&'a [u32]>,
    objects: Vec<SourceObject>,
}

fn voc_sample(s: &VocSample, size: usize) -> Result<DetectionSample, DatasetError> {
    let objects = s
        .annotation
        .iter()
        .flat_map(|a| &a.objects)
        .map(|o| SourceObject { class: o.class, bbox: o.bbox, area: o.bbox.area(), crowd: o.difficult })
        .collect();
    resize_sample(
        &Source {
            name: voc::NAME,
            id: s.id.clone(),
            width: s.width,
            height: s.height,
            pixels: &s.pixels,
            mask: s.mask.as_deref(),
            instances: None,
            objects,
        },
        size,
    )
}

fn coco_sample(s: &CocoSample, size: usize) -> Result<DetectionSample, DatasetError> {
    let objects = s
        .objects
        .iter()
        .map(|o| SourceObject { class: o.class, bbox: o.bbox, area: o.area, crowd: o.iscrowd })
        .collect();
    resize_sample(
        &Source {
            name: coco::NAME,
            id: format!("{} (`{}`)", s.id, s.file_name),
            width: s.width,
            height: s.height,
            pixels: &s.pixels,
            mask: s.mask.as_deref(),
            instances: s.instances.as_deref(),
            objects,
        },
        size,
    )
}

/// `labels` (`w × h`, row-major) resized to `size × size` by centre sampling.
fn nearest(labels: &[u32], w: usize, h: usize, size: usize) -> Vec<u32> {
    let xs: Vec<usize> = (0..size).map(|x| (((2 * x + 1) * w) / (2 * size)).min(w - 1)).collect();
    let mut out = Vec::with_capacity(size * size);
    for y in 0..size {
        let sy = (((2 * y + 1) * h) / (2 * size)).min(h - 1);
        out.extend(xs.iter().map(|&sx| labels[sy * w + sx]));
    }
    out
}

fn resize_sample(src: &Source, size: usize) -> Result<DetectionSample, DatasetError> {
    let (w, h) = (src.width, src.height);
    let bad = |reason: String| invalid(src.name, format!("image {}: {reason}", src.id));
    if w == 0 || h == 0 {
        return Err(bad(format!("an empty image ({w}x{h})")));
    }
    if src.pixels.len() != 3 * w * h {
        return Err(bad(format!(
            "{} pixel values for a {w}x{h} RGB image (were the images decoded?)",
            src.pixels.len()
        )));
    }
    for (what, labels) in [("mask", src.mask), ("instance map", src.instances)] {
        if let Some(l) = labels
            && l.len() != w * h
        {
            return Err(bad(format!("its {what} has {} labels for {w}x{h} pixels", l.len())));
        }
    }
    // Pixels: planar → interleaved, resized, → planar.
    let plane = w * h;
    let rgb = ::image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        ::image::Rgb([src.pixels[i], src.pixels[plane + i], src.pixels[2 * plane + i]])
    });
    let s32 = size as u32;
    let rgb = if (w, h) == (size, size) {
        rgb
    } else {
        ::image::imageops::resize(&rgb, s32, s32, ::image::imageops::FilterType::Triangle)
    };
    let mut pixels = vec![0u8; 3 * size * size];
    for (i, p) in rgb.pixels().enumerate() {
        for (c, &v) in p.0.iter().enumerate() {
            pixels[c * size * size + i] = v;
        }
    }
    // Objects: scaled, clipped, tiny ones dropped; `kept[i]` = 1 + new index of object i.
    let (sx, sy) = (size as f64 / w as f64, size as f64 / h as f64);
    let sf = size as f64;
    let mut objects = Vec::new();
    let mut kept = vec![0u32; src.objects.len()];
    for (i, o) in src.objects.iter().enumerate() {
        let b = o.bbox;
        let (x0, x1) = ((b.x * sx).clamp(0.0, sf), ((b.x + b.w) * sx).clamp(0.0, sf));
        let (y0, y1) = ((b.y * sy).clamp(0.0, sf), ((b.y + b.h) * sy).clamp(0.0, sf));
        if x1 - x0 < 1.0 || y1 - y0 < 1.0 {
            continue;
        }
        objects.push(ShapeObject {
            class: o.class,
            bbox: BoundingBox::from_corners(x0, y0, x1, y1),
            area: (o.area * sx * sy).round() as usize,
            size: (x1 - x0).max(y1 - y0) as f32,
            crowd: o.crowd,
        });
        kept[i] = objects.len() as u32;
    }
    let mask = match src.mask {
        Some(m) => nearest(m, w, h, size),
        None => vec![IGNORE_LABEL; size * size],
    };
    let instances = match src.instances {
        Some(ids) => nearest(ids, w, h, size)
            .into_iter()
            .map(|v| if v == 0 { 0 } else { kept.get(v as usize - 1).copied().unwrap_or(0) })
            .collect(),
        None => mask.clone(),
    };
    Ok(DetectionSample { pixels, mask, instances, objects })
}
