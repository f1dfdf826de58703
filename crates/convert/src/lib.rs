//! ANN-to-SNN conversion: a fixed pipeline ([`convert`]) and one file per method.
//!
//! Pipeline: validate → prepare (fold BN; pre-neuron max pooling is built into the zoo
//! models) → observe (activation statistics on calibration images) → thresholds (the
//! method) → build neurons → calibrate (the method; no-op by default) → finalize.
//! [`weight_calibration`]: SNN Calibration's layer-wise weight calibration (generic over the
//! zoo models).

pub mod calibrate;
mod driver;
pub mod iat;
pub mod methods;
mod observe;
pub mod pareto;
pub mod weight_calibration;

pub use driver::{Conversion, ConvertError, SpecOverrides, convert, method_neuron, spec_readout};
pub use methods::{
    CodeVersions, ConversionMethod, MeasureContext, MethodConfig, MethodKind, MethodMeasure, RegisteredMethod,
    method_kinds, register_method,
};
pub use observe::{ObserveHook, SlotStats, observe};
