//! `delayed`: delayed evaluation (DE, Bu et al. 2025, "Inference-scale ANN-SNN conversion"):
//! the prediction at step t ignores the outputs of the first t_d steps, i.e. sums steps
//! t_d+1..=t; while t < t_d + 4 it sums the last 4 steps (max(t−4, 0)+1..=t).
//!
//! Spec: `[method.readout] kind = "delayed"`, `delay = t_d`. A method may set it itself (Bu et
//! al.'s threshold balancing does, with its estimated t_d, when `delayed_evaluation = true`).

use serde::{Deserialize, Serialize};

use super::{Readout, ReadoutState, RegisteredReadout, argmax_rows};
use crate::neuron::config_table;

/// Steps excluded from the readout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delayed {
    /// t_d.
    pub delay: usize,
}

impl Delayed {
    /// Number of leading steps excluded from the readout at step `t` (1-based).
    pub fn skip(&self, t: usize) -> usize {
        if t >= self.delay + 4 { self.delay } else { t.saturating_sub(4) }
    }
}

impl RegisteredReadout for Delayed {
    const KIND: &'static str = "delayed";
    const DESCRIPTION: &'static str = "sum of steps t_d+1..t (the last 4 steps while t < t_d + 4) (Bu et al. 2025)";
}

impl Readout for Delayed {
    fn kind(&self) -> &'static str {
        Self::KIND
    }
    fn config(&self) -> toml::Table {
        config_table(Self::KIND, self)
    }
    fn new_state(&self, batch: usize, classes: usize) -> Box<dyn ReadoutState> {
        Box::new(DelayedState { readout: *self, sum: vec![0.0; batch * classes], cumulative: Vec::new(), classes, t: 0 })
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        vec![("readout_delay", self.delay as f64)]
    }
}

struct DelayedState {
    readout: Delayed,
    sum: Vec<f32>,
    /// The running sum after each step (the window is a difference of two of them).
    cumulative: Vec<Vec<f32>>,
    classes: usize,
    t: usize,
}

impl ReadoutState for DelayedState {
    fn push(&mut self, t: usize, output: &[f32]) {
        for (a, o) in self.sum.iter_mut().zip(output) {
            *a += o;
        }
        self.cumulative.push(self.sum.clone());
        self.t = t;
    }
    fn predictions(&self) -> Vec<usize> {
        let skip = self.readout.skip(self.t);
        if skip == 0 {
            return argmax_rows(&self.sum, self.classes);
        }
        let window: Vec<f32> = self.sum.iter().zip(&self.cumulative[skip - 1]).map(|(a, c)| a - c).collect();
        argmax_rows(&window, self.classes)
    }
    /// The mean of the window's steps: (1/(t − s))·Σ_{s<k≤t} o(k), s = [`Delayed::skip`].
    fn outputs(&self) -> Option<Vec<f32>> {
        let skip = self.readout.skip(self.t);
        let steps = (self.t - skip).max(1) as f32;
        Some(match skip {
            0 => self.sum.iter().map(|a| a / steps).collect(),
            _ => self.sum.iter().zip(&self.cumulative[skip - 1]).map(|(a, c)| (a - c) / steps).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_the_delay_once_four_steps_follow_it() {
        let d = Delayed { delay: 3 };
        assert_eq!((d.skip(2), d.skip(6), d.skip(7), d.skip(20)), (0, 2, 3, 3));
        assert_eq!(Delayed { delay: 0 }.skip(10), 0);
    }

    #[test]
    fn predicts_from_the_window_only() {
        // Class 0 wins the first 3 steps by far, class 1 every later step by a little.
        let mut s = Delayed { delay: 3 }.new_state(1, 2);
        for t in 1..=3 {
            s.push(t, &[10.0, 0.0]);
        }
        for t in 4..=7 {
            s.push(t, &[0.0, 1.0]);
        }
        assert_eq!(s.predictions(), vec![1], "steps 4..7 only");
        assert_eq!(s.outputs(), Some(vec![0.0, 1.0]), "the mean of steps 4..7");
        let mut plain = super::super::accumulate::Accumulate {}.new_state(1, 2);
        for t in 1..=7 {
            plain.push(t, if t <= 3 { &[10.0, 0.0] } else { &[0.0, 1.0] });
        }
        assert_eq!(plain.predictions(), vec![0]);
    }
}
