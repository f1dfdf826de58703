//! `analog`: the ANN's ReLU in a neuron's place, for analyses that keep a network exact up to
//! a layer and spiking after it (Lan et al. 2023's fidelity question: which layer loses what).
//!
//! Per element, at every step t: `out(t) = max(x(t), 0)`. No membrane, no threshold, no
//! spikes (it reports none); the layer's thresholds, bias corrections and initial potentials,
//! which are corrections of spiking neurons, are ignored. When every layer before it is
//! analog too, x(t) is the ANN's pre-activation at every step and the output is the ANN's
//! activation exactly. Its [`RateModel`] is a plain IF's and means nothing: calibrations do
//! not run on analog layers.
//!
//! Spec: `[method.neuron] kind = "analog"` (no parameters); `[eval] exact_prefix_analysis`
//! puts it in the first k slots of a converted network.

use serde::{Deserialize, Serialize};

use super::{Coding, LayerShape, NeuronLayerSpec, NeuronModel, NeuronState, RateModel, RegisteredNeuron, RunInfo, config_table};

/// The analog (ReLU) stand-in for a neuron layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Analog {}

impl RegisteredNeuron for Analog {
    const KIND: &'static str = "analog";
    const DESCRIPTION: &'static str =
        "the ANN's ReLU in a neuron's place, max(x, 0) every step, no spikes (analyses of exact-prefix networks)";
}

impl NeuronModel for Analog {
    fn kind(&self) -> &'static str {
        Self::KIND
    }
    fn config(&self) -> toml::Table {
        config_table(Self::KIND, self)
    }
    fn new_state(&self, _layer: &NeuronLayerSpec, shape: LayerShape, _run: RunInfo) -> Box<dyn NeuronState> {
        Box::new(AnalogState { shape })
    }
    fn rate_model(&self) -> RateModel {
        RateModel { max_spikes_per_step: 1, input_shift: false, initial_potential: 0.0, coding: Coding::Rate }
    }
}

struct AnalogState {
    shape: LayerShape,
}

impl NeuronState for AnalogState {
    fn run(&mut self, data: &mut [f32], spikes: &mut Vec<u32>) {
        for x in data.iter_mut() {
            *x = x.max(0.0);
        }
        let samples_steps = data.len() / self.shape.per_sample().max(1);
        spikes.extend(std::iter::repeat_n(0, samples_steps));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn outputs_the_relu_of_its_input_at_every_step_and_no_spikes() {
        let layer = NeuronLayerSpec::new(Arc::new(Analog {}), vec![0.25]);
        let shape = LayerShape { batch: 2, channels: 1, inner: 2 };
        let mut state = layer.new_state(shape, RunInfo { timesteps: 3, seed: 0 });
        // 3 steps × 2 samples × 2 elements.
        let mut data = vec![-1.0, 0.5, 2.0, -0.0, 3.0, -2.5, 0.1, 7.0, -0.1, 0.0, 1.5, -9.0];
        let want: Vec<f32> = data.iter().map(|x: &f32| x.max(0.0)).collect();
        let mut spikes = Vec::new();
        state.run(&mut data, &mut spikes);
        assert_eq!(data, want, "max(x, 0), whatever the threshold");
        assert_eq!(spikes, vec![0; 6], "one count per sample and step, all zero");
    }
}
