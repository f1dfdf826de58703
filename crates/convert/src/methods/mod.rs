//! Conversion methods: one file each, one [`MethodConfig`] variant each.

mod channel_norm;
mod lan2023;
mod ltb;
mod max_norm;
mod opt_shift;
mod qcfs;
mod robust_norm;
mod snn_calibration;

pub use channel_norm::ChannelNorm;
pub use lan2023::{KL_GRID_POINTS, Lan2023, ThresholdInit, kl_grid};
pub use ltb::{ClipHook, Correction, Ltb, estimate_delay};
pub use max_norm::MaxNorm;
pub use opt_shift::OptShift;
pub use qcfs::Qcfs;
pub use robust_norm::RobustNorm;
pub use snn_calibration::{CalibrationMode, SnnCalibration};

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use snn::{NeuronOptions, SpikingNetwork};
use zoo::Network;

use crate::{ConvertError, SlotStats};

/// A conversion method. Only [`ConversionMethod::thresholds`] is required; the driver runs
/// the rest of the fixed pipeline.
pub trait ConversionMethod {
    /// Thresholds for one slot from its activation statistics: 1 value (layer-wise) or one
    /// per channel.
    fn thresholds(&self, stats: &SlotStats) -> Vec<f32>;
    /// The neuron the method was published with (spec `[method.neuron]` overrides it).
    fn default_neuron(&self) -> NeuronOptions {
        NeuronOptions::default()
    }
    /// Rejects a model the method cannot convert (e.g. QCFS needs a QCFS-trained ANN).
    fn check_model(&self, _model: &Network) -> Result<(), ConvertError> {
        Ok(())
    }
    /// Thresholds fitted by running the (BN-folded) ANN itself, for methods that do not work
    /// from activation statistics (LTB). `None` (default): use [`ConversionMethod::thresholds`].
    fn fit_thresholds(&self, _model: &Network, _calibration: &[Tensor<4>]) -> Option<Vec<Vec<f32>>> {
        None
    }
    /// Adjusts the built network using the calibration images (bias correction, potential
    /// initialisation, ...). No-op by default.
    fn calibrate(&self, _net: &mut SpikingNetwork, _calibration: &[Tensor<4>]) -> Result<(), ConvertError> {
        Ok(())
    }
}

/// Every `kind` a spec's `[[method]]` may name.
pub const METHOD_KINDS: &[(&str, &str)] = &[
    ("max-norm", "layer threshold = max ReLU activation (Diehl 2015 / Rueckauer 2017)"),
    ("robust-norm", "layer threshold = p-th percentile of positive activations, p = 99.9 (Rueckauer 2017)"),
    ("channel-norm", "per-channel threshold = p-th percentile (p = 100: max) (Kim 2020)"),
    ("ltb", "local threshold balancing (+ channel_wise = CLTB, + delayed_evaluation = DE) (paper 002)"),
    ("qcfs", "θ = the learned QCFS λ, v(0) = θ/2; needs [model] activation = \"qcfs\" (Bu 2022)"),
    (
        "opt-shift",
        "θ = max of the (clipped) activation, θ/(2T) input shift; [model] activation = \"clip\" (Deng & Gu 2021)",
    ),
    (
        "snn-calibration",
        "threshold search + bias correction (light) [+ potential init (advanced)] [+ weight calibration] (Li 2021)",
    ),
    (
        "lan2023",
        "KL threshold init + bias adjustment; dynamic threshold + n-bit adaptive firing (Lan ICCV 2023, paper 000)",
    ),
];

/// A method and its parameters, tagged by `kind` in the spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum MethodConfig {
    /// [`MaxNorm`].
    MaxNorm(MaxNorm),
    /// [`RobustNorm`].
    RobustNorm(RobustNorm),
    /// [`ChannelNorm`].
    ChannelNorm(ChannelNorm),
    /// [`SnnCalibration`].
    SnnCalibration(SnnCalibration),
    /// [`Ltb`].
    Ltb(Ltb),
    /// [`Qcfs`].
    Qcfs(Qcfs),
    /// [`OptShift`].
    OptShift(OptShift),
    /// [`Lan2023`].
    #[serde(rename = "lan2023")]
    Lan2023(Lan2023),
}

impl MethodConfig {
    /// The method object.
    pub fn method(&self) -> &dyn ConversionMethod {
        match self {
            MethodConfig::MaxNorm(m) => m,
            MethodConfig::RobustNorm(m) => m,
            MethodConfig::ChannelNorm(m) => m,
            MethodConfig::SnnCalibration(m) => m,
            MethodConfig::Ltb(m) => m,
            MethodConfig::Qcfs(m) => m,
            MethodConfig::OptShift(m) => m,
            MethodConfig::Lan2023(m) => m,
        }
    }

    /// Checks parameter ranges.
    pub fn validate(&self) -> Result<(), crate::ConvertError> {
        let bad = |reason: String| Err(crate::ConvertError::InvalidParameter { method: self.kind().into(), reason });
        match self {
            MethodConfig::RobustNorm(RobustNorm { percentile })
            | MethodConfig::ChannelNorm(ChannelNorm { percentile })
                if !(*percentile > 0.0 && *percentile <= 100.0) =>
            {
                bad(format!("percentile must be in (0, 100], got {percentile}"))
            }
            MethodConfig::SnnCalibration(c) if c.timesteps == 0 || c.correction_images == 0 => {
                bad("timesteps and correction_images must be at least 1".into())
            }
            MethodConfig::SnnCalibration(c)
                if c.weight_calibration_iterations == 0
                    || c.weight_calibration_batch == 0
                    || c.weight_calibration_samples == 0 =>
            {
                bad("weight_calibration_iterations, _batch and _samples must be at least 1".into())
            }
            MethodConfig::SnnCalibration(c)
                if !(c.weight_calibration_lr.is_finite() && c.weight_calibration_lr > 0.0) =>
            {
                bad(format!("weight_calibration_lr must be positive, got {}", c.weight_calibration_lr))
            }
            MethodConfig::Ltb(l) if l.iterations == 0 || !l.eta.is_finite() || l.eta <= 0.0 => {
                bad("iterations must be at least 1 and eta positive".into())
            }
            MethodConfig::Ltb(l) if l.correction_timesteps == 0 || l.correction_images == 0 => {
                bad("correction_timesteps and correction_images must be at least 1".into())
            }
            MethodConfig::Lan2023(l) => l.check().map_or_else(bad, Ok),
            _ => Ok(()),
        }
    }

    /// The same method calibrated at `timesteps` instead of its own calibration T, for methods
    /// whose conversion simulates at a T (`lan2023`, `snn-calibration`); None for the others.
    pub fn with_calibration_timesteps(&self, timesteps: u32) -> Option<MethodConfig> {
        match self {
            MethodConfig::Lan2023(l) => Some(MethodConfig::Lan2023(Lan2023 { timesteps, ..l.clone() })),
            MethodConfig::SnnCalibration(c) => {
                Some(MethodConfig::SnnCalibration(SnnCalibration { timesteps, ..c.clone() }))
            }
            _ => None,
        }
    }

    /// The `kind` string.
    pub fn kind(&self) -> &'static str {
        match self {
            MethodConfig::MaxNorm(_) => "max-norm",
            MethodConfig::RobustNorm(_) => "robust-norm",
            MethodConfig::ChannelNorm(_) => "channel-norm",
            MethodConfig::SnnCalibration(_) => "snn-calibration",
            MethodConfig::Ltb(_) => "ltb",
            MethodConfig::Qcfs(_) => "qcfs",
            MethodConfig::OptShift(_) => "opt-shift",
            MethodConfig::Lan2023(_) => "lan2023",
        }
    }
}

/// A threshold that will not divide by zero: dead layers/channels get `fallback`.
pub(crate) fn positive_or(theta: f32, fallback: f32) -> f32 {
    if theta > 0.0 && theta.is_finite() { theta } else { fallback }
}
