//! Latent noise: N(0, 1) or U(-1, 1), the truncation trick, interpolation; with a seeded
//! generator whose position is saved in training state.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::config::NoiseKind;

/// A seeded source of z.
pub struct Noise {
    /// The distribution.
    pub kind: NoiseKind,
    rng: ChaCha8Rng,
}

impl Noise {
    /// A source of `kind` noise seeded with `seed`.
    pub fn new(kind: NoiseKind, seed: u64) -> Self {
        Noise { kind, rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    fn one(&mut self) -> f32 {
        match self.kind {
            NoiseKind::Normal => StandardNormal.sample(&mut self.rng),
            NoiseKind::Uniform => self.rng.random_range(-1.0..1.0),
        }
    }

    /// `n` values.
    pub fn sample(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.one()).collect()
    }

    pub(crate) fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// Values in [0, 1) (WGAN-GP's interpolation weights), from the same generator.
    pub fn uniform01(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.rng.random_range(0.0..1.0)).collect()
    }

    /// The truncation trick: entries beyond |threshold| are drawn again until they fall inside.
    pub fn sample_truncated(&mut self, n: usize, threshold: f32) -> Vec<f32> {
        assert!(threshold > 0.0, "truncation threshold must be positive");
        (0..n)
            .map(|_| loop {
                let v = self.one();
                if v.abs() <= threshold {
                    break v;
                }
            })
            .collect()
    }

    /// The random generator behind the noise (its seed and position are the whole state).
    pub fn generator(&self) -> &ChaCha8Rng {
        &self.rng
    }

    /// A source that continues from `rng` (as saved in a checkpoint).
    pub fn from_generator(kind: NoiseKind, rng: ChaCha8Rng) -> Self {
        Noise { kind, rng }
    }
}

/// The point t of the way from a to b.
pub fn lerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x + (y - x) * t).collect()
}

/// Spherical interpolation, which keeps |z| near the typical norm of Gaussian noise.
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| (*x as f64) * (*y as f64)).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let cos = (dot / (na * nb).max(1e-12)).clamp(-1.0, 1.0);
    let omega = cos.acos();
    if omega.abs() < 1e-6 {
        return lerp(a, b, t);
    }
    let s = omega.sin();
    let wa = (((1.0 - t as f64) * omega).sin() / s) as f32;
    let wb = ((t as f64 * omega).sin() / s) as f32;
    a.iter().zip(b).map(|(x, y)| wa * x + wb * y).collect()
}
