//! The model registry: a spec's `[model]` section → a [`Network`].

use std::path::PathBuf;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{
    ActivationParams, AnnActivation, Classifier, Convertible, FcnVgg, ForwardCtx, GraphError, GroupingConfig,
    LayerGraph, MobileNetV2, PointNet, PointNet2, PointNetPartSeg, Pooling, ResNet, ResNetVariant, Shortcut, SlotHook,
    SlotInfo, SmallCnn, Vgg, YoloVgg,
};

/// Every model name a spec may use.
pub const MODEL_NAMES: &[&str] = &[
    "small-cnn",
    "vgg16",
    "resnet20-he",
    "resnet20-calib",
    "resnet20-sengupta",
    "resnet18",
    "resnet34",
    "mobilenet-v2",
    "pointnet",
    "pointnet2-ssg",
    "pointnet-partseg",
    "yolo-vgg",
    "fcn-vgg",
];

/// The models that predict per region or per pixel (a detector and a segmenter): their output
/// is a flattened map, not class logits, and their data sets carry boxes and masks.
pub const DENSE_MODEL_NAMES: &[&str] = &["yolo-vgg", "fcn-vgg", "pointnet-partseg"];

/// Model errors.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Unknown model name.
    #[error("unknown model `{name}`; valid models: {}", MODEL_NAMES.join(", "))]
    UnknownModel {
        /// The name given.
        name: String,
    },
    /// An option that does not apply to the model.
    #[error("model `{model}`: {reason}")]
    Invalid {
        /// Model name.
        model: String,
        /// What is wrong.
        reason: String,
    },
}

fn default_width() -> f32 {
    1.0
}
fn default_true() -> bool {
    true
}

/// The `[model]` section of a spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// One of [`MODEL_NAMES`].
    pub name: String,
    /// Channel width multiplier (1.0 = the paper's network).
    #[serde(default = "default_width")]
    pub width: f32,
    /// Batch norm after every conv (folded before conversion).
    #[serde(default = "default_true")]
    pub batch_norm: bool,
    /// VGG pooling between blocks, and PointNet/PointNet++ pooling over points and groups:
    /// `avg` or `max` (pre-neuron max pooling).
    #[serde(default)]
    pub pooling: Pooling,
    /// VGG classifier: `1fc` or `3fc`.
    #[serde(default)]
    pub classifier: Classifier,
    /// ResNet shortcut for shape changes: `conv` (1x1 conv + BN) or `pad` (option A).
    #[serde(default)]
    pub shortcut: Shortcut,
    /// Import these weights instead of training (safetensors, PyTorch `.pt`/`.pth`, or burnpack).
    #[serde(default)]
    pub weights: Option<PathBuf>,
    /// ANN activation: `relu`, `clip` (clamp(z, 0, `clip`), Opt.) or `qcfs` (QCFS, λ learned
    /// from `qcfs_lambda_init`, `qcfs_levels` levels).
    /// (Activation fields are left out of the serialized spec at their defaults so cache
    /// keys of ReLU models do not change.)
    #[serde(default, skip_serializing_if = "is_relu")]
    pub activation: AnnActivation,
    /// Upper bound of the `clip` activation.
    #[serde(default = "default_clip", skip_serializing_if = "is_default_clip")]
    pub clip: f32,
    /// QCFS quantization levels L.
    #[serde(default = "default_levels", skip_serializing_if = "is_default_levels")]
    pub qcfs_levels: usize,
    /// Initial QCFS λ.
    #[serde(default = "default_lambda", skip_serializing_if = "is_default_lambda")]
    pub qcfs_lambda_init: f32,
    /// PointNet: add the input transform network (T-Net). Default off.
    /// (This and the `sa_*` fields are left out of the serialized spec at their defaults.)
    #[serde(default, skip_serializing_if = "is_false")]
    pub tnet: bool,
    /// PointNet++: centroids sampled by farthest point sampling at set-abstraction levels 1
    /// and 2 (paper: 512, 128).
    #[serde(default = "default_sa_centroids", skip_serializing_if = "is_default_sa_centroids")]
    pub sa_centroids: Vec<usize>,
    /// PointNet++: ball-query radius per level (paper: 0.2, 0.4; ModelNet clouds are
    /// normalised to the unit sphere).
    #[serde(default = "default_sa_radii", skip_serializing_if = "is_default_sa_radii")]
    pub sa_radii: Vec<f32>,
    /// PointNet++: neighbours per centroid per level (paper: 32, 64).
    #[serde(default = "default_sa_neighbours", skip_serializing_if = "is_default_sa_neighbours")]
    pub sa_neighbours: Vec<usize>,
    /// `yolo-vgg`: anchor `[width, height]` pairs in grid cells (empty: YOLOv2's five VOC
    /// anchors scaled to the grid, see [`crate::default_anchors`]). Left out of the serialized
    /// spec when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anchors: Vec<[f32; 2]>,
}

impl ModelSpec {
    fn invalid(&self, reason: &str) -> ModelError {
        ModelError::Invalid { model: self.name.clone(), reason: reason.into() }
    }
}

fn is_relu(a: &AnnActivation) -> bool {
    *a == AnnActivation::Relu
}
fn is_default_clip(v: &f32) -> bool {
    *v == default_clip()
}
fn is_default_levels(v: &usize) -> bool {
    *v == default_levels()
}
fn is_default_lambda(v: &f32) -> bool {
    *v == default_lambda()
}

fn is_false(v: &bool) -> bool {
    !*v
}
fn default_sa_centroids() -> Vec<usize> {
    vec![512, 128]
}
fn default_sa_radii() -> Vec<f32> {
    vec![0.2, 0.4]
}
fn default_sa_neighbours() -> Vec<usize> {
    vec![32, 64]
}
fn is_default_sa_centroids(v: &[usize]) -> bool {
    v == default_sa_centroids()
}
fn is_default_sa_radii(v: &[f32]) -> bool {
    v == default_sa_radii()
}
fn is_default_sa_neighbours(v: &[usize]) -> bool {
    v == default_sa_neighbours()
}

fn default_clip() -> f32 {
    1.0
}
fn default_levels() -> usize {
    8
}
fn default_lambda() -> f32 {
    8.0
}

/// Any zoo model. One enum so training, conversion and simulation code is not generic.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Network {
    /// [`SmallCnn`].
    SmallCnn(SmallCnn),
    /// [`Vgg`].
    Vgg(Vgg),
    /// [`ResNet`].
    ResNet(ResNet),
    /// [`PointNet`].
    PointNet(PointNet),
    /// [`PointNet2`] (PointNet++ SSG).
    PointNet2(PointNet2),
    /// [`MobileNetV2`].
    MobileNetV2(MobileNetV2),
    /// [`YoloVgg`] (output: the flattened detection head, see [`crate::YoloLayout`]).
    Detector(YoloVgg),
    /// [`FcnVgg`] (output: the flattened per-pixel logits, `[batch, classes·h·w]`).
    Segmenter(FcnVgg),
    /// [`PointNetPartSeg`] (output: the flattened per-point part scores, `[batch, parts·points]`).
    PartSegmenter(PointNetPartSeg),
}

impl Network {
    /// ANN forward. `x`: `[batch, c, h, w]` (point clouds: `[batch, 3, points, 1]`) → logits
    /// `[batch, classes]` (dense models: their flattened output map, `[batch, D]`; see
    /// [`YoloLayout`](crate::YoloLayout) and [`FcnVgg`]).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_ctx(x, &mut ForwardCtx::ann())
    }

    /// The clip/QCFS activation parameters, if the network was built with one.
    pub fn activation(&self) -> Option<&ActivationParams> {
        match self {
            Network::SmallCnn(m) => m.act.as_ref(),
            Network::Vgg(m) => m.act.as_ref(),
            Network::ResNet(m) => m.act.as_ref(),
            Network::PointNet(m) => m.act.as_ref(),
            Network::PointNet2(m) => m.act.as_ref(),
            Network::MobileNetV2(m) => m.act.as_ref(),
            Network::Detector(m) => m.act.as_ref(),
            Network::Segmenter(m) => m.act.as_ref(),
            Network::PartSegmenter(m) => m.act.as_ref(),
        }
    }

    /// Sets every slot's λ of the clip/QCFS activation to the `percentile`-th percentile
    /// (linear interpolation; 100 = max) of that slot's *positive ReLU* outputs on `x`
    /// (`[batch, c, h, w]`), computed with every slot a ReLU. A data-driven start for QCFS
    /// training, in particular when fine-tuning a ReLU checkpoint whose activation scale is
    /// far from the fixed init (8.0). A slot with no positive output keeps its λ. Returns
    /// the network unchanged when it has no clip/QCFS activation. The new λ is trainable
    /// exactly as the old one was (fixed for clip).
    pub fn with_lambda_from_data(self, x: Tensor<4>, percentile: f64) -> Self {
        let Some(act) = self.activation() else {
            return self;
        };
        let (kind, levels, old) = (act.kind, act.levels, act.lambdas());
        let mut hook = PositivePercentiles { percentile, values: Vec::new() };
        let device = x.device();
        self.forward_ctx(x, &mut ForwardCtx::with_hook(&mut hook));
        let lambdas: Vec<f32> =
            old.iter().enumerate().map(|(slot, &l)| hook.values.get(slot).copied().flatten().unwrap_or(l)).collect();
        let fresh = ActivationParams::from_lambdas(kind, &lambdas, levels, &device);
        self.with_activation(Some(fresh))
    }

    fn with_activation(mut self, act: Option<ActivationParams>) -> Self {
        match &mut self {
            Network::SmallCnn(m) => m.act = act,
            Network::Vgg(m) => m.act = act,
            Network::ResNet(m) => m.act = act,
            Network::PointNet(m) => m.act = act,
            Network::PointNet2(m) => m.act = act,
            Network::MobileNetV2(m) => m.act = act,
            Network::Detector(m) => m.act = act,
            Network::Segmenter(m) => m.act = act,
            Network::PartSegmenter(m) => m.act = act,
        }
        self
    }
}

/// ReLU in every slot, recording the percentile of each slot's positive outputs.
struct PositivePercentiles {
    percentile: f64,
    /// Indexed by slot; `None` when the slot had no positive output.
    values: Vec<Option<f32>>,
}

impl SlotHook for PositivePercentiles {
    fn apply(&mut self, slot: usize, x: Tensor<4>) -> Tensor<4> {
        let y = burn::tensor::activation::relu(x);
        let mut positive: Vec<f32> = crate::tensor_values(y.clone()).into_iter().filter(|v| *v > 0.0).collect();
        if self.values.len() <= slot {
            self.values.resize(slot + 1, None);
        }
        self.values[slot] = (!positive.is_empty()).then(|| crate::percentile_of(&mut positive, self.percentile));
        y
    }
}

impl Convertible for Network {
    fn forward_ctx(&self, x: Tensor<4>, ctx: &mut ForwardCtx) -> Tensor<2> {
        match self {
            Network::SmallCnn(m) => m.forward_ctx(x, ctx),
            Network::Vgg(m) => m.forward_ctx(x, ctx),
            Network::ResNet(m) => m.forward_ctx(x, ctx),
            Network::PointNet(m) => m.forward_ctx(x, ctx),
            Network::PointNet2(m) => m.forward_ctx(x, ctx),
            Network::MobileNetV2(m) => m.forward_ctx(x, ctx),
            Network::Detector(m) => m.forward_ctx(x, ctx),
            Network::Segmenter(m) => m.forward_ctx(x, ctx),
            Network::PartSegmenter(m) => m.forward_ctx(x, ctx),
        }
    }

    fn slots(&self) -> Vec<SlotInfo> {
        match self {
            Network::SmallCnn(m) => m.slots(),
            Network::Vgg(m) => m.slots(),
            Network::ResNet(m) => m.slots(),
            Network::PointNet(m) => m.slots(),
            Network::PointNet2(m) => m.slots(),
            Network::MobileNetV2(m) => m.slots(),
            Network::Detector(m) => m.slots(),
            Network::Segmenter(m) => m.slots(),
            Network::PartSegmenter(m) => m.slots(),
        }
    }

    fn fold_batchnorm(self) -> Self {
        match self {
            Network::SmallCnn(m) => Network::SmallCnn(m.fold_batchnorm()),
            Network::Vgg(m) => Network::Vgg(m.fold_batchnorm()),
            Network::ResNet(m) => Network::ResNet(m.fold_batchnorm()),
            Network::PointNet(m) => Network::PointNet(m.fold_batchnorm()),
            Network::PointNet2(m) => Network::PointNet2(m.fold_batchnorm()),
            Network::MobileNetV2(m) => Network::MobileNetV2(m.fold_batchnorm()),
            Network::Detector(m) => Network::Detector(m.fold_batchnorm()),
            Network::Segmenter(m) => Network::Segmenter(m.fold_batchnorm()),
            Network::PartSegmenter(m) => Network::PartSegmenter(m.fold_batchnorm()),
        }
    }

    fn layer_graph(&self, input: [usize; 3]) -> Result<LayerGraph, GraphError> {
        let none = |model: &str, reason: &str| GraphError::Unsupported { model: model.into(), reason: reason.into() };
        match self {
            Network::SmallCnn(m) => m.layer_graph(input),
            Network::Vgg(m) => m.layer_graph(input),
            Network::ResNet(m) => m.layer_graph(input),
            Network::PointNet(m) => m.layer_graph(input),
            Network::PointNet2(_) => {
                Err(none("pointnet2-ssg", "sampling, grouping and max pooling over groups have no graph form"))
            }
            Network::MobileNetV2(_) => Err(none("mobilenet-v2", "its layer graph is not described yet")),
            Network::Detector(m) => m.layer_graph(input),
            Network::Segmenter(m) => m.layer_graph(input),
            Network::PartSegmenter(m) => m.layer_graph(input),
        }
    }
}

/// Builds a freshly initialised model. `input`: `[channels, height, width]`; `classes`: the
/// data set's classes (for `fcn-vgg` its object classes: the segmenter adds the background).
pub fn build_model(
    spec: &ModelSpec,
    input: [usize; 3],
    classes: usize,
    device: &Device,
) -> Result<Network, ModelError> {
    let invalid = |reason: &str| spec.invalid(reason);
    if !(spec.width > 0.0 && spec.width.is_finite()) {
        return Err(invalid("width must be a positive number"));
    }
    let net = build_architecture(spec, input, classes, device)?;
    let slots = net.slots().len();
    let act = match spec.activation {
        // MobileNet-v2's ReLU6 is the clip activation at 6.
        AnnActivation::Relu if matches!(net, Network::MobileNetV2(_)) => {
            Some(ActivationParams::new(AnnActivation::Clip, slots, 6.0, 1, device))
        }
        AnnActivation::Relu => None,
        AnnActivation::Clip => Some(ActivationParams::new(AnnActivation::Clip, slots, spec.clip, 1, device)),
        AnnActivation::Qcfs => {
            if spec.qcfs_levels == 0 || spec.qcfs_lambda_init <= 0.0 {
                return Err(invalid("qcfs_levels and qcfs_lambda_init must be positive"));
            }
            Some(ActivationParams::new(AnnActivation::Qcfs, slots, spec.qcfs_lambda_init, spec.qcfs_levels, device))
        }
    };
    Ok(net.with_activation(act))
}

fn build_architecture(
    spec: &ModelSpec,
    input: [usize; 3],
    classes: usize,
    device: &Device,
) -> Result<Network, ModelError> {
    let invalid = |reason: &str| spec.invalid(reason);
    let resnet = |v| {
        if v != ResNetVariant::He && spec.shortcut == Shortcut::Pad {
            return Err(invalid("shortcut = \"pad\" is only defined for resnet20-he"));
        }
        if spec.shortcut == Shortcut::Pad && (!input[1].is_multiple_of(4) || !input[2].is_multiple_of(4)) {
            return Err(invalid("option-A (pad) shortcuts need height and width divisible by 4"));
        }
        Ok(Network::ResNet(ResNet::new(v, input, classes, spec.width, spec.batch_norm, spec.shortcut, device)))
    };
    let point_model = matches!(spec.name.as_str(), "pointnet" | "pointnet2-ssg" | "pointnet-partseg");
    if point_model && (input[0] != 3 || input[2] != 1) {
        return Err(invalid(&format!(
            "expects a point cloud of shape [3, points, 1] (xyz as channels, points along height); got input {input:?}"
        )));
    }
    if spec.tnet && !matches!(spec.name.as_str(), "pointnet" | "pointnet-partseg") {
        return Err(invalid("tnet is only defined for pointnet and pointnet-partseg"));
    }
    let sa_default = is_default_sa_centroids(&spec.sa_centroids)
        && is_default_sa_radii(&spec.sa_radii)
        && is_default_sa_neighbours(&spec.sa_neighbours);
    if !sa_default && spec.name != "pointnet2-ssg" {
        return Err(invalid("sa_centroids, sa_radii and sa_neighbours are only defined for pointnet2-ssg"));
    }
    if !spec.anchors.is_empty() && spec.name != "yolo-vgg" {
        return Err(invalid("anchors are only defined for yolo-vgg"));
    }
    match spec.name.as_str() {
        "pointnet" => Ok(Network::PointNet(PointNet::new(
            input,
            classes,
            spec.width,
            spec.batch_norm,
            spec.pooling,
            spec.tnet,
            device,
        ))),
        // `classes` are the data set's global part ids (scored per point).
        "pointnet-partseg" => Ok(Network::PartSegmenter(PointNetPartSeg::new(
            input,
            classes,
            spec.width,
            spec.batch_norm,
            spec.pooling,
            spec.tnet,
            device,
        )?)),
        "pointnet2-ssg" => {
            let grouping = sa_grouping(spec, input[1])?;
            Ok(Network::PointNet2(PointNet2::new(
                input,
                classes,
                spec.width,
                spec.batch_norm,
                spec.pooling,
                grouping,
                device,
            )))
        }
        "mobilenet-v2" => {
            Ok(Network::MobileNetV2(MobileNetV2::new(input, classes, spec.width, spec.batch_norm, device)))
        }
        "small-cnn" => Ok(Network::SmallCnn(SmallCnn::new(input, classes, spec.width, spec.batch_norm, device))),
        "vgg16" => Ok(Network::Vgg(Vgg::new(
            input,
            classes,
            spec.width,
            spec.batch_norm,
            spec.pooling,
            spec.classifier,
            device,
        ))),
        "yolo-vgg" => Ok(Network::Detector(YoloVgg::new(
            input,
            classes,
            &spec.anchors,
            spec.width,
            spec.batch_norm,
            spec.pooling,
            device,
        )?)),
        // `classes` are the data set's object classes; the segmenter's maps add the background
        // (mask label 0) before them.
        "fcn-vgg" => {
            Ok(Network::Segmenter(FcnVgg::new(input, classes + 1, spec.width, spec.batch_norm, spec.pooling, device)?))
        }
        "resnet20-he" => resnet(ResNetVariant::He),
        "resnet20-calib" => resnet(ResNetVariant::Calib),
        "resnet20-sengupta" => resnet(ResNetVariant::Sengupta),
        "resnet18" | "resnet34" => crate::resnet_imagenet::build(
            crate::ImageNetResNet::from_name(&spec.name).expect("a torchvision ResNet name"),
            spec,
            input,
            classes,
            device,
        ),
        other => Err(ModelError::UnknownModel { name: other.into() }),
    }
}

/// The two PointNet++ sampling levels of `spec`, checked against `points` input points.
fn sa_grouping(spec: &ModelSpec, points: usize) -> Result<[GroupingConfig; 2], ModelError> {
    let invalid = |reason: String| spec.invalid(&reason);
    let (c, r, k) = (&spec.sa_centroids, &spec.sa_radii, &spec.sa_neighbours);
    if c.len() != 2 || r.len() != 2 || k.len() != 2 {
        return Err(invalid("sa_centroids, sa_radii and sa_neighbours need one entry per level (2 levels)".into()));
    }
    let mut prev = points;
    let mut levels = Vec::with_capacity(2);
    for l in 0..2 {
        if c[l] == 0 || c[l] > prev {
            return Err(invalid(format!("sa_centroids[{l}] = {} must be in 1..={prev} (points at that level)", c[l])));
        }
        if !(r[l] > 0.0 && r[l].is_finite()) || k[l] == 0 {
            return Err(invalid(format!("sa_radii[{l}] and sa_neighbours[{l}] must be positive")));
        }
        levels.push(GroupingConfig { centroids: c[l], radius: r[l], neighbours: k[l] });
        prev = c[l];
    }
    Ok([levels[0], levels[1]])
}
