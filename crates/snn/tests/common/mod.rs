//! Test networks shared by the integration tests: weights, thresholds and images on a
//! power-of-two grid, so every sum is exact in f32 whatever the summation order and no spike
//! can flip between two implementations of the same dynamics.
#![allow(dead_code)]

use std::sync::Arc;

use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use snn::neuron::integrate_and_fire::IntegrateAndFire;
use snn::{FireRule, InitPotential, NeuronLayerSpec, NeuronModel, Reset, SimOutput, SpikingNetwork};
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
    let channels: Vec<usize> = slot_shapes(&model, x).iter().map(|s| s[0]).collect();
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

/// `[C, H, W]` of every activation slot's input, in slot order.
pub fn slot_shapes(model: &Network, x: Tensor<4>) -> Vec<[usize; 3]> {
    struct Shapes(Vec<[usize; 3]>);
    impl zoo::SlotHook for Shapes {
        fn apply(&mut self, _slot: usize, x: Tensor<4>) -> Tensor<4> {
            let [_, c, h, w] = x.dims();
            self.0.push([c, h, w]);
            burn::tensor::activation::relu(x)
        }
    }
    let mut hook = Shapes(Vec::new());
    model.forward_ctx(x, &mut zoo::ForwardCtx::with_hook(&mut hook));
    hook.0
}

/// An image on the grid (multiples of 1/16 in [−0.5, 1.5]).
pub fn grid_image(input: [usize; 3], seed: usize) -> Vec<f32> {
    (0..input.iter().product::<usize>()).map(|i| (((i * 7 + seed * 13) % 33) as f32 - 8.0) / 16.0).collect()
}

/// `n` grid images ([`grid_image`] with seeds 0..n), `[n, C, H, W]`.
pub fn grid_images(input: [usize; 3], n: usize) -> Tensor<4> {
    let values: Vec<f32> = (0..n).flat_map(|i| grid_image(input, i)).collect();
    tensor_from(values, [n, input[0], input[1], input[2]], &Device::flex())
}

/// Two simulations of the same dynamics agree on every count: spikes per slot and step,
/// spikes per sample, accuracy per step, exit steps and neurons per slot (and `want` spikes).
pub fn assert_same_counts(got: &SimOutput, want: &SimOutput, what: &str) {
    assert!(want.spikes.iter().flatten().sum::<u64>() > 0, "{what}: the test network must spike");
    assert_eq!(got.spikes, want.spikes, "{what}: spikes per slot and step");
    assert_eq!(got.sample_spikes, want.sample_spikes, "{what}: spikes per sample");
    assert_eq!(got.correct_at_t, want.correct_at_t, "{what}: accuracy per step");
    assert_eq!(got.exit_steps, want.exit_steps, "{what}: exit steps");
    assert_eq!(got.neurons, want.neurons, "{what}: neurons per slot");
}

pub fn if_neuron(reset: Reset, fire: FireRule, input_shift: bool) -> Arc<dyn NeuronModel> {
    Arc::new(IntegrateAndFire { reset, v_init: InitPotential::Zero, fire, input_shift })
}
