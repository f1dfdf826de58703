//! An FCN-style semantic segmentation network (`fcn-vgg`, Long, Shelhamer & Darrell 2015) on
//! the VGG-style [`DenseBackbone`], with its pixel-wise training loss.
//!
//! # Network
//!
//! [`DenseBackbone`] (stride 8: a 64×64 image gives an 8×8 map), a 1×1 convolution with bias
//! (`classifier`, analog) to `C` class scores (`C` counts the background, e.g. label 0), then a
//! fixed bilinear upsampling ×8 back to the input size ([`bilinear_upsample`]: PyTorch's
//! `interpolate(mode="bilinear", align_corners=False)`). The upsampling is a fixed linear map
//! applied inside the forward, so the ANN and the converted SNN run the same code and the SNN
//! readout simply accumulates its output. It is not a weighted layer of the MAC trace.
//!
//! # Flattening order
//!
//! Class-major, burn's row-major reshape of the logits `[batch, C, H, W]`: the score of class
//! `c` at pixel `(y, x)` of a sample is at `(c·H + y)·W + x` ([`segmentation_logits_index`]);
//! the output is `[batch, C·H·W]`.

use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use crate::detection::{DENSE_STRIDE, DenseBackbone};
use crate::layers::{conv, conv_bn_forward};
use crate::network::ModelError;
use crate::{ActivationParams, Convertible, ForwardCtx, GraphError, LayerGraph, Pooling, SlotInfo, tensor_from};

fn invalid(reason: impl Into<String>) -> ModelError {
    ModelError::Invalid { model: "fcn-vgg".into(), reason: reason.into() }
}

/// Position of the score of class `c` at pixel `(y, x)` in one sample's flattened output of an
/// `hw = [H, W]` image: `(c·H + y)·W + x`.
pub fn segmentation_logits_index(hw: [usize; 2], c: usize, y: usize, x: usize) -> usize {
    (c * hw[0] + y) * hw[1] + x
}

/// Bilinear interpolation weights from `input` to `output` samples along one axis, row-major
/// `[output, input]`, with PyTorch's `align_corners=False` convention: output sample `i` reads
/// the source coordinate `s = max((i + ½)·input/output − ½, 0)`, weight `1 − (s − ⌊s⌋)` on
/// `⌊s⌋` and `s − ⌊s⌋` on `min(⌊s⌋ + 1, input − 1)`. Every row sums to 1.
pub fn bilinear_matrix(input: usize, output: usize) -> Vec<f32> {
    let mut m = vec![0.0f32; output * input];
    if input == 0 {
        return m;
    }
    let scale = input as f64 / output as f64;
    for i in 0..output {
        let s = ((i as f64 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (s.floor() as usize).min(input - 1);
        let i1 = (i0 + 1).min(input - 1);
        let lambda = (s - i0 as f64).clamp(0.0, 1.0) as f32;
        m[i * input + i0] += 1.0 - lambda;
        m[i * input + i1] += lambda;
    }
    m
}

/// Fixed bilinear upsampling ([`bilinear_matrix`] along each axis, separable):
/// `y[n, c] = U_h · x[n, c] · U_wᵀ`. `x`: `[batch, c, h, w]` → `[batch, c, out[0], out[1]]`.
pub fn bilinear_upsample(x: Tensor<4>, out: [usize; 2]) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let [oh, ow] = out;
    let device = x.device();
    let transposed = |input: usize, output: usize| {
        let m = bilinear_matrix(input, output);
        let t: Vec<f32> = (0..input * output).map(|k| m[(k % output) * input + k / output]).collect();
        tensor_from(t, [input, output], &device)
    };
    // Rows: [n·c·h, w] · [w, ow] → [n·c·h, ow]; then the columns likewise.
    let y = x.reshape([n * c * h, w]).matmul(transposed(w, ow));
    let y = y.reshape([n * c, h, ow]).swap_dims(1, 2).reshape([n * c * ow, h]).matmul(transposed(h, oh));
    y.reshape([n * c, ow, oh]).swap_dims(1, 2).reshape([n, c, oh, ow])
}

/// FCN-style segmentation network: [`DenseBackbone`], a 1×1 conv `classifier` (with bias,
/// analog) to `C` channels, fixed bilinear upsampling ×8. 10 activation slots
/// (`features.{i}.relu`), traced layers `features.{i}` and `classifier`. See the module
/// documentation for the output layout.
#[derive(Module, Debug)]
pub struct FcnVgg {
    backbone: DenseBackbone,
    classifier: Conv2d,
    /// Clip/QCFS activation parameters (ReLU when `None`).
    pub(crate) act: Option<ActivationParams>,
    #[module(skip)]
    classes: usize,
}

impl FcnVgg {
    /// `input`: `[channels, H, W]` with `H`, `W` positive multiples of [`DENSE_STRIDE`];
    /// `classes` including the background (at least 2).
    pub fn new(
        input: [usize; 3],
        classes: usize,
        width: f32,
        batch_norm: bool,
        pooling: Pooling,
        device: &Device,
    ) -> Result<Self, ModelError> {
        DenseBackbone::output_hw("fcn-vgg", input)?;
        if classes < 2 {
            return Err(invalid(format!("needs at least 2 classes (background included); got {classes}")));
        }
        let backbone = DenseBackbone::new(input[0], width, batch_norm, pooling, device);
        let classifier = conv(backbone.out_channels(), classes, 1, 1, true, device);
        Ok(Self { backbone, classifier, act: None, classes })
    }

    /// Classes `C` of the per-pixel output, the background included (the mask labels).
    pub fn labels(&self) -> usize {
        self.classes
    }

    /// The logit maps: `[batch, c, H, W]` → `[batch, C, 8·⌊H/8⌋, 8·⌊W/8⌋]` (the input size for
    /// the sizes [`FcnVgg::new`] accepts). `None` when `ctx` stopped inside the backbone.
    pub fn forward_map(&self, x: Tensor<4>, ctx: &mut ForwardCtx) -> Option<Tensor<4>> {
        ctx.use_activation(self.act.as_ref());
        let x = self.backbone.forward_ctx(x, ctx);
        if ctx.stopped() {
            return None;
        }
        let y = conv_bn_forward(&self.classifier, None, x, ctx, || "classifier".into());
        let [_, _, h, w] = y.dims();
        Some(bilinear_upsample(y, [h * DENSE_STRIDE, w * DENSE_STRIDE]))
    }
}

impl Convertible for FcnVgg {
    /// `x`: `[batch, c, H, W]` → `[batch, C·H·W]`, the logit maps flattened class-major (index
    /// [`segmentation_logits_index`]).
    fn forward_ctx(&self, x: Tensor<4>, ctx: &mut ForwardCtx) -> Tensor<2> {
        let [n, _, h, w] = x.dims();
        let device = x.device();
        match self.forward_map(x, ctx) {
            Some(y) => y.flatten(1, 3),
            None => {
                let size = self.classes * (h / DENSE_STRIDE) * (w / DENSE_STRIDE) * DENSE_STRIDE * DENSE_STRIDE;
                ForwardCtx::skipped_logits(n, size, &device)
            }
        }
    }

    fn slots(&self) -> Vec<SlotInfo> {
        self.backbone.slots("classifier")
    }

    fn layer_graph(&self, _input: [usize; 3]) -> Result<LayerGraph, GraphError> {
        Err(GraphError::Unsupported {
            model: "fcn-vgg".into(),
            reason: "the fixed bilinear upsampling (a transposed convolution) has no graph primitive".into(),
        })
    }

    fn fold_batchnorm(self) -> Self {
        Self { backbone: self.backbone.fold_batchnorm(), ..self }
    }
}

/// Checks `labels` (one per pixel, `[batch, H, W]` row-major) against `n` samples of
/// `hw` pixels.
fn check_labels(labels: &[u32], n: usize, hw: [usize; 2]) -> Result<(), ModelError> {
    if labels.len() != n * hw[0] * hw[1] {
        return Err(invalid(format!(
            "{} labels given for {n} images of {}x{} pixels ({} expected)",
            labels.len(),
            hw[0],
            hw[1],
            n * hw[0] * hw[1]
        )));
    }
    Ok(())
}

/// [`try_pixel_cross_entropy`], for inputs known to fit.
///
/// # Panics
///
/// On the inputs [`try_pixel_cross_entropy`] rejects, with its message.
pub fn pixel_cross_entropy(
    output: Tensor<2>,
    labels: &[u32],
    classes: usize,
    hw: [usize; 2],
    ignore_index: Option<u32>,
) -> Tensor<1> {
    try_pixel_cross_entropy(output, labels, classes, hw, ignore_index).unwrap_or_else(|e| panic!("{e}"))
}

/// Pixel-wise cross-entropy of the logits `output` (`[batch, C·H·W]`, class-major) against
/// `labels` (`[batch, H, W]` row-major, values in `0..C`), averaged over the pixels whose label
/// is not `ignore_index` (VOC: 255), as PyTorch's `CrossEntropyLoss(ignore_index)`:
/// `L = −(1/|P|)·Σ_{(n, y, x) ∈ P} ln softmax_c(output[n, :, y, x])_{label}`; 0 (with a
/// gradient of 0) when no pixel counts. The one-hot targets are built on the host, so the loss
/// is differentiable on any autodiff device. Errors: shapes that do not match, a label `≥ C`
/// that is not the ignore index.
pub fn try_pixel_cross_entropy(
    output: Tensor<2>,
    labels: &[u32],
    classes: usize,
    hw: [usize; 2],
    ignore_index: Option<u32>,
) -> Result<Tensor<1>, ModelError> {
    let [n, d] = output.dims();
    let pixels = hw[0] * hw[1];
    if classes == 0 || d != classes * pixels {
        return Err(invalid(format!("output has {d} values per image, expected {classes}·{}·{}", hw[0], hw[1])));
    }
    check_labels(labels, n, hw)?;
    let mut onehot = vec![0.0f32; n * d];
    let mut counted = 0usize;
    for (i, &label) in labels.iter().enumerate() {
        if Some(label) == ignore_index {
            continue;
        }
        if label as usize >= classes {
            return Err(invalid(format!("label {label} at pixel {i} is not below {classes} (nor the ignore index)")));
        }
        let (b, p) = (i / pixels, i % pixels);
        onehot[(b * classes + label as usize) * pixels + p] = 1.0;
        counted += 1;
    }
    let device = output.device();
    let logp = log_softmax(output.reshape([n, classes, pixels]), 1);
    let onehot = tensor_from(onehot, [n, classes, pixels], &device);
    Ok(logp.mul(onehot).sum().neg().div_scalar(counted.max(1) as f32))
}

/// Per-pixel predicted class (argmax of the logits; ties: the lower class) of one sample's
/// output `raw` (`C·H·W` values, class-major), `[H, W]` row-major.
pub fn segmentation_predict(raw: &[f32], classes: usize, hw: [usize; 2]) -> Result<Vec<u32>, ModelError> {
    let pixels = hw[0] * hw[1];
    if classes == 0 || raw.len() != classes * pixels {
        return Err(invalid(format!("{} values given, expected {classes}·{}·{}", raw.len(), hw[0], hw[1])));
    }
    Ok((0..pixels)
        .map(|p| {
            let mut best = 0;
            for c in 1..classes {
                if raw[c * pixels + p] > raw[best * pixels + p] {
                    best = c;
                }
            }
            best as u32
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Network, build_model, tensor_values};
    use burn::tensor::Distribution;

    const TINY: &str = "name = \"fcn-vgg\"\nwidth = 0.0625";

    fn spec(text: &str) -> crate::ModelSpec {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn bilinear_upsampling_keeps_constants_and_matches_pytorch() {
        let d = Device::flex();
        let x = Tensor::<4>::full([2, 3, 4, 4], 3.7, &d);
        let y = bilinear_upsample(x, [32, 32]);
        assert_eq!(y.dims(), [2, 3, 32, 32]);
        assert!(tensor_values(y).iter().all(|v| (v - 3.7).abs() < 1e-5));
        // torch.nn.functional.interpolate([[0, 1]], scale_factor=2, mode="bilinear") along each
        // axis gives [0, 0.25, 0.75, 1]; the 2x2 map [[0, 1], [2, 3]] gives the outer sum.
        let x = tensor_from(vec![0.0, 1.0, 2.0, 3.0], [1, 1, 2, 2], &d);
        let y = tensor_values(bilinear_upsample(x, [4, 4]));
        let axis = [0.0, 0.25, 0.75, 1.0];
        for r in 0..4 {
            for c in 0..4 {
                let want = 2.0 * axis[r] + axis[c];
                assert!((y[r * 4 + c] - want).abs() < 1e-6, "{y:?}");
            }
        }
        for (input, output) in [(4, 32), (3, 7), (8, 8)] {
            let m = bilinear_matrix(input, output);
            for row in m.chunks(input) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn output_shape_and_index_agree_with_the_logit_maps() {
        let d = Device::flex();
        d.seed(1);
        // 4 object classes: 5 maps with the background.
        let net = build_model(&spec(TINY), [3, 32, 24], 4, &d).unwrap();
        let Network::Segmenter(m) = &net else { panic!("an fcn-vgg network") };
        let x = Tensor::<4>::random([2, 3, 32, 24], Distribution::Normal(0.0, 1.0), &d);
        let out = net.forward(x.clone());
        assert_eq!(out.dims(), [2, 5 * 32 * 24]);
        let map = m.forward_map(x, &mut ForwardCtx::ann()).unwrap();
        assert_eq!(map.dims(), [2, 5, 32, 24]);
        let (out, map) = (tensor_values(out), tensor_values(map));
        let dv = 5 * 32 * 24;
        for b in 0..2 {
            for c in 0..5 {
                for y in 0..32 {
                    for x in 0..24 {
                        let m4 = map[((b * 5 + c) * 32 + y) * 24 + x];
                        assert_eq!(out[b * dv + segmentation_logits_index([32, 24], c, y, x)], m4);
                    }
                }
            }
        }
        let pred = segmentation_predict(&out[..dv], 5, [32, 24]).unwrap();
        assert_eq!(pred.len(), 32 * 24);
        let (y, x) = (7, 9);
        let best = (0..5).max_by(|&a, &b| {
            let v = |c| out[segmentation_logits_index([32, 24], c, y, x)];
            v(a).total_cmp(&v(b))
        });
        assert_eq!(pred[y * 24 + x] as usize, best.unwrap());
    }

    #[test]
    fn forward_equals_the_hooked_forward_and_every_slot_is_called_once() {
        let d = Device::flex();
        d.seed(2);
        for pooling in ["avg", "max"] {
            let net = build_model(&spec(&format!("{TINY}\npooling = \"{pooling}\"")), [3, 32, 32], 2, &d).unwrap();
            let x = Tensor::<4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &d);
            crate::test_support::check_slot_contract(&net, x.clone(), 10, "classifier");
            // Stopping after slot 3 skips the rest and keeps the output shape.
            let mut stop = ForwardCtx::ann().stopping_after(3);
            assert_eq!(net.forward_ctx(x, &mut stop).dims(), [2, 3 * 32 * 32]);
        }
        let net = build_model(&spec(TINY), [3, 32, 32], 2, &d).unwrap().fold_batchnorm();
        let err = net.layer_graph([3, 32, 32]).unwrap_err().to_string();
        assert!(err.contains("fcn-vgg") && err.contains("upsampling"), "{err}");
    }

    #[test]
    fn invalid_specs_are_errors() {
        let d = Device::flex();
        let err = |input: [usize; 3], classes| build_model(&spec(TINY), input, classes, &d).unwrap_err().to_string();
        assert!(err([3, 30, 32], 3).contains("multiples of 8"));
        // No object class: the background alone is 1 map.
        assert!(err([3, 32, 32], 0).contains("at least 2"));
    }

    #[test]
    fn pixel_cross_entropy_matches_its_equation_and_ignores_pixels() {
        let d = Device::flex();
        // One image of 1x3 pixels, 2 classes: logits (2, 0), (0, 1), (5, 5); labels 0, 255, 1.
        let out = tensor_from(vec![2.0, 0.0, 5.0, 0.0, 1.0, 5.0], [1, 6], &d);
        let loss = pixel_cross_entropy(out.clone(), &[0, 255, 1], 2, [1, 3], Some(255));
        let want = ((1.0 + (-2f32).exp()).ln() + 2f32.ln()) / 2.0;
        assert!((loss.into_scalar::<f32>() - want).abs() < 1e-5);
        // Uniform logits: ln C.
        let zeros = Tensor::<2>::zeros([2, 4 * 6], &d);
        let loss = pixel_cross_entropy(zeros, &[3; 12], 4, [2, 3], None).into_scalar::<f32>();
        assert!((loss - 4f32.ln()).abs() < 1e-5);
        let err = try_pixel_cross_entropy(out.clone(), &[0, 255, 1], 2, [1, 3], None).unwrap_err().to_string();
        assert!(err.contains("label 255"), "{err}");
        assert!(try_pixel_cross_entropy(out.clone(), &[0, 1], 2, [1, 3], None).is_err());
        assert!(try_pixel_cross_entropy(out, &[0, 1, 1], 3, [1, 3], None).is_err());
        // It is differentiable: a gradient step lowers it.
        let ad = Device::flex().autodiff();
        let labels = [0, 1, 2, 1, 0, 255];
        let mut values = vec![0.0f32; 3 * 6];
        let mut losses = Vec::new();
        for _ in 0..20 {
            let raw = tensor_from(values.clone(), [1, 18], &ad).require_grad();
            let loss = pixel_cross_entropy(raw.clone(), &labels, 3, [2, 3], Some(255));
            losses.push(loss.clone().into_scalar::<f32>());
            let g = tensor_values(raw.grad(&loss.backward()).unwrap());
            values.iter_mut().zip(g).for_each(|(v, g)| *v -= 2.0 * g);
        }
        assert!(losses[19] < 0.3 * losses[0], "{losses:?}");
        // The ignored pixel (index 5) gets no gradient: its logits never moved.
        assert!((0..3).all(|c| values[c * 6 + 5] == 0.0));
    }
}
