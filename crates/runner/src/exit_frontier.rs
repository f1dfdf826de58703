//! The exit frontier of an early-exit readout (`[eval] exit_frontier = true`): accuracy against
//! mean exit step for whole families of exit rules, replayed from one simulation's confidence
//! trace (`snn::SimOutput::confidence_trace`) instead of one simulation per threshold. This is
//! the curve of Wang et al. 2024's Fig. 9 (accuracy vs mean timesteps, adaptive vs uniform
//! thresholds, against fixed T), drawn densely.
//!
//! Families (the `layer` of the rows; metric `frontier_accuracy` in %, `frontier_mean_step`):
//! - `fixed t=k`, k = 1..T: every sample runs k steps (the accuracy at T = k of the same run);
//! - `uniform α=a`: one threshold a at every step, a ∈ [`UNIFORM_THRESHOLDS`];
//! - `fitted Δ=d`: the readout's own per-step thresholds α_t shifted by d ∈ [`FITTED_SHIFTS`]
//!   and clamped to [0, 1], on the readout's own `score` (only for a per-step `confidence`
//!   list). For IAT's Eq. 18 this is
//!   the rule fitted with α_base + d, as long as no fitted α_t was capped at 1;
//! - `averaged α=a`: one threshold a, tested on the confidence of the *time-averaged* output
//!   (1/t)·Σ o instead of the sum (not the paper's rule: the sum's softmax sharpens as t grows,
//!   the average's does not);
//! - `stable prediction`: each sample stops at the first step from which its prediction no
//!   longer changes up to T (an oracle that knows the future; the accuracy at T by
//!   construction): the fewest mean steps any rule needs to keep every prediction of T.
//!
//! Each family's summary (whole-network rows, so a table can show them with `also`):
//! `frontier_fewest_steps_<family>`, the fewest mean steps of a rule of the family whose
//! accuracy is within [`TOLERANCE_PP`] of the accuracy at T (every sample running T steps),
//! and `frontier_speedup_<family>` = T / that.

use snn::readout::Readout;
use snn::readout::early_exit::{Confidence, EarlyExit, StepConfidence, exit_step};

use crate::evaluate::Measure;

/// The uniform thresholds replayed: 0.30, 0.32, …, 0.98, then 0.99, 0.995, 0.999.
pub const UNIFORM_THRESHOLDS: &[f32] = &[
    0.30, 0.32, 0.34, 0.36, 0.38, 0.40, 0.42, 0.44, 0.46, 0.48, 0.50, 0.52, 0.54, 0.56, 0.58, 0.60, 0.62, 0.64, 0.66,
    0.68, 0.70, 0.72, 0.74, 0.76, 0.78, 0.80, 0.82, 0.84, 0.86, 0.88, 0.90, 0.92, 0.94, 0.96, 0.98, 0.99, 0.995, 0.999,
];

/// The shifts of the fitted per-step thresholds replayed: −0.40, −0.38, …, +0.10.
pub const FITTED_SHIFTS: &[f32] = &[
    -0.40, -0.38, -0.36, -0.34, -0.32, -0.30, -0.28, -0.26, -0.24, -0.22, -0.20, -0.18, -0.16, -0.14, -0.12, -0.10,
    -0.08, -0.06, -0.04, -0.02, 0.0, 0.02, 0.04, 0.06, 0.08, 0.10,
];

/// The families, in the order of the rows.
pub const FAMILIES: [&str; 5] = ["fixed", "uniform", "fitted", "averaged", "stable"];

/// Accuracy loss (pp) against running to T that a rule may cost and still count as "as accurate".
pub const TOLERANCE_PP: f64 = 0.5;

/// One replayed rule: its family, its row label, its accuracy (%) and mean exit step.
#[derive(Clone, Debug, PartialEq)]
pub struct FrontierPoint {
    pub family: &'static str,
    pub rule: String,
    pub accuracy: f64,
    pub mean_step: f64,
}

/// Every rule of every family on the traces truncated to `t` steps. `traces`: per sample,
/// one [`StepConfidence`] per step (at least `t` steps); `labels`: per sample;
/// `readout`: the network's readout (its per-step thresholds, when it has a list, give the
/// `fitted` family; its `min_steps` holds for every rule but `fixed`).
pub fn frontier(traces: &[Vec<StepConfidence>], labels: &[i64], t: usize, readout: &dyn Readout) -> Vec<FrontierPoint> {
    let n = traces.len().min(labels.len());
    if n == 0 || t == 0 {
        return Vec::new();
    }
    let own = readout_rule(readout);
    let min_steps = own.as_ref().map_or(1, |r| r.min_steps);
    let point = |family: &'static str, rule: String, exits: &dyn Fn(&[StepConfidence]) -> (usize, u32)| {
        let (mut correct, mut steps) = (0usize, 0usize);
        for (trace, &label) in traces.iter().zip(labels) {
            let (step, class) = exits(&trace[..t.min(trace.len())]);
            steps += step;
            correct += usize::from(class as i64 == label);
        }
        FrontierPoint { family, rule, accuracy: 100.0 * correct as f64 / n as f64, mean_step: steps as f64 / n as f64 }
    };
    let cumulative = |s: &StepConfidence| s.cumulative;
    let averaged = |s: &StepConfidence| s.averaged;
    let mut points = Vec::new();
    for k in 1..=t {
        let class_at = |trace: &[StepConfidence]| trace.get(k - 1).or(trace.last()).map_or(0, |s| s.class);
        points.push(point("fixed", format!("fixed t={k}"), &|trace| (k, class_at(trace))));
    }
    for &a in UNIFORM_THRESHOLDS {
        let rule = Confidence::Constant(a);
        points.push(point("uniform", format!("uniform α={a}"), &|tr| exit_step(tr, &rule, min_steps, cumulative)));
    }
    if let Some(EarlyExit { confidence: Confidence::PerStep(alphas), score, .. }) = &own {
        let fitted = |s: &StepConfidence| score.of(s);
        for &d in FITTED_SHIFTS {
            let rule = Confidence::PerStep(alphas.iter().map(|a| (a + d).clamp(0.0, 1.0)).collect());
            points.push(point("fitted", format!("fitted Δ={d:+.2}"), &|tr| exit_step(tr, &rule, min_steps, fitted)));
        }
    }
    for &a in UNIFORM_THRESHOLDS {
        let rule = Confidence::Constant(a);
        points.push(point("averaged", format!("averaged α={a}"), &|tr| exit_step(tr, &rule, min_steps, averaged)));
    }
    points.push(point("stable", "stable prediction".into(), &|trace| {
        let last = trace.last().map_or(0, |s| s.class);
        let changed = trace.iter().rposition(|s| s.class != last).map_or(0, |i| i + 1);
        ((changed + 1).min(trace.len()), last)
    }));
    points
}

/// The readout's own exit rule, when it is an `early-exit` readout.
fn readout_rule(readout: &dyn Readout) -> Option<EarlyExit> {
    let mut table = readout.config();
    let kind = table.remove("kind")?;
    if kind.as_str() != Some(<EarlyExit as snn::RegisteredReadout>::KIND) {
        return None;
    }
    toml::Value::Table(table).try_into().ok()
}

/// The fewest mean steps of a rule of `family` within [`TOLERANCE_PP`] of `reference` (%).
pub fn fewest_steps(points: &[FrontierPoint], family: &str, reference: f64) -> Option<f64> {
    points
        .iter()
        .filter(|p| p.family == family && p.accuracy >= reference - TOLERANCE_PP - 1e-9)
        .map(|p| p.mean_step)
        .min_by(f64::total_cmp)
}

/// The result rows of [`frontier`] at T = `t` for method `label` (see the module doc).
pub fn frontier_measures(
    label: &str,
    t: u32,
    traces: &[Vec<StepConfidence>],
    labels: &[i64],
    readout: &dyn Readout,
) -> Vec<Measure> {
    let n = traces.len();
    let points = frontier(traces, labels, t as usize, readout);
    let row = |metric: &str, layer: &str, value: f64| Measure {
        method: label.into(),
        t,
        metric: metric.into(),
        layer: layer.into(),
        value,
        n_images: n,
    };
    let mut out = Vec::new();
    for p in &points {
        out.push(row("frontier_accuracy", &p.rule, p.accuracy));
        out.push(row("frontier_mean_step", &p.rule, p.mean_step));
    }
    let Some(at_t) = points.iter().find(|p| p.family == "fixed" && p.mean_step == t as f64) else { return out };
    for family in FAMILIES {
        if let Some(steps) = fewest_steps(&points, family, at_t.accuracy) {
            out.push(row(&format!("frontier_fewest_steps_{family}"), "", steps));
            out.push(row(&format!("frontier_speedup_{family}"), "", t as f64 / steps));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use snn::readout::accumulate::Accumulate;

    use super::*;

    /// Three samples over 4 steps: sample 0 confident and right from step 1; sample 1 confident
    /// but wrong at step 1, right from step 3; sample 2 never confident, right only at step 4.
    /// (Averaged confidences are the cumulative ones halved: only the family differs.)
    fn traces() -> (Vec<Vec<StepConfidence>>, Vec<i64>) {
        let s = |c: f32, class: u32| StepConfidence { cumulative: c, averaged: c / 2.0, class };
        let traces = vec![
            vec![s(0.9, 0), s(0.95, 0), s(0.97, 0), s(0.98, 0)],
            vec![s(0.7, 2), s(0.6, 2), s(0.8, 1), s(0.9, 1)],
            vec![s(0.1, 0), s(0.2, 0), s(0.2, 0), s(0.3, 2)],
        ];
        (traces, vec![0, 1, 2])
    }

    #[test]
    fn fixed_rows_are_the_accuracy_at_each_step_and_uniform_rows_replay_the_rule() {
        let (tr, labels) = traces();
        let points = frontier(&tr, &labels, 4, &Accumulate {});
        let get = |rule: &str| points.iter().find(|p| p.rule == rule).unwrap_or_else(|| panic!("{rule}"));
        // Fixed: right at t = 1: sample 0 only; t = 3: samples 0, 1; t = 4: all.
        assert_eq!((get("fixed t=1").accuracy, get("fixed t=1").mean_step), (100.0 / 3.0, 1.0));
        assert_eq!(get("fixed t=3").accuracy, 200.0 / 3.0);
        assert_eq!(get("fixed t=4").accuracy, 100.0);
        // α = 0.5: sample 0 exits at 1 (right), sample 1 at 1 (wrong), sample 2 runs to 4 (right).
        let p = get("uniform α=0.5");
        assert_eq!((p.accuracy, p.mean_step), (200.0 / 3.0, 2.0));
        // α = 0.92: sample 0 exits at 2, sample 1 never (right at 4), sample 2 at 4.
        let p = get("uniform α=0.92");
        assert_eq!((p.accuracy, p.mean_step), (100.0, 10.0 / 3.0));
        // No per-step list: no fitted family; truncation to t = 2 uses the first two steps only.
        assert!(points.iter().all(|p| p.family != "fitted"));
        let short = frontier(&tr, &labels, 2, &Accumulate {});
        assert_eq!(short.iter().filter(|p| p.family == "fixed").count(), 2);
        // Fewest steps within 0.5 pp of 100 %: the fixed family needs 4; uniform 8/3, at
        // α = 0.70–0.78 (sample 0 exits at 1, sample 1 at 3 once 0.8 > α, sample 2 at 4).
        assert_eq!(fewest_steps(&points, "fixed", 100.0), Some(4.0));
        assert_eq!(fewest_steps(&points, "uniform", 100.0), Some(8.0 / 3.0));
        assert_eq!(fewest_steps(&points, "uniform", 200.0), None);
        // Averaged at α = 0.46: only sample 0 (0.475 at t = 2) exits early.
        let p = get("averaged α=0.46");
        assert_eq!((p.accuracy, p.mean_step), (100.0, 10.0 / 3.0));
        // Stable prediction: sample 0 from t = 1, sample 1 from t = 3, sample 2 only at t = 4.
        let p = get("stable prediction");
        assert_eq!((p.accuracy, p.mean_step), (100.0, 8.0 / 3.0));
    }

    #[test]
    fn fitted_family_shifts_the_readouts_own_thresholds() {
        let (tr, labels) = traces();
        let readout = EarlyExit {
            confidence: Confidence::PerStep(vec![0.95, 0.9, 0.85, 0.8]),
            min_steps: 1,
            score: snn::readout::early_exit::ExitScore::Sum,
        };
        let points = frontier(&tr, &labels, 4, &readout);
        let get = |rule: &str| points.iter().find(|p| p.rule == rule).unwrap_or_else(|| panic!("{rule}"));
        // Δ = 0: sample 0 exits at 2 (0.95 > 0.9), sample 1 never before 4 (0.9 > 0.8 at 4),
        // sample 2 runs to 4: all right, mean (2 + 4 + 4)/3.
        let p = get("fitted Δ=+0.00");
        assert_eq!((p.accuracy, p.mean_step), (100.0, 10.0 / 3.0));
        // Δ = −0.3 → α = [.65, .6, .55, .5]: samples 0 and 1 exit at 1 (1 wrong), sample 2 at 4.
        let p = get("fitted Δ=-0.30");
        assert_eq!((p.accuracy, p.mean_step), (200.0 / 3.0, 2.0));
        // Within 0.5 pp of the 100 % at T = 4, the fitted family gets down to 8/3 mean steps
        // (Δ = −0.10 … −0.24: sample 0 exits at 1, sample 1 at 3): a speed-up of 1.5.
        let rows = frontier_measures("m", 4, &tr, &labels, &readout);
        let speedup = rows.iter().find(|r| r.metric == "frontier_speedup_fitted" && r.layer.is_empty()).unwrap();
        assert!((speedup.value - 1.5).abs() < 1e-12, "{}", speedup.value);
        // With `score = "average"` the fitted family tests the averaged confidences (half the
        // cumulative ones here): at Δ = 0 nobody exits before T.
        let average = EarlyExit { score: snn::readout::early_exit::ExitScore::Average, ..readout.clone() };
        let p = frontier(&tr, &labels, 4, &average).into_iter().find(|p| p.rule == "fitted Δ=+0.00").unwrap();
        assert_eq!((p.accuracy, p.mean_step), (100.0, 4.0));
        assert_eq!(rows.iter().filter(|r| r.metric == "frontier_accuracy").count(), 4 + 38 + 26 + 38 + 1);
    }
}
