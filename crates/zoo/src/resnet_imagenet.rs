//! torchvision's ImageNet ResNet-18 and ResNet-34 (He et al. 2016, `torchvision.models.resnet18/34`).
//!
//! Stem: conv 7x7 stride 2 (64 channels) + BN, a 3x3 stride-2 max pool (padding 1), then
//! slot 0 (pre-neuron max pooling: the pool sits before the activation slot, see
//! [`ResNet`]). Four stages of basic blocks, 64/128/256/512 channels, strides 1/2/2/2,
//! `[2, 2, 2, 2]` blocks (ResNet-18) or `[3, 4, 6, 3]` (ResNet-34); a block's first conv
//! carries the stride and shape-changing blocks get a 1x1 conv + BN shortcut (torchvision's
//! `downsample`); the residual add happens on the input of the block's second slot. Global
//! average pooling and one linear layer (`fc`, here `linear`) to the classes.
//!
//! The networks are [`ResNet`]s (the same struct, forward pass, slot list and BN folding as the
//! CIFAR ResNet-20s), so they appear as [`crate::Network::ResNet`]. torchvision weights load
//! through [`crate::import_weights`]; see that module for the name mapping.
//!
//! At width 1 on 224x224 inputs: ResNet-18 has 11.7 M parameters and 1.81 G MACs,
//! ResNet-34 21.8 M parameters and 3.66 G MACs (per image, 1000 classes).

use burn::prelude::*;

use crate::network::{ModelError, ModelSpec};
use crate::resnet::{ResNetLayout, Shortcut};
use crate::{Network, ResNet};

/// Which torchvision basic-block ResNet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageNetResNet {
    /// `resnet18`: stages of `[2, 2, 2, 2]` basic blocks.
    ResNet18,
    /// `resnet34`: stages of `[3, 4, 6, 3]` basic blocks.
    ResNet34,
}

impl ImageNetResNet {
    /// The zoo model name: `"resnet18"` or `"resnet34"`.
    pub fn name(self) -> &'static str {
        match self {
            ImageNetResNet::ResNet18 => "resnet18",
            ImageNetResNet::ResNet34 => "resnet34",
        }
    }

    /// The depth for a zoo model name, `None` for other names.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "resnet18" => Some(ImageNetResNet::ResNet18),
            "resnet34" => Some(ImageNetResNet::ResNet34),
            _ => None,
        }
    }

    /// Basic blocks per stage.
    pub fn blocks(self) -> [usize; 4] {
        match self {
            ImageNetResNet::ResNet18 => [2, 2, 2, 2],
            ImageNetResNet::ResNet34 => [3, 4, 6, 3],
        }
    }

    fn layout(self) -> ResNetLayout {
        let stages: &'static [(usize, usize, usize)] = match self {
            ImageNetResNet::ResNet18 => &[(64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)],
            ImageNetResNet::ResNet34 => &[(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)],
        };
        ResNetLayout { stem_channels: 64, stem_kernel: 7, stem_stride: 2, stem_pool: true, extra_stem: 0, stages }
    }
}

impl ResNet {
    /// torchvision's ResNet-18 or ResNet-34 with channels scaled by `width` (1.0 = torchvision)
    /// and `classes` outputs. `input`: `[channels, height, width]` (any size; the stem divides
    /// it by 4 and each later stage by 2, 224 → 7). Without `batch_norm` every conv has a bias.
    ///
    /// Slots: `relu` (after the stem pool), then `layerS.B.relu1`, `layerS.B.relu2` per block:
    /// 17 for ResNet-18, 33 for ResNet-34.
    pub fn torchvision(
        depth: ImageNetResNet,
        input: [usize; 3],
        classes: usize,
        width: f32,
        batch_norm: bool,
        device: &Device,
    ) -> Self {
        ResNet::with_layout(depth.layout(), input, classes, width, batch_norm, Shortcut::Conv, device)
    }
}

/// Builds the `resnet18`/`resnet34` of a spec (its `shortcut` must be `conv`).
pub(crate) fn build(
    depth: ImageNetResNet,
    spec: &ModelSpec,
    input: [usize; 3],
    classes: usize,
    device: &Device,
) -> Result<Network, ModelError> {
    if spec.shortcut != Shortcut::Conv {
        return Err(ModelError::Invalid {
            model: spec.name.clone(),
            reason: "shortcut = \"pad\" is only defined for resnet20-he (torchvision ResNets use 1x1 conv + BN)".into(),
        });
    }
    Ok(Network::ResNet(ResNet::torchvision(depth, input, classes, spec.width, spec.batch_norm, device)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::conv_bn_forward;
    use crate::{Convertible, ForwardCtx};
    use burn::tensor::Distribution;

    #[test]
    fn stem_pool_is_pre_neuron_and_matches_torchvision_order() {
        let d = Device::flex();
        d.seed(7);
        let m = ResNet::torchvision(ImageNetResNet::ResNet18, [3, 32, 32], 10, 0.0625, true, &d);
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &d);
        let mut rec = ForwardCtx::recording();
        let _ = m.forward_ctx(x.clone(), &mut rec);
        let slot0 = rec.take_recorded().remove(0);
        assert_eq!(slot0.dims(), [2, 4, 8, 8], "32 -> conv/2 -> 16 -> pool/2 -> 8");
        // torchvision order: relu, then max pool.
        let y = conv_bn_forward(&m.conv1, m.bn1.as_ref(), x, &mut ForwardCtx::ann(), String::new);
        let reference = crate::resnet::stem_max_pool(burn::tensor::activation::relu(y));
        let (a, b) = (crate::tensor_values(slot0), crate::tensor_values(reference));
        assert!(a.iter().zip(&b).all(|(u, v)| (u - v).abs() < 1e-6));
        assert!(a.iter().any(|&v| v > 0.0));
    }

    #[test]
    fn stem_pool_pads_with_minus_infinity() {
        // Pre-neuron pooling sees negative potentials: zero padding would turn them into 0.
        let d = Device::flex();
        let x = Tensor::<4>::full([1, 1, 4, 4], -2.0, &d);
        let y = crate::resnet::stem_max_pool(x);
        assert_eq!(y.dims(), [1, 1, 2, 2]);
        assert_eq!(crate::tensor_values(y), vec![-2.0; 4]);
    }

    #[test]
    fn names_round_trip() {
        for d in [ImageNetResNet::ResNet18, ImageNetResNet::ResNet34] {
            assert_eq!(ImageNetResNet::from_name(d.name()), Some(d));
            assert!(crate::MODEL_NAMES.contains(&d.name()));
        }
        assert_eq!(ImageNetResNet::from_name("resnet50"), None);
        assert_eq!(ImageNetResNet::ResNet34.blocks().iter().sum::<usize>(), 16);
    }
}
