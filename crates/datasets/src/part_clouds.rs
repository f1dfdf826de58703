//! Point clouds with a part label per point, for part segmentation: ShapeNetPart
//! ([`crate::shapenet_part`]) and the procedural `synthetic-parts3d`
//! ([`crate::synthetic_parts3d`]).
//!
//! As in ShapeNetPart, part labels are global ids `0..num_parts`, and each category (the
//! cloud's class label) owns a contiguous range of them ([`PartCloudSet::category_parts`]).
//! Scoring follows PointNet's evaluation (Qi et al. 2017): a point's predicted part is the
//! best-scoring part *of its shape's category*, a shape's IoU is the mean over its category's
//! parts of |pred ∩ truth| / |pred ∪ truth| (1 for a part absent from both), and a category's
//! mIoU is the mean over its shapes ([`PartIoU`]).

use std::ops::Range;

use crate::error::DatasetError;
use crate::image::Fnv1a;
use crate::pointcloud::PointCloudSet;

/// Clouds with their category labels, and the part label of every point.
#[derive(Clone, Debug)]
pub struct PartCloudSet {
    /// Clouds and category labels (`cloud.num_classes` categories).
    pub cloud: PointCloudSet,
    /// `cloud.len() * cloud.num_points` part labels: `part_labels[i * num_points + j]` is the
    /// global part id of point `j` of sample `i`, inside its category's range.
    pub part_labels: Vec<u8>,
    /// Name of every global part id, e.g. `"cylinder/body"`.
    pub part_names: Vec<String>,
    /// Per category (class label), its part ids: contiguous, in label order, covering
    /// `0..part_names.len()`.
    pub category_parts: Vec<Range<usize>>,
}

impl PartCloudSet {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.cloud.len()
    }

    /// True when the set holds no sample.
    pub fn is_empty(&self) -> bool {
        self.cloud.is_empty()
    }

    /// Number of global part ids (the width of a part-segmentation network's per-point output).
    pub fn num_parts(&self) -> usize {
        self.part_names.len()
    }

    /// Part labels of sample `i` (`num_points` values, in point order).
    ///
    /// # Panics
    /// If `i >= self.len()`, like slice indexing.
    pub fn sample_parts(&self, i: usize) -> &[u8] {
        let n = self.cloud.num_points;
        &self.part_labels[i * n..(i + 1) * n]
    }

    /// The part ids of sample `i`'s category.
    pub fn parts_of_sample(&self, i: usize) -> Range<usize> {
        self.category_parts[usize::from(self.cloud.labels[i])].clone()
    }

    /// A new set holding the samples at `indices`, in that order (repeats allowed).
    ///
    /// # Panics
    /// If an index is out of range, like slice indexing.
    pub fn subset(&self, indices: &[usize]) -> PartCloudSet {
        PartCloudSet {
            cloud: self.cloud.subset(indices),
            part_labels: indices.iter().flat_map(|&i| self.sample_parts(i).iter().copied()).collect(),
            part_names: self.part_names.clone(),
            category_parts: self.category_parts.clone(),
        }
    }

    /// Short stable fingerprint of the clouds, category labels and part labels.
    pub fn fingerprint(&self) -> String {
        let mut h = Fnv1a::new();
        h.write(b"parts");
        h.write(self.cloud.fingerprint().as_bytes());
        h.write(&self.part_labels);
        for r in &self.category_parts {
            h.write(&(r.start as u64).to_le_bytes());
            h.write(&(r.end as u64).to_le_bytes());
        }
        format!("{:016x}", h.finish())
    }

    /// Checks that the category ranges tile `0..num_parts` in order, that there is one per
    /// category, and that every point's part lies in its category's range (`dataset` names
    /// the set in the error).
    pub fn validate(&self, dataset: &str) -> Result<(), DatasetError> {
        let invalid = |reason: String| Err(DatasetError::InvalidOptions { dataset: dataset.to_string(), reason });
        if self.category_parts.len() != self.cloud.num_classes {
            return invalid(format!(
                "{} part ranges for {} categories",
                self.category_parts.len(),
                self.cloud.num_classes
            ));
        }
        let mut next = 0;
        for (c, r) in self.category_parts.iter().enumerate() {
            if r.start != next || r.end <= r.start {
                return invalid(format!("category {c}'s parts {r:?} do not follow the previous category's"));
            }
            next = r.end;
        }
        if next != self.num_parts() || next > usize::from(u8::MAX) + 1 {
            return invalid(format!("the categories own {next} parts, the names list {}", self.num_parts()));
        }
        if self.part_labels.len() != self.len() * self.cloud.num_points {
            return invalid(format!(
                "{} part labels for {} clouds of {} points",
                self.part_labels.len(),
                self.len(),
                self.cloud.num_points
            ));
        }
        for i in 0..self.len() {
            let range = self.parts_of_sample(i);
            if let Some(&p) = self.sample_parts(i).iter().find(|&&p| !range.contains(&usize::from(p))) {
                return invalid(format!(
                    "sample {i} ({}) has a point of part {p}, outside its category's parts {range:?}",
                    self.cloud.class_names[usize::from(self.cloud.labels[i])]
                ));
            }
        }
        Ok(())
    }
}

/// The predicted part of every point of one shape: the best-scoring part among `parts` (the
/// shape's category's), ties to the lower id. `scores`: `num_parts × points` values, part
/// planes one after the other (`scores[p * points + j]` for part `p`, point `j`).
pub fn predict_parts(scores: &[f32], points: usize, parts: Range<usize>) -> Vec<u8> {
    (0..points)
        .map(|j| {
            let mut best = parts.start;
            for p in parts.clone() {
                if scores[p * points + j] > scores[best * points + j] {
                    best = p;
                }
            }
            best as u8
        })
        .collect()
}

/// The IoU of one shape (PointNet's definition): the mean over the category's `parts` of
/// |predicted ∩ true| / |predicted ∪ true|, a part absent from both counting 1.
pub fn shape_iou(predicted: &[u8], truth: &[u8], parts: Range<usize>) -> f64 {
    let count = parts.len().max(1) as f64;
    parts
        .map(|p| {
            let (mut inter, mut union) = (0usize, 0usize);
            for (&a, &b) in predicted.iter().zip(truth) {
                let (a, b) = (usize::from(a) == p, usize::from(b) == p);
                inter += usize::from(a && b);
                union += usize::from(a || b);
            }
            if union == 0 { 1.0 } else { inter as f64 / union as f64 }
        })
        .sum::<f64>()
        / count
}

/// Accumulated part-segmentation scores: per category the sum and count of shape IoUs.
#[derive(Clone, Debug, PartialEq)]
pub struct PartIoU {
    sums: Vec<f64>,
    counts: Vec<usize>,
}

impl PartIoU {
    /// Empty scores over `categories` categories.
    pub fn new(categories: usize) -> Self {
        Self { sums: vec![0.0; categories], counts: vec![0; categories] }
    }

    /// Adds one shape of `category` with IoU `iou`.
    pub fn add(&mut self, category: usize, iou: f64) {
        self.sums[category] += iou;
        self.counts[category] += 1;
    }

    /// Mean shape IoU of each category (`None` where no shape was added).
    pub fn per_category(&self) -> Vec<Option<f64>> {
        self.sums.iter().zip(&self.counts).map(|(&s, &n)| (n > 0).then(|| s / n as f64)).collect()
    }

    /// Class mIoU: the mean of the categories' mIoUs, over the categories with shapes (the
    /// "mean" of Wang et al. 2024 Table 6 and of PointNet's per-category table).
    pub fn class_miou(&self) -> Option<f64> {
        let seen: Vec<f64> = self.per_category().into_iter().flatten().collect();
        (!seen.is_empty()).then(|| seen.iter().sum::<f64>() / seen.len() as f64)
    }

    /// Instance mIoU: the mean IoU over all shapes.
    pub fn instance_miou(&self) -> Option<f64> {
        let n: usize = self.counts.iter().sum();
        (n > 0).then(|| self.sums.iter().sum::<f64>() / n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predictions_stay_in_the_category_and_ties_take_the_lower_part() {
        // 4 parts × 3 points; the category owns parts 1..3.
        let scores = [
            9.0, 9.0, 9.0, // part 0: best overall but not the category's
            1.0, 2.0, 5.0, // part 1
            2.0, 2.0, 4.0, // part 2
            0.0, 0.0, 0.0, // part 3
        ];
        assert_eq!(predict_parts(&scores, 3, 1..3), vec![2, 1, 1]);
    }

    #[test]
    fn shape_iou_matches_hand_counts() {
        // parts 0 and 1: part 0 pred {0,1,2} truth {0,1} → 2/3; part 1 pred {3} truth {2,3} → 1/2.
        let iou = shape_iou(&[0, 0, 0, 1], &[0, 0, 1, 1], 0..2);
        assert!((iou - (2.0 / 3.0 + 0.5) / 2.0).abs() < 1e-12, "{iou}");
        // A part absent from both counts 1: perfect on part 0, part 1 never appears.
        assert_eq!(shape_iou(&[0, 0], &[0, 0], 0..2), 1.0);
        let mut scores = PartIoU::new(3);
        scores.add(0, 1.0);
        scores.add(0, 0.5);
        scores.add(2, 0.25);
        assert_eq!(scores.per_category(), vec![Some(0.75), None, Some(0.25)]);
        assert_eq!(scores.class_miou(), Some(0.5));
        assert!((scores.instance_miou().unwrap() - 1.75 / 3.0).abs() < 1e-12);
        assert_eq!(PartIoU::new(2).class_miou(), None);
    }
}
