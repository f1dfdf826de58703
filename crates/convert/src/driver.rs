//! The fixed conversion pipeline. It takes no algorithm parameters: everything
//! method-specific lives in the method's file, neuron-specific in the neuron's. Activation statistics are only collected
//! when the method does not fit its thresholds by running the network itself.

use std::time::Instant;

use burn::prelude::*;
use snn::{NeuronLayerSpec, SpikingNetwork, build_neuron, build_readout, merge_neuron_config};
use zoo::{Convertible, Network, SlotInfo};

use crate::{MethodConfig, observe};

/// Conversion errors.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The network has no activation slots.
    #[error("the network has no activation slots to convert")]
    NoSlots,
    /// No calibration data was given.
    #[error("conversion needs at least one calibration batch")]
    NoCalibration,
    /// A method parameter is out of range.
    #[error("method `{method}`: {reason}")]
    InvalidParameter {
        /// The method kind.
        method: String,
        /// What is wrong.
        reason: String,
    },
    /// No `kind`, or an unknown one.
    #[error("unknown method kind `{kind}`; valid kinds: {valid}")]
    UnknownMethod {
        /// What was given.
        kind: String,
        /// The registered kinds.
        valid: String,
    },
    /// The neuron (`[method.neuron]`) does not build.
    #[error("method `{method}`: in `neuron`: {source}")]
    Neuron {
        /// The method kind.
        method: String,
        /// Why.
        source: snn::NeuronError,
    },
    /// The readout (`[method.readout]`) does not build.
    #[error("method `{method}`: in `readout`: {source}")]
    Readout {
        /// The method kind.
        method: String,
        /// Why.
        source: snn::ReadoutError,
    },
    /// A slot never saw a single activation.
    #[error("slot `{slot}` was not reached by the calibration forward pass")]
    UnobservedSlot {
        /// Slot name.
        slot: String,
    },
}

/// A converted network and how it was obtained.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The spiking network.
    pub network: SpikingNetwork,
    /// Slot descriptions, in slot order.
    pub slots: Vec<SlotInfo>,
    /// Wall-clock seconds the conversion took (BN folding to finalize).
    pub seconds: f64,
    /// One-off rows the method's calibration reported (see `ConversionMethod::calibrate`).
    pub records: Vec<crate::MethodMeasure>,
}

/// What a spec sets on top of a method: `[method.neuron]` (merged over the method's own
/// neuron table; see `snn::merge_neuron_config`) and `[method.readout]` (replaces the
/// method's readout). Empty tables leave the method's choices.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpecOverrides {
    /// `[method.neuron]`.
    pub neuron: toml::Table,
    /// `[method.readout]`.
    pub readout: toml::Table,
}

/// The neuron model `method` converts to, with the spec's `[method.neuron]` applied.
pub fn method_neuron(
    method: &MethodConfig,
    overrides: &toml::Table,
) -> Result<std::sync::Arc<dyn snn::NeuronModel>, ConvertError> {
    let table = merge_neuron_config(&method.method().default_neuron(), overrides);
    build_neuron(&table).map_err(|source| ConvertError::Neuron { method: method.kind().into(), source })
}

/// The readout the spec's `[method.readout]` names (None: keep the method's).
pub fn spec_readout(
    method: &MethodConfig,
    table: &toml::Table,
) -> Result<Option<std::sync::Arc<dyn snn::Readout>>, ConvertError> {
    if table.is_empty() {
        return Ok(None);
    }
    build_readout(table).map(Some).map_err(|source| ConvertError::Readout { method: method.kind().into(), source })
}

/// Converts a trained ANN. `calibration`: normalised training images `[n, C, H, W]`, in batches.
pub fn convert(
    model: &Network,
    method: &MethodConfig,
    overrides: &SpecOverrides,
    calibration: &[Tensor<4>],
) -> Result<Conversion, ConvertError> {
    let start = Instant::now();
    // validate
    let slots = model.slots();
    if slots.is_empty() {
        return Err(ConvertError::NoSlots);
    }
    if calibration.is_empty() {
        return Err(ConvertError::NoCalibration);
    }
    let m = method.method();
    m.check_model(model)?;
    let neuron = method_neuron(method, &overrides.neuron)?;
    let readout = spec_readout(method, &overrides.readout)?;
    // prepare
    let folded = model.clone().fold_batchnorm();
    // thresholds fitted by running the network (threshold balancing, QCFS), else from observed statistics
    let fitted: Vec<Vec<f32>> = m.fit_thresholds(&folded, calibration).unwrap_or_default();
    let complete = fitted.len() >= slots.len() && fitted.iter().all(|t| !t.is_empty());
    let thresholds: Vec<Vec<f32>> = if complete {
        fitted
    } else {
        let stats = observe(&folded, calibration);
        if stats.len() < slots.len() {
            return Err(ConvertError::UnobservedSlot { slot: slots[stats.len()].name.clone() });
        }
        stats
            .iter()
            .enumerate()
            .map(|(i, s)| fitted.get(i).filter(|t| !t.is_empty()).cloned().unwrap_or_else(|| m.thresholds(s)))
            .collect()
    };
    // build neurons
    let layers = thresholds.into_iter().map(|t| NeuronLayerSpec::new(neuron.clone(), t)).collect();
    // calibrate
    let mut network = SpikingNetwork::new(folded, layers);
    let mut records = m.calibrate(&mut network, calibration)?;
    for r in &mut records {
        if let Some(slot) = r.slot.and_then(|s| slots.get(s)) {
            r.layer = slot.name.clone();
        }
    }
    // finalize
    if let Some(readout) = readout {
        network.readout = readout;
    }
    Ok(Conversion { network, slots, seconds: start.elapsed().as_secs_f64(), records })
}
