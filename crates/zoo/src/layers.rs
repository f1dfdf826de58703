//! Shared layer helpers: conv(+BN) forward with MAC tracing, BN folding, constructors.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

use crate::ForwardCtx;

/// 3x3 (or `k`x`k`) convolution with "same" padding, no bias (BN follows) unless `bias`.
pub(crate) fn conv(cin: usize, cout: usize, k: usize, stride: usize, bias: bool, device: &Device) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(bias)
        .init(device)
}

/// Optional batch norm over `c` channels.
pub(crate) fn bn(c: usize, on: bool, device: &Device) -> Option<BatchNorm> {
    on.then(|| BatchNormConfig::new(c).init(device))
}

/// Linear layer with bias.
pub(crate) fn linear(i: usize, o: usize, device: &Device) -> Linear {
    LinearConfig::new(i, o).init(device)
}

/// Scales a channel count by a width multiplier (at least 1 channel).
pub(crate) fn scaled(c: usize, width: f32) -> usize {
    ((c as f32 * width).round() as usize).max(1)
}

/// Conv then optional BN. `x`: `[n, cin, h, w]` → `[n, cout, h', w']`. Records MACs when tracing.
pub fn conv_bn_forward(
    conv: &Conv2d,
    bn: Option<&BatchNorm>,
    x: Tensor<4>,
    ctx: &mut ForwardCtx,
    name: impl FnOnce() -> String,
) -> Tensor<4> {
    let [_, cin, hin, win] = x.dims();
    conv_bn_forward_counted(conv, bn, x, ctx, name, (cin * hin * win) as u64)
}

/// As [`conv_bn_forward`], recording `inputs` as the layer's input neurons (for inputs that
/// were gathered, so that one source neuron appears several times in `x`).
pub(crate) fn conv_bn_forward_counted(
    conv: &Conv2d,
    bn: Option<&BatchNorm>,
    x: Tensor<4>,
    ctx: &mut ForwardCtx,
    name: impl FnOnce() -> String,
    inputs: u64,
) -> Tensor<4> {
    let y = if is_pointwise(conv) { pointwise_conv(conv, x) } else { conv.forward(x) };
    if ctx.is_tracing() {
        let [_, cout, h, w] = y.dims();
        let [_, cin_g, kh, kw] = conv.weight.dims();
        let outputs = (cout * h * w) as u64;
        ctx.record_macs(name, outputs * (cin_g * kh * kw) as u64, inputs, outputs);
    }
    match bn {
        Some(bn) => bn.forward(y),
        None => y,
    }
}

/// A 1x1, stride-1, ungrouped, unpadded convolution: a matrix product over channels.
fn is_pointwise(conv: &Conv2d) -> bool {
    conv.kernel_size == [1, 1]
        && conv.stride == [1, 1]
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && matches!(conv.padding, PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0))
}

/// A pointwise convolution as one matrix product (much faster than the generic conv kernel on
/// the CPU backends for the long `[n, c, points, 1]` maps of the point-cloud models).
/// `x`: `[n, cin, h, w]` → `[n, cout, h, w]`; identical to `conv.forward(x)`.
fn pointwise_conv(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [n, cin, h, w] = x.dims();
    let [cout, ..] = conv.weight.dims();
    let rows = x.reshape([n, cin, h * w]).swap_dims(1, 2).reshape([n * h * w, cin]);
    let weight = conv.weight.val().reshape([cout, cin]).transpose();
    let mut y = rows.matmul(weight);
    if let Some(b) = &conv.bias {
        y = y.add(b.val().reshape([1, cout]));
    }
    y.reshape([n, h * w, cout]).swap_dims(1, 2).reshape([n, cout, h, w])
}

/// Linear forward with MAC tracing. `x`: `[n, in]` → `[n, out]`.
pub(crate) fn linear_forward(l: &Linear, x: Tensor<2>, ctx: &mut ForwardCtx, name: &str) -> Tensor<2> {
    let [i, o] = l.weight.dims();
    ctx.record_macs(|| name.to_string(), (i * o) as u64, i as u64, o as u64);
    l.forward(x)
}

/// Linear then optional BN (over the `out` features). `x`: `[n, in]` → `[n, out]`.
pub(crate) fn linear_bn_forward(
    l: &Linear,
    bn: Option<&BatchNorm>,
    x: Tensor<2>,
    ctx: &mut ForwardCtx,
    name: &str,
) -> Tensor<2> {
    let y = linear_forward(l, x, ctx, name);
    match bn {
        Some(bn) => bn.forward(y),
        None => y,
    }
}

/// Folds a batch norm into the preceding linear layer (weight `[in, out]`), as [`fold_conv_bn`].
pub(crate) fn fold_linear_bn(l: Linear, bn: &BatchNorm) -> Linear {
    let scale = bn.gamma.val().div(bn.running_var.value().add_scalar(bn.epsilon).sqrt());
    let [_, out] = l.weight.dims();
    let w = l.weight.val().mul(scale.clone().reshape([1, out]));
    let b0 = match &l.bias {
        Some(b) => b.val(),
        None => Tensor::zeros([out], &w.device()),
    };
    let b = b0.sub(bn.running_mean.value()).mul(scale).add(bn.beta.val());
    Linear { weight: Param::from_tensor(w), bias: Some(Param::from_tensor(b)) }
}

/// Folds a batch norm (inference statistics) into the preceding convolution:
/// `W' = W·γ/√(σ²+ε)`, `b' = (b − μ)·γ/√(σ²+ε) + β`. The result has a bias.
pub fn fold_conv_bn(conv: Conv2d, bn: &BatchNorm) -> Conv2d {
    let gamma = bn.gamma.val();
    let beta = bn.beta.val();
    let mean = bn.running_mean.value();
    let var = bn.running_var.value();
    let scale = gamma.div(var.add_scalar(bn.epsilon).sqrt());
    let [cout, ..] = conv.weight.dims();
    let w = conv.weight.val().mul(scale.clone().reshape([cout, 1, 1, 1]));
    let b0 = match &conv.bias {
        Some(b) => b.val(),
        None => Tensor::zeros([cout], &w.device()),
    };
    let b = b0.sub(mean).mul(scale).add(beta);
    Conv2d { weight: Param::from_tensor(w), bias: Some(Param::from_tensor(b)), ..conv }
}

/// Folds `bn` into `l` when present; returns the (linear, None) pair.
pub(crate) fn fold_linear_pair(l: Linear, bn: Option<BatchNorm>) -> (Linear, Option<BatchNorm>) {
    match bn {
        Some(bn) => (fold_linear_bn(l, &bn), None),
        None => (l, None),
    }
}

/// Folds `bn` into `conv` when present; returns the (conv, None) pair.
pub(crate) fn fold_pair(conv: Conv2d, bn: Option<BatchNorm>) -> (Conv2d, Option<BatchNorm>) {
    match bn {
        Some(bn) => (fold_conv_bn(conv, &bn), None),
        None => (conv, None),
    }
}

#[cfg(test)]
mod pointwise_tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn pointwise_conv_equals_the_generic_convolution() {
        let d = Device::flex();
        d.seed(3);
        for bias in [false, true] {
            let c = conv(5, 7, 1, 1, bias, &d);
            assert!(is_pointwise(&c));
            let x = Tensor::<4>::random([3, 5, 11, 2], Distribution::Normal(0.0, 1.0), &d);
            let fast = pointwise_conv(&c, x.clone());
            let slow = c.forward(x);
            let diff = fast.sub(slow).abs().max().into_scalar::<f32>();
            assert!(diff < 1e-5, "max difference {diff}");
        }
        assert!(!is_pointwise(&conv(5, 7, 3, 1, false, &d)));
        assert!(!is_pointwise(&conv(5, 7, 1, 2, false, &d)));
    }
}
