//! VGG-16 (Simonyan & Zisserman) for CIFAR-sized inputs.

use burn::nn::conv::Conv2d;
use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{BatchNorm, Linear};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::graph::GraphBuilder;
use crate::layers::{bn, conv, conv_bn_forward, fold_pair, linear, linear_forward, scaled};
use crate::{ActivationParams, Convertible, ForwardCtx, GraphError, LayerGraph, SlotInfo};

/// Pooling between VGG blocks, and over points / groups in PointNet and PointNet++.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// 2x2 average pooling after the block's last activation (spikes are averaged).
    #[default]
    Avg,
    /// 2x2 max pooling *before* the block's last activation (max and ReLU commute, so the
    /// ANN is unchanged and the SNN pools analog potentials: "pre-neuron max pooling").
    /// Point models: the max over points (or a group) is taken likewise before the pooled
    /// layer's activation.
    Max,
}

/// VGG classifier head.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Classifier {
    /// One linear layer `features → classes`.
    #[default]
    #[serde(rename = "1fc")]
    OneFc,
    /// `features → 4096w → 4096w → classes` (QCFS/Opt. layout), with activations between.
    #[serde(rename = "3fc")]
    ThreeFc,
}

/// One VGG convolution with optional batch norm.
#[derive(Module, Debug)]
pub struct VggConv {
    conv: Conv2d,
    bn: Option<BatchNorm>,
}

/// VGG-16: 13 conv3x3 layers in 5 blocks (64, 128, 256, 512, 512 channels × width), a 2x2
/// pool after each block (skipped when the feature map is already 1 pixel wide, e.g. for
/// 28x28 inputs), then the classifier. 13 activation slots (+2 for `3fc`).
#[derive(Module, Debug)]
pub struct Vgg {
    features: Vec<VggConv>,
    classifier: Vec<Linear>,
    /// Clip/QCFS activation parameters (ReLU when `None`).
    pub(crate) act: Option<ActivationParams>,
    #[module(skip)]
    pooling: Pooling,
    #[module(skip)]
    pool_after: Vec<bool>,
}

const VGG16_BLOCKS: [(usize, usize); 5] = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)];

impl Vgg {
    /// `input`: `[channels, height, width]`.
    pub fn new(
        input: [usize; 3],
        classes: usize,
        width: f32,
        batch_norm: bool,
        pooling: Pooling,
        classifier: Classifier,
        device: &Device,
    ) -> Self {
        let [mut cin, mut h, mut w] = input;
        let mut features = Vec::new();
        let mut pool_after = Vec::new();
        for (c, n) in VGG16_BLOCKS {
            let c = scaled(c, width);
            for i in 0..n {
                features.push(VggConv { conv: conv(cin, c, 3, 1, !batch_norm, device), bn: bn(c, batch_norm, device) });
                cin = c;
                let last = i + 1 == n;
                let pool = last && h >= 2 && w >= 2;
                if pool {
                    h /= 2;
                    w /= 2;
                }
                pool_after.push(pool);
            }
        }
        let flat = cin * h * w;
        let classifier = match classifier {
            Classifier::OneFc => vec![linear(flat, classes, device)],
            Classifier::ThreeFc => {
                let hidden = scaled(4096, width);
                vec![linear(flat, hidden, device), linear(hidden, hidden, device), linear(hidden, classes, device)]
            }
        };
        Self { features, classifier, act: None, pooling, pool_after }
    }
}

impl Convertible for Vgg {
    fn forward_ctx(&self, mut x: Tensor<4>, ctx: &mut ForwardCtx) -> Tensor<2> {
        ctx.use_activation(self.act.as_ref());
        for (i, layer) in self.features.iter().enumerate() {
            x = conv_bn_forward(&layer.conv, layer.bn.as_ref(), x, ctx, || format!("features.{i}"));
            let pool = self.pool_after[i];
            x = match (pool, self.pooling) {
                (true, Pooling::Max) => ctx.act(i, MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init().forward(x)),
                (true, Pooling::Avg) => AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init().forward(ctx.act(i, x)),
                (false, _) => ctx.act(i, x),
            };
            if ctx.stopped() {
                let [n, ..] = x.dims();
                let classes = self.classifier.last().map_or(0, |l| l.weight.dims()[1]);
                return ForwardCtx::skipped_logits(n, classes, &x.device());
            }
        }
        let mut x = x.flatten(1, 3);
        let n = self.features.len();
        let last = self.classifier.len() - 1;
        for (j, fc) in self.classifier.iter().enumerate() {
            x = linear_forward(fc, x, ctx, &format!("classifier.{j}"));
            if j < last {
                x = ctx.act2(n + j, x);
            }
        }
        x
    }

    fn slots(&self) -> Vec<SlotInfo> {
        let n = self.features.len();
        let mut slots: Vec<SlotInfo> = (0..n)
            .map(|i| SlotInfo {
                name: format!("features.{i}.relu"),
                consumers: vec![if i + 1 < n { format!("features.{}", i + 1) } else { "classifier.0".into() }],
            })
            .collect();
        for j in 0..self.classifier.len() - 1 {
            slots.push(SlotInfo {
                name: format!("classifier.{j}.relu"),
                consumers: vec![format!("classifier.{}", j + 1)],
            });
        }
        slots
    }

    fn layer_graph(&self, input: [usize; 3]) -> Result<LayerGraph, GraphError> {
        let mut g = GraphBuilder::new("vgg16", input);
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
        x = g.flatten("flatten", &x);
        let n = self.features.len();
        for (j, fc) in self.classifier.iter().enumerate() {
            x = g.affine(&format!("classifier.{j}"), fc, &x)?;
            if j + 1 < self.classifier.len() {
                x = g.slot(&format!("classifier.{j}.relu"), n + j, &[&x])?;
            }
        }
        Ok(g.finish(&x))
    }

    fn fold_batchnorm(self) -> Self {
        let features = self
            .features
            .into_iter()
            .map(|l| {
                let (conv, bn) = fold_pair(l.conv, l.bn);
                VggConv { conv, bn }
            })
            .collect();
        Self { features, ..self }
    }
}
