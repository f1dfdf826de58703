//! PointNet++ (Qi et al. 2017) single-scale-grouping (SSG) classification network.

use burn::prelude::*;

use crate::geometry::{BatchGeometry, GroupingConfig};
use crate::layers::scaled;
use crate::pointnet::{Head, SharedMlp};
use crate::{ActivationParams, Convertible, ForwardCtx, Pooling, SlotInfo};

/// PointNet++ SSG for classification.
///
/// - `sa1`: farthest point sampling of `centroids[0]` (paper: 512) points, ball query of
///   radius `radius[0]` (0.2) with `neighbours[0]` (32) neighbours; grouped input = relative
///   xyz (neighbour − centroid), 3 channels; shared MLP 64-64-128; pool over each group.
/// - `sa2`: `centroids[1]` (128) of the sa1 centroids, radius 0.4, 64 neighbours; grouped
///   input = relative xyz ++ sa1 features (3 + 128 channels); MLP 128-128-256; pool.
/// - `sa3` (global): absolute xyz of the sa2 centroids ++ sa2 features (3 + 256) as one
///   group; MLP 256-512-1024; pool over all of them.
/// - head: fc1 512 (+BN) → slot → fc2 256 (+BN) → slot → fc3 classes (analog).
///
/// Hidden widths × width (at least 1). Every conv is 1x1 (+BN) followed by an activation
/// slot: 11 slots. Pooling is avg (slot then mean) or pre-neuron max (see `pointnet`); with
/// avg, the ball query's padding repeats count in the mean. Sampling and grouping depend on
/// the input coordinates only (analog geometry, computed on the CPU once per distinct sample
/// of the batch, so all time steps of a sample share it; see `geometry`). No dropout.
///
/// Traced layer names: `sa{1,2,3}.mlp_convs.{i}`, `head.fc{1,2,3}`. The first conv of sa1/sa2
/// reads gathered inputs; its input-neuron count is that of the source (3·points for sa1,
/// (3 + 128w)·centroids[0] for sa2), so MACs / inputs is the fan-out of a source neuron.
#[derive(Module, Debug)]
pub struct PointNet2 {
    sa1: SharedMlp,
    sa2: SharedMlp,
    sa3: SharedMlp,
    head: Head,
    /// Clip/QCFS activation parameters (ReLU when `None`).
    pub(crate) act: Option<ActivationParams>,
    #[module(skip)]
    pooling: Pooling,
    #[module(skip)]
    grouping: Vec<GroupingConfig>,
}

impl PointNet2 {
    /// `input`: `[3, points, 1]`; `grouping`: the two sampled levels (centroids must not
    /// exceed the points of the level before; checked by `build_model`).
    pub fn new(
        input: [usize; 3],
        classes: usize,
        width: f32,
        batch_norm: bool,
        pooling: Pooling,
        grouping: [GroupingConfig; 2],
        device: &Device,
    ) -> Self {
        let w = |cs: [usize; 3]| cs.map(|c| scaled(c, width));
        let (m1, m2, m3) = (w([64, 64, 128]), w([128, 128, 256]), w([256, 512, 1024]));
        Self {
            sa1: SharedMlp::new(input[0], &m1, batch_norm, device),
            sa2: SharedMlp::new(3 + m1[2], &m2, batch_norm, device),
            sa3: SharedMlp::new(3 + m2[2], &m3, batch_norm, device),
            head: Head::new(m3[2], [512, 256].map(|c| scaled(c, width)), classes, batch_norm, false, device),
            act: None,
            pooling,
            grouping: grouping.to_vec(),
        }
    }
}

impl Convertible for PointNet2 {
    /// `x`: `[n, 3, P, 1]` → grouped `[n, 3, S1, K1]` → sa1 `[n, 128w, S1, 1]` → grouped
    /// `[n, 3 + 128w, S2, K2]` → sa2 `[n, 256w, S2, 1]` → `[n, 3 + 256w, 1, S2]` → sa3
    /// `[n, 1024w, 1, 1]` → logits `[n, classes]`.
    fn forward_ctx(&self, x: Tensor<4>, ctx: &mut ForwardCtx) -> Tensor<2> {
        ctx.use_activation(self.act.as_ref());
        let device = x.device();
        let [n, _, p, _] = x.dims();
        let geo = BatchGeometry::new(x, &self.grouping);
        let pool = Some((3, self.pooling));
        let s1 = self.grouping[0].centroids;
        let s2 = self.grouping[1].centroids;
        let mut slot = 0;
        let g = geo.group(0, None, &device);
        let f = self.sa1.forward(g, ctx, slot, "sa1", pool, Some(3 * p as u64));
        slot += self.sa1.len();
        let c1 = self.sa1.out_channels();
        let g = geo.group(1, Some(f), &device);
        let f = self.sa2.forward(g, ctx, slot, "sa2", pool, Some(((3 + c1) * s1) as u64));
        slot += self.sa2.len();
        let c2 = self.sa2.out_channels();
        let g = Tensor::cat(vec![geo.last_xyz(&device), f.reshape([n, c2, 1, s2])], 1);
        let f = self.sa3.forward(g, ctx, slot, "sa3", pool, None);
        slot += self.sa3.len();
        self.head.forward(f.reshape([n, self.sa3.out_channels()]), ctx, slot, "head")
    }

    fn slots(&self) -> Vec<SlotInfo> {
        let mut s = self.sa1.slots("sa1", "sa2.mlp_convs.0");
        s.extend(self.sa2.slots("sa2", "sa3.mlp_convs.0"));
        s.extend(self.sa3.slots("sa3", "head.fc1"));
        s.extend(Head::slots("head"));
        s
    }

    fn fold_batchnorm(self) -> Self {
        Self { sa1: self.sa1.fold(), sa2: self.sa2.fold(), sa3: self.sa3.fold(), head: self.head.fold(), ..self }
    }
}
