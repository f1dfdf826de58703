//! MS COCO (Lin et al. 2014) *instances* annotations, for object detection and semantic
//! segmentation.
//!
//! # Layout
//! ```text
//! <dir>/
//!   annotations/instances_<split>.json   images, categories and annotations of the split
//!   <split>/<file_name>                  the images (JPEG; PNG is accepted too)
//! ```
//! `<split>` is the name of the release's folders, e.g. `val2017` or `train2017`
//! ([`split_name`] maps the crate's [`Split::Train`] to `train2017` and [`Split::Test`] to
//! `val2017`; the 2017 test images have no public annotations). [`load`] looks for `<dir>`
//! under every data root ([`DataRoot::roots`]) as `coco/`, `COCO/` and the root itself
//! ([`candidate_dirs`]) and takes the first that holds the split ([`has_split`]); [`load_dir`]
//! reads a given `<dir>`.
//!
//! # The annotation file
//! Read with serde: `images` (`id`, `file_name`, `width`, `height`), `categories` (`id`,
//! `name`) and `annotations` (`image_id`, `category_id`, `bbox` `[x, y, w, h]` in pixels,
//! optional `iscrowd` 0/1 (default 0), `area` (default the box area), `segmentation`, `id`);
//! other keys are ignored. Images keep the file's order (a split limited to `max_images` keeps
//! the first ones); images without annotations are kept (with no object). Every problem is a
//! [`DatasetError::Malformed`] naming the file and the key, e.g.
//! `key annotations[12].category_id`: invalid JSON, a missing or mistyped key, a duplicate
//! image or category id, an annotation of an image or category that the file does not list,
//! a non-finite or negative box, an odd-length polygon, an RLE that does not fit its size.
//!
//! # Classes and labels
//! COCO's category ids are sparse (1–90 for the 80 categories of 2017): the categories are
//! sorted by id and category `k` in that order is class `k` (`0..C`), so the 80 categories
//! give the classes `0..80`. As in [`crate::voc`], mask label `1 + class` is the class, `0`
//! the background and [`IGNORE_INDEX`] (255) an ignored pixel, here a crowd region
//! (`iscrowd = 1`) that no single object covers; ground-truth records
//! ([`CocoObject::ground_truth`]) have `category = 1 + class` and keep `iscrowd`.
//!
//! # Masks
//! Every object's segmentation is rasterised at the image's size:
//! * polygons (`[[x1, y1, x2, y2, …], …]`, pixel coordinates where pixel `(x, y)` covers
//!   `[x, x + 1] × [y, y + 1]`): a pixel belongs to the object when its centre
//!   `(x + 0.5, y + 0.5)` is inside one of the polygons by the even-odd rule (a scanline fill;
//!   pycocotools' `frPoly` rasterises at a finer grid and may differ by a pixel along the
//!   edges). Polygons of fewer than 3 points cover nothing;
//! * uncompressed RLE `{"counts": [n0, n1, …], "size": [h, w]}`: alternating runs of 0s and
//!   1s, starting with 0s, over the pixels in column-major order (`p = x · h + y`), as COCO
//!   defines it;
//! * compressed RLE `{"counts": "<string>", "size": [h, w]}`: the same runs in pycocotools'
//!   string encoding (`maskApi.c` `rleFrString`: 5-bit groups with a continuation bit, offset
//!   by 48, the runs from the fourth on stored as differences to the run two before).
//!
//! An RLE's `size` must be the image's, and its runs may not add up to more pixels than it
//! has (fewer leave the rest 0). The label map ([`CocoSample::mask`]) is painted crowd
//! regions first ([`IGNORE_INDEX`]), then the other objects in file order, later objects over
//! earlier ones; [`CocoSample::instances`] holds `1 + i` for a pixel of `objects[i]` painted
//! in the same order (crowd regions included), `0` elsewhere.
//!
//! # Samples
//! Images are decoded at their native size as planar RGB `u8` (`[3, height, width]`), the way
//! [`crate::voc`] decodes them (JPEG or PNG, detected from the content). A decoded size other
//! than the file's `width`/`height` is an error. A split is loaded eagerly (images decoded and
//! masks rasterised on all cores); [`CocoOptions::max_images`] keeps the first images.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;
use serde::Deserialize;

use crate::detection_metrics::{BoundingBox, GroundTruth};
use crate::error::{DatasetError, missing_hint_with};
use crate::{DataRoot, Split};

/// Dataset name.
pub const NAME: &str = "coco";

/// Mask label of the background.
pub const BACKGROUND: u32 = 0;

/// Mask label of crowd regions (not covered by a single object): ignored when scoring, as
/// VOC's void label ([`crate::voc::IGNORE_INDEX`], the same value).
pub const IGNORE_INDEX: u32 = 255;

/// The annotated splits of the 2017 release.
pub const STANDARD_SPLITS: [&str; 2] = ["train2017", "val2017"];

/// Largest accepted image, in pixels (`width · height`).
pub const MAX_IMAGE_PIXELS: usize = 1 << 28;

fn default_true() -> bool {
    true
}

/// Options of a COCO load. Missing fields take their defaults when deserialised:
/// `max_images` none, `decode_images` true, `masks` true.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CocoOptions {
    /// Load at most this many images: the first ones of the file's `images`. `None` loads all.
    #[serde(default)]
    pub max_images: Option<usize>,
    /// Decode the images. `false` loads the labels only (empty `pixels`; sizes from the file).
    #[serde(default = "default_true")]
    pub decode_images: bool,
    /// Rasterise the label maps ([`CocoSample::mask`], [`CocoSample::instances`]). `false`
    /// leaves them `None` (boxes only).
    #[serde(default = "default_true")]
    pub masks: bool,
}

impl Default for CocoOptions {
    fn default() -> Self {
        CocoOptions { max_images: None, decode_images: true, masks: true }
    }
}

impl CocoOptions {
    /// Checks the options; the error names the offending key.
    pub fn validate(&self) -> Result<(), DatasetError> {
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
        return Err(invalid(format!(
            "split `{split}` is not a split folder name (e.g. {})",
            STANDARD_SPLITS.join(", ")
        )));
    }
    Ok(())
}

/// The COCO split of the crate's splits: [`Split::Train`] → `train2017`, [`Split::Test`] →
/// `val2017`.
pub fn split_name(split: Split) -> &'static str {
    match split {
        Split::Train => "train2017",
        Split::Test => "val2017",
    }
}

// ---------------------------------------------------------------------------------------------
// Records

/// A category of the annotation file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CocoCategory {
    /// COCO category id (sparse: 1–90 in the 2017 release).
    pub id: u64,
    /// Category name, e.g. `person`.
    pub name: String,
}

/// An object's segmentation, checked against its image.
#[derive(Clone, Debug, PartialEq)]
pub enum Segmentation {
    /// Polygons, each `[x1, y1, x2, y2, …]` in pixel coordinates (an even number of values).
    Polygons(Vec<Vec<f64>>),
    /// Run lengths over the `height · width` pixels in column-major order, starting with a
    /// run of 0s (decoded from either RLE form).
    Rle {
        /// Mask height (the image's).
        height: usize,
        /// Mask width (the image's).
        width: usize,
        /// The runs.
        counts: Vec<u64>,
    },
}

/// One annotation of the file, checked and mapped to its class.
#[derive(Clone, Debug, PartialEq)]
pub struct CocoAnnotation {
    /// Position in the file's `annotations` array (for error messages).
    pub index: usize,
    /// The annotation's `id`, when present.
    pub id: Option<u64>,
    /// Contiguous class `0..C` (see the module docs).
    pub class: usize,
    /// `bbox`, COCO `[x, y, w, h]` in pixels.
    pub bbox: BoundingBox,
    /// `iscrowd = 1`.
    pub iscrowd: bool,
    /// `area` (default: the box area).
    pub area: f64,
    /// `segmentation`, when present.
    pub segmentation: Option<Segmentation>,
}

/// One image of the file with its annotations.
#[derive(Clone, Debug, PartialEq)]
pub struct CocoImage {
    /// COCO image id.
    pub id: u64,
    /// File name inside the split folder.
    pub file_name: String,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Its annotations, in file order.
    pub annotations: Vec<CocoAnnotation>,
}

/// The parsed content of one `instances_<split>.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct CocoIndex {
    /// The file read.
    pub path: PathBuf,
    /// The categories sorted by id; class `k` is `categories[k]`.
    pub categories: Vec<CocoCategory>,
    /// The images in file order.
    pub images: Vec<CocoImage>,
}

/// One object of a loaded sample.
#[derive(Clone, Debug, PartialEq)]
pub struct CocoObject {
    /// Contiguous class `0..C` (mask label and ground-truth category `class + 1`).
    pub class: usize,
    /// The COCO category id of the class.
    pub category_id: u64,
    /// The box, COCO `[x, y, w, h]` in pixels.
    pub bbox: BoundingBox,
    /// The annotation's `area`.
    pub area: f64,
    /// A crowd region (`iscrowd = 1`).
    pub iscrowd: bool,
    /// The annotation's `id`, when present.
    pub annotation_id: Option<u64>,
}

impl CocoObject {
    /// The object as a ground-truth record of image `image`: `category = class + 1`,
    /// `iscrowd` and `area` as annotated.
    pub fn ground_truth(&self, image: u64) -> GroundTruth {
        GroundTruth { image, category: self.class as u32 + 1, bbox: self.bbox, iscrowd: self.iscrowd, area: self.area }
    }
}

/// One image of a loaded split.
#[derive(Clone, Debug, PartialEq)]
pub struct CocoSample {
    /// COCO image id.
    pub id: u64,
    /// File name inside the split folder.
    pub file_name: String,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `3 · height · width` values, planar RGB (`[3, height, width]`); empty when images are
    /// not decoded.
    pub pixels: Vec<u8>,
    /// The objects, in file order.
    pub objects: Vec<CocoObject>,
    /// `height · width` labels, row-major: 0 background, `1 + class`, [`IGNORE_INDEX`] crowd
    /// (see the module docs); `None` when masks are not rasterised.
    pub mask: Option<Vec<u32>>,
    /// `height · width` instance labels, row-major: `1 + i` for a pixel of `objects[i]`, 0
    /// elsewhere; `None` when masks are not rasterised.
    pub instances: Option<Vec<u32>>,
}

/// A loaded COCO split.
#[derive(Clone, Debug, PartialEq)]
pub struct CocoSet {
    /// Dataset name, `"coco"`.
    pub name: String,
    /// Split folder name (`val2017`, …).
    pub split: String,
    /// Category names in class order (ascending category id).
    pub class_names: Vec<String>,
    /// COCO category id of each class.
    pub category_ids: Vec<u64>,
    /// The images in file order; sample `i` is image id `i` in [`CocoSet::ground_truth`].
    pub samples: Vec<CocoSample>,
}

impl CocoSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Number of object classes (categories).
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Mask labels besides the ignore index: the classes and the background.
    pub fn num_labels(&self) -> usize {
        self.class_names.len() + 1
    }

    /// Every object of every sample as a ground-truth record, image id = sample index (see
    /// [`CocoObject::ground_truth`]).
    pub fn ground_truth(&self) -> Vec<GroundTruth> {
        let mut out = Vec::new();
        for (i, s) in self.samples.iter().enumerate() {
            out.extend(s.objects.iter().map(|o| o.ground_truth(i as u64)));
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Locating

/// Sub-directories of a data root that may hold the release, in search order (the empty string
/// is the root itself).
const SUB_DIRS: [&str; 3] = ["coco", "COCO", ""];

/// Directories that may hold the release, in search order: for each data root `coco/`,
/// `COCO/`, the root itself.
pub fn candidate_dirs(root: &DataRoot) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for r in root.roots() {
        for sub in SUB_DIRS {
            let p = if sub.is_empty() { r.to_path_buf() } else { r.join(sub) };
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// The annotation file of `split` inside a release directory:
/// `annotations/instances_<split>.json`.
pub fn annotation_file(dir: &Path, split: &str) -> PathBuf {
    dir.join("annotations").join(format!("instances_{split}.json"))
}

/// True when `dir` holds the annotation file of `split` and its image folder `<split>/`.
pub fn has_split(dir: &Path, split: &str) -> bool {
    annotation_file(dir, split).is_file() && dir.join(split).is_dir()
}

fn missing(searched: Vec<PathBuf>, split: &str) -> DatasetError {
    let expected = format!(
        "`annotations/instances_{split}.json` and the image folder `{split}/` (the COCO release unzipped into one \
         folder)"
    );
    let how = "download `annotations_trainval2017.zip`, `train2017.zip` and `val2017.zip` from \
               https://cocodataset.org/#download and unzip them into `<data root>/coco/`, which gives \
               `coco/annotations/instances_val2017.json` and `coco/val2017/*.jpg` (scripts/fetch-datasets.sh does not \
               fetch it)";
    DatasetError::Missing { dataset: format!("{NAME} ({split})"), searched, hint: missing_hint_with(&expected, how) }
}

/// The first of [`candidate_dirs`] that holds `split` ([`has_split`]), or
/// [`DatasetError::Missing`] listing every directory looked in and what one must hold.
pub fn locate(root: &DataRoot, split: &str) -> Result<PathBuf, DatasetError> {
    check_split(split)?;
    let candidates = candidate_dirs(root);
    match candidates.iter().find(|d| has_split(d, split)) {
        Some(d) => Ok(d.clone()),
        None => Err(missing(candidates, split)),
    }
}

/// Loads `split` (a split folder name such as `val2017`; see [`split_name`]) from the first
/// candidate directory that holds it (see [`locate`] and the module docs).
pub fn load(root: &DataRoot, split: &str, opts: &CocoOptions) -> Result<CocoSet, DatasetError> {
    opts.validate()?;
    let dir = locate(root, split)?;
    load_dir(&dir, split, opts)
}

/// Loads `split` from a release directory `dir`. A directory without the annotation file or
/// the image folder gives [`DatasetError::Missing`] naming it.
pub fn load_dir(dir: &Path, split: &str, opts: &CocoOptions) -> Result<CocoSet, DatasetError> {
    opts.validate()?;
    check_split(split)?;
    if !has_split(dir, split) {
        return Err(missing(vec![dir.to_path_buf()], split));
    }
    let mut index = read_index(&annotation_file(dir, split))?;
    index.images.truncate(opts.max_images.unwrap_or(usize::MAX));
    let images = dir.join(split);
    let samples = index
        .images
        .par_iter()
        .map(|image| load_sample(&images, &index, image, opts))
        .collect::<Result<Vec<CocoSample>, DatasetError>>()?;
    Ok(CocoSet {
        name: NAME.to_string(),
        split: split.to_string(),
        class_names: index.categories.iter().map(|c| c.name.clone()).collect(),
        category_ids: index.categories.iter().map(|c| c.id).collect(),
        samples,
    })
}

/// Loads one image of `index` from the split's image folder `images`: decodes it (unless
/// `opts.decode_images` is false) and rasterises its label maps (unless `opts.masks` is false).
pub fn load_sample(
    images: &Path,
    index: &CocoIndex,
    image: &CocoImage,
    opts: &CocoOptions,
) -> Result<CocoSample, DatasetError> {
    let (width, height) = (image.width, image.height);
    let pixels = if opts.decode_images {
        let path = images.join(&image.file_name);
        let rgb = crate::imagenet::decode(&path)?.to_rgb8();
        let (w, h) = (rgb.width() as usize, rgb.height() as usize);
        if (w, h) != (width, height) {
            return Err(DatasetError::Layout {
                path: index.path.clone(),
                reason: format!(
                    "image {} (`{}`) is {width}x{height} in the annotation file, but {} is {w}x{h}",
                    image.id,
                    image.file_name,
                    path.display()
                ),
            });
        }
        let mut pixels = vec![0u8; 3 * w * h];
        for (i, p) in rgb.pixels().enumerate() {
            for (c, &v) in p.0.iter().enumerate() {
                pixels[c * w * h + i] = v;
            }
        }
        pixels
    } else {
        Vec::new()
    };
    let objects: Vec<CocoObject> = image
        .annotations
        .iter()
        .map(|a| CocoObject {
            class: a.class,
            category_id: index.categories[a.class].id,
            bbox: a.bbox,
            area: a.area,
            iscrowd: a.iscrowd,
            annotation_id: a.id,
        })
        .collect();
    let (mask, instances) = if opts.masks {
        let (mask, instances) = rasterise(image);
        (Some(mask), Some(instances))
    } else {
        (None, None)
    };
    Ok(CocoSample { id: image.id, file_name: image.file_name.clone(), width, height, pixels, objects, mask, instances })
}

/// The label and instance maps of an image (see the module docs): crowd regions first, then
/// the other objects in file order.
fn rasterise(image: &CocoImage) -> (Vec<u32>, Vec<u32>) {
    let (w, h) = (image.width, image.height);
    let mut mask = vec![BACKGROUND; w * h];
    let mut instances = vec![0u32; w * h];
    let mut pixels = Vec::new();
    for crowd in [true, false] {
        for (i, a) in image.annotations.iter().enumerate().filter(|(_, a)| a.iscrowd == crowd) {
            let Some(segmentation) = &a.segmentation else { continue };
            pixels.clear();
            segmentation_pixels(segmentation, w, h, &mut pixels);
            let label = if crowd { IGNORE_INDEX } else { a.class as u32 + 1 };
            for &p in &pixels {
                mask[p] = label;
                instances[p] = i as u32 + 1;
            }
        }
    }
    (mask, instances)
}

/// Row-major indices of the pixels a segmentation covers in a `w × h` image (possibly
/// repeated where polygons overlap).
fn segmentation_pixels(segmentation: &Segmentation, w: usize, h: usize, out: &mut Vec<usize>) {
    match segmentation {
        Segmentation::Polygons(polygons) => {
            for polygon in polygons {
                fill_polygon(polygon, w, h, out);
            }
        }
        Segmentation::Rle { counts, .. } => {
            let mut p = 0usize;
            for (k, &run) in counts.iter().enumerate() {
                let end = (p as u64).saturating_add(run).min((w * h) as u64) as usize;
                if k % 2 == 1 {
                    // Column-major index q = x · h + y.
                    out.extend((p..end).map(|q| (q % h) * w + q / h));
                }
                p = end;
            }
        }
    }
}

/// Pixels whose centre is inside the polygon `[x1, y1, x2, y2, …]` by the even-odd rule: a
/// scanline through the pixel centres of each row, crossings counted with the half-open rule
/// (an edge counts when its endpoints lie on different sides of `y + 0.5`, the lower one
/// inclusive), pixels between the 1st and 2nd, 3rd and 4th… crossings filled.
pub fn fill_polygon(polygon: &[f64], w: usize, h: usize, out: &mut Vec<usize>) {
    let points: Vec<(f64, f64)> = polygon.chunks_exact(2).map(|p| (p[0], p[1])).collect();
    if points.len() < 3 || w == 0 || h == 0 {
        return;
    }
    let (ymin, ymax) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
    // Rows whose centre y + 0.5 can lie in [ymin, ymax].
    let first = (ymin - 0.5).ceil().max(0.0);
    let last = (ymax - 0.5).floor().min(h as f64 - 1.0);
    if first > last {
        return;
    }
    let mut crossings = Vec::new();
    for y in first as usize..=last as usize {
        let yc = y as f64 + 0.5;
        crossings.clear();
        for k in 0..points.len() {
            let (x0, y0) = points[k];
            let (x1, y1) = points[(k + 1) % points.len()];
            if (y0 <= yc) != (y1 <= yc) {
                crossings.push(x0 + (yc - y0) * (x1 - x0) / (y1 - y0));
            }
        }
        crossings.sort_by(f64::total_cmp);
        for pair in crossings.chunks_exact(2) {
            // Pixel x is filled when its centre x + 0.5 is in [pair[0], pair[1]).
            let from = (pair[0] - 0.5).ceil().max(0.0);
            let to = (pair[1] - 0.5).ceil().min(w as f64);
            if from < to {
                out.extend((from as usize..to as usize).map(|x| y * w + x));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The annotation file

#[derive(Deserialize)]
struct RawFile {
    images: Vec<RawImage>,
    categories: Vec<RawCategory>,
    annotations: Vec<RawAnnotation>,
}

#[derive(Deserialize)]
struct RawImage {
    id: u64,
    file_name: String,
    width: usize,
    height: usize,
}

#[derive(Deserialize)]
struct RawCategory {
    id: u64,
    name: String,
}

#[derive(Deserialize)]
struct RawAnnotation {
    #[serde(default)]
    id: Option<u64>,
    image_id: u64,
    category_id: u64,
    bbox: [f64; 4],
    #[serde(default)]
    iscrowd: u64,
    #[serde(default)]
    area: Option<f64>,
    #[serde(default)]
    segmentation: Option<RawSegmentation>,
}

/// `segmentation` as written: a list of polygons or an RLE object.
enum RawSegmentation {
    Polygons(Vec<Vec<f64>>),
    Rle(RawRle),
}

#[derive(Deserialize)]
struct RawRle {
    counts: RawCounts,
    size: [usize; 2],
}

/// RLE `counts` as written: a list of runs or pycocotools' compressed string.
enum RawCounts {
    Runs(Vec<u64>),
    Compressed(String),
}

impl<'de> Deserialize<'de> for RawSegmentation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawSegmentation;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of polygons or an RLE object {\"counts\": …, \"size\": [h, w]}")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut polygons = Vec::new();
                while let Some(p) = seq.next_element::<Vec<f64>>()? {
                    polygons.push(p);
                }
                Ok(RawSegmentation::Polygons(polygons))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawRle::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(RawSegmentation::Rle)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl<'de> Deserialize<'de> for RawCounts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawCounts;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of run lengths or a compressed RLE string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(RawCounts::Compressed(s.to_string()))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(RawCounts::Compressed(s))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut runs = Vec::new();
                while let Some(r) = seq.next_element::<u64>()? {
                    runs.push(r);
                }
                Ok(RawCounts::Runs(runs))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Decodes pycocotools' compressed RLE string (`maskApi.c` `rleFrString`): each run is a
/// little-endian sequence of 5-bit groups, each character `48 + group` with bit 5 (`0x20`)
/// set when another group follows; the last group's bit 4 (`0x10`) is the sign (the value is
/// sign-extended). From the fourth run on, the decoded value is added to the run two before.
/// Errors (a `String` reason): a character outside `'0'..='o'`, a value that does not fit
/// 64 bits, a string ending inside a value, a negative run.
pub fn decode_rle_string(s: &str) -> Result<Vec<u64>, String> {
    let bytes = s.as_bytes();
    let mut counts: Vec<u64> = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        let start = p;
        let mut x: i64 = 0;
        let mut k = 0u32;
        loop {
            let Some(&b) = bytes.get(p) else {
                return Err(format!("the string ends inside the value starting at character {start}"));
            };
            if !(48..48 + 64).contains(&b) {
                return Err(format!(
                    "character {p} ({:?}) is not an RLE digit ('0' to 'o')",
                    char::from_u32(u32::from(b)).unwrap_or('?')
                ));
            }
            let c = i64::from(b - 48);
            if 5 * k >= 63 {
                return Err(format!("the value starting at character {start} does not fit 64 bits"));
            }
            x |= (c & 0x1f) << (5 * k);
            let more = c & 0x20 != 0;
            p += 1;
            k += 1;
            if !more {
                if c & 0x10 != 0 {
                    x |= (-1i64).checked_shl(5 * k).unwrap_or(0);
                }
                break;
            }
        }
        let m = counts.len();
        if m > 2 {
            x = x.checked_add(counts[m - 2] as i64).ok_or_else(|| format!("run {m} overflows"))?;
        }
        let run = u64::try_from(x).map_err(|_| format!("run {m} is negative ({x})"))?;
        counts.push(run);
    }
    Ok(counts)
}

/// Encodes runs as pycocotools' compressed RLE string (`maskApi.c` `rleToString`), the inverse
/// of [`decode_rle_string`].
pub fn encode_rle_string(counts: &[u64]) -> String {
    let mut s = String::new();
    for (i, &run) in counts.iter().enumerate() {
        let mut x = run as i64;
        if i > 2 {
            x -= counts[i - 2] as i64;
        }
        loop {
            let mut c = (x & 0x1f) as u8;
            x >>= 5;
            let more = if c & 0x10 != 0 { x != -1 } else { x != 0 };
            if more {
                c |= 0x20;
            }
            s.push(char::from(c + 48));
            if !more {
                break;
            }
        }
    }
    s
}

/// Reads and checks an `instances_<split>.json` (see the module docs): categories sorted by
/// id and mapped to classes, annotations grouped by image, segmentations checked against their
/// image (compressed RLE decoded).
pub fn read_index(path: &Path) -> Result<CocoIndex, DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io { path: path.to_path_buf(), source })?;
    parse_index(&bytes, path)
}

/// [`read_index`] of the file's bytes (`path` is only used in errors).
pub fn parse_index(bytes: &[u8], path: &Path) -> Result<CocoIndex, DatasetError> {
    let malformed =
        |location: String, reason: String| DatasetError::Malformed { path: path.to_path_buf(), location, reason };
    let json_error = |key: String, e: serde_json::Error| {
        let at = format!("line {}, column {}", e.line(), e.column());
        let location = if key.is_empty() || key == "." { at } else { format!("key `{key}` ({at})") };
        // serde_json's message ends with the position, already in `location`.
        let message = e.to_string();
        let message = message.strip_suffix(&format!(" at line {} column {}", e.line(), e.column())).unwrap_or(&message);
        let reason = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                format!("not valid JSON: {message}")
            }
            _ => message.to_string(),
        };
        malformed(location, reason)
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let raw: RawFile = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let key = e.path().to_string();
        json_error(key, e.into_inner())
    })?;
    de.end().map_err(|e| json_error(String::new(), e))?;

    let mut categories: Vec<(usize, CocoCategory)> =
        raw.categories.into_iter().enumerate().map(|(i, c)| (i, CocoCategory { id: c.id, name: c.name })).collect();
    categories.sort_by_key(|(_, c)| c.id);
    for pair in categories.windows(2) {
        if pair[0].1.id == pair[1].1.id {
            let i = pair[0].0.max(pair[1].0);
            return Err(malformed(
                format!("key `categories[{i}].id`"),
                format!("duplicate category id {}", pair[1].1.id),
            ));
        }
    }
    let categories: Vec<CocoCategory> = categories.into_iter().map(|(_, c)| c).collect();
    let class_of: HashMap<u64, usize> = categories.iter().enumerate().map(|(k, c)| (c.id, k)).collect();

    let mut images = Vec::with_capacity(raw.images.len());
    let mut image_of: HashMap<u64, usize> = HashMap::with_capacity(raw.images.len());
    for (i, im) in raw.images.into_iter().enumerate() {
        if image_of.insert(im.id, i).is_some() {
            return Err(malformed(format!("key `images[{i}].id`"), format!("duplicate image id {}", im.id)));
        }
        if im.width == 0 || im.height == 0 {
            return Err(malformed(
                format!("key `images[{i}].{}`", if im.width == 0 { "width" } else { "height" }),
                format!("an empty image ({}x{})", im.width, im.height),
            ));
        }
        if im.width.checked_mul(im.height).is_none_or(|n| n > MAX_IMAGE_PIXELS) {
            return Err(malformed(
                format!("key `images[{i}].width`"),
                format!("a {}x{} image exceeds the limit of {MAX_IMAGE_PIXELS} pixels", im.width, im.height),
            ));
        }
        let name = Path::new(&im.file_name);
        if im.file_name.is_empty() || !name.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(malformed(
                format!("key `images[{i}].file_name`"),
                format!("`{}` is not a file name relative to the split folder", im.file_name),
            ));
        }
        images.push(CocoImage {
            id: im.id,
            file_name: im.file_name,
            width: im.width,
            height: im.height,
            annotations: Vec::new(),
        });
    }

    for (i, a) in raw.annotations.into_iter().enumerate() {
        let key = |field: &str| format!("key `annotations[{i}].{field}`");
        let &slot = image_of
            .get(&a.image_id)
            .ok_or_else(|| malformed(key("image_id"), format!("image id {} is not in `images`", a.image_id)))?;
        let &class = class_of.get(&a.category_id).ok_or_else(|| {
            malformed(
                key("category_id"),
                format!(
                    "category id {} is not in `categories` (ids: {})",
                    a.category_id,
                    categories.iter().map(|c| c.id.to_string()).collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        let bbox = BoundingBox::from(a.bbox);
        if !bbox.is_valid() {
            return Err(malformed(
                key("bbox"),
                format!("{:?} is not a box [x, y, w, h] with finite values and w, h ≥ 0", a.bbox),
            ));
        }
        let iscrowd = match a.iscrowd {
            0 => false,
            1 => true,
            v => return Err(malformed(key("iscrowd"), format!("{v} is not 0 or 1"))),
        };
        let area = a.area.unwrap_or_else(|| bbox.area());
        if !(area.is_finite() && area >= 0.0) {
            return Err(malformed(key("area"), format!("{area} is not a finite non-negative number")));
        }
        let image = &mut images[slot];
        let segmentation = match a.segmentation {
            None => None,
            Some(RawSegmentation::Polygons(polygons)) => {
                for (k, p) in polygons.iter().enumerate() {
                    if p.len() % 2 != 0 {
                        return Err(malformed(
                            key(&format!("segmentation[{k}]")),
                            format!("a polygon of {} values; x, y pairs expected", p.len()),
                        ));
                    }
                    if p.iter().any(|v| !v.is_finite()) {
                        return Err(malformed(key(&format!("segmentation[{k}]")), "a non-finite coordinate".into()));
                    }
                }
                Some(Segmentation::Polygons(polygons))
            }
            Some(RawSegmentation::Rle(rle)) => {
                let [h, w] = rle.size;
                if (h, w) != (image.height, image.width) {
                    return Err(malformed(
                        key("segmentation.size"),
                        format!(
                            "[{h}, {w}] is not the size [height, width] = [{}, {}] of image {}",
                            image.height, image.width, image.id
                        ),
                    ));
                }
                let counts = match rle.counts {
                    RawCounts::Runs(runs) => runs,
                    RawCounts::Compressed(s) => {
                        decode_rle_string(&s).map_err(|reason| malformed(key("segmentation.counts"), reason))?
                    }
                };
                let total = counts.iter().try_fold(0u64, |t, &r| t.checked_add(r));
                if total.is_none_or(|t| t > (h * w) as u64) {
                    return Err(malformed(
                        key("segmentation.counts"),
                        format!("the runs cover more than the {h}x{w} = {} pixels of the mask", h * w),
                    ));
                }
                Some(Segmentation::Rle { height: h, width: w, counts })
            }
        };
        image.annotations.push(CocoAnnotation { index: i, id: a.id, class, bbox, iscrowd, area, segmentation });
    }
    Ok(CocoIndex { path: path.to_path_buf(), categories, images })
}
