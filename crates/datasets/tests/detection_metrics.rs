//! Tests of `datasets::detection_metrics`.
//!
//! The fixture `tests/fixtures/coco_eval.json` was written once by
//! `scripts/make_coco_fixture.py`: a seeded random detection problem (12 images, 4 categories,
//! 68 ground truths of which 4 crowd regions, 149 detections) with the 12 summary numbers and
//! per-category AP of pycocotools COCOeval (bbox, default parameters), and PASCAL VOC
//! all-point AP at IoU 0.5 from an independent implementation of the PASCAL VOC devkit's
//! rules. The remaining tests check small cases computed by hand.

use std::collections::BTreeMap;

use datasets::detection_metrics::{
    BoundingBox, COCO_STAT_NAMES, ConfusionMatrix, Detection, GroundTruth, MetricsError, average_precision_all_point,
    coco_eval, coco_iou_thresholds, coco_recall_thresholds, segmentation_scores, voc_ap,
};

/// The brief asks for 1e-4; the implementation follows pycocotools' arithmetic, so the only
/// differences left are summation order (numpy's pairwise sums), ~1e-16. A tighter bound
/// catches a threshold compared the wrong way, which moves a number by ≥ 1/1010.
const TOL: f64 = 1e-9;

#[derive(serde::Deserialize)]
struct Fixture {
    images: Vec<u64>,
    categories: Vec<u32>,
    annotations: Vec<GroundTruth>,
    detections: Vec<Detection>,
    expected: Expected,
}

#[derive(serde::Deserialize)]
struct Expected {
    coco_stats: [f64; 12],
    coco_stat_names: Vec<String>,
    coco_category_ap: BTreeMap<u32, f64>,
    voc_ap: BTreeMap<u32, f64>,
    voc_map: f64,
    coco_iou_thresholds: Vec<f64>,
    coco_recall_thresholds: Vec<f64>,
}

fn fixture() -> Fixture {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/coco_eval.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

fn close(actual: f64, expected: f64, tol: f64) -> bool {
    (actual - expected).abs() <= tol
}

/// COCO summary numbers by index, to 1e-12: a perfect precision is `TP / (TP + FP + ε)`,
/// one ulp below 1, in pycocotools as here.
fn assert_stats(stats: &[f64; 12], expected: &[(usize, f64)]) {
    for &(i, want) in expected {
        assert!(close(stats[i], want, 1e-12), "{}: {} vs {want}; all: {stats:?}", COCO_STAT_NAMES[i], stats[i]);
    }
}

fn gt(image: u64, category: u32, bbox: [f64; 4]) -> GroundTruth {
    let bbox = BoundingBox::from(bbox);
    GroundTruth { image, category, bbox, iscrowd: false, area: bbox.area() }
}

fn crowd(image: u64, category: u32, bbox: [f64; 4]) -> GroundTruth {
    GroundTruth { iscrowd: true, ..gt(image, category, bbox) }
}

fn det(image: u64, category: u32, bbox: [f64; 4], score: f64) -> Detection {
    Detection { image, category, bbox: BoundingBox::from(bbox), score }
}

// ---------------------------------------------------------------------------------------------
// Against the pycocotools fixture

#[test]
fn fixture_is_the_documented_problem() {
    let f = fixture();
    assert_eq!(f.images.len(), 12);
    assert_eq!(f.categories, [1, 2, 3, 4]);
    assert_eq!(f.annotations.len(), 68);
    assert_eq!(f.detections.len(), 149);
    assert_eq!(f.annotations.iter().filter(|g| g.iscrowd).count(), 4);
    assert_eq!(f.expected.coco_stat_names, COCO_STAT_NAMES);
    let mut per_pair: BTreeMap<(u64, u32), usize> = BTreeMap::new();
    for d in &f.detections {
        *per_pair.entry((d.image, d.category)).or_default() += 1;
    }
    assert!(per_pair.values().any(|&n| n > 10), "some image/category pair has more than 10 detections");
    let areas: Vec<f64> = f.annotations.iter().filter(|g| !g.iscrowd).map(|g| g.area).collect();
    assert!(areas.iter().any(|&a| a < 1024.0) && areas.iter().any(|&a| a > 9216.0));
    assert!(areas.iter().any(|&a| (1024.0..=9216.0).contains(&a)));
}

#[test]
fn coco_thresholds_are_bit_identical_to_pycocotools() {
    let f = fixture();
    assert_eq!(coco_iou_thresholds().to_vec(), f.expected.coco_iou_thresholds);
    assert_eq!(coco_recall_thresholds().to_vec(), f.expected.coco_recall_thresholds);
}

#[test]
fn coco_stats_match_pycocotools() {
    let f = fixture();
    let summary = coco_eval(&f.annotations, &f.detections).unwrap();
    for (i, name) in COCO_STAT_NAMES.iter().enumerate() {
        let (actual, expected) = (summary.stats[i], f.expected.coco_stats[i]);
        assert!(close(actual, expected, TOL), "{name}: {actual} vs pycocotools {expected}");
    }
    assert_eq!(summary.ap(), summary.stats[0]);
    assert_eq!(summary.ap50(), summary.stats[1]);
    assert_eq!(summary.ap75(), summary.stats[2]);
}

#[test]
fn coco_category_ap_matches_pycocotools() {
    let f = fixture();
    let summary = coco_eval(&f.annotations, &f.detections).unwrap();
    assert_eq!(summary.category_ap.keys().collect::<Vec<_>>(), f.expected.coco_category_ap.keys().collect::<Vec<_>>());
    for (category, &expected) in &f.expected.coco_category_ap {
        let actual = summary.category_ap[category].unwrap_or(-1.0);
        assert!(close(actual, expected, TOL), "category {category}: {actual} vs pycocotools {expected}");
    }
    let defined: Vec<f64> = summary.category_ap.values().flatten().copied().collect();
    let mean = defined.iter().sum::<f64>() / defined.len() as f64;
    assert!(close(mean, summary.stats[0], 1e-12));
}

#[test]
fn coco_eval_ignores_input_order_of_images_and_categories() {
    // Reordering whole (image, category) groups must not change anything; ties inside a group
    // keep their relative order, so the result is identical, not just close.
    let f = fixture();
    let reference = coco_eval(&f.annotations, &f.detections).unwrap();
    let mut gts = f.annotations.clone();
    let mut dets = f.detections.clone();
    gts.sort_by_key(|g| std::cmp::Reverse((g.image, g.category)));
    dets.sort_by_key(|d| std::cmp::Reverse((d.image, d.category)));
    assert_eq!(coco_eval(&gts, &dets).unwrap(), reference);
}

#[test]
fn voc_ap_matches_reference_implementation() {
    let f = fixture();
    let summary = voc_ap(&f.annotations, &f.detections).unwrap();
    assert_eq!(summary.category_ap.keys().collect::<Vec<_>>(), f.expected.voc_ap.keys().collect::<Vec<_>>());
    for (category, &expected) in &f.expected.voc_ap {
        let actual = summary.category_ap[category];
        assert!(close(actual, expected, TOL), "category {category}: {actual} vs reference {expected}");
    }
    let map = summary.map.unwrap();
    assert!(close(map, f.expected.voc_map, TOL), "mAP {map} vs reference {}", f.expected.voc_map);
}

#[test]
fn detections_of_categories_without_ground_truth_are_ignored() {
    let f = fixture();
    assert!(f.detections.iter().any(|d| !f.categories.contains(&d.category)));
    let kept: Vec<Detection> = f.detections.iter().filter(|d| f.categories.contains(&d.category)).copied().collect();
    assert_eq!(coco_eval(&f.annotations, &kept).unwrap(), coco_eval(&f.annotations, &f.detections).unwrap());
    assert_eq!(voc_ap(&f.annotations, &kept).unwrap(), voc_ap(&f.annotations, &f.detections).unwrap());
}

// ---------------------------------------------------------------------------------------------
// Boxes

#[test]
fn iou_of_known_boxes() {
    let a = BoundingBox::new(0.0, 0.0, 10.0, 10.0);
    // Offset by half in both directions: 25 / (100 + 100 - 25) = 1/7.
    assert!(close(a.iou(&BoundingBox::new(5.0, 5.0, 10.0, 10.0)), 1.0 / 7.0, 1e-15));
    assert_eq!(a.iou(&a), 1.0);
    // Contained: 16 / 100.
    assert_eq!(a.iou(&BoundingBox::new(2.0, 2.0, 4.0, 4.0)), 0.16);
    // Half the box: exactly 0.5, and symmetric.
    let half = BoundingBox::new(0.0, 0.0, 10.0, 5.0);
    assert_eq!(a.iou(&half), 0.5);
    assert_eq!(half.iou(&a), 0.5);
    // Touching edges and disjoint boxes do not overlap; neither does a zero-width box.
    assert_eq!(a.iou(&BoundingBox::new(10.0, 0.0, 10.0, 10.0)), 0.0);
    assert_eq!(a.iou(&BoundingBox::new(30.0, 30.0, 5.0, 5.0)), 0.0);
    assert_eq!(a.iou(&BoundingBox::new(5.0, 0.0, 0.0, 10.0)), 0.0);
    // No +1 pixel: corners (0,0)-(10,10) and (0,0)-(20,10) overlap by 100 of 200.
    assert_eq!(
        BoundingBox::from_corners(0.0, 0.0, 10.0, 10.0).iou(&BoundingBox::from_corners(0.0, 0.0, 20.0, 10.0)),
        0.5
    );
}

#[test]
fn crowd_rule_divides_by_the_detection_area() {
    let region = BoundingBox::new(0.0, 0.0, 100.0, 100.0);
    // Inside the region: 1 whatever the region's size (plain IoU 0.01).
    let inside = BoundingBox::new(20.0, 20.0, 10.0, 10.0);
    assert_eq!(inside.crowd_iou(&region), 1.0);
    assert_eq!(inside.iou(&region), 0.01);
    // Half outside: 50 / 100.
    assert_eq!(BoundingBox::new(95.0, 0.0, 10.0, 10.0).crowd_iou(&region), 0.5);
    assert_eq!(BoundingBox::new(200.0, 0.0, 10.0, 10.0).crowd_iou(&region), 0.0);
}

#[test]
fn records_read_coco_json() {
    let gts: Vec<GroundTruth> = serde_json::from_str(
        r#"[{"id": 7, "image_id": 3, "category_id": 2, "bbox": [1.5, 2, 30, 40], "area": 900.5, "iscrowd": 1,
             "segmentation": [[1, 2, 3, 4]]},
            {"image_id": 3, "category_id": 5, "bbox": [0, 0, 1, 1], "area": 1}]"#,
    )
    .unwrap();
    assert_eq!(
        gts[0],
        GroundTruth { image: 3, category: 2, bbox: BoundingBox::new(1.5, 2.0, 30.0, 40.0), iscrowd: true, area: 900.5 }
    );
    assert!(!gts[1].iscrowd);
    let dets: Vec<Detection> =
        serde_json::from_str(r#"[{"image_id": 1, "category_id": 4, "bbox": [5, 6, 7, 8], "score": 0.25}]"#).unwrap();
    assert_eq!(dets[0], det(1, 4, [5.0, 6.0, 7.0, 8.0], 0.25));
    let written = serde_json::to_value(gts[0]).unwrap();
    assert_eq!(written["iscrowd"], 1);
    assert_eq!(written["bbox"], serde_json::json!([1.5, 2.0, 30.0, 40.0]));
    assert!(
        serde_json::from_str::<GroundTruth>(r#"{"image_id":1,"category_id":1,"bbox":[0,0,1,1],"area":1,"iscrowd":2}"#)
            .is_err()
    );
}

#[test]
fn invalid_inputs_are_errors() {
    let good = [gt(1, 1, [0.0, 0.0, 10.0, 10.0])];
    let nan_score = [det(1, 1, [0.0, 0.0, 10.0, 10.0], f64::NAN)];
    assert_eq!(coco_eval(&good, &nan_score), Err(MetricsError::InvalidScore { index: 0 }));
    assert_eq!(voc_ap(&good, &nan_score), Err(MetricsError::InvalidScore { index: 0 }));
    let negative = [det(1, 1, [0.0, 0.0, -1.0, 10.0], 0.5)];
    assert!(matches!(coco_eval(&good, &negative), Err(MetricsError::InvalidBox { kind: "detection", index: 0, .. })));
    let infinite = [gt(1, 1, [f64::INFINITY, 0.0, 1.0, 1.0])];
    assert!(matches!(voc_ap(&infinite, &[]), Err(MetricsError::InvalidBox { kind: "ground truth", .. })));
    let bad_area = [GroundTruth { area: -1.0, ..good[0] }];
    assert!(matches!(coco_eval(&bad_area, &[]), Err(MetricsError::InvalidArea { index: 0, .. })));
}

// ---------------------------------------------------------------------------------------------
// PASCAL VOC by hand

/// Two objects; detections: a hit (0.9), a background false positive (0.8), a hit (0.7).
fn three_detections() -> (Vec<GroundTruth>, Vec<Detection>) {
    let gts = vec![gt(1, 1, [0.0, 0.0, 10.0, 10.0]), gt(1, 1, [50.0, 50.0, 10.0, 10.0])];
    let dets = vec![
        det(1, 1, [200.0, 200.0, 10.0, 10.0], 0.8),
        det(1, 1, [50.0, 50.0, 10.0, 10.0], 0.7),
        det(1, 1, [0.0, 0.0, 10.0, 10.0], 0.9),
    ];
    (gts, dets)
}

#[test]
fn voc_ap_of_three_detections_by_hand() {
    // Ranked TP, FP, TP: recall 1/2, 1/2, 1; precision 1, 1/2, 2/3. The envelope is 1 up to
    // recall 1/2 and 2/3 up to recall 1: AP = 1/2 · 1 + 1/2 · 2/3 = 5/6.
    let (gts, dets) = three_detections();
    let summary = voc_ap(&gts, &dets).unwrap();
    assert!(close(summary.category_ap[&1], 5.0 / 6.0, 1e-15));
    assert!(close(summary.map.unwrap(), 5.0 / 6.0, 1e-15));
    assert!(close(average_precision_all_point(&[0.5, 0.5, 1.0], &[1.0, 0.5, 2.0 / 3.0]), 5.0 / 6.0, 1e-15));
    // Recall never reaching 1: the missing part counts zero.
    assert_eq!(average_precision_all_point(&[0.25, 0.5], &[1.0, 1.0]), 0.5);
    assert_eq!(average_precision_all_point(&[], &[]), 0.0);
}

#[test]
fn voc_duplicates_threshold_and_difficult_objects() {
    let gts = vec![gt(1, 1, [0.0, 0.0, 10.0, 10.0]), crowd(1, 1, [100.0, 100.0, 50.0, 50.0])];
    // A hit at IoU exactly 0.5 (inclusive threshold), a duplicate (FP), a detection on the
    // crowd region (neither), then a detection in another image (FP).
    let dets = vec![
        det(1, 1, [0.0, 0.0, 10.0, 5.0], 0.9),
        det(1, 1, [0.0, 0.0, 10.0, 10.0], 0.8),
        det(1, 1, [100.0, 100.0, 50.0, 50.0], 0.7),
        det(2, 1, [0.0, 0.0, 10.0, 10.0], 0.6),
    ];
    // One positive: recall 1 after the first detection with precision 1.
    assert_eq!(voc_ap(&gts, &dets).unwrap().category_ap[&1], 1.0);
    // Just below 0.5 the first detection is a miss; the second then takes the object at
    // precision 1/2.
    let mut below = dets.clone();
    below[0].bbox.h = 4.99;
    assert_eq!(voc_ap(&gts, &below).unwrap().category_ap[&1], 0.5);
    // A category with only crowd objects has no AP.
    let summary = voc_ap(&[crowd(1, 3, [0.0, 0.0, 5.0, 5.0])], &dets).unwrap();
    assert!(summary.category_ap.is_empty() && summary.map.is_none());
}

// ---------------------------------------------------------------------------------------------
// COCO by hand

#[test]
fn coco_ap_of_three_detections_by_hand() {
    // Every IoU is 1 or 0, so all ten thresholds agree. Ranked TP, FP, TP: recall 1/2, 1/2, 1,
    // envelope precision 1, 2/3, 2/3. The 51 recall points 0.00..=0.50 first reach their
    // recall at rank 1 (precision 1), the 50 points 0.51..=1.00 at rank 3 (2/3):
    // AP = (51 · 1 + 50 · 2/3) / 101.
    let (gts, dets) = three_detections();
    let s = coco_eval(&gts, &dets).unwrap().stats;
    let ap = (51.0 + 50.0 * 2.0 / 3.0) / 101.0;
    // The objects are 10 x 10, area 100: small; medium and large have no objects.
    for i in [0, 1, 2, 3] {
        assert!(close(s[i], ap, 1e-12), "{}: {}", COCO_STAT_NAMES[i], s[i]);
    }
    assert_stats(&s, &[(4, -1.0), (5, -1.0)]);
    // One detection per image: only the 0.9 hit, recall 1/2; ten or more: recall 1.
    assert_stats(&s, &[(6, 0.5)]);
    assert_stats(&s, &[(7, 1.0), (8, 1.0), (9, 1.0)]);
    assert_stats(&s, &[(10, -1.0), (11, -1.0)]);
}

#[test]
fn coco_crowd_regions_and_area_ranges() {
    // One medium object (area field 1600, box 40 x 40) and a crowd region; two detections
    // inside the crowd region are ignored, not false positives.
    let gts = vec![gt(1, 1, [0.0, 0.0, 40.0, 40.0]), crowd(1, 1, [100.0, 100.0, 200.0, 200.0])];
    let dets = vec![
        det(1, 1, [120.0, 120.0, 20.0, 20.0], 0.95),
        det(1, 1, [0.0, 0.0, 40.0, 40.0], 0.9),
        det(1, 1, [150.0, 150.0, 30.0, 30.0], 0.8),
    ];
    let s = coco_eval(&gts, &dets).unwrap().stats;
    assert_stats(&s, &[(0, 1.0), (8, 1.0), (3, -1.0), (4, 1.0), (5, -1.0)]);
    // Without the crowd flag the region is an ordinary large object the detections miss.
    let mut plain = gts.clone();
    plain[1].iscrowd = false;
    let s = coco_eval(&plain, &dets).unwrap().stats;
    assert!(s[0] < 0.5, "{s:?}");
    assert_stats(&s, &[(5, 0.0)]);

    // The area range comes from the `area` field, not the box: a 40 x 40 box with a mask area
    // of 900 is small.
    let small = [GroundTruth { area: 900.0, ..gts[0] }];
    let s = coco_eval(&small, &dets[1..2]).unwrap().stats;
    assert_stats(&s, &[(3, 1.0), (4, -1.0), (5, -1.0)]);
    // An area of exactly 32² is both small and medium.
    let boundary = [GroundTruth { area: 1024.0, ..gts[0] }];
    let s = coco_eval(&boundary, &dets[1..2]).unwrap().stats;
    assert_stats(&s, &[(3, 1.0), (4, 1.0), (5, -1.0)]);
}

#[test]
fn coco_prefers_a_regular_ground_truth_to_a_crowd_region_listed_first() {
    // The detection lies inside the crowd region (crowd overlap 1) and has IoU 3000/3600 with
    // the regular object. Ground truths are matched with ignored ones last, and a detection
    // holding a regular match stops there: a hit at the 7 thresholds 0.50..=0.80, although
    // the crowd region comes first in the input with the larger overlap (pycocotools gives
    // the same numbers).
    let gts = [crowd(1, 1, [0.0, 0.0, 100.0, 100.0]), gt(1, 1, [0.0, 0.0, 60.0, 60.0])];
    let dets = [det(1, 1, [0.0, 0.0, 50.0, 60.0], 0.9)];
    let s = coco_eval(&gts, &dets).unwrap().stats;
    let expected = [0.7, 1.0, 1.0, -1.0, 0.7, -1.0, 0.7, 0.7, 0.7, -1.0, 0.7, -1.0];
    assert_stats(&s, &expected.iter().copied().enumerate().collect::<Vec<_>>());
}

#[test]
fn coco_detection_outside_the_range_is_ignored_only_when_unmatched() {
    // A small object and a large false positive: for the small range the large detection is
    // ignored (it could not match anything small), so APs stays 1 while AP (all) drops.
    let gts = [gt(1, 1, [0.0, 0.0, 20.0, 20.0])];
    let dets = [det(1, 1, [100.0, 100.0, 150.0, 150.0], 0.9), det(1, 1, [0.0, 0.0, 20.0, 20.0], 0.8)];
    let s = coco_eval(&gts, &dets).unwrap().stats;
    assert_stats(&s, &[(3, 1.0)]);
    assert!(close(s[0], 0.5, 1e-12), "{}", s[0]);
}

#[test]
fn coco_iou_thresholds_are_inclusive() {
    // IoU exactly 0.75: a hit at the six thresholds 0.50..=0.75, a miss at the four above.
    let gts = [gt(1, 1, [0.0, 0.0, 40.0, 40.0])];
    let dets = [det(1, 1, [0.0, 0.0, 40.0, 30.0], 0.5)];
    let s = coco_eval(&gts, &dets).unwrap().stats;
    assert_stats(&s, &[(1, 1.0), (2, 1.0)]);
    assert!(close(s[0], 0.6, 1e-12));
    assert!(close(s[8], 0.6, 1e-12));
}

#[test]
fn coco_without_ground_truth_is_undefined() {
    let s = coco_eval(&[], &[det(1, 1, [0.0, 0.0, 1.0, 1.0], 0.5)]).unwrap();
    assert_eq!(s.stats, [-1.0; 12]);
    assert!(s.category_ap.is_empty());
    // Only crowd objects: the category exists but has no defined AP.
    let s = coco_eval(&[crowd(1, 2, [0.0, 0.0, 10.0, 10.0])], &[]).unwrap();
    assert_eq!(s.stats, [-1.0; 12]);
    assert_eq!(s.category_ap[&2], None);
    // Objects but no detections: AP and AR are 0.
    let s = coco_eval(&[gt(1, 1, [0.0, 0.0, 10.0, 10.0])], &[]).unwrap();
    assert_eq!(s.stats[0], 0.0);
    assert_eq!(s.stats[8], 0.0);
}

// ---------------------------------------------------------------------------------------------
// Segmentation

#[test]
fn segmentation_iou_on_a_tiny_label_map() {
    // Six pixels, the last one ignored (its prediction, even out of range, does not count).
    let target = [0, 0, 1, 1, 2, 255];
    let predicted = [0, 1, 1, 1, 0, 77];
    let s = segmentation_scores(&predicted, &target, 4, Some(255)).unwrap();
    // Class 0: 1 hit, 2 in target, 2 predicted -> 1/3. Class 1: 2 / (2 + 3 - 2) = 2/3.
    // Class 2: 0 / 1. Class 3: absent everywhere -> undefined.
    assert_eq!(s.pixels, 5);
    assert!(close(s.class_iou[0].unwrap(), 1.0 / 3.0, 1e-15));
    assert!(close(s.class_iou[1].unwrap(), 2.0 / 3.0, 1e-15));
    assert_eq!(s.class_iou[2], Some(0.0));
    assert_eq!(s.class_iou[3], None);
    assert!(close(s.mean_iou.unwrap(), 1.0 / 3.0, 1e-15));
    assert_eq!(s.pixel_accuracy, Some(0.6));
    assert_eq!(s.class_accuracy, [Some(0.5), Some(1.0), Some(0.0), None]);
    assert!(close(s.mean_accuracy.unwrap(), 0.5, 1e-15));

    // Without an ignore index the 255 is out of range.
    assert_eq!(
        segmentation_scores(&predicted, &target, 4, None),
        Err(MetricsError::LabelOutOfRange { index: 5, which: "target", label: 255, classes: 4 })
    );
    // A predicted label out of range on a counted pixel is an error.
    assert_eq!(
        segmentation_scores(&[0, 9], &[0, 1], 4, Some(255)),
        Err(MetricsError::LabelOutOfRange { index: 1, which: "predicted", label: 9, classes: 4 })
    );
    assert_eq!(
        segmentation_scores(&[0], &[0, 1], 4, None),
        Err(MetricsError::LengthMismatch { predicted: 1, target: 2 })
    );
    let empty = segmentation_scores(&[], &[], 3, None).unwrap();
    assert_eq!((empty.mean_iou, empty.pixel_accuracy, empty.pixels), (None, None, 0));
}

#[test]
fn confusion_matrix_accumulation_equals_one_shot() {
    let images: [(&[u32], &[u32]); 3] =
        [(&[0, 1, 1, 2, 2, 2], &[0, 1, 2, 2, 2, 255]), (&[1, 1, 0, 0], &[1, 0, 0, 255]), (&[2, 2, 2], &[2, 2, 1])];
    let mut summed = ConfusionMatrix::new(3, Some(255));
    let (mut all_predicted, mut all_target) = (Vec::new(), Vec::new());
    let mut per_image_miou = Vec::new();
    for (predicted, target) in images {
        summed.add(predicted, target).unwrap();
        all_predicted.extend_from_slice(predicted);
        all_target.extend_from_slice(target);
        per_image_miou.push(segmentation_scores(predicted, target, 3, Some(255)).unwrap().mean_iou.unwrap());
    }
    let one_shot = segmentation_scores(&all_predicted, &all_target, 3, Some(255)).unwrap();
    assert_eq!(summed.scores(), one_shot);
    assert_eq!(summed.pixels(), 11);
    assert_eq!(summed.count(2, 2), 4);
    assert_eq!(summed.count(0, 1), 1);
    assert_eq!(summed.count(7, 0), 0);

    // Merging two partial matrices gives the same counts.
    let mut first = ConfusionMatrix::new(3, Some(255));
    first.add(images[0].0, images[0].1).unwrap();
    let mut rest = ConfusionMatrix::new(3, Some(255));
    rest.add(images[1].0, images[1].1).unwrap();
    rest.add(images[2].0, images[2].1).unwrap();
    first.merge(&rest).unwrap();
    assert_eq!(first, summed);
    assert!(matches!(first.merge(&ConfusionMatrix::new(3, None)), Err(MetricsError::IncompatibleMatrices { .. })));

    // The dataset mIoU is not the mean of per-image mIoUs.
    let mean_of_images = per_image_miou.iter().sum::<f64>() / per_image_miou.len() as f64;
    assert!((mean_of_images - one_shot.mean_iou.unwrap()).abs() > 0.01, "{mean_of_images} vs {:?}", one_shot.mean_iou);

    // A failed add leaves the matrix unchanged.
    let before = summed.clone();
    assert!(summed.add(&[0, 5], &[0, 0]).is_err());
    assert_eq!(summed, before);
}
