//! `accumulate` (default): the prediction at step t is the argmax of the output summed over
//! steps 1..t, ŷ(t) = argmax Σ_{k≤t} o(k) (rate decoding of the analog last layer).

use serde::{Deserialize, Serialize};

use super::{Readout, ReadoutState, RegisteredReadout, argmax_rows};
use crate::neuron::config_table;

/// Sum of all steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accumulate {}

impl RegisteredReadout for Accumulate {
    const KIND: &'static str = "accumulate";
    const DESCRIPTION: &'static str = "argmax of the output summed over steps 1..t (default)";
}

impl Readout for Accumulate {
    fn kind(&self) -> &'static str {
        Self::KIND
    }
    fn config(&self) -> toml::Table {
        config_table(Self::KIND, self)
    }
    fn new_state(&self, batch: usize, classes: usize) -> Box<dyn ReadoutState> {
        Box::new(AccumulateState { sum: vec![0.0; batch * classes], classes, t: 0 })
    }
}

struct AccumulateState {
    sum: Vec<f32>,
    classes: usize,
    t: usize,
}

impl ReadoutState for AccumulateState {
    fn push(&mut self, t: usize, output: &[f32]) {
        for (a, o) in self.sum.iter_mut().zip(output) {
            *a += o;
        }
        self.t = t;
    }
    fn predictions(&self) -> Vec<usize> {
        argmax_rows(&self.sum, self.classes)
    }
    /// (1/t)·Σ_{k≤t} o(k).
    fn outputs(&self) -> Option<Vec<f32>> {
        let t = self.t.max(1) as f32;
        Some(self.sum.iter().map(|s| s / t).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_the_mean_of_the_pushed_steps() {
        let mut state = Accumulate {}.new_state(2, 2);
        state.push(1, &[1.0, 2.0, 3.0, -1.0]);
        state.push(2, &[3.0, 0.0, 1.0, -3.0]);
        assert_eq!(state.outputs(), Some(vec![2.0, 1.0, 2.0, -2.0]));
        assert_eq!(state.predictions(), vec![0, 0]);
    }
}
