//! The layer graph of a network: its synaptic layers, pooling and activation slots as nodes,
//! the data flow as edges. It is what a converted network is exported from (NIR): the models
//! describe their structure once here instead of every exporter re-reading their fields.
//!
//! Conventions (those of NIR and PyTorch): shapes exclude the batch dimension (`[c, h, w]` for
//! feature maps, `[features]` after a flatten); conv weights are `[out, in/groups, kh, kw]`;
//! affine weights are `[out, in]` (burn stores `[in, out]`: the graph transposes them); edges
//! into one node are summed (the residual add of a ResNet block).

use std::collections::HashMap;

use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};

use crate::tensor_values;

/// A network as nodes and edges, nodes in forward order.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerGraph {
    /// Nodes in forward (topological) order; names are unique.
    pub nodes: Vec<GraphNode>,
    /// `(from, to)` node names; several edges into one node are summed.
    pub edges: Vec<(String, String)>,
}

/// One node of a [`LayerGraph`].
#[derive(Clone, Debug, PartialEq)]
pub struct GraphNode {
    /// Unique name (the PyTorch state-dict path of the layer where one exists).
    pub name: String,
    /// What the node computes.
    pub op: GraphOp,
    /// Shape of the node's output (batch excluded).
    pub output_shape: Vec<usize>,
}

/// A tensor of weights, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

impl Weights {
    /// `values` with dimensions `shape` (their product must be `values.len()`).
    pub fn new(shape: Vec<usize>, values: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len());
        Self { shape, values }
    }

    /// A tensor of dimensions `shape` holding `value` everywhere.
    pub fn filled(shape: &[usize], value: f32) -> Self {
        Self::new(shape.to_vec(), vec![value; shape.iter().product()])
    }
}

/// What a [`GraphNode`] computes.
#[derive(Clone, Debug, PartialEq)]
pub enum GraphOp {
    /// The network input (`output_shape` = `[c, h, w]`).
    Input,
    /// 2-D convolution `y = W ⋆ x + b`, weight `[out, in/groups, kh, kw]`, symmetric zero padding.
    Conv2d {
        /// `[out, in/groups, kh, kw]`.
        weight: Weights,
        /// One per output channel (zeros when the layer has none).
        bias: Vec<f32>,
        /// `[sh, sw]`.
        stride: [usize; 2],
        /// `[ph, pw]`, applied on both sides.
        padding: [usize; 2],
        /// `[dh, dw]`.
        dilation: [usize; 2],
        /// Channel groups.
        groups: usize,
        /// `[h, w]` of the input.
        input_hw: [usize; 2],
    },
    /// `y = W x + b`, weight `[out, in]`.
    Affine {
        /// `[out, in]`.
        weight: Weights,
        /// `[out]`.
        bias: Vec<f32>,
    },
    /// Average pooling without padding.
    AvgPool2d {
        /// `[kh, kw]`.
        kernel: [usize; 2],
        /// `[sh, sw]`.
        stride: [usize; 2],
        /// `[h, w]` of the input.
        input_hw: [usize; 2],
    },
    /// `[c, h, w]` → `[c·h·w]`, row-major.
    Flatten {
        /// Shape of the input.
        input_shape: Vec<usize>,
    },
    /// Activation slot `slot` (a ReLU in the ANN, the spiking neurons after conversion).
    Slot {
        /// Slot index in forward order.
        slot: usize,
    },
    /// The network output (the logits; `output_shape` = `[classes]`).
    Output,
}

/// Why a network has no layer graph.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// The model (or one of its layers) has no form in the graph's primitives.
    #[error("{model}: {reason}")]
    Unsupported {
        /// The model.
        model: String,
        /// What cannot be expressed.
        reason: String,
    },
}

/// Builds a [`LayerGraph`], tracking each node's output shape.
pub(crate) struct GraphBuilder {
    model: &'static str,
    graph: LayerGraph,
    shapes: HashMap<String, Vec<usize>>,
}

impl GraphBuilder {
    /// A graph of `model` with its input node `input` of shape `[c, h, w]`.
    pub(crate) fn new(model: &'static str, input: [usize; 3]) -> Self {
        let mut b = Self { model, graph: LayerGraph { nodes: Vec::new(), edges: Vec::new() }, shapes: HashMap::new() };
        b.push("input", GraphOp::Input, input.to_vec(), &[]);
        b
    }

    /// An error naming the model.
    pub(crate) fn unsupported(&self, reason: impl Into<String>) -> GraphError {
        GraphError::Unsupported { model: self.model.into(), reason: reason.into() }
    }

    fn shape(&self, node: &str) -> &[usize] {
        &self.shapes[node]
    }

    /// The output shape of node `node`.
    pub(crate) fn output_shape(&self, node: &str) -> Vec<usize> {
        self.shape(node).to_vec()
    }

    fn push(&mut self, name: &str, op: GraphOp, output_shape: Vec<usize>, from: &[&str]) -> String {
        assert!(!self.shapes.contains_key(name), "graph node `{name}` defined twice");
        for f in from {
            self.graph.edges.push(((*f).to_string(), name.to_string()));
        }
        self.shapes.insert(name.to_string(), output_shape.clone());
        self.graph.nodes.push(GraphNode { name: name.into(), op, output_shape });
        name.to_string()
    }

    /// A convolution (BN must be folded: `bn` is `None`) fed by `from`.
    pub(crate) fn conv(
        &mut self,
        name: &str,
        conv: &Conv2d,
        bn: Option<&BatchNorm>,
        from: &str,
    ) -> Result<String, GraphError> {
        if bn.is_some() {
            return Err(self.unsupported(format!("`{name}` still has a batch norm: fold it first")));
        }
        let padding = match conv.padding {
            PaddingConfig2d::Valid => [0, 0],
            PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => [top, left],
            ref p => return Err(self.unsupported(format!("`{name}`: padding {p:?} is not symmetric"))),
        };
        let &[_, h, w] = self.shape(from) else {
            return Err(self.unsupported(format!("`{name}` is fed by `{from}`, which is not a [c, h, w] feature map")));
        };
        let weight = conv.weight.val();
        let dims = weight.dims();
        let [out, _, kh, kw] = dims;
        let size = |n: usize, p: usize, k: usize, s: usize, d: usize| (n + 2 * p - d * (k - 1) - 1) / s + 1;
        let oh = size(h, padding[0], kh, conv.stride[0], conv.dilation[0]);
        let ow = size(w, padding[1], kw, conv.stride[1], conv.dilation[1]);
        let bias = conv.bias.as_ref().map_or_else(|| vec![0.0; out], |b| tensor_values(b.val()));
        let op = GraphOp::Conv2d {
            weight: Weights { shape: dims.to_vec(), values: tensor_values(weight) },
            bias,
            stride: conv.stride,
            padding,
            dilation: conv.dilation,
            groups: conv.groups,
            input_hw: [h, w],
        };
        Ok(self.push(name, op, vec![out, oh, ow], &[from]))
    }

    /// A fixed (parameter-free) convolution: option-A shortcut subsampling by `stride` with the
    /// input channels placed at `offset..offset + c` of `out` channels (the rest zero).
    pub(crate) fn channel_pad(&mut self, name: &str, out: usize, offset: usize, stride: usize, from: &str) -> String {
        let [c, h, w] = self.shape(from).try_into().expect("a feature map feeds a shortcut");
        let mut values = vec![0.0; out * c];
        for i in 0..c {
            values[(offset + i) * c + i] = 1.0;
        }
        let op = GraphOp::Conv2d {
            weight: Weights { shape: vec![out, c, 1, 1], values },
            bias: vec![0.0; out],
            stride: [stride, stride],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            input_hw: [h, w],
        };
        self.push(name, op, vec![out, (h - 1) / stride + 1, (w - 1) / stride + 1], &[from])
    }

    /// A linear layer fed by `from` (a `[features]` node).
    pub(crate) fn affine(&mut self, name: &str, linear: &Linear, from: &str) -> Result<String, GraphError> {
        let weight = linear.weight.val();
        let [i, o] = weight.dims();
        if self.shape(from) != [i] {
            return Err(self.unsupported(format!("`{name}` takes {i} features, `{from}` gives {:?}", self.shape(from))));
        }
        let weight = Weights { shape: vec![o, i], values: tensor_values(weight.transpose()) };
        let bias = linear.bias.as_ref().map_or_else(|| vec![0.0; o], |b| tensor_values(b.val()));
        Ok(self.push(name, GraphOp::Affine { weight, bias }, vec![o], &[from]))
    }

    /// `k`x`k` average pooling with stride `k` (`k` = the map size: global average pooling).
    pub(crate) fn avg_pool(&mut self, name: &str, kernel: [usize; 2], from: &str) -> String {
        let [c, h, w] = self.shape(from).try_into().expect("a feature map is pooled");
        let op = GraphOp::AvgPool2d { kernel, stride: kernel, input_hw: [h, w] };
        self.push(name, op, vec![c, h / kernel[0], w / kernel[1]], &[from])
    }

    /// Flattens `from` to `[features]`.
    pub(crate) fn flatten(&mut self, name: &str, from: &str) -> String {
        let input_shape = self.shape(from).to_vec();
        let features = input_shape.iter().product();
        self.push(name, GraphOp::Flatten { input_shape }, vec![features], &[from])
    }

    /// Activation slot `slot`, named `name`, fed by the sum of `from`.
    pub(crate) fn slot(&mut self, name: &str, slot: usize, from: &[&str]) -> Result<String, GraphError> {
        let shape = self.shape(from[0]).to_vec();
        if let Some(other) = from.iter().find(|f| self.shape(f) != shape) {
            return Err(self.unsupported(format!(
                "`{name}` sums `{}` {shape:?} and `{other}` {:?}",
                from[0],
                self.shape(other)
            )));
        }
        Ok(self.push(name, GraphOp::Slot { slot }, shape, from))
    }

    /// The output node, fed by `from`.
    pub(crate) fn finish(mut self, from: &str) -> LayerGraph {
        let shape = self.shape(from).to_vec();
        self.push("output", GraphOp::Output, shape, &[from]);
        self.graph
    }
}

/// What `op` computes on one sample's input `x` (the sum of the node's inputs), with output
/// shape `output_shape`; a slot is a ReLU. A plain, slow reference implementation of the
/// graph's semantics, independent of burn: tests check the models' graphs and the exporters'
/// graphs against it.
pub fn reference_apply(op: &GraphOp, output_shape: &[usize], x: &[f32]) -> Vec<f32> {
    match op {
        GraphOp::Input => x.to_vec(),
        GraphOp::Slot { .. } => x.iter().map(|v| v.max(0.0)).collect(),
        GraphOp::Output | GraphOp::Flatten { .. } => x.to_vec(),
        GraphOp::Affine { weight, bias } => {
            let (o, i) = (weight.shape[0], weight.shape[1]);
            (0..o).map(|r| bias[r] + (0..i).map(|k| weight.values[r * i + k] * x[k]).sum::<f32>()).collect()
        }
        GraphOp::AvgPool2d { kernel, stride, input_hw: [h, w] } => {
            let [c, oh, ow] = output_shape[..] else { unreachable!() };
            let (h, w) = (*h, *w);
            let mut y = vec![0.0; c * oh * ow];
            for ch in 0..c {
                for i in 0..oh {
                    for j in 0..ow {
                        let mut s = 0.0;
                        for a in 0..kernel[0] {
                            for b in 0..kernel[1] {
                                s += x[ch * h * w + (i * stride[0] + a) * w + j * stride[1] + b];
                            }
                        }
                        y[ch * oh * ow + i * ow + j] = s / (kernel[0] * kernel[1]) as f32;
                    }
                }
            }
            y
        }
        GraphOp::Conv2d { weight, bias, stride, padding, dilation, groups, input_hw } => {
            let [o, ig, kh, kw] = weight.shape[..] else { unreachable!() };
            let [h, w] = *input_hw;
            let [_, oh, ow] = output_shape[..] else { unreachable!() };
            let og = o / groups;
            let mut y = vec![0.0; o * oh * ow];
            for oc in 0..o {
                let g0 = (oc / og) * ig;
                for i in 0..oh {
                    for j in 0..ow {
                        let mut s = bias[oc];
                        for ic in 0..ig {
                            for a in 0..kh {
                                for b in 0..kw {
                                    let yy = (i * stride[0] + a * dilation[0]) as isize - padding[0] as isize;
                                    let xx = (j * stride[1] + b * dilation[1]) as isize - padding[1] as isize;
                                    if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
                                        s += weight.values[((oc * ig + ic) * kh + a) * kw + b]
                                            * x[(g0 + ic) * h * w + yy as usize * w + xx as usize];
                                    }
                                }
                            }
                        }
                        y[oc * oh * ow + i * ow + j] = s;
                    }
                }
            }
            y
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Convertible, ForwardCtx, Network, SlotHook, build_model};
    use burn::prelude::*;
    use burn::tensor::Distribution;

    /// Evaluates a layer graph on one sample with every slot a ReLU, in plain Rust: an
    /// independent implementation of the graph's semantics.
    fn eval_graph(g: &LayerGraph, input: &[f32]) -> Vec<f32> {
        let mut values: HashMap<&str, Vec<f32>> = HashMap::new();
        for node in &g.nodes {
            let inputs: Vec<&Vec<f32>> =
                g.edges.iter().filter(|(_, to)| *to == node.name).map(|(from, _)| &values[from.as_str()]).collect();
            let sum = || {
                let mut s = inputs[0].clone();
                for other in &inputs[1..] {
                    s.iter_mut().zip(other.iter()).for_each(|(a, b)| *a += b);
                }
                s
            };
            let out = match &node.op {
                GraphOp::Input => input.to_vec(),
                op => reference_apply(op, &node.output_shape, &sum()),
            };
            values.insert(&node.name, out);
        }
        values.remove("output").expect("an output node")
    }

    struct NoHook;
    impl SlotHook for NoHook {
        fn apply(&mut self, _slot: usize, x: Tensor<4>) -> Tensor<4> {
            burn::tensor::activation::relu(x)
        }
    }

    fn check(name: &str, input: [usize; 3], shortcut: &str, pooling: &str) {
        let device = Device::default();
        let spec: crate::ModelSpec = toml::from_str(&format!(
            "name = \"{name}\"\nwidth = 0.25\nshortcut = \"{shortcut}\"\npooling = \"{pooling}\""
        ))
        .unwrap();
        let net: Network = build_model(&spec, input, 10, &device).unwrap().fold_batchnorm();
        let g = net.layer_graph(input).unwrap();
        let slots: Vec<usize> =
            g.nodes.iter().filter_map(|n| if let GraphOp::Slot { slot } = n.op { Some(slot) } else { None }).collect();
        assert_eq!(slots, (0..net.slots().len()).collect::<Vec<_>>(), "{name}: every slot once, in order");
        let x: Tensor<4> = Tensor::random([1, input[0], input[1], input[2]], Distribution::Normal(0.0, 1.0), &device);
        let want = tensor_values(net.forward_ctx(x.clone(), &mut ForwardCtx::with_hook(&mut NoHook)));
        let got = eval_graph(&g, &tensor_values(x));
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(&want) {
            assert!(
                (a - b).abs() <= 1e-3 * (1.0 + b.abs()),
                "{name} ({shortcut}, {pooling}): graph {a} vs network {b}"
            );
        }
    }

    #[test]
    fn layer_graphs_compute_what_the_networks_compute() {
        check("small-cnn", [1, 12, 12], "conv", "avg");
        check("vgg16", [3, 32, 32], "conv", "avg");
        check("resnet20-he", [3, 16, 16], "pad", "avg");
        check("resnet20-he", [3, 16, 16], "conv", "avg");
        check("resnet20-sengupta", [3, 16, 16], "conv", "avg");
        check("pointnet", [3, 24, 1], "conv", "avg");
    }

    #[test]
    fn models_without_a_layer_graph_say_why() {
        let device = Device::default();
        let spec: crate::ModelSpec = toml::from_str("name = \"vgg16\"\nwidth = 0.25\npooling = \"max\"").unwrap();
        let net = build_model(&spec, [3, 32, 32], 10, &device).unwrap().fold_batchnorm();
        let err = net.layer_graph([3, 32, 32]).unwrap_err().to_string();
        assert!(err.contains("max pooling"), "{err}");
        for (extra, reason) in [("pooling = \"max\"", "max pooling"), ("tnet = true", "T-Net")] {
            let spec: crate::ModelSpec =
                toml::from_str(&format!("name = \"pointnet\"\nwidth = 0.25\n{extra}")).unwrap();
            let net = build_model(&spec, [3, 64, 1], 10, &device).unwrap().fold_batchnorm();
            let err = net.layer_graph([3, 64, 1]).unwrap_err().to_string();
            assert!(err.contains("pointnet") && err.contains(reason), "{err}");
        }
        // BN must be folded first.
        let spec: crate::ModelSpec = toml::from_str("name = \"small-cnn\"").unwrap();
        let net = build_model(&spec, [1, 12, 12], 10, &device).unwrap();
        assert!(net.layer_graph([1, 12, 12]).unwrap_err().to_string().contains("fold"));
    }
}
