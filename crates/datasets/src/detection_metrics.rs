//! Dense-prediction metrics: object detection (PASCAL VOC AP at IoU 0.5, COCO AP/AR) and
//! semantic segmentation (per-class IoU, mIoU, pixel accuracy).
//!
//! Plain inputs: slices of [`GroundTruth`] and [`Detection`] records with `f64` boxes in the
//! COCO `[x, y, w, h]` pixel convention, and flat `u32` label maps for segmentation. Both
//! record types deserialise from COCO JSON (`image_id`, `category_id`, `bbox`, `area`,
//! `iscrowd` as 0/1, `score`; other fields are ignored), so a COCO annotation list or a COCO
//! results file can be read with `serde_json` directly.
//!
//! # Box overlap
//!
//! A box covers the continuous region `[x, x + w] × [y, y + h]`; its area is `w · h` (no "+1":
//! COCO's convention). For a detection `D` and a ground truth `G`,
//!
//! ```text
//! IoU(D, G)       = |D ∩ G| / (|D| + |G| − |D ∩ G|)
//! crowd IoU(D, G) = |D ∩ G| / |D|                (G an `iscrowd` region)
//! ```
//!
//! with `|D ∩ G| = 0` unless both the overlap width and height are positive; evaluated in the
//! same order of floating-point operations as pycocotools' `bbIou`, so an IoU that lands
//! exactly on a threshold compares the same way.
//!
//! # Detection: [`voc_ap`]
//!
//! PASCAL VOC AP at IoU 0.5 with the all-point interpolation of VOC2010 and later
//! (Everingham et al. 2010, 2015), as the PASCAL VOC devkit's `VOCevaldet.m` / `VOCap.m`:
//! per category, detections sorted by descending score; each takes the ground truth of its
//! image with the largest IoU and is a true positive when `IoU ≥ 0.5` and that ground truth is
//! not yet taken, otherwise a false positive. With `r_i`, `p_i` the recall and precision after
//! the `i`-th detection,
//!
//! ```text
//! p̂(r) = max { p_i : r_i ≥ r }            (monotone precision envelope)
//! AP    = Σ_i (r_i − r_{i−1}) · p̂(r_i)     (over the points where recall changes, r_0 = 0)
//! ```
//!
//! and mAP is the mean of AP over categories with at least one non-crowd ground truth.
//!
//! # Detection: [`coco_eval`]
//!
//! COCO box AP/AR (Lin et al. 2014) exactly as pycocotools `COCOeval` with `iouType='bbox'`
//! and default parameters: IoU thresholds `t ∈ {0.50, 0.55, …, 0.95}`, 101 recall points
//! `r ∈ {0, 0.01, …, 1}`, at most 1/10/100 detections per image and category, area ranges
//! all/small/medium/large. For each category `k`, area range and detection cap,
//!
//! ```text
//! AP_k = 1/(10·101) Σ_t Σ_r p̂_{t,k}(r)     p̂(r) = envelope precision at the first ranked
//!                                           detection whose recall ≥ r (0 if none reaches r)
//! AR_k = 1/10 Σ_t recall_{t,k}              (recall with all capped detections)
//! ```
//!
//! and each of the 12 summary numbers is the mean over the categories that have a
//! non-ignored ground truth in that area range (`-1` when none has).
//!
//! # Segmentation: [`segmentation_scores`], [`ConfusionMatrix`]
//!
//! With `n_ij` the number of pixels of target class `i` predicted as `j` (pixels whose target
//! is the ignore index are not counted), following Long, Shelhamer & Darrell (2015):
//!
//! ```text
//! IoU_c          = n_cc / (Σ_j n_cj + Σ_i n_ic − n_cc)   (undefined when the denominator is 0)
//! mIoU           = mean of IoU_c over classes with a defined IoU
//! pixel accuracy = Σ_c n_cc / Σ_ij n_ij
//! ```
//!
//! Over a data set the counts `n_ij` are summed over all images first ([`ConfusionMatrix::add`]
//! per image, then [`ConfusionMatrix::scores`]); the dataset mIoU is *not* the mean of the
//! per-image mIoUs. This is the convention of the PASCAL VOC segmentation benchmark and of
//! mmsegmentation's `mean_iou` (which also skips classes with an undefined IoU).

use std::cmp::Ordering;
use std::collections::BTreeMap;

/// What can be wrong with the inputs of a metric.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// A box has a non-finite coordinate or a negative width or height.
    #[error("{kind} {index}: bounding box {bbox:?} has a non-finite coordinate or a negative width or height")]
    InvalidBox {
        /// `"ground truth"` or `"detection"`.
        kind: &'static str,
        /// Position in the input slice.
        index: usize,
        /// The offending box.
        bbox: BoundingBox,
    },
    /// A detection score is NaN.
    #[error("detection {index}: score is NaN")]
    InvalidScore {
        /// Position in the input slice.
        index: usize,
    },
    /// A ground-truth area is negative or not finite.
    #[error("ground truth {index}: area {area} is not a finite non-negative number")]
    InvalidArea {
        /// Position in the input slice.
        index: usize,
        /// The offending area.
        area: f64,
    },
    /// The predicted and target label maps differ in length.
    #[error("segmentation: {predicted} predicted labels but {target} target labels")]
    LengthMismatch {
        /// Length of the predicted labels.
        predicted: usize,
        /// Length of the target labels.
        target: usize,
    },
    /// A label is not below the class count (and, for a target, is not the ignore index).
    #[error("segmentation: pixel {index}: {which} label {label} is outside 0..{classes}")]
    LabelOutOfRange {
        /// Pixel position in the label map.
        index: usize,
        /// `"predicted"` or `"target"`.
        which: &'static str,
        /// The offending label.
        label: u32,
        /// The class count.
        classes: usize,
    },
    /// Two confusion matrices with different class counts or ignore indices.
    #[error(
        "cannot merge a confusion matrix ({other_classes} classes, ignore {other_ignore:?}) into one with {classes} classes, ignore {ignore:?}"
    )]
    IncompatibleMatrices {
        /// Class count of the receiving matrix.
        classes: usize,
        /// Ignore index of the receiving matrix.
        ignore: Option<u32>,
        /// Class count of the merged matrix.
        other_classes: usize,
        /// Ignore index of the merged matrix.
        other_ignore: Option<u32>,
    },
}

// ---------------------------------------------------------------------------------------------
// Boxes and records

/// An axis-aligned box in COCO's `[x, y, w, h]` convention: top-left corner `(x, y)`, width
/// `w` and height `h` in pixels, covering the continuous region `[x, x + w] × [y, y + h]`.
///
/// (De)serialises as the COCO array `[x, y, w, h]`. A PASCAL VOC box with inclusive 1-based
/// pixel corners `(x1, y1, x2, y2)` is `[x1 − 1, y1 − 1, x2 − x1 + 1, y2 − y1 + 1]` here, which
/// gives the same IoU as the devkit's "+1" areas.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(from = "[f64; 4]", into = "[f64; 4]")]
pub struct BoundingBox {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width (≥ 0).
    pub w: f64,
    /// Height (≥ 0).
    pub h: f64,
}

impl From<[f64; 4]> for BoundingBox {
    fn from([x, y, w, h]: [f64; 4]) -> Self {
        BoundingBox { x, y, w, h }
    }
}

impl From<BoundingBox> for [f64; 4] {
    fn from(b: BoundingBox) -> Self {
        [b.x, b.y, b.w, b.h]
    }
}

impl BoundingBox {
    /// The box with top-left corner `(x, y)`, width `w` and height `h`.
    pub const fn new(x: f64, y: f64, w: f64, h: f64) -> Self {
        BoundingBox { x, y, w, h }
    }

    /// The box spanning the corners `(x1, y1)` (top left) and `(x2, y2)` (bottom right).
    pub fn from_corners(x1: f64, y1: f64, x2: f64, y2: f64) -> Self {
        BoundingBox { x: x1, y: y1, w: x2 - x1, h: y2 - y1 }
    }

    /// `w · h`.
    pub fn area(&self) -> f64 {
        self.w * self.h
    }

    /// All coordinates finite, width and height non-negative: what the metrics accept.
    pub fn is_valid(&self) -> bool {
        [self.x, self.y, self.w, self.h].iter().all(|v| v.is_finite()) && self.w >= 0.0 && self.h >= 0.0
    }

    /// Intersection over union with `other`: `|A ∩ B| / (|A| + |B| − |A ∩ B|)`, plain areas
    /// (no +1), 0 for boxes that do not overlap with a positive width and height.
    pub fn iou(&self, other: &BoundingBox) -> f64 {
        overlap(self, other, false)
    }

    /// COCO's crowd overlap of this detection with a crowd region: `|D ∩ G| / |D|`, the
    /// fraction of the detection inside the region (pycocotools `iou(..., iscrowd=1)`).
    pub fn crowd_iou(&self, crowd: &BoundingBox) -> f64 {
        overlap(self, crowd, true)
    }
}

/// pycocotools' `bbIou` for one pair, in its order of operations.
fn overlap(d: &BoundingBox, g: &BoundingBox, crowd: bool) -> f64 {
    let w = (d.w + d.x).min(g.w + g.x) - d.x.max(g.x);
    if w <= 0.0 {
        return 0.0;
    }
    let h = (d.h + d.y).min(g.h + g.y) - d.y.max(g.y);
    if h <= 0.0 {
        return 0.0;
    }
    let i = w * h;
    let u = if crowd { d.area() } else { d.area() + g.area() - i };
    i / u
}

/// An annotated object (COCO annotation fields).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GroundTruth {
    /// Image the object is in (`image_id`).
    #[serde(rename = "image_id")]
    pub image: u64,
    /// Category (`category_id`).
    #[serde(rename = "category_id")]
    pub category: u32,
    /// The object's box.
    pub bbox: BoundingBox,
    /// A crowd region (COCO `iscrowd`, 0 or 1 in JSON; default 0). [`coco_eval`]: never
    /// counted, matched with the crowd overlap, detections matched to it ignored;
    /// [`voc_ap`]: treated as a VOC "difficult" object.
    #[serde(default, deserialize_with = "crowd_from_json", serialize_with = "crowd_to_json")]
    pub iscrowd: bool,
    /// Object area in pixels, deciding its COCO area range (COCO: the segmentation mask's
    /// area, not the box's; use `bbox.area()` when there is no mask).
    pub area: f64,
}

/// A predicted object (COCO results-file fields).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Detection {
    /// Image the detection is in (`image_id`).
    #[serde(rename = "image_id")]
    pub image: u64,
    /// Predicted category (`category_id`).
    #[serde(rename = "category_id")]
    pub category: u32,
    /// Predicted box.
    pub bbox: BoundingBox,
    /// Confidence; higher ranks first.
    pub score: f64,
}

fn crowd_from_json<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(u64),
    }
    match <Flag as serde::Deserialize>::deserialize(deserializer)? {
        Flag::Bool(b) => Ok(b),
        Flag::Int(0) => Ok(false),
        Flag::Int(1) => Ok(true),
        Flag::Int(n) => Err(serde::de::Error::custom(format!("iscrowd must be 0 or 1, got {n}"))),
    }
}

fn crowd_to_json<S: serde::Serializer>(crowd: &bool, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u8(u8::from(*crowd))
}

fn validate(ground_truth: &[GroundTruth], detections: &[Detection]) -> Result<(), MetricsError> {
    for (index, g) in ground_truth.iter().enumerate() {
        if !g.bbox.is_valid() {
            return Err(MetricsError::InvalidBox { kind: "ground truth", index, bbox: g.bbox });
        }
        if !(g.area.is_finite() && g.area >= 0.0) {
            return Err(MetricsError::InvalidArea { index, area: g.area });
        }
    }
    for (index, d) in detections.iter().enumerate() {
        if !d.bbox.is_valid() {
            return Err(MetricsError::InvalidBox { kind: "detection", index, bbox: d.bbox });
        }
        if d.score.is_nan() {
            return Err(MetricsError::InvalidScore { index });
        }
    }
    Ok(())
}

/// Descending score; equal scores compare equal so a stable sort keeps their order (NaN is
/// rejected before any sort).
fn by_score_desc(a: f64, b: f64) -> Ordering {
    b.partial_cmp(&a).unwrap_or(Ordering::Equal)
}

/// The sorted distinct categories of the ground truth.
fn gt_categories(ground_truth: &[GroundTruth]) -> Vec<u32> {
    let mut categories: Vec<u32> = ground_truth.iter().map(|g| g.category).collect();
    categories.sort_unstable();
    categories.dedup();
    categories
}

// ---------------------------------------------------------------------------------------------
// PASCAL VOC

/// IoU a detection needs to be a true positive in [`voc_ap`] (inclusive: `IoU ≥ 0.5`).
pub const VOC_IOU_THRESHOLD: f64 = 0.5;

/// Result of [`voc_ap`].
#[derive(Clone, Debug, PartialEq)]
pub struct VocSummary {
    /// AP at IoU 0.5 of every ground-truth category with at least one non-crowd object.
    pub category_ap: BTreeMap<u32, f64>,
    /// Mean of `category_ap`; `None` when it is empty.
    pub map: Option<f64>,
}

/// PASCAL VOC mAP at IoU 0.5 with all-point interpolation (VOC2010+), as the PASCAL VOC
/// devkit's `VOCevaldet.m` and `VOCap.m`.
///
/// Per ground-truth category: the detections of that category (all images) are sorted by
/// descending score with a stable sort, so tied scores keep their input order (as MATLAB's
/// `sort` in the devkit). Each detection takes the ground truth of its image and category with
/// the largest IoU (the first one in input order on ties, as the devkit's `if ov > ovmax`):
///
/// * `IoU ≥ 0.5` — the devkit's `ovmax >= VOCopts.minoverlap`, followed here; the common
///   Python port (`voc_eval.py`) uses `ovmax > ovthresh`, which differs only at exactly 0.5 —
///   and that object not yet taken: true positive, the object is taken;
/// * `IoU ≥ 0.5` and the object already taken: false positive (the detection does not fall
///   back to its second-best object);
/// * `IoU ≥ 0.5` to an `iscrowd` object: neither (the devkit's "difficult" objects);
/// * otherwise, including detections on images without an object of the category: false
///   positive.
///
/// IoU is the plain-area [`BoundingBox::iou`] for every object, crowd or not. Recall is
/// `TP / npos` with `npos` the non-crowd objects of the category, precision
/// `TP / max(TP + FP, ε)`, and AP is [`average_precision_all_point`]. Categories without a
/// non-crowd object get no AP and are left out of the mean; detections of categories absent
/// from the ground truth are ignored.
pub fn voc_ap(ground_truth: &[GroundTruth], detections: &[Detection]) -> Result<VocSummary, MetricsError> {
    validate(ground_truth, detections)?;
    let mut category_ap = BTreeMap::new();
    for category in gt_categories(ground_truth) {
        let mut objects: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (i, g) in ground_truth.iter().enumerate().filter(|(_, g)| g.category == category) {
            objects.entry(g.image).or_default().push(i);
        }
        let positives = ground_truth.iter().filter(|g| g.category == category && !g.iscrowd).count();
        if positives == 0 {
            continue;
        }
        let mut ranked: Vec<&Detection> = detections.iter().filter(|d| d.category == category).collect();
        ranked.sort_by(|a, b| by_score_desc(a.score, b.score));
        let mut taken = vec![false; ground_truth.len()];
        let (mut tp, mut fp) = (0.0_f64, 0.0_f64);
        let mut recall = Vec::with_capacity(ranked.len());
        let mut precision = Vec::with_capacity(ranked.len());
        for d in ranked {
            let mut best = f64::NEG_INFINITY;
            let mut best_object = None;
            for &j in objects.get(&d.image).map(Vec::as_slice).unwrap_or_default() {
                let ov = d.bbox.iou(&ground_truth[j].bbox);
                if ov > best {
                    best = ov;
                    best_object = Some(j);
                }
            }
            match best_object {
                // A crowd ("difficult") object: neither TP nor FP.
                Some(j) if best >= VOC_IOU_THRESHOLD && ground_truth[j].iscrowd => {}
                Some(j) if best >= VOC_IOU_THRESHOLD && !taken[j] => {
                    taken[j] = true;
                    tp += 1.0;
                }
                _ => fp += 1.0,
            }
            recall.push(tp / positives as f64);
            precision.push(tp / (tp + fp).max(f64::EPSILON));
        }
        category_ap.insert(category, average_precision_all_point(&recall, &precision));
    }
    let map = (!category_ap.is_empty()).then(|| category_ap.values().sum::<f64>() / category_ap.len() as f64);
    Ok(VocSummary { category_ap, map })
}

/// Area under the monotone precision envelope (PASCAL VOC devkit `VOCap.m`, VOC2010+):
/// with sentinels `r = [0, recall…, 1]` and `p = [0, precision…, 0]`, `p` is replaced by its
/// running maximum from the right, and `AP = Σ (r_i − r_{i−1}) · p_i` over the `i` where
/// recall changes.
///
/// `recall` and `precision` are the values after each ranked detection, recall
/// non-decreasing; they are paired up to the shorter of the two.
pub fn average_precision_all_point(recall: &[f64], precision: &[f64]) -> f64 {
    debug_assert_eq!(recall.len(), precision.len(), "one recall and one precision per detection");
    let n = recall.len().min(precision.len());
    let mut mrec = Vec::with_capacity(n + 2);
    let mut mpre = Vec::with_capacity(n + 2);
    mrec.push(0.0);
    mpre.push(0.0);
    mrec.extend_from_slice(&recall[..n]);
    mpre.extend_from_slice(&precision[..n]);
    mrec.push(1.0);
    mpre.push(0.0);
    for i in (0..mpre.len() - 1).rev() {
        mpre[i] = mpre[i].max(mpre[i + 1]);
    }
    (1..mrec.len()).filter(|&i| mrec[i] != mrec[i - 1]).map(|i| (mrec[i] - mrec[i - 1]) * mpre[i]).sum()
}

// ---------------------------------------------------------------------------------------------
// COCO

/// Names of [`CocoSummary::stats`], in order (pycocotools `summarize()`).
pub const COCO_STAT_NAMES: [&str; 12] =
    ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"];

/// Detection caps per image and category (pycocotools `maxDets`).
pub const COCO_MAX_DETS: [usize; 3] = [1, 10, 100];

/// Object area ranges `[lo, hi]`, inclusive at both ends (pycocotools `areaRng`): all, small
/// (< 32²), medium (32²..96²), large (> 96²). An area of exactly 32² or 96² is in both
/// neighbouring ranges, as in pycocotools.
pub const COCO_AREA_RANGES: [(f64, f64); 4] = [(0.0, 1e10), (0.0, 1024.0), (1024.0, 9216.0), (9216.0, 1e10)];

/// Labels of [`COCO_AREA_RANGES`].
pub const COCO_AREA_LABELS: [&str; 4] = ["all", "small", "medium", "large"];

const T: usize = 10;
const R: usize = 101;
const A: usize = COCO_AREA_RANGES.len();
const M: usize = COCO_MAX_DETS.len();

/// `np.linspace(start, stop, N)`, bit for bit: `i · step + start` with `step = (stop −
/// start) / (N − 1)`, and the last value set to `stop`.
fn linspace<const N: usize>(start: f64, stop: f64) -> [f64; N] {
    let step = (stop - start) / (N - 1) as f64;
    let mut out = [0.0; N];
    for (i, v) in out.iter_mut().enumerate() {
        *v = i as f64 * step + start;
    }
    out[N - 1] = stop;
    out
}

/// The 10 IoU thresholds 0.50:0.05:0.95, bit-identical to pycocotools'
/// `np.linspace(.5, 0.95, 10)` (the ninth is `0.8999999999999999`).
pub fn coco_iou_thresholds() -> [f64; T] {
    linspace(0.5, 0.95)
}

/// The 101 recall points 0:0.01:1, bit-identical to pycocotools' `np.linspace(0, 1, 101)`
/// (e.g. the 36th is `0.35000000000000003`, which matters where a recall equals 0.35).
pub fn coco_recall_thresholds() -> [f64; R] {
    linspace(0.0, 1.0)
}

/// Result of [`coco_eval`].
#[derive(Clone, Debug, PartialEq)]
pub struct CocoSummary {
    /// The 12 numbers of pycocotools `summarize()`, named by [`COCO_STAT_NAMES`]: AP (IoU
    /// .50:.95), AP50, AP75, AP small/medium/large, AR with 1/10/100 detections, AR
    /// small/medium/large (100 detections); `-1.0` where no category has a non-ignored
    /// ground truth (pycocotools' convention).
    pub stats: [f64; 12],
    /// AP (IoU .50:.95, all areas, 100 detections) of every ground-truth category; `None`
    /// for a category with only crowd objects. `stats[0]` is the mean of the defined ones.
    pub category_ap: BTreeMap<u32, Option<f64>>,
}

impl CocoSummary {
    /// AP at IoU .50:.95 (the COCO "AP"), `stats[0]`.
    pub fn ap(&self) -> f64 {
        self.stats[0]
    }

    /// AP at IoU 0.5, `stats[1]`.
    pub fn ap50(&self) -> f64 {
        self.stats[1]
    }

    /// AP at IoU 0.75, `stats[2]`.
    pub fn ap75(&self) -> f64 {
        self.stats[2]
    }
}

/// Per IoU threshold: the interpolated precision at the 101 recall points, and the final
/// recall (pycocotools `eval['precision']` / `eval['recall']` of one category, area range
/// and detection cap).
type Curves = (Box<[[f64; R]; T]>, [f64; T]);

/// Matching of one image and category in one area range (pycocotools `evaluateImg`).
struct ImageEval {
    /// Scores of the kept detections (at most 100), highest first.
    scores: Vec<f64>,
    /// Per detection and IoU threshold: matched to a ground truth.
    matched: Vec<[bool; T]>,
    /// Per detection and IoU threshold: left out of TP and FP counts.
    ignored: Vec<[bool; T]>,
    /// Ground truths not ignored in this area range.
    regular: usize,
}

/// COCO box evaluation, exactly as pycocotools `COCOeval(gt, dt, 'bbox')` followed by
/// `evaluate()`, `accumulate()` and `summarize()` with the default parameters.
///
/// The evaluated categories are those of the ground truth (detections of other categories are
/// ignored); the evaluated images are those referenced by any record (pycocotools refuses
/// detections on images missing from the ground-truth file, and counts images listed there
/// without annotations, which contribute nothing unless they have detections). Per image and
/// category (pycocotools `computeIoU`/`evaluateImg`):
///
/// 1. detections are sorted by descending score with a stable sort (input order on ties, as
///    pycocotools' `argsort(-score, kind='mergesort')`) and cut to the first 100;
/// 2. per area range, a ground truth is ignored when it is a crowd region or its `area` is
///    outside the range (`area < lo || area > hi`); the ground truths are stably reordered
///    with ignored ones last;
/// 3. per IoU threshold `t`, each detection in turn takes, among ground truths not yet taken
///    (crowd regions can be taken any number of times), the one with the largest IoU
///    `≥ min(t, 1 − 1e−10)` — crowd regions with the crowd overlap — the later one on equal
///    IoUs; once it holds a non-ignored ground truth it stops before the ignored ones. A
///    detection matched to an ignored ground truth is ignored, and so is an unmatched
///    detection whose box area `w · h` is outside the range.
///
/// Then per category, area range and cap `m` (pycocotools `accumulate`): the first `m`
/// detections of every image (in image-id order) are pooled and stably sorted by descending
/// score; ignored detections count as neither TP nor FP but keep their place in the ranked
/// list. With `npig` the non-ignored ground truths (a category with none is left out):
/// `recall = TP / npig`, `precision = TP / (TP + FP + ε)`, made monotone from the right; the
/// precision at recall point `r` is the envelope at the first ranked detection with
/// recall ≥ r (0 when recall never reaches r); the category's recall is the final one.
/// The summary numbers average these over categories, IoU thresholds and (for AP) recall
/// points.
///
/// One pycocotools quirk is not reproduced: it records matches by annotation id, so a match
/// to a ground truth whose `id` is 0 counts as no match there. Records here have no ids.
pub fn coco_eval(ground_truth: &[GroundTruth], detections: &[Detection]) -> Result<CocoSummary, MetricsError> {
    validate(ground_truth, detections)?;
    let iou_thresholds = coco_iou_thresholds();
    let recall_thresholds = coco_recall_thresholds();
    let categories = gt_categories(ground_truth);

    type Group<'a> = (Vec<&'a GroundTruth>, Vec<&'a Detection>);
    let mut groups: BTreeMap<(u32, u64), Group> = BTreeMap::new();
    for g in ground_truth {
        groups.entry((g.category, g.image)).or_default().0.push(g);
    }
    for d in detections.iter().filter(|d| categories.binary_search(&d.category).is_ok()) {
        groups.entry((d.category, d.image)).or_default().1.push(d);
    }

    // Per category, per image (in image order): the matching in each area range.
    let mut evals: Vec<Vec<[ImageEval; A]>> = categories.iter().map(|_| Vec::new()).collect();
    for ((category, _), (gts, mut dts)) in groups {
        dts.sort_by(|a, b| by_score_desc(a.score, b.score));
        dts.truncate(COCO_MAX_DETS[M - 1]);
        let ious: Vec<f64> =
            dts.iter().flat_map(|d| gts.iter().map(|g| overlap(&d.bbox, &g.bbox, g.iscrowd))).collect();
        let Ok(k) = categories.binary_search(&category) else { continue };
        evals[k].push(std::array::from_fn(|a| evaluate_image(&gts, &dts, &ious, COCO_AREA_RANGES[a], &iou_thresholds)));
    }

    // precision[k][a][m][t][r] and recall[k][a][m][t]; None where the category has no
    // non-ignored ground truth.
    let mut curves: Vec<[[Option<Curves>; M]; A]> = Vec::with_capacity(categories.len());
    for images in &evals {
        curves.push(std::array::from_fn(|a| {
            std::array::from_fn(|m| accumulate(images.iter().map(|e| &e[a]), COCO_MAX_DETS[m], &recall_thresholds))
        }));
    }

    let average = |ap: bool, t: Option<usize>, a: usize, m: usize| -> f64 {
        let (mut sum, mut count) = (0.0, 0usize);
        for (precision, recall) in curves.iter().filter_map(|c| c[a][m].as_ref()) {
            for ti in t.map_or(0..T, |t| t..t + 1) {
                if ap {
                    sum += precision[ti].iter().sum::<f64>();
                    count += R;
                } else {
                    sum += recall[ti];
                    count += 1;
                }
            }
        }
        if count == 0 { -1.0 } else { sum / count as f64 }
    };
    let stats = [
        average(true, None, 0, 2),
        average(true, Some(0), 0, 2),
        average(true, Some(5), 0, 2),
        average(true, None, 1, 2),
        average(true, None, 2, 2),
        average(true, None, 3, 2),
        average(false, None, 0, 0),
        average(false, None, 0, 1),
        average(false, None, 0, 2),
        average(false, None, 1, 2),
        average(false, None, 2, 2),
        average(false, None, 3, 2),
    ];
    let category_ap = categories
        .iter()
        .zip(&curves)
        .map(|(&c, curve)| {
            let ap = curve[0][2].as_ref().map(|(p, _)| p.iter().flatten().sum::<f64>() / (T * R) as f64);
            (c, ap)
        })
        .collect();
    Ok(CocoSummary { stats, category_ap })
}

/// pycocotools `evaluateImg` for one image, category and area range. `dts` is sorted and
/// capped; `ious[d * gts.len() + g]` in the input order of `gts`.
fn evaluate_image(
    gts: &[&GroundTruth],
    dts: &[&Detection],
    ious: &[f64],
    (lo, hi): (f64, f64),
    iou_thresholds: &[f64; T],
) -> ImageEval {
    let outside = |area: f64| area < lo || area > hi;
    let gt_ignore: Vec<bool> = gts.iter().map(|g| g.iscrowd || outside(g.area)).collect();
    let mut order: Vec<usize> = (0..gts.len()).collect();
    order.sort_by_key(|&i| gt_ignore[i]);
    let ignore: Vec<bool> = order.iter().map(|&i| gt_ignore[i]).collect();
    let crowd: Vec<bool> = order.iter().map(|&i| gts[i].iscrowd).collect();

    let mut gt_taken = vec![[false; T]; gts.len()];
    let mut matched = vec![[false; T]; dts.len()];
    let mut ignored = vec![[false; T]; dts.len()];
    for (t, &threshold) in iou_thresholds.iter().enumerate() {
        for d in 0..dts.len() {
            let mut best = threshold.min(1.0 - 1e-10);
            let mut found: Option<usize> = None;
            for (gi, &g) in order.iter().enumerate() {
                if gt_taken[gi][t] && !crowd[gi] {
                    continue;
                }
                if let Some(m) = found
                    && !ignore[m]
                    && ignore[gi]
                {
                    break;
                }
                let iou = ious[d * gts.len() + g];
                if iou < best {
                    continue;
                }
                best = iou;
                found = Some(gi);
            }
            if let Some(m) = found {
                ignored[d][t] = ignore[m];
                matched[d][t] = true;
                gt_taken[m][t] = true;
            }
        }
    }
    for (d, det) in dts.iter().enumerate() {
        if outside(det.bbox.area()) {
            for t in 0..T {
                ignored[d][t] |= !matched[d][t];
            }
        }
    }
    ImageEval {
        scores: dts.iter().map(|d| d.score).collect(),
        matched,
        ignored,
        regular: ignore.iter().filter(|&&i| !i).count(),
    }
}

/// pycocotools `accumulate` for one category, area range and detection cap: per IoU
/// threshold, the interpolated precision at the 101 recall points and the final recall.
fn accumulate<'a>(
    images: impl Iterator<Item = &'a ImageEval>,
    max_det: usize,
    recall_thresholds: &[f64; R],
) -> Option<Curves> {
    let mut pooled: Vec<(f64, &[bool; T], &[bool; T])> = Vec::new();
    let mut regular = 0usize;
    for e in images {
        regular += e.regular;
        let n = e.scores.len().min(max_det);
        pooled.extend((0..n).map(|i| (e.scores[i], &e.matched[i], &e.ignored[i])));
    }
    if regular == 0 {
        return None;
    }
    pooled.sort_by(|a, b| by_score_desc(a.0, b.0));
    let mut precision_at = Box::new([[0.0; R]; T]);
    let mut final_recall = [0.0; T];
    let mut rc = Vec::with_capacity(pooled.len());
    let mut pr = Vec::with_capacity(pooled.len());
    for t in 0..T {
        rc.clear();
        pr.clear();
        let (mut tp, mut fp) = (0.0_f64, 0.0_f64);
        for &(_, matched, ignored) in &pooled {
            if !ignored[t] {
                if matched[t] {
                    tp += 1.0;
                } else {
                    fp += 1.0;
                }
            }
            rc.push(tp / regular as f64);
            pr.push(tp / (fp + tp + f64::EPSILON));
        }
        final_recall[t] = rc.last().copied().unwrap_or(0.0);
        for i in (1..pr.len()).rev() {
            if pr[i] > pr[i - 1] {
                pr[i - 1] = pr[i];
            }
        }
        for (q, &threshold) in precision_at[t].iter_mut().zip(recall_thresholds) {
            // np.searchsorted(rc, threshold, side='left'): the first recall ≥ threshold.
            let i = rc.partition_point(|&r| r < threshold);
            match pr.get(i) {
                Some(&p) => *q = p,
                None => break,
            }
        }
    }
    Some((precision_at, final_recall))
}

// ---------------------------------------------------------------------------------------------
// Semantic segmentation

/// Scores of a semantic segmentation (see the module docs for the definitions).
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentationScores {
    /// IoU of each class; `None` for a class absent from both prediction and target (over the
    /// counted pixels).
    pub class_iou: Vec<Option<f64>>,
    /// Mean of the defined class IoUs; `None` when no class has one (no counted pixel).
    pub mean_iou: Option<f64>,
    /// Correct pixels / counted pixels; `None` without counted pixels.
    pub pixel_accuracy: Option<f64>,
    /// Accuracy (recall) of each class, `n_cc / Σ_j n_cj`; `None` for a class absent from
    /// the target.
    pub class_accuracy: Vec<Option<f64>>,
    /// Mean of the defined class accuracies (mmsegmentation's "mAcc").
    pub mean_accuracy: Option<f64>,
    /// Counted pixels (target not the ignore index).
    pub pixels: u64,
}

/// Pixel counts `n[target][predicted]` of a segmentation, summed over any number of images:
/// [`add`](Self::add) each image, then [`scores`](Self::scores) once. The dataset mIoU is
/// computed from the summed counts, not averaged over per-image mIoUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    classes: usize,
    ignore_index: Option<u32>,
    counts: Vec<u64>,
}

impl ConfusionMatrix {
    /// An empty matrix for labels `0..classes` (allocates `classes²` counts). Pixels whose
    /// target is `ignore_index` (e.g. 255 in PASCAL VOC and Cityscapes) are skipped whatever
    /// their prediction; the ignore index may also be a class label below `classes`, in which
    /// case that class is only ever counted as a prediction.
    pub fn new(classes: usize, ignore_index: Option<u32>) -> Self {
        ConfusionMatrix { classes, ignore_index, counts: vec![0; classes * classes] }
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The ignored target label.
    pub fn ignore_index(&self) -> Option<u32> {
        self.ignore_index
    }

    /// Counts, row-major `[target][predicted]`.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Pixels of target class `target` predicted as `predicted` (0 outside the classes).
    pub fn count(&self, target: u32, predicted: u32) -> u64 {
        let (t, p) = (target as usize, predicted as usize);
        if t < self.classes && p < self.classes { self.counts[t * self.classes + p] } else { 0 }
    }

    /// Counted pixels so far.
    pub fn pixels(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds one label map: `predicted[i]` against `target[i]` (same length, any layout, e.g.
    /// a flattened `H × W` image). Every counted pixel's labels must be below the class count
    /// (the prediction at an ignored pixel is not checked). On error nothing is added.
    pub fn add(&mut self, predicted: &[u32], target: &[u32]) -> Result<(), MetricsError> {
        if predicted.len() != target.len() {
            return Err(MetricsError::LengthMismatch { predicted: predicted.len(), target: target.len() });
        }
        let classes = self.classes;
        let counted = |&(_, (_, &t)): &(usize, (&u32, &u32))| Some(t) != self.ignore_index;
        for (index, (&p, &t)) in predicted.iter().zip(target).enumerate().filter(counted) {
            if t as usize >= classes {
                return Err(MetricsError::LabelOutOfRange { index, which: "target", label: t, classes });
            }
            if p as usize >= classes {
                return Err(MetricsError::LabelOutOfRange { index, which: "predicted", label: p, classes });
            }
        }
        let ignore = self.ignore_index;
        for (&p, &t) in predicted.iter().zip(target) {
            if Some(t) != ignore {
                self.counts[t as usize * classes + p as usize] += 1;
            }
        }
        Ok(())
    }

    /// Adds the counts of `other` (e.g. from another thread); class count and ignore index
    /// must agree.
    pub fn merge(&mut self, other: &ConfusionMatrix) -> Result<(), MetricsError> {
        if other.classes != self.classes || other.ignore_index != self.ignore_index {
            return Err(MetricsError::IncompatibleMatrices {
                classes: self.classes,
                ignore: self.ignore_index,
                other_classes: other.classes,
                other_ignore: other.ignore_index,
            });
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        Ok(())
    }

    /// The scores of the counts so far (see the module docs).
    pub fn scores(&self) -> SegmentationScores {
        let c = self.classes;
        let row = |i: usize| self.counts[i * c..(i + 1) * c].iter().sum::<u64>();
        let column = |j: usize| (0..c).map(|i| self.counts[i * c + j]).sum::<u64>();
        let diagonal = |i: usize| self.counts[i * c + i];
        let ratio = |num: u64, den: u64| (den > 0).then(|| num as f64 / den as f64);
        let mean = |values: &[Option<f64>]| {
            let defined: Vec<f64> = values.iter().flatten().copied().collect();
            (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64)
        };
        let class_iou: Vec<Option<f64>> =
            (0..c).map(|i| ratio(diagonal(i), row(i) + column(i) - diagonal(i))).collect();
        let class_accuracy: Vec<Option<f64>> = (0..c).map(|i| ratio(diagonal(i), row(i))).collect();
        let pixels = self.pixels();
        SegmentationScores {
            mean_iou: mean(&class_iou),
            pixel_accuracy: ratio((0..c).map(diagonal).sum(), pixels),
            mean_accuracy: mean(&class_accuracy),
            class_iou,
            class_accuracy,
            pixels,
        }
    }
}

/// Scores of one label map (see [`ConfusionMatrix`] to sum over a data set, which is how a
/// dataset mIoU is defined). Errors as [`ConfusionMatrix::add`].
pub fn segmentation_scores(
    predicted: &[u32],
    target: &[u32],
    classes: usize,
    ignore_index: Option<u32>,
) -> Result<SegmentationScores, MetricsError> {
    let mut matrix = ConfusionMatrix::new(classes, ignore_index);
    matrix.add(predicted, target)?;
    Ok(matrix.scores())
}
