//! Layer-wise weight calibration (WC, the ImageNet "advanced" pipeline of SNN Calibration,
//! Li et al. ICML 2021), generic over every [`Convertible`] model.
//!
//! For one activation slot l of a converted network:
//! - x̄: the SNN's time-averaged outputs of the earlier slots (Σ_t s·θ / T over the
//!   calibration T, simulated with the network as calibrated so far);
//! - z(W) = the slot's pre-activation computed from x̄ (conv/linear layers between the
//!   earlier slots and slot l, with the current weights W);
//! - y = the ANN's output at slot l (its ReLU, or its clip/QCFS activation), from the
//!   *reference* model (the frozen, BN-folded original weights), computed once;
//! - the quantiser models what the slot's IF neurons output on average over T steps when
//!   their input is constant: q(z) = ClipFloor_φ(z + o; T, θ) =
//!   (θ_c/T)·floor(clamp((z + o)/θ_c, 0, φ)·T), with the per-element offset
//!   o = b_c + [input_shift] θ_c/(2T) + [v_init = half] θ_c/(2T) + v_init[c,h,w]/T
//!   (b_c the slot's bias correction, v_init its potential initialisation, both as already
//!   set on the slot; φ = `max_spikes`). With the Calibration neuron (input shift, no
//!   correction yet) this is o = θ/(2T): round-to-nearest. The floor is straight-through
//!   (forward floor, gradient 1); the clamp passes no gradient outside [0, φ]. The
//!   released code's quantiser leaves out the θ/(2T) shift its neuron adds; this one
//!   matches the simulated neuron.
//! - Loss: mean over elements of (q(z(W)) − y)² on a random batch (distinct samples) of the
//!   cached calibration samples; Adam (β = 0.9, 0.999, ε = 1e-8, no weight decay) with the
//!   learning rate annealed by a cosine over the iterations, lr_i = lr·½(1 + cos(π i / n)).
//!   (The released code sums the squared error over channels: the same up to a constant
//!   factor, which Adam ignores up to ε.)
//!
//! How it stays generic: the model is forked to an autodiff device and run with a
//! [`SlotHook`] in which every slot k < l returns its cached x̄ (a constant, so no gradient
//! reaches earlier weights), slot l returns q(z) (kept for the loss) and later slots return
//! their detached input. Only parameters named `weight` on a path from those constants (and
//! the input image) to slot l receive gradients: the conv/linear feeding the slot, or in a
//! ResNet block the second conv and the shortcut conv. Biases are not trained (the paper
//! calibrates weights; bias correction follows). The slots whose x̄ is needed are found
//! once per slot with a one-sample probe (which earlier slot outputs slot l's
//! pre-activation depends on), so only those are simulated and cached. The forked model is
//! put in training mode to make its parameters require gradients: the network must be
//! BN-folded (as every converted network is), else batch norm would use batch statistics.
//!
//! On the first slot (whose input is the constant image) q(z) is exactly the SNN's output:
//! WC can only trade rounding residuals there, and the biased straight-through gradient may
//! raise that slot's error slightly (by ~0.2 % on the tests' small CNN); the gain is on the
//! later slots, whose spiking inputs it compensates.
//!
//! Cost: every iteration runs one forward of the whole network on the batch plus a backward
//! through the calibrated layer; with n iterations and L slots, L·n forwards. The paper's
//! 5000 iterations per layer are meant for a GPU: on a CPU use a few hundred.

use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::relu;
use snn::{NeuronLayerSpec, SpikingNetwork, simulate_recording};
use zoo::{Convertible, ForwardCtx, Network, SlotHook, tensor_from, tensor_values};

/// Weight-calibration settings (defaults: the paper's ImageNet values).
#[derive(Clone, Debug, PartialEq)]
pub struct WeightCalibration {
    /// Adam iterations per slot (paper: 5000).
    pub iterations: usize,
    /// Initial learning rate of the cosine schedule (paper: 1e-5).
    pub lr: f64,
    /// Samples per iteration (paper: 32).
    pub batch: usize,
    /// Seed of the batch sampling.
    pub seed: u64,
}

impl Default for WeightCalibration {
    fn default() -> Self {
        Self { iterations: 5000, lr: 1e-5, batch: 32, seed: 0 }
    }
}

/// What the weight calibration of one slot did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlotWeightReport {
    /// The slot.
    pub slot: usize,
    /// Earlier slots whose time-averaged SNN output feeds the slot's pre-activation.
    pub inputs: Vec<usize>,
    /// Module paths of the weights that were optimised (e.g. `SmallCnn.conv2.weight`).
    pub weights: Vec<String>,
    /// Mean squared error between q(z) and the ANN output over all cached samples, before
    /// and after the optimisation.
    pub mse_before: f64,
    /// See `mse_before`.
    pub mse_after: f64,
    /// Wall-clock seconds of the optimisation loop alone.
    pub loop_seconds: f64,
}

/// The straight-through ClipFloor quantiser of one slot (see the module docs):
/// q(z) = (θ_c/T)·floor(clamp((z + o)/θ_c, 0, φ)·T), floor straight-through.
#[derive(Clone, Debug)]
pub struct SteClipFloor {
    /// θ per element, `[1, C, H, W]`.
    theta: Tensor<4>,
    /// θ/T per element, `[1, C, H, W]`.
    step: Tensor<4>,
    /// o per element, `[1, C, H, W]`.
    offset: Tensor<4>,
    timesteps: f32,
    phi: f32,
}

impl SteClipFloor {
    /// The quantiser of a slot with neurons `spec`, output shape `[C, H, W]` per sample,
    /// calibrated for `timesteps` steps.
    pub fn for_slot(spec: &NeuronLayerSpec, shape: [usize; 3], timesteps: usize, device: &Device) -> Self {
        let [c, h, w] = shape;
        let inner = h * w;
        let t = timesteps.max(1) as f32;
        // The neuron's own rate model: o = b_c + [shift] θ/(2T) + v(0)/T (+ per element).
        let rate = spec.neuron.rate_model();
        let (mut theta, mut step, mut offset) = (Vec::new(), Vec::new(), Vec::new());
        for e in 0..c * inner {
            let th = spec.threshold(e / inner);
            let o = spec.rate_offset(e, inner, timesteps);
            theta.push(th);
            step.push(th / t);
            offset.push(o);
        }
        let dims = [1, c, h, w];
        Self {
            theta: tensor_from(theta, dims, device),
            step: tensor_from(step, dims, device),
            offset: tensor_from(offset, dims, device),
            timesteps: t,
            phi: rate.max_spikes_per_step.max(1) as f32,
        }
    }

    /// q(z) for pre-activations `z` `[N, C, H, W]`. Forward: equal elementwise to
    /// [`crate::calibrate::clip_floor`]`(z + o, T, θ, φ)`; backward: ∂q/∂z = 1 where
    /// 0 < (z + o)/θ < φ, else 0.
    pub fn apply(&self, z: Tensor<4>) -> Tensor<4> {
        let [n, ..] = z.dims();
        let expand = |t: &Tensor<4>| t.clone().repeat_dim(0, n);
        let u = (z + expand(&self.offset)).div(expand(&self.theta)).clamp(0.0, self.phi).mul_scalar(self.timesteps);
        let floored = u.clone() + (u.clone().floor() - u).detach();
        floored.mul(expand(&self.step))
    }
}

/// The hook of the weight-calibration forward passes for `slot` (see the module docs).
struct WcHook {
    slot: usize,
    /// Probe mode: every earlier slot returns a fresh leaf that requires gradients.
    probe: bool,
    /// Train/eval mode: the constant returned by each earlier slot (None: not needed by the
    /// slot, its detached ReLU is returned).
    inputs: Vec<Option<Tensor<4>>>,
    /// Probe leaves per earlier slot.
    leaves: Vec<Option<Tensor<4>>>,
    quantiser: Option<SteClipFloor>,
    /// The slot's output (pre-activation in probe mode, q(z) otherwise).
    stash: Option<Tensor<4>>,
}

impl WcHook {
    fn new(slot: usize, probe: bool) -> Self {
        Self { slot, probe, inputs: vec![None; slot], leaves: vec![None; slot], quantiser: None, stash: None }
    }
}

impl SlotHook for WcHook {
    fn apply(&mut self, k: usize, x: Tensor<4>) -> Tensor<4> {
        use std::cmp::Ordering;
        match k.cmp(&self.slot) {
            Ordering::Less if self.probe => {
                let leaf = relu(x).detach().require_grad();
                self.leaves[k] = Some(leaf.clone());
                leaf
            }
            Ordering::Less => match self.inputs.get(k).cloned().flatten() {
                Some(t) => t,
                None => relu(x).detach(),
            },
            Ordering::Equal => {
                let out = self.quantiser.as_ref().map_or_else(|| x.clone(), |q| q.apply(x.clone()));
                self.stash = Some(out);
                relu(x).detach()
            }
            Ordering::Greater => x.detach(),
        }
    }
}

/// Collects the ids and module paths of the parameters named `weight` (with a gradient in
/// `grads`, when given).
struct WeightParams<'a> {
    grads: Option<&'a burn::tensor::Gradients>,
    path: Vec<String>,
    found: Vec<(ParamId, String)>,
}

impl ModuleVisitor for WeightParams<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let named = self.path.last().is_some_and(|n| n == "weight");
        if named && self.grads.is_none_or(|g| param.val().grad(g).is_some()) {
            self.found.push((param.id, self.path.join(".")));
        }
    }
}

/// Ids and module paths (e.g. `SmallCnn.conv2.weight`) of the parameters named `weight` in
/// `model`; with `grads`, only those that have a gradient there.
pub fn weight_params(model: &Network, grads: Option<&burn::tensor::Gradients>) -> Vec<(ParamId, String)> {
    let mut v = WeightParams { grads, path: Vec::new(), found: Vec::new() };
    model.visit(&mut v);
    v.found
}

/// SplitMix64: the batch sampler's random numbers.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `k` distinct indices of `0..n` (a partial Fisher–Yates shuffle).
    fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        let k = k.min(n);
        for i in 0..k {
            let j = i + (self.next() % (n - i) as u64) as usize;
            idx.swap(i, j);
        }
        idx.truncate(k);
        idx
    }
}

/// Rows `idx` of a `[N, ...]` tensor.
fn rows(t: &Tensor<4>, idx: &[usize], device: &Device) -> Tensor<4> {
    let ids: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
    t.clone().select(0, Tensor::<1, Int>::from_data(burn::tensor::TensorData::new(ids, [idx.len()]), device))
}

/// Consecutive batches of at most `batch` samples of `images`.
fn batches(images: &Tensor<4>, batch: usize) -> Vec<Tensor<4>> {
    let [n, c, h, w] = images.dims();
    (0..n).step_by(batch.max(1)).map(|s| images.clone().slice([s..(s + batch).min(n), 0..c, 0..h, 0..w])).collect()
}

/// Weight calibration of slot `slot` of `net` on `images` (`[N, C, H, W]`, the cached
/// calibration samples), targets from `reference` (the BN-folded original ANN), quantiser
/// for `timesteps`. Replaces `net.model` by the calibrated model (on the device of
/// `images`); every parameter other than the weights listed in the report is left
/// bit-identical. A slot that no weight feeds, or that the forward pass never reaches, is
/// left unchanged.
pub fn calibrate_slot_weights(
    net: &mut SpikingNetwork,
    reference: &Network,
    images: &Tensor<4>,
    slot: usize,
    timesteps: usize,
    settings: &WeightCalibration,
) -> SlotWeightReport {
    let mut report = SlotWeightReport { slot, ..SlotWeightReport::default() };
    let [n, ..] = images.dims();
    if n == 0 || slot >= net.layers.len() {
        return report;
    }
    let device = images.device();
    let ad = device.clone().autodiff();
    let mut model = net.model.clone().fork(&ad).train();
    // Probe on one sample: which earlier slots and which weights feed the slot.
    let probe_x = images.clone().narrow(0, 0, 1).to_device(&ad);
    let mut hook = WcHook::new(slot, true);
    let _ = model.forward_ctx(probe_x, &mut ForwardCtx::with_hook(&mut hook));
    let Some(pre) = hook.stash.take() else { return report };
    let [_, c, h, w] = pre.dims();
    let grads = pre.sum().backward();
    report.inputs = hook
        .leaves
        .iter()
        .enumerate()
        .filter_map(|(k, leaf)| leaf.as_ref().and_then(|l| l.grad(&grads)).map(|_| k))
        .collect();
    let shapes: Vec<Option<[usize; 3]>> =
        hook.leaves.iter().map(|l| l.as_ref().map(|l| [l.dims()[1], l.dims()[2], l.dims()[3]])).collect();
    let fed = weight_params(&model, Some(&grads));
    let trained: Vec<ParamId> = fed.iter().map(|(id, _)| *id).collect();
    report.weights = fed.into_iter().map(|(_, p)| p).collect();
    if trained.is_empty() {
        return report;
    }

    // Cache x̄ of the needed earlier slots and the ANN targets on all samples.
    let sim_batch = settings.batch.max(1);
    let chunk = (256 / sim_batch).clamp(1, timesteps.max(1));
    let mut means: Vec<Vec<f32>> = vec![Vec::new(); slot];
    let mut targets: Vec<f32> = Vec::with_capacity(n * c * h * w);
    for b in batches(images, sim_batch) {
        let [bn, ..] = b.dims();
        if !report.inputs.is_empty() {
            let (_, rec) = simulate_recording(net, b.clone(), &vec![0; bn], timesteps, chunk, &report.inputs);
            for &k in &report.inputs {
                means[k].extend_from_slice(&rec[k]);
            }
        }
        let mut ctx = ForwardCtx::recording();
        let _ = reference.forward_ctx(b, &mut ctx);
        targets.extend(tensor_values(ctx.take_recorded().swap_remove(slot)));
    }
    let cached: Vec<Option<Tensor<4>>> = means
        .into_iter()
        .zip(&shapes)
        .map(|(m, s)| match (m.is_empty(), s) {
            (false, Some([ck, hk, wk])) => Some(tensor_from(m, [n, *ck, *hk, *wk], &ad)),
            _ => None,
        })
        .collect();
    let targets = tensor_from(targets, [n, c, h, w], &ad);
    let images_ad = images.clone().to_device(&ad);
    let quantiser = SteClipFloor::for_slot(&net.layers[slot], [c, h, w], timesteps, &ad);

    let forward = |model: &Network, idx: &[usize]| -> Option<(Tensor<4>, Tensor<4>)> {
        let mut hook = WcHook::new(slot, false);
        hook.inputs = cached.iter().map(|t| t.as_ref().map(|t| rows(t, idx, &ad))).collect();
        hook.quantiser = Some(quantiser.clone());
        let _ = model.forward_ctx(rows(&images_ad, idx, &ad), &mut ForwardCtx::with_hook(&mut hook));
        hook.stash.map(|q| (q, rows(&targets, idx, &ad)))
    };
    let full_mse = |model: &Network| -> f64 {
        let mut sum = 0.0f64;
        for start in (0..n).step_by(sim_batch) {
            let idx: Vec<usize> = (start..(start + sim_batch).min(n)).collect();
            if let Some((q, y)) = forward(model, &idx) {
                sum += tensor_values((q - y).powi_scalar(2).sum().detach())[0] as f64;
            }
        }
        sum / (n * c * h * w) as f64
    };

    report.mse_before = full_mse(&model);
    let start = Instant::now();
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let mut rng = SplitMix(settings.seed ^ (slot as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let iters = settings.iterations;
    for it in 0..iters {
        let lr = 0.5 * settings.lr * (1.0 + (std::f64::consts::PI * it as f64 / iters as f64).cos());
        let idx = rng.sample(n, sim_batch);
        let Some((q, y)) = forward(&model, &idx) else { break };
        let loss = (q - y).powi_scalar(2).mean();
        let grads = GradientsParams::from_params(&mut loss.backward(), &model, &trained);
        model = optim.step(lr, model, grads);
    }
    report.loop_seconds = start.elapsed().as_secs_f64();
    report.mse_after = full_mse(&model);
    net.model = model.valid().to_device(&device);
    report
}
