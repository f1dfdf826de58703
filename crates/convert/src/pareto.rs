//! Layer-wise configuration search under a budget (Wang et al. 2024, Adaptive Calibration,
//! §3.1 "Pareto Frontier Driven Search"): every layer picks one of its candidates; each
//! candidate has a cost and a profit (AdaFire's φ search: cost = the layer's spikes, profit =
//! its sensitivity; SSC swaps the two). Layer sensitivities are assumed independent, so the
//! network's cost and profit are the sums over layers, and the search minimises the total
//! profit subject to total cost ≤ budget.
//!
//! Dynamic programme over layers (the paper's algorithm): start from one empty node
//! (cost 0, profit 0); for each layer expand every kept node by every candidate of the layer,
//! sort the new nodes by cost (ties: smaller profit first), and keep a node only if its cost is
//! within the budget and its profit is strictly lower than that of the last node kept. The kept
//! nodes are the Pareto frontier of the layers so far: no dropped node is both cheaper and
//! better than a kept one, so no optimum is lost. The answer is the kept node of least profit
//! after the last layer, followed back to the root.

/// One point of the final frontier: a total cost and profit and the candidate chosen per layer.
#[derive(Clone, Debug, PartialEq)]
pub struct ParetoPoint {
    /// Σ cost over layers.
    pub cost: f64,
    /// Σ profit over layers.
    pub profit: f64,
    /// Candidate index chosen for each layer.
    pub choice: Vec<usize>,
}

/// The search's answer and the frontier it was picked from.
#[derive(Clone, Debug, PartialEq)]
pub struct ParetoSearch {
    /// The frontier point of least profit within the budget.
    pub best: ParetoPoint,
    /// Every point of the final frontier, by increasing cost (decreasing profit).
    pub frontier: Vec<ParetoPoint>,
}

struct Node {
    cost: f64,
    profit: f64,
    /// (parent node in the previous layer's list, candidate index)
    parent: Option<(usize, usize)>,
}

/// Minimises Σ_l profits[l][k_l] subject to Σ_l costs[l][k_l] ≤ `budget` (`costs[l][k]`: cost of
/// candidate k at layer l; both `[layers][candidates]`, the same shape). None when no choice
/// fits the budget (or a layer has no candidates).
pub fn pareto_search(costs: &[Vec<f64>], profits: &[Vec<f64>], budget: f64) -> Option<ParetoSearch> {
    assert_eq!(costs.len(), profits.len(), "costs and profits cover different layers");
    let mut layers: Vec<Vec<Node>> = vec![vec![Node { cost: 0.0, profit: 0.0, parent: None }]];
    for (l, (cost, profit)) in costs.iter().zip(profits).enumerate() {
        assert_eq!(cost.len(), profit.len(), "layer {l}: costs and profits have different candidates");
        let previous = layers.last().expect("the root layer exists");
        let mut next: Vec<Node> = previous
            .iter()
            .enumerate()
            .flat_map(|(p, node)| {
                cost.iter().zip(profit).enumerate().map(move |(k, (c, g))| Node {
                    cost: node.cost + c,
                    profit: node.profit + g,
                    parent: Some((p, k)),
                })
            })
            .filter(|n| n.cost <= budget && n.cost.is_finite() && !n.profit.is_nan())
            .collect();
        next.sort_by(|a, b| a.cost.total_cmp(&b.cost).then(a.profit.total_cmp(&b.profit)));
        let mut kept: Vec<Node> = Vec::new();
        for node in next {
            if kept.last().is_none_or(|last| node.profit < last.profit) {
                kept.push(node);
            }
        }
        if kept.is_empty() {
            return None;
        }
        layers.push(kept);
    }
    let last = layers.last()?;
    let choice_of = |mut index: usize| {
        let mut choice = Vec::with_capacity(costs.len());
        for level in (1..layers.len()).rev() {
            let (parent, k) = layers[level][index].parent.expect("non-root nodes have parents");
            choice.push(k);
            index = parent;
        }
        choice.reverse();
        choice
    };
    let frontier: Vec<ParetoPoint> = last
        .iter()
        .enumerate()
        .map(|(i, n)| ParetoPoint { cost: n.cost, profit: n.profit, choice: choice_of(i) })
        .collect();
    // Profits decrease along the frontier: the last point is the least profit.
    let best = frontier.last()?.clone();
    Some(ParetoSearch { best, frontier })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every combination, the least profit within budget (ties: least cost).
    fn brute_force(costs: &[Vec<f64>], profits: &[Vec<f64>], budget: f64) -> Option<(f64, f64)> {
        let sizes: Vec<usize> = costs.iter().map(Vec::len).collect();
        let total: usize = sizes.iter().product();
        let mut best: Option<(f64, f64)> = None;
        for mut code in 0..total {
            let (mut c, mut p) = (0.0, 0.0);
            for (l, &n) in sizes.iter().enumerate() {
                let k = code % n;
                code /= n;
                c += costs[l][k];
                p += profits[l][k];
            }
            if c <= budget && best.is_none_or(|(bc, bp)| p < bp || (p == bp && c < bc)) {
                best = Some((c, p));
            }
        }
        best
    }

    fn lcg(state: &mut u64) -> f64 {
        *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*state >> 33) as f64) / (1u64 << 31) as f64
    }

    #[test]
    fn matches_brute_force_on_random_problems() {
        let mut state = 7;
        for problem in 0..300 {
            let layers = 1 + problem % 5;
            let candidates = 1 + (problem / 5) % 4;
            // Integer-valued costs make exact ties (and so the tie rules) likely.
            let costs: Vec<Vec<f64>> =
                (0..layers).map(|_| (0..candidates).map(|_| (lcg(&mut state) * 10.0).floor()).collect()).collect();
            let profits: Vec<Vec<f64>> =
                (0..layers).map(|_| (0..candidates).map(|_| (lcg(&mut state) * 10.0).floor()).collect()).collect();
            let budget = lcg(&mut state) * 10.0 * layers as f64;
            let expected = brute_force(&costs, &profits, budget);
            let found = pareto_search(&costs, &profits, budget);
            match (expected, found) {
                (None, None) => {}
                (Some((_, p)), Some(found)) => {
                    assert_eq!(found.best.profit, p, "problem {problem}: {costs:?} {profits:?} budget {budget}");
                    // The choice really has the reported totals and fits the budget.
                    let c: f64 = found.best.choice.iter().enumerate().map(|(l, &k)| costs[l][k]).sum();
                    let g: f64 = found.best.choice.iter().enumerate().map(|(l, &k)| profits[l][k]).sum();
                    assert_eq!((c, g), (found.best.cost, found.best.profit));
                    assert!(c <= budget);
                    // The frontier is strictly cheaper-is-worse.
                    for w in found.frontier.windows(2) {
                        assert!(w[0].cost <= w[1].cost && w[0].profit > w[1].profit);
                    }
                }
                (e, f) => panic!("problem {problem}: brute force {e:?}, search {:?}", f.map(|f| f.best)),
            }
        }
    }

    #[test]
    fn a_generous_budget_takes_every_layers_best_and_an_impossible_one_nothing() {
        let costs = vec![vec![1.0, 5.0], vec![2.0, 9.0]];
        let profits = vec![vec![3.0, 1.0], vec![4.0, 0.5]];
        let best = pareto_search(&costs, &profits, 100.0).unwrap().best;
        assert_eq!(best.choice, vec![1, 1]);
        // Budget 7: (5, 2) costs 7 with profit 5, the best that fits.
        assert_eq!(pareto_search(&costs, &profits, 7.0).unwrap().best.choice, vec![1, 0]);
        assert!(pareto_search(&costs, &profits, 2.0).is_none());
    }
}
