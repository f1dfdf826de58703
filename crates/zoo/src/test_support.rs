//! Checks shared by the models' unit tests.

use burn::prelude::*;

use crate::{Convertible, ForwardCtx, Network, SlotHook, tensor_values};

/// A slot hook applying ReLU and recording the order the slots were called in.
pub(crate) struct RecordingRelu(pub(crate) Vec<usize>);

impl SlotHook for RecordingRelu {
    fn apply(&mut self, slot: usize, x: Tensor<4>) -> Tensor<4> {
        self.0.push(slot);
        burn::tensor::activation::relu(x)
    }
}

/// The slot contract of a ReLU network on input `x`: a forward through a ReLU hook equals the
/// plain forward, every listed slot is called once in order (`slots` of them), every slot's
/// consumers are traced layers, and the last traced layer is `last_layer`.
pub(crate) fn check_slot_contract(net: &Network, x: Tensor<4>, slots: usize, last_layer: &str) {
    let plain = tensor_values(net.forward(x.clone()));
    let mut hook = RecordingRelu(vec![]);
    let hooked = tensor_values(net.forward_ctx(x.clone(), &mut ForwardCtx::with_hook(&mut hook)));
    assert_eq!(plain, hooked);
    let listed = net.slots();
    assert_eq!(listed.len(), slots);
    assert_eq!(hook.0, (0..slots).collect::<Vec<_>>());
    let mut trace = ForwardCtx::tracing();
    let _ = net.forward_ctx(x, &mut trace);
    let layers: Vec<String> = trace.take_trace().into_iter().map(|l| l.name).collect();
    assert_eq!(layers.last().map(String::as_str), Some(last_layer));
    for s in &listed {
        for c in &s.consumers {
            assert!(layers.contains(c), "consumer {c} of {} is not traced", s.name);
        }
    }
}
