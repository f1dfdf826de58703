//! Conversion methods: one file each, behind [`ConversionMethod`].
//!
//! A method's file holds everything about it: its `kind` name and description
//! ([`RegisteredMethod`]), its serde parameters and their range checks, the neuron and
//! readout it was published with, whether it calibrates at a T (per-T calibration), its
//! steps of the fixed pipeline and any result rows it adds. Registering it is one line in
//! the `builtin_methods!` list below; code outside the crate (a test, a plug-in) registers
//! at run time with [`register_method`].

use std::fmt;
use std::sync::Arc;

use burn::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use snn::registry::{Named, Registry, kind_of, params_of};
use snn::{SpikingNetwork, kind_table};
use zoo::{LayerMacs, Network};

use crate::{ConvertError, SlotStats};

/// Declares the built-in method files and registers each with one line (the order is the
/// order of `runner list`).
macro_rules! builtin_methods {
    ($($module:ident :: $method:ident),* $(,)?) => {
        $(pub mod $module;)*
        fn builtin_methods() -> Vec<MethodKind> {
            vec![$(MethodKind::of::<$module::$method>()),*]
        }
    };
}

builtin_methods! {
    max_norm::MaxNorm,
    robust_norm::RobustNorm,
    channel_norm::ChannelNorm,
    ltb::Ltb,
    qcfs::Qcfs,
    opt_shift::OptShift,
    snn_calibration::SnnCalibration,
    lan2023::Lan2023,
    adafire::AdaFire,
    spike_norm::SpikeNorm,
    rmp::Rmp,
    burst::BurstSpikes,
    msat::Msat,
    spikeconverter::SpikeConverter,
}

/// A conversion method. Only [`ConversionMethod::thresholds`] is required; the driver runs
/// the rest of the fixed pipeline.
pub trait ConversionMethod: fmt::Debug + Send + Sync {
    /// Thresholds for one slot from its activation statistics: 1 value (layer-wise) or one
    /// per channel.
    fn thresholds(&self, stats: &SlotStats) -> Vec<f32>;
    /// The neuron the method was published with, as a `[method.neuron]` table (a spec's
    /// `[method.neuron]` is applied on top of it). Default: the plain `if` neuron.
    fn default_neuron(&self) -> toml::Table {
        kind_table("if")
    }
    /// Rejects a model the method cannot convert (e.g. QCFS needs a QCFS-trained ANN).
    fn check_model(&self, _model: &Network) -> Result<(), ConvertError> {
        Ok(())
    }
    /// Thresholds fitted by running the (BN-folded) ANN itself, for methods that do not work
    /// from activation statistics (e.g. threshold balancing). `None` (default): use [`ConversionMethod::thresholds`].
    fn fit_thresholds(&self, _model: &Network, _calibration: &[Tensor<4>]) -> Option<Vec<Vec<f32>>> {
        None
    }
    /// Adjusts the built network using the calibration images (bias correction, potential
    /// initialisation, a readout of its own, ...). Returns one-off rows about what it chose
    /// (e.g. AdaFire's φ per layer), reported at the T the method calibrated for (0 when it
    /// does not calibrate at a T). No-op, no rows by default.
    fn calibrate(
        &self,
        _net: &mut SpikingNetwork,
        _calibration: &[Tensor<4>],
    ) -> Result<Vec<MethodMeasure>, ConvertError> {
        Ok(Vec::new())
    }
    /// The parameter holding the T the method calibrates at, for methods whose conversion
    /// simulates at a T (`[convert] calibrate_at_eval_t` sets it to each evaluated T). None
    /// (default): the conversion does not depend on T.
    fn calibration_timesteps_param(&self) -> Option<&'static str> {
        None
    }
    /// Whether a conversion is only valid at the T it calibrated for (e.g. thresholds fitted
    /// to a window's quantiser): such a method is converted once per evaluated T even without
    /// `[convert] calibrate_at_eval_t`. False by default.
    fn calibrates_at_each_eval_t(&self) -> bool {
        false
    }
    /// Result rows the method adds at each evaluated T (none by default).
    fn measures(&self, _at: &MeasureContext) -> Vec<MethodMeasure> {
        Vec::new()
    }
    /// The version of the method's code, part of the cache key of its evaluations: bump it
    /// when a change makes the method convert differently (values, not only speed), so cached
    /// results of the older code are recomputed. 1 by default (and then left out of the key).
    fn version(&self) -> u32 {
        1
    }

    /// The readout kind [`ConversionMethod::calibrate`] installs, when it replaces the
    /// network's `accumulate` readout (its version enters the cache key of the evaluations).
    fn readout_kind(&self) -> Option<&'static str> {
        None
    }
}

/// The code versions of one conversion's parts ([`MethodConfig::code_versions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeVersions {
    /// [`ConversionMethod::version`].
    pub method: u32,
    /// [`snn::RegisteredNeuron::VERSION`] of the neuron kind.
    pub neuron: u32,
    /// [`snn::RegisteredReadout::VERSION`] of the readout kind.
    pub readout: u32,
}

/// What a method's [`ConversionMethod::measures`] can build its rows from, at one T.
pub struct MeasureContext<'a> {
    /// The evaluated T.
    pub timesteps: u32,
    /// Synaptic operations per sample (spikes × fan-out), steps 1..T.
    pub sops: f64,
    /// Spikes per sample, steps 1..T.
    pub spikes: f64,
    /// The ANN's layers in forward order with their MACs per sample (traced).
    pub layers: &'a [LayerMacs],
}

/// One result row a method adds.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodMeasure {
    /// Metric name.
    pub metric: String,
    /// Layer, or "" for whole-network values.
    pub layer: String,
    /// The value.
    pub value: f64,
    /// For a row of one activation slot: its index (the conversion names `layer` after the
    /// slot).
    pub slot: Option<usize>,
}

impl MethodMeasure {
    /// A whole-network value.
    pub fn new(metric: &str, value: f64) -> Self {
        Self { metric: metric.into(), layer: String::new(), value, slot: None }
    }

    /// A value of activation slot `slot` (its `layer` becomes the slot's name).
    pub fn of_slot(metric: &str, slot: usize, value: f64) -> Self {
        Self { metric: metric.into(), layer: format!("slot {slot}"), value, slot: Some(slot) }
    }

    /// A value with a free-form `layer` label (e.g. a step or a point of a curve).
    pub fn labelled(metric: &str, layer: &str, value: f64) -> Self {
        Self { metric: metric.into(), layer: layer.into(), value, slot: None }
    }
}

/// A method that can be named in a spec: its kind, description, parameters and their checks.
pub trait RegisteredMethod: ConversionMethod + Serialize + DeserializeOwned + Sized + 'static {
    /// `kind` in specs.
    const KIND: &'static str;
    /// One line for `runner list`, citing the paper.
    const DESCRIPTION: &'static str;
    /// Range checks of the parameters (run when a spec is parsed).
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A registered method kind.
#[derive(Clone, Copy)]
pub struct MethodKind {
    /// `kind` in specs.
    pub name: &'static str,
    /// One line for `runner list`.
    pub description: &'static str,
    /// Builds the method from its parameters (the `[[method]]` table without `kind`).
    pub parse: fn(&toml::Table) -> Result<MethodConfig, String>,
}

impl MethodKind {
    /// The registration of `M`.
    pub fn of<M: RegisteredMethod>() -> Self {
        Self {
            name: M::KIND,
            description: M::DESCRIPTION,
            parse: |params| {
                let m: M = M::deserialize(toml::Value::Table(params.clone())).map_err(|e| e.to_string())?;
                MethodConfig::new(m)
            },
        }
    }
}

impl Named for MethodKind {
    fn name(&self) -> &'static str {
        self.name
    }
}

static METHODS: Registry<MethodKind> = Registry::new(builtin_methods);

/// Registers a method kind at run time (replacing one of the same name).
pub fn register_method(kind: MethodKind) {
    METHODS.register(kind);
}

/// Every registered method kind, built-ins first.
pub fn method_kinds() -> Vec<MethodKind> {
    METHODS.all()
}

/// A parsed method: its kind, its parameters with every default filled in (what cache keys
/// and the resolved spec hold) and the method object.
#[derive(Clone)]
pub struct MethodConfig {
    kind: &'static str,
    params: toml::Table,
    method: Arc<dyn ConversionMethod>,
}

impl fmt::Debug for MethodConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MethodConfig").field("kind", &self.kind).field("params", &self.params).finish()
    }
}

impl PartialEq for MethodConfig {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.params == other.params
    }
}

impl MethodConfig {
    /// A method object with checked parameters.
    pub fn new<M: RegisteredMethod>(method: M) -> Result<Self, String> {
        method.check()?;
        let params = match toml::Value::try_from(&method) {
            Ok(toml::Value::Table(t)) => t,
            Ok(_) => toml::Table::new(),
            Err(e) => return Err(format!("parameters do not serialize: {e}")),
        };
        Ok(Self { kind: M::KIND, params, method: Arc::new(method) })
    }

    /// Parses a `[[method]]` table (`kind` plus the kind's parameters).
    pub fn parse(table: &toml::Table) -> Result<Self, ConvertError> {
        let kind = kind_of(table);
        let entry = METHODS.find(kind).map_err(|valid| ConvertError::UnknownMethod { kind: kind.into(), valid })?;
        (entry.parse)(&params_of(table))
            .map_err(|reason| ConvertError::InvalidParameter { method: kind.into(), reason })
    }

    /// The `kind` string.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The parameters, every default filled in.
    pub fn params(&self) -> &toml::Table {
        &self.params
    }

    /// The method object.
    pub fn method(&self) -> &dyn ConversionMethod {
        self.method.as_ref()
    }

    /// Whether the method calibrates at a T of its own (see
    /// [`ConversionMethod::calibration_timesteps_param`]).
    pub fn calibrates_at_timesteps(&self) -> bool {
        self.method.calibration_timesteps_param().is_some()
    }

    /// The version of the method's code ([`ConversionMethod::version`]).
    pub fn version(&self) -> u32 {
        self.method.version()
    }

    /// The versions of the code a conversion with this method runs, by part, for cache keys:
    /// the method's, its neuron's (the method's default merged with `overrides.neuron`) and its
    /// readout's (`overrides.readout`, else what the method installs, else `accumulate`).
    /// Kinds nobody registered count as version 1 (conversion then fails with their name).
    pub fn code_versions(&self, overrides: &crate::SpecOverrides) -> CodeVersions {
        let neuron = snn::merge_neuron_config(&self.method.default_neuron(), &overrides.neuron);
        let readout = match kind_of(&overrides.readout) {
            "" => self
                .method
                .readout_kind()
                .unwrap_or(<snn::readout::accumulate::Accumulate as snn::RegisteredReadout>::KIND),
            kind => kind,
        };
        CodeVersions {
            method: self.version(),
            neuron: snn::neuron_version(kind_of(&neuron)).unwrap_or(1),
            readout: snn::readout_version(readout).unwrap_or(1),
        }
    }

    /// Whether the method must be converted at every evaluated T (see
    /// [`ConversionMethod::calibrates_at_each_eval_t`]).
    pub fn calibrates_at_each_eval_t(&self) -> bool {
        self.calibrates_at_timesteps() && self.method.calibrates_at_each_eval_t()
    }

    /// The same method calibrated at `timesteps` instead of its own calibration T; Ok(None)
    /// for methods that do not calibrate at a T, an error when the method rejects that T.
    pub fn with_calibration_timesteps(&self, timesteps: u32) -> Result<Option<MethodConfig>, ConvertError> {
        let Some(param) = self.method.calibration_timesteps_param() else {
            return Ok(None);
        };
        let mut table = self.params.clone();
        table.insert(param.into(), toml::Value::Integer(timesteps as i64));
        table.insert("kind".into(), toml::Value::String(self.kind.into()));
        MethodConfig::parse(&table).map(Some)
    }
}

impl Serialize for MethodConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.params.len() + 1))?;
        map.serialize_entry("kind", self.kind)?;
        for (k, v) in &self.params {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for MethodConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let table = toml::Table::deserialize(d)?;
        MethodConfig::parse(&table).map_err(serde::de::Error::custom)
    }
}

/// A threshold that will not divide by zero: dead layers/channels get `fallback`.
pub(crate) fn positive_or(theta: f32, fallback: f32) -> f32 {
    if theta > 0.0 && theta.is_finite() { theta } else { fallback }
}
