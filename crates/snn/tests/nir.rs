//! NIR export: the exported graph, run with NIR's discrete-time semantics by an independent
//! executor, gives the simulator's outputs; files round-trip; what NIR cannot express is an
//! error.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{grid_image, if_neuron, model, spiking};

use burn::prelude::*;
use snn::neuron::burst::Burst;
use snn::neuron::integrate_and_fire::IntegrateAndFire;
use snn::nir::{NirGraph, NirNode, read_nir, to_nir, write_nir};
use snn::readout::delayed::Delayed;
use snn::{FireRule, InitPotential, NeuronModel, Reset, SpikingNetwork, simulate_batch};
use zoo::{Convertible, GraphOp, reference_apply, tensor_from};

/// Runs a NIR graph for `steps` discrete steps on one input (the same at every step) and
/// returns the output summed over the steps. An edge from a node to itself or to an earlier
/// node is recurrent: it delivers the previous step's value. Integrators add `r·x` each step.
fn run_nir(g: &NirGraph, input: &[f32], steps: usize) -> Vec<f32> {
    let index: HashMap<&str, usize> = g.nodes.iter().enumerate().map(|(i, (n, _))| (n.as_str(), i)).collect();
    let n = g.nodes.len();
    let mut value: Vec<Vec<f32>> = vec![Vec::new(); n];
    let mut shape: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut state: Vec<Vec<f32>> = vec![Vec::new(); n];
    let mut total: Vec<f32> = Vec::new();
    for _ in 0..steps {
        let previous = value.clone();
        for (i, (name, node)) in g.nodes.iter().enumerate() {
            let mut x: Vec<f32> = Vec::new();
            let mut in_shape = Vec::new();
            for (from, _) in g.edges.iter().filter(|(_, to)| to == name) {
                let j = index[from.as_str()];
                let v = if j < i { &value[j] } else { &previous[j] };
                if j < i {
                    in_shape = shape[j].clone();
                }
                if v.is_empty() {
                    continue; // a recurrent edge at the first step
                }
                if x.is_empty() {
                    x = vec![0.0; v.len()];
                }
                x.iter_mut().zip(v).for_each(|(a, b)| *a += b);
            }
            let array = |a: &snn::nir::NirArray| a.values.clone();
            let (out, out_shape) = match node {
                NirNode::Input { shape } => (input.to_vec(), shape.iter().map(|&d| d as usize).collect()),
                NirNode::Output { .. } => {
                    if total.is_empty() {
                        total = vec![0.0; x.len()];
                    }
                    total.iter_mut().zip(&x).for_each(|(a, b)| *a += b);
                    (x, in_shape)
                }
                NirNode::Conv2d { input_shape, weight, bias, stride, padding, dilation, groups } => {
                    let u = |v: [i64; 2]| [v[0] as usize, v[1] as usize];
                    let [o, _, kh, kw] = weight.shape[..] else { panic!() };
                    let [h, w] = u(*input_shape);
                    let (s, p, dl) = (u(*stride), u(*padding), u(*dilation));
                    let oh = (h + 2 * p[0] - dl[0] * (kh - 1) - 1) / s[0] + 1;
                    let ow = (w + 2 * p[1] - dl[1] * (kw - 1) - 1) / s[1] + 1;
                    let op = GraphOp::Conv2d {
                        weight: weight.clone(),
                        bias: bias.values.clone(),
                        stride: s,
                        padding: p,
                        dilation: dl,
                        groups: *groups as usize,
                        input_hw: [h, w],
                    };
                    let out_shape = vec![o, oh, ow];
                    (reference_apply(&op, &out_shape, &x), out_shape)
                }
                NirNode::Affine { weight, bias } => {
                    let op = GraphOp::Affine { weight: weight.clone(), bias: bias.values.clone() };
                    let out_shape = vec![weight.shape[0]];
                    (reference_apply(&op, &out_shape, &x), out_shape)
                }
                NirNode::AvgPool2d { kernel_size, stride, padding } => {
                    assert_eq!(padding, &[0, 0]);
                    let [c, h, w] = in_shape[..] else { panic!("{name}: pooling a non-map {in_shape:?}") };
                    let (k, s) =
                        ([kernel_size[0] as usize, kernel_size[1] as usize], [stride[0] as usize, stride[1] as usize]);
                    let out_shape = vec![c, (h - k[0]) / s[0] + 1, (w - k[1]) / s[1] + 1];
                    let op = GraphOp::AvgPool2d { kernel: k, stride: s, input_hw: [h, w] };
                    (reference_apply(&op, &out_shape, &x), out_shape)
                }
                NirNode::Flatten { .. } => {
                    let len = x.len();
                    (x, vec![len])
                }
                NirNode::Integrator { r } => {
                    if state[i].is_empty() {
                        state[i] = vec![0.0; x.len()];
                    }
                    for ((v, xi), ri) in state[i].iter_mut().zip(&x).zip(array(r)) {
                        *v += ri * xi;
                    }
                    (state[i].clone(), in_shape)
                }
                NirNode::If { r, v_threshold, v_reset } => {
                    if state[i].is_empty() {
                        state[i] = vec![0.0; x.len()];
                    }
                    let mut z = vec![0.0; x.len()];
                    for e in 0..x.len() {
                        state[i][e] += r.values[e] * x[e];
                        if state[i][e] > v_threshold.values[e] {
                            z[e] = 1.0;
                            state[i][e] = v_reset.values[e];
                        }
                    }
                    (z, in_shape)
                }
                NirNode::Threshold { threshold } => {
                    (x.iter().zip(&threshold.values).map(|(v, t)| if v > t { 1.0 } else { 0.0 }).collect(), in_shape)
                }
                NirNode::Scale { scale } => (x.iter().zip(&scale.values).map(|(v, s)| v * s).collect(), in_shape),
            };
            value[i] = out;
            shape[i] = out_shape;
        }
    }
    total
}

fn check_runs_like_the_simulator(net: &SpikingNetwork, input: [usize; 3], steps: usize, what: &str) {
    let graph = to_nir(net, input, steps).unwrap();
    for seed in 0..2 {
        let image = grid_image(input, seed);
        let want = simulate_batch(
            net,
            tensor_from(image.clone(), [1, input[0], input[1], input[2]], &Device::flex()),
            &[0],
            steps,
            steps,
        );
        assert!(want.spikes.iter().flatten().sum::<u64>() > 0, "{what}: the test network must spike");
        let got = run_nir(&graph, &image, steps);
        assert_eq!(got.len(), want.final_output.len(), "{what}");
        for (a, b) in got.iter().zip(&want.final_output) {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{what}: NIR {got:?} vs simulator {:?}",
                want.final_output
            );
        }
    }
}

#[test]
fn an_exported_network_runs_like_the_simulator() {
    let cnn = [1, 12, 12];
    let small = || model("name = \"small-cnn\"", cnn);
    let soft = if_neuron(Reset::Soft, FireRule::GreaterEqual, false);
    check_runs_like_the_simulator(&spiking(small(), cnn, soft.clone()), cnn, 8, "small-cnn, soft reset, >=");
    let hard = if_neuron(Reset::Hard, FireRule::Greater, true);
    check_runs_like_the_simulator(&spiking(small(), cnn, hard), cnn, 8, "small-cnn, hard reset, >, input shift");
    let rgb = [3, 8, 8];
    let resnet = model("name = \"resnet20-he\"\nwidth = 0.25\nshortcut = \"pad\"", rgb);
    check_runs_like_the_simulator(&spiking(resnet, rgb, soft.clone()), rgb, 6, "resnet20-he, option-A shortcuts");
    let vgg = model("name = \"vgg16\"\nwidth = 0.125", [3, 32, 32]);
    check_runs_like_the_simulator(&spiking(vgg, [3, 32, 32], soft), [3, 32, 32], 4, "vgg16 x0.125");
}

#[test]
fn the_soft_reset_is_an_integrator_a_threshold_and_a_recurrent_scale() {
    let cnn = [1, 12, 12];
    let net = spiking(model("name = \"small-cnn\"", cnn), cnn, if_neuron(Reset::Soft, FireRule::GreaterEqual, false));
    let g = to_nir(&net, cnn, 8).unwrap();
    let node = |name: &str| &g.nodes.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no node {name}")).1;
    assert!(matches!(node("relu1"), NirNode::Integrator { .. }));
    let NirNode::Threshold { threshold } = node("relu1.spike") else { panic!() };
    let NirNode::Scale { scale } = node("relu1.amplitude") else { panic!() };
    let NirNode::Scale { scale: reset } = node("relu1.reset") else { panic!() };
    // Per element: channel 0's θ = 0.25 fires on v > next_down(0.25), i.e. v ≥ 0.25.
    assert_eq!(threshold.shape, vec![16, 12, 12]);
    assert_eq!((threshold.values[0], scale.values[0], reset.values[0]), (0.25f32.next_down(), 0.25, -0.25));
    assert_eq!(scale.values[144], 0.5, "channel 1's θ");
    for edge in
        [("relu1.spike", "relu1.reset"), ("relu1.reset", "relu1"), ("conv1", "relu1"), ("relu1.amplitude", "pool1")]
    {
        assert!(g.edges.contains(&(edge.0.into(), edge.1.into())), "edge {edge:?}");
    }
    // Slot 1's bias correction went into conv2's bias.
    let NirNode::Conv2d { bias, .. } = node("conv2") else { panic!() };
    let ann = net.model.layer_graph(cnn).unwrap();
    let zoo::GraphOp::Conv2d { bias: ann_bias, .. } = &ann.nodes.iter().find(|n| n.name == "conv2").unwrap().op else {
        panic!()
    };
    assert_eq!(bias.values[1], ann_bias[1] + 1.0 / 64.0);
}

#[test]
fn nir_files_round_trip() {
    let rgb = [3, 8, 8];
    let net = spiking(
        model("name = \"resnet20-he\"\nwidth = 0.25\nshortcut = \"conv\"", rgb),
        rgb,
        if_neuron(Reset::Hard, FireRule::GreaterEqual, false),
    );
    let mut graph = to_nir(&net, rgb, 4).unwrap();
    let bytes = write_nir(&graph).unwrap();
    let mut back = read_nir(bytes).unwrap();
    // The file stores nodes and metadata by name: compare in name order.
    for g in [&mut graph, &mut back] {
        g.nodes.sort_by(|a, b| a.0.cmp(&b.0));
        g.metadata.sort();
    }
    assert_eq!(back, graph);
    assert!(matches!(read_nir(b"not hdf5".to_vec()), Err(snn::nir::NirError::Hdf5(_))));
}

#[test]
fn what_nir_cannot_express_is_an_error() {
    let cnn = [1, 12, 12];
    let small = || model("name = \"small-cnn\"", cnn);
    let err = |net: &SpikingNetwork| to_nir(net, cnn, 8).unwrap_err().to_string();
    let burst: Arc<dyn NeuronModel> = Arc::new(toml::from_str::<Burst>("max_spikes = 2").unwrap());
    assert!(err(&spiking(small(), cnn, burst)).contains("burst"));
    let half = Arc::new(IntegrateAndFire { v_init: InitPotential::Half, ..Default::default() });
    assert!(err(&spiking(small(), cnn, half)).contains("initial state"));
    let mut calibrated = spiking(small(), cnn, if_neuron(Reset::Soft, FireRule::GreaterEqual, false));
    calibrated.layers[0].v_init = Some(vec![0.1; 16 * 144]);
    assert!(err(&calibrated).contains("slot 0"));
    let mut delayed = spiking(small(), cnn, if_neuron(Reset::Soft, FireRule::GreaterEqual, false));
    delayed.readout = Arc::new(Delayed { delay: 2 });
    assert!(err(&delayed).contains("readout"));
    let vgg = model("name = \"vgg16\"\nwidth = 0.125\npooling = \"max\"", [3, 32, 32]);
    let net = spiking(vgg, [3, 32, 32], if_neuron(Reset::Soft, FireRule::GreaterEqual, false));
    assert!(to_nir(&net, [3, 32, 32], 4).unwrap_err().to_string().contains("max pooling"));
}
