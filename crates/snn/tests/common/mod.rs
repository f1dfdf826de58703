//! Test networks shared by the integration tests: weights, thresholds and images on a
//! power-of-two grid, so every sum is exact in f32 whatever the summation order and no spike
//! can flip between two implementations of the same dynamics.
#![allow(dead_code)]

use std::sync::Arc;

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use snn::neuron::integrate_and_fire::IntegrateAndFire;
use snn::{FireRule, InitPotential, NeuronLayerSpec, NeuronModel, Reset, SpikingNetwork};
use zoo::{Convertible, ModelSpec, Network, build_model, tensor_from};

/// Rounds every parameter to a multiple of 1/64, so that every sum in the test networks is
/// exact in f32 whatever the summation order, and no spike can flip between implementations.
struct Grid;
impl ModuleMapper for Grid {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| (t * 64.0).round() / 64.0)
    }
}

pub fn model(toml_spec: &str, input: [usize; 3]) -> Network {
    let d = Device::flex();
    d.seed(11);
    let spec: ModelSpec = toml::from_str(toml_spec).unwrap();
    build_model(&spec, input, 4, &d).unwrap().fold_batchnorm().map(&mut Grid)
}

/// Thresholds 0.25–1.0 per channel (a grid value), a bias correction on slot 1.
pub fn spiking(model: Network, input: [usize; 3], neuron: Arc<dyn NeuronModel>) -> SpikingNetwork {
    let d = Device::flex();
    let x = tensor_from(vec![0.0; input.iter().product()], [1, input[0], input[1], input[2]], &d);
    let channels = channels_per_slot(&model, x);
    let layers = channels
        .iter()
        .enumerate()
        .map(|(slot, &c)| {
            let mut l =
                NeuronLayerSpec::new(neuron.clone(), (0..c).map(|k| 0.25 * (1 + (k + slot) % 4) as f32).collect());
            if slot == 1 {
                l.bias = Some((0..c).map(|k| (k % 3) as f32 / 64.0).collect());
            }
            l
        })
        .collect();
    SpikingNetwork::new(model, layers)
}

pub fn channels_per_slot(model: &Network, x: Tensor<4>) -> Vec<usize> {
    struct Channels(Vec<usize>);
    impl zoo::SlotHook for Channels {
        fn apply(&mut self, _slot: usize, x: Tensor<4>) -> Tensor<4> {
            self.0.push(x.dims()[1]);
            burn::tensor::activation::relu(x)
        }
    }
    let mut hook = Channels(Vec::new());
    model.forward_ctx(x, &mut zoo::ForwardCtx::with_hook(&mut hook));
    hook.0
}

/// An image on the grid (multiples of 1/16 in [−0.5, 1.5]).
pub fn grid_image(input: [usize; 3], seed: usize) -> Vec<f32> {
    (0..input.iter().product::<usize>()).map(|i| (((i * 7 + seed * 13) % 33) as f32 - 8.0) / 16.0).collect()
}

pub fn if_neuron(reset: Reset, fire: FireRule, input_shift: bool) -> Arc<dyn NeuronModel> {
    Arc::new(IntegrateAndFire { reset, v_init: InitPotential::Zero, fire, input_shift })
}
