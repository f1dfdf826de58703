//! The extensibility contract: a neuron, a readout and a method defined here, in this test
//! file alone, registered at run time and run end to end through a spec.

use convert::{ConversionMethod, MeasureContext, MethodKind, MethodMeasure, RegisteredMethod, SlotStats};
use runner::report::read_csv;
use runner::run::{Mode, run_spec};
use serde::{Deserialize, Serialize};
use snn::neuron::config_table;
use snn::readout::argmax_rows;
use snn::{
    Coding, LayerShape, NeuronKind, NeuronLayerSpec, NeuronModel, NeuronState, RateModel, Readout, ReadoutKind,
    ReadoutState, RegisteredNeuron, RegisteredReadout, RunInfo,
};

mod common;
use common::options;

/// Toy neuron: integrate-and-fire with a threshold scaled by `gain` (fires at v ≥ gain·θ,
/// emits gain·θ, soft reset).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaledIf {
    gain: f32,
}

impl RegisteredNeuron for ScaledIf {
    const KIND: &'static str = "scaled-if-toy";
    const DESCRIPTION: &'static str = "test neuron";
    fn check(&self) -> Result<(), String> {
        if self.gain > 0.0 { Ok(()) } else { Err("gain must be positive".into()) }
    }
}

struct ScaledIfState {
    v: Vec<f32>,
    theta: Vec<f32>,
    shape: LayerShape,
}

impl NeuronModel for ScaledIf {
    fn kind(&self) -> &'static str {
        Self::KIND
    }
    fn config(&self) -> toml::Table {
        config_table(Self::KIND, self)
    }
    fn new_state(&self, layer: &NeuronLayerSpec, shape: LayerShape, _run: RunInfo) -> Box<dyn NeuronState> {
        let theta = (0..shape.channels).map(|c| self.gain * layer.threshold(c)).collect();
        Box::new(ScaledIfState { v: vec![0.0; shape.len()], theta, shape })
    }
    fn rate_model(&self) -> RateModel {
        RateModel { max_spikes_per_step: 1, input_shift: false, initial_potential: 0.0, coding: Coding::Rate }
    }
}

impl NeuronState for ScaledIfState {
    fn run(&mut self, data: &mut [f32], spikes: &mut Vec<u32>) {
        let n = self.v.len();
        let per_sample = self.shape.per_sample();
        for step in data.chunks_mut(n) {
            for (xs, vs) in step.chunks_mut(per_sample).zip(self.v.chunks_mut(per_sample)) {
                let mut count = 0;
                for (i, (x, v)) in xs.iter_mut().zip(vs.iter_mut()).enumerate() {
                    let theta = self.theta[if self.theta.len() == 1 { 0 } else { i / self.shape.inner }];
                    *v += *x;
                    *x = if *v >= theta {
                        *v -= theta;
                        count += 1;
                        theta
                    } else {
                        0.0
                    };
                }
                spikes.push(count);
            }
        }
    }
}

/// Toy readout: the argmax of the last step's output only.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LastStep {}

impl RegisteredReadout for LastStep {
    const KIND: &'static str = "last-step-toy";
    const DESCRIPTION: &'static str = "test readout";
}

struct LastStepState {
    last: Vec<f32>,
    classes: usize,
}

impl Readout for LastStep {
    fn kind(&self) -> &'static str {
        Self::KIND
    }
    fn config(&self) -> toml::Table {
        config_table(Self::KIND, self)
    }
    fn new_state(&self, batch: usize, classes: usize) -> Box<dyn ReadoutState> {
        Box::new(LastStepState { last: vec![0.0; batch * classes], classes })
    }
}

impl ReadoutState for LastStepState {
    fn push(&mut self, _t: usize, output: &[f32]) {
        self.last.copy_from_slice(output);
    }
    fn predictions(&self) -> Vec<usize> {
        argmax_rows(&self.last, self.classes)
    }
}

/// Toy method: θ = `fraction` × the layer's max, converted to the toy neuron with gain 1,
/// calibrated per T through its `timesteps` parameter, adding one row of its own.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FractionOfMax {
    fraction: f32,
    #[serde(default)]
    timesteps: u32,
}

impl RegisteredMethod for FractionOfMax {
    const KIND: &'static str = "fraction-of-max-toy";
    const DESCRIPTION: &'static str = "test method";
    fn check(&self) -> Result<(), String> {
        if self.fraction > 0.0 { Ok(()) } else { Err(format!("fraction must be positive, got {}", self.fraction)) }
    }
}

impl ConversionMethod for FractionOfMax {
    fn thresholds(&self, stats: &SlotStats) -> Vec<f32> {
        vec![(self.fraction * stats.max()).max(1e-3)]
    }
    fn default_neuron(&self) -> toml::Table {
        toml::toml! {
            kind = "scaled-if-toy"
            gain = 1.0
        }
    }
    fn calibration_timesteps_param(&self) -> Option<&'static str> {
        Some("timesteps")
    }
    fn measures(&self, at: &MeasureContext) -> Vec<MethodMeasure> {
        vec![MethodMeasure::new("toy_spikes_per_step", at.spikes / at.timesteps as f64)]
    }
}

fn register() {
    snn::register_neuron(NeuronKind::of::<ScaledIf>());
    snn::register_readout(ReadoutKind::of::<LastStep>());
    convert::register_method(MethodKind::of::<FractionOfMax>());
}

const SPEC: &str = r#"
[experiment]
name = "toy"
[dataset]
name = "synthetic-shapes2d"
[dataset.synthetic]
train_size = 400
test_size = 100
image_size = 16
seed = 1
[model]
name = "small-cnn"
width = 0.5
[train]
optimizer = "adam"
lr = 0.003
weight_decay = 0.0
batch_size = 50
epochs = 2
[convert]
calibration_images = 100
calibrate_at_eval_t = true
[[method]]
kind = "fraction-of-max-toy"
fraction = 0.8
[[method]]
kind = "fraction-of-max-toy"
label = "toy-gain2-last"
fraction = 0.8
[method.neuron]
gain = 2.0
[method.readout]
kind = "last-step-toy"
[eval]
timesteps = [8, 32]
batch_size = 50
chunk = 8
[table]
rows = ["method"]
"#;

#[test]
fn a_toy_neuron_readout_and_method_run_end_to_end_through_a_spec() {
    register();
    let names = |v: Vec<&'static str>| v.contains(&"scaled-if-toy");
    assert!(names(snn::neuron_kinds().iter().map(|k| k.name).collect()));
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("toy.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let out = run_spec(&spec, &options(dir.path()), Mode::Compute).unwrap();
    let rows = read_csv(&out.join("results.csv")).unwrap();
    let value = |method: &str, t: u32, metric: &str| {
        rows.iter()
            .find(|r| r.method == method && r.t == t && r.metric == metric && r.layer.is_empty())
            .unwrap_or_else(|| panic!("no {metric} row for {method} at T={t}"))
            .value
    };
    for t in [8, 32] {
        for method in ["fraction-of-max-toy", "toy-gain2-last"] {
            let acc = value(method, t, "accuracy");
            assert!((0.0..=100.0).contains(&acc));
            // The method's own row: spikes per step = spikes / T.
            let per_step = value(method, t, "toy_spikes_per_step");
            assert!((per_step - value(method, t, "spikes") / t as f64).abs() < 1e-9);
        }
        // The doubled threshold halves (about) the spikes.
        let (one, two) = (value("fraction-of-max-toy", t, "spikes"), value("toy-gain2-last", t, "spikes"));
        assert!(two < 0.75 * one, "gain 2 spikes {two} vs gain 1 {one}");
    }
    // Per-T calibration used the method's parameter: one conversion row per T.
    assert_eq!(
        rows.iter().filter(|r| r.method == "fraction-of-max-toy" && r.metric == "conversion_seconds").count(),
        3
    );
    let resolved = std::fs::read_to_string(out.join("spec.resolved.toml")).unwrap();
    assert!(resolved.contains("last-step-toy") && resolved.contains("gain = 2.0"), "{resolved}");
    // Bad parameters of the toy kinds are spec errors naming the key.
    let bad = SPEC.replace("gain = 2.0", "gain = -1.0");
    std::fs::write(&spec, bad).unwrap();
    let err = format!("{:#}", run_spec(&spec, &options(dir.path()), Mode::Compute).unwrap_err());
    assert!(err.contains("gain must be positive"), "{err}");
}
