//! PointNet part segmentation (`pointnet-partseg`, Qi et al. 2017, Fig. 2's segmentation
//! network), the network of Wang et al. 2024 Table 6.
//!
//! # Network
//!
//! `[optional input T-Net] → local MLP 64-64 → global MLP 64-128-1024 → pool over points
//! (avg or pre-neuron max, as `pointnet`) → the global feature broadcast to every point and
//! concatenated after the local features (64 + 1024 channels) → segmentation MLP
//! 512-256-128-128 → 1x1 conv to the part scores (analog)`, every hidden width × `width`; each
//! conv (+BN) is followed by an activation slot: 2 + 3 + 4 = 9 slots (+5 with the T-Net).
//! Layer names: `local.mlp_convs.{i}`, `global.mlp_convs.{i}`, `seg.mlp_convs.{i}`,
//! `classifier` (and `tnet.…`).
//!
//! Left out from the paper's network: the feature transform (a 64×64 T-Net; PointNet's own
//! ablation gives it +0.3 mIoU at most) and the one-hot category vector concatenated to the
//! global feature. Without the one-hot input the network infers the category from the shape,
//! and scoring restricts each point's prediction to its category's parts (PointNet's
//! evaluation; see `datasets::part_clouds`).
//!
//! In the SNN (dense engine), the pooled global feature of a time step is that step's spike
//! outputs averaged (or its input currents maxed) over the points, broadcast to every point as
//! an analog input of the first segmentation layer, as the pooled feature feeds `pointnet`'s
//! head. The broadcast-and-concatenate has no layer-graph form.
//!
//! # Output
//!
//! `[batch, parts · points]`, part-major: the score of part `p` at point `j` is at
//! `p · points + j`.

use burn::nn::conv::Conv2d;
use burn::prelude::*;

use crate::layers::{conv, conv_bn_forward, scaled};
use crate::network::ModelError;
use crate::pointnet::{SharedMlp, TNet};
use crate::{ActivationParams, Convertible, ForwardCtx, GraphError, LayerGraph, Pooling, SlotInfo};

/// PointNet part-segmentation network (see the module documentation).
#[derive(Module, Debug)]
pub struct PointNetPartSeg {
    tnet: Option<TNet>,
    local: SharedMlp,
    global: SharedMlp,
    seg: SharedMlp,
    classifier: Conv2d,
    /// Clip/QCFS activation parameters (ReLU when `None`).
    pub(crate) act: Option<ActivationParams>,
    #[module(skip)]
    pooling: Pooling,
    #[module(skip)]
    parts: usize,
}

impl PointNetPartSeg {
    /// `input`: `[3, points, 1]`; `parts`: the global part ids scored per point (at least 2).
    pub fn new(
        input: [usize; 3],
        parts: usize,
        width: f32,
        batch_norm: bool,
        pooling: Pooling,
        tnet: bool,
        device: &Device,
    ) -> Result<Self, ModelError> {
        if parts < 2 {
            return Err(ModelError::Invalid {
                model: "pointnet-partseg".into(),
                reason: format!("needs at least 2 parts to score per point; got {parts}"),
            });
        }
        let w = |c: usize| scaled(c, width);
        let local = SharedMlp::new(input[0], &[w(64), w(64)], batch_norm, device);
        let global = SharedMlp::new(local.out_channels(), &[w(64), w(128), w(1024)], batch_norm, device);
        let seg = SharedMlp::new(
            local.out_channels() + global.out_channels(),
            &[w(512), w(256), w(128), w(128)],
            batch_norm,
            device,
        );
        let classifier = conv(seg.out_channels(), parts, 1, 1, true, device);
        Ok(Self {
            tnet: tnet.then(|| TNet::new(width, batch_norm, device)),
            local,
            global,
            seg,
            classifier,
            act: None,
            pooling,
            parts,
        })
    }

    /// Parts scored per point (the output's part planes).
    pub fn parts(&self) -> usize {
        self.parts
    }
}

impl Convertible for PointNetPartSeg {
    /// `x`: `[n, 3, points, 1]` → local features `[n, 64w, points, 1]` → global `[n, 1024w, 1,
    /// 1]`, repeated over the points and concatenated → `[n, parts, points, 1]` → flattened
    /// `[n, parts · points]` (part-major).
    fn forward_ctx(&self, x: Tensor<4>, ctx: &mut ForwardCtx) -> Tensor<2> {
        ctx.use_activation(self.act.as_ref());
        let [n, _, points, _] = x.dims();
        let (x, slot) = match &self.tnet {
            Some(t) => (t.forward(x, ctx, self.pooling), TNet::SLOTS),
            None => (x, 0),
        };
        let local = self.local.forward(x, ctx, slot, "local", None, None);
        let slot = slot + self.local.len();
        let global = self.global.forward(local.clone(), ctx, slot, "global", Some((2, self.pooling)), None);
        let slot = slot + self.global.len();
        let global = global.repeat_dim(2, points);
        let joined = Tensor::cat(vec![local, global], 1);
        let y = self.seg.forward(joined, ctx, slot, "seg", None, None);
        let y = conv_bn_forward(&self.classifier, None, y, ctx, || "classifier".into());
        y.reshape([n, self.parts * points])
    }

    fn slots(&self) -> Vec<SlotInfo> {
        let mut s = self.tnet.as_ref().map(TNet::slots).unwrap_or_default();
        let mut local = self.local.slots("local", "global.mlp_convs.0");
        if let Some(last) = local.last_mut() {
            last.consumers.push("seg.mlp_convs.0".into());
        }
        s.extend(local);
        s.extend(self.global.slots("global", "seg.mlp_convs.0"));
        s.extend(self.seg.slots("seg", "classifier"));
        s
    }

    fn fold_batchnorm(self) -> Self {
        Self {
            tnet: self.tnet.map(TNet::fold),
            local: self.local.fold(),
            global: self.global.fold(),
            seg: self.seg.fold(),
            ..self
        }
    }

    fn layer_graph(&self, _input: [usize; 3]) -> Result<LayerGraph, GraphError> {
        Err(GraphError::Unsupported {
            model: "pointnet-partseg".into(),
            reason: "the pooled global feature broadcast to every point and concatenated has no graph primitive".into(),
        })
    }
}
