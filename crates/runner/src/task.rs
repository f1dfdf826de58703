//! What a network predicts and how its outputs are scored. The task follows from the model:
//!
//! | model              | task           | training loss                   | metrics (percent)                         |
//! |--------------------|----------------|---------------------------------|-------------------------------------------|
//! | classifiers        | classification | cross-entropy                   | `accuracy`                                |
//! | `yolo-vgg`         | detection      | YOLOv2's ([`zoo::yolo_v2_loss`]) | `map50` (VOC all-point AP at IoU 0.5), `map50_95` (COCO AP at IoU .50:.95) |
//! | `fcn-vgg`          | segmentation   | per-pixel cross-entropy         | `miou`, `pixel_accuracy`                  |
//! | `pointnet-partseg` | part segmentation | per-point cross-entropy      | `miou` (class mIoU), `instance_miou`, `miou_<category>` |
//!
//! Dense tasks need a data set with dense labels:
//! - boxes and masks (`synthetic-detection`, `voc`, `coco`): pixels of the set's ignore label
//!   (VOC's void, COCO's crowd regions) count neither in the loss nor in the mIoU, and crowd
//!   or difficult objects are not training targets and are ignored by the mAP;
//! - a part per point (`synthetic-parts3d`, `shapenet-part`; see `datasets::part_clouds` for
//!   the mIoU definitions).
//!
//! Every network's output is a `[batch, D]` vector, and its converted SNN is read the same way
//! as a classifier's: the readout's real-valued estimate of the ANN output
//! ([`snn::readout::ReadoutState::outputs`], the mean of the output layer's steps) is decoded
//! into boxes, per-pixel or per-point classes exactly as the ANN's output is. There is no
//! special case in the converter.
//!
//! The task's *primary* metric (`accuracy`, `map50` or `miou`) is the one the conversion
//! `loss` rows (ANN − SNN) and a training run's per-epoch test column report.

use anyhow::{Result, bail};
use burn::prelude::*;
use datasets::detection_metrics::{BoundingBox, ConfusionMatrix, Detection, GroundTruth, coco_eval, voc_ap};
use datasets::part_clouds::{PartIoU, predict_parts, shape_iou};
use datasets::synthetic_detection::SyntheticDetectionSet;
use zoo::{Network, YoloLayout};

use crate::data::Samples;

/// Boxes scoring below this (objectness × class probability) are dropped before NMS.
pub const SCORE_THRESHOLD: f32 = 0.005;
/// Non-maximum suppression: a box overlapping a better-scoring box of its class by more than
/// this IoU is dropped.
pub const NMS_IOU: f32 = 0.45;
/// At most this many boxes per image are scored (COCO's largest cap).
pub const MAX_DETECTIONS: usize = 100;

/// The `detections` figure draws the first this many test images...
pub const FIGURE_IMAGES: usize = 4;
/// ... with their boxes scoring at least this (after NMS), at most [`FIGURE_BOXES`] each.
pub const FIGURE_MIN_SCORE: f64 = 0.3;
/// See [`FIGURE_MIN_SCORE`].
pub const FIGURE_BOXES: usize = 8;

/// The metrics of one drawn box, in this order: corners in pixels, class, score.
pub const BOX_METRICS: [&str; 6] = ["box_x1", "box_y1", "box_x2", "box_y2", "box_class", "box_score"];

/// What the network predicts.
#[derive(Clone, Debug)]
pub enum Task {
    /// One class per sample, scored by accuracy.
    Classification,
    /// Boxes from a YOLO-style grid output.
    Detection(YoloLayout),
    /// A class per pixel: `labels` maps (background first) of `size × size` pixels.
    Segmentation {
        /// Classes of the per-pixel output, the background included.
        labels: usize,
        /// Image side.
        size: usize,
    },
    /// A part per point of a cloud: `parts` global part ids scored at each of `points` points.
    PartSegmentation {
        /// Global part ids of the per-point output.
        parts: usize,
        /// Points per cloud.
        points: usize,
    },
}

impl Task {
    /// The task of `model` on samples like `samples`; dense models need dense samples.
    pub fn of(model: &Network, samples: &Samples) -> Result<Self> {
        let task = match model {
            Network::Detector(d) => Task::Detection(d.layout().clone()),
            Network::Segmenter(s) => {
                let [_, h, _] = samples.shape();
                Task::Segmentation { labels: s.labels(), size: h }
            }
            Network::PartSegmenter(s) => {
                let [_, points, _] = samples.shape();
                Task::PartSegmentation { parts: s.parts(), points }
            }
            _ => Task::Classification,
        };
        match (&task, samples) {
            (Task::Classification, Samples::Dense(d)) => bail!(
                "a classifier cannot learn `{}`: its samples carry boxes and masks, not one label each; use a \
                 detection (`yolo-vgg`) or segmentation (`fcn-vgg`) model",
                d.name
            ),
            (Task::Detection(_) | Task::Segmentation { .. }, s) if !matches!(s, Samples::Dense(_)) => bail!(
                "detection and segmentation models need a data set with boxes and masks (`{}`, `voc`, `coco`)",
                datasets::synthetic_detection::NAME
            ),
            (Task::PartSegmentation { parts, .. }, s) => match s {
                Samples::Parts(set) if set.num_parts() == *parts => Ok(task),
                Samples::Parts(set) => {
                    bail!("the part segmenter scores {parts} parts per point, the data set has {}", set.num_parts())
                }
                _ => bail!(
                    "a part segmenter needs point clouds with a part label per point ({})",
                    datasets::PART_DATASET_NAMES.join(", ")
                ),
            },
            _ => Ok(task),
        }
    }

    /// The metric `loss` rows and the training log report: `accuracy`, `map50` or `miou`.
    pub fn primary_metric(&self) -> &'static str {
        match self {
            Task::Classification => "accuracy",
            Task::Detection(_) => "map50",
            Task::Segmentation { .. } | Task::PartSegmentation { .. } => "miou",
        }
    }

    /// Whether the task scores the output's values (not only its argmax).
    pub fn is_dense(&self) -> bool {
        !matches!(self, Task::Classification)
    }

    /// The training loss of a dense task on the samples `indices` of `set`; `output`
    /// `[batch, D]` (the network's output on those samples, in that order).
    pub fn dense_loss(&self, output: Tensor<2>, set: &Samples, indices: &[usize]) -> Tensor<1> {
        if let (Task::PartSegmentation { parts, points }, Samples::Parts(set)) = (self, set) {
            let labels: Vec<u32> =
                indices.iter().flat_map(|&i| set.sample_parts(i).iter().map(|&p| u32::from(p))).collect();
            // Per-point cross-entropy: the part planes are the class planes of a points × 1 image.
            return zoo::pixel_cross_entropy(output, &labels, *parts, [*points, 1], None);
        }
        let Samples::Dense(set) = set else { unreachable!("Task::of pairs dense tasks with dense samples") };
        match self {
            Task::PartSegmentation { .. } => unreachable!("Task::of pairs part segmentation with part samples"),
            Task::Classification => unreachable!("classification uses the cross-entropy of the labels"),
            Task::Detection(layout) => {
                let targets: Vec<Vec<zoo::TargetBox>> = indices.iter().map(|&i| target_boxes(set, i)).collect();
                zoo::yolo_v2_loss(output, &targets, layout, set.image_size as f32)
            }
            Task::Segmentation { labels, size } => {
                let mut pixels = Vec::with_capacity(indices.len() * size * size);
                for &i in indices {
                    pixels.extend_from_slice(&set.samples[i].mask);
                }
                // Pixels of the set's ignore label (VOC void, COCO crowd) do not count.
                zoo::pixel_cross_entropy(output, &pixels, *labels, [*size, *size], set.ignore_label)
            }
        }
    }

    /// The task's metrics of the outputs `outputs` (`[n × D]`, row k the output on sample
    /// `indices[k]` of `set`), as (metric, percent) pairs: the primary metric first.
    pub fn score(&self, outputs: &[f32], set: &Samples, indices: &[usize]) -> Result<Vec<(String, f64)>> {
        let n = indices.len().max(1);
        let width = outputs.len() / n;
        if let (Task::PartSegmentation { points, .. }, Samples::Parts(set)) = (self, set) {
            return Ok(part_scores(set, outputs, indices, width, *points));
        }
        let Samples::Dense(set) = set else { bail!("dense metrics need dense samples") };
        let scores = match self {
            Task::PartSegmentation { .. } => bail!("part segmentation needs point clouds with part labels"),
            Task::Classification => bail!("classification is scored by the readout's predictions"),
            Task::Detection(layout) => {
                let mut truth = Vec::new();
                let mut found = Vec::new();
                for (k, (&i, row)) in indices.iter().zip(outputs.chunks(width.max(1))).enumerate() {
                    truth.extend(
                        set.samples[i].objects.iter().map(|o| GroundTruth { image: k as u64, ..o.ground_truth(0) }),
                    );
                    found.extend(detections(row, layout, set.image_size, k as u64));
                }
                let voc = voc_ap(&truth, &found)?;
                let coco = coco_eval(&truth, &found)?;
                vec![("map50", 100.0 * voc.map.unwrap_or(0.0)), ("map50_95", 100.0 * coco.ap().max(0.0))]
            }
            Task::Segmentation { labels, size } => {
                let mut matrix = ConfusionMatrix::new(*labels, set.ignore_label);
                for (&i, row) in indices.iter().zip(outputs.chunks(width.max(1))) {
                    let predicted = zoo::segmentation_predict(row, *labels, [*size, *size])?;
                    matrix.add(&predicted, &set.samples[i].mask)?;
                }
                let scores = matrix.scores();
                vec![
                    ("miou", 100.0 * scores.mean_iou.unwrap_or(0.0)),
                    ("pixel_accuracy", 100.0 * scores.pixel_accuracy.unwrap_or(0.0)),
                ]
            }
        };
        Ok(scores.into_iter().map(|(m, v)| (m.to_string(), v)).collect())
    }

    /// Rows of the `detections` figure (detectors only; empty otherwise): for each of the first
    /// [`FIGURE_IMAGES`] evaluated images `k`, its confident boxes (layer `image <k> box <j>`,
    /// the [`BOX_METRICS`]) and, with `truth`, its ground-truth objects (layer
    /// `image <k> truth <j>`, score 1) and the image side (`image_size`, layer "").
    pub fn figure_rows(
        &self,
        outputs: &[f32],
        set: &Samples,
        indices: &[usize],
        truth: bool,
    ) -> Vec<(String, &'static str, f64)> {
        let (Task::Detection(layout), Samples::Dense(set)) = (self, set) else { return Vec::new() };
        let width = outputs.len() / indices.len().max(1);
        let mut rows = Vec::new();
        if truth {
            rows.push((String::new(), "image_size", set.image_size as f64));
        }
        for (k, (&i, row)) in indices.iter().zip(outputs.chunks(width.max(1))).enumerate().take(FIGURE_IMAGES) {
            let mut push = |kind: &str, j: usize, b: &BoundingBox, class: f64, score: f64| {
                let values = [b.x, b.y, b.x + b.w, b.y + b.h, class, score];
                for (metric, v) in BOX_METRICS.iter().zip(values) {
                    rows.push((format!("image {k} {kind} {j}"), *metric, v));
                }
            };
            if truth {
                for (j, o) in set.samples[i].objects.iter().enumerate() {
                    push("truth", j, &o.bbox, o.class as f64, 1.0);
                }
            }
            let found = detections(row, layout, set.image_size, k as u64);
            for (j, d) in found.iter().filter(|d| d.score >= FIGURE_MIN_SCORE).take(FIGURE_BOXES).enumerate() {
                push("box", j, &d.bbox, (d.category - 1) as f64, d.score);
            }
        }
        rows
    }
}

/// Part-segmentation metrics of the per-point scores `outputs` (`[n × parts·points]`, row k
/// for sample `indices[k]`), percent: `miou` (class mIoU, the mean of the categories' mIoUs
/// over the categories present), `instance_miou` (mean over shapes) and `miou_<category>` per
/// category present (lower case). Predictions are restricted to each shape's category's parts.
fn part_scores(
    set: &datasets::PartCloudSet,
    outputs: &[f32],
    indices: &[usize],
    width: usize,
    points: usize,
) -> Vec<(String, f64)> {
    let mut iou = PartIoU::new(set.cloud.num_classes);
    for (&i, row) in indices.iter().zip(outputs.chunks(width.max(1))) {
        let parts = set.parts_of_sample(i);
        let predicted = predict_parts(row, points, parts.clone());
        iou.add(usize::from(set.cloud.labels[i]), shape_iou(&predicted, set.sample_parts(i), parts));
    }
    let mut out = vec![
        ("miou".to_string(), 100.0 * iou.class_miou().unwrap_or(0.0)),
        ("instance_miou".to_string(), 100.0 * iou.instance_miou().unwrap_or(0.0)),
    ];
    for (name, value) in set.cloud.class_names.iter().zip(iou.per_category()) {
        if let Some(v) = value {
            out.push((format!("miou_{}", name.to_lowercase()), 100.0 * v));
        }
    }
    out
}

/// The objects of sample `i` as the detector's training targets (pixel corners, class);
/// crowd regions and VOC "difficult" objects are not targets (they are ignored when scored).
fn target_boxes(set: &SyntheticDetectionSet, i: usize) -> Vec<zoo::TargetBox> {
    set.samples[i]
        .objects
        .iter()
        .filter(|o| !o.crowd)
        .map(|o| zoo::TargetBox {
            x1: o.bbox.x as f32,
            y1: o.bbox.y as f32,
            x2: (o.bbox.x + o.bbox.w) as f32,
            y2: (o.bbox.y + o.bbox.h) as f32,
            class: o.class,
        })
        .collect()
}

/// One image's detections from its output row: decoded, suppressed per class, the best
/// [`MAX_DETECTIONS`] kept; category = class + 1 (the mask label, as the ground truth).
pub fn detections(row: &[f32], layout: &YoloLayout, image_size: usize, image: u64) -> Vec<Detection> {
    let size = image_size as f32;
    let mut boxes = zoo::nms(zoo::decode(row, layout, size, SCORE_THRESHOLD), NMS_IOU);
    boxes.truncate(MAX_DETECTIONS);
    boxes
        .into_iter()
        .filter_map(|b| {
            let (x1, y1) = (b.x1.clamp(0.0, size) as f64, b.y1.clamp(0.0, size) as f64);
            let (x2, y2) = (b.x2.clamp(0.0, size) as f64, b.y2.clamp(0.0, size) as f64);
            let bbox = BoundingBox::from_corners(x1, y1, x2, y2);
            (bbox.is_valid() && bbox.w > 0.0 && bbox.h > 0.0).then_some(Detection {
                image,
                category: b.class as u32 + 1,
                bbox,
                score: b.score as f64,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datasets::synthetic_detection::{DetectionSample, ShapeObject};

    /// Two 64 × 64 images with hand-placed objects (masks: each object's box filled).
    fn set() -> SyntheticDetectionSet {
        let boxes: [&[(usize, [f64; 4])]; 2] =
            [&[(0, [8.0, 8.0, 16.0, 16.0]), (1, [36.0, 30.0, 20.0, 24.0])], &[(2, [4.0, 40.0, 10.0, 12.0])]];
        let samples = boxes
            .iter()
            .map(|objects| {
                let mut mask = vec![0u32; 64 * 64];
                for (class, [x, y, w, h]) in objects.iter() {
                    for yy in *y as usize..(*y + *h) as usize {
                        for xx in *x as usize..(*x + *w) as usize {
                            mask[yy * 64 + xx] = *class as u32 + 1;
                        }
                    }
                }
                DetectionSample {
                    pixels: vec![0; 3 * 64 * 64],
                    instances: mask.clone(),
                    mask,
                    objects: objects
                        .iter()
                        .map(|(class, b)| ShapeObject {
                            class: *class,
                            bbox: BoundingBox::from(*b),
                            area: (b[2] * b[3]) as usize,
                            size: b[2].max(b[3]) as f32,
                            crowd: false,
                        })
                        .collect(),
                }
            })
            .collect();
        SyntheticDetectionSet {
            name: datasets::synthetic_detection::NAME.into(),
            image_size: 64,
            num_classes: 3,
            class_names: vec!["square".into(), "disc".into(), "triangle".into()],
            samples,
            ignore_label: None,
        }
    }

    /// The raw YOLO output that decodes to exactly the objects of `sample` (σ⁻¹ of the cell
    /// offsets, ln of the size over the anchor, confident objectness and class).
    fn encode(sample: &DetectionSample, layout: &YoloLayout) -> Vec<f32> {
        let g = layout.grid;
        let cell = 64.0 / g as f32;
        let mut raw = vec![0.0; layout.values()];
        for a in 0..layout.anchors.len() {
            for gy in 0..g {
                for gx in 0..g {
                    raw[layout.index(a, YoloLayout::OBJECTNESS, gy, gx)] = -12.0;
                }
            }
        }
        for o in &sample.objects {
            let (w, h) = (o.bbox.w as f32 / cell, o.bbox.h as f32 / cell);
            let (cx, cy) =
                ((o.bbox.x as f32 + o.bbox.w as f32 / 2.0) / cell, (o.bbox.y as f32 + o.bbox.h as f32 / 2.0) / cell);
            let (gx, gy) = (cx.floor() as usize, cy.floor() as usize);
            let logit = |p: f32| (p / (1.0 - p)).ln();
            let a = 0;
            let [pw, ph] = layout.anchors[a];
            raw[layout.index(a, YoloLayout::TX, gy, gx)] = logit(cx - gx as f32);
            raw[layout.index(a, YoloLayout::TY, gy, gx)] = logit(cy - gy as f32);
            raw[layout.index(a, YoloLayout::TW, gy, gx)] = (w / pw).ln();
            raw[layout.index(a, YoloLayout::TH, gy, gx)] = (h / ph).ln();
            raw[layout.index(a, YoloLayout::OBJECTNESS, gy, gx)] = 12.0;
            raw[layout.index(a, YoloLayout::CLASS0 + o.class, gy, gx)] = 12.0;
        }
        raw
    }

    #[test]
    fn outputs_encoding_the_ground_truth_score_full_map_and_a_moved_box_loses_it() {
        let set = set();
        let layout = YoloLayout { grid: 8, anchors: zoo::default_anchors(8), classes: 3 };
        let task = Task::Detection(layout.clone());
        let mut outputs: Vec<f32> = set.samples.iter().flat_map(|s| encode(s, &layout)).collect();
        let samples = Samples::Dense(set.clone());
        let scores = task.score(&outputs, &samples, &[0, 1]).unwrap();
        assert_eq!(scores[0].0, "map50");
        assert!((scores[0].1 - 100.0).abs() < 1e-9, "{scores:?}");
        assert!(scores[1].1 > 99.0, "exact boxes pass every IoU threshold: {scores:?}");
        // The second image's only box three times as wide about its centre: IoU 1/3, a miss at 0.5.
        let w = layout.values();
        let o = set.samples[1].objects[0];
        let (cx, cy) = ((o.bbox.x + o.bbox.w / 2.0) / 8.0, (o.bbox.y + o.bbox.h / 2.0) / 8.0);
        let at = layout.index(0, YoloLayout::TW, cy.floor() as usize, cx.floor() as usize);
        outputs[w + at] += 3f32.ln();
        let scores = task.score(&outputs, &samples, &[0, 1]).unwrap();
        assert!(scores[0].1 < 80.0, "the triangle class loses its only true positive: {scores:?}");
        // Scored on the second image alone (sample order follows `indices`).
        let alone = task.score(&outputs[w..], &samples, &[1]).unwrap();
        assert_eq!(alone[0].1, 0.0, "{alone:?}");
    }

    #[test]
    fn segmentation_scores_one_hot_masks_fully_and_all_background_by_its_share() {
        let set = set();
        let task = Task::Segmentation { labels: 4, size: 64 };
        let pixels = 64 * 64;
        let one_hot = |pick: &dyn Fn(usize) -> u32| -> Vec<f32> {
            let mut out = Vec::new();
            for (i, s) in set.samples.iter().enumerate() {
                let mut row = vec![0.0; 4 * pixels];
                for (p, &label) in s.mask.iter().enumerate() {
                    let _ = label;
                    row[pick(i * pixels + p) as usize * pixels + p] = 1.0;
                }
                out.extend(row);
            }
            out
        };
        let masks: Vec<u32> = set.samples.iter().flat_map(|s| s.mask.clone()).collect();
        let samples = Samples::Dense(set.clone());
        let perfect = task.score(&one_hot(&|k| masks[k]), &samples, &[0, 1]).unwrap();
        assert_eq!(perfect, vec![("miou".to_string(), 100.0), ("pixel_accuracy".to_string(), 100.0)]);
        let background = task.score(&one_hot(&|_| 0), &samples, &[0, 1]).unwrap();
        let share = masks.iter().filter(|&&m| m == 0).count() as f64 / masks.len() as f64;
        assert!((background[1].1 - 100.0 * share).abs() < 1e-9, "{background:?}");
        // mIoU: the background's IoU (its share) averaged with 0 for the three object classes.
        assert!((background[0].1 - 100.0 * share / 4.0).abs() < 1e-9, "{background:?}");
    }

    #[test]
    fn pixel_classes_take_the_argmax_over_the_class_planes() {
        // 2 classes × 3 pixels: plane 0 then plane 1 (what `score` decodes segmenters with).
        let row = [1.0, 0.0, 2.0, 0.5, 3.0, 2.0];
        assert_eq!(zoo::segmentation_predict(&row, 2, [1, 3]).unwrap(), vec![0, 1, 0], "ties keep the first class");
    }
}
