//! A YOLOv2-style single-stage detector (`yolo-vgg`, Redmon & Farhadi 2017) on a VGG-style
//! backbone, with its box decoding, non-maximum suppression, training loss and k-means anchors.
//!
//! # Network
//!
//! [`DenseBackbone`] (VGG-16's first four blocks, 10 conv3x3 layers, stride
//! [`DENSE_STRIDE`] = 8) maps an image `[batch, 3, S, S]` to a `G×G` grid, `G = S/8` (a 64×64
//! image gives an 8×8 grid of 8-pixel cells; 32×32 gives 4×4). A 1×1 convolution with bias
//! (`head`, analog: no activation after it) maps the features to `A·(5 + C)` channels: per
//! anchor `a` the fields `tx, ty, tw, th, to` and `C` class logits. The forward returns that map
//! flattened, `[batch, G·G·A·(5 + C)]`, so conversion, simulation and the readouts treat it as
//! an ordinary `[batch, D]` output.
//!
//! # Flattening order
//!
//! Channel-major, burn's row-major reshape of the head output `[batch, A·(5 + C), G, G]`, with
//! channel `a·(5 + C) + field`: value `(anchor a, field f, row gy, column gx)` of a sample is at
//! `((a·(5 + C) + f)·G + gy)·G + gx` ([`YoloLayout::index`]). Fields: [`YoloLayout::TX`] = 0,
//! `TY` = 1, `TW` = 2, `TH` = 3, `OBJECTNESS` = 4, class `c` at `CLASS0 + c` = `5 + c`.
//!
//! # Parametrisation (YOLOv2)
//!
//! For the cell `(gy, gx)` and anchor `(p_w, p_h)` (in grid cells), on an `S`-pixel image:
//! `x = (gx + σ(tx))·S/G`, `y = (gy + σ(ty))·S/G`, `w = p_w·exp(min(tw, 8))·S/G`,
//! `h = p_h·exp(min(th, 8))·S/G`, objectness `σ(to)`, class probabilities `softmax(logits)`,
//! score of class `c` = `σ(to)·p_c`. The exponent is clamped at [`MAX_LOG_SCALE`] = 8 (a box at
//! most e⁸ ≈ 2981 anchors wide) so an untrained or spiking output never overflows to ∞.
//!
//! # Anchors
//!
//! `ModelSpec::anchors` in grid-cell units; when empty, [`default_anchors`]: YOLOv2's five VOC
//! anchors (defined on a 13×13 grid) scaled by `G/13`, i.e. the same fractions of the image.
//! [`kmeans_anchors`] fits anchors to a training set's box shapes.

use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, sigmoid};

use crate::graph::GraphBuilder;
use crate::layers::{bn, conv, conv_bn_forward, fold_pair, scaled};
use crate::network::ModelError;
use crate::{ActivationParams, Convertible, ForwardCtx, GraphError, LayerGraph, Pooling, SlotInfo, tensor_from};

/// Downsampling factor of [`DenseBackbone`]: three 2x2 poolings.
pub const DENSE_STRIDE: usize = 8;

/// Largest `tw`/`th` used by [`decode`]: `exp` is applied to `min(t, MAX_LOG_SCALE)`.
pub const MAX_LOG_SCALE: f32 = 8.0;

/// YOLOv2's VOC anchors `(width, height)` in cells of its 13×13 grid.
pub const YOLO_V2_VOC_ANCHORS: [[f32; 2]; 5] =
    [[1.3221, 1.73145], [3.19275, 4.00944], [5.05587, 8.09892], [9.47112, 4.84053], [11.2364, 10.0071]];

/// The default anchors for a `grid`×`grid` output: [`YOLO_V2_VOC_ANCHORS`] × `grid/13` (the same
/// fractions of the image as on YOLOv2's 13×13 grid). For a 64×64 image (grid 8):
/// (0.81, 1.07), (1.96, 2.47), (3.11, 4.98), (5.83, 2.98), (6.91, 6.16) cells.
pub fn default_anchors(grid: usize) -> Vec<[f32; 2]> {
    let s = grid as f32 / 13.0;
    YOLO_V2_VOC_ANCHORS.iter().map(|[w, h]| [w * s, h * s]).collect()
}

/// Blocks of [`DenseBackbone`]: (channels before the width multiplier, convs, pool after).
const DENSE_BLOCKS: [(usize, usize, bool); 4] = [(64, 2, true), (128, 2, true), (256, 3, true), (512, 3, false)];

fn invalid(model: &str, reason: impl Into<String>) -> ModelError {
    ModelError::Invalid { model: model.into(), reason: reason.into() }
}

/// One backbone convolution with optional batch norm.
#[derive(Module, Debug)]
pub struct BackboneConv {
    conv: Conv2d,
    bn: Option<BatchNorm>,
}

/// The VGG-style backbone of the dense-prediction models: VGG-16's first four blocks
/// (64, 128, 256, 512 channels × width; 2, 2, 3, 3 conv3x3 layers, each conv + optional BN +
/// activation slot) with a 2x2 pool after each of the first three blocks (avg after the
/// block's last slot, or pre-neuron max before it, as in [`crate::Vgg`]); the fourth block runs
/// at the output resolution. `[batch, c, H, W]` → `[batch, 512w, H/8, W/8]`; 10 slots named
/// `features.{i}.relu`, traced layers `features.{i}`.
#[derive(Module, Debug)]
pub struct DenseBackbone {
    features: Vec<BackboneConv>,
    #[module(skip)]
    pooling: Pooling,
    #[module(skip)]
    pool_after: Vec<bool>,
}

impl DenseBackbone {
    /// A backbone for inputs of `cin` channels.
    pub fn new(cin: usize, width: f32, batch_norm: bool, pooling: Pooling, device: &Device) -> Self {
        let mut cin = cin;
        let mut features = Vec::new();
        let mut pool_after = Vec::new();
        for (c, n, pool) in DENSE_BLOCKS {
            let c = scaled(c, width);
            for i in 0..n {
                features.push(BackboneConv {
                    conv: conv(cin, c, 3, 1, !batch_norm, device),
                    bn: bn(c, batch_norm, device),
                });
                cin = c;
                pool_after.push(pool && i + 1 == n);
            }
        }
        Self { features, pooling, pool_after }
    }

    /// The output map `[h, w]` of an input `[c, h, w]`: an error naming `model` unless `h` and
    /// `w` are positive multiples of [`DENSE_STRIDE`].
    pub fn output_hw(model: &str, input: [usize; 3]) -> Result<[usize; 2], ModelError> {
        let [_, h, w] = input;
        if h == 0 || w == 0 || !h.is_multiple_of(DENSE_STRIDE) || !w.is_multiple_of(DENSE_STRIDE) {
            return Err(invalid(
                model,
                format!(
                    "input height and width must be positive multiples of {DENSE_STRIDE} (the backbone's stride); got {h}x{w}"
                ),
            ));
        }
        Ok([h / DENSE_STRIDE, w / DENSE_STRIDE])
    }

    /// Channels of the output map.
    pub fn out_channels(&self) -> usize {
        self.features.last().map_or(0, |l| l.conv.weight.dims()[0])
    }

    /// Number of activation slots (one per conv).
    pub fn slot_count(&self) -> usize {
        self.features.len()
    }

    /// `x`: `[batch, c, H, W]` → `[batch, 512w, H/8, W/8]`, slots `0..10`. Returns early (with
    /// the map reached so far) once `ctx` is stopped.
    pub fn forward_ctx(&self, mut x: Tensor<4>, ctx: &mut ForwardCtx) -> Tensor<4> {
        for (i, layer) in self.features.iter().enumerate() {
            x = conv_bn_forward(&layer.conv, layer.bn.as_ref(), x, ctx, || format!("features.{i}"));
            x = match (self.pool_after[i], self.pooling) {
                (true, Pooling::Max) => ctx.act(i, MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init().forward(x)),
                (true, Pooling::Avg) => AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init().forward(ctx.act(i, x)),
                (false, _) => ctx.act(i, x),
            };
            if ctx.stopped() {
                break;
            }
        }
        x
    }

    /// The slots; the last one feeds the layer `next`.
    pub(crate) fn slots(&self, next: &str) -> Vec<SlotInfo> {
        let n = self.features.len();
        (0..n)
            .map(|i| SlotInfo {
                name: format!("features.{i}.relu"),
                consumers: vec![if i + 1 < n { format!("features.{}", i + 1) } else { next.into() }],
            })
            .collect()
    }

    /// Adds the backbone to `g` after its input node; returns the last node.
    pub(crate) fn graph(&self, g: &mut GraphBuilder) -> Result<String, GraphError> {
        let mut x = "input".to_string();
        for (i, layer) in self.features.iter().enumerate() {
            x = g.conv(&format!("features.{i}"), &layer.conv, layer.bn.as_ref(), &x)?;
            if self.pool_after[i] && self.pooling == Pooling::Max {
                return Err(g.unsupported("pre-neuron max pooling has no graph form (max pooling of membrane inputs)"));
            }
            x = g.slot(&format!("features.{i}.relu"), i, &[&x])?;
            if self.pool_after[i] {
                x = g.avg_pool(&format!("features.{i}.pool"), [2, 2], &x);
            }
        }
        Ok(x)
    }

    /// The backbone with every batch norm folded into its conv.
    pub fn fold_batchnorm(self) -> Self {
        let features = self
            .features
            .into_iter()
            .map(|l| {
                let (conv, bn) = fold_pair(l.conv, l.bn);
                BackboneConv { conv, bn }
            })
            .collect();
        Self { features, ..self }
    }
}

/// Where each value of a [`YoloVgg`] output sits (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct YoloLayout {
    /// `G`: the output is a `G×G` grid.
    pub grid: usize,
    /// Anchor `(width, height)` in grid cells; `A` = their number.
    pub anchors: Vec<[f32; 2]>,
    /// Object classes `C` (no background class).
    pub classes: usize,
}

impl YoloLayout {
    /// Field of the x offset `tx`.
    pub const TX: usize = 0;
    /// Field of the y offset `ty`.
    pub const TY: usize = 1;
    /// Field of the log width scale `tw`.
    pub const TW: usize = 2;
    /// Field of the log height scale `th`.
    pub const TH: usize = 3;
    /// Field of the objectness logit `to`.
    pub const OBJECTNESS: usize = 4;
    /// Field of the first class logit (class `c` at `CLASS0 + c`).
    pub const CLASS0: usize = 5;

    /// Fields per anchor and cell: `5 + C`.
    pub fn fields(&self) -> usize {
        Self::CLASS0 + self.classes
    }

    /// Values per sample: `A·(5 + C)·G·G`.
    pub fn values(&self) -> usize {
        self.anchors.len() * self.fields() * self.grid * self.grid
    }

    /// Position of `(anchor, field, gy, gx)` in one sample's flattened output:
    /// `((anchor·(5 + C) + field)·G + gy)·G + gx`.
    pub fn index(&self, anchor: usize, field: usize, gy: usize, gx: usize) -> usize {
        ((anchor * self.fields() + field) * self.grid + gy) * self.grid + gx
    }

    /// An error unless the grid, the class count and every anchor are positive (and finite).
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.grid == 0 || self.classes == 0 || self.anchors.is_empty() {
            return Err(invalid("yolo-vgg", "the layout needs a positive grid, classes and at least one anchor"));
        }
        if let Some(a) = self.anchors.iter().find(|a| !a.iter().all(|v| v.is_finite() && *v > 0.0)) {
            return Err(invalid("yolo-vgg", format!("anchor {a:?}: width and height must be positive")));
        }
        Ok(())
    }
}

/// The YOLOv2-style detector: [`DenseBackbone`] then a 1×1 conv `head` (with bias, analog) to
/// `A·(5 + C)` channels. 10 activation slots (`features.{i}.relu`), traced layers
/// `features.{i}` and `head`. See the module documentation for the output layout.
#[derive(Module, Debug)]
pub struct YoloVgg {
    backbone: DenseBackbone,
    head: Conv2d,
    /// Clip/QCFS activation parameters (ReLU when `None`).
    pub(crate) act: Option<ActivationParams>,
    #[module(skip)]
    layout: YoloLayout,
}

impl YoloVgg {
    /// `input`: `[channels, S, S]` with `S` a positive multiple of [`DENSE_STRIDE`]; `classes`
    /// object classes; `anchors` in grid cells (empty: [`default_anchors`]).
    pub fn new(
        input: [usize; 3],
        classes: usize,
        anchors: &[[f32; 2]],
        width: f32,
        batch_norm: bool,
        pooling: Pooling,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let [gh, gw] = DenseBackbone::output_hw("yolo-vgg", input)?;
        if gh != gw {
            return Err(invalid("yolo-vgg", format!("expects a square image; got {}x{}", input[1], input[2])));
        }
        let anchors = if anchors.is_empty() { default_anchors(gh) } else { anchors.to_vec() };
        let layout = YoloLayout { grid: gh, anchors, classes };
        layout.validate()?;
        let backbone = DenseBackbone::new(input[0], width, batch_norm, pooling, device);
        let head = conv(backbone.out_channels(), layout.anchors.len() * layout.fields(), 1, 1, true, device);
        Ok(Self { backbone, head, act: None, layout })
    }

    /// The layout of the flattened output.
    pub fn layout(&self) -> &YoloLayout {
        &self.layout
    }

    /// The head's output map: `[batch, 3, S, S]` → `[batch, A·(5 + C), G, G]` (channel
    /// `a·(5 + C) + field`). `None` when `ctx` stopped inside the backbone.
    pub fn forward_map(&self, x: Tensor<4>, ctx: &mut ForwardCtx) -> Option<Tensor<4>> {
        ctx.use_activation(self.act.as_ref());
        let x = self.backbone.forward_ctx(x, ctx);
        if ctx.stopped() {
            return None;
        }
        Some(conv_bn_forward(&self.head, None, x, ctx, || "head".into()))
    }
}

impl Convertible for YoloVgg {
    /// `x`: `[batch, 3, S, S]` → `[batch, G·G·A·(5 + C)]`, the head map flattened channel-major
    /// (index [`YoloLayout::index`]).
    fn forward_ctx(&self, x: Tensor<4>, ctx: &mut ForwardCtx) -> Tensor<2> {
        let [n, ..] = x.dims();
        let device = x.device();
        match self.forward_map(x, ctx) {
            Some(y) => y.reshape([n, self.layout.values()]),
            None => ForwardCtx::skipped_logits(n, self.layout.values(), &device),
        }
    }

    fn slots(&self) -> Vec<SlotInfo> {
        self.backbone.slots("head")
    }

    fn layer_graph(&self, input: [usize; 3]) -> Result<LayerGraph, GraphError> {
        let mut g = GraphBuilder::new("yolo-vgg", input);
        let x = self.backbone.graph(&mut g)?;
        let x = g.conv("head", &self.head, None, &x)?;
        let x = g.flatten("flatten", &x);
        Ok(g.finish(&x))
    }

    fn fold_batchnorm(self) -> Self {
        Self { backbone: self.backbone.fold_batchnorm(), ..self }
    }
}

/// A detection in pixel coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecodedBox {
    /// Left edge.
    pub x1: f32,
    /// Top edge.
    pub y1: f32,
    /// Right edge.
    pub x2: f32,
    /// Bottom edge.
    pub y2: f32,
    /// Class index in `0..C`.
    pub class: usize,
    /// `σ(to)·p_class`.
    pub score: f32,
}

impl DecodedBox {
    /// `[x1, y1, x2, y2]`.
    pub fn corners(&self) -> [f32; 4] {
        [self.x1, self.y1, self.x2, self.y2]
    }
}

/// A ground-truth box in pixel corners with its class in `0..C`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TargetBox {
    /// Left edge.
    pub x1: f32,
    /// Top edge.
    pub y1: f32,
    /// Right edge.
    pub x2: f32,
    /// Bottom edge.
    pub y2: f32,
    /// Class index in `0..C`.
    pub class: usize,
}

impl TargetBox {
    fn corners(&self) -> [f32; 4] {
        [self.x1, self.y1, self.x2, self.y2]
    }
}

/// Intersection over union of two boxes `[x1, y1, x2, y2]`; 0 when the union is empty.
pub fn box_iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: [f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// IoU of two shapes `(w, h)` placed at a common centre.
fn shape_iou(a: [f32; 2], b: [f32; 2]) -> f32 {
    let inter = a[0].min(b[0]) * a[1].min(b[1]);
    let union = a[0] * a[1] + b[0] * b[1] - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

fn sigmoid1(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The box `[x1, y1, x2, y2]` (pixels) predicted by `(anchor, gy, gx)` of one sample's `raw`.
fn predicted_box(raw: &[f32], layout: &YoloLayout, anchor: usize, gy: usize, gx: usize, image_size: f32) -> [f32; 4] {
    let at = |f| raw[layout.index(anchor, f, gy, gx)];
    let cell = image_size / layout.grid as f32;
    let [pw, ph] = layout.anchors[anchor];
    let cx = (gx as f32 + sigmoid1(at(YoloLayout::TX))) * cell;
    let cy = (gy as f32 + sigmoid1(at(YoloLayout::TY))) * cell;
    let w = pw * at(YoloLayout::TW).min(MAX_LOG_SCALE).exp() * cell;
    let h = ph * at(YoloLayout::TH).min(MAX_LOG_SCALE).exp() * cell;
    [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
}

/// Decodes one sample's output `raw` (`layout.values()` values, [`YoloLayout::index`] order)
/// on an `image_size`-pixel square image: every (cell, anchor, class) whose score
/// `σ(to)·softmax(logits)_c` is at least `score_threshold` gives a box (YOLOv2's per-class
/// boxes; boxes are not clipped to the image), in the order cell row `gy`, column `gx`,
/// anchor, class. Equations in the module documentation. Non-finite scores are never kept.
///
/// # Panics
///
/// If `raw.len() != layout.values()` (the row is not an output of this layout).
pub fn decode(raw: &[f32], layout: &YoloLayout, image_size: f32, score_threshold: f32) -> Vec<DecodedBox> {
    assert_eq!(raw.len(), layout.values(), "decode: the output row does not have the layout's number of values");
    let g = layout.grid;
    let mut boxes = Vec::new();
    let mut probs = vec![0.0f32; layout.classes];
    for gy in 0..g {
        for gx in 0..g {
            for a in 0..layout.anchors.len() {
                let objectness = sigmoid1(raw[layout.index(a, YoloLayout::OBJECTNESS, gy, gx)]);
                let logit = |c: usize| raw[layout.index(a, YoloLayout::CLASS0 + c, gy, gx)];
                let max = (0..layout.classes).map(logit).fold(f32::NEG_INFINITY, f32::max);
                for (c, p) in probs.iter_mut().enumerate() {
                    *p = (logit(c) - max).exp();
                }
                let total: f32 = probs.iter().sum();
                let [x1, y1, x2, y2] = predicted_box(raw, layout, a, gy, gx, image_size);
                for (class, p) in probs.iter().enumerate() {
                    let score = objectness * p / total;
                    if score >= score_threshold {
                        boxes.push(DecodedBox { x1, y1, x2, y2, class, score });
                    }
                }
            }
        }
    }
    boxes
}

/// Greedy non-maximum suppression per class: boxes by decreasing score (ties: the earlier box
/// of `boxes` first), each kept unless its IoU with a kept box of the same class exceeds
/// `iou_threshold`. Returns the kept boxes in that order; boxes with a NaN score are dropped.
pub fn nms(boxes: Vec<DecodedBox>, iou_threshold: f32) -> Vec<DecodedBox> {
    let mut order: Vec<DecodedBox> = boxes.into_iter().filter(|b| !b.score.is_nan()).collect();
    // Stable: equal scores keep their input order.
    order.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<DecodedBox> = Vec::new();
    for b in order {
        if !kept.iter().any(|k| k.class == b.class && box_iou(k.corners(), b.corners()) > iou_threshold) {
            kept.push(b);
        }
    }
    kept
}

/// Weights of [`try_yolo_v2_loss`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct YoloLossConfig {
    /// λ_coord: weight of the coordinate terms (default 5, YOLOv1/v2).
    pub lambda_coord: f32,
    /// λ_noobj: weight of the objectness term of anchors without an object (default 0.5).
    pub lambda_noobj: f32,
    /// Predictions without an object whose decoded box has an IoU above this with some ground
    /// truth box of the image get no objectness loss (YOLOv2: 0.6); `None` never ignores.
    pub ignore_iou: Option<f32>,
}

impl Default for YoloLossConfig {
    fn default() -> Self {
        Self { lambda_coord: 5.0, lambda_noobj: 0.5, ignore_iou: Some(0.6) }
    }
}

/// [`try_yolo_v2_loss`] with the default [`YoloLossConfig`] (λ_coord = 5, λ_noobj = 0.5,
/// ignore threshold 0.6): the YOLOv2 loss of `output` `[batch, layout.values()]` for the
/// ground-truth boxes `targets[i]` of sample `i`, a scalar `[1]`.
///
/// # Panics
///
/// On the inputs [`try_yolo_v2_loss`] rejects (shapes that do not match, a class `≥ C`, a box
/// without positive extent, an invalid layout or image size), with its message.
pub fn yolo_v2_loss(output: Tensor<2>, targets: &[Vec<TargetBox>], layout: &YoloLayout, image_size: f32) -> Tensor<1> {
    try_yolo_v2_loss(output, targets, layout, image_size, &YoloLossConfig::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// The regression targets of one responsible (image, anchor, cell).
#[derive(Clone, Copy)]
struct Assigned {
    class: usize,
    /// `σ(tx)`, `σ(ty)` targets: the centre's offset in its cell, in `[0, 1]`.
    offset: [f32; 2],
    /// `tw`, `th` targets: `ln(box / anchor)`.
    log_scale: [f32; 2],
}

/// YOLOv2 loss of `output` (`[batch, layout.values()]`, the raw network output) for the
/// ground-truth boxes `targets[i]` of sample `i` (pixel corners on `image_size`-pixel images).
///
/// Assignment: a box with centre `(cx, cy)` and size `(w, h)` (grid units: pixels·G/S) is the
/// responsibility of cell `(⌊cy⌋, ⌊cx⌋)` (clamped to the grid) and of the anchor whose shape
/// has the best IoU with the box's when both are centred (ties: the lower anchor); if two boxes
/// land on one (cell, anchor), the later box wins. With `s = σ(raw)`:
///
/// `L = (1/batch)·[ λ_coord·Σ_resp ((s_x − (cx − gx))² + (s_y − (cy − gy))²
///                                 + (tw − ln(w/p_w))² + (th − ln(h/p_h))²)
///                + Σ_resp (s_o − 1)² + λ_noobj·Σ_other s_o²
///                − Σ_resp ln softmax(class logits)_class ]`
///
/// where "other" excludes predictions whose decoded box (see [`decode`]) has IoU above
/// `ignore_iou` with a ground-truth box of the same image. λ_coord is a constant (not
/// YOLOv2's `2 − w·h` size scale). Targets and masks are built on the host from the (detached)
/// output values and uploaded, so the loss is differentiable with respect to `output` on any
/// autodiff device. Errors: a batch or output width that does not match, an invalid layout,
/// image size or config, a box with non-finite or non-positive extent, a class `≥ C`.
pub fn try_yolo_v2_loss(
    output: Tensor<2>,
    targets: &[Vec<TargetBox>],
    layout: &YoloLayout,
    image_size: f32,
    config: &YoloLossConfig,
) -> Result<Tensor<1>, ModelError> {
    layout.validate()?;
    let err = |reason: String| invalid("yolo-vgg", format!("loss: {reason}"));
    let [n, d] = output.dims();
    if n == 0 || n != targets.len() || d != layout.values() {
        return Err(err(format!(
            "output is [{n}, {d}] for {} target lists; expected [{}, {}]",
            targets.len(),
            targets.len(),
            layout.values()
        )));
    }
    if !(image_size > 0.0 && image_size.is_finite()) {
        return Err(err(format!("image size {image_size} must be positive")));
    }
    let weights_ok = config.lambda_coord >= 0.0 && config.lambda_noobj >= 0.0;
    if !weights_ok || !config.lambda_coord.is_finite() || !config.lambda_noobj.is_finite() {
        return Err(err("lambda_coord and lambda_noobj must be finite and non-negative".into()));
    }
    let (g, anchors, classes) = (layout.grid, layout.anchors.len(), layout.classes);
    let to_grid = g as f32 / image_size;
    let cell_of = |v: f32| (v.floor().max(0.0) as usize).min(g - 1);
    let mut assigned: Vec<Option<Assigned>> = vec![None; n * anchors * g * g];
    for (b, boxes) in targets.iter().enumerate() {
        for t in boxes {
            let finite = t.corners().iter().all(|v| v.is_finite());
            if !finite || t.x2 <= t.x1 || t.y2 <= t.y1 {
                return Err(err(format!("ground-truth box {t:?} of sample {b} has no positive extent")));
            }
            if t.class >= classes {
                return Err(err(format!("ground-truth class {} of sample {b} is not below {classes}", t.class)));
            }
            let (cx, cy) = ((t.x1 + t.x2) / 2.0 * to_grid, (t.y1 + t.y2) / 2.0 * to_grid);
            let (w, h) = ((t.x2 - t.x1) * to_grid, (t.y2 - t.y1) * to_grid);
            let (gx, gy) = (cell_of(cx), cell_of(cy));
            let mut best = (0, f32::NEG_INFINITY);
            for (a, &anchor) in layout.anchors.iter().enumerate() {
                let iou = shape_iou(anchor, [w, h]);
                if iou > best.1 {
                    best = (a, iou);
                }
            }
            let [pw, ph] = layout.anchors[best.0];
            assigned[((b * anchors + best.0) * g + gy) * g + gx] = Some(Assigned {
                class: t.class,
                offset: [(cx - gx as f32).clamp(0.0, 1.0), (cy - gy as f32).clamp(0.0, 1.0)],
                log_scale: [(w / pw).ln(), (h / ph).ln()],
            });
        }
    }
    let host = match config.ignore_iou {
        Some(_) if targets.iter().any(|t| !t.is_empty()) => Some(crate::tensor_values(output.clone().detach())),
        _ => None,
    };
    // Squared errors on σ(raw) (x, y, objectness) and on raw (w, h), and the class one-hot.
    let (mut w_sig, mut t_sig) = (vec![0.0f32; n * d], vec![0.0f32; n * d]);
    let (mut w_raw, mut t_raw) = (vec![0.0f32; n * d], vec![0.0f32; n * d]);
    let mut onehot = vec![0.0f32; n * anchors * classes * g * g];
    let lc = config.lambda_coord;
    for b in 0..n {
        for a in 0..anchors {
            for gy in 0..g {
                for gx in 0..g {
                    let at = |field| b * d + layout.index(a, field, gy, gx);
                    match assigned[((b * anchors + a) * g + gy) * g + gx] {
                        Some(t) => {
                            for (k, field) in [YoloLayout::TX, YoloLayout::TY].into_iter().enumerate() {
                                (w_sig[at(field)], t_sig[at(field)]) = (lc, t.offset[k]);
                            }
                            for (k, field) in [YoloLayout::TW, YoloLayout::TH].into_iter().enumerate() {
                                (w_raw[at(field)], t_raw[at(field)]) = (lc, t.log_scale[k]);
                            }
                            (w_sig[at(YoloLayout::OBJECTNESS)], t_sig[at(YoloLayout::OBJECTNESS)]) = (1.0, 1.0);
                            onehot[(((b * anchors + a) * classes + t.class) * g + gy) * g + gx] = 1.0;
                        }
                        None => {
                            let ignored = match (&host, config.ignore_iou) {
                                (Some(raw), Some(limit)) => {
                                    let p = predicted_box(&raw[b * d..(b + 1) * d], layout, a, gy, gx, image_size);
                                    targets[b].iter().any(|t| box_iou(p, t.corners()) > limit)
                                }
                                _ => false,
                            };
                            if !ignored {
                                w_sig[at(YoloLayout::OBJECTNESS)] = config.lambda_noobj;
                            }
                        }
                    }
                }
            }
        }
    }
    let device = output.device();
    let flat = |v: Vec<f32>| tensor_from(v, [n, d], &device);
    let sig_term = sigmoid(output.clone()).sub(flat(t_sig)).powi_scalar(2).mul(flat(w_sig)).sum();
    let raw_term = output.clone().sub(flat(t_raw)).powi_scalar(2).mul(flat(w_raw)).sum();
    let logits = output.reshape([n, anchors, layout.fields(), g * g]).narrow(2, YoloLayout::CLASS0, classes);
    let onehot = tensor_from(onehot, [n, anchors, classes, g * g], &device);
    let class_term = log_softmax(logits, 2).mul(onehot).sum().neg();
    Ok((sig_term + raw_term + class_term).div_scalar(n as f32))
}

/// SplitMix64: a small seeded generator for [`kmeans_anchors`].
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// k-means anchors (YOLOv2): clusters box shapes `wh` (`(width, height)`, any unit; the
/// anchors come out in that unit) with the distance `1 − IoU` of two shapes at a common
/// centre. Seeding by k-means++ (the next centre drawn with probability ∝ distance² from a
/// SplitMix64 stream of `seed`), then at most `iterations` Lloyd steps (each shape to its
/// nearest centre, ties to the lower; each centre to the mean width and height of its
/// shapes; an empty cluster keeps its centre), stopping early when no assignment changes.
/// Deterministic for a seed. Returns the `k` centres sorted by area (then width). Errors:
/// `k = 0`, `k` above the number of shapes, a non-finite or non-positive shape.
pub fn kmeans_anchors(wh: &[[f32; 2]], k: usize, seed: u64, iterations: usize) -> Result<Vec<[f32; 2]>, ModelError> {
    let err = |reason: String| invalid("yolo-vgg", format!("kmeans_anchors: {reason}"));
    if k == 0 || k > wh.len() {
        return Err(err(format!("k = {k} must be in 1..={} (the number of shapes)", wh.len())));
    }
    if let Some(s) = wh.iter().find(|s| !s.iter().all(|v| v.is_finite() && *v > 0.0)) {
        return Err(err(format!("shape {s:?}: width and height must be positive")));
    }
    let dist = |a: [f32; 2], b: [f32; 2]| 1.0 - shape_iou(a, b);
    let mut rng = SplitMix(seed);
    let mut centres = vec![wh[(rng.next_u64() % wh.len() as u64) as usize]];
    while centres.len() < k {
        let d2: Vec<f64> = wh
            .iter()
            .map(|&s| centres.iter().map(|&c| dist(s, c)).fold(f32::INFINITY, f32::min) as f64)
            .map(|d| d * d)
            .collect();
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let mut r = rng.unit() * total;
            let mut pick = d2.iter().rposition(|&v| v > 0.0).unwrap_or(0);
            for (i, &v) in d2.iter().enumerate() {
                if r < v {
                    pick = i;
                    break;
                }
                r -= v;
            }
            pick
        } else {
            // Every shape coincides with a centre: take the next shape in order.
            centres.len() % wh.len()
        };
        centres.push(wh[pick]);
    }
    let nearest = |s: [f32; 2], centres: &[[f32; 2]]| {
        let mut best = (0, f32::INFINITY);
        for (j, &c) in centres.iter().enumerate() {
            let v = dist(s, c);
            if v < best.1 {
                best = (j, v);
            }
        }
        best.0
    };
    let mut assignment: Vec<usize> = wh.iter().map(|&s| nearest(s, &centres)).collect();
    for _ in 0..iterations {
        let mut sums = vec![[0.0f64; 2]; k];
        let mut counts = vec![0usize; k];
        for (s, &j) in wh.iter().zip(&assignment) {
            sums[j][0] += s[0] as f64;
            sums[j][1] += s[1] as f64;
            counts[j] += 1;
        }
        for j in 0..k {
            if counts[j] > 0 {
                centres[j] = [(sums[j][0] / counts[j] as f64) as f32, (sums[j][1] / counts[j] as f64) as f32];
            }
        }
        let next: Vec<usize> = wh.iter().map(|&s| nearest(s, &centres)).collect();
        if next == assignment {
            break;
        }
        assignment = next;
    }
    centres.sort_by(|a, b| (a[0] * a[1]).total_cmp(&(b[0] * b[1])).then(a[0].total_cmp(&b[0])));
    Ok(centres)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GraphOp, Network, build_model, reference_apply, tensor_values};
    use burn::tensor::Distribution;
    use std::collections::HashMap;

    fn spec(text: &str) -> crate::ModelSpec {
        toml::from_str(text).unwrap()
    }

    const TINY: &str = "name = \"yolo-vgg\"\nwidth = 0.0625\nanchors = [[1.0, 1.0], [2.5, 1.5]]";

    fn layout() -> YoloLayout {
        YoloLayout { grid: 4, anchors: vec![[1.0, 1.0], [2.0, 3.0]], classes: 3 }
    }

    fn logit(p: f32) -> f32 {
        (p / (1.0 - p)).ln()
    }

    #[test]
    fn output_shape_and_index_agree_with_the_head_map() {
        let d = Device::flex();
        d.seed(1);
        let net = build_model(&spec(TINY), [3, 32, 32], 3, &d).unwrap();
        let Network::Detector(m) = &net else { panic!("a yolo-vgg network") };
        let layout = m.layout();
        assert_eq!((layout.grid, layout.anchors.len(), layout.fields()), (4, 2, 8));
        assert_eq!(layout.values(), 4 * 4 * 2 * 8);
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &d);
        let out = net.forward(x.clone());
        assert_eq!(out.dims(), [2, layout.values()]);
        let map = m.forward_map(x, &mut ForwardCtx::ann()).unwrap();
        let [_, ch, gh, gw] = map.dims();
        assert_eq!([ch, gh, gw], [16, 4, 4]);
        let (out, map) = (tensor_values(out), tensor_values(map));
        let dv = layout.values();
        for b in 0..2 {
            for a in 0..2 {
                for f in 0..8 {
                    for gy in 0..4 {
                        for gx in 0..4 {
                            let m4 = map[((b * ch + a * 8 + f) * gh + gy) * gw + gx];
                            assert_eq!(out[b * dv + layout.index(a, f, gy, gx)], m4);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn forward_equals_the_hooked_forward_and_every_slot_is_called_once() {
        let d = Device::flex();
        d.seed(2);
        for pooling in ["avg", "max"] {
            let net = build_model(&spec(&format!("{TINY}\npooling = \"{pooling}\"")), [3, 32, 32], 3, &d).unwrap();
            let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &d);
            crate::test_support::check_slot_contract(&net, x, 10, "head");
        }
    }

    #[test]
    fn layer_graph_computes_what_the_network_computes() {
        let d = Device::flex();
        d.seed(3);
        let net = build_model(&spec(TINY), [3, 32, 32], 2, &d).unwrap().fold_batchnorm();
        let g = net.layer_graph([3, 32, 32]).unwrap();
        let slots: Vec<usize> =
            g.nodes.iter().filter_map(|n| if let GraphOp::Slot { slot } = n.op { Some(slot) } else { None }).collect();
        assert_eq!(slots, (0..10).collect::<Vec<_>>());
        let x = Tensor::<4>::random([1, 3, 32, 32], Distribution::Normal(0.0, 1.0), &d);
        let want = tensor_values(net.forward(x.clone()));
        let mut values: HashMap<&str, Vec<f32>> = HashMap::new();
        for node in &g.nodes {
            let out = match node.op {
                GraphOp::Input => tensor_values(x.clone()),
                ref op => {
                    let (from, _) = g.edges.iter().find(|(_, to)| *to == node.name).unwrap();
                    reference_apply(op, &node.output_shape, &values[from.as_str()])
                }
            };
            values.insert(&node.name, out);
        }
        let got = &values["output"];
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() <= 1e-3 * (1.0 + b.abs()), "graph {a} vs network {b}");
        }
        let max = build_model(&spec(&format!("{TINY}\npooling = \"max\"")), [3, 32, 32], 2, &d).unwrap();
        let err = max.fold_batchnorm().layer_graph([3, 32, 32]).unwrap_err().to_string();
        assert!(err.contains("yolo-vgg") && err.contains("max pooling"), "{err}");
    }

    #[test]
    fn invalid_specs_are_errors() {
        let d = Device::flex();
        let err = |text: &str, input: [usize; 3]| build_model(&spec(text), input, 3, &d).unwrap_err().to_string();
        assert!(err(TINY, [3, 30, 30]).contains("multiples of 8"));
        assert!(err(TINY, [3, 32, 16]).contains("square"));
        assert!(err("name = \"yolo-vgg\"\nanchors = [[1.0, 0.0]]", [3, 32, 32]).contains("positive"));
        assert!(err("name = \"vgg16\"\nanchors = [[1.0, 1.0]]", [3, 32, 32]).contains("yolo-vgg"));
        assert!(build_model(&spec(TINY), [3, 32, 32], 0, &d).is_err());
        // Empty anchors stay out of the serialized spec (cache keys of other models unchanged).
        assert!(!toml::to_string(&spec("name = \"vgg16\"")).unwrap().contains("anchors"));
        let round: crate::ModelSpec = toml::from_str(&toml::to_string(&spec(TINY)).unwrap()).unwrap();
        assert_eq!(round.anchors, [[1.0, 1.0], [2.5, 1.5]]);
        // Default anchors: YOLOv2's, scaled to the grid.
        let net = build_model(&spec("name = \"yolo-vgg\"\nwidth = 0.0625"), [3, 64, 64], 4, &d).unwrap();
        let Network::Detector(m) = net else { panic!() };
        assert_eq!(m.layout().grid, 8);
        assert_eq!(m.layout().anchors, default_anchors(8));
        assert!((m.layout().anchors[0][0] - 1.3221 * 8.0 / 13.0).abs() < 1e-6);
    }

    #[test]
    fn decode_gives_the_closed_form_box_and_nms_suppresses_per_class() {
        let l = layout();
        let mut raw = vec![0.0f32; l.values()];
        for a in 0..2 {
            for gy in 0..4 {
                for gx in 0..4 {
                    raw[l.index(a, YoloLayout::OBJECTNESS, gy, gx)] = -10.0;
                }
            }
        }
        // Anchor 1 (2 x 3 cells) at row 2, column 1: σ(tx) = 0.5, σ(ty) = 0.75, w = 2·1.5,
        // h = 3·1 cells; objectness σ(5); class 1 has logit 4, the others 0.
        let (a, gy, gx) = (1, 2, 1);
        raw[l.index(a, YoloLayout::TY, gy, gx)] = 3f32.ln();
        raw[l.index(a, YoloLayout::TW, gy, gx)] = 1.5f32.ln();
        raw[l.index(a, YoloLayout::OBJECTNESS, gy, gx)] = 5.0;
        raw[l.index(a, YoloLayout::CLASS0 + 1, gy, gx)] = 4.0;
        let boxes = decode(&raw, &l, 32.0, 0.5);
        assert_eq!(boxes.len(), 1, "{boxes:?}");
        let b = boxes[0];
        // Centre (1.5, 2.75) cells = (12, 22) px; size 3 x 3 cells = 24 x 24 px.
        let expected = [0.0, 10.0, 24.0, 34.0];
        for (g, e) in b.corners().iter().zip(expected) {
            assert!((g - e).abs() < 1e-4, "{:?}", b.corners());
        }
        assert_eq!(b.class, 1);
        let score = sigmoid1(5.0) * 4f32.exp() / (4f32.exp() + 2.0);
        assert!((b.score - score).abs() < 1e-6);
        // A low threshold emits every class of every cell and anchor.
        assert_eq!(decode(&raw, &l, 32.0, 0.0).len(), 4 * 4 * 2 * 3);
        // The exponent is clamped: a huge tw stays finite.
        raw[l.index(a, YoloLayout::TW, gy, gx)] = 1e4;
        assert!(decode(&raw, &l, 32.0, 0.5)[0].x2.is_finite());
        assert!(std::panic::catch_unwind(|| decode(&raw[1..], &l, 32.0, 0.5)).is_err());

        let bx = |x1: f32, class, score| DecodedBox { x1, y1: 0.0, x2: x1 + 10.0, y2: 10.0, class, score };
        let boxes = [bx(1.0, 0, 0.6), bx(0.0, 0, 0.9), bx(0.5, 1, 0.7), bx(20.0, 0, 0.6)];
        let kept = nms(boxes.to_vec(), 0.5);
        assert_eq!(kept, vec![boxes[1], boxes[2], boxes[3]]);
        // Equal scores: the earlier box wins.
        let tie = [bx(1.0, 0, 0.8), bx(0.0, 0, 0.8)];
        assert_eq!(nms(tie.to_vec(), 0.5), vec![tie[0]]);
    }

    /// Targets and the raw output that encodes them exactly (YOLOv2 parametrisation, by hand).
    fn encoded_targets(l: &YoloLayout) -> (Vec<Vec<TargetBox>>, Vec<f32>) {
        let tb = |cx: f32, cy: f32, w: f32, h: f32, class| TargetBox {
            x1: cx - w / 2.0,
            y1: cy - h / 2.0,
            x2: cx + w / 2.0,
            y2: cy + h / 2.0,
            class,
        };
        // 32-pixel images, 8-pixel cells. (cell, anchor) chosen by hand: small squares fit
        // anchor 0 (1x1 cells), tall boxes anchor 1 (2x3 cells).
        let targets =
            vec![vec![tb(10.0, 13.0, 7.0, 6.0, 2)], vec![tb(27.0, 4.0, 15.0, 25.0, 0), tb(5.0, 28.0, 9.0, 9.0, 1)]];
        let cells = [vec![(0, 1, 1)], vec![(1, 0, 3), (0, 3, 0)]];
        let d = l.values();
        let mut raw = vec![0.0f32; 2 * d];
        for b in 0..2 {
            for a in 0..2 {
                for gy in 0..4 {
                    for gx in 0..4 {
                        raw[b * d + l.index(a, YoloLayout::OBJECTNESS, gy, gx)] = -12.0;
                    }
                }
            }
            for (t, &(a, gy, gx)) in targets[b].iter().zip(&cells[b]) {
                let at = |f| b * d + l.index(a, f, gy, gx);
                let (cx, cy) = ((t.x1 + t.x2) / 16.0, (t.y1 + t.y2) / 16.0);
                raw[at(YoloLayout::TX)] = logit(cx - gx as f32);
                raw[at(YoloLayout::TY)] = logit(cy - gy as f32);
                raw[at(YoloLayout::TW)] = ((t.x2 - t.x1) / 8.0 / l.anchors[a][0]).ln();
                raw[at(YoloLayout::TH)] = ((t.y2 - t.y1) / 8.0 / l.anchors[a][1]).ln();
                raw[at(YoloLayout::OBJECTNESS)] = 12.0;
                raw[at(YoloLayout::CLASS0 + t.class)] = 12.0;
            }
        }
        (targets, raw)
    }

    #[test]
    fn loss_is_near_zero_for_the_encoded_targets_and_gradient_descent_lowers_it() {
        let d = Device::flex();
        d.seed(5);
        let l = layout();
        let (targets, raw) = encoded_targets(&l);
        let exact = yolo_v2_loss(tensor_from(raw.clone(), [2, l.values()], &d), &targets, &l, 32.0);
        let exact = exact.into_scalar::<f32>();
        let random = Tensor::<2>::random([2, l.values()], Distribution::Normal(0.0, 1.0), &d);
        let random = yolo_v2_loss(random, &targets, &l, 32.0).into_scalar::<f32>();
        assert!(exact < 1e-3 && random > 1.0, "exact {exact}, random {random}");
        // The encoding decodes back to the targets.
        for (b, boxes) in targets.iter().enumerate() {
            let found = nms(decode(&raw[b * l.values()..(b + 1) * l.values()], &l, 32.0, 0.5), 0.5);
            assert_eq!(found.len(), boxes.len());
            for t in boxes {
                assert!(found.iter().any(|f| f.class == t.class && box_iou(f.corners(), t.corners()) > 0.999));
            }
        }
        // Errors rather than panics on bad targets.
        let bad = vec![vec![TargetBox { x1: 0.0, y1: 0.0, x2: 4.0, y2: 4.0, class: 3 }], vec![]];
        let config = YoloLossConfig::default();
        let out = || tensor_from(raw.clone(), [2, l.values()], &d);
        let err = try_yolo_v2_loss(out(), &bad, &l, 32.0, &config).unwrap_err().to_string();
        assert!(err.contains("class 3"), "{err}");
        assert!(try_yolo_v2_loss(out(), &targets[..1], &l, 32.0, &config).is_err());
        let flat = vec![vec![TargetBox { x1: 4.0, y1: 0.0, x2: 4.0, y2: 4.0, class: 0 }], vec![]];
        assert!(try_yolo_v2_loss(out(), &flat, &l, 32.0, &config).is_err());

        // Gradient descent on the raw output itself.
        let ad = Device::flex().autodiff();
        let mut values = vec![0.0f32; 2 * l.values()];
        let mut losses = Vec::new();
        for _ in 0..50 {
            let raw = tensor_from(values.clone(), [2, l.values()], &ad).require_grad();
            let loss = yolo_v2_loss(raw.clone(), &targets, &l, 32.0);
            losses.push(loss.clone().into_scalar::<f32>());
            let grads = loss.backward();
            let grad = tensor_values(raw.grad(&grads).expect("the raw output has a gradient"));
            values.iter_mut().zip(grad).for_each(|(v, g)| *v -= 0.2 * g);
        }
        assert!(losses.windows(2).all(|w| w[1] < w[0]), "losses {losses:?}");
        assert!(losses[49] < 0.5 * losses[0], "losses {losses:?}");
    }

    #[test]
    fn kmeans_recovers_three_separated_shapes_deterministically() {
        let shapes = [[1.0f32, 1.0], [4.0, 2.0], [2.0, 6.0]];
        let mut rng = SplitMix(11);
        let mut wh = Vec::new();
        for i in 0..90 {
            let [w, h] = shapes[i % 3];
            let jitter = |r: &mut SplitMix| 1.0 + 0.1 * (r.unit() as f32 - 0.5);
            wh.push([w * jitter(&mut rng), h * jitter(&mut rng)]);
        }
        let anchors = kmeans_anchors(&wh, 3, 7, 50).unwrap();
        // Sorted by area: 1, 8, 12.
        for (got, want) in anchors.iter().zip(shapes) {
            for k in 0..2 {
                assert!((got[k] - want[k]).abs() <= 0.1 * want[k], "{anchors:?}");
            }
        }
        for seed in [7, 8, 99] {
            assert_eq!(kmeans_anchors(&wh, 3, seed, 50).unwrap(), kmeans_anchors(&wh, 3, seed, 50).unwrap());
        }
        assert!(kmeans_anchors(&wh, 0, 7, 50).is_err());
        assert!(kmeans_anchors(&wh[..2], 3, 7, 50).is_err());
        assert!(kmeans_anchors(&[[1.0, -1.0]], 1, 7, 50).is_err());
    }
}
