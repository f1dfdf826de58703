//! PointNet (Qi et al. 2017) for point-cloud classification, and the building blocks shared
//! with PointNet++ (shared per-point MLPs, pooling over points, the FC head).
//!
//! A point-cloud batch is `[batch, 3, points, 1]`: xyz as channels, points along the height
//! axis, so per-point MLPs are 1x1 convolutions and the converter and simulator (which fold
//! time steps into the batch) need no special case.
//!
//! Pooling (`Pooling`):
//! - `avg` (default): the pooled layer's activation slot runs on every point and the slot
//!   outputs are averaged (in the SNN: spike outputs averaged over points). Lan et al. 2023
//!   replace PointNet's max pooling by average pooling for conversion.
//! - `max`: the maximum over points is taken on the pooled layer's *pre-activation*, and the
//!   slot runs on the pooled values ("pre-neuron max pooling", as for VGG). ReLU, clip and
//!   QCFS are non-decreasing, so the ANN equals max-after-activation; in the SNN the max is
//!   over the analog input currents of each time step and the neurons sit after it.
//!
//! No dropout: the zoo has none anywhere (the reference heads use dropout 0.4/0.5 in training).

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear};
use burn::prelude::*;

use crate::graph::{GraphBuilder, GraphError, LayerGraph};
use crate::layers::{
    bn, conv, conv_bn_forward_counted, fold_linear_pair, fold_pair, linear, linear_bn_forward, linear_forward, scaled,
};
use crate::{ActivationParams, Convertible, ForwardCtx, Pooling, SlotInfo, tensor_from};

/// A shared per-point MLP: 1x1 convolutions (+BN), each followed by an activation slot.
#[derive(Module, Debug)]
pub struct SharedMlp {
    mlp_convs: Vec<Conv2d>,
    /// Empty without batch norm (and after folding).
    mlp_bns: Vec<BatchNorm>,
}

impl SharedMlp {
    /// `cin` input channels, one layer per entry of `widths`.
    pub(crate) fn new(cin: usize, widths: &[usize], batch_norm: bool, device: &Device) -> Self {
        let mut mlp_convs = Vec::new();
        let mut mlp_bns = Vec::new();
        let mut c = cin;
        for &w in widths {
            mlp_convs.push(conv(c, w, 1, 1, !batch_norm, device));
            mlp_bns.extend(bn(w, batch_norm, device));
            c = w;
        }
        Self { mlp_convs, mlp_bns }
    }

    /// Number of layers (= activation slots).
    pub(crate) fn len(&self) -> usize {
        self.mlp_convs.len()
    }

    /// Output channels.
    pub(crate) fn out_channels(&self) -> usize {
        self.mlp_convs.last().map_or(0, |c| c.weight.dims()[0])
    }

    /// `x`: `[n, cin, h, w]` → `[n, cout, h, w]`, or with `pool = Some(dim)` pooled over `dim`
    /// (2 or 3) to size 1 there (see the module doc for `pooling`). Uses slots `slot0..slot0 +
    /// len`; layers are traced as `{prefix}.mlp_convs.{i}`. `first_inputs`: the input neuron
    /// count to record for the first layer when `x` was gathered (default: its size).
    pub(crate) fn forward(
        &self,
        mut x: Tensor<4>,
        ctx: &mut ForwardCtx,
        slot0: usize,
        prefix: &str,
        pool: Option<(usize, Pooling)>,
        first_inputs: Option<u64>,
    ) -> Tensor<4> {
        let last = self.len() - 1;
        for (i, conv) in self.mlp_convs.iter().enumerate() {
            let [_, c, h, w] = x.dims();
            let inputs = match (i, first_inputs) {
                (0, Some(k)) => k,
                _ => (c * h * w) as u64,
            };
            let name = || format!("{prefix}.mlp_convs.{i}");
            x = conv_bn_forward_counted(conv, self.mlp_bns.get(i), x, ctx, name, inputs);
            x = match pool {
                Some((dim, pooling)) if i == last => pool_slot(x, dim, pooling, ctx, slot0 + i),
                _ => ctx.act(slot0 + i, x),
            };
        }
        x
    }

    /// Slots `{prefix}.mlp_convs.{i}.relu`; the last one feeds `next`.
    pub(crate) fn slots(&self, prefix: &str, next: &str) -> Vec<SlotInfo> {
        (0..self.len())
            .map(|i| SlotInfo {
                name: format!("{prefix}.mlp_convs.{i}.relu"),
                consumers: vec![if i + 1 < self.len() { format!("{prefix}.mlp_convs.{}", i + 1) } else { next.into() }],
            })
            .collect()
    }

    /// The MLP's layers and slots `slot0..` in the layer graph, fed by `from`; with
    /// `pool_points`, the last slot's outputs averaged over the points (the height axis).
    fn graph(
        &self,
        g: &mut GraphBuilder,
        prefix: &str,
        slot0: usize,
        pool_points: bool,
        from: &str,
    ) -> Result<String, GraphError> {
        let mut x = from.to_string();
        for (i, conv) in self.mlp_convs.iter().enumerate() {
            x = g.conv(&format!("{prefix}.mlp_convs.{i}"), conv, self.mlp_bns.get(i), &x)?;
            x = g.slot(&format!("{prefix}.mlp_convs.{i}.relu"), slot0 + i, &[&x])?;
        }
        if pool_points {
            let points = g.output_shape(&x)[1];
            x = g.avg_pool(&format!("{prefix}.pool"), [points, 1], &x);
        }
        Ok(x)
    }

    /// Folds every BN into its conv.
    pub(crate) fn fold(self) -> Self {
        let mut bns = self.mlp_bns.into_iter();
        let mlp_convs = self.mlp_convs.into_iter().map(|c| fold_pair(c, bns.next()).0).collect();
        Self { mlp_convs, mlp_bns: Vec::new() }
    }
}

/// Activation slot `slot` fused with pooling over `dim` (to size 1): `avg` = slot then mean,
/// `max` = max then slot (pre-neuron). `x`: `[n, c, h, w]`.
fn pool_slot(x: Tensor<4>, dim: usize, pooling: Pooling, ctx: &mut ForwardCtx, slot: usize) -> Tensor<4> {
    match pooling {
        Pooling::Avg => ctx.act(slot, x).mean_dim(dim),
        Pooling::Max => ctx.act(slot, x.max_dim(dim)),
    }
}

/// Classification head `fc1(+BN) → slot → fc2(+BN) → slot → fc3` (fc3 analog).
#[derive(Module, Debug)]
pub struct Head {
    fc1: Linear,
    bn1: Option<BatchNorm>,
    fc2: Linear,
    bn2: Option<BatchNorm>,
    fc3: Linear,
}

impl Head {
    /// `cin → hidden[0] → hidden[1] → out`. With `zero_out`, fc3 starts at zero (T-Net).
    pub(crate) fn new(
        cin: usize,
        hidden: [usize; 2],
        out: usize,
        batch_norm: bool,
        zero_out: bool,
        device: &Device,
    ) -> Self {
        let mut fc3 = linear(hidden[1], out, device);
        if zero_out {
            fc3.weight = Param::from_tensor(Tensor::zeros([hidden[1], out], device));
            fc3.bias = Some(Param::from_tensor(Tensor::zeros([out], device)));
        }
        Self {
            fc1: linear(cin, hidden[0], device),
            bn1: bn(hidden[0], batch_norm, device),
            fc2: linear(hidden[0], hidden[1], device),
            bn2: bn(hidden[1], batch_norm, device),
            fc3,
        }
    }

    /// `x`: `[n, cin]` → `[n, out]`; slots `slot0`, `slot0 + 1`; traced as `{prefix}.fc{1,2,3}`.
    pub(crate) fn forward(&self, x: Tensor<2>, ctx: &mut ForwardCtx, slot0: usize, prefix: &str) -> Tensor<2> {
        let x = linear_bn_forward(&self.fc1, self.bn1.as_ref(), x, ctx, &format!("{prefix}.fc1"));
        let x = ctx.act2(slot0, x);
        let x = linear_bn_forward(&self.fc2, self.bn2.as_ref(), x, ctx, &format!("{prefix}.fc2"));
        let x = ctx.act2(slot0 + 1, x);
        linear_forward(&self.fc3, x, ctx, &format!("{prefix}.fc3"))
    }

    /// The two slots `{prefix}.fc1.relu`, `{prefix}.fc2.relu`.
    /// `fc1 → slot0 → fc2 → slot0 + 1 → fc3` in the layer graph, fed by `from` (`[features]`).
    fn graph(&self, g: &mut GraphBuilder, prefix: &str, slot0: usize, from: &str) -> Result<String, GraphError> {
        if self.bn1.is_some() || self.bn2.is_some() {
            return Err(g.unsupported(format!("`{prefix}` still has a batch norm: fold it first")));
        }
        let x = g.affine(&format!("{prefix}.fc1"), &self.fc1, from)?;
        let x = g.slot(&format!("{prefix}.fc1.relu"), slot0, &[&x])?;
        let x = g.affine(&format!("{prefix}.fc2"), &self.fc2, &x)?;
        let x = g.slot(&format!("{prefix}.fc2.relu"), slot0 + 1, &[&x])?;
        g.affine(&format!("{prefix}.fc3"), &self.fc3, &x)
    }

    pub(crate) fn slots(prefix: &str) -> Vec<SlotInfo> {
        let s = |a: &str, b: &str| SlotInfo {
            name: format!("{prefix}.{a}.relu"),
            consumers: vec![format!("{prefix}.{b}")],
        };
        vec![s("fc1", "fc2"), s("fc2", "fc3")]
    }

    /// Folds BN into fc1 and fc2.
    pub(crate) fn fold(self) -> Self {
        let (fc1, bn1) = fold_linear_pair(self.fc1, self.bn1);
        let (fc2, bn2) = fold_linear_pair(self.fc2, self.bn2);
        Self { fc1, bn1, fc2, bn2, fc3: self.fc3 }
    }
}

/// PointNet input transform network (T-Net, 3x3): shared MLP 64-128-1024 (×width), pooled
/// over points, FC 512-256 (×width) → 9, plus the identity; the cloud is multiplied by the
/// predicted matrix (`x' = x·M` per point). 5 activation slots.
///
/// The 3x3 product with the input is analog (not a spiking op). In SNN mode the transform is
/// recomputed from the T-Net's spiking features at every time step (fc3's per-step output, not
/// its running average), so early steps see a noisier matrix.
#[derive(Module, Debug)]
pub struct TNet {
    feat: SharedMlp,
    head: Head,
}

impl TNet {
    pub(crate) const SLOTS: usize = 5;

    pub(crate) fn new(width: f32, batch_norm: bool, device: &Device) -> Self {
        let widths = [64, 128, 1024].map(|c| scaled(c, width));
        Self {
            feat: SharedMlp::new(3, &widths, batch_norm, device),
            head: Head::new(widths[2], [512, 256].map(|c| scaled(c, width)), 9, batch_norm, true, device),
        }
    }

    /// `x`: `[n, 3, points, 1]` → the transformed cloud, same shape. Slots 0..5.
    pub(crate) fn forward(&self, x: Tensor<4>, ctx: &mut ForwardCtx, pooling: Pooling) -> Tensor<4> {
        let [n, _, p, _] = x.dims();
        let f = self.feat.forward(x.clone(), ctx, 0, "tnet.feat", Some((2, pooling)), None);
        let f = f.reshape([n, self.feat.out_channels()]);
        let m = self.head.forward(f, ctx, self.feat.len(), "tnet.head");
        let eye = tensor_from(vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], [1, 9], &m.device());
        let m: Tensor<3> = (m + eye).reshape([n, 3, 3]);
        ctx.record_macs(|| "tnet.transform".into(), 9 * p as u64, 3 * p as u64, 3 * p as u64);
        let pts: Tensor<3> = x.reshape([n, 3, p]).swap_dims(1, 2);
        pts.matmul(m).swap_dims(1, 2).reshape([n, 3, p, 1])
    }

    pub(crate) fn slots(&self) -> Vec<SlotInfo> {
        let mut s = self.feat.slots("tnet.feat", "tnet.head.fc1");
        s.extend(Head::slots("tnet.head"));
        s
    }

    /// Folds every BN into its conv or FC layer.
    pub(crate) fn fold(self) -> Self {
        Self { feat: self.feat.fold(), head: self.head.fold() }
    }
}

/// PointNet classification network (vanilla: no feature transform).
///
/// `[optional input T-Net] → shared MLP 64-64-64-128-1024 (1x1 conv +BN, each → slot) →
/// pool over points (avg or pre-neuron max) → fc1 512 (+BN) → slot → fc2 256 (+BN) → slot →
/// fc3 classes` (hidden widths × width, at least 1). 7 activation slots (+5 with the T-Net).
/// Layer names: `feat.mlp_convs.{i}`, `head.fc{1,2,3}` (and `tnet.…`).
#[derive(Module, Debug)]
pub struct PointNet {
    tnet: Option<TNet>,
    feat: SharedMlp,
    head: Head,
    /// Clip/QCFS activation parameters (ReLU when `None`).
    pub(crate) act: Option<ActivationParams>,
    #[module(skip)]
    pooling: Pooling,
}

impl PointNet {
    /// `input`: `[3, points, 1]`. `tnet`: add the input transform network.
    pub fn new(
        input: [usize; 3],
        classes: usize,
        width: f32,
        batch_norm: bool,
        pooling: Pooling,
        tnet: bool,
        device: &Device,
    ) -> Self {
        let widths = [64, 64, 64, 128, 1024].map(|c| scaled(c, width));
        Self {
            tnet: tnet.then(|| TNet::new(width, batch_norm, device)),
            feat: SharedMlp::new(input[0], &widths, batch_norm, device),
            head: Head::new(widths[4], [512, 256].map(|c| scaled(c, width)), classes, batch_norm, false, device),
            act: None,
            pooling,
        }
    }
}

impl Convertible for PointNet {
    /// `x`: `[n, 3, points, 1]` → (T-Net: same) → per-point features `[n, 1024w, points, 1]` →
    /// pooled `[n, 1024w]` → logits `[n, classes]`.
    fn forward_ctx(&self, x: Tensor<4>, ctx: &mut ForwardCtx) -> Tensor<2> {
        ctx.use_activation(self.act.as_ref());
        let [n, ..] = x.dims();
        let (x, slot) = match &self.tnet {
            Some(t) => (t.forward(x, ctx, self.pooling), TNet::SLOTS),
            None => (x, 0),
        };
        let x = self.feat.forward(x, ctx, slot, "feat", Some((2, self.pooling)), None);
        let x = x.reshape([n, self.feat.out_channels()]);
        self.head.forward(x, ctx, slot + self.feat.len(), "head")
    }

    fn slots(&self) -> Vec<SlotInfo> {
        let mut s = self.tnet.as_ref().map(TNet::slots).unwrap_or_default();
        s.extend(self.feat.slots("feat", "head.fc1"));
        s.extend(Head::slots("head"));
        s
    }

    /// Without the T-Net and with average pooling: the shared MLP (1x1 convolutions over the
    /// `[3, points, 1]` input), the average over points, the head. The T-Net multiplies the
    /// points by a 3×3 matrix computed from them (no fixed synaptic weights), and max pooling
    /// over points sits before the neurons: neither has a graph form.
    fn layer_graph(&self, input: [usize; 3]) -> Result<LayerGraph, GraphError> {
        let mut g = GraphBuilder::new("pointnet", input);
        if self.tnet.is_some() {
            return Err(
                g.unsupported("the T-Net's input transform (a 3×3 matrix computed from the points) has no graph form")
            );
        }
        if self.pooling == Pooling::Max {
            return Err(
                g.unsupported("max pooling over points (before the neurons) has no graph form: use pooling = \"avg\"")
            );
        }
        let x = self.feat.graph(&mut g, "feat", 0, true, "input")?;
        let x = g.flatten("flatten", &x);
        let x = self.head.graph(&mut g, "head", self.feat.len(), &x)?;
        Ok(g.finish(&x))
    }

    fn fold_batchnorm(self) -> Self {
        let tnet = self.tnet.map(TNet::fold);
        Self { tnet, feat: self.feat.fold(), head: self.head.fold(), ..self }
    }
}
