//! Conversion + simulation of one method on one trained ANN, producing result rows.

use std::collections::HashMap;

use anyhow::{Context, Result};
use burn::prelude::*;
use convert::MethodConfig;
use serde::{Deserialize, Serialize};
use snn::{Diagnostic, SimConfig, SimInput, SparseNetwork, SpikingNetwork, merge_diagnostics, simulate_input};
use zoo::{Convertible, ForwardCtx, LayerMacs, Network, SlotInfo};

use convert::MeasureContext;

use crate::data::{Data, Samples, batch_tensors, calibration_batches, frame_tensors};
use crate::exit_frontier::frontier_measures;
use crate::plan::{EVAL_STAGE_VERSION, stage_key};
use crate::spec::{ConvertSection, Engine, EvalSection, MethodEntry};
use crate::task::Task;
use crate::train::progress_bar;

/// One measured value before it is labelled with experiment/dataset/model/provenance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measure {
    /// Method label (`ann` for the ANN).
    pub method: String,
    /// Time steps (0 for the ANN and one-off values).
    pub t: u32,
    /// Metric name.
    pub metric: String,
    /// Slot/layer name, or "" for whole-network values.
    pub layer: String,
    /// The value.
    pub value: f64,
    /// Test images measured.
    pub n_images: usize,
}

fn measure(method: &str, t: u32, metric: &str, layer: &str, value: f64, n: usize) -> Measure {
    Measure { method: method.into(), t, metric: metric.into(), layer: layer.into(), value, n_images: n }
}

/// Key of an evaluation stage: the ANN's key, the test set's fingerprint, the method entry,
/// the convert and eval sections, the seed, and the code versions of the method, its neuron
/// and its readout ([`convert::MethodConfig::code_versions`]), each only when it is past 1
/// (so the keys of parts never bumped stay as they were).
pub fn eval_key(
    train_key: &str,
    test_fingerprint: &str,
    method: &MethodEntry,
    convert: &ConvertSection,
    eval: &EvalSection,
    seed: u64,
) -> String {
    let parts = (train_key, test_fingerprint, method, convert, eval, seed);
    let versions = method.config.code_versions(&method.overrides());
    let bumped: Vec<(&str, u32)> = [
        ("method_version", versions.method),
        ("neuron_version", versions.neuron),
        ("readout_version", versions.readout),
    ]
    .into_iter()
    .filter(|(_, v)| *v > 1)
    .collect();
    match bumped.as_slice() {
        [] => stage_key("eval", EVAL_STAGE_VERSION, &parts),
        // The form keys had when only methods had versions.
        [("method_version", version)] => stage_key("eval", EVAL_STAGE_VERSION, &(parts, ("method_version", version))),
        _ => stage_key("eval", EVAL_STAGE_VERSION, &(parts, bumped)),
    }
}

/// Key of the ANN-accuracy stage: the ANN's key, the test set's fingerprint and subset.
pub fn ann_key(train_key: &str, test_fingerprint: &str, eval: &EvalSection) -> String {
    stage_key("ann", EVAL_STAGE_VERSION, &(train_key, test_fingerprint, &eval.test_subset))
}

/// `net` with its first `k` slots' neurons replaced by the ANN's ReLU ([`snn::neuron::analog`]):
/// exact up to slot k − 1, spiking after it.
pub fn exact_prefix(net: &SpikingNetwork, k: usize) -> SpikingNetwork {
    let mut hybrid = net.clone();
    let analog: std::sync::Arc<dyn snn::NeuronModel> = std::sync::Arc::new(snn::neuron::analog::Analog {});
    for layer in hybrid.layers.iter_mut().take(k) {
        layer.neuron = analog.clone();
    }
    hybrid
}

/// MACs per layer for one sample (traced ANN forward).
pub fn trace_macs(model: &Network, input: [usize; 3], device: &Device) -> Vec<LayerMacs> {
    let [c, h, w] = input;
    let mut ctx = ForwardCtx::tracing();
    let _ = model.forward_ctx(Tensor::zeros([1, c, h, w], device), &mut ctx);
    ctx.take_trace()
}

/// ANN accuracy and MAC counts on the evaluation images.
pub fn evaluate_ann(model: &Network, data: &Data, eval: &EvalSection, device: &Device) -> Result<Vec<Measure>> {
    let idx = data.test_indices(eval);
    let n = idx.len();
    let task = Task::of(model, &data.test)?;
    let mut out = if task.is_dense() {
        let outputs = crate::train::ann_outputs(model, data, &idx, eval.batch_size.max(100), device);
        let mut rows: Vec<Measure> =
            task.score(&outputs, &data.test, &idx)?.into_iter().map(|(m, v)| measure("ann", 0, &m, "", v, n)).collect();
        let figure = task.figure_rows(&outputs, &data.test, &idx, true);
        rows.extend(figure.into_iter().map(|(layer, m, v)| measure("ann", 0, m, &layer, v, n)));
        rows
    } else {
        let (c, n) = crate::train::ann_correct(model, data, &idx, eval.batch_size.max(100), device);
        vec![measure("ann", 0, "accuracy", "", 100.0 * c as f64 / n as f64, n)]
    };
    let macs = trace_macs(model, data.input_shape(), device);
    out.push(measure("ann", 0, "macs", "", macs.iter().map(|m| m.macs as f64).sum(), n));
    out.extend(macs.iter().map(|m| measure("ann", 0, "macs", &m.name, m.macs as f64, n)));
    Ok(out)
}

/// Whether `method` is converted once per evaluated T, calibrated at that T: methods that
/// always are (`calibrates_at_each_eval_t`), and methods with a calibration T when the spec
/// sets `[convert] calibrate_at_eval_t`.
pub fn calibrates_per_t(method: &MethodEntry, convert_section: &ConvertSection) -> bool {
    (convert_section.calibrate_at_eval_t && method.config.calibrates_at_timesteps())
        || method.config.calibrates_at_each_eval_t()
}

/// The configuration `method` is converted with for a run of T = `t`: calibrated at `t` when
/// [`calibrates_per_t`], else the spec's own.
pub fn config_at(method: &MethodEntry, convert_section: &ConvertSection, t: u32) -> Result<MethodConfig> {
    if !calibrates_per_t(method, convert_section) {
        return Ok(method.config.clone());
    }
    Ok(method
        .config
        .with_calibration_timesteps(t)
        .with_context(|| format!("calibrating method `{}` at T = {t}", method.label))?
        .expect("calibrates_per_t: the method calibrates at a T"))
}

/// Converts `model` with `method` and simulates it on the evaluation images; returns the
/// accuracy, spike, SOP and firing-rate measures at every requested T, and the conversion time.
pub fn evaluate_method(
    model: &Network,
    method: &MethodEntry,
    data: &Data,
    convert_section: &ConvertSection,
    eval: &EvalSection,
    seed: u64,
    device: &Device,
) -> Result<Vec<Measure>> {
    let calib = calibration_batches(data, convert_section.calibration_images, convert_section.batch_size, seed, device);
    let task = Task::of(model, &data.test)?;
    let label = method.label.as_str();
    let idx = data.test_indices(eval);
    let n = idx.len();
    let mut ts: Vec<u32> = if method.timesteps.is_empty() { eval.timesteps.clone() } else { method.timesteps.clone() };
    ts.sort_unstable();
    ts.dedup();
    // One conversion for every T, or (`calibrate_at_eval_t`, methods with a calibration T)
    // one per T, calibrated at that T.
    let per_t = calibrates_per_t(method, convert_section);
    let conversions: Vec<(MethodConfig, Vec<u32>)> = if per_t {
        ts.iter().map(|&t| Ok((config_at(method, convert_section, t)?, vec![t]))).collect::<Result<_>>()?
    } else {
        vec![(method.config.clone(), ts.clone())]
    };

    let traced = trace_macs(model, data.input_shape(), device);
    let macs: HashMap<String, LayerMacs> = traced.iter().map(|m| (m.name.clone(), m.clone())).collect();

    let mut out = Vec::new();
    let mut total_seconds = 0.0;
    let mut simulation_seconds = 0.0;
    let last = conversions.len() - 1;
    for (c, (config, conversion_ts)) in conversions.iter().enumerate() {
        let conversion = convert::convert(model, config, &method.overrides(), &calib)
            .with_context(|| format!("converting with `{}`", method.label))?;
        total_seconds += conversion.seconds;
        // The conversion time at every evaluated T (and at T = 0 below), so that a table of
        // conversion time vs T (Bu et al. 2025, appendix G) can put per-T calibrations side by side.
        out.extend(conversion_ts.iter().map(|&t| measure(label, t, "conversion_seconds", "", conversion.seconds, n)));
        // Each layer's threshold after conversion (mean over channels): what a method chose;
        // at T = 0, or at the T it was calibrated for.
        let threshold_t = if per_t { conversion_ts[0] } else { 0 };
        for (layer, slot) in conversion.network.layers.iter().zip(&conversion.slots) {
            let mean = layer.thresholds.iter().map(|&t| t as f64).sum::<f64>() / layer.thresholds.len().max(1) as f64;
            out.push(measure(label, threshold_t, "threshold", &slot.name, mean, n));
        }
        // One-off rows of the method's calibration (e.g. AdaFire's φ per layer).
        for r in &conversion.records {
            out.push(measure(label, threshold_t, &r.metric, &r.layer, r.value, n));
        }
        // One-off values of the readout (e.g. DE's `readout_delay`).
        for (metric, value) in conversion.network.readout.metrics() {
            out.push(measure(label, threshold_t, metric, "", value, n));
        }

        // Average fan-out of each slot's neurons (SOPs = spikes × fan-out).
        let fanout: Vec<f64> = conversion
            .slots
            .iter()
            .map(|s| s.consumers.iter().filter_map(|c| macs.get(c)).map(|m| m.macs as f64 / m.inputs as f64).sum())
            .collect();

        // Networks whose dynamics depend on T (θ/(2T) shift, phase length) need one run per T;
        // else one run to T_max.
        let depends_on_t = conversion.network.depends_on_timesteps();
        let runs: Vec<(u32, Vec<u32>)> = if depends_on_t {
            conversion_ts.iter().map(|t| (*t, vec![*t])).collect()
        } else {
            vec![(*conversion_ts.last().expect("validated non-empty"), conversion_ts.clone())]
        };
        for (t_run, report_ts) in runs {
            let started = std::time::Instant::now();
            let scored_steps: Vec<usize> =
                if task.is_dense() { report_ts.iter().map(|&t| t as usize).collect() } else { Vec::new() };
            let sim =
                simulate_all(&conversion.network, data, &idx, eval, t_run as usize, &scored_steps, label, device)?;
            simulation_seconds += started.elapsed().as_secs_f64();
            for &t in &report_ts {
                let tt = t as usize;
                if task.is_dense() {
                    let Some((_, outputs)) = sim.outputs_at.iter().find(|(s, _)| *s == tt) else {
                        anyhow::bail!(
                            "{label}: the readout `{}` gives predicted classes only; detection and segmentation \
                             score its real-valued outputs (use `accumulate` or `delayed`)",
                            conversion.network.readout.kind()
                        );
                    };
                    for (metric, value) in task.score(outputs, &data.test, &idx)? {
                        out.push(measure(label, t, &metric, "", value, n));
                    }
                    for (layer, metric, value) in task.figure_rows(outputs, &data.test, &idx, false) {
                        out.push(measure(label, t, metric, &layer, value, n));
                    }
                } else {
                    out.push(measure(label, t, "accuracy", "", 100.0 * sim.correct_at_t[tt - 1] as f64 / n as f64, n));
                }
                // A pipelined network of windowed layers answers at step T + L (L: the summed
                // lag of its layers, (L + 1)·T for L layers of lag T) and, each layer busy T + its
                // lag per sample, takes a new sample every T + max lag steps.
                if sim.latency > 0 {
                    out.push(measure(label, t, "latency_steps", "", (tt + sim.latency) as f64, n));
                    let lag = conversion.network.layers.iter().map(|l| l.neuron.latency(tt)).max().unwrap_or(0);
                    out.push(measure(label, t, "pipelined_steps_per_sample", "", (tt + lag) as f64, n));
                }
                if conversion.network.readout.exits_early() {
                    let mean = sim.exit_steps.iter().map(|e| e.unwrap_or(tt).min(tt) as f64).sum::<f64>() / n as f64;
                    out.push(measure(label, t, "mean_exit_step", "", mean, n));
                    // The exit-step distribution: the share of images stopping at each step
                    // (those that never meet the rule stop at T).
                    let mut counts = vec![0usize; tt];
                    for e in &sim.exit_steps {
                        counts[e.unwrap_or(tt).clamp(1, tt) - 1] += 1;
                    }
                    for (k, c) in counts.iter().enumerate() {
                        out.push(measure(label, t, "exit_share", &format!("t={}", k + 1), *c as f64 / n as f64, n));
                    }
                    if eval.exit_frontier {
                        let readout = &*conversion.network.readout;
                        out.extend(frontier_measures(label, t, &sim.confidence_trace, &sim.labels, readout));
                    }
                }
                let mut spikes_total = 0.0;
                let mut sops_total = 0.0;
                let mut neuron_steps = 0.0;
                for (s, slot) in conversion.slots.iter().enumerate() {
                    let spikes: f64 = sim.spikes[s][..tt].iter().sum::<u64>() as f64 / n as f64;
                    let neurons = sim.neurons[s] as f64;
                    spikes_total += spikes;
                    sops_total += spikes * fanout[s];
                    neuron_steps += neurons * tt as f64;
                    out.push(measure(label, t, "firing_rate", &slot.name, spikes / (neurons * tt as f64), n));
                    // The synaptic events this slot's spikes cause (the additions of the layers it feeds).
                    out.push(measure(label, t, "sops", &slot.name, spikes * fanout[s], n));
                }
                out.extend(layer_analysis_measures(label, t, &sim.layers, &conversion.slots, n));
                out.push(measure(label, t, "spikes", "", spikes_total, n));
                out.push(measure(label, t, "sops", "", sops_total, n));
                out.extend(operation_measures(label, t, sops_total, &traced, n));
                // Rows the method adds (its own file says what they are).
                let at = MeasureContext { timesteps: t, sops: sops_total, spikes: spikes_total, layers: &traced };
                for m in config.method().measures(&at) {
                    out.push(measure(label, t, &m.metric, &m.layer, m.value, n));
                }
                out.push(measure(label, t, "firing_rate", "", spikes_total / neuron_steps, n));
            }
            // The neuron models' diagnostics of one run per method: with per-T conversions,
            // the run to the largest T.
            if c == last {
                out.extend(diagnostic_measures(label, &sim.diagnostics, &conversion.slots, n));
            }
            if eval.exact_prefix_analysis {
                for k in 1..=conversion.network.layers.len() {
                    let hybrid = exact_prefix(&conversion.network, k);
                    let started = std::time::Instant::now();
                    let sim = simulate_all(&hybrid, data, &idx, eval, t_run as usize, &[], label, device)?;
                    simulation_seconds += started.elapsed().as_secs_f64();
                    for &t in &report_ts {
                        let accuracy = 100.0 * sim.correct_at_t[t as usize - 1] as f64 / n as f64;
                        out.push(measure(label, t, "accuracy_exact_to", &conversion.slots[k - 1].name, accuracy, n));
                    }
                }
            }
        }
    }
    // T = 0: the whole conversion cost of the row (the sum over per-T conversions), and the
    // wall-clock seconds of all its simulations on the evaluation images.
    out.insert(0, measure(label, 0, "simulation_seconds", "", simulation_seconds, n));
    out.insert(0, measure(label, 0, "conversion_seconds", "", total_seconds, n));
    Ok(out)
}

/// Operation counts of the ANN per sample (Lan et al. 2023, Table 8): a layer with D inputs per
/// output does D multiplications and D − 1 additions per output (bias additions not counted,
/// as in the paper). Static counts from a traced forward, independent of the weights; kept
/// out of the cached ANN stage so that older cache entries get them too.
pub fn ann_operation_measures(model: &Network, data: &Data, n_images: usize, device: &Device) -> Vec<Measure> {
    let macs = trace_macs(model, data.input_shape(), device);
    vec![
        measure("ann", 0, "multiplications", "", macs.iter().map(|m| m.macs as f64).sum(), n_images),
        measure("ann", 0, "additions", "", macs.iter().map(ann_additions).sum(), n_images),
    ]
}

/// Additions of a layer in the ANN: D − 1 per output for D = MACs / outputs inputs per output.
fn ann_additions(m: &LayerMacs) -> f64 {
    m.macs as f64 - m.outputs as f64
}

/// Operation counts of a converted network per sample at T (Lan et al. 2023, Table 8; Liu et
/// al. 2022, Table 4): a spiking network does no multiplications but the analog first
/// layer's (it sees the real-valued input every step: its MACs × T, `multiplications`); its
/// additions are N·(D − 1)·T if every input were active at every step (the papers' bound,
/// `additions_bound`) and, measured, one per synaptic event (SOPs) plus the first layer's
/// N·(D − 1)·T (`additions`).
fn operation_measures(label: &str, t: u32, sops: f64, layers: &[LayerMacs], n: usize) -> Vec<Measure> {
    let steps = t as f64;
    let first = layers.first();
    vec![
        measure(label, t, "additions_bound", "", layers.iter().map(ann_additions).sum::<f64>() * steps, n),
        measure(label, t, "additions", "", sops + first.map_or(0.0, ann_additions) * steps, n),
        measure(label, t, "multiplications", "", first.map_or(0.0, |m| m.macs as f64) * steps, n),
    ]
}

/// Rows of the neuron models' per-step diagnostics (e.g. the dynamic threshold's ω(t)) of one
/// simulation run: for every step t and every slot recording a diagnostic `d`,
/// `<d>_mean`/`<d>_min`/`<d>_max` over the evaluated samples (layer = the slot). Rows with an
/// empty layer repeat the *first* slot recording `d`.
fn diagnostic_measures(label: &str, diagnostics: &[Vec<Diagnostic>], slots: &[SlotInfo], n: usize) -> Vec<Measure> {
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (per_slot, slot) in diagnostics.iter().zip(slots) {
        for d in per_slot {
            let first = !seen.contains(&d.metric);
            seen.push(d.metric);
            for (i, st) in d.per_step.iter().enumerate().filter(|(_, st)| st.samples > 0) {
                let t = i as u32 + 1;
                for layer in if first { vec!["", slot.name.as_str()] } else { vec![slot.name.as_str()] } {
                    out.push(measure(label, t, &format!("{}_mean", d.metric), layer, st.mean(), n));
                    out.push(measure(label, t, &format!("{}_min", d.metric), layer, st.min as f64, n));
                    out.push(measure(label, t, &format!("{}_max", d.metric), layer, st.max as f64, n));
                }
            }
        }
    }
    out
}

/// Summed simulation results over all evaluation batches.
struct SimTotals {
    correct_at_t: Vec<u64>,
    /// Per slot: spikes per step 1..T (of each layer's window).
    spikes: Vec<Vec<u64>>,
    neurons: Vec<u64>,
    /// End-to-end latency L in steps.
    latency: usize,
    /// Per evaluated sample: its early-exit step, if it exited.
    exit_steps: Vec<Option<usize>>,
    /// Per evaluated sample: its label, and (early-exit readouts) its confidence trace.
    labels: Vec<i64>,
    confidence_trace: Vec<Vec<snn::readout::early_exit::StepConfidence>>,
    /// Per slot: the neuron model's diagnostics, merged over all batches.
    diagnostics: Vec<Vec<Diagnostic>>,
    /// With `[eval] layer_analysis`: per slot, the layer analysis summed over all batches.
    layers: Vec<LayerAnalysis>,
    /// Per step asked for (`output_steps`): the readout's outputs on every evaluated sample,
    /// `[n × D]` in evaluation order.
    outputs_at: Vec<(usize, Vec<f32>)>,
}

/// One slot's comparison with the ANN, summed over the evaluated samples.
#[derive(Clone, Debug, Default)]
struct LayerAnalysis {
    /// Σ |ANN activation − SNN time-averaged output| and the number of terms.
    abs_error: f64,
    elements: u64,
    /// Neurons whose ANN activation is ≤ 0.
    silent: u64,
    /// Of those, how many first spiked at step t (index t − 1).
    silent_first_spike: Vec<u64>,
}

impl LayerAnalysis {
    /// Adds one batch: the ANN's activations, the SNN's time-averaged outputs and first spike
    /// steps of the same neurons.
    fn add(&mut self, ann: &[f32], snn_mean: &[f32], first_spike: &[u32], timesteps: usize) {
        self.silent_first_spike.resize(timesteps, 0);
        for ((a, m), f) in ann.iter().zip(snn_mean).zip(first_spike) {
            self.abs_error += (a - m).abs() as f64;
            self.elements += 1;
            if *a <= 0.0 {
                self.silent += 1;
                if *f > 0 {
                    self.silent_first_spike[*f as usize - 1] += 1;
                }
            }
        }
    }

    /// Silent neurons that have spiked by step `t`.
    fn silent_spiked_by(&self, t: usize) -> u64 {
        self.silent_first_spike.iter().take(t).sum()
    }
}

fn simulate_all(
    net: &SpikingNetwork,
    data: &Data,
    idx: &[usize],
    eval: &EvalSection,
    timesteps: usize,
    output_steps: &[usize],
    label: &str,
    device: &Device,
) -> Result<SimTotals> {
    let on_cpu = crate::device::is_cpu(device);
    let sparse = match eval.engine {
        Engine::Dense => None,
        Engine::Event => Some(
            SparseNetwork::compile(net, data.input_shape())
                .with_context(|| format!("{label}: [eval] engine = \"event\""))?,
        ),
        Engine::Auto if on_cpu => SparseNetwork::compile(net, data.input_shape()).ok(),
        Engine::Auto => None,
    };
    let batches: Vec<&[usize]> = idx.chunks(eval.batch_size).collect();
    let bar = progress_bar(batches.len() as u64, &format!("{label} T={timesteps}"));
    let latency = net.latency(timesteps);
    let mut totals = SimTotals {
        correct_at_t: vec![0; timesteps],
        spikes: vec![vec![0; timesteps]; net.layers.len()],
        neurons: vec![],
        latency,
        exit_steps: Vec::with_capacity(idx.len()),
        labels: Vec::with_capacity(idx.len()),
        confidence_trace: Vec::new(),
        diagnostics: vec![Vec::new(); net.layers.len()],
        layers: if eval.layer_analysis { vec![LayerAnalysis::default(); net.layers.len()] } else { Vec::new() },
        outputs_at: Vec::new(),
    };
    let slots: Vec<usize> = if eval.layer_analysis { (0..net.layers.len()).collect() } else { Vec::new() };
    let plain = !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let started = std::time::Instant::now();
    let mut last_line = 0.0;
    for (b, chunk) in batches.iter().enumerate() {
        let (x, _, labels) = batch_tensors(&data.test, chunk, &data.norm, None, device);
        // Each batch's random streams are seeded by its index: the same spec gives the same spikes.
        let config = SimConfig {
            batch_seed: b as u64,
            record: slots.clone(),
            first_spikes: eval.layer_analysis,
            output_steps: output_steps.to_vec(),
            neurons_on_device: !on_cpu,
            ..SimConfig::new(timesteps, eval.chunk)
        };
        let ann = if eval.layer_analysis { convert::calibrate::ann_slot_outputs(net, &x) } else { Vec::new() };
        // Event frames: frame t at step t (the ANN and the calibration saw their mean).
        let input = match &data.test {
            Samples::Frames(set) => {
                SimInput::Frames { data: frame_tensors(set, chunk, &data.norm, device), frames: set.frames }
            }
            _ => SimInput::Static(x),
        };
        let (out, means) = match &sparse {
            Some(engine) => {
                let (out, means, _) = engine.simulate(net, &input, &labels, &config);
                (out, means)
            }
            None => simulate_input(net, &input, &labels, &config),
        };
        for (slot, analysis) in totals.layers.iter_mut().enumerate() {
            analysis.add(&ann[slot].0, &means[slot], &out.first_spike[slot], timesteps);
        }
        for (a, c) in totals.correct_at_t.iter_mut().zip(&out.correct_at_t) {
            *a += c;
        }
        for (acc, s) in totals.spikes.iter_mut().zip(&out.spikes) {
            for (a, v) in acc.iter_mut().zip(s) {
                *a += v;
            }
        }
        totals.neurons = out.neurons;
        totals.exit_steps.extend(out.exit_steps);
        totals.labels.extend_from_slice(&labels);
        totals.confidence_trace.extend(out.confidence_trace);
        for (step, outputs) in out.outputs_at {
            match totals.outputs_at.iter_mut().find(|(s, _)| *s == step) {
                Some((_, all)) => all.extend(outputs),
                None => totals.outputs_at.push((step, outputs)),
            }
        }
        for (acc, per_slot) in totals.diagnostics.iter_mut().zip(out.diagnostics) {
            merge_diagnostics(acc, per_slot);
        }
        bar.inc(1);
        // In logs (no terminal): every 10th batch, the last one, and at least once a minute.
        let elapsed = started.elapsed().as_secs_f64();
        if plain && ((b + 1) % 10 == 0 || b + 1 == batches.len() || elapsed - last_line >= 60.0) {
            last_line = elapsed;
            eprintln!("  {label} T={timesteps}: {}", batch_progress(b + 1, batches.len(), elapsed));
        }
    }
    bar.finish_and_clear();
    Ok(totals)
}

/// `batch 3/10 (12s, ETA 28s)`: batches done of `total` after `elapsed` seconds, and the time
/// the rest takes at the rate so far (no ETA once done).
fn batch_progress(done: usize, total: usize, elapsed: f64) -> String {
    if done >= total || done == 0 {
        return format!("batch {done}/{total} ({elapsed:.0}s)");
    }
    let eta = elapsed / done as f64 * (total - done) as f64;
    format!("batch {done}/{total} ({elapsed:.0}s, ETA {eta:.0}s)")
}

/// Rows of the layer analysis at reported step `t` of a run: per slot `sin_ratio` (by step t)
/// and, at the run's own T, `activation_error`; `sin_ratio` over all slots with layer "".
fn layer_analysis_measures(
    label: &str,
    t: u32,
    layers: &[LayerAnalysis],
    slots: &[SlotInfo],
    n: usize,
) -> Vec<Measure> {
    let mut out = Vec::new();
    if layers.is_empty() {
        return out;
    }
    let tt = t as usize;
    let (mut silent, mut spiked) = (0u64, 0u64);
    for (a, slot) in layers.iter().zip(slots) {
        let by_t = a.silent_spiked_by(tt);
        silent += a.silent;
        spiked += by_t;
        if a.silent > 0 {
            out.push(measure(label, t, "sin_ratio", &slot.name, by_t as f64 / a.silent as f64, n));
        }
        if tt == a.silent_first_spike.len() && a.elements > 0 {
            out.push(measure(label, t, "activation_error", &slot.name, a.abs_error / a.elements as f64, n));
        }
    }
    if silent > 0 {
        out.push(measure(label, t, "sin_ratio", "", spiked as f64 / silent as f64, n));
    }
    out
}

/// Energy per synaptic operation of an SNN on neuromorphic hardware (paper 002, after [50]).
pub const SNN_JOULES_PER_SOP: f64 = 77e-15;
/// Energy per multiply-accumulate (FLOP in paper 002's accounting) of an ANN.
pub const ANN_JOULES_PER_MAC: f64 = 12.5e-12;

/// Energy per accumulate (a synaptic operation) of an SNN, Wang et al. 2024 (after Horowitz 2014, 45 nm).
pub const SNN_JOULES_PER_AC: f64 = 0.9e-12;
/// Energy per multiply-accumulate of an analog (real-valued) layer, Wang et al. 2024.
pub const JOULES_PER_MAC_45NM: f64 = 4.6e-12;

/// The whole-network value of `metric` at `t`, if measured.
/// The metrics a task may score by, in the order [`primary_metric`] looks for them.
pub const PRIMARY_METRICS: [&str; 3] = ["accuracy", "map50", "miou"];

/// The task's primary metric (`accuracy`, a detector's `map50`, a segmenter's `miou`) as the
/// ANN's rows show it: what `loss` and the `t_within_1pp`/`sop90` summaries compare. Read
/// from the rows, so a report from the cache needs no model.
pub fn primary_metric(ann: &[Measure]) -> &'static str {
    PRIMARY_METRICS.into_iter().find(|m| find(ann, m, 0).is_some()).unwrap_or("accuracy")
}

fn find<'a>(ms: impl IntoIterator<Item = &'a Measure>, metric: &str, t: u32) -> Option<f64> {
    ms.into_iter().find(|m| m.metric == metric && m.t == t && m.layer.is_empty()).map(|m| m.value)
}

/// Energy figures derived from measured rows (Bu et al. 2025, appendix): per image
/// `energy_j` = 12.5 pJ × MACs (ANN) or 77 fJ × SOPs (SNN, at each T) and `fps_per_watt` =
/// 1 / energy; `sop90`/`sop95` = SOPs per image at the first reported T whose accuracy reaches
/// 90 %/95 % of the ANN's (row T = that T), with the matching `fps_per_watt90`/`95`;
/// `t_within_1pp` = the smallest reported T whose accuracy is within 1 pp of the ANN's (row T =
/// that T, value T), with `sops_within_1pp`, `energy_j_within_1pp` and `energy_mj_within_1pp`
/// there.
///
/// `energy_mj` (Wang et al. 2024's accounting, in mJ per image): 0.9 pJ per accumulate
/// (SOPs: spikes × fan-out, a burst of s spikes counting s times) plus 4.6 pJ per MAC of the
/// first layer, which takes the analog image at every step it runs (`mean_exit_step` steps
/// under an early-exit readout, else T); the ANN: 4.6 pJ × MACs. `energy_ratio` = the SNN's
/// `energy_mj` / the ANN's; `synaptic_energy_ratio` = 0.9 pJ × SOPs / (4.6 pJ × the ANN's MACs),
/// He et al. 2023's accounting (SNN operations Σ_{l≥2} MAC_l × spikes of layer l−1; the first
/// layer's analog input is not counted).
pub fn energy_measures(ann: &[Measure], method: &[Measure]) -> Vec<Measure> {
    let mut out = Vec::new();
    let primary = primary_metric(ann);
    let (Some(ann_acc), Some(macs)) = (find(ann, primary, 0), find(ann, "macs", 0)) else {
        return out;
    };
    let n = ann.first().map(|m| m.n_images).unwrap_or(0);
    let e_ann = macs * ANN_JOULES_PER_MAC;
    out.push(measure("ann", 0, "energy_j", "", e_ann, n));
    out.push(measure("ann", 0, "fps_per_watt", "", 1.0 / e_ann, n));
    out.push(measure("ann", 0, "energy_mj", "", macs * JOULES_PER_MAC_45NM * 1e3, n));
    let first_layer_macs = ann.iter().find(|m| m.metric == "macs" && !m.layer.is_empty()).map_or(0.0, |m| m.value);
    let mut labels: Vec<&str> = method.iter().map(|m| m.method.as_str()).collect();
    labels.dedup();
    for label in labels {
        let mine: Vec<&Measure> = method.iter().filter(|m| m.method == label).collect();
        let mut ts: Vec<u32> = mine.iter().filter(|m| m.metric == "sops").map(|m| m.t).collect();
        ts.sort_unstable();
        ts.dedup();
        let get = |metric: &str, t: u32| find(mine.iter().copied(), metric, t);
        for &t in &ts {
            if let Some(sops) = get("sops", t) {
                let e = sops * SNN_JOULES_PER_SOP;
                out.push(measure(label, t, "energy_j", "", e, n));
                out.push(measure(label, t, "fps_per_watt", "", if e > 0.0 { 1.0 / e } else { f64::INFINITY }, n));
                let steps = get("mean_exit_step", t).unwrap_or(t as f64);
                let joules = sops * SNN_JOULES_PER_AC + first_layer_macs * steps * JOULES_PER_MAC_45NM;
                out.push(measure(label, t, "energy_mj", "", joules * 1e3, n));
                let ann_joules = macs * JOULES_PER_MAC_45NM;
                if ann_joules > 0.0 {
                    out.push(measure(label, t, "energy_ratio", "", joules / ann_joules, n));
                    let synaptic = sops * SNN_JOULES_PER_AC / ann_joules;
                    out.push(measure(label, t, "synaptic_energy_ratio", "", synaptic, n));
                }
            }
        }
        // The smallest evaluated T within 1 pp of the ANN, and the cost of running there.
        if let Some(&t) = ts.iter().find(|&&t| get(primary, t).is_some_and(|a| a >= ann_acc - 1.0)) {
            out.push(measure(label, t, "t_within_1pp", "", t as f64, n));
            if let Some(sops) = get("sops", t) {
                out.push(measure(label, t, "sops_within_1pp", "", sops, n));
                out.push(measure(label, t, "energy_j_within_1pp", "", sops * SNN_JOULES_PER_SOP, n));
                let steps = get("mean_exit_step", t).unwrap_or(t as f64);
                let mj = (sops * SNN_JOULES_PER_AC + first_layer_macs * steps * JOULES_PER_MAC_45NM) * 1e3;
                out.push(measure(label, t, "energy_mj_within_1pp", "", mj, n));
            }
        }
        for (fraction, name) in [(0.90, "90"), (0.95, "95")] {
            let reached = ts.iter().find(|&&t| get(primary, t).is_some_and(|a| a >= fraction * ann_acc));
            if let Some(&t) = reached
                && let Some(sops) = get("sops", t)
            {
                out.push(measure(label, t, &format!("sop{name}"), "", sops, n));
                out.push(measure(label, t, &format!("fps_per_watt{name}"), "", 1.0 / (sops * SNN_JOULES_PER_SOP), n));
            }
        }
    }
    out
}

/// Conversion loss and rate (Lan et al. 2023's table columns) from measured accuracies: at
/// each T of each method, `loss` = ANN − SNN accuracy (pp) and `rate` = 100 · SNN / ANN (%).
/// Dense tasks: of their primary metric ([`primary_metric`]: `map50` or `miou`).
pub fn conversion_loss_measures(ann: &[Measure], method: &[Measure]) -> Vec<Measure> {
    let primary = primary_metric(ann);
    let Some(ann_acc) = find(ann, primary, 0) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for m in method.iter().filter(|m| m.metric == primary && m.layer.is_empty()) {
        out.push(measure(&m.method, m.t, "loss", "", ann_acc - m.value, m.n_images));
        if ann_acc > 0.0 {
            out.push(measure(&m.method, m.t, "rate", "", 100.0 * m.value / ann_acc, m.n_images));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_progress_extrapolates_the_rate_so_far() {
        assert_eq!(batch_progress(3, 10, 12.0), "batch 3/10 (12s, ETA 28s)");
        assert_eq!(batch_progress(10, 10, 40.0), "batch 10/10 (40s)");
    }

    #[test]
    fn a_method_version_past_one_changes_the_eval_key_and_version_one_keeps_the_old_key() {
        let text = "[dataset]\nname = \"synthetic-shapes2d\"\n[model]\nname = \"small-cnn\"\n\
                    [[method]]\nkind = \"robust-norm\"\n\
                    [[method]]\nkind = \"snn-calibration\"\n\
                    [[method]]\nkind = \"snn-calibration\"\nlabel = \"plain\"\nmode = \"threshold-only\"\n\
                    [eval]\ntimesteps = [4]\n";
        let raw: toml::Table = toml::from_str(text).unwrap();
        let spec = crate::spec::parse_table(std::path::Path::new("s.toml"), &raw).unwrap();
        let key = |m: &MethodEntry| eval_key("ann", "test", m, &spec.convert, &spec.eval, 0);
        let old = |m: &MethodEntry| {
            stage_key("eval", EVAL_STAGE_VERSION, &("ann", "test", m, &spec.convert, &spec.eval, 0u64))
        };
        let [robust, light, plain] = &spec.methods[..] else { panic!("three methods") };
        assert_eq!(robust.config.version(), 1);
        assert_eq!(key(robust), old(robust), "a version-1 method keeps the key it always had");
        assert_eq!(plain.config.version(), 1, "threshold-only calibration runs no simulation");
        assert_eq!(key(plain), old(plain));
        assert_eq!(light.config.version(), 2, "bias correction on the event-driven engine");
        assert_ne!(key(light), old(light), "results of the older code are not reused");
    }

    #[test]
    fn bumping_a_neuron_or_readout_version_changes_only_the_keys_of_evaluations_using_it() {
        use snn::readout::accumulate::Accumulate;
        use snn::{NeuronKind, ReadoutKind, neuron::integrate_and_fire::IntegrateAndFire};
        // Kinds of their own (the registries are global): an IF neuron and the accumulate
        // readout under new names, registered at version 1, then again at version 2.
        let register = |version: u32| {
            let mut neuron = NeuronKind::of::<IntegrateAndFire>();
            (neuron.name, neuron.version) = ("if-versioned-in-a-test", version);
            snn::register_neuron(neuron);
            let mut readout = ReadoutKind::of::<Accumulate>();
            (readout.name, readout.version) = ("accumulate-versioned-in-a-test", version);
            snn::register_readout(readout);
        };
        register(1);
        let text = "[dataset]\nname = \"synthetic-shapes2d\"\n[model]\nname = \"small-cnn\"\n\
                    [[method]]\nkind = \"robust-norm\"\n\
                    [[method]]\nkind = \"robust-norm\"\nlabel = \"n\"\n\
                    [method.neuron]\nkind = \"if-versioned-in-a-test\"\n\
                    [[method]]\nkind = \"robust-norm\"\nlabel = \"r\"\n\
                    [method.readout]\nkind = \"accumulate-versioned-in-a-test\"\n\
                    [eval]\ntimesteps = [4]\n";
        let raw: toml::Table = toml::from_str(text).unwrap();
        let spec = crate::spec::parse_table(std::path::Path::new("s.toml"), &raw).unwrap();
        let keys = || -> Vec<String> {
            spec.methods.iter().map(|m| eval_key("ann", "test", m, &spec.convert, &spec.eval, 0)).collect()
        };
        let before = keys();
        let old = |m: &MethodEntry| {
            stage_key("eval", EVAL_STAGE_VERSION, &("ann", "test", m, &spec.convert, &spec.eval, 0u64))
        };
        let unchanged: Vec<String> = spec.methods.iter().map(old).collect();
        assert_eq!(before, unchanged, "version-1 neurons and readouts keep the keys they always had");
        register(2);
        let after = keys();
        assert_eq!(after[0], before[0], "the default IF neuron and accumulate readout were not bumped");
        assert_ne!(after[1], before[1], "the bumped neuron's evaluations are recomputed");
        assert_ne!(after[2], before[2], "the bumped readout's evaluations are recomputed");
        assert_ne!(after[1], after[2]);
    }

    #[test]
    fn loss_and_rate_follow_the_paper_definitions() {
        let ann = vec![measure("ann", 0, "accuracy", "", 80.0, 10)];
        let snn = vec![measure("m", 4, "accuracy", "", 60.0, 10), measure("m", 4, "sops", "", 1e6, 10)];
        let out = conversion_loss_measures(&ann, &snn);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].metric.as_str(), out[0].t, out[0].value), ("loss", 4, 20.0));
        assert_eq!((out[1].metric.as_str(), out[1].value), ("rate", 75.0));
    }

    #[test]
    fn energy_mj_counts_accumulates_and_the_analog_first_layer_per_step_run() {
        let ann = vec![
            measure("ann", 0, "accuracy", "", 80.0, 10),
            measure("ann", 0, "macs", "", 1e6, 10),
            measure("ann", 0, "macs", "conv1", 1e5, 10),
            measure("ann", 0, "macs", "fc", 9e5, 10),
        ];
        let snn = vec![
            measure("x", 8, "sops", "", 2e6, 10),
            measure("x", 8, "accuracy", "", 70.0, 10),
            measure("y", 8, "sops", "", 2e6, 10),
            measure("y", 8, "mean_exit_step", "", 2.0, 10),
        ];
        let e = energy_measures(&ann, &snn);
        let mj = |method: &str| e.iter().find(|m| m.method == method && m.metric == "energy_mj").unwrap().value;
        // 0.9 pJ × 2e6 + 4.6 pJ × 1e5 × 8 steps = 1.8 µJ + 3.68 µJ.
        assert!((mj("x") - 5.48e-3).abs() < 1e-9, "{}", mj("x"));
        // Early exit after 2 steps on average: the first layer runs 2 steps.
        assert!((mj("y") - (1.8e-3 + 0.92e-3)).abs() < 1e-9, "{}", mj("y"));
        // Against the ANN's 4.6 pJ × 1e6 MACs = 4.6 µJ: all of x's energy, and its synaptic
        // part alone (He et al. 2023: 0.9 pJ × 2e6 SOPs).
        let of = |metric: &str| e.iter().find(|m| m.method == "x" && m.metric == metric).unwrap().value;
        assert!((of("energy_ratio") - 5.48 / 4.6).abs() < 1e-9, "{}", of("energy_ratio"));
        assert!((of("synaptic_energy_ratio") - 1.8 / 4.6).abs() < 1e-9, "{}", of("synaptic_energy_ratio"));
        // x (70 %) is 10 pp below the ANN: no T within 1 pp.
        assert!(!e.iter().any(|m| m.method == "x" && m.metric == "t_within_1pp"));
        let snn = vec![
            measure("z", 4, "accuracy", "", 78.0, 10),
            measure("z", 4, "sops", "", 1e6, 10),
            measure("z", 8, "accuracy", "", 79.5, 10),
            measure("z", 8, "sops", "", 2e6, 10),
            measure("z", 16, "accuracy", "", 80.2, 10),
            measure("z", 16, "sops", "", 4e6, 10),
        ];
        let e = energy_measures(&ann, &snn);
        let within = e.iter().find(|m| m.metric == "t_within_1pp").unwrap();
        assert_eq!((within.t, within.value), (8, 8.0));
        let sops = e.iter().find(|m| m.metric == "sops_within_1pp").unwrap();
        assert_eq!((sops.t, sops.value), (8, 2e6));
        assert!((mj("ann") - 4.6e-3).abs() < 1e-12);
    }

    #[test]
    fn energy_follows_paper_002_accounting() {
        let ann = vec![measure("ann", 0, "accuracy", "", 80.0, 10), measure("ann", 0, "macs", "", 3.6e9, 10)];
        let snn = vec![
            measure("x", 8, "accuracy", "", 60.0, 10),
            measure("x", 8, "sops", "", 1e9, 10),
            measure("x", 16, "accuracy", "", 73.0, 10),
            measure("x", 16, "sops", "", 2e9, 10),
            measure("x", 32, "accuracy", "", 77.0, 10),
            measure("x", 32, "sops", "", 4e9, 10),
        ];
        let e = energy_measures(&ann, &snn);
        let get = |method: &str, metric: &str| e.iter().find(|m| m.method == method && m.metric == metric).unwrap();
        // ResNet-34 sanity: 3.6 GMAC × 12.5 pJ = 45 mJ → 22 FPS/W, as paper 002 reports.
        assert!((get("ann", "fps_per_watt").value - 22.2).abs() < 0.1);
        // Within 1 pp of 80: 79; never reached here.
        assert!(e.iter().all(|m| m.metric != "t_within_1pp"));
        // 90 % of 80 = 72 is first reached at T = 16; 95 % (76) at T = 32.
        assert_eq!((get("x", "sop90").t, get("x", "sop90").value), (16, 2e9));
        assert_eq!((get("x", "sop95").t, get("x", "sop95").value), (32, 4e9));
        assert!((get("x", "fps_per_watt90").value - 1.0 / (2e9 * 77e-15)).abs() < 1e-6);
    }
}
