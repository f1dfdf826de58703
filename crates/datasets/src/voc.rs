//! PASCAL VOC (Everingham et al. 2010, 2015) for object detection and semantic segmentation.
//!
//! # Layout
//! ```text
//! <dir> = VOCdevkit/VOC<year>/
//!   JPEGImages/<id>.jpg                  the images
//!   Annotations/<id>.xml                 objects: class name, box, difficult, truncated
//!   SegmentationClass/<id>.png           class index per pixel (palette PNG)
//!   ImageSets/Main/<split>.txt           detection splits: train, val, trainval, test
//!   ImageSets/Segmentation/<split>.txt   segmentation splits
//! ```
//! [`load`] looks for `<dir>` under every data root ([`DataRoot::roots`]) as
//! `VOCdevkit/VOC<year>`, `voc/VOCdevkit/VOC<year>`, `VOC<year>`, `voc/VOC<year>` and the root
//! itself ([`candidate_dirs`]), and takes the first that holds the requested split;
//! [`load_dir`] reads a given `<dir>`. A split file lists one image id per line (only the
//! first whitespace-separated token counts, so the per-class files `aeroplane_train.txt`,
//! whose lines are `<id> <±1|0>`, list every image). The split is any file name of
//! `ImageSets/{Main|Segmentation}/` without `.txt`; [`split_name`] maps the crate's
//! [`Split::Train`] to `train` and [`Split::Test`] to `val` (the VOC2012 test annotations are
//! not public).
//!
//! # Classes and labels
//! The 20 classes in the standard order [`VOC_CLASSES`] (`aeroplane` … `tvmonitor`), class
//! index `k` in `0..20`. The same number is used everywhere a label is a number:
//! `1 + k` is the mask label of the class in `SegmentationClass/*.png` (`0` is the background,
//! [`IGNORE_INDEX`] = 255 the void label of object boundaries and unlabelled regions) and the
//! `category` of the [`GroundTruth`] records ([`VocObject::ground_truth`]). Masks are
//! therefore scored with `ConfusionMatrix::new(21, Some(255))` of
//! [`crate::detection_metrics`].
//!
//! # Box convention
//! VOC `bndbox` corners `xmin, ymin, xmax, ymax` are 1-based and inclusive: the box covers the
//! pixel columns `xmin..=xmax` and rows `ymin..=ymax` (1-based). In the 0-based continuous
//! frame of [`crate::detection_metrics`], where pixel `(x, y)` covers `[x, x + 1] × [y, y + 1]`,
//! that is `[xmin − 1, xmax] × [ymin − 1, ymax]`, i.e. the COCO box
//!
//! ```text
//! [x, y, w, h] = [xmin − 1, ymin − 1, xmax − xmin + 1, ymax − ymin + 1]
//! ```
//!
//! ([`voc_box_to_coco`]), whose plain area `w · h` is the devkit's "+1" area, so IoUs agree
//! with `VOCevaldet.m`. Fractional corners (a few VOC2011+ files have them) go through the
//! same formula. The `area` of a VOC record is the box area (VOC has no instance masks).
//!
//! # Difficult and truncated objects
//! `<difficult>1</difficult>` objects are kept and marked `difficult`; as ground truth they
//! become `iscrowd = true`, which [`crate::detection_metrics::voc_ap`] treats exactly as the
//! devkit treats difficult objects (neither a miss nor a false positive when detected) and
//! COCO evaluation treats as an ignored region. `<truncated>` is kept as a flag. Absent flags
//! are `false`. Only the direct children of `<object>` are read, so the `<part>` boxes of the
//! person-layout annotations are not objects.
//!
//! # Masks
//! `SegmentationClass/*.png` are 8-bit palette PNGs whose pixel values are the labels (the
//! palette only colours them). They are read as indices, not colours: palette and grayscale
//! PNGs (bit depths 1–8, not interlaced) by a small decoder of their own; any other PNG
//! through the `image` crate, taking grayscale values as labels and mapping RGB colours back
//! through the standard VOC colour map ([`voc_colormap`]). A label other than `0..=20` and 255
//! is an error.
//!
//! # Samples
//! Images are returned at their native size (no resizing), as planar RGB `u8`
//! (`[3, height, width]`). A split is loaded eagerly (about 0.56 MB per 500×375 image; decoding
//! on all cores); [`VocOptions::max_images`] keeps the first ids of the split file and
//! [`VocOptions::decode_images`] `= false` skips the images (labels only).

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::detection_metrics::{BoundingBox, GroundTruth};
use crate::error::{DatasetError, missing_hint_with};
use crate::{DataRoot, Split};

/// Dataset name.
pub const NAME: &str = "voc";

/// The 20 VOC classes in the standard order (class index = position; mask label = index + 1).
pub const VOC_CLASSES: [&str; 20] = [
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

/// Mask label of the background.
pub const BACKGROUND: u32 = 0;

/// Mask label of void pixels (object boundaries, unlabelled regions): ignored when scoring.
pub const IGNORE_INDEX: u32 = 255;

/// Number of mask labels besides [`IGNORE_INDEX`]: background + 20 classes.
pub const NUM_LABELS: usize = VOC_CLASSES.len() + 1;

/// The split files of the VOC releases.
pub const STANDARD_SPLITS: [&str; 4] = ["train", "val", "trainval", "test"];

/// Largest accepted mask, in pixels.
pub const MAX_MASK_PIXELS: usize = 1 << 28;

/// Which annotations to load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VocTask {
    /// `ImageSets/Main/<split>.txt`; every image needs `Annotations/<id>.xml`.
    #[default]
    Detection,
    /// `ImageSets/Segmentation/<split>.txt`; every image needs `SegmentationClass/<id>.png`
    /// (its annotation XML is read as well when present).
    Segmentation,
}

impl VocTask {
    /// Sub-folder of `ImageSets/` holding the split files: `Main` or `Segmentation`.
    pub fn image_sets_folder(self) -> &'static str {
        match self {
            VocTask::Detection => "Main",
            VocTask::Segmentation => "Segmentation",
        }
    }
}

fn default_year() -> String {
    "2012".to_string()
}

fn default_true() -> bool {
    true
}

/// Options of a VOC load. Missing fields take their defaults when deserialised: `year`
/// `"2012"`, `task` detection, `max_images` none, `decode_images` true.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VocOptions {
    /// Release year, the `<year>` of `VOCdevkit/VOC<year>` (e.g. `"2007"`, `"2012"`).
    #[serde(default = "default_year")]
    pub year: String,
    /// Detection or segmentation split files and labels.
    #[serde(default)]
    pub task: VocTask,
    /// Load at most this many images: the first ids of the split file. `None` loads all.
    #[serde(default)]
    pub max_images: Option<usize>,
    /// Decode the JPEG images. `false` loads the labels only (empty `pixels`; sizes from the
    /// annotation or the mask).
    #[serde(default = "default_true")]
    pub decode_images: bool,
}

impl Default for VocOptions {
    fn default() -> Self {
        VocOptions { year: default_year(), task: VocTask::Detection, max_images: None, decode_images: true }
    }
}

impl VocOptions {
    /// Checks the options; the error names the offending key.
    pub fn validate(&self) -> Result<(), DatasetError> {
        if self.year.is_empty() || !self.year.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(format!("year `{}` is not a release year such as 2007 or 2012", self.year)));
        }
        if self.max_images == Some(0) {
            return Err(invalid("max_images must be at least 1 (or absent for the whole split)".into()));
        }
        Ok(())
    }
}

fn invalid(reason: String) -> DatasetError {
    DatasetError::InvalidOptions { dataset: NAME.to_string(), reason }
}

fn check_split(split: &str) -> Result<(), DatasetError> {
    let bad = split.is_empty() || split.starts_with('.') || split.contains(['/', '\\']);
    if bad {
        return Err(invalid(format!("split `{split}` is not a split file name (e.g. {})", STANDARD_SPLITS.join(", "))));
    }
    Ok(())
}

/// The VOC split file of the crate's splits: [`Split::Train`] → `train`, [`Split::Test`] →
/// `val` (VOC2012's test annotations are not public).
pub fn split_name(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "val",
    }
}

/// `VOC<year>`, the release folder inside `VOCdevkit/`.
pub fn year_folder(year: &str) -> String {
    format!("VOC{year}")
}

/// The COCO `[x, y, w, h]` box of VOC's 1-based inclusive corners:
/// `[xmin − 1, ymin − 1, xmax − xmin + 1, ymax − ymin + 1]` (see the module docs).
pub fn voc_box_to_coco(xmin: f64, ymin: f64, xmax: f64, ymax: f64) -> BoundingBox {
    BoundingBox::new(xmin - 1.0, ymin - 1.0, xmax - xmin + 1.0, ymax - ymin + 1.0)
}

/// The standard VOC colour map (`VOClabelcolormap.m`): colour of label `i` at index `i`, the
/// bits of `i` spread over the high bits of R, G and B (1 → (128, 0, 0), 255 → (224, 224, 192)).
pub fn voc_colormap() -> [[u8; 3]; 256] {
    let mut map = [[0u8; 3]; 256];
    for (i, entry) in map.iter_mut().enumerate() {
        let mut c = i;
        for j in 0..8 {
            for (ch, v) in entry.iter_mut().enumerate() {
                *v |= (((c >> ch) & 1) as u8) << (7 - j);
            }
            c >>= 3;
        }
    }
    map
}

// ---------------------------------------------------------------------------------------------
// Records

/// One annotated object.
#[derive(Clone, Debug, PartialEq)]
pub struct VocObject {
    /// Class index into [`VOC_CLASSES`] (mask label and ground-truth category `class + 1`).
    pub class: usize,
    /// The box in COCO `[x, y, w, h]`, converted by [`voc_box_to_coco`].
    pub bbox: BoundingBox,
    /// The corners as written in the file: `[xmin, ymin, xmax, ymax]`, 1-based inclusive.
    pub corners: [f64; 4],
    /// `<difficult>`: excluded from VOC evaluation.
    pub difficult: bool,
    /// `<truncated>`: the object extends beyond the image or is cut by the frame.
    pub truncated: bool,
}

impl VocObject {
    /// The object as a ground-truth record of image `image`: `category = class + 1`,
    /// `iscrowd = difficult` (VOC's ignore semantics), `area` = box area.
    pub fn ground_truth(&self, image: u64) -> GroundTruth {
        GroundTruth {
            image,
            category: self.class as u32 + 1,
            bbox: self.bbox,
            iscrowd: self.difficult,
            area: self.bbox.area(),
        }
    }
}

/// The parsed content of one `Annotations/<id>.xml`.
#[derive(Clone, Debug, PartialEq)]
pub struct VocAnnotation {
    /// `<filename>` (empty when absent).
    pub filename: String,
    /// `<size><width>`, pixels.
    pub width: usize,
    /// `<size><height>`, pixels.
    pub height: usize,
    /// `<segmented>`: the image has segmentation masks.
    pub segmented: bool,
    /// The `<object>` elements, in file order.
    pub objects: Vec<VocObject>,
}

/// A per-pixel label map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelMap {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width · height` labels, row-major.
    pub labels: Vec<u32>,
}

/// One image of a loaded split.
#[derive(Clone, Debug, PartialEq)]
pub struct VocSample {
    /// Image id (the split file's token, e.g. `2008_000008`).
    pub id: String,
    /// Image width in pixels.
    pub width: usize,
    /// Image height in pixels.
    pub height: usize,
    /// `3 · height · width` values, planar RGB (`[3, height, width]`); empty when images are
    /// not decoded.
    pub pixels: Vec<u8>,
    /// The annotation (always for detection; for segmentation when the XML exists).
    pub annotation: Option<VocAnnotation>,
    /// `height · width` mask labels, row-major (segmentation only): 0 background, `1 + class`,
    /// [`IGNORE_INDEX`] void.
    pub mask: Option<Vec<u32>>,
}

/// A loaded VOC split.
#[derive(Clone, Debug, PartialEq)]
pub struct VocSet {
    /// Dataset name, `"voc"`.
    pub name: String,
    /// Release year.
    pub year: String,
    /// Split file name (`train`, `val`, …).
    pub split: String,
    /// Which split files and labels were read.
    pub task: VocTask,
    /// [`VOC_CLASSES`] as strings.
    pub class_names: Vec<String>,
    /// The images in split-file order; sample `i` is image id `i` in [`VocSet::ground_truth`].
    pub samples: Vec<VocSample>,
}

impl VocSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Mask labels besides the ignore index: 21 (background + 20 classes).
    pub fn num_labels(&self) -> usize {
        NUM_LABELS
    }

    /// Every annotated object of every sample as a ground-truth record, image id = sample
    /// index (see [`VocObject::ground_truth`]).
    pub fn ground_truth(&self) -> Vec<GroundTruth> {
        let mut out = Vec::new();
        for (i, s) in self.samples.iter().enumerate() {
            if let Some(a) = &s.annotation {
                out.extend(a.objects.iter().map(|o| o.ground_truth(i as u64)));
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Locating

/// Sub-directories of a data root that may be `VOCdevkit/VOC<year>`, in search order (the
/// empty string is the root itself).
fn sub_dirs(year: &str) -> [String; 5] {
    let y = year_folder(year);
    [format!("VOCdevkit/{y}"), format!("voc/VOCdevkit/{y}"), y.clone(), format!("voc/{y}"), String::new()]
}

/// Directories that may hold `VOC<year>`, in search order: for each data root,
/// `VOCdevkit/VOC<year>`, `voc/VOCdevkit/VOC<year>`, `VOC<year>`, `voc/VOC<year>`, the root.
pub fn candidate_dirs(root: &DataRoot, year: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for r in root.roots() {
        for sub in sub_dirs(year) {
            let p = if sub.is_empty() { r.to_path_buf() } else { r.join(sub) };
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// The split file of `split` for `task` inside a `VOC<year>` directory.
pub fn split_file(dir: &Path, split: &str, task: VocTask) -> PathBuf {
    dir.join("ImageSets").join(task.image_sets_folder()).join(format!("{split}.txt"))
}

fn label_folder(task: VocTask) -> &'static str {
    match task {
        VocTask::Detection => "Annotations",
        VocTask::Segmentation => "SegmentationClass",
    }
}

/// True when `dir` holds the split file of `split`, `JPEGImages/` and the label folder of
/// `task` (`Annotations/` or `SegmentationClass/`).
pub fn has_split(dir: &Path, split: &str, task: VocTask) -> bool {
    split_file(dir, split, task).is_file() && dir.join("JPEGImages").is_dir() && dir.join(label_folder(task)).is_dir()
}

fn expected(split: &str, task: VocTask) -> String {
    let labels = match task {
        VocTask::Detection => "`Annotations/<id>.xml`",
        VocTask::Segmentation => "`SegmentationClass/<id>.png`",
    };
    format!(
        "`ImageSets/{}/{split}.txt`, `JPEGImages/<id>.jpg` and {labels} (the `VOC<year>/` folder of a VOCdevkit)",
        task.image_sets_folder()
    )
}

fn missing(searched: Vec<PathBuf>, split: &str, opts: &VocOptions) -> DatasetError {
    let y = &opts.year;
    let how = format!(
        "download the PASCAL VOC{y} archives from http://host.robots.ox.ac.uk/pascal/VOC/voc{y}/ (for 2012 the \
         train/val archive `VOCtrainval_11-May-2012.tar`) and extract them into the data root, which gives \
         `VOCdevkit/VOC{y}/` (scripts/fetch-datasets.sh does not fetch it)"
    );
    DatasetError::Missing {
        dataset: format!("{NAME} (VOC{y}, {split})"),
        searched,
        hint: missing_hint_with(&expected(split, opts.task), &how),
    }
}

/// The first of [`candidate_dirs`] that holds `split` for `opts.task` ([`has_split`]), or
/// [`DatasetError::Missing`] listing every directory looked in and what one must hold.
pub fn locate(root: &DataRoot, split: &str, opts: &VocOptions) -> Result<PathBuf, DatasetError> {
    opts.validate()?;
    check_split(split)?;
    let candidates = candidate_dirs(root, &opts.year);
    match candidates.iter().find(|d| has_split(d, split, opts.task)) {
        Some(d) => Ok(d.clone()),
        None => Err(missing(candidates, split, opts)),
    }
}

/// Loads `split` (a split file name such as `train`; see [`split_name`]) from the first
/// candidate directory that holds it (see [`locate`] and the module docs).
pub fn load(root: &DataRoot, split: &str, opts: &VocOptions) -> Result<VocSet, DatasetError> {
    let dir = locate(root, split, opts)?;
    load_dir(&dir, split, opts)
}

// ---------------------------------------------------------------------------------------------
// Loading

/// Loads `split` from a `VOC<year>` directory `dir`. A directory without the split file,
/// `JPEGImages/` or the task's label folder gives [`DatasetError::Missing`] naming it.
pub fn load_dir(dir: &Path, split: &str, opts: &VocOptions) -> Result<VocSet, DatasetError> {
    opts.validate()?;
    check_split(split)?;
    if !has_split(dir, split, opts.task) {
        return Err(missing(vec![dir.to_path_buf()], split, opts));
    }
    let list = split_file(dir, split, opts.task);
    let mut ids = read_split_file(&list)?;
    if ids.is_empty() {
        return Err(DatasetError::Layout { path: list, reason: "the split file lists no image id".into() });
    }
    ids.truncate(opts.max_images.unwrap_or(usize::MAX));
    let samples =
        ids.par_iter().map(|id| load_sample(dir, id, opts)).collect::<Result<Vec<VocSample>, DatasetError>>()?;
    Ok(VocSet {
        name: NAME.to_string(),
        year: opts.year.clone(),
        split: split.to_string(),
        task: opts.task,
        class_names: VOC_CLASSES.iter().map(|s| s.to_string()).collect(),
        samples,
    })
}

/// Loads image `id` from a `VOC<year>` directory `dir` as [`load_dir`] loads each image of a
/// split: its annotation and/or mask (by `opts.task`) and, with `opts.decode_images`, its
/// JPEG; sizes are checked against each other.
pub fn load_sample(dir: &Path, id: &str, opts: &VocOptions) -> Result<VocSample, DatasetError> {
    let xml = dir.join("Annotations").join(format!("{id}.xml"));
    let (annotation, mask) = match opts.task {
        VocTask::Detection => (Some(parse_annotation(&xml)?), None),
        VocTask::Segmentation => {
            let mask = read_mask(&dir.join("SegmentationClass").join(format!("{id}.png")))?;
            let annotation = if xml.is_file() { Some(parse_annotation(&xml)?) } else { None };
            (annotation, Some(mask))
        }
    };
    let jpeg = dir.join("JPEGImages").join(format!("{id}.jpg"));
    let (width, height, pixels) = if opts.decode_images {
        let rgb = crate::imagenet::decode(&jpeg)?.to_rgb8();
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        let mut pixels = vec![0u8; 3 * w * h];
        for (i, p) in rgb.pixels().enumerate() {
            for (c, &v) in p.0.iter().enumerate() {
                pixels[c * w * h + i] = v;
            }
        }
        (w, h, pixels)
    } else if let Some(m) = &mask {
        (m.width, m.height, Vec::new())
    } else {
        let a = annotation.as_ref().map_or((0, 0), |a| (a.width, a.height));
        (a.0, a.1, Vec::new())
    };
    if let Some(a) = &annotation
        && (a.width, a.height) != (0, 0)
        && (a.width, a.height) != (width, height)
    {
        return Err(DatasetError::Layout {
            path: xml,
            reason: format!(
                "the annotation gives a {}x{} image, but {} is {width}x{height}",
                a.width,
                a.height,
                if opts.decode_images { jpeg.display().to_string() } else { "the mask".to_string() }
            ),
        });
    }
    let labels = match mask {
        Some(m) if (m.width, m.height) != (width, height) => {
            return Err(DatasetError::Layout {
                path: dir.join("SegmentationClass").join(format!("{id}.png")),
                reason: format!(
                    "the mask is {}x{}, but the image {} is {width}x{height}",
                    m.width,
                    m.height,
                    jpeg.display()
                ),
            });
        }
        Some(m) => Some(m.labels),
        None => None,
    };
    Ok(VocSample { id: id.to_string(), width, height, pixels, annotation, mask: labels })
}

/// The image ids of a split file: the first whitespace-separated token of every non-empty
/// line, in file order. An id that is not a plain file stem (a path separator, a leading
/// dot) is an error.
pub fn read_split_file(path: &Path) -> Result<Vec<String>, DatasetError> {
    let text = read_text(path)?;
    let mut ids = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let Some(id) = line.split_whitespace().next() else { continue };
        if id.starts_with('.') || id.contains(['/', '\\']) {
            return Err(DatasetError::Malformed {
                path: path.to_path_buf(),
                location: format!("line {}", n + 1),
                reason: format!("`{id}` is not an image id (a file name without extension)"),
            });
        }
        ids.push(id.to_string());
    }
    Ok(ids)
}

fn read_text(path: &Path) -> Result<String, DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io { path: path.to_path_buf(), source })?;
    String::from_utf8(bytes).map_err(|e| DatasetError::Corrupt {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to() as u64,
        reason: "not valid UTF-8 text".into(),
    })
}

// ---------------------------------------------------------------------------------------------
// Annotations

/// Reads and parses one `Annotations/<id>.xml` (see [`parse_annotation_str`]).
pub fn parse_annotation(path: &Path) -> Result<VocAnnotation, DatasetError> {
    parse_annotation_str(&read_text(path)?, path)
}

fn child<'a, 'input>(node: roxmltree::Node<'a, 'input>, name: &str) -> Option<roxmltree::Node<'a, 'input>> {
    node.children().find(|c| c.is_element() && c.has_tag_name(name))
}

fn text_of<'a>(node: roxmltree::Node<'a, '_>) -> &'a str {
    node.text().unwrap_or("").trim()
}

/// Parses the text of a VOC annotation (`path` is only used in errors): `<annotation>` with
/// `<filename>`, `<size>` (`<width>`, `<height>` required), `<segmented>` and `<object>`s, each
/// with `<name>` (one of [`VOC_CLASSES`]), `<bndbox>` (`xmin`, `ymin`, `xmax`, `ymax`,
/// required, `xmin ≤ xmax`, `ymin ≤ ymax`), optional `<difficult>` and `<truncated>` (`0` or
/// `1`). Other elements are ignored. Errors are [`DatasetError::Malformed`] naming the element.
pub fn parse_annotation_str(xml: &str, path: &Path) -> Result<VocAnnotation, DatasetError> {
    let malformed =
        |location: String, reason: String| DatasetError::Malformed { path: path.to_path_buf(), location, reason };
    let doc = roxmltree::Document::parse(xml).map_err(|e| {
        let pos = e.pos();
        malformed(format!("line {}, column {}", pos.row, pos.col), format!("not well-formed XML: {e}"))
    })?;
    let root = doc.root_element();
    if !root.has_tag_name("annotation") {
        return Err(malformed(
            format!("element <{}>", root.tag_name().name()),
            "the root element must be <annotation>".into(),
        ));
    }
    let flag = |node: roxmltree::Node, name: &str, location: &str| -> Result<bool, DatasetError> {
        match child(node, name).map(text_of) {
            None => Ok(false),
            Some("0") => Ok(false),
            Some("1") => Ok(true),
            Some(v) => Err(malformed(format!("{location}<{name}>"), format!("`{v}` is not 0 or 1"))),
        }
    };
    let size = child(root, "size").ok_or_else(|| malformed("<size>".into(), "missing element".into()))?;
    let dim = |name: &str| -> Result<usize, DatasetError> {
        let node = child(size, name).ok_or_else(|| malformed(format!("<size><{name}>"), "missing element".into()))?;
        let v = text_of(node);
        v.parse::<usize>()
            .map_err(|_| malformed(format!("<size><{name}>"), format!("`{v}` is not a non-negative integer")))
    };
    let (width, height) = (dim("width")?, dim("height")?);
    let mut objects = Vec::new();
    for (k, object) in root.children().filter(|c| c.is_element() && c.has_tag_name("object")).enumerate() {
        let at = format!("<object> {}: ", k + 1);
        let name_node =
            child(object, "name").ok_or_else(|| malformed(format!("{at}<name>"), "missing element".into()))?;
        let name = text_of(name_node);
        let class = VOC_CLASSES.iter().position(|c| *c == name).ok_or_else(|| {
            malformed(
                format!("{at}<name>"),
                format!("unknown class `{name}`; the VOC classes are: {}", VOC_CLASSES.join(", ")),
            )
        })?;
        let bndbox =
            child(object, "bndbox").ok_or_else(|| malformed(format!("{at}<bndbox>"), "missing element".into()))?;
        let mut corners = [0f64; 4];
        for (slot, key) in corners.iter_mut().zip(["xmin", "ymin", "xmax", "ymax"]) {
            let location = format!("{at}<bndbox><{key}>");
            let node = child(bndbox, key).ok_or_else(|| malformed(location.clone(), "missing element".into()))?;
            let v = text_of(node);
            *slot = v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| malformed(location, format!("`{v}` is not a finite number")))?;
        }
        let [xmin, ymin, xmax, ymax] = corners;
        if xmax < xmin || ymax < ymin {
            return Err(malformed(
                format!("{at}<bndbox>"),
                format!("corners ({xmin}, {ymin}) – ({xmax}, {ymax}) are not ordered: xmin ≤ xmax and ymin ≤ ymax"),
            ));
        }
        objects.push(VocObject {
            class,
            bbox: voc_box_to_coco(xmin, ymin, xmax, ymax),
            corners,
            difficult: flag(object, "difficult", &at)?,
            truncated: flag(object, "truncated", &at)?,
        });
    }
    Ok(VocAnnotation {
        filename: child(root, "filename").map(text_of).unwrap_or("").to_string(),
        width,
        height,
        segmented: flag(root, "segmented", "")?,
        objects,
    })
}

// ---------------------------------------------------------------------------------------------
// Masks

const PNG_SIGNATURE: [u8; 8] = [137, 80, 78, 71, 13, 10, 26, 10];

/// Reads a VOC mask PNG as labels (see the module docs): palette indices or gray values, or
/// RGB colours mapped back through [`voc_colormap`]. Every label must be in `0..=20` or be
/// [`IGNORE_INDEX`].
pub fn read_mask(path: &Path) -> Result<LabelMap, DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io { path: path.to_path_buf(), source })?;
    let map = match decode_index_png(&bytes, path)? {
        Some(map) => map,
        None => decode_other_png(&bytes, path)?,
    };
    if let Some(p) = map.labels.iter().position(|&l| l as usize >= NUM_LABELS && l != IGNORE_INDEX) {
        return Err(DatasetError::Malformed {
            path: path.to_path_buf(),
            location: format!("pixel ({}, {})", p % map.width.max(1), p / map.width.max(1)),
            reason: format!(
                "label {} is neither a class label 0..={} nor the void label {IGNORE_INDEX}",
                map.labels[p],
                NUM_LABELS - 1
            ),
        });
    }
    Ok(map)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Decodes a non-interlaced palette or grayscale PNG of bit depth 1, 2, 4 or 8 into its raw
/// sample values; `Ok(None)` for any other PNG variant (decoded by [`decode_other_png`]).
fn decode_index_png(bytes: &[u8], path: &Path) -> Result<Option<LabelMap>, DatasetError> {
    let corrupt = |offset: usize, reason: String| DatasetError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    if bytes.len() < 8 || bytes[..8] != PNG_SIGNATURE {
        return Err(corrupt(0, "not a PNG file (bad signature)".into()));
    }
    let mut pos = 8;
    let mut header: Option<(usize, usize, u8, u8, u8)> = None;
    let mut idat = Vec::new();
    let mut idat_offset = 0;
    let mut ended = false;
    while pos < bytes.len() {
        if bytes.len() - pos < 12 {
            return Err(corrupt(pos, "truncated chunk header".into()));
        }
        let len = be32(&bytes[pos..]) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        if bytes.len() - pos - 12 < len {
            return Err(corrupt(pos, format!("chunk `{}` of {len} bytes is truncated", String::from_utf8_lossy(kind))));
        }
        let data = &bytes[pos + 8..pos + 8 + len];
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        if crc.sum() != be32(&bytes[pos + 8 + len..]) {
            return Err(corrupt(pos, format!("chunk `{}` fails its CRC check", String::from_utf8_lossy(kind))));
        }
        match kind {
            b"IHDR" => {
                if len != 13 || header.is_some() || pos != 8 {
                    return Err(corrupt(pos, "IHDR must be the first chunk, of 13 bytes".into()));
                }
                let (w, h) = (be32(data) as usize, be32(&data[4..]) as usize);
                if w == 0 || h == 0 {
                    return Err(corrupt(pos, format!("empty image ({w}x{h})")));
                }
                if data[10] != 0 || data[11] != 0 {
                    return Err(corrupt(pos, "unknown compression or filter method".into()));
                }
                if w.checked_mul(h).is_none_or(|n| n > MAX_MASK_PIXELS) {
                    return Err(DatasetError::Unsupported {
                        path: path.to_path_buf(),
                        reason: format!("a {w}x{h} mask exceeds the limit of {MAX_MASK_PIXELS} pixels"),
                    });
                }
                header = Some((w, h, data[8], data[9], data[12]));
            }
            _ if header.is_none() => return Err(corrupt(pos, "the first chunk is not IHDR".into())),
            b"IDAT" => {
                if idat.is_empty() {
                    idat_offset = pos;
                }
                idat.extend_from_slice(data);
            }
            b"IEND" => {
                ended = true;
                break;
            }
            _ => {}
        }
        pos += 12 + len;
    }
    let Some((width, height, depth, colour, interlace)) = header else {
        return Err(corrupt(8, "no IHDR chunk".into()));
    };
    if !ended {
        return Err(corrupt(bytes.len(), "no IEND chunk (truncated file)".into()));
    }
    if !matches!(colour, 0 | 3) || !matches!(depth, 1 | 2 | 4 | 8) || interlace != 0 {
        return Ok(None);
    }
    let depth = usize::from(depth);
    let stride = (width * depth).div_ceil(8);
    let expect = height * (stride + 1);
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .take(expect as u64)
        .read_to_end(&mut raw)
        .map_err(|e| corrupt(idat_offset, format!("image data (zlib): {e}")))?;
    if raw.len() != expect {
        return Err(corrupt(
            idat_offset,
            format!("image data decompresses to {} bytes; a {width}x{height} image needs {expect}", raw.len()),
        ));
    }
    let mut prev = vec![0u8; stride];
    let mut cur = vec![0u8; stride];
    let mut labels = Vec::with_capacity(width * height);
    let per_byte = 8 / depth;
    let max = (1u32 << depth) - 1;
    for (row, line) in raw.chunks_exact(stride + 1).enumerate() {
        let filter = line[0];
        for i in 0..stride {
            let x = line[1 + i];
            let a = if i > 0 { cur[i - 1] } else { 0 };
            let b = prev[i];
            let c = if i > 0 { prev[i - 1] } else { 0 };
            cur[i] = match filter {
                0 => x,
                1 => x.wrapping_add(a),
                2 => x.wrapping_add(b),
                3 => x.wrapping_add(((u16::from(a) + u16::from(b)) / 2) as u8),
                4 => x.wrapping_add(paeth(a, b, c)),
                f => return Err(corrupt(idat_offset, format!("row {row}: unknown filter type {f}"))),
            };
        }
        for x in 0..width {
            let byte = u32::from(cur[x / per_byte]);
            let shift = 8 - depth * (x % per_byte + 1);
            labels.push((byte >> shift) & max);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Ok(Some(LabelMap { width, height, labels }))
}

/// PNG's Paeth predictor.
fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let (ia, ib, ic) = (i16::from(a), i16::from(b), i16::from(c));
    let p = ia + ib - ic;
    let (pa, pb, pc) = ((p - ia).abs(), (p - ib).abs(), (p - ic).abs());
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

/// Other PNG variants through the `image` crate: gray values are labels, RGB colours are
/// looked up in the VOC colour map (alpha is ignored).
fn decode_other_png(bytes: &[u8], path: &Path) -> Result<LabelMap, DatasetError> {
    use ::image::DynamicImage;
    let img = ::image::load_from_memory_with_format(bytes, ::image::ImageFormat::Png).map_err(|e| {
        DatasetError::Corrupt { path: path.to_path_buf(), offset: 0, reason: format!("cannot decode the PNG: {e}") }
    })?;
    let (width, height) = (img.width() as usize, img.height() as usize);
    let labels = match img {
        DynamicImage::ImageLuma8(g) => g.into_raw().into_iter().map(u32::from).collect(),
        DynamicImage::ImageLumaA8(g) => g.pixels().map(|p| u32::from(p.0[0])).collect(),
        DynamicImage::ImageLuma16(g) => g.into_raw().into_iter().map(u32::from).collect(),
        DynamicImage::ImageLumaA16(g) => g.pixels().map(|p| u32::from(p.0[0])).collect(),
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => {
            let lookup: HashMap<[u8; 3], u32> =
                voc_colormap().iter().enumerate().map(|(i, c)| (*c, i as u32)).collect();
            let rgb = img.to_rgb8();
            let mut labels = Vec::with_capacity(width * height);
            for (i, p) in rgb.pixels().enumerate() {
                let Some(&l) = lookup.get(&p.0) else {
                    return Err(DatasetError::Malformed {
                        path: path.to_path_buf(),
                        location: format!("pixel ({}, {})", i % width, i / width),
                        reason: format!("colour {:?} is not in the VOC colour map", p.0),
                    });
                };
                labels.push(l);
            }
            labels
        }
        other => {
            return Err(DatasetError::Unsupported {
                path: path.to_path_buf(),
                reason: format!(
                    "a {:?} PNG is not a label mask (palette, grayscale or VOC-coloured RGB expected)",
                    other.color()
                ),
            });
        }
    };
    Ok(LabelMap { width, height, labels })
}
