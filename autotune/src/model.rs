//! The learned cost model: gradient-boosted trees (smartcore's XGBoost regressor) over the
//! [`features`](crate::features) of measured candidates, predicting each candidate's figure
//! relative to its task's default (`ln(figure / default)`, so one model serves every task).
//! It is retrained from scratch whenever measurements arrive; training is seeded, so a search
//! with the same seed and the same measurements makes the same predictions.

use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::xgboost::xgb_regressor::{XGRegressor, XGRegressorParameters};

/// Samples needed before the model is trained (below this, a search draws at random).
pub const MIN_SAMPLES: usize = 6;

type Trees = XGRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;

/// Measured samples and the trees fitted to them.
#[derive(Default)]
pub struct CostModel {
    features: Vec<Vec<f64>>,
    targets: Vec<f64>,
    trees: Option<Trees>,
    seed: u64,
}

impl CostModel {
    /// An untrained model whose training is seeded by `seed`.
    pub fn new(seed: u64) -> CostModel {
        CostModel {
            seed,
            ..CostModel::default()
        }
    }

    /// Adds a measured candidate: its features and its figure relative to the task default.
    pub fn add(&mut self, features: Vec<f64>, relative: f64) {
        self.features.push(features);
        self.targets.push(relative.max(1e-6).ln());
    }

    /// Samples so far.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Refits the trees to every sample (untrained below [`MIN_SAMPLES`]).
    pub fn train(&mut self) {
        self.trees = None;
        if self.len() < MIN_SAMPLES {
            return;
        }
        let Ok(x) = DenseMatrix::from_2d_vec(&self.features) else {
            return;
        };
        let mean = self.targets.iter().sum::<f64>() / self.len() as f64;
        let parameters = XGRegressorParameters::default()
            .with_n_estimators(60)
            .with_max_depth(4)
            .with_learning_rate(0.2)
            .with_min_child_weight(1)
            .with_lambda(1.0)
            .with_base_score(mean)
            .with_seed(self.seed);
        self.trees = XGRegressor::fit(&x, &self.targets, parameters).ok();
    }

    /// Whether the trees are fitted.
    pub fn is_trained(&self) -> bool {
        self.trees.is_some()
    }

    /// Predicted `ln(figure / default)` of each candidate (lower is better); `None` untrained.
    pub fn predict(&self, features: &[Vec<f64>]) -> Option<Vec<f64>> {
        let trees = self.trees.as_ref()?;
        if features.is_empty() {
            return Some(Vec::new());
        }
        let x = DenseMatrix::from_2d_vec(&features.to_vec()).ok()?;
        trees.predict(&x).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a cost that is a plain function of two features, the trees rank unseen points in
    /// the right order, and training twice with one seed predicts the same.
    #[test]
    fn learns_an_ordering_and_is_reproducible() {
        let cost = |a: f64, b: f64| 1.0 + 0.5 * a - 0.2 * b;
        let mut m = CostModel::new(7);
        for a in 0..6 {
            for b in 0..4 {
                let (a, b) = (a as f64, b as f64);
                m.add(vec![a, b, 1.0], cost(a, b));
            }
        }
        m.train();
        let probe = vec![
            vec![0.5, 3.0, 1.0],
            vec![2.5, 1.0, 1.0],
            vec![4.5, 0.0, 1.0],
        ];
        let p = m.predict(&probe).unwrap();
        assert!(p[0] < p[1] && p[1] < p[2], "{p:?}");
        let mut again = CostModel::new(7);
        again.features = m.features.clone();
        again.targets = m.targets.clone();
        again.train();
        assert_eq!(again.predict(&probe).unwrap(), p);
    }
}
