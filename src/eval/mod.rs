//! Scoring generated samples with the engine's own classifier, and the latent walks of
//! `shadergan interpolate`: plain functions of the classifier's outputs and of the noise, so a
//! program can report what the CLI reports.

mod sample_quality;

pub use sample_quality::{
    frechet_distance, kernel_distance, mean_and_covariance, precision_recall, sqrt_psd, symmetric_eigen,
};

use crate::config::NoiseKind;
use crate::train::noise::{lerp, slerp, Noise};

/// How a classifier labels a set of samples: how many fall in each class, and how many it
/// labels with a probability above a threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct Coverage {
    /// Samples per predicted class.
    pub counts: Vec<usize>,
    /// Samples whose top class has a probability above the threshold.
    pub confident: usize,
}

impl Coverage {
    /// From the classifier's probabilities, [n, classes] row-major.
    pub fn from_probabilities(probabilities: &[f32], classes: usize, threshold: f32) -> Coverage {
        let mut counts = vec![0; classes];
        let mut confident = 0;
        for row in probabilities.chunks(classes) {
            let (best, p) = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or((0, 0.0), |(i, p)| (i, *p));
            counts[best] += 1;
            confident += (p > threshold) as usize;
        }
        Coverage { counts, confident }
    }

    /// How many samples were scored.
    pub fn samples(&self) -> usize {
        self.counts.iter().sum()
    }

    /// The fraction of samples labelled above the threshold.
    pub fn confident_fraction(&self) -> f64 {
        self.confident as f64 / self.samples().max(1) as f64
    }

    /// The fraction of samples labelled `class`.
    pub fn share(&self, class: usize) -> f64 {
        self.counts[class] as f64 / self.samples().max(1) as f64
    }
}

/// The fraction of predictions equal to their labels (0 for no labels).
pub fn accuracy(predictions: &[u32], labels: &[u32]) -> f64 {
    assert_eq!(predictions.len(), labels.len(), "{} predictions for {} labels", predictions.len(), labels.len());
    predictions.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len().max(1) as f64
}

/// Per requested class (or code value): the histogram of predicted classes, for predictions
/// made in `codes` consecutive blocks of `n` (block c asked for class c).
pub fn conditional_counts(predictions: &[u32], codes: usize, n: usize, classes: usize) -> Vec<Vec<usize>> {
    assert_eq!(predictions.len(), codes * n, "{codes} blocks of {n} predictions");
    (0..codes)
        .map(|code| {
            let mut hist = vec![0; classes];
            predictions[code * n..(code + 1) * n].iter().for_each(|&p| hist[p as usize] += 1);
            hist
        })
        .collect()
}

/// The latent codes of `shadergan interpolate`: `rows` linear walks of `steps` points between
/// random endpoints, then `rows` spherical walks between the same endpoints, [2 rows steps,
/// latent] row-major; the noise of `kind` seeded with `seed` draws the endpoints.
pub fn interpolation_codes(kind: NoiseKind, seed: u64, latent: usize, rows: usize, steps: usize) -> Vec<f32> {
    assert!(steps >= 2 && rows >= 1, "a walk needs at least 2 steps and 1 row");
    let mut noise = Noise::new(kind, seed);
    let ends: Vec<(Vec<f32>, Vec<f32>)> = (0..rows).map(|_| (noise.sample(latent), noise.sample(latent))).collect();
    let mut z = Vec::with_capacity(2 * rows * steps * latent);
    for spherical in [false, true] {
        for (a, b) in &ends {
            for k in 0..steps {
                let t = k as f32 / (steps - 1) as f32;
                z.extend(if spherical { slerp(a, b, t) } else { lerp(a, b, t) });
            }
        }
    }
    z
}

/// Per class (or InfoGAN code value): how the classifier labels its samples. A conditional
/// model is scored against the requested class; InfoGAN, which never saw labels, against the
/// digit each code value comes to produce (its most common label).
pub fn conditional_report(counts: &[Vec<usize>], n: usize, infogan: bool) -> String {
    let pct = |hits: usize| 100.0 * hits as f64 / n as f64;
    let mut out = String::new();
    let mut total = 0;
    let mut digits = std::collections::BTreeSet::new();
    for (code, hist) in counts.iter().enumerate() {
        let (top, &top_hits) = hist.iter().enumerate().max_by_key(|(_, &h)| h).unwrap_or((0, &0));
        if infogan {
            total += top_hits;
            digits.insert(top);
            out += &format!("code {code}: {:.1}% of {n} samples classified as {top}\n", pct(top_hits));
        } else {
            total += hist[code];
            out += &format!("class {code}: {:.1}% of {n} samples classified as {code}\n", pct(hist[code]));
        }
    }
    let all = counts.len() * n;
    if infogan {
        out += &format!(
            "overall: {:.2}% of {all} samples show their code's digit; the {} code values produce {} different digits\n",
            100.0 * total as f64 / all as f64,
            counts.len(),
            digits.len()
        );
    } else {
        out +=
            &format!("overall: {:.2}% of {all} samples classified as their class\n", 100.0 * total as f64 / all as f64);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_counts_top_classes_and_confident_samples() {
        let probs = [0.95, 0.05, 0.0, 0.2, 0.7, 0.1, 0.1, 0.05, 0.85, 0.0, 0.99, 0.01];
        let c = Coverage::from_probabilities(&probs, 3, 0.9);
        assert_eq!(c.counts, [1, 2, 1]);
        assert_eq!((c.confident, c.samples()), (2, 4));
        assert!((c.confident_fraction() - 0.5).abs() < 1e-12 && (c.share(1) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn accuracy_and_conditional_histograms() {
        assert!((accuracy(&[1, 2, 3, 4], &[1, 0, 3, 0]) - 0.5).abs() < 1e-12);
        assert_eq!(accuracy(&[], &[]), 0.0);
        let counts = conditional_counts(&[0, 0, 1, 1, 1, 2], 2, 3, 3);
        assert_eq!(counts, vec![vec![2, 1, 0], vec![0, 2, 1]]);
    }

    #[test]
    fn walks_join_their_endpoints_linearly_then_spherically() {
        let (latent, rows, steps) = (5, 2, 4);
        let z = interpolation_codes(NoiseKind::Normal, 3, latent, rows, steps);
        assert_eq!(z.len(), 2 * rows * steps * latent);
        let point = |row: usize, k: usize| &z[(row * steps + k) * latent..(row * steps + k + 1) * latent];
        for row in 0..rows {
            // The spherical row walks between the linear row's endpoints.
            assert_eq!(point(row, 0), point(rows + row, 0));
            for (l, s) in point(row, steps - 1).iter().zip(point(rows + row, steps - 1)) {
                assert!((l - s).abs() < 1e-5, "{l} vs {s}");
            }
            // Linear midpoints lie on the segment.
            let (a, b, m) = (point(row, 0), point(row, steps - 1), point(row, 1));
            for i in 0..latent {
                assert!((m[i] - (a[i] + (b[i] - a[i]) / 3.0)).abs() < 1e-5);
            }
        }
        assert_ne!(point(0, 0), point(1, 0), "each row has its own endpoints");
    }
}
