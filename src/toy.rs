//! The 1-D GAN of the lecture notes (Goodfellow et al. 2014, figure 1): real data from N(0, 1),
//! a generator x = z + θ with θ starting at 3, and a logistic discriminator
//! D(x) = sigmoid(w x + b), trained by alternating steps on the GPU engine. As θ reaches the
//! data, D can no longer tell the two apart and flattens toward 1/2.

use std::path::Path;

use anyhow::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::gpu::Gpu;
use crate::grad;
use crate::nn::loss::bce_with_logits;
use crate::optim::{Optimizer, Sgd};
use crate::tensor::Tensor;
use crate::viz::{self, Curve};

/// What the toy run measured.
pub struct ToyResult {
    /// θ after each step.
    pub theta: Vec<f32>,
    /// D's weight and bias at the end.
    pub w: f32,
    /// D's bias at the end.
    pub b: f32,
    /// Mean D(x) over real samples at the end.
    pub d_real: f32,
    /// The stage plots written, in order.
    pub stage_files: Vec<String>,
}

fn normal(rng: &mut ChaCha8Rng, n: usize, shift: f32) -> Vec<f32> {
    (0..n).map(|_| StandardNormal.sample(rng)).map(|v: f32| v + shift).collect()
}

/// Density estimate of `xs` on `grid` (Gaussian kernel), for the stage plots.
fn density(xs: &[f32], grid: &[f64]) -> Vec<(f64, f64)> {
    let h = 0.25;
    grid.iter()
        .map(|&g| {
            let s: f64 = xs.iter().map(|&x| (-0.5 * ((g - x as f64) / h).powi(2)).exp()).sum();
            (g, s / (xs.len() as f64 * h * (2.0 * std::f64::consts::PI).sqrt()))
        })
        .collect()
}

/// The 1-D game for `steps` steps, writing stage plots into `out` when given.
pub fn run(gpu: &Gpu, out: Option<&Path>, steps: usize, seed: u64) -> Result<ToyResult> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let batch = 256;
    let theta = Tensor::from_vec(gpu, &[1], &[3.0]).requires_grad();
    // D starts out roughly right, as in the figure's first panel: its boundary between the data
    // (at 0) and the generator (at 3).
    let w = Tensor::from_vec(gpu, &[1], &[-1.0]).requires_grad();
    let b = Tensor::from_vec(gpu, &[1], &[1.5]).requires_grad();
    let mut opt_d = Sgd::new(0.1, 0.5);
    let mut opt_g = Sgd::new(0.02, 0.5);
    let (ones, zeros) = (Tensor::ones(gpu, &[batch]), Tensor::zeros(gpu, &[batch]));
    let d_logit = |x: &Tensor| x.mul(&w).add(&b);
    let mut history = Vec::with_capacity(steps);
    let mut stage_files = Vec::new();
    let stages = [0, steps / 10, steps / 4, steps];
    let grid: Vec<f64> = (0..161).map(|i| -4.0 + 10.0 * i as f64 / 160.0).collect();
    for step in 0..=steps {
        if let (Some(dir), true) = (out, stages.contains(&step)) {
            // Stage plot: data density (black), generated density (green), D(x) (blue).
            let real = normal(&mut rng, 4000, 0.0);
            let t = theta.item();
            let fake = normal(&mut rng, 4000, t);
            let (wv, bv) = (w.item() as f64, b.item() as f64);
            let d: Vec<(f64, f64)> = grid.iter().map(|&x| (x, 1.0 / (1.0 + (-(wv * x + bv)).exp()))).collect();
            let pr = density(&real, &grid);
            let pf = density(&fake, &grid);
            let img = viz::plot_curves(
                &[
                    Curve { values: &pr, color: [0, 0, 0] },
                    Curve { values: &pf, color: [44, 160, 44] },
                    Curve { values: &d, color: [31, 119, 180] },
                ],
                640,
                280,
                Some((0.0, 1.0)),
            );
            let name = format!("stage-{}-step-{step:05}.png", stage_files.len() + 1);
            viz::save_png(&dir.join(&name), &image::DynamicImage::ImageRgb8(img), 1)?;
            stage_files.push(name);
        }
        if step == steps {
            break;
        }
        // (1) D: one SGD step on BCE, real labelled 1 and G's detached samples 0.
        let real = Tensor::from_vec(gpu, &[batch], &normal(&mut rng, batch, 0.0));
        let z = Tensor::from_vec(gpu, &[batch], &normal(&mut rng, batch, 0.0));
        let fake = z.add(&theta.detach());
        let loss_d = bce_with_logits(&d_logit(&real), &ones).add(&bce_with_logits(&d_logit(&fake), &zeros));
        let g = grad(&loss_d, &[&w, &b], None, false);
        opt_d.step(&[w.clone(), b.clone()], &g);
        // (2) G: the non-saturating step on θ through the updated D.
        let z = Tensor::from_vec(gpu, &[batch], &normal(&mut rng, batch, 0.0));
        let loss_g = bce_with_logits(&d_logit(&z.add(&theta)), &ones);
        let g = grad(&loss_g, &[&theta], None, false);
        opt_g.step(std::slice::from_ref(&theta), &g);
        history.push(theta.item());
    }
    let real = Tensor::from_vec(gpu, &[4096], &normal(&mut rng, 4096, 0.0));
    let d_real = d_logit(&real).sigmoid().mean_all().item();
    if let Some(dir) = out {
        let pts: Vec<(f64, f64)> = history.iter().enumerate().map(|(i, &t)| (i as f64 + 1.0, t as f64)).collect();
        let img = viz::plot_curves(&[Curve { values: &pts, color: [214, 39, 40] }], 640, 240, None);
        viz::save_png(&dir.join("theta.png"), &image::DynamicImage::ImageRgb8(img), 1)?;
    }
    Ok(ToyResult { theta: history, w: w.item(), b: b.item(), d_real, stage_files })
}
