//! Spiking neurons, readouts and the simulation engine (no I/O).
//!
//! - [`neuron`]: neuron models, one file each, behind [`NeuronModel`]; they run on raw `f32`
//!   slices laid out `[steps, batch, channels, inner]`.
//! - [`readout`]: how the analog output layer's steps become predictions, one file each.
//! - [`nir`]: export of a converted network to NIR (the Neuromorphic Intermediate Representation).
//! - [`simulate`](mod@simulate): runs a zoo network with T folded into the batch dimension,
//!   replacing every activation slot by a layer of neurons, pipelined by each model's latency;
//!   on a GPU, plain integrate-and-fire layers step as tensor operations on the device
//!   ([`SimConfig::neurons_on_device`]).
//! - [`sparse`]: the event-driven engine: the same simulation on the network's layer graph,
//!   with synaptic work proportional to the spikes.

mod device_steps;
pub mod neuron;
pub mod nir;
pub mod readout;
pub mod registry;
mod simulate;
pub mod sparse;
mod stats;

pub use neuron::{
    Coding, Diagnostic, FireRule, InitPotential, LayerShape, NeuronError, NeuronKind, NeuronLayerSpec, NeuronModel,
    NeuronState, PlainIf, RateModel, RegisteredNeuron, Reset, RunInfo, SimRng, build_neuron, kind_table,
    merge_diagnostics, merge_neuron_config, neuron_kinds, neuron_version, register_neuron,
};
pub use readout::{
    Readout, ReadoutError, ReadoutKind, ReadoutState, RegisteredReadout, build_readout, readout_kinds, readout_version,
    register_readout,
};
pub use simulate::{
    SimConfig, SimInput, SimOutput, SpikingNetwork, replay_layer, simulate, simulate_batch, simulate_input,
    simulate_recording, simulate_slot_input,
};
pub use sparse::{KernelTiming, SparseError, SparseNetwork, SynapticLoad};
pub use stats::SampleStats;
