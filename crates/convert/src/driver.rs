//! The fixed conversion pipeline. It takes no algorithm parameters: everything
//! method-specific lives in the method's file. Activation statistics are only collected
//! when the method does not fit its thresholds by running the network itself.

use std::time::Instant;

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use snn::{FireRule, InitPotential, NeuronLayerSpec, NeuronOptions, Reset, SpikingNetwork};
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
    /// A slot never saw a single activation.
    #[error("slot `{slot}` was not reached by the calibration forward pass")]
    UnobservedSlot {
        /// Slot name.
        slot: String,
    },
}

/// Neuron settings a spec may override on top of the method's default neuron
/// (`[method.neuron]`); unset fields keep the method's choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeuronOverrides {
    /// `soft` or `hard`.
    pub reset: Option<Reset>,
    /// `zero` or `half`.
    pub v_init: Option<InitPotential>,
    /// `">="` or `">"`.
    pub fire: Option<FireRule>,
    /// Add θ/(2T) to the input each step.
    pub input_shift: Option<bool>,
    /// Spikes per step (burst; 2ⁿ − 1 for Lan's n-bit adaptive firing).
    pub max_spikes: Option<u32>,
    /// Lan et al.'s dynamic threshold on/off. (Later fields are left out of the serialized
    /// form when unset, so that the evaluation cache keys of existing specs do not change.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_threshold: Option<bool>,
    /// α of the dynamic threshold, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_threshold_alpha: Option<f32>,
}

impl NeuronOverrides {
    /// `base` with the overrides applied.
    pub fn apply(&self, base: NeuronOptions) -> NeuronOptions {
        NeuronOptions {
            reset: self.reset.unwrap_or(base.reset),
            v_init: self.v_init.unwrap_or(base.v_init),
            fire: self.fire.unwrap_or(base.fire),
            input_shift: self.input_shift.unwrap_or(base.input_shift),
            max_spikes: self.max_spikes.unwrap_or(base.max_spikes),
            dynamic_threshold: self.dynamic_threshold.unwrap_or(base.dynamic_threshold),
            dynamic_threshold_alpha: self.dynamic_threshold_alpha.unwrap_or(base.dynamic_threshold_alpha),
        }
    }
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
}

/// Converts a trained ANN. `calibration`: normalised training images `[n, C, H, W]`, in batches.
pub fn convert(
    model: &Network,
    method: &MethodConfig,
    neuron: &NeuronOverrides,
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
    method.validate()?;
    let m = method.method();
    m.check_model(model)?;
    let options = neuron.apply(m.default_neuron());
    let alpha = options.dynamic_threshold_alpha;
    if options.dynamic_threshold && !(0.0..=1.0).contains(&alpha) {
        return Err(ConvertError::InvalidParameter {
            method: method.kind().into(),
            reason: format!("dynamic_threshold_alpha must be in [0, 1], got {alpha}"),
        });
    }
    // prepare
    let folded = model.clone().fold_batchnorm();
    // thresholds fitted by running the network (LTB, QCFS), else from observed statistics
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
    let layers = thresholds.into_iter().map(|t| NeuronLayerSpec::new(options, t)).collect();
    // calibrate
    let mut network = SpikingNetwork::new(folded, layers);
    m.calibrate(&mut network, calibration)?;
    Ok(Conversion { network, slots, seconds: start.elapsed().as_secs_f64() })
}
