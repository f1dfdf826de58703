//! Spiking neurons and the simulation engine (no I/O).
//!
//! Neurons run on raw `f32` slices laid out `[steps, batch, channels, inner]`; the engine
//! runs a zoo network with T folded into the batch dimension, replacing every activation
//! slot by a layer of neurons, and accumulates the analog output of the last layer.

mod if_neuron;
mod simulate;

pub use if_neuron::{
    FireRule, InitPotential, LayerNeurons, NeuronLayerSpec, NeuronOptions, OmegaStats, Reset, dynamic_threshold_factor,
};
pub use simulate::{SimOutput, SpikingNetwork, simulate_batch, simulate_recording, simulate_slot_input};
