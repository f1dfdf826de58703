//! MobileNet-v2 (Sandler et al. 2018) as torchvision defines it (`torchvision.models.mobilenet_v2`).
//!
//! Stem: conv 3x3 stride 2 (32 channels) + BN + ReLU6. Then 17 inverted-residual blocks from
//! the (t, c, n, s) table `(1,16,1,1) (6,24,2,2) (6,32,3,2) (6,64,4,2) (6,96,3,1) (6,160,3,2)
//! (6,320,1,1)` (expansion t, output channels c, repeats n, first stride s): a 1x1 expansion
//! conv to t·c_in channels + BN + ReLU6 (absent when t = 1), a depthwise 3x3 conv (stride s on
//! the first repeat) + BN + ReLU6, and a linear 1x1 projection + BN without activation; the
//! input is added to the projection when the stride is 1 and the channel count unchanged.
//! Last: a 1x1 conv to 1280 channels + BN + ReLU6, global average pooling, dropout (identity at
//! inference) and one linear layer. Channel counts are `width`·c rounded to multiples of 8 as
//! torchvision's `_make_divisible` does (the last conv keeps at least 1280).
//!
//! Activation slots (35 at width 1): `features.0.relu`, per block its expansion
//! (`features.<i>.conv.0.relu`) and depthwise activation (`features.<i>.conv.1.relu`; for the
//! t = 1 block `features.1.conv.0.relu`), and `features.18.relu`. ReLU6 is the model's ANN
//! activation: a MobileNet-v2 built with the default `activation = "relu"` gets the clip
//! activation at 6 in every slot (so conversions see the torchvision network's activations);
//! `qcfs` replaces it as for the other models. The residual add and the projections are
//! linear, so they stay analog in the SNN like every conv.
//!
//! torchvision weights (`features.<i>.conv.<j>...`, `classifier.1.*`) load through
//! [`crate::import_weights`] with [`key_remaps`]. At width 1 on 224x224 inputs: 3.50 M
//! parameters and 0.30 G MACs per image (1000 classes).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::prelude::*;

use crate::layers::{bn, conv, conv_bn_forward, fold_pair, linear, linear_forward};
use crate::{ActivationParams, Convertible, ForwardCtx, SlotInfo};

/// torchvision's inverted-residual table: (expansion t, channels c, repeats n, first stride s).
const SETTINGS: [(usize, usize, usize, usize); 7] =
    [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)];

/// torchvision's `_make_divisible(v, 8)`: the nearest multiple of 8, at least 8, and not more
/// than 10 % below `v`.
pub fn make_divisible(v: f32) -> usize {
    let divisor = 8usize;
    let mut new_v = (((v + divisor as f32 / 2.0) as usize) / divisor * divisor).max(divisor);
    if (new_v as f32) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

/// One inverted-residual block.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    expand_conv: Option<Conv2d>,
    expand_bn: Option<BatchNorm>,
    dw_conv: Conv2d,
    dw_bn: Option<BatchNorm>,
    project_conv: Conv2d,
    project_bn: Option<BatchNorm>,
    #[module(skip)]
    residual: bool,
}

/// MobileNet-v2 (torchvision layout).
#[derive(Module, Debug)]
pub struct MobileNetV2 {
    stem_conv: Conv2d,
    stem_bn: Option<BatchNorm>,
    blocks: Vec<InvertedResidual>,
    last_conv: Conv2d,
    last_bn: Option<BatchNorm>,
    linear: Linear,
    /// Clip (ReLU6) / QCFS activation parameters.
    pub(crate) act: Option<ActivationParams>,
}

fn depthwise(channels: usize, stride: usize, bias: bool, device: &Device) -> Conv2d {
    Conv2dConfig::new([channels, channels], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_groups(channels)
        .with_bias(bias)
        .init(device)
}

impl MobileNetV2 {
    /// A freshly initialised MobileNet-v2 with channels scaled by `width` and `classes`
    /// outputs. `input`: `[channels, height, width]` (any size; the network divides it by 32).
    /// Without `batch_norm` every conv has a bias.
    pub fn new(input: [usize; 3], classes: usize, width: f32, batch_norm: bool, device: &Device) -> Self {
        let bias = !batch_norm;
        let mut cin = make_divisible(32.0 * width);
        let stem_conv = conv(input[0], cin, 3, 2, bias, device);
        let stem_bn = bn(cin, batch_norm, device);
        let mut blocks = Vec::new();
        for (t, c, n, s) in SETTINGS {
            let cout = make_divisible(c as f32 * width);
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                let hidden = (cin as f32 * t as f32).round() as usize;
                let (expand_conv, expand_bn) = if t == 1 {
                    (None, None)
                } else {
                    (Some(conv(cin, hidden, 1, 1, bias, device)), bn(hidden, batch_norm, device))
                };
                blocks.push(InvertedResidual {
                    expand_conv,
                    expand_bn,
                    dw_conv: depthwise(hidden, stride, bias, device),
                    dw_bn: bn(hidden, batch_norm, device),
                    project_conv: conv(hidden, cout, 1, 1, bias, device),
                    project_bn: bn(cout, batch_norm, device),
                    residual: stride == 1 && cin == cout,
                });
                cin = cout;
            }
        }
        let last = make_divisible(1280.0 * width.max(1.0));
        Self {
            stem_conv,
            stem_bn,
            blocks,
            last_conv: conv(cin, last, 1, 1, bias, device),
            last_bn: bn(last, batch_norm, device),
            linear: linear(last, classes, device),
            act: None,
        }
    }

    /// Activation slots per block: expansion (if any) and depthwise.
    fn block_slots(block: &InvertedResidual) -> usize {
        1 + block.expand_conv.is_some() as usize
    }
}

/// torchvision `features.<i>.conv.<j>` names → this struct's fields, for
/// [`crate::import_weights`]: the stem (`features.0.0/1`), the blocks (`features.1` has no
/// expansion: `conv.0` depthwise, `conv.1`/`conv.2` projection; the others `conv.0`
/// expansion, `conv.1` depthwise, `conv.2`/`conv.3` projection), the last conv
/// (`features.18.0/1`) and `classifier.1`.
pub fn key_remaps() -> Vec<(String, String)> {
    let mut remaps = vec![
        (r"^features\.0\.0\.(.*)$".to_string(), "stem_conv.$1".to_string()),
        (r"^features\.0\.1\.(.*)$".to_string(), "stem_bn.$1".to_string()),
        (r"^features\.18\.0\.(.*)$".to_string(), "last_conv.$1".to_string()),
        (r"^features\.18\.1\.(.*)$".to_string(), "last_bn.$1".to_string()),
        (r"^classifier\.1\.(.*)$".to_string(), "linear.$1".to_string()),
        (r"^features\.1\.conv\.0\.0\.(.*)$".to_string(), "blocks.0.dw_conv.$1".to_string()),
        (r"^features\.1\.conv\.0\.1\.(.*)$".to_string(), "blocks.0.dw_bn.$1".to_string()),
        (r"^features\.1\.conv\.1\.(.*)$".to_string(), "blocks.0.project_conv.$1".to_string()),
        (r"^features\.1\.conv\.2\.(.*)$".to_string(), "blocks.0.project_bn.$1".to_string()),
    ];
    for f in 2..=17 {
        let b = f - 1;
        for (from, to) in [
            ("conv\\.0\\.0", "expand_conv"),
            ("conv\\.0\\.1", "expand_bn"),
            ("conv\\.1\\.0", "dw_conv"),
            ("conv\\.1\\.1", "dw_bn"),
            ("conv\\.2", "project_conv"),
            ("conv\\.3", "project_bn"),
        ] {
            remaps.push((format!(r"^features\.{f}\.{from}\.(.*)$"), format!("blocks.{b}.{to}.$1")));
        }
    }
    remaps
}

impl Convertible for MobileNetV2 {
    fn forward_ctx(&self, x: Tensor<4>, ctx: &mut ForwardCtx) -> Tensor<2> {
        ctx.use_activation(self.act.as_ref());
        let mut slot = 0;
        let mut x = conv_bn_forward(&self.stem_conv, self.stem_bn.as_ref(), x, ctx, || "features.0.0".into());
        x = ctx.act(slot, x);
        slot += 1;
        for (i, b) in self.blocks.iter().enumerate() {
            let f = i + 1;
            let input = x.clone();
            let mut j = 0;
            let mut h = x;
            if let Some(expand) = &b.expand_conv {
                h = conv_bn_forward(expand, b.expand_bn.as_ref(), h, ctx, || format!("features.{f}.conv.0.0"));
                h = ctx.act(slot, h);
                slot += 1;
                j += 1;
            }
            h = conv_bn_forward(&b.dw_conv, b.dw_bn.as_ref(), h, ctx, || format!("features.{f}.conv.{j}.0"));
            h = ctx.act(slot, h);
            slot += 1;
            h = conv_bn_forward(&b.project_conv, b.project_bn.as_ref(), h, ctx, || {
                format!("features.{f}.conv.{}", j + 1)
            });
            x = if b.residual { h.add(input) } else { h };
            if ctx.stopped() {
                let [n, ..] = x.dims();
                return ForwardCtx::skipped_logits(n, self.linear.weight.dims()[1], &x.device());
            }
        }
        let last = self.blocks.len() + 1;
        x = conv_bn_forward(&self.last_conv, self.last_bn.as_ref(), x, ctx, || format!("features.{last}.0"));
        x = ctx.act(slot, x);
        let [n, c, _, _] = x.dims();
        let pooled = x.mean_dim(2).mean_dim(3).reshape([n, c]);
        linear_forward(&self.linear, pooled, ctx, "classifier.1")
    }

    fn slots(&self) -> Vec<SlotInfo> {
        let mut slots =
            vec![SlotInfo { name: "features.0.relu".into(), consumers: vec!["features.1.conv.0.0".into()] }];
        for (i, b) in self.blocks.iter().enumerate() {
            let f = i + 1;
            let expand = b.expand_conv.is_some() as usize;
            if expand == 1 {
                slots.push(SlotInfo {
                    name: format!("features.{f}.conv.0.relu"),
                    consumers: vec![format!("features.{f}.conv.1.0")],
                });
            }
            slots.push(SlotInfo {
                name: format!("features.{f}.conv.{expand}.relu"),
                consumers: vec![format!("features.{f}.conv.{}", expand + 1)],
            });
        }
        let last = self.blocks.len() + 1;
        slots.push(SlotInfo { name: format!("features.{last}.relu"), consumers: vec!["classifier.1".into()] });
        debug_assert_eq!(slots.len(), 2 + self.blocks.iter().map(Self::block_slots).sum::<usize>());
        slots
    }

    fn fold_batchnorm(self) -> Self {
        let (stem_conv, stem_bn) = fold_pair(self.stem_conv, self.stem_bn);
        let (last_conv, last_bn) = fold_pair(self.last_conv, self.last_bn);
        let blocks = self
            .blocks
            .into_iter()
            .map(|b| {
                let (expand_conv, expand_bn) = match b.expand_conv {
                    Some(c) => {
                        let (c, n) = fold_pair(c, b.expand_bn);
                        (Some(c), n)
                    }
                    None => (None, None),
                };
                let (dw_conv, dw_bn) = fold_pair(b.dw_conv, b.dw_bn);
                let (project_conv, project_bn) = fold_pair(b.project_conv, b.project_bn);
                InvertedResidual {
                    expand_conv,
                    expand_bn,
                    dw_conv,
                    dw_bn,
                    project_conv,
                    project_bn,
                    residual: b.residual,
                }
            })
            .collect();
        Self { stem_conv, stem_bn, blocks, last_conv, last_bn, ..self }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;

    #[test]
    fn make_divisible_matches_torchvision() {
        // torchvision: _make_divisible(32 * 0.5, 8) = 16, (24 * 0.35) = 8, (96 * 0.75) = 72,
        // (1280 * 1.4) = 1792, (16 * 0.35) = 8.
        assert_eq!(make_divisible(16.0), 16);
        assert_eq!(make_divisible(24.0 * 0.35), 8);
        assert_eq!(make_divisible(96.0 * 0.75), 72);
        assert_eq!(make_divisible(1280.0 * 1.4), 1792);
        assert_eq!(make_divisible(16.0 * 0.35), 8);
        assert_eq!(make_divisible(160.0 * 0.35), 56);
    }

    #[test]
    fn torchvision_layout_slots_and_parameters() {
        let d = Device::flex();
        let m = MobileNetV2::new([3, 224, 224], 1000, 1.0, true, &d);
        assert_eq!(m.blocks.len(), 17);
        assert_eq!(m.slots().len(), 35);
        assert_eq!(m.blocks.iter().filter(|b| b.residual).count(), 10);
        // torchvision's mobilenet_v2() has 3,504,872 parameters; burn also counts the BN
        // running mean and variance, 2 per BN channel (17,056 BN channels).
        let params = m.num_params();
        assert_eq!(params, 3_504_872 + 2 * 17_056, "parameters: {params}");
        // The remaps name every tensor of this struct exactly once.
        let remaps = key_remaps();
        assert_eq!(remaps.len(), 5 + 4 + 16 * 6);
    }

    #[test]
    fn folding_batchnorm_preserves_the_output_and_the_trace_names_the_torchvision_layers() {
        let d = Device::flex();
        d.seed(4);
        let m = MobileNetV2::new([3, 32, 32], 10, 0.35, true, &d);
        let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &d);
        let a = crate::tensor_values(m.forward_ctx(x.clone(), &mut ForwardCtx::ann()));
        let mut trace = ForwardCtx::tracing();
        let _ = m.forward_ctx(x.clone(), &mut trace);
        let names: Vec<String> = trace.take_trace().into_iter().map(|l| l.name).collect();
        for slot in m.slots() {
            for c in &slot.consumers {
                assert!(names.contains(c), "consumer {c} of {} is not a traced layer", slot.name);
            }
        }
        let folded = m.fold_batchnorm();
        let b = crate::tensor_values(folded.forward_ctx(x, &mut ForwardCtx::ann()));
        for (p, q) in a.iter().zip(&b) {
            assert!((p - q).abs() < 1e-3 * p.abs().max(1.0), "{p} vs {q}");
        }
    }
}
