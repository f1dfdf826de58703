//! `msat`: the multi-stage adaptive threshold neuron with spike confidence of MSAT ("MSAT:
//! Multi-stage adaptive threshold for Deep Spiking Neural Networks", paper 003; code:
//! `Brain-Cog-Lab/MSAT`, class `SNode` of `utils.py`).
//!
//! Per element (λ = the element's threshold in the layer spec, per channel when given per
//! channel), at every step t = 1..T of the layer (counted over the whole run, across
//! simulation chunks), soft reset, v(0) = 0 plus any per-element initial potential:
//! ```text
//! x'   = x(t) + b_c                                          (b_c: per-channel bias correction)
//! v_p  = v(t−1)                                              (post-reset potential of the last step)
//! V̄    = (1/(t−1))·Σ_{k<t} v(k)                              (mean post-reset potential so far)
//! DTT  = τ_mp·[α(v_p − V̄) + V_T + k_a·ln(1 + exp((v_p − V̄)/k_i))],   V_T = −λ   (Eq. 16)
//! DET  = τ_rd·exp(−x'/C)                                     (Eq. 17; x' = v̂(t) − v(t−1))
//! θ(t) = λ·sigmoid([dtt] DTT + [det] DET)    for t ≥ 2;   θ(1) = λ
//! θ(t) = fixed_fraction·λ                   with dtt = det = false (every step)
//! units = "layer-max": v_p, V̄ and x' multiplied by m/λ and V_T = −m in DTT and DET, m =
//!   `rescaled_max` (1: the formula on the weight-normalised network of the paper's Sec. 3;
//!   any m: the code's formula on the network rescaled layer by layer so that every λ = m, a
//!   rescaling that leaves the ReLU network's function unchanged); default "raw", the code's
//! v̂    = v(t−1) + x'
//! s    = clamp(floor(v̂/θ), 0, γ)                             (γ = `max_spikes`, 1)
//! s̃    = m·s for t ≤ confidence_steps, m ~ Bernoulli(confidence) per element and step; else s
//! v(t) = v̂ − s̃·θ  (confidence_reset = "masked", Eq. 18)  |  v̂ − s·θ  ("unmasked", the code)
//! out  = s̃·θ
//! ```
//!
//! Choices where the paper is silent, settled from the authors' `SNode.forward` (`utils.py`):
//! - **V̄** is per element: the running mean of the post-reset potentials of the steps so far
//!   (`summem / t` after each step), so at step t it includes v_p = v(t−1) itself (at t = 2,
//!   v_p = V̄ and the DTT's argument is 0).
//! - **First step**: θ(1) = λ; the DTT and DET start at t = 2 (the code sets the threshold to
//!   the layer's maximum at its step 0 and computes the adaptation only afterwards;
//!   ALGORITHMS.md: "θ = λ at t = 0"). `adaptive_first_step = true` instead applies the
//!   adaptation at t = 1 too, with v_p = v(0) and V̄ = 0 (Algorithm 1 of the paper loops the
//!   adaptation over every t = 1..T; the code's initial `last_mem` and `Vm` are 0).
//! - **λ**: the code has one λ per layer (the percentile of the whole layer); with
//!   per-channel thresholds each element uses its channel's λ in V_T = −λ and in λ·sigmoid.
//! - **Order within a step**: integrate, threshold from (v_p, V̄, x'), spike, reset, mask,
//!   output, then update V̄ with the new post-reset potential.
//! - **DET's input**: the rate of depolarisation v̂(t) − v(t−1) of Eq. 17, i.e. the step's
//!   whole input x' (bias correction included; the code's `x` is the conv output with its
//!   bias).
//! - **Both terms off**: the code then uses its `VthHand`·λ threshold at every step (its
//!   "fixed 0.7λ" ablation is `VthHand = 0.7`); here `fixed_fraction`·λ (default 1.0).
//! - **Hyperparameters** (`preset`, the paper's Table 1; explicit parameters override it):
//!   `vgg16` α = 0.03, k_a = 1, k_i = 1, C = 5, τ_mp = 1, τ_rd = 1 (the code's
//!   `CIFAR10/result_conversion_vgg16/parameters_group1/hyperparameters.txt` holds the same);
//!   `resnet20` α = 0.3, k_a = 1, k_i = 1, C = 5, τ_mp = 0.5, τ_rd = 0.5. The repository's
//!   only ResNet-20 file (`CIFAR10/result_conversion_resnet20/parameters_group2/
//!   hyperparameters.txt`) holds τ_mp = 0.2, τ_rd = 0.1 (one of the paper's "four groups";
//!   the group-1 file its best runs read is not in the repository): `preset = "resnet20"`,
//!   `tau_mp = 0.2`, `tau_rd = 0.1` reproduces it.
//! - **τ_rd** appears once: Eq. 15 multiplies the DET of Eq. 17 by τ_rd although Eq. 17
//!   already holds it; the code (and ALGORITHMS.md) use τ_rd once. The literal product of
//!   Eqs. 15 and 17 is `tau_rd` = τ_rd².
//!
//! **Spike confidence** (SC, Sec. 4.3): during the layer's first `confidence_steps` steps
//! (16; the code's `t < 16` with t from 0) each element's spikes of a step are kept with
//! probability `confidence` (one Bernoulli draw per spiking element and step, from the
//! layer's seeded [`SimRng`] stream, so runs are reproducible; with γ > 1 the whole count of
//! the step is kept or dropped, as the code's mask). Default 1.0: off. The paper (Eq. 18)
//! resets the membrane by the *masked* spike (a dropped spike leaves its charge);
//! `confidence_reset = "unmasked"` is the code's order (reset first, then mask: a dropped
//! spike's charge is lost). The paper's Algorithm 1 draws `c^l ← Bernoulli(C[l])` per layer and
//! step while Eq. 18 indexes the draw per neuron; the code (and this neuron) draws per
//! element.
//!
//! **Diagnostic** `threshold_factor`: per step, each sample's mean over the layer of θ/λ
//! (results rows `threshold_factor_mean`/`_min`/`_max`).
//!
//! Rate model (for calibrations): the IF rate with γ spikes per step at threshold λ; the
//! adaptive threshold, `fixed_fraction` and spike confidence are ignored there.
//!
//! Spec: `[method.neuron] kind = "msat"`, `preset = "vgg16"|"resnet20"`, `dtt`, `det`
//! (true), `fixed_fraction` (1.0), `alpha`, `k_a`, `k_i`, `c`, `tau_mp`, `tau_rd` (from the
//! preset), `max_spikes` (1), `confidence` (1.0), `confidence_steps` (16),
//! `confidence_reset = "masked"|"unmasked"`, `adaptive_first_step` (false), `units =
//! "raw"|"layer-max"`, `rescaled_max` (1.0, with layer-max units).

use serde::{Deserialize, Serialize};

use super::integrate_and_fire::IntegrateAndFire;
use super::{
    Diagnostic, LayerShape, NeuronLayerSpec, NeuronModel, NeuronState, RateModel, RegisteredNeuron, RunInfo, SimRng,
    channel_offsets, config_table, initial_membrane,
};
use crate::stats::SampleStats;

/// The paper's hyperparameter sets (Table 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MsatPreset {
    /// α = 0.03, k_a = 1, k_i = 1, C = 5, τ_mp = 1, τ_rd = 1.
    #[default]
    Vgg16,
    /// α = 0.3, k_a = 1, k_i = 1, C = 5, τ_mp = 0.5, τ_rd = 0.5.
    Resnet20,
}

/// The six constants of the adaptive threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MsatConstants {
    /// α: slope of the DTT left of its knee.
    pub alpha: f32,
    /// k_a: weight of the DTT's softplus.
    pub k_a: f32,
    /// k_i: scale of the DTT's softplus.
    pub k_i: f32,
    /// C: scale of the input in the DET.
    pub c: f32,
    /// τ_mp: weight of the DTT.
    pub tau_mp: f32,
    /// τ_rd: weight of the DET.
    pub tau_rd: f32,
}

impl MsatPreset {
    /// The preset's constants.
    pub fn constants(self) -> MsatConstants {
        match self {
            MsatPreset::Vgg16 => MsatConstants { alpha: 0.03, k_a: 1.0, k_i: 1.0, c: 5.0, tau_mp: 1.0, tau_rd: 1.0 },
            MsatPreset::Resnet20 => MsatConstants { alpha: 0.3, k_a: 1.0, k_i: 1.0, c: 5.0, tau_mp: 0.5, tau_rd: 0.5 },
        }
    }
}

/// In which units the DTT and DET see the membrane and the input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MsatUnits {
    /// The network's own units, V_T = −λ (the authors' code): the sigmoid's argument, and so
    /// θ/λ, depend on the scale of the layer's activations.
    #[default]
    Raw,
    /// Units of λ/m (m = `rescaled_max`, 1 by default), V_T = −m: the formula applied to the
    /// network rescaled layer by layer so that each layer's λ is m. With m = 1 that is the
    /// weight-normalised network the paper's Sec. 3 describes (activations in [0, 1],
    /// V_th = 1), which it calls equivalent to threshold balancing. θ/λ then does not depend
    /// on the activations' scale.
    LayerMax,
}

/// Which spike resets the membrane while spike confidence masks spikes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfidenceReset {
    /// The masked spike (Eq. 18): a dropped spike keeps its charge in the membrane.
    #[default]
    Masked,
    /// The unmasked spike (the authors' code): a dropped spike's charge is lost.
    Unmasked,
}

fn yes() -> bool {
    true
}
fn one() -> f32 {
    1.0
}
fn one_spike() -> u32 {
    1
}
fn sixteen() -> u32 {
    16
}

/// The MSAT neuron's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Msat {
    /// The hyperparameter set the constants default to.
    #[serde(default)]
    pub preset: MsatPreset,
    /// Dynamic tracking threshold on.
    #[serde(default = "yes")]
    pub dtt: bool,
    /// Dynamic evoked threshold on.
    #[serde(default = "yes")]
    pub det: bool,
    /// θ/λ when both terms are off (1.0; the paper's fixed-threshold ablation: 0.7).
    #[serde(default = "one")]
    pub fixed_fraction: f32,
    /// α (default: the preset's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f32>,
    /// k_a (default: the preset's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_a: Option<f32>,
    /// k_i > 0 (default: the preset's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_i: Option<f32>,
    /// C > 0 (default: the preset's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c: Option<f32>,
    /// τ_mp (default: the preset's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau_mp: Option<f32>,
    /// τ_rd (default: the preset's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tau_rd: Option<f32>,
    /// γ: spikes per step at most (1).
    #[serde(default = "one_spike")]
    pub max_spikes: u32,
    /// Spike confidence: keep probability of a spike in the first `confidence_steps` steps
    /// (1.0 = off).
    #[serde(default = "one")]
    pub confidence: f32,
    /// Steps from the start during which spike confidence applies (16).
    #[serde(default = "sixteen")]
    pub confidence_steps: u32,
    /// Which spike resets the membrane under spike confidence.
    #[serde(default)]
    pub confidence_reset: ConfidenceReset,
    /// Adapt the threshold at t = 1 too (v_p = v(0), V̄ = 0) instead of θ(1) = λ.
    #[serde(default)]
    pub adaptive_first_step: bool,
    /// The units of the DTT and DET (`raw`, the code; `layer-max`, the normalised network).
    #[serde(default, skip_serializing_if = "is_raw")]
    pub units: MsatUnits,
    /// With `units = "layer-max"`: the λ every layer is rescaled to (1.0).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub rescaled_max: f32,
}

fn is_one(value: &f32) -> bool {
    *value == 1.0
}

fn is_raw(units: &MsatUnits) -> bool {
    *units == MsatUnits::Raw
}

impl Default for Msat {
    fn default() -> Self {
        toml::from_str("").expect("every field has a default")
    }
}

impl Msat {
    /// The default neuron with `preset`'s constants.
    pub fn with_preset(preset: MsatPreset) -> Self {
        Self { preset, ..Self::default() }
    }

    /// The constants in use: the preset's, each replaced by an explicit parameter.
    pub fn constants(&self) -> MsatConstants {
        let p = self.preset.constants();
        MsatConstants {
            alpha: self.alpha.unwrap_or(p.alpha),
            k_a: self.k_a.unwrap_or(p.k_a),
            k_i: self.k_i.unwrap_or(p.k_i),
            c: self.c.unwrap_or(p.c),
            tau_mp: self.tau_mp.unwrap_or(p.tau_mp),
            tau_rd: self.tau_rd.unwrap_or(p.tau_rd),
        }
    }

    /// θ/λ for a neuron of base threshold `lambda` whose last post-reset potential is
    /// `v_prev`, whose mean post-reset potential so far is `v_mean`, receiving `input` at step
    /// `t` (1-based): the equations of the module documentation.
    pub fn threshold_factor(&self, k: &MsatConstants, lambda: f32, v_prev: f32, v_mean: f32, input: f32, t: usize) -> f32 {
        if !self.dtt && !self.det {
            return self.fixed_fraction;
        }
        if t <= 1 && !self.adaptive_first_step {
            return 1.0;
        }
        // Raw: V_T = −λ on the network's values; layer-max: values times m/λ, V_T = −m.
        let m = self.rescaled_max;
        let (scale, v_t) = match self.units {
            MsatUnits::Raw => (1.0, -lambda),
            MsatUnits::LayerMax if lambda > 0.0 => (m / lambda, -m),
            MsatUnits::LayerMax => (1.0, -m),
        };
        let mut u = 0.0;
        if self.dtt {
            let d = (v_prev - v_mean) * scale;
            u += k.tau_mp * (k.alpha * d + v_t + k.k_a * softplus(d / k.k_i));
        }
        if self.det {
            u += k.tau_rd * (-input * scale / k.c).exp();
        }
        sigmoid(u)
    }
}

/// ln(1 + eˣ), without overflow.
fn softplus(x: f32) -> f32 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl RegisteredNeuron for Msat {
    const KIND: &'static str = "msat";
    const DESCRIPTION: &'static str = "multi-stage adaptive threshold λ·sigmoid(DTT + DET) with spike confidence in the first steps (He et al. 2023, MSAT)";
    fn check(&self) -> Result<(), String> {
        let k = self.constants();
        let finite = [k.alpha, k.k_a, k.tau_mp, k.tau_rd];
        if finite.iter().any(|v| !v.is_finite()) {
            return Err(format!("alpha, k_a, tau_mp and tau_rd must be finite, got {k:?}"));
        }
        if !(k.c > 0.0 && k.c.is_finite()) {
            return Err(format!("c must be positive, got {}", k.c));
        }
        if !(k.k_i > 0.0 && k.k_i.is_finite()) {
            return Err(format!("k_i must be positive, got {}", k.k_i));
        }
        if !(self.fixed_fraction > 0.0 && self.fixed_fraction.is_finite()) {
            return Err(format!("fixed_fraction must be positive, got {}", self.fixed_fraction));
        }
        if self.fixed_fraction != 1.0 && (self.dtt || self.det) {
            return Err("fixed_fraction applies only with dtt = false and det = false".into());
        }
        if !(0.0..=1.0).contains(&self.confidence) {
            return Err(format!("confidence must be in [0, 1], got {}", self.confidence));
        }
        if self.max_spikes == 0 {
            return Err("max_spikes must be at least 1".into());
        }
        if !(self.rescaled_max > 0.0 && self.rescaled_max.is_finite()) {
            return Err(format!("rescaled_max must be positive, got {}", self.rescaled_max));
        }
        if self.rescaled_max != 1.0 && self.units != MsatUnits::LayerMax {
            return Err("rescaled_max applies only with units = \"layer-max\"".into());
        }
        Ok(())
    }
}

impl NeuronModel for Msat {
    fn kind(&self) -> &'static str {
        Self::KIND
    }
    fn config(&self) -> toml::Table {
        config_table(Self::KIND, self)
    }
    fn new_state(&self, layer: &NeuronLayerSpec, shape: LayerShape, run: RunInfo) -> Box<dyn NeuronState> {
        let membrane = initial_membrane(layer, shape, 0.0);
        Box::new(MsatState {
            p: *self,
            k: self.constants(),
            post_sum: vec![0.0; membrane.len()],
            membrane,
            shape,
            channel: channel_offsets(layer, shape, run, false),
            rng: SimRng::new(run.seed),
            factor: Vec::new(),
        })
    }
    fn rate_model(&self) -> RateModel {
        IntegrateAndFire::default().rate_model_with(self.max_spikes)
    }
    fn plain_if(&self) -> Result<super::PlainIf, String> {
        Err("NIR 1.0 has no multi-stage adaptive threshold (thresholds that change with time and membrane slope)".into())
    }
}

struct MsatState {
    p: Msat,
    k: MsatConstants,
    /// Membrane potentials, `[batch, channels, inner]`.
    membrane: Vec<f32>,
    /// Σ of the post-reset potentials of the steps so far, per element.
    post_sum: Vec<f32>,
    shape: LayerShape,
    /// Per channel: (λ, b_c).
    channel: Vec<(f32, f32)>,
    rng: SimRng,
    /// Per step so far: mean θ/λ of each sample.
    factor: Vec<SampleStats>,
}

impl NeuronState for MsatState {
    fn run(&mut self, data: &mut [f32], spikes: &mut Vec<u32>) {
        let n = self.membrane.len();
        assert!(
            n > 0 && data.len().is_multiple_of(n),
            "neuron input size {} is not a multiple of the layer size {n}",
            data.len()
        );
        let (inner, per_sample) = (self.shape.inner, self.shape.per_sample());
        let (p, k) = (self.p, self.k);
        let gamma = p.max_spikes.max(1) as f32;
        let masked_reset = p.confidence_reset == ConfidenceReset::Masked;
        for step in data.chunks_mut(n) {
            let t = self.factor.len() + 1;
            let mean_scale = if t > 1 { 1.0 / (t - 1) as f32 } else { 0.0 };
            let confident = p.confidence < 1.0 && t <= p.confidence_steps as usize;
            let mut stats = SampleStats::default();
            let samples = step.chunks_mut(per_sample).zip(self.membrane.chunks_mut(per_sample)).zip(self.post_sum.chunks_mut(per_sample));
            for ((xs, vs), sums) in samples {
                let mut count = 0u32;
                let mut factor_sum = 0.0f32;
                let channels = xs.chunks_mut(inner).zip(vs.chunks_mut(inner)).zip(sums.chunks_mut(inner)).zip(&self.channel);
                for (((xc, vc), sc), &(lambda, bias)) in channels {
                    for ((x, v), sum) in xc.iter_mut().zip(vc.iter_mut()).zip(sc.iter_mut()) {
                        let input = *x + bias;
                        let f = p.threshold_factor(&k, lambda, *v, *sum * mean_scale, input, t);
                        factor_sum += f;
                        let theta = f * lambda;
                        *v += input;
                        // floor of a value clamped to [0, γ] is its truncation (NaN → 0).
                        let s = if theta > 0.0 { ((*v / theta).clamp(0.0, gamma) as u32) as f32 } else { 0.0 };
                        let kept = if confident && s > 0.0 && self.rng.next_f32() >= p.confidence { 0.0 } else { s };
                        *v -= if masked_reset { kept } else { s } * theta;
                        *sum += *v;
                        count += kept as u32;
                        *x = kept * theta;
                    }
                }
                stats.push(factor_sum / per_sample as f32);
                spikes.push(count);
            }
            self.factor.push(stats);
        }
    }

    fn diagnostics(&self) -> Vec<Diagnostic> {
        vec![Diagnostic { metric: "threshold_factor", per_step: self.factor.clone() }]
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::neuron::integrate_and_fire::tests::run_one;
    use crate::neuron::{build_neuron, kind_table};

    fn msat(text: &str) -> Msat {
        toml::from_str(text).unwrap()
    }

    fn assert_close(got: &[f32], want: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{what}: {got:?} vs {want:?}");
        }
    }

    /// One neuron of threshold λ on `inputs`: (outputs, θ/λ per step, spikes per step).
    fn trace(model: Msat, lambda: f32, inputs: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<u32>) {
        let layer = NeuronLayerSpec::new(Arc::new(model), vec![lambda]);
        let shape = LayerShape { batch: 1, channels: 1, inner: 1 };
        let mut state = layer.new_state(shape, RunInfo { timesteps: inputs.len(), seed: 3 });
        let mut data = inputs.to_vec();
        let mut spikes = Vec::new();
        // One step per call: the state carries t, v and V̄ across chunks.
        for step in data.chunks_mut(1) {
            state.run(step, &mut spikes);
        }
        let d = state.diagnostics();
        assert_eq!(d[0].metric, "threshold_factor");
        (data, d[0].per_step.iter().map(|s| s.mean() as f32).collect(), spikes)
    }

    /// The equations of the module doc for one neuron, written out step by step.
    fn reference(model: &Msat, lambda: f32, inputs: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let k = model.constants();
        let (mut v, mut sum, mut out, mut factors) = (0.0f32, 0.0f32, Vec::new(), Vec::new());
        for (i, &x) in inputs.iter().enumerate() {
            let t = i + 1;
            let mean = if t > 1 { sum / (t - 1) as f32 } else { 0.0 };
            let f = model.threshold_factor(&k, lambda, v, mean, x, t);
            let theta = f * lambda;
            v += x;
            let s = (v / theta).floor().clamp(0.0, model.max_spikes as f32);
            v -= s * theta;
            sum += v;
            out.push(s * theta);
            factors.push(f);
        }
        (out, factors)
    }

    #[test]
    fn layer_max_units_make_the_neuron_scale_free_and_equal_raw_units_at_lambda_one() {
        let inputs = [0.9, 0.3, 1.2, 0.0, 0.7, 0.4, 1.1, 0.2];
        let normalised = Msat { units: MsatUnits::LayerMax, ..Msat::default() };
        let (base, base_f, base_s) = trace(normalised, 1.0, &inputs);
        // λ = 1: both units are the same formula.
        let (raw, raw_f, _) = trace(Msat::default(), 1.0, &inputs);
        assert_eq!((&base, &base_f), (&raw, &raw_f));
        for c in [4.0f32, 0.25] {
            let scaled: Vec<f32> = inputs.iter().map(|x| x * c).collect();
            let (out, f, spikes) = trace(normalised, c, &scaled);
            assert_eq!(spikes, base_s, "λ = {c}: the same spikes");
            for ((a, b), (fa, fb)) in out.iter().zip(&base).zip(f.iter().zip(&base_f)) {
                assert!((a - c * b).abs() <= 1e-5 * c && (fa - fb).abs() < 1e-6, "λ = {c}: {out:?} vs {base:?}");
            }
            // Raw units are not scale-free: at λ = 4 the sigmoid's argument drops by ~3.
            if c > 1.0 {
                let (_, raw_f, _) = trace(Msat::default(), c, &scaled);
                assert!(raw_f[1] < 0.5 * f[1], "raw θ/λ {} vs layer-max {}", raw_f[1], f[1]);
            }
        }
    }

    #[test]
    fn rescaled_max_is_the_code_on_the_network_rescaled_to_that_maximum() {
        // Layer-max units with m = 2.5 on a layer of λ = c equal raw units on the same layer
        // rescaled by m/c (λ = m): the same spikes and θ/λ, outputs scaled by c/m.
        let inputs = [0.9f32, 0.3, 1.2, 0.0, 0.7, 0.4, 1.1, 0.2, 0.8];
        let m = 2.5f32;
        let rescaled = Msat { units: MsatUnits::LayerMax, rescaled_max: m, ..Msat::default() };
        let at_m: Vec<f32> = inputs.iter().map(|x| x * m).collect();
        let (raw_out, raw_f, raw_s) = trace(Msat::default(), m, &at_m);
        for c in [0.5f32, 4.0, 7.0] {
            let at_c: Vec<f32> = inputs.iter().map(|x| x * c).collect();
            let (out, f, spikes) = trace(rescaled, c, &at_c);
            assert_eq!(spikes, raw_s, "λ = {c}");
            assert_close(&f, &raw_f, "θ/λ");
            let want: Vec<f32> = raw_out.iter().map(|o| o * c / m).collect();
            assert_close(&out, &want, "outputs");
        }
        // m changes the neuron: θ/λ at t = 2 falls as m grows (V_T = −m).
        let (_, f1, _) = trace(Msat { units: MsatUnits::LayerMax, ..Msat::default() }, 1.0, &inputs);
        let (_, f3, _) = trace(Msat { rescaled_max: 3.0, ..rescaled }, 1.0, &inputs);
        assert!(f3[1] < f1[1], "{f3:?} vs {f1:?}");
        // Only with layer-max units, and positive.
        assert!(msat("rescaled_max = 2.0").check().is_err());
        assert!(msat("units = \"layer-max\"\nrescaled_max = 0.0").check().is_err());
        assert!(msat("units = \"layer-max\"\nrescaled_max = 2.0").check().is_ok());
    }

    #[test]
    fn threshold_factor_follows_dtt_and_det() {
        let m = Msat::default();
        let k = m.constants();
        // t = 1: θ = λ.
        assert_eq!(m.threshold_factor(&k, 2.0, 5.0, 1.0, 0.3, 1), 1.0);
        // v_p = V̄ (d = 0), λ = 1, x = 0.9: DTT = −1 + ln 2, DET = e^{−0.18}.
        let u = -1.0 + 2f32.ln() + (-0.18f32).exp();
        let want = 1.0 / (1.0 + (-u).exp());
        assert!((m.threshold_factor(&k, 1.0, 0.6, 0.6, 0.9, 2) - want).abs() < 1e-6);
        assert!((want - 0.629_113_9).abs() < 1e-6);
        // d = 0.5, λ = 2, x = −1, ResNet-20 constants: DTT = 0.5·(0.3·0.5 − 2 + ln(1 + e^{0.5})),
        // DET = 0.5·e^{0.2}.
        let r = Msat::with_preset(MsatPreset::Resnet20);
        let u = 0.5 * (0.15 - 2.0 + 0.5f32.exp().ln_1p()) + 0.5 * 0.2f32.exp();
        let got = r.threshold_factor(&r.constants(), 2.0, 1.0, 0.5, -1.0, 7);
        assert!((got - 1.0 / (1.0 + (-u).exp())).abs() < 1e-6, "{got}");
        // The softplus does not overflow for large arguments: θ → λ.
        assert!((m.threshold_factor(&k, 1.0, 1e4, 0.0, 0.0, 3) - 1.0).abs() < 1e-6);
        assert!(m.threshold_factor(&k, 1.0, -1e4, 0.0, 1e4, 3) >= 0.0);
    }

    #[test]
    fn a_single_neuron_follows_the_hand_computed_sequence() {
        // λ = 1, VGG-16 constants, inputs 0.6, 0.9, 0.2, 1.3:
        // t=1: θ = 1, v = .6 → no spike, V̄ = .6.
        // t=2: d = 0, θ = sigmoid(−1 + ln 2 + e^{−.18}) = .6291139; v = 1.5 → spike, v = .8708861.
        // t=3: d = .8708861 − (.6 + .8708861)/2, ... (values from the equations in f64).
        let inputs = [0.6f32, 0.9, 0.2, 1.3];
        let (out, factor, spikes) = trace(Msat::default(), 1.0, &inputs);
        assert_close(&factor, &[1.0, 0.629_113_9, 0.674_369, 0.586_814_7], "both: θ/λ");
        assert_close(&out, &[0.0, 0.629_113_9, 0.674_369, 0.586_814_7], "both: out");
        assert_eq!(spikes, vec![0, 1, 1, 1]);
        // DTT alone, DET alone.
        let (out, factor, _) = trace(msat("det = false"), 1.0, &inputs);
        assert_close(&factor, &[1.0, 0.423_883_1, 0.456_705_1, 0.422_279_7], "DTT: θ/λ");
        assert_close(&out, &[0.0, 0.423_883_1, 0.456_705_1, 0.422_279_7], "DTT: out");
        let (out, factor, _) = trace(msat("dtt = false"), 1.0, &inputs);
        assert_close(&factor, &[1.0, 0.697_468_1, 0.723_279_8, 0.683_748_3], "DET: θ/λ");
        assert_close(&out, &[0.0, 0.697_468_1, 0.723_279_8, 0.683_748_3], "DET: out");
        // λ = 2 with a step that stays below θ: 1.5, 0.1, −0.4, 2.0.
        let (out, factor, spikes) = trace(Msat::default(), 2.0, &[1.5, 0.1, -0.4, 2.0]);
        assert_close(&factor, &[1.0, 0.419_054_9, 0.400_775_4, 0.294_056_9], "λ=2: θ/λ");
        assert_close(&out, &[0.0, 0.838_109_9, 0.0, 0.588_113_9], "λ=2: out");
        assert_eq!(spikes, vec![0, 1, 0, 1]);
        // Longer random-ish runs, every switch combination, γ = 2: the state equals the equations.
        let long: Vec<f32> = (0..40).map(|i| ((i * 37 % 23) as f32 - 7.0) / 9.0).collect();
        for text in ["", "det = false", "dtt = false", "max_spikes = 2", "preset = \"resnet20\"", "adaptive_first_step = true"]
        {
            let m = msat(text);
            let (out, factor, _) = trace(m, 1.3, &long);
            let (want_out, want_factor) = reference(&m, 1.3, &long);
            assert_close(&out, &want_out, text);
            assert_close(&factor, &want_factor, text);
        }
    }

    #[test]
    fn both_terms_off_is_a_fixed_fraction_of_lambda() {
        // fixed_fraction = 1: the plain IF neuron.
        let inputs: Vec<f32> = (0..20).map(|i| ((i * 7 % 11) as f32) / 8.0).collect();
        let (out, factor, _) = trace(msat("dtt = false\ndet = false"), 1.5, &inputs);
        let (plain, _) = run_one(Arc::new(IntegrateAndFire::default()), 1.5, &inputs);
        assert_eq!(out, plain);
        assert!(factor.iter().all(|&f| f == 1.0));
        // The paper's 0.7λ ablation: θ = 0.7 from the first step on. v: .5, 1.0 → fire (.3),
        // .8 → fire (.1); θ = λ would fire at t = 2 only.
        let (out, factor, _) = trace(msat("dtt = false\ndet = false\nfixed_fraction = 0.7"), 1.0, &[0.5, 0.5, 0.5]);
        assert_close(&out, &[0.0, 0.7, 0.7], "0.7λ");
        let (out, _, _) = trace(msat("dtt = false\ndet = false"), 1.0, &[0.5, 0.5, 0.5]);
        assert_eq!(out, vec![0.0, 1.0, 0.0]);
        assert!(factor.iter().all(|&f| (f - 0.7).abs() < 1e-7));
    }

    #[test]
    fn adaptive_first_step_adapts_at_t_one() {
        // v_p = 0, V̄ = 0, x = .6: DTT = −1 + ln 2, DET = e^{−.12}.
        let (_, factor, _) = trace(msat("adaptive_first_step = true"), 1.0, &[0.6, 0.9, 0.2, 1.3]);
        assert_close(&factor, &[0.641_083, 0.629_113_9, 0.674_369, 0.586_814_7], "adaptive t=1");
    }

    #[test]
    fn per_channel_lambda_enters_v_t_and_the_scale() {
        // Two channels with λ = 1 and 2 on the same inputs: each behaves as a single neuron of
        // its own λ.
        let layer = NeuronLayerSpec::new(Arc::new(Msat::default()), vec![1.0, 2.0]);
        let shape = LayerShape { batch: 1, channels: 2, inner: 1 };
        let mut s = layer.new_state(shape, RunInfo { timesteps: 4, seed: 0 });
        let inputs = [1.5f32, 0.1, -0.4, 2.0];
        let mut data: Vec<f32> = inputs.iter().flat_map(|&x| [x, x]).collect();
        s.run(&mut data, &mut Vec::new());
        let (one, _, _) = trace(Msat::default(), 1.0, &inputs);
        let (two, _, _) = trace(Msat::default(), 2.0, &inputs);
        let got: Vec<f32> = one.iter().zip(&two).flat_map(|(&a, &b)| [a, b]).collect();
        assert_eq!(data, got);
    }

    fn layer_run(model: Msat, seed: u64, steps: usize, input: f32) -> (Vec<f32>, Vec<u32>) {
        let layer = NeuronLayerSpec::new(Arc::new(model), vec![1.0]);
        let shape = LayerShape { batch: 2, channels: 3, inner: 50 };
        let mut s = layer.new_state(shape, RunInfo { timesteps: steps, seed });
        let mut data: Vec<f32> = (0..steps * shape.len()).map(|i| input * (0.5 + (i % 13) as f32 / 12.0)).collect();
        let mut spikes = Vec::new();
        s.run(&mut data, &mut spikes);
        (data, spikes)
    }

    #[test]
    fn confidence_one_changes_nothing() {
        let base = layer_run(Msat::default(), 1, 24, 0.7);
        assert_eq!(layer_run(msat("confidence = 1.0\nconfidence_steps = 100"), 9, 24, 0.7), base);
        assert_eq!(layer_run(msat("confidence_reset = \"unmasked\""), 5, 24, 0.7), base);
    }

    #[test]
    fn confidence_zero_silences_the_first_steps_then_fires() {
        let n = 300; // elements of `layer_run`'s layer
        for reset in ["masked", "unmasked"] {
            let m = msat(&format!("confidence = 0.0\nconfidence_reset = \"{reset}\""));
            let (out, spikes) = layer_run(m, 4, 24, 0.7);
            assert!(out[..16 * n].iter().all(|&o| o == 0.0), "{reset}: output before step 17");
            assert!(spikes[..16 * 2].iter().all(|&s| s == 0), "{reset}: spikes before step 17");
            assert!(spikes[16 * 2..].iter().all(|&s| s > 0), "{reset}: silent after step 16");
        }
        // With the masked reset the membrane keeps the charge of the dropped spikes: one
        // neuron with θ = λ driven by 1.0 holds v = 16 after 16 steps, so it fires at every
        // step after; with the unmasked reset it was reset each step, as an unmasked neuron.
        let plain = trace(msat("dtt = false\ndet = false"), 1.0, &[1.0; 20]);
        let masked = trace(msat("dtt = false\ndet = false\nconfidence = 0.0"), 1.0, &[1.0; 20]);
        let unmasked = trace(msat("dtt = false\ndet = false\nconfidence = 0.0\nconfidence_reset = \"unmasked\""), 1.0, &[1.0; 20]);
        assert_eq!(plain.0, vec![1.0; 20]);
        assert_eq!(masked.0[..16], [0.0; 16]);
        assert_eq!(masked.0[16..], [1.0; 4]);
        assert_eq!(unmasked.0, masked.0);
        // The difference shows with the adaptive threshold (the charge enters v_p − V̄) or
        // γ > 1: the masked neuron bursts γ spikes after step 16, the unmasked one does not.
        let burst = |reset: &str| {
            let text = format!("dtt = false\ndet = false\nmax_spikes = 3\nconfidence = 0.0\nconfidence_reset = \"{reset}\"");
            trace(msat(&text), 1.0, &[1.0; 18]).0
        };
        assert_eq!(burst("masked")[16..], [3.0, 3.0]);
        assert_eq!(burst("unmasked")[16..], [1.0, 1.0]);
    }

    #[test]
    fn the_same_seed_gives_the_same_spikes() {
        for reset in ["masked", "unmasked"] {
            let m = msat(&format!("confidence = 0.5\nconfidence_steps = 8\nconfidence_reset = \"{reset}\""));
            let a = layer_run(m, 7, 12, 1.2);
            assert_eq!(layer_run(m, 7, 12, 1.2), a, "{reset}");
            let b = layer_run(m, 8, 12, 1.2);
            assert_ne!(b.0, a.0, "{reset}: another seed, other masks");
        }
        // With the unmasked reset the membrane runs as without spike confidence, so the kept
        // share of the first 8 steps' spikes is the keep probability.
        let m = msat("confidence = 0.5\nconfidence_steps = 8\nconfidence_reset = \"unmasked\"");
        let (kept, full) = (layer_run(m, 7, 12, 1.2).1, layer_run(Msat::default(), 7, 12, 1.2).1);
        let (k, would): (u32, u32) = (kept[..16].iter().sum(), full[..16].iter().sum());
        assert!((0.45..0.55).contains(&(k as f32 / would as f32)), "{k} of {would}");
        assert_eq!(kept[16..], full[16..], "unmasked: the same dynamics after the window");
    }

    #[test]
    fn diagnostic_is_the_mean_factor_per_sample() {
        // Two samples of two neurons; θ/λ at t = 2 differs by input (DET).
        let layer = NeuronLayerSpec::new(Arc::new(msat("dtt = false")), vec![1.0]);
        let shape = LayerShape { batch: 2, channels: 1, inner: 2 };
        let mut s = layer.new_state(shape, RunInfo { timesteps: 2, seed: 0 });
        let mut data = vec![0.0f32, 0.0, 0.0, 0.0, /* t = 2 */ 0.0, 0.0, 5.0, 5.0];
        s.run(&mut data, &mut Vec::new());
        let d = &s.diagnostics()[0].per_step;
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].samples, d[0].min, d[0].max), (2, 1.0, 1.0));
        let (quiet, driven) = (sigmoid(1.0), sigmoid((-1.0f32).exp()));
        assert!((d[1].min - driven).abs() < 1e-6 && (d[1].max - quiet).abs() < 1e-6, "{:?}", d[1]);
    }

    #[test]
    fn parameters_parse_with_presets_and_are_checked() {
        let m = Msat::default();
        assert_eq!((m.preset, m.dtt, m.det, m.fixed_fraction, m.max_spikes), (MsatPreset::Vgg16, true, true, 1.0, 1));
        assert_eq!((m.confidence, m.confidence_steps, m.confidence_reset), (1.0, 16, ConfidenceReset::Masked));
        assert_eq!(m.constants(), MsatConstants { alpha: 0.03, k_a: 1.0, k_i: 1.0, c: 5.0, tau_mp: 1.0, tau_rd: 1.0 });
        // Explicit parameters override the preset.
        let r = msat("preset = \"resnet20\"\ntau_mp = 0.2\ntau_rd = 0.1");
        assert_eq!(r.constants(), MsatConstants { alpha: 0.3, k_a: 1.0, k_i: 1.0, c: 5.0, tau_mp: 0.2, tau_rd: 0.1 });
        // The config holds the preset and the overrides only, and rebuilds the same model.
        let config = r.config();
        assert!(!config.contains_key("alpha") && config.contains_key("tau_mp"));
        assert_eq!(build_neuron(&config).unwrap().config(), config);
        assert_eq!(build_neuron(&kind_table("msat")).unwrap().config(), Msat::default().config());
        // Errors.
        let err = |s: &str| {
            let mut t: toml::Table = toml::from_str(s).unwrap();
            t.insert("kind".into(), "msat".into());
            build_neuron(&t).unwrap_err().to_string()
        };
        assert!(err("preset = \"vgg19\"").contains("vgg19"));
        assert!(err("c = 0.0").contains("c must be positive"));
        assert!(err("c = -1.0").contains("c must be positive"));
        assert!(err("k_i = 0.0").contains("k_i"));
        assert!(err("confidence = 1.5").contains("confidence"));
        assert!(err("confidence = -0.1").contains("confidence"));
        assert!(err("max_spikes = 0").contains("max_spikes"));
        assert!(err("fixed_fraction = 0.7").contains("dtt = false"));
        assert!(err("dtt = false\ndet = false\nfixed_fraction = 0.0").contains("fixed_fraction"));
        assert!(err("v_init = \"half\"").contains("v_init"));
        let mut silent = kind_table("msat");
        silent.insert("confidence".into(), toml::Value::Float(0.0));
        assert!(build_neuron(&silent).is_ok());
    }
}
