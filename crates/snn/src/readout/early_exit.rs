//! `early-exit`: per-sample early exit on the confidence of the accumulated output (the
//! rule of Input-aware Adaptive Timesteps, Wang et al. 2024): with p = softmax(Σ_{k≤t} o(k))
//! over C classes and the normalised entropy H_t = −Σ p log p / log C, a sample stops at the
//! first step t ≥ `min_steps` with
//! ```text
//! 1 − H_t > α_t        (α_t = `confidence[t − 1]`, the last entry for later steps)
//! ```
//! and keeps the prediction of that step; its spikes after the step are not counted. A
//! sample that never meets the rule runs to T. With `score = "average"` the entropy is that of
//! softmax((1/t)·Σ_{k≤t} o(k)), the time-averaged output, whose softmax does not sharpen as t
//! grows (not the paper's rule, which sums as the authors' code does).
//!
//! Spec: `[method.readout] kind = "early-exit"`, `confidence = 0.9` (one α for every step) or
//! `confidence = [α_1, α_2, ...]` (per step), `min_steps = 1`, `score = "sum"` (default) or
//! `"average"`.

use serde::{Deserialize, Serialize};

use super::{Readout, ReadoutState, RegisteredReadout, argmax, argmax_rows};
use crate::neuron::config_table;

/// One α for every step, or one per step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Confidence {
    /// The same α at every step.
    Constant(f32),
    /// α_t per step (the last value for steps beyond the list).
    PerStep(Vec<f32>),
}

impl Confidence {
    /// α at step `t` (1-based).
    pub fn at(&self, t: usize) -> f32 {
        match self {
            Confidence::Constant(a) => *a,
            Confidence::PerStep(v) => v[(t.max(1) - 1).min(v.len() - 1)],
        }
    }
}

fn one() -> usize {
    1
}

/// The output whose confidence the rule tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExitScore {
    /// The output summed over the steps so far (Wang et al. 2024 and their code).
    #[default]
    Sum,
    /// The output averaged over the steps so far.
    Average,
}

impl ExitScore {
    fn is_sum(&self) -> bool {
        *self == ExitScore::Sum
    }

    /// This score's confidence in a step's record.
    pub fn of(self, step: &StepConfidence) -> f32 {
        match self {
            ExitScore::Sum => step.cumulative,
            ExitScore::Average => step.averaged,
        }
    }

    /// 1 − normalised entropy of this score of an output summed over `t` steps, `sum`.
    pub fn confidence(self, sum: &[f32], t: usize) -> f32 {
        match self {
            ExitScore::Sum => confidence_of(sum),
            ExitScore::Average => {
                let scale = 1.0 / t.max(1) as f32;
                confidence_of(&sum.iter().map(|v| v * scale).collect::<Vec<_>>())
            }
        }
    }
}

/// Early exit on 1 − normalised entropy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyExit {
    /// α_t.
    pub confidence: Confidence,
    /// No exit before this step.
    #[serde(default = "one")]
    pub min_steps: usize,
    /// The output whose confidence is tested: `sum` (default; left out of the configuration,
    /// and so of cache keys) or `average`.
    #[serde(default, skip_serializing_if = "ExitScore::is_sum")]
    pub score: ExitScore,
}

/// 1 − H(softmax(`scores`)) / log C, in [0, 1].
pub fn confidence_of(scores: &[f32]) -> f32 {
    let c = scores.len();
    if c < 2 {
        return 1.0;
    }
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = scores.iter().map(|s| ((s - max) as f64).exp()).collect();
    let z: f64 = exps.iter().sum();
    let h: f64 = exps.iter().map(|e| e / z).filter(|p| *p > 0.0).map(|p| -p * p.ln()).sum();
    (1.0 - h / (c as f64).ln()) as f32
}

/// One sample after coding step t, as an exit rule sees it (`SimOutput::confidence_trace`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepConfidence {
    /// 1 − H of softmax(Σ_{k≤t} o(k)): the confidence the `early-exit` rule tests.
    pub cumulative: f32,
    /// 1 − H of softmax((1/t)·Σ_{k≤t} o(k)): the same on the time-averaged output, whose
    /// softmax temperature does not fall as t grows (not the paper's rule; a diagnostic).
    pub averaged: f32,
    /// The class the sum predicts.
    pub class: u32,
}

impl StepConfidence {
    /// The record of one sample whose output summed over `t` steps is `sum`.
    pub fn of(sum: &[f32], t: usize) -> Self {
        Self {
            cumulative: ExitScore::Sum.confidence(sum, t),
            averaged: ExitScore::Average.confidence(sum, t),
            class: super::argmax(sum) as u32,
        }
    }
}

impl EarlyExit {
    /// The exit of one sample replayed from its confidence trace (per step t = 1..T): the
    /// first t ≥ `min_steps` with cumulative confidence > α_t, and the prediction there; T and
    /// the last prediction when the rule never fires. Exactly what the readout decides during
    /// a run.
    pub fn replay(&self, trace: &[StepConfidence]) -> (usize, u32) {
        exit_step(trace, &self.confidence, self.min_steps, |s| self.score.of(s))
    }
}

/// The exit (step, prediction) of a confidence trace under thresholds `confidence`, no exit
/// before `min_steps`, testing `score` of each step's record: the first t ≥ `min_steps` with
/// score > α_t, else T and the last prediction. (0, 0) for an empty trace.
pub fn exit_step(
    trace: &[StepConfidence],
    confidence: &Confidence,
    min_steps: usize,
    score: impl Fn(&StepConfidence) -> f32,
) -> (usize, u32) {
    for (i, step) in trace.iter().enumerate() {
        let t = i + 1;
        if t >= min_steps && score(step) > confidence.at(t) {
            return (t, step.class);
        }
    }
    trace.last().map_or((0, 0), |step| (trace.len(), step.class))
}

impl RegisteredReadout for EarlyExit {
    const KIND: &'static str = "early-exit";
    const DESCRIPTION: &'static str =
        "per-sample exit at the first t with 1 − normalised entropy > confidence (IAT, Wang et al. 2024)";
    fn check(&self) -> Result<(), String> {
        let ok = |a: f32| (0.0..=1.0).contains(&a);
        match &self.confidence {
            Confidence::Constant(a) if !ok(*a) => Err(format!("confidence must be in [0, 1], got {a}")),
            Confidence::PerStep(v) if v.is_empty() || !v.iter().all(|a| ok(*a)) => {
                Err("confidence must be a number or a non-empty list of numbers in [0, 1]".into())
            }
            _ => Ok(()),
        }
    }
}

impl Readout for EarlyExit {
    fn kind(&self) -> &'static str {
        Self::KIND
    }
    fn config(&self) -> toml::Table {
        config_table(Self::KIND, self)
    }
    fn exits_early(&self) -> bool {
        true
    }
    fn new_state(&self, batch: usize, classes: usize) -> Box<dyn ReadoutState> {
        Box::new(EarlyExitState {
            rule: self.clone(),
            sum: vec![0.0; batch * classes],
            classes,
            exits: vec![None; batch],
            frozen: vec![0; batch],
            t: 0,
        })
    }
}

struct EarlyExitState {
    rule: EarlyExit,
    sum: Vec<f32>,
    classes: usize,
    exits: Vec<Option<usize>>,
    frozen: Vec<usize>,
    /// The last step pushed.
    t: usize,
}

impl ReadoutState for EarlyExitState {
    fn push(&mut self, t: usize, output: &[f32]) {
        let alpha = self.rule.confidence.at(t);
        self.t = t;
        let c = self.classes;
        for (i, (row, out)) in self.sum.chunks_mut(c).zip(output.chunks(c)).enumerate() {
            if self.exits[i].is_some() {
                continue;
            }
            for (a, o) in row.iter_mut().zip(out) {
                *a += o;
            }
            if t >= self.rule.min_steps && self.rule.score.confidence(row, t) > alpha {
                self.exits[i] = Some(t);
                self.frozen[i] = argmax(row);
            }
        }
    }
    fn predictions(&self) -> Vec<usize> {
        let live = argmax_rows(&self.sum, self.classes);
        self.exits.iter().zip(live).zip(&self.frozen).map(|((e, l), f)| if e.is_some() { *f } else { l }).collect()
    }
    fn exit_steps(&self) -> Vec<Option<usize>> {
        self.exits.clone()
    }
    /// Per sample, the mean of its steps up to its exit step (or up to t while it runs).
    fn outputs(&self) -> Option<Vec<f32>> {
        let c = self.classes.max(1);
        let mut out = Vec::with_capacity(self.sum.len());
        for (row, exit) in self.sum.chunks(c).zip(&self.exits) {
            let steps = exit.unwrap_or(self.t).max(1) as f32;
            out.extend(row.iter().map(|a| a / steps));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_is_one_minus_normalised_entropy() {
        assert!(confidence_of(&[0.0, 0.0, 0.0, 0.0]).abs() < 1e-6, "uniform: H = log C");
        assert!(confidence_of(&[100.0, 0.0]) > 0.999);
        // Two classes with p = (e/(1+e), 1/(1+e)).
        let p = 1.0f64.exp() / (1.0 + 1.0f64.exp());
        let h = -(p * p.ln() + (1.0 - p) * (1.0 - p).ln()) / 2f64.ln();
        assert!((confidence_of(&[1.0, 0.0]) as f64 - (1.0 - h)).abs() < 1e-6);
    }

    #[test]
    fn exits_per_sample_and_freezes_the_prediction() {
        let rule = EarlyExit { confidence: Confidence::Constant(0.5), min_steps: 2, score: ExitScore::Sum };
        let mut s = rule.new_state(2, 2);
        // Sample 0 is confident from step 1, but min_steps = 2; sample 1 never is.
        s.push(1, &[10.0, 0.0, 0.1, 0.0]);
        assert_eq!(s.exit_steps(), vec![None, None]);
        s.push(2, &[10.0, 0.0, 0.0, 0.1]);
        assert_eq!(s.exit_steps(), vec![Some(2), None]);
        // Later outputs favour class 1 for sample 0: its prediction stays frozen at class 0.
        s.push(3, &[0.0, 100.0, 0.0, 0.1]);
        assert_eq!(s.predictions(), vec![0, 1]);
        // Outputs: sample 0 the mean of its 2 steps, sample 1 of all 3.
        let out = s.outputs().expect("early exit has outputs");
        let want = [10.0, 0.0, 0.1 / 3.0, 0.2 / 3.0];
        assert!(out.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{out:?}");
        let per_step = Confidence::PerStep(vec![0.9, 0.1]);
        assert_eq!((per_step.at(1), per_step.at(2), per_step.at(9)), (0.9, 0.1, 0.1));
    }

    #[test]
    fn replaying_the_confidence_trace_reproduces_the_readout() {
        // Random outputs for 40 samples over 12 steps, 5 classes; per-step thresholds; both scores.
        let (batch, classes, steps) = (40, 5, 12);
        for score in [ExitScore::Sum, ExitScore::Average] {
            let rule = EarlyExit {
                confidence: Confidence::PerStep((0..steps).map(|t| 0.3 + 0.06 * t as f32).collect()),
                min_steps: 2,
                score,
            };
            replay_matches(&rule, batch, classes, steps);
        }
        assert_eq!(exit_step(&[], &Confidence::Constant(0.5), 1, |s| s.cumulative), (0, 0));
        // The averaged confidence divides the sum by t first: lower from t = 2 on.
        let step = StepConfidence::of(&[4.0, 0.0, 0.0], 2);
        assert_eq!(step.averaged, confidence_of(&[2.0, 0.0, 0.0]));
        assert!(step.averaged < step.cumulative && step.class == 0);
        // `sum` stays out of the configuration; `average` is written.
        let average = EarlyExit { confidence: Confidence::Constant(0.5), min_steps: 1, score: ExitScore::Average };
        assert!(!EarlyExit { score: ExitScore::Sum, ..average.clone() }.config().contains_key("score"));
        assert_eq!(average.config()["score"].as_str(), Some("average"));
    }

    /// Runs `rule`'s readout on random outputs and checks that replaying the recorded traces
    /// gives the same exits and predictions.
    fn replay_matches(rule: &EarlyExit, batch: usize, classes: usize, steps: usize) {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 1000) as f32 / 250.0
        };
        let mut state = rule.new_state(batch, classes);
        let mut sums = vec![0f32; batch * classes];
        let mut traces = vec![Vec::new(); batch];
        for t in 1..=steps {
            let out: Vec<f32> = (0..batch * classes).map(|_| next()).collect();
            state.push(t, &out);
            for (a, o) in sums.iter_mut().zip(&out) {
                *a += o;
            }
            for (trace, row) in traces.iter_mut().zip(sums.chunks(classes)) {
                trace.push(StepConfidence::of(row, t));
            }
        }
        let (exits, predictions) = (state.exit_steps(), state.predictions());
        assert!(exits.iter().any(|e| e.is_some()) && exits.iter().any(|e| e.is_none()), "{:?}: {exits:?}", rule.score);
        for i in 0..batch {
            let (t, class) = rule.replay(&traces[i]);
            assert_eq!(t, exits[i].unwrap_or(steps), "{:?}, sample {i}", rule.score);
            assert_eq!(class as usize, predictions[i], "{:?}, sample {i}", rule.score);
        }
    }

    #[test]
    fn parameters_are_checked() {
        let parse = |s: &str| toml::from_str::<EarlyExit>(s).map_err(|e| e.to_string()).and_then(|r| r.check());
        assert!(parse("confidence = 0.9").is_ok());
        assert!(parse("confidence = [0.9, 0.8]\nmin_steps = 2").is_ok());
        assert!(parse("confidence = 1.5").is_err());
        assert!(parse("confidence = []").is_err());
    }
}
