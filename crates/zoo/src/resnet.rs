//! ResNet-20 in the three variants the papers mean by that name (ALGORITHMS.md), and the
//! shared ResNet machinery the torchvision ImageNet ResNets (`resnet_imagenet.rs`) reuse.

use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::graph::GraphBuilder;
use crate::layers::{bn, conv, conv_bn_forward, fold_pair, linear, linear_forward, scaled};
use crate::{ActivationParams, Convertible, ForwardCtx, GraphError, LayerGraph, SlotInfo};

/// Which "ResNet-20".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResNetVariant {
    /// He et al. 2016 CIFAR ResNet-20: stem conv3x3(16), stages [3,3,3] of widths 16/32/64,
    /// strides 1/2/2, global average pooling, FC (0.27M parameters at width 1).
    He,
    /// SNN Calibration (Li et al. 2021) ResNet-20: stem conv3x3(64), stages [3,3,3] of widths
    /// 64/128/256, FC 256 → classes.
    Calib,
    /// Sengupta et al. 2019 "ResNet-20": 3-conv stem (64), stages [2,2,2,2] of widths
    /// 64/128/256/512, strides 1/2/2/2, 1x1-conv shortcuts.
    Sengupta,
}

impl ResNetVariant {
    fn layout(self) -> ResNetLayout {
        let (stem_channels, stages, extra_stem): (usize, &'static [(usize, usize, usize)], usize) = match self {
            ResNetVariant::He => (16, &[(16, 3, 1), (32, 3, 2), (64, 3, 2)], 0),
            ResNetVariant::Calib => (64, &[(64, 3, 1), (128, 3, 2), (256, 3, 2)], 0),
            ResNetVariant::Sengupta => (64, &[(64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)], 2),
        };
        ResNetLayout { stem_channels, stem_kernel: 3, stem_stride: 1, stem_pool: false, extra_stem, stages }
    }
}

/// Stem and stages of a [`ResNet`] at width 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ResNetLayout {
    /// Output channels of the stem convolution(s).
    pub stem_channels: usize,
    /// Kernel size of the first convolution ("same" padding `k/2`): 3 (CIFAR) or 7 (ImageNet).
    pub stem_kernel: usize,
    /// Stride of the first convolution.
    pub stem_stride: usize,
    /// A 3x3 stride-2 max pool (padding 1) on the first convolution's output, applied before
    /// its activation slot (pre-neuron max pooling, see [`ResNet`]).
    pub stem_pool: bool,
    /// Extra 3x3 stem convolutions after the first (Sengupta: 2).
    pub extra_stem: usize,
    /// `(channels, blocks, stride of the first block)` per stage (at most 4 stages).
    pub stages: &'static [(usize, usize, usize)],
}

/// How a block changes its shortcut's shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shortcut {
    /// 1x1 conv + BN (option B).
    #[default]
    Conv,
    /// Option A: stride-2 subsampling and zero padding of the new channels (no parameters).
    Pad,
}

/// Residual basic block: `conv1-BN-act → conv2-BN (+ shortcut) → act`.
/// The residual add happens on the input of the block's second activation slot.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    bn1: Option<BatchNorm>,
    conv2: Conv2d,
    bn2: Option<BatchNorm>,
    shortcut_conv: Option<Conv2d>,
    shortcut_bn: Option<BatchNorm>,
    /// Option-A padding: (channels added before, after), with stride-2 subsampling.
    #[module(skip)]
    pad: Option<(usize, usize)>,
}

impl BasicBlock {
    fn new(cin: usize, cout: usize, stride: usize, shortcut: Shortcut, batch_norm: bool, device: &Device) -> Self {
        let needs = stride != 1 || cin != cout;
        let (shortcut_conv, shortcut_bn, pad) = match (needs, shortcut) {
            (false, _) => (None, None, None),
            (true, Shortcut::Conv) => {
                (Some(conv(cin, cout, 1, stride, !batch_norm, device)), bn(cout, batch_norm, device), None)
            }
            (true, Shortcut::Pad) => {
                let extra = cout - cin;
                (None, None, Some((extra / 2, extra - extra / 2)))
            }
        };
        Self {
            conv1: conv(cin, cout, 3, stride, !batch_norm, device),
            bn1: bn(cout, batch_norm, device),
            conv2: conv(cout, cout, 3, 1, !batch_norm, device),
            bn2: bn(cout, batch_norm, device),
            shortcut_conv,
            shortcut_bn,
            pad,
        }
    }

    /// `x`: `[n, cin, h, w]` → `[n, cout, h/stride, w/stride]`; uses slots `slot`, `slot + 1`.
    fn forward(&self, x: Tensor<4>, ctx: &mut ForwardCtx, slot: usize, name: &str) -> Tensor<4> {
        let y = conv_bn_forward(&self.conv1, self.bn1.as_ref(), x.clone(), ctx, || format!("{name}.conv1"));
        let y = ctx.act(slot, y);
        let y = conv_bn_forward(&self.conv2, self.bn2.as_ref(), y, ctx, || format!("{name}.conv2"));
        let short = match (&self.shortcut_conv, self.pad) {
            (Some(c), _) => conv_bn_forward(c, self.shortcut_bn.as_ref(), x, ctx, || format!("{name}.shortcut")),
            (None, Some((before, after))) => pad_shortcut(x, before, after),
            (None, None) => x,
        };
        ctx.act(slot + 1, y.add(short))
    }

    /// Adds the block (slots `slot`, `slot + 1`) fed by `x` to `g`; returns its output node.
    fn graph(&self, g: &mut GraphBuilder, x: &str, slot: usize, name: &str) -> Result<String, GraphError> {
        let y = g.conv(&format!("{name}.conv1"), &self.conv1, self.bn1.as_ref(), x)?;
        let y = g.slot(&format!("{name}.relu1"), slot, &[&y])?;
        let y = g.conv(&format!("{name}.conv2"), &self.conv2, self.bn2.as_ref(), &y)?;
        let short = match (&self.shortcut_conv, self.pad) {
            (Some(c), _) => g.conv(&format!("{name}.shortcut"), c, self.shortcut_bn.as_ref(), x)?,
            (None, Some((before, after))) => {
                let cout = self.conv2.weight.dims()[0];
                debug_assert_eq!(cout, before + self.conv1.weight.dims()[1] + after);
                g.channel_pad(&format!("{name}.shortcut"), cout, before, 2, x)
            }
            (None, None) => x.to_string(),
        };
        g.slot(&format!("{name}.relu2"), slot + 1, &[&y, &short])
    }

    fn fold(self) -> Self {
        let (conv1, bn1) = fold_pair(self.conv1, self.bn1);
        let (conv2, bn2) = fold_pair(self.conv2, self.bn2);
        let (shortcut_conv, shortcut_bn) = match self.shortcut_conv {
            Some(c) => {
                let (c, b) = fold_pair(c, self.shortcut_bn);
                (Some(c), b)
            }
            None => (None, None),
        };
        Self { conv1, bn1, conv2, bn2, shortcut_conv, shortcut_bn, pad: self.pad }
    }
}

/// Option-A shortcut: `x[:, :, ::2, ::2]` zero-padded with `before`/`after` channels.
/// `x`: `[n, c, h, w]` (h, w even) → `[n, before + c + after, h/2, w/2]`.
fn pad_shortcut(x: Tensor<4>, before: usize, after: usize) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let sub: Tensor<4> =
        x.reshape([n, c, h / 2, 2, w / 2, 2]).narrow(3, 0, 1).narrow(5, 0, 1).reshape([n, c, h / 2, w / 2]);
    let mut parts = Vec::with_capacity(3);
    if before > 0 {
        parts.push(Tensor::zeros([n, before, h / 2, w / 2], &device));
    }
    parts.push(sub);
    if after > 0 {
        parts.push(Tensor::zeros([n, after, h / 2, w / 2], &device));
    }
    Tensor::cat(parts, 1)
}

/// ResNet of basic blocks: the CIFAR ResNet-20 variants ([`ResNet::new`]) and torchvision's
/// ImageNet ResNet-18/34 ([`ResNet::torchvision`]). Field names follow the PyTorch state dicts
/// (`conv1`, `bn1`, `layer1.0.conv1`, ..., `linear`) so external weights map directly (the
/// importer renames `shortcut.*`/`downsample.*` and `fc` to these fields).
///
/// Max pooling (ImageNet stem only) is *pre-neuron*: torchvision's `relu → maxpool` becomes
/// `maxpool → slot 0`. Max pooling commutes with every slot function (ReLU, clip, QCFS: all
/// non-decreasing with f(x) ≥ f(−∞)), so the ANN output is unchanged, while in the SNN the
/// pool sees analog membrane inputs rather than spikes (paper 002, §4.3). The pool pads with
/// −∞ as PyTorch does.
#[derive(Module, Debug)]
pub struct ResNet {
    pub(crate) conv1: Conv2d,
    pub(crate) bn1: Option<BatchNorm>,
    /// Extra stem convolutions (Sengupta variant: 2 more).
    stem: Vec<StemConv>,
    layer1: Vec<BasicBlock>,
    layer2: Vec<BasicBlock>,
    layer3: Vec<BasicBlock>,
    layer4: Vec<BasicBlock>,
    linear: Linear,
    /// Clip/QCFS activation parameters (ReLU when `None`).
    pub(crate) act: Option<ActivationParams>,
    /// 3x3/2 max pool (padding 1) between `conv1`/`bn1` and slot 0.
    #[module(skip)]
    stem_pool: bool,
}

/// torchvision's stem max pool: 3x3, stride 2, padding 1 (padded with −∞).
/// `x`: `[n, c, h, w]` → `[n, c, ⌊(h − 1)/2⌋ + 1, ⌊(w − 1)/2⌋ + 1]`.
pub(crate) fn stem_max_pool(x: Tensor<4>) -> Tensor<4> {
    MaxPool2dConfig::new([3, 3])
        .with_strides([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init()
        .forward(x)
}

/// A stem convolution with optional BN.
#[derive(Module, Debug)]
pub struct StemConv {
    conv: Conv2d,
    bn: Option<BatchNorm>,
}

impl ResNet {
    /// A CIFAR ResNet-20 variant. `input`: `[channels, height, width]`.
    pub fn new(
        variant: ResNetVariant,
        input: [usize; 3],
        classes: usize,
        width: f32,
        batch_norm: bool,
        shortcut: Shortcut,
        device: &Device,
    ) -> Self {
        Self::with_layout(variant.layout(), input, classes, width, batch_norm, shortcut, device)
    }

    /// A ResNet of `layout`, channels scaled by `width`. `input`: `[channels, height, width]`.
    pub(crate) fn with_layout(
        layout: ResNetLayout,
        input: [usize; 3],
        classes: usize,
        width: f32,
        batch_norm: bool,
        shortcut: Shortcut,
        device: &Device,
    ) -> Self {
        let ResNetLayout { stem_channels, stem_kernel, stem_stride, stem_pool, extra_stem, stages } = layout;
        let c0 = scaled(stem_channels, width);
        let conv1 = conv(input[0], c0, stem_kernel, stem_stride, !batch_norm, device);
        let bn1 = bn(c0, batch_norm, device);
        let stem = (0..extra_stem)
            .map(|_| StemConv { conv: conv(c0, c0, 3, 1, !batch_norm, device), bn: bn(c0, batch_norm, device) })
            .collect();
        let mut cin = c0;
        let mut layers: Vec<Vec<BasicBlock>> = Vec::new();
        for &(c, n, stride) in stages {
            let c = scaled(c, width);
            let blocks = (0..n)
                .map(|i| {
                    let b = BasicBlock::new(cin, c, if i == 0 { stride } else { 1 }, shortcut, batch_norm, device);
                    cin = c;
                    b
                })
                .collect();
            layers.push(blocks);
        }
        layers.resize_with(4, Vec::new);
        let mut it = layers.into_iter();
        let mut next = || it.next().unwrap_or_default();
        Self {
            conv1,
            bn1,
            stem,
            layer1: next(),
            layer2: next(),
            layer3: next(),
            layer4: next(),
            linear: linear(cin, classes, device),
            act: None,
            stem_pool,
        }
    }

    fn stages(&self) -> [(&'static str, &Vec<BasicBlock>); 4] {
        [("layer1", &self.layer1), ("layer2", &self.layer2), ("layer3", &self.layer3), ("layer4", &self.layer4)]
    }
}

impl Convertible for ResNet {
    fn forward_ctx(&self, x: Tensor<4>, ctx: &mut ForwardCtx) -> Tensor<2> {
        ctx.use_activation(self.act.as_ref());
        let mut x = conv_bn_forward(&self.conv1, self.bn1.as_ref(), x, ctx, || "conv1".into());
        if self.stem_pool {
            x = stem_max_pool(x);
        }
        x = ctx.act(0, x);
        let [n, ..] = x.dims();
        let [_, classes] = self.linear.weight.dims();
        let skipped = |x: &Tensor<4>| ForwardCtx::skipped_logits(n, classes, &x.device());
        if ctx.stopped() {
            return skipped(&x);
        }
        let mut slot = 1;
        for (i, s) in self.stem.iter().enumerate() {
            x = conv_bn_forward(&s.conv, s.bn.as_ref(), x, ctx, || format!("stem.{i}.conv"));
            x = ctx.act(slot, x);
            slot += 1;
            if ctx.stopped() {
                return skipped(&x);
            }
        }
        for (stage, blocks) in self.stages() {
            for (i, b) in blocks.iter().enumerate() {
                x = b.forward(x, ctx, slot, &format!("{stage}.{i}"));
                slot += 2;
                if ctx.stopped() {
                    return skipped(&x);
                }
            }
        }
        let [n, c, h, w] = x.dims();
        let x = x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c]);
        linear_forward(&self.linear, x, ctx, "linear")
    }

    fn slots(&self) -> Vec<SlotInfo> {
        // Build names in order, then fill consumers: a slot's output feeds the next conv
        // (and the next block's shortcut conv when the slot ends a block or the stem).
        let mut slots = vec![SlotInfo { name: "relu".into(), consumers: vec![] }];
        for i in 0..self.stem.len() {
            slots.push(SlotInfo { name: format!("stem.{i}.relu"), consumers: vec![] });
        }
        let mut block_inputs: Vec<Vec<String>> = Vec::new(); // consumers of each block's input
        for (stage, blocks) in self.stages() {
            for (i, b) in blocks.iter().enumerate() {
                let name = format!("{stage}.{i}");
                let mut cons = vec![format!("{name}.conv1")];
                if b.shortcut_conv.is_some() {
                    cons.push(format!("{name}.shortcut"));
                }
                block_inputs.push(cons);
                slots.push(SlotInfo { name: format!("{name}.relu1"), consumers: vec![format!("{name}.conv2")] });
                slots.push(SlotInfo { name: format!("{name}.relu2"), consumers: vec![] });
            }
        }
        // Stem chain.
        let stem_len = 1 + self.stem.len();
        for (i, slot) in slots.iter_mut().take(stem_len - 1).enumerate() {
            slot.consumers = vec![format!("stem.{i}.conv")];
        }
        // Each block-ending slot (and the last stem slot) feeds the next block's input.
        let mut feeders: Vec<usize> = vec![stem_len - 1];
        feeders.extend((0..block_inputs.len()).map(|b| stem_len + 2 * b + 1));
        for (k, slot) in feeders.iter().enumerate() {
            slots[*slot].consumers = block_inputs.get(k).cloned().unwrap_or_else(|| vec!["linear".into()]);
        }
        slots
    }

    fn layer_graph(&self, input: [usize; 3]) -> Result<LayerGraph, GraphError> {
        let mut g = GraphBuilder::new("resnet", input);
        if self.stem_pool {
            return Err(g.unsupported("the stem's pre-neuron max pooling has no graph form"));
        }
        let x = g.conv("conv1", &self.conv1, self.bn1.as_ref(), "input")?;
        let mut x = g.slot("relu", 0, &[&x])?;
        let mut slot = 1;
        for (i, s) in self.stem.iter().enumerate() {
            x = g.conv(&format!("stem.{i}.conv"), &s.conv, s.bn.as_ref(), &x)?;
            x = g.slot(&format!("stem.{i}.relu"), slot, &[&x])?;
            slot += 1;
        }
        for (stage, blocks) in self.stages() {
            for (i, b) in blocks.iter().enumerate() {
                x = b.graph(&mut g, &x, slot, &format!("{stage}.{i}"))?;
                slot += 2;
            }
        }
        let [_, h, w]: [usize; 3] = g.output_shape(&x).try_into().expect("a feature map before pooling");
        let x = g.avg_pool("avgpool", [h, w], &x);
        let x = g.flatten("flatten", &x);
        let x = g.affine("linear", &self.linear, &x)?;
        Ok(g.finish(&x))
    }

    fn fold_batchnorm(self) -> Self {
        let (conv1, bn1) = fold_pair(self.conv1, self.bn1);
        let stem = self
            .stem
            .into_iter()
            .map(|s| {
                let (conv, bn) = fold_pair(s.conv, s.bn);
                StemConv { conv, bn }
            })
            .collect();
        let fold_stage = |v: Vec<BasicBlock>| v.into_iter().map(BasicBlock::fold).collect();
        Self {
            conv1,
            bn1,
            stem,
            layer1: fold_stage(self.layer1),
            layer2: fold_stage(self.layer2),
            layer3: fold_stage(self.layer3),
            layer4: fold_stage(self.layer4),
            linear: self.linear,
            act: self.act,
            stem_pool: self.stem_pool,
        }
    }
}
