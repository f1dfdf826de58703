//! Model zoo for ANN-to-SNN conversion.
//!
//! Every model keeps an explicit *activation slot* wherever a ReLU sits. In ANN mode a slot
//! is a ReLU; a [`SlotHook`] installed in the [`ForwardCtx`] can replace it (to observe
//! activation statistics, or to run spiking neurons). The [`Convertible`] trait lists the
//! slots in forward order with stable names and knows how to fold batch norm.

mod activation;
mod ctx;
mod detection;
mod geometry;
mod graph;
mod import;
mod layers;
mod mobilenet;
mod network;
mod pointnet;
mod pointnet2;
mod pointnet_partseg;
mod resnet;
mod resnet_imagenet;
mod segmentation;
mod small_cnn;
#[cfg(test)]
mod test_support;
mod vgg;

pub use activation::{ActivationParams, AnnActivation};
pub use ctx::{ForwardCtx, LayerMacs, SlotHook, SlotInfo};
pub use detection::{
    BackboneConv, DENSE_STRIDE, DecodedBox, DenseBackbone, MAX_LOG_SCALE, TargetBox, YOLO_V2_VOC_ANCHORS, YoloLayout,
    YoloLossConfig, YoloVgg, box_iou, decode, default_anchors, kmeans_anchors, nms, try_yolo_v2_loss, yolo_v2_loss,
};
pub use geometry::{GroupingConfig, ball_query, farthest_point_sample};
pub use graph::{GraphError, GraphNode, GraphOp, LayerGraph, Weights, reference_apply};
pub use import::{ImportError, WeightsFormat, import_weights, non_finite_tensors};
pub use layers::{conv_bn_forward, fold_conv_bn};
pub use mobilenet::{MobileNetV2, key_remaps as mobilenet_key_remaps, make_divisible};
pub use network::{DENSE_MODEL_NAMES, MODEL_NAMES, ModelError, ModelSpec, Network, build_model};
pub use pointnet::PointNet;
pub use pointnet_partseg::PointNetPartSeg;
pub use pointnet2::PointNet2;
pub use resnet::{ResNet, ResNetVariant, Shortcut};
pub use resnet_imagenet::ImageNetResNet;
pub use segmentation::{
    FcnVgg, bilinear_matrix, bilinear_upsample, pixel_cross_entropy, segmentation_logits_index, segmentation_predict,
    try_pixel_cross_entropy,
};
pub use small_cnn::SmallCnn;
pub use vgg::{Classifier, Pooling, Vgg};

use burn::prelude::*;

/// A network the converter can work with.
pub trait Convertible {
    /// Forward pass. `x`: `[batch, channels, height, width]`; returns logits `[batch, classes]`
    /// (dense models: their flattened output map `[batch, D]`).
    /// Every activation goes through `ctx.act(slot, ..)` with the slot's index in forward order.
    fn forward_ctx(&self, x: Tensor<4>, ctx: &mut ForwardCtx) -> Tensor<2>;
    /// The activation slots in forward order.
    fn slots(&self) -> Vec<SlotInfo>;
    /// Returns an equivalent network with every batch norm folded into the preceding conv.
    fn fold_batchnorm(self) -> Self;
    /// The network as a graph of layers and slots for an input of shape `[c, h, w]` (BN folded
    /// first), for export to other tools. Models whose layers have no graph form say why.
    fn layer_graph(&self, _input: [usize; 3]) -> Result<LayerGraph, GraphError> {
        Err(GraphError::Unsupported { model: "this model".into(), reason: "has no layer graph".into() })
    }
}

/// Linear-interpolated percentile (numpy's default) of `values`, sorting them in place; 0 for
/// an empty slice. `p` in [0, 100].
pub fn percentile_of(values: &mut [f32], p: f64) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f32::total_cmp);
    let rank = (p / 100.0).clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    values[lo] + (values[hi] - values[lo]) * (rank - lo as f64) as f32
}

/// The values of a float tensor, row-major.
///
/// # Panics
/// When the device failed to compute the tensor (on a GPU: typically a buffer larger than the
/// device allows), with what to change; a CPU backend does not fail here.
pub fn tensor_values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    let data = t.try_into_data().unwrap_or_else(|e| {
        panic!(
            "the device failed to compute a tensor ({e:?}); on a GPU this is usually a buffer above the \
             device's limits: lower [eval] batch_size and chunk (a network pass holds batch × chunk images)"
        )
    });
    data.convert::<f32>().try_into_vec::<f32>().expect("a float tensor converts to f32")
}

/// A float tensor from row-major values.
pub fn tensor_from<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(burn::tensor::TensorData::new(values, shape), device)
}
