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

/// Where the game stands: G's θ and D's weight and bias.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ToyState {
    /// G's shift: its samples are N(θ, 1).
    pub theta: f32,
    /// D's weight.
    pub w: f32,
    /// D's bias: D(x) = sigmoid(w x + b).
    pub b: f32,
}

/// The game's players and their optimizers, stepped one iteration at a time.
pub struct ToyGame {
    gpu: Gpu,
    theta: Tensor,
    w: Tensor,
    b: Tensor,
    opt_d: Sgd,
    opt_g: Sgd,
    rng: ChaCha8Rng,
    ones: Tensor,
    zeros: Tensor,
}

const BATCH: usize = 256;

impl ToyGame {
    /// θ at 3 and D roughly right, as in the figure's first panel: its boundary between the
    /// data (at 0) and the generator (at 3).
    pub fn new(gpu: &Gpu, seed: u64) -> ToyGame {
        ToyGame {
            gpu: gpu.clone(),
            theta: Tensor::from_vec(gpu, &[1], &[3.0]).requires_grad(),
            w: Tensor::from_vec(gpu, &[1], &[-1.0]).requires_grad(),
            b: Tensor::from_vec(gpu, &[1], &[1.5]).requires_grad(),
            opt_d: Sgd::new(0.1, 0.5),
            opt_g: Sgd::new(0.02, 0.5),
            rng: ChaCha8Rng::seed_from_u64(seed),
            ones: Tensor::ones(gpu, &[BATCH]),
            zeros: Tensor::zeros(gpu, &[BATCH]),
        }
    }

    /// `n` draws of N(shift, 1) from the game's own stream.
    pub fn normal(&mut self, n: usize, shift: f32) -> Vec<f32> {
        normal(&mut self.rng, n, shift)
    }

    fn d_logit(&self, x: &Tensor) -> Tensor {
        x.mul(&self.w).add(&self.b)
    }

    /// One iteration, recorded: "(1) update D on real and detached fake, (2) update G".
    fn record_step(&mut self) {
        // (1) D: one SGD step on BCE, real labelled 1 and G's detached samples 0.
        let real = Tensor::from_vec(&self.gpu, &[BATCH], &normal(&mut self.rng, BATCH, 0.0));
        let z = Tensor::from_vec(&self.gpu, &[BATCH], &normal(&mut self.rng, BATCH, 0.0));
        let fake = z.add(&self.theta.detach());
        let loss_d =
            bce_with_logits(&self.d_logit(&real), &self.ones).add(&bce_with_logits(&self.d_logit(&fake), &self.zeros));
        let g = grad(&loss_d, &[&self.w, &self.b]);
        self.opt_d.step(&[self.w.clone(), self.b.clone()], &g);
        // (2) G: the non-saturating step on θ through the updated D.
        let z = Tensor::from_vec(&self.gpu, &[BATCH], &normal(&mut self.rng, BATCH, 0.0));
        let loss_g = bce_with_logits(&self.d_logit(&z.add(&self.theta)), &self.ones);
        let g = grad(&loss_g, &[&self.theta]);
        self.opt_g.step(std::slice::from_ref(&self.theta), &g);
    }

    /// θ, w and b now (waits for the device).
    pub fn state(&self) -> ToyState {
        ToyState { theta: self.theta.item(), w: self.w.item(), b: self.b.item() }
    }

    /// One iteration; the state after it.
    pub fn step(&mut self) -> ToyState {
        self.record_step();
        self.state()
    }

    /// [`step`](Self::step) without blocking (a browser).
    pub async fn step_async(&mut self) -> ToyState {
        self.record_step();
        let reads = [&self.theta, &self.w, &self.b].map(|t| t.to_vec_later());
        let mut v = [0.0; 3];
        for (x, read) in v.iter_mut().zip(reads) {
            *x = read.await[0];
        }
        ToyState { theta: v[0], w: v[1], b: v[2] }
    }

    /// Mean D(x) over `n` fresh real samples.
    pub fn mean_d_real(&mut self, n: usize) -> f32 {
        let real = Tensor::from_vec(&self.gpu, &[n], &normal(&mut self.rng, n, 0.0));
        self.d_logit(&real).sigmoid().mean_all().item()
    }
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
    let mut game = ToyGame::new(gpu, seed);
    let mut history = Vec::with_capacity(steps);
    let mut stage_files = Vec::new();
    let stages = [0, steps / 10, steps / 4, steps];
    let grid: Vec<f64> = (0..161).map(|i| -4.0 + 10.0 * i as f64 / 160.0).collect();
    for step in 0..=steps {
        if let (Some(dir), true) = (out, stages.contains(&step)) {
            // Stage plot: data density (black), generated density (green), D(x) (blue).
            let real = game.normal(4000, 0.0);
            let ToyState { theta, w, b } = game.state();
            let fake = game.normal(4000, theta);
            let (wv, bv) = (w as f64, b as f64);
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
        history.push(game.step().theta);
    }
    let d_real = game.mean_d_real(4096);
    if let Some(dir) = out {
        let pts: Vec<(f64, f64)> = history.iter().enumerate().map(|(i, &t)| (i as f64 + 1.0, t as f64)).collect();
        let img = viz::plot_curves(&[Curve { values: &pts, color: [214, 39, 40] }], 640, 240, None);
        viz::save_png(&dir.join("theta.png"), &image::DynamicImage::ImageRgb8(img), 1)?;
    }
    let ToyState { w, b, .. } = game.state();
    Ok(ToyResult { theta: history, w, b, d_real, stage_files })
}
