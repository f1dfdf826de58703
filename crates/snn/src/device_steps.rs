//! Integrate-and-fire steps as tensor operations on the network's own device, for the dense
//! engine on a GPU (`--device wgpu`): the membrane potentials stay on the device from chunk to
//! chunk, a layer's outputs go straight to the next layer, and the only data that comes back to
//! the host are the spike counts per sample and step (`[steps × batch]` per slot), once per
//! batch at the end of the run. On the CPU the slice kernels of [`crate::neuron`] are faster
//! (no per-step kernel launches) and stay the default.
//!
//! Any neuron model that is a plain integrate-and-fire neuron ([`NeuronModel::plain_if`]) runs
//! here, with the host kernel's equations in the host kernel's float order, per element with
//! θ = θ_c and o = b_c + [input_shift] θ_c/(2T) of its channel:
//! ```text
//! v ← v + (x(t) + o);   s = [v ≥ θ] (or [v > θ]);   out = s·θ;
//! v ← v − s·θ (soft reset)  |  v ← v·(1 − s) (hard reset: 0 after a spike)
//! ```
//! from v(0) = fraction·θ plus the layer's per-element potential. Other models (bursts,
//! dynamic or adaptive thresholds, two-phase neurons) keep the host path.
//!
//! [`NeuronModel::plain_if`]: crate::NeuronModel::plain_if

use burn::prelude::*;
use zoo::{tensor_from, tensor_values};

use crate::neuron::{
    FireRule, LayerShape, NeuronLayerSpec, PlainIf, Reset, RunInfo, channel_offsets, initial_membrane,
};

/// A layer of plain integrate-and-fire neurons whose state lives on the device.
pub(crate) struct DeviceIf {
    /// Membrane potentials `[batch, C, H, W]`.
    membrane: Tensor<4>,
    /// θ of each element's channel, `[batch, C, H, W]` (comparisons need equal shapes).
    theta: Tensor<4>,
    /// Per-step input offset o of each element's channel, `[batch, C, H, W]`.
    offset: Tensor<4>,
    reset: Reset,
    fire: FireRule,
    /// Spikes per sample of each step run so far, one `[steps · batch]` tensor per chunk.
    counts: Vec<Tensor<1>>,
}

impl DeviceIf {
    /// The layer's state for one step's tensor shape `dims` = `[batch, C, H, W]` on `device`.
    pub(crate) fn new(
        layer: &NeuronLayerSpec,
        plain: PlainIf,
        dims: [usize; 4],
        run: RunInfo,
        device: &Device,
    ) -> Self {
        let [batch, channels, h, w] = dims;
        let shape = LayerShape { batch, channels, inner: h * w };
        let per_channel = channel_offsets(layer, shape, run, plain.input_shift);
        let expand = |pick: fn(&(f32, f32)) -> f32| {
            let one: Vec<f32> = per_channel.iter().flat_map(|c| std::iter::repeat_n(pick(c), h * w)).collect();
            tensor_from(one.repeat(batch), dims, device)
        };
        Self {
            membrane: tensor_from(initial_membrane(layer, shape, plain.initial_potential), dims, device),
            theta: expand(|c| c.0),
            offset: expand(|c| c.1),
            reset: plain.reset,
            fire: plain.fire,
            counts: Vec::new(),
        }
    }

    /// Runs the steps of one chunk. `x`: `[steps · batch, C, H, W]`, step-major; returns the
    /// outputs s·θ in the same layout.
    pub(crate) fn run(&mut self, x: Tensor<4>) -> Tensor<4> {
        let batch = self.membrane.dims()[0];
        let steps = x.dims()[0] / batch;
        let mut outputs = Vec::with_capacity(steps);
        let mut counts = Vec::with_capacity(steps);
        for t in 0..steps {
            let input = x.clone().narrow(0, t * batch, batch) + self.offset.clone();
            let v = self.membrane.clone() + input;
            let fired = match self.fire {
                FireRule::GreaterEqual => v.clone().greater_equal(self.theta.clone()),
                FireRule::Greater => v.clone().greater(self.theta.clone()),
            }
            .float();
            self.membrane = match self.reset {
                Reset::Soft => v - fired.clone() * self.theta.clone(),
                Reset::Hard => v * fired.clone().neg().add_scalar(1.0),
            };
            counts.push(fired.clone().sum_dims(&[1, 2, 3]).reshape([batch]));
            outputs.push(fired * self.theta.clone());
        }
        self.counts.push(Tensor::cat(counts, 0));
        Tensor::cat(outputs, 0)
    }

    /// The spikes each sample emitted at each step run so far, `[steps × batch]` (the layout of
    /// [`crate::NeuronState::run`]'s counts): the one read back to the host.
    pub(crate) fn spike_counts(&mut self) -> Vec<u32> {
        if self.counts.is_empty() {
            return Vec::new();
        }
        let all = Tensor::cat(std::mem::take(&mut self.counts), 0);
        tensor_values(all).into_iter().map(|c| c as u32).collect()
    }
}
