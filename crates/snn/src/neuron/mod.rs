//! Neuron models: one file each, behind one trait, selected in a spec by
//! `[method.neuron] kind`.
//!
//! A neuron model ([`NeuronModel`]) is a configuration shared by the neurons of a layer: it
//! builds the run-time state of a layer ([`NeuronState`], a step over a chunk of T on raw
//! slices), states its latency (how many steps its output lags its input), whether its
//! dynamics depend on the run's T, and its closed-form rate ([`RateModel`]) that
//! calibrations use instead of restating the neuron's equations.
//!
//! Adding a neuron: one file implementing [`NeuronModel`] and [`RegisteredNeuron`] (its kind
//! name, description and serde parameters), plus one line in the `builtin_neurons!` list
//! below; code outside the crate (a test, a plug-in) registers at run time with
//! [`register_neuron`].
//!
//! Data layout of every step function: `[steps, batch, channels, inner]` (step-major,
//! `inner` = H·W, 1 for linear layers), overwritten in place with the layer's outputs
//! (spike count × amplitude).

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::registry::{Named, Registry, kind_of, params_of};
use crate::stats::SampleStats;

/// Declares the built-in neuron files and registers each with one line.
macro_rules! builtin_neurons {
    ($($module:ident :: $model:ident),* $(,)?) => {
        $(pub mod $module;)*
        fn builtin_neurons() -> Vec<NeuronKind> {
            vec![$(NeuronKind::of::<$module::$model>()),*]
        }
    };
}

builtin_neurons! {
    integrate_and_fire::IntegrateAndFire,
    burst::Burst,
    lan_dynamic::LanDynamic,
    msat::Msat,
    ilif::InverseLif,
    analog::Analog,
}

/// Shape of one layer of neurons in one simulated batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerShape {
    /// Samples.
    pub batch: usize,
    /// Channels (features for linear layers).
    pub channels: usize,
    /// Positions per channel (H·W; 1 for linear layers).
    pub inner: usize,
}

impl LayerShape {
    /// Neurons per sample.
    pub fn per_sample(&self) -> usize {
        self.channels * self.inner
    }
    /// Neurons of the whole batch (values per step).
    pub fn len(&self) -> usize {
        self.batch * self.per_sample()
    }
    /// Whether the layer has no neurons.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a layer's state knows of the run it is part of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunInfo {
    /// The coding window T (input steps of the first layer).
    pub timesteps: usize,
    /// Seed of this layer's random stream in this batch (see [`SimRng`]).
    pub seed: u64,
}

/// The per-layer parameters a conversion decides for one activation slot.
#[derive(Clone, Debug)]
pub struct NeuronLayerSpec {
    /// The neuron model of the layer.
    pub neuron: Arc<dyn NeuronModel>,
    /// One threshold per layer (len 1) or one per channel.
    pub thresholds: Vec<f32>,
    /// Optional per-element initial potential for one sample (`channels × inner`), added to
    /// the model's own initial potential (SNN Calibration's potential initialisation).
    pub v_init: Option<Vec<f32>>,
    /// Optional per-channel input offset b_c added every step: the same as adding b_c to the
    /// bias of the layer feeding the slot (bias correction / bias adjustment).
    pub bias: Option<Vec<f32>>,
}

impl PartialEq for NeuronLayerSpec {
    fn eq(&self, other: &Self) -> bool {
        self.neuron.config() == other.neuron.config()
            && self.thresholds == other.thresholds
            && self.v_init == other.v_init
            && self.bias == other.bias
    }
}

impl NeuronLayerSpec {
    /// A layer of `neuron`s with `thresholds` (1 = layer-wise, else per channel) and no
    /// corrections.
    pub fn new(neuron: Arc<dyn NeuronModel>, thresholds: Vec<f32>) -> Self {
        Self { neuron, thresholds, v_init: None, bias: None }
    }

    /// The threshold of `channel`.
    pub fn threshold(&self, channel: usize) -> f32 {
        threshold_of(&self.thresholds, channel)
    }

    /// The constant input offset o of element `element` (`channel·inner + position`) of
    /// this layer in [`RateModel::average_output`] at T = `timesteps`: the per-channel
    /// bias, the model's input shift and its initial potential (own and per element) spread
    /// over T steps.
    pub fn rate_offset(&self, element: usize, inner: usize, timesteps: usize) -> f32 {
        let channel = element / inner.max(1);
        let theta = self.threshold(channel);
        let bias = self.bias.as_ref().map_or(0.0, |b| b[channel]);
        let v0 = self.v_init.as_ref().map_or(0.0, |v| v[element]);
        self.neuron.rate_model().offset(theta, timesteps, bias, v0)
    }

    /// Fresh run-time state of this layer.
    pub fn new_state(&self, shape: LayerShape, run: RunInfo) -> Box<dyn NeuronState> {
        self.neuron.new_state(self, shape, run)
    }
}

/// A neuron model: the configuration shared by every neuron of a layer.
pub trait NeuronModel: fmt::Debug + Send + Sync {
    /// The registered kind (`[method.neuron] kind`).
    fn kind(&self) -> &'static str;
    /// The model's parameters as a spec table, `kind` included (cache keys, reports).
    fn config(&self) -> toml::Table;
    /// Run-time state for one layer (`layer`: thresholds and corrections) of `shape`.
    fn new_state(&self, layer: &NeuronLayerSpec, shape: LayerShape, run: RunInfo) -> Box<dyn NeuronState>;
    /// Steps by which the layer's output lags its input in a pipelined run of T = `timesteps`
    /// (0: the output of step t answers the input of step t). A model with a latency works in
    /// windows: its state receives the whole window of T input steps in one
    /// [`NeuronState::run`] call and replaces them with its T output steps (the simulator's
    /// windowed mode); the pipelined latency is reported, not simulated.
    fn latency(&self, _timesteps: usize) -> usize {
        0
    }
    /// Whether the dynamics depend on the run's T (a θ/(2T) shift, a phase length): such
    /// networks are simulated once per evaluated T instead of once to the largest.
    fn depends_on_timesteps(&self) -> bool {
        false
    }
    /// The closed-form time-averaged output calibrations use for this neuron.
    fn rate_model(&self) -> RateModel;
    /// The model as a plain integrate-and-fire neuron (one spike of amplitude θ per step at
    /// most, a fixed threshold, no latency), the form exporters to other tools (NIR) can
    /// express; `Err` says why the model is not one.
    fn plain_if(&self) -> Result<PlainIf, String> {
        Err(format!("the `{}` neuron is not a plain integrate-and-fire neuron", self.kind()))
    }
}

/// A plain integrate-and-fire neuron, as [`NeuronModel::plain_if`] describes it: per element
/// `v += x + [input_shift] θ/(2T)`, fire `s = [v ≥ θ]` (or `>`), reset, output `s·θ`, with
/// `v(0) = initial_potential·θ`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlainIf {
    /// Reset after a spike.
    pub reset: Reset,
    /// Firing rule.
    pub fire: FireRule,
    /// v(0) as a fraction of θ.
    pub initial_potential: f32,
    /// θ/(2T) is added to the input every step.
    pub input_shift: bool,
}

/// The time-averaged output of a neuron with threshold θ driven by a constant input y for
/// T steps, in closed form. Rate coding (exact for soft-reset integrate-and-fire neurons
/// without a dynamic threshold):
/// ```text
/// ȳ = (θ/T)·floor(clamp((y + o)/θ, 0, φ)·T),   o = b + [input_shift] θ/(2T) + v(0)/T
/// ```
/// φ = the most spikes per step, b = the layer's per-channel bias correction, v(0) = the
/// model's initial potential (`initial_potential`·θ) plus any per-element potential.
/// Inverse-leaky window coding ([`Coding::InverseLeaky`], the `ilif` neuron): ȳ is the greedy
/// expansion of u = y + o (o = b + v(0)) in the weights θ·k^{T−j}/S, j = 1..T,
/// S = Σ_j k^{T−j}; for k = 2 that is ȳ = (θ/S)·floor(clamp(u/θ, 0, 1)·S), S = 2^T − 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateModel {
    /// φ: spikes per step at most (1: plain IF).
    pub max_spikes_per_step: u32,
    /// θ/(2T) is added to the input every step.
    pub input_shift: bool,
    /// v(0) as a fraction of θ (0 or ½).
    pub initial_potential: f32,
    /// How a spike train carries a value.
    pub coding: Coding,
}

/// How a layer's spike train over the window carries a value.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Coding {
    /// Rate coding: the value is θ·(spikes)/T.
    #[default]
    Rate,
    /// Inverse-leaky window coding (Liu et al. 2022): the spike at window step j weighs
    /// k^{T−j}/S (S = Σ_j k^{T−j}), the value is θ·Σ_j Y_j·k^{T−j}/S.
    InverseLeaky {
        /// The damping factor k (1 < k ≤ 2).
        k: f32,
    },
}

impl Coding {
    /// The weight w_j = k^{T−j}/S of window step `j` (1-based) in a window of `timesteps`
    /// steps: 1/T for rate coding.
    pub fn step_weight(self, j: usize, timesteps: usize) -> f64 {
        let t = timesteps.max(1);
        self.window_weights(t)[j.clamp(1, t) - 1]
    }

    /// Per window step j, its output's factor T·w_j in the time-average Σ_j T·w_j·out(j) / T
    /// (1 for rate coding, so the average is the plain mean).
    pub fn mean_weights(self, timesteps: usize) -> Vec<f32> {
        match self {
            Coding::Rate => vec![1.0; timesteps.max(1)],
            coding => coding.window_weights(timesteps).iter().map(|w| (*w * timesteps as f64) as f32).collect(),
        }
    }

    /// The weights w_1..w_T of a window of `timesteps` steps (they sum to 1).
    pub fn window_weights(self, timesteps: usize) -> Vec<f64> {
        let t = timesteps.max(1);
        match self {
            Coding::Rate => vec![1.0 / t as f64; t],
            Coding::InverseLeaky { k } => {
                let k = k as f64;
                let sum: f64 = (0..t).map(|e| k.powi(e as i32)).sum();
                (1..=t).map(|j| k.powi((t - j) as i32) / sum).collect()
            }
        }
    }
}

/// The greedy expansion of `u` in the weights θ·w_j (an inverse-leaky neuron's phase II):
/// Σ of the θ·w_j that fire, each when the remainder reaches it.
pub fn greedy_decode(u: f64, theta: f64, weights: &[f64]) -> f64 {
    let mut residual = u;
    let mut out = 0.0;
    for w in weights {
        let w = theta * w;
        if residual >= w {
            residual -= w;
            out += w;
        }
    }
    out
}

impl RateModel {
    /// o of the equation above for threshold `theta`, T = `timesteps`, channel bias `bias`
    /// and extra per-element initial potential `v0`.
    pub fn offset(&self, theta: f32, timesteps: usize, bias: f32, v0: f32) -> f32 {
        // Summed term by term in this order (weight calibration's quantiser relies on it).
        let t = timesteps.max(1) as f32;
        let mut o = bias;
        if self.input_shift {
            o += theta / (2.0 * t);
        }
        // A rate-coded neuron spreads v(0) over the window; an inverse-leaky one adds it to its
        // integrated (normalised) input once.
        let spread = if self.coding == Coding::Rate { t } else { 1.0 };
        if self.initial_potential != 0.0 {
            o += self.initial_potential * theta / spread;
        }
        if v0 != 0.0 {
            o += v0 / spread;
        }
        o
    }

    /// ȳ of the equation above for input `y` (offset `offset` from [`RateModel::offset`]).
    pub fn average_output(&self, y: f32, theta: f32, timesteps: usize, offset: f32) -> f32 {
        match self.coding {
            Coding::Rate => {
                let t = timesteps.max(1) as f32;
                (theta / t) * (((y + offset) / theta).clamp(0.0, self.max_spikes_per_step.max(1) as f32) * t).floor()
            }
            Coding::InverseLeaky { .. } => {
                greedy_decode((y + offset) as f64, theta as f64, &self.coding.window_weights(timesteps)) as f32
            }
        }
    }
}

/// Run-time state of one layer of neurons for one batch.
///
/// Samples are independent: a state of `batch` B behaves as B states of batch 1 (apart from
/// the draws of stochastic neurons), which the event-driven engine relies on: it runs one
/// state per sample.
pub trait NeuronState: Send {
    /// Runs the next `data.len() / shape.len()` steps on `data` (`[steps, batch, channels,
    /// inner]`), overwriting it with the outputs, and appends to `spikes` the spikes (with
    /// multiplicity) each sample emitted at each step, `[steps × batch]`.
    fn run(&mut self, data: &mut [f32], spikes: &mut Vec<u32>);
    /// Per-step statistics the model records (e.g. Lan et al.'s ω(t)); none by default.
    fn diagnostics(&self) -> Vec<Diagnostic> {
        Vec::new()
    }
}

/// A statistic a neuron model records at every step, one value per sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// Metric stem: results get `<metric>_mean`, `_min` and `_max` rows.
    pub metric: &'static str,
    /// Per global step t = 1.. : the statistic over the batch's samples.
    pub per_step: Vec<SampleStats>,
}

/// Adds the diagnostics of more samples (`more`, e.g. another batch) to `acc`, metric by
/// metric and step by step.
pub fn merge_diagnostics(acc: &mut Vec<Diagnostic>, more: Vec<Diagnostic>) {
    for d in more {
        match acc.iter_mut().find(|a| a.metric == d.metric) {
            Some(a) => {
                if a.per_step.len() < d.per_step.len() {
                    a.per_step.resize(d.per_step.len(), SampleStats::default());
                }
                for (x, y) in a.per_step.iter_mut().zip(&d.per_step) {
                    x.merge(y);
                }
            }
            None => acc.push(d),
        }
    }
}

/// A registered neuron kind.
#[derive(Clone, Copy)]
pub struct NeuronKind {
    /// `kind` in specs.
    pub name: &'static str,
    /// One line for `runner list`, citing the paper.
    pub description: &'static str,
    /// Builds the model from its spec table (without `kind`).
    pub parse: fn(&toml::Table) -> Result<Arc<dyn NeuronModel>, String>,
    /// The version of the model's code ([`RegisteredNeuron::VERSION`]).
    pub version: u32,
}

/// A neuron model that can be named in a spec: its kind, description and parameters.
pub trait RegisteredNeuron: NeuronModel + DeserializeOwned + Sized + 'static {
    /// `kind` in specs.
    const KIND: &'static str;
    /// One line for `runner list`.
    const DESCRIPTION: &'static str;
    /// The version of the model's code, part of the cache key of every evaluation that uses
    /// it: bump it when a change makes the neuron compute different spikes, so cached results
    /// of the older code are recomputed. 1 by default (and then left out of the keys).
    const VERSION: u32 = 1;
    /// Range checks of the parameters.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

impl NeuronKind {
    /// The registration of `N`.
    pub fn of<N: RegisteredNeuron>() -> Self {
        Self {
            name: N::KIND,
            description: N::DESCRIPTION,
            parse: |t| {
                let n: N = parse_params(t)?;
                n.check()?;
                Ok(Arc::new(n))
            },
            version: N::VERSION,
        }
    }
}

impl Named for NeuronKind {
    fn name(&self) -> &'static str {
        self.name
    }
}

static NEURONS: Registry<NeuronKind> = Registry::new(builtin_neurons);

/// Registers a neuron kind at run time (replacing one of the same name).
pub fn register_neuron(kind: NeuronKind) {
    NEURONS.register(kind);
}

/// Every registered neuron kind, built-ins first.
pub fn neuron_kinds() -> Vec<NeuronKind> {
    NEURONS.all()
}

/// The code version of the neuron kind named `kind` ([`RegisteredNeuron::VERSION`]); None for
/// a kind nobody registered.
pub fn neuron_version(kind: &str) -> Option<u32> {
    NEURONS.find(kind).ok().map(|k| k.version)
}

/// Errors building a neuron model from a spec table.
#[derive(Debug, thiserror::Error)]
pub enum NeuronError {
    /// No `kind`, or an unknown one.
    #[error("unknown neuron kind `{kind}`; valid kinds: {valid}")]
    UnknownKind {
        /// What was given.
        kind: String,
        /// The registered kinds.
        valid: String,
    },
    /// The parameters do not parse or are out of range.
    #[error("neuron `{kind}`: {reason}")]
    InvalidParameter {
        /// The kind.
        kind: String,
        /// What is wrong.
        reason: String,
    },
}

/// Builds the neuron model a spec table describes (`kind` plus the kind's parameters).
pub fn build_neuron(config: &toml::Table) -> Result<Arc<dyn NeuronModel>, NeuronError> {
    let kind = kind_of(config);
    let entry = NEURONS.find(kind).map_err(|valid| NeuronError::UnknownKind { kind: kind.into(), valid })?;
    (entry.parse)(&params_of(config)).map_err(|reason| NeuronError::InvalidParameter { kind: kind.into(), reason })
}

/// `overrides` (a spec's `[method.neuron]`) applied on top of a method's `default` neuron
/// table: keys of `overrides` replace those of `default`; naming another `kind` starts from
/// that kind's defaults instead.
pub fn merge_neuron_config(default: &toml::Table, overrides: &toml::Table) -> toml::Table {
    let switches_kind = overrides.get("kind").is_some_and(|k| Some(k) != default.get("kind"));
    let mut merged = if switches_kind { toml::Table::new() } else { default.clone() };
    merged.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged
}

/// Deserializes a model's parameters from its table (without `kind`).
pub fn parse_params<T: DeserializeOwned>(params: &toml::Table) -> Result<T, String> {
    T::deserialize(toml::Value::Table(params.clone())).map_err(|e| e.to_string())
}

/// The spec table of a model: `kind` followed by its serialized parameters.
pub fn config_table<T: Serialize>(kind: &str, params: &T) -> toml::Table {
    let mut table = toml::Table::new();
    table.insert("kind".into(), toml::Value::String(kind.into()));
    if let Ok(toml::Value::Table(p)) = toml::Value::try_from(params) {
        table.extend(p);
    }
    table
}

/// The spec table `{ kind = "<kind>" }` with no parameters (the kind's defaults).
pub fn kind_table(kind: &str) -> toml::Table {
    let mut table = toml::Table::new();
    table.insert("kind".into(), toml::Value::String(kind.into()));
    table
}

/// Reset after a spike.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reset {
    /// Reset by subtraction ("soft reset"): v ← v − s·θ.
    #[default]
    Soft,
    /// Reset to zero ("hard reset"): v ← 0 after a spike.
    Hard,
}

/// Initial membrane potential.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitPotential {
    /// v(0) = 0.
    #[default]
    Zero,
    /// v(0) = θ/2.
    Half,
}

impl InitPotential {
    /// v(0) as a fraction of θ.
    pub fn fraction(self) -> f32 {
        match self {
            InitPotential::Zero => 0.0,
            InitPotential::Half => 0.5,
        }
    }
}

/// Firing condition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FireRule {
    /// Fire when v ≥ θ (default).
    #[default]
    #[serde(rename = ">=")]
    GreaterEqual,
    /// Fire when v > θ (paper 002).
    #[serde(rename = ">")]
    Greater,
}

impl FireRule {
    /// Whether a potential `v` reaches threshold `theta`.
    #[inline]
    pub fn reaches(self, v: f32, theta: f32) -> bool {
        match self {
            FireRule::GreaterEqual => v >= theta,
            FireRule::Greater => v > theta,
        }
    }
}

/// The threshold of `channel` in a layer-wise (len 1) or channel-wise list.
#[inline]
pub fn threshold_of(thresholds: &[f32], channel: usize) -> f32 {
    if thresholds.len() == 1 { thresholds[0] } else { thresholds[channel] }
}

/// Per channel of a layer: (θ_c, the per-step input offset b_c + [input_shift] θ_c/(2T)).
pub fn channel_offsets(layer: &NeuronLayerSpec, shape: LayerShape, run: RunInfo, input_shift: bool) -> Vec<(f32, f32)> {
    let shift_scale = if input_shift { 1.0 / (2.0 * run.timesteps as f32) } else { 0.0 };
    (0..shape.channels)
        .map(|c| {
            let theta = layer.threshold(c);
            (theta, theta * shift_scale + layer.bias.as_ref().map_or(0.0, |b| b[c]))
        })
        .collect()
}

/// Initial membrane potentials `[batch × channels × inner]` of a layer: `fraction`·θ_c plus
/// the layer's per-element potential, if any.
pub fn initial_membrane(layer: &NeuronLayerSpec, shape: LayerShape, fraction: f32) -> Vec<f32> {
    let per_sample = shape.per_sample();
    let one: Vec<f32> = (0..per_sample)
        .map(|e| fraction * layer.threshold(e / shape.inner.max(1)) + layer.v_init.as_ref().map_or(0.0, |v| v[e]))
        .collect();
    let mut membrane = Vec::with_capacity(shape.len());
    for _ in 0..shape.batch {
        membrane.extend_from_slice(&one);
    }
    membrane
}

/// A small, fast, seeded random stream (SplitMix64) for stochastic neurons: the same seed
/// gives the same numbers on every machine.
#[derive(Clone, Debug)]
pub struct SimRng(u64);

impl SimRng {
    /// A stream from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// The seed of one layer's stream: a mix of the network's seed, the batch's seed and the slot.
pub fn layer_seed(network_seed: u64, batch_seed: u64, slot: usize) -> u64 {
    let mut r = SimRng::new(network_seed ^ batch_seed.rotate_left(21) ^ (slot as u64).rotate_left(42));
    r.next_u64()
}
