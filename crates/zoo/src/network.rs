//! The model registry: a spec's `[model]` section → a [`Network`].

use std::path::PathBuf;

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{
    ActivationParams, AnnActivation, Classifier, Convertible, ForwardCtx, Pooling, ResNet, ResNetVariant, Shortcut,
    SlotInfo, SmallCnn, Vgg,
};

/// Every model name a spec may use.
pub const MODEL_NAMES: &[&str] =
    &["small-cnn", "vgg16", "resnet20-he", "resnet20-calib", "resnet20-sengupta", "resnet18", "resnet34"];

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
    /// VGG pooling: `avg` or `max`.
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
}

impl Network {
    /// ANN forward. `x`: `[batch, c, h, w]` → logits `[batch, classes]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_ctx(x, &mut ForwardCtx::ann())
    }

    /// The clip/QCFS activation parameters, if the network was built with one.
    pub fn activation(&self) -> Option<&ActivationParams> {
        match self {
            Network::SmallCnn(m) => m.act.as_ref(),
            Network::Vgg(m) => m.act.as_ref(),
            Network::ResNet(m) => m.act.as_ref(),
        }
    }

    fn with_activation(mut self, act: Option<ActivationParams>) -> Self {
        match &mut self {
            Network::SmallCnn(m) => m.act = act,
            Network::Vgg(m) => m.act = act,
            Network::ResNet(m) => m.act = act,
        }
        self
    }
}

impl Convertible for Network {
    fn forward_ctx(&self, x: Tensor<4>, ctx: &mut ForwardCtx) -> Tensor<2> {
        match self {
            Network::SmallCnn(m) => m.forward_ctx(x, ctx),
            Network::Vgg(m) => m.forward_ctx(x, ctx),
            Network::ResNet(m) => m.forward_ctx(x, ctx),
        }
    }

    fn slots(&self) -> Vec<SlotInfo> {
        match self {
            Network::SmallCnn(m) => m.slots(),
            Network::Vgg(m) => m.slots(),
            Network::ResNet(m) => m.slots(),
        }
    }

    fn fold_batchnorm(self) -> Self {
        match self {
            Network::SmallCnn(m) => Network::SmallCnn(m.fold_batchnorm()),
            Network::Vgg(m) => Network::Vgg(m.fold_batchnorm()),
            Network::ResNet(m) => Network::ResNet(m.fold_batchnorm()),
        }
    }
}

/// Builds a freshly initialised model. `input`: `[channels, height, width]`.
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
    match spec.name.as_str() {
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
