//! Export of a converted network to NIR, the Neuromorphic Intermediate Representation
//! (Pedersen et al. 2024, Nature Communications; the `nir` Python package, version 1.0), the
//! graph format snnTorch, Norse, SpikingJelly, Sinabs, Lava and hardware toolchains read.
//!
//! # The graph
//! [`to_nir`] turns a network's [`LayerGraph`] and its neuron layers into NIR nodes:
//! `Input`, `Conv2d`, `Affine`, `AvgPool2d`, `Flatten` and `Output` map one to one. Each
//! activation slot becomes the neurons of a plain integrate-and-fire layer
//! ([`NeuronModel::plain_if`]):
//! - **soft reset** (v ← v − θ·s), which NIR's `IF` node cannot express (it resets to a
//!   value): an integrator `I` (r = 1) named after the slot, a `Threshold` (`<slot>.spike`),
//!   and a recurrent `Scale` by −θ (`<slot>.reset`) from the spikes back into the integrator.
//!   In discrete time a recurrent edge acts one step later, exactly when the soft reset acts:
//!   the integrator holds u(t) = u(t−1) − θ·s(t−1) + x(t), the potential before reset.
//! - **hard reset** (v ← 0): one `IF` node (r = 1, v_reset = 0).
//! - then a `Scale` by θ (`<slot>.amplitude`): our spikes carry amplitude θ into the next layer.
//!
//! NIR fires on v > θ; a neuron firing on v ≥ θ is exported with the largest float below θ,
//! which is the same rule in single precision. Thresholds, resets and amplitudes are per
//! element (a per-channel θ is repeated over the channel's positions). The per-channel bias
//! correction b_c, and the θ/(2T) input shift of neurons that have one (for the exported T),
//! are added to the bias of the layer feeding the slot. Input coding is direct: the same
//! analog input at every step; the prediction is the argmax of the output summed over T.
//!
//! What NIR 1.0 cannot express is an error naming the slot, never an approximation: burst,
//! dynamic-threshold, multi-stage-threshold and two-phase neurons, a non-zero initial
//! potential (NIR nodes have no initial state), readouts other than the sum over T, and
//! layers without a graph form (max pooling, point-cloud grouping).
//!
//! # The file
//! [`write_nir`] writes the HDF5 layout of `nir.write` (groups `node/nodes/<name>` holding one
//! dataset per field, a variable-length string `type` in each, `node/edges` as an `[E, 2]`
//! string array, graph metadata under `node/metadata`, and `version`); [`read_nir`] reads it
//! back.

use zoo::{Convertible, GraphOp, LayerGraph};

use crate::neuron::{FireRule, Reset};
use crate::simulate::SpikingNetwork;

/// The NIR version written to files.
pub const NIR_VERSION: &str = "1.0.8";

/// A float array with its shape, row-major: the graph's own weight tensor type.
pub use zoo::Weights as NirArray;

/// The NIR primitives this exporter writes (field names as in `nir.ir`).
#[derive(Clone, Debug, PartialEq)]
pub enum NirNode {
    /// Graph input of shape `shape`.
    Input {
        /// `[c, h, w]`.
        shape: Vec<i64>,
    },
    /// Graph output of shape `shape`.
    Output {
        /// `[classes]`.
        shape: Vec<i64>,
    },
    /// `y = W ⋆ x + b`.
    Conv2d {
        /// `[h, w]` of the input.
        input_shape: [i64; 2],
        /// `[out, in/groups, kh, kw]`.
        weight: NirArray,
        /// `[out]`.
        bias: NirArray,
        /// `[sh, sw]`.
        stride: [i64; 2],
        /// `[ph, pw]`.
        padding: [i64; 2],
        /// `[dh, dw]`.
        dilation: [i64; 2],
        /// Channel groups.
        groups: i64,
    },
    /// `y = W x + b`.
    Affine {
        /// `[out, in]`.
        weight: NirArray,
        /// `[out]`.
        bias: NirArray,
    },
    /// Average pooling.
    AvgPool2d {
        /// `[kh, kw]`.
        kernel_size: [i64; 2],
        /// `[sh, sw]`.
        stride: [i64; 2],
        /// `[ph, pw]`.
        padding: [i64; 2],
    },
    /// Flattens dimensions `start_dim..=end_dim` of an input of shape `input_type`.
    Flatten {
        /// Shape of the input.
        input_type: Vec<i64>,
        /// First flattened dimension.
        start_dim: i64,
        /// Last flattened dimension (−1: the last).
        end_dim: i64,
    },
    /// Integrate-and-fire: `v' = r·I`, spike when `v > v_threshold`, then `v = v_reset`.
    If {
        /// Resistance per element.
        r: NirArray,
        /// Threshold per element.
        v_threshold: NirArray,
        /// Reset potential per element.
        v_reset: NirArray,
    },
    /// Integrator: `v' = r·I`.
    Integrator {
        /// Resistance per element.
        r: NirArray,
    },
    /// Heaviside: `z = [v > threshold]`.
    Threshold {
        /// Threshold per element.
        threshold: NirArray,
    },
    /// `y = x ⊙ scale`.
    Scale {
        /// Factor per element.
        scale: NirArray,
    },
}

impl NirNode {
    /// The node's float parameters, `(field, array)`, in NIR's field names.
    pub fn arrays(&self) -> Vec<(&'static str, &NirArray)> {
        match self {
            NirNode::Conv2d { weight, bias, .. } | NirNode::Affine { weight, bias } => {
                vec![("weight", weight), ("bias", bias)]
            }
            NirNode::If { r, v_threshold, v_reset } => {
                vec![("r", r), ("v_threshold", v_threshold), ("v_reset", v_reset)]
            }
            NirNode::Integrator { r } => vec![("r", r)],
            NirNode::Threshold { threshold } => vec![("threshold", threshold)],
            NirNode::Scale { scale } => vec![("scale", scale)],
            _ => Vec::new(),
        }
    }

    /// The node's integer fields, `(field, values, scalar)`: a scalar is written as a 0-d
    /// dataset, the others as 1-d.
    pub fn integers(&self) -> Vec<(&'static str, Vec<i64>, bool)> {
        match self {
            NirNode::Input { shape } | NirNode::Output { shape } => vec![("shape", shape.clone(), false)],
            NirNode::Conv2d { input_shape, stride, padding, dilation, groups, .. } => vec![
                ("input_shape", input_shape.to_vec(), false),
                ("stride", stride.to_vec(), false),
                ("padding", padding.to_vec(), false),
                ("dilation", dilation.to_vec(), false),
                ("groups", vec![*groups], true),
            ],
            NirNode::AvgPool2d { kernel_size, stride, padding } => vec![
                ("kernel_size", kernel_size.to_vec(), false),
                ("stride", stride.to_vec(), false),
                ("padding", padding.to_vec(), false),
            ],
            NirNode::Flatten { input_type, start_dim, end_dim } => vec![
                ("input_type", input_type.clone(), false),
                ("start_dim", vec![*start_dim], true),
                ("end_dim", vec![*end_dim], true),
            ],
            _ => Vec::new(),
        }
    }

    /// The node's `type` string in NIR.
    pub fn type_name(&self) -> &'static str {
        match self {
            NirNode::Input { .. } => "Input",
            NirNode::Output { .. } => "Output",
            NirNode::Conv2d { .. } => "Conv2d",
            NirNode::Affine { .. } => "Affine",
            NirNode::AvgPool2d { .. } => "AvgPool2d",
            NirNode::Flatten { .. } => "Flatten",
            NirNode::If { .. } => "IF",
            NirNode::Integrator { .. } => "I",
            NirNode::Threshold { .. } => "Threshold",
            NirNode::Scale { .. } => "Scale",
        }
    }
}

/// A NIR graph: named nodes, directed edges and string metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct NirGraph {
    /// `(name, node)`, in forward order.
    pub nodes: Vec<(String, NirNode)>,
    /// `(from, to)` node names.
    pub edges: Vec<(String, String)>,
    /// Graph metadata (`node/metadata/<key>` string datasets).
    pub metadata: Vec<(String, String)>,
}

/// Why a network cannot be exported, or a file not read.
#[derive(Debug, thiserror::Error)]
pub enum NirError {
    /// The network, a slot or the readout has no NIR form.
    #[error("cannot export to NIR: {0}")]
    Unsupported(String),
    /// Writing or reading the HDF5 bytes failed.
    #[error("NIR file: {0}")]
    Hdf5(String),
    /// A file that is not what [`write_nir`] writes.
    #[error("NIR file: {0}")]
    Malformed(String),
}

/// The converted network `net` for an input of shape `[c, h, w]` as a NIR graph, for a run of
/// T = `timesteps` (it matters only for neurons with a θ/(2T) input shift). See the module
/// documentation for the mapping.
pub fn to_nir(net: &SpikingNetwork, input: [usize; 3], timesteps: usize) -> Result<NirGraph, NirError> {
    let unsupported = NirError::Unsupported;
    if net.readout.kind() != "accumulate" {
        return Err(unsupported(format!(
            "the `{}` readout is not part of a NIR graph (only `accumulate`, the sum of the output over T)",
            net.readout.kind()
        )));
    }
    let graph: LayerGraph =
        net.model.clone().fold_batchnorm().layer_graph(input).map_err(|e| unsupported(e.to_string()))?;
    let slots = net.model.slots();
    let mut nodes: Vec<(String, NirNode)> = Vec::new();
    let mut edges: Vec<(String, String)> = Vec::new();
    // Per graph node: the NIR node its outgoing edges leave from.
    let mut out_of: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    // Per graph node: the index in `nodes` of a conv/affine whose bias may take a slot's offset.
    let mut biased: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let t = timesteps.max(1) as f32;
    for node in &graph.nodes {
        let name = node.name.clone();
        let ints = |v: &[usize]| v.iter().map(|&d| d as i64).collect::<Vec<_>>();
        let pair = |v: [usize; 2]| [v[0] as i64, v[1] as i64];
        let nir = match &node.op {
            GraphOp::Input => NirNode::Input { shape: ints(&node.output_shape) },
            GraphOp::Output => NirNode::Output { shape: ints(&node.output_shape) },
            GraphOp::Conv2d { weight, bias, stride, padding, dilation, groups, input_hw } => NirNode::Conv2d {
                input_shape: pair(*input_hw),
                weight: weight.clone(),
                bias: NirArray::new(vec![bias.len()], bias.clone()),
                stride: pair(*stride),
                padding: pair(*padding),
                dilation: pair(*dilation),
                groups: *groups as i64,
            },
            GraphOp::Affine { weight, bias } => {
                NirNode::Affine { weight: weight.clone(), bias: NirArray::new(vec![bias.len()], bias.clone()) }
            }
            GraphOp::AvgPool2d { kernel, stride, .. } => {
                NirNode::AvgPool2d { kernel_size: pair(*kernel), stride: pair(*stride), padding: [0, 0] }
            }
            GraphOp::Flatten { input_shape } => {
                NirNode::Flatten { input_type: ints(input_shape), start_dim: 0, end_dim: -1 }
            }
            GraphOp::Slot { slot } => {
                let layer = &net.layers[*slot];
                let slot_name = slots.get(*slot).map_or_else(|| name.clone(), |s| s.name.clone());
                let why = |reason: String| unsupported(format!("slot {slot} (`{slot_name}`): {reason}"));
                let form = layer.neuron.plain_if().map_err(why)?;
                let has_v_init = layer.v_init.as_ref().is_some_and(|v| v.iter().any(|&x| x != 0.0));
                if form.initial_potential != 0.0 || has_v_init {
                    return Err(why(
                        "its neurons start from a non-zero potential, and NIR 1.0 nodes have no initial state".into(),
                    ));
                }
                let shape = &node.output_shape;
                let channels = shape[0];
                let inner: usize = shape[1..].iter().product();
                let per_element = |f: &dyn Fn(f32) -> f32| {
                    let values =
                        (0..channels).flat_map(|c| std::iter::repeat_n(f(layer.threshold(c)), inner)).collect();
                    NirArray::new(shape.clone(), values)
                };
                let fire_above = |theta: f32| match form.fire {
                    FireRule::Greater => theta,
                    FireRule::GreaterEqual => theta.next_down(),
                };
                // The per-step input offset goes into the bias of the layer feeding the slot.
                let offset: Vec<f32> = (0..channels)
                    .map(|c| {
                        let shift = if form.input_shift { layer.threshold(c) / (2.0 * t) } else { 0.0 };
                        layer.bias.as_ref().map_or(0.0, |b| b[c]) + shift
                    })
                    .collect();
                if offset.iter().any(|&o| o != 0.0) {
                    let feeder = graph
                        .edges
                        .iter()
                        .filter(|(_, to)| *to == name)
                        .find_map(|(from, _)| biased.get(from.as_str()).copied())
                        .ok_or_else(|| why("its input offset has no conv or affine layer to go into".into()))?;
                    match &mut nodes[feeder].1 {
                        NirNode::Conv2d { bias, .. } | NirNode::Affine { bias, .. } => {
                            bias.values.iter_mut().zip(&offset).for_each(|(b, o)| *b += o)
                        }
                        _ => unreachable!("only conv and affine nodes take offsets"),
                    }
                }
                let amplitude = format!("{name}.amplitude");
                match form.reset {
                    Reset::Hard => {
                        nodes.push((
                            name.clone(),
                            NirNode::If {
                                r: NirArray::filled(shape, 1.0),
                                v_threshold: per_element(&fire_above),
                                v_reset: NirArray::filled(shape, 0.0),
                            },
                        ));
                        edges.push((name.clone(), amplitude.clone()));
                    }
                    Reset::Soft => {
                        let (spike, reset) = (format!("{name}.spike"), format!("{name}.reset"));
                        nodes.push((name.clone(), NirNode::Integrator { r: NirArray::filled(shape, 1.0) }));
                        nodes.push((spike.clone(), NirNode::Threshold { threshold: per_element(&fire_above) }));
                        nodes.push((reset.clone(), NirNode::Scale { scale: per_element(&|theta| -theta) }));
                        edges.push((name.clone(), spike.clone()));
                        edges.push((spike.clone(), reset.clone()));
                        edges.push((reset, name.clone()));
                        edges.push((spike, amplitude.clone()));
                    }
                }
                nodes.push((amplitude.clone(), NirNode::Scale { scale: per_element(&|theta| theta) }));
                out_of.insert(name.clone(), amplitude);
                continue;
            }
        };
        if matches!(nir, NirNode::Conv2d { .. } | NirNode::Affine { .. }) {
            biased.insert(name.clone(), nodes.len());
        }
        nodes.push((name.clone(), nir));
        out_of.insert(name.clone(), name);
    }
    for (from, to) in &graph.edges {
        edges.push((out_of[from].clone(), to.clone()));
    }
    let layers = net.layers.iter().map(|l| l.neuron.kind()).collect::<Vec<_>>().join(", ");
    let metadata = vec![
        ("source".into(), "ANN-to-SNN conversion runner".into()),
        ("input_coding".into(), "direct: the same analog input at every time step".into()),
        ("readout".into(), "argmax of the output summed over the time steps".into()),
        ("timesteps".into(), timesteps.to_string()),
        ("neurons".into(), layers),
        ("soft_reset".into(), "integrator + threshold + recurrent scale by -threshold (acting one step later)".into()),
    ];
    Ok(NirGraph { nodes, edges, metadata })
}

fn h5(e: impl std::fmt::Display) -> NirError {
    NirError::Hdf5(e.to_string())
}

/// The HDF5 bytes of `graph`, in `nir.write`'s layout.
pub fn write_nir(graph: &NirGraph) -> Result<Vec<u8>, NirError> {
    let mut file = hdf5_pure::FileBuilder::new();
    file.create_dataset("version").with_vlen_strings(&[NIR_VERSION]).with_shape(&[]);
    let mut top = file.create_group("node");
    top.create_dataset("type").with_vlen_strings(&["NIRGraph"]).with_shape(&[]);
    let flat: Vec<&str> = graph.edges.iter().flat_map(|(a, b)| [a.as_str(), b.as_str()]).collect();
    top.create_dataset("edges").with_vlen_strings(&flat).with_shape(&[graph.edges.len() as u64, 2]);
    let mut nodes = top.create_group("nodes");
    for (name, node) in &graph.nodes {
        let mut g = nodes.create_group(name);
        g.create_dataset("type").with_vlen_strings(&[node.type_name()]).with_shape(&[]);
        for (key, a) in node.arrays() {
            let shape: Vec<u64> = a.shape.iter().map(|&d| d as u64).collect();
            g.create_dataset(key).with_f32_data(&a.values).with_shape(&shape);
        }
        for (key, values, scalar) in node.integers() {
            let shape: Vec<u64> = if scalar { vec![] } else { vec![values.len() as u64] };
            g.create_dataset(key).with_i64_data(&values).with_shape(&shape);
        }
        nodes.add_group(g.finish());
    }
    top.add_group(nodes.finish());
    if !graph.metadata.is_empty() {
        let mut meta = top.create_group("metadata");
        for (key, value) in &graph.metadata {
            meta.create_dataset(key).with_vlen_strings(&[value.as_str()]).with_shape(&[]);
        }
        top.add_group(meta.finish());
    }
    file.add_group(top.finish());
    file.finish().map_err(h5)
}

/// Reads a file [`write_nir`] wrote (the node types it writes, in its layout).
pub fn read_nir(bytes: Vec<u8>) -> Result<NirGraph, NirError> {
    let file = hdf5_pure::File::from_bytes(bytes).map_err(h5)?;
    let bad = |what: String| NirError::Malformed(what);
    let string = |path: &str| -> Result<String, NirError> {
        let ds = file.dataset(path).map_err(|e| bad(format!("{path}: {e}")))?;
        ds.read_string()
            .map_err(|e| bad(format!("{path}: {e}")))?
            .into_iter()
            .next()
            .ok_or_else(|| bad(format!("{path} is empty")))
    };
    let version = string("version")?;
    if !version.starts_with("1.") {
        return Err(bad(format!("version {version}: only NIR 1.x is read")));
    }
    if string("node/type")? != "NIRGraph" {
        return Err(bad("node/type is not NIRGraph".into()));
    }
    let flat = file.dataset("node/edges").and_then(|d| d.read_string()).map_err(|e| bad(format!("node/edges: {e}")))?;
    let edges = flat.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
    let names = file.group("node/nodes").and_then(|g| g.groups()).map_err(|e| bad(format!("node/nodes: {e}")))?;
    let mut nodes = Vec::with_capacity(names.len());
    for name in names {
        let path = |key: &str| format!("node/nodes/{name}/{key}");
        let array = |key: &str| -> Result<NirArray, NirError> {
            let ds = file.dataset(&path(key)).map_err(|e| bad(format!("{}: {e}", path(key))))?;
            let shape = ds.shape().map_err(|e| bad(format!("{}: {e}", path(key))))?;
            let values = ds.read_f32().map_err(|e| bad(format!("{}: {e}", path(key))))?;
            Ok(NirArray::new(shape.iter().map(|&d| d as usize).collect(), values))
        };
        let ints = |key: &str| -> Result<Vec<i64>, NirError> {
            file.dataset(&path(key)).and_then(|d| d.read_i64()).map_err(|e| bad(format!("{}: {e}", path(key))))
        };
        let pair = |key: &str| -> Result<[i64; 2], NirError> {
            ints(key)?.try_into().map_err(|v| bad(format!("{}: expected 2 values, found {v:?}", path(key))))
        };
        let one = |key: &str| -> Result<i64, NirError> {
            ints(key)?.first().copied().ok_or_else(|| bad(format!("{} is empty", path(key))))
        };
        let node = match string(&path("type"))?.as_str() {
            "Input" => NirNode::Input { shape: ints("shape")? },
            "Output" => NirNode::Output { shape: ints("shape")? },
            "Conv2d" => NirNode::Conv2d {
                input_shape: pair("input_shape")?,
                weight: array("weight")?,
                bias: array("bias")?,
                stride: pair("stride")?,
                padding: pair("padding")?,
                dilation: pair("dilation")?,
                groups: one("groups")?,
            },
            "Affine" => NirNode::Affine { weight: array("weight")?, bias: array("bias")? },
            "AvgPool2d" => NirNode::AvgPool2d {
                kernel_size: pair("kernel_size")?,
                stride: pair("stride")?,
                padding: pair("padding")?,
            },
            "Flatten" => NirNode::Flatten {
                input_type: ints("input_type")?,
                start_dim: one("start_dim")?,
                end_dim: one("end_dim")?,
            },
            "IF" => NirNode::If { r: array("r")?, v_threshold: array("v_threshold")?, v_reset: array("v_reset")? },
            "I" => NirNode::Integrator { r: array("r")? },
            "Threshold" => NirNode::Threshold { threshold: array("threshold")? },
            "Scale" => NirNode::Scale { scale: array("scale")? },
            other => return Err(bad(format!("{}: node type `{other}` is not one this exporter writes", path("type")))),
        };
        nodes.push((name, node));
    }
    let metadata = match file.group("node/metadata") {
        Ok(g) => {
            let keys = g.datasets().map_err(|e| bad(format!("node/metadata: {e}")))?;
            keys.into_iter()
                .map(|k| Ok((k.clone(), string(&format!("node/metadata/{k}"))?)))
                .collect::<Result<_, NirError>>()?
        }
        Err(_) => Vec::new(),
    };
    Ok(NirGraph { nodes, edges, metadata })
}

/// The network's NIR graph ([`to_nir`]) as file bytes ([`write_nir`]).
pub fn export_nir(net: &SpikingNetwork, input: [usize; 3], timesteps: usize) -> Result<Vec<u8>, NirError> {
    write_nir(&to_nir(net, input, timesteps)?)
}
