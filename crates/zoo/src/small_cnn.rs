//! A small CNN for the quickstart and tests.

use burn::nn::conv::Conv2d;
use burn::nn::pool::AvgPool2dConfig;
use burn::nn::{BatchNorm, Linear};
use burn::prelude::*;

use crate::graph::GraphBuilder;
use crate::layers::{bn, conv, conv_bn_forward, fold_pair, linear, linear_forward, scaled};
use crate::{ActivationParams, Convertible, ForwardCtx, GraphError, LayerGraph, SlotInfo};

/// `conv3x3(16w)-BN-act-avgpool2 → conv3x3(32w)-BN-act-avgpool2 → fc(64w)-act → fc(classes)`.
/// Average pooling keeps the network conversion-friendly. 3 activation slots.
#[derive(Module, Debug)]
pub struct SmallCnn {
    conv1: Conv2d,
    bn1: Option<BatchNorm>,
    conv2: Conv2d,
    bn2: Option<BatchNorm>,
    fc1: Linear,
    fc2: Linear,
    /// Clip/QCFS activation parameters (ReLU when `None`).
    pub(crate) act: Option<ActivationParams>,
}

impl SmallCnn {
    /// `input`: `[channels, height, width]`.
    pub fn new(input: [usize; 3], classes: usize, width: f32, batch_norm: bool, device: &Device) -> Self {
        let [c, h, w] = input;
        let (c1, c2, f1) = (scaled(16, width), scaled(32, width), scaled(64, width));
        Self {
            conv1: conv(c, c1, 3, 1, !batch_norm, device),
            bn1: bn(c1, batch_norm, device),
            conv2: conv(c1, c2, 3, 1, !batch_norm, device),
            bn2: bn(c2, batch_norm, device),
            fc1: linear(c2 * (h / 4) * (w / 4), f1, device),
            fc2: linear(f1, classes, device),
            act: None,
        }
    }
}

impl Convertible for SmallCnn {
    fn forward_ctx(&self, x: Tensor<4>, ctx: &mut ForwardCtx) -> Tensor<2> {
        ctx.use_activation(self.act.as_ref());
        let pool = AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
        let x = conv_bn_forward(&self.conv1, self.bn1.as_ref(), x, ctx, || "conv1".into());
        let x = pool.forward(ctx.act(0, x));
        let x = conv_bn_forward(&self.conv2, self.bn2.as_ref(), x, ctx, || "conv2".into());
        let x = pool.forward(ctx.act(1, x));
        let x = x.flatten(1, 3);
        let x = linear_forward(&self.fc1, x, ctx, "fc1");
        let x = ctx.act2(2, x);
        linear_forward(&self.fc2, x, ctx, "fc2")
    }

    fn slots(&self) -> Vec<SlotInfo> {
        let s = |n: &str, c: &str| SlotInfo { name: n.into(), consumers: vec![c.into()] };
        vec![s("relu1", "conv2"), s("relu2", "fc1"), s("relu3", "fc2")]
    }

    fn layer_graph(&self, input: [usize; 3]) -> Result<LayerGraph, GraphError> {
        let mut g = GraphBuilder::new("small-cnn", input);
        let x = g.conv("conv1", &self.conv1, self.bn1.as_ref(), "input")?;
        let x = g.slot("relu1", 0, &[&x])?;
        let x = g.avg_pool("pool1", [2, 2], &x);
        let x = g.conv("conv2", &self.conv2, self.bn2.as_ref(), &x)?;
        let x = g.slot("relu2", 1, &[&x])?;
        let x = g.avg_pool("pool2", [2, 2], &x);
        let x = g.flatten("flatten", &x);
        let x = g.affine("fc1", &self.fc1, &x)?;
        let x = g.slot("relu3", 2, &[&x])?;
        let x = g.affine("fc2", &self.fc2, &x)?;
        Ok(g.finish(&x))
    }

    fn fold_batchnorm(self) -> Self {
        let (conv1, bn1) = fold_pair(self.conv1, self.bn1);
        let (conv2, bn2) = fold_pair(self.conv2, self.bn2);
        Self { conv1, bn1, conv2, bn2, ..self }
    }
}
