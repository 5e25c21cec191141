//! The lectures' mode-collapse picture: a GAN of two small MLPs learns a ring of eight 2-D
//! Gaussians (the toy of Metz et al. 2016, "Unrolled GANs"), and [`mode_coverage`] counts the
//! modes its samples reach. A standard GAN often covers a few modes at a time and hops between
//! them; watching the count live is the point.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::gpu::Gpu;
use crate::grad;
use crate::nn::loss::bce_with_logits;
use crate::nn::{Init, Layer, Linear, Mode, Sequential};
use crate::optim::{Adam, Optimizer};
use crate::tensor::{no_grad, Tensor};

/// Modes on the ring.
pub const MODES: usize = 8;
/// The ring's radius.
pub const RADIUS: f32 = 2.0;
/// Each mode's standard deviation.
pub const MODE_STD: f32 = 0.05;
/// The generator's noise size.
pub const LATENT: usize = 2;
const HIDDEN: usize = 128;
const BATCH: usize = 256;

/// The centre of mode `k`, at angle 2πk/8 on the ring.
pub fn mode_centre(k: usize) -> [f32; 2] {
    let angle = 2.0 * std::f32::consts::PI * k as f32 / MODES as f32;
    [RADIUS * angle.cos(), RADIUS * angle.sin()]
}

/// How many modes `points` (x, y pairs, flattened) cover: a mode is covered when at least 1% of
/// the points lie within three standard deviations of its centre. Also returns the share of
/// points within three deviations of some mode ("high-quality" samples).
pub fn mode_coverage(points: &[f32]) -> (usize, f32) {
    let n = points.len() / 2;
    let mut near = [0usize; MODES];
    for p in points.chunks_exact(2) {
        for (k, count) in near.iter_mut().enumerate() {
            let [cx, cy] = mode_centre(k);
            if (p[0] - cx).hypot(p[1] - cy) <= 3.0 * MODE_STD {
                *count += 1;
            }
        }
    }
    let covered = near.iter().filter(|&&c| c * 100 >= n.max(1)).count();
    (covered, near.iter().sum::<usize>() as f32 / n.max(1) as f32)
}

/// One step's figures: D's and G's losses, and D's mean output on real and generated points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MixtureStep {
    /// D's loss on the real and the detached generated batch.
    pub d_loss: f32,
    /// G's non-saturating loss.
    pub g_loss: f32,
    /// Mean D(x) on the real batch.
    pub d_real: f32,
    /// Mean D(G(z)) on the generated batch, before D's update.
    pub d_fake: f32,
}

/// The 2-D GAN: G maps 2-D noise to points, D scores points; Adam on both.
pub struct MixtureGan {
    gpu: Gpu,
    /// noise [n, 2] -> points [n, 2].
    pub generator: Sequential,
    /// points [n, 2] -> logits [n, 1].
    pub discriminator: Sequential,
    opt_g: Adam,
    opt_d: Adam,
    rng: ChaCha8Rng,
    ones: Tensor,
    zeros: Tensor,
}

fn mlp(gpu: &Gpu, sizes: [usize; 4], rng: &mut ChaCha8Rng) -> Sequential {
    let linear = |i: usize, o: usize, rng: &mut ChaCha8Rng| {
        Layer::Linear(Linear::new(gpu, i, o).init_with(Init::PyTorchDefault, rng))
    };
    Sequential::new(vec![
        linear(sizes[0], sizes[1], rng),
        Layer::Relu,
        linear(sizes[1], sizes[2], rng),
        Layer::Relu,
        linear(sizes[2], sizes[3], rng),
    ])
}

impl MixtureGan {
    /// Fresh networks and data stream from `seed`.
    pub fn new(gpu: &Gpu, seed: u64) -> MixtureGan {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let generator = mlp(gpu, [LATENT, HIDDEN, HIDDEN, 2], &mut rng);
        let discriminator = mlp(gpu, [2, HIDDEN, HIDDEN, 1], &mut rng);
        MixtureGan {
            gpu: gpu.clone(),
            generator,
            discriminator,
            opt_g: Adam::new(1e-3, 0.5, 0.999),
            opt_d: Adam::new(1e-3, 0.5, 0.999),
            rng,
            ones: Tensor::ones(gpu, &[BATCH, 1]),
            zeros: Tensor::zeros(gpu, &[BATCH, 1]),
        }
    }

    /// `n` points of the ring: a uniformly chosen mode plus N(0, MODE_STD²) noise.
    pub fn real_points(&mut self, n: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(2 * n);
        for _ in 0..n {
            let [cx, cy] = mode_centre(rand::Rng::random_range(&mut self.rng, 0..MODES));
            for c in [cx, cy] {
                let e: f32 = StandardNormal.sample(&mut self.rng);
                out.push(c + MODE_STD * e);
            }
        }
        out
    }

    fn noise(&mut self, n: usize) -> Tensor {
        let z: Vec<f32> = (0..n * LATENT).map(|_| StandardNormal.sample(&mut self.rng)).collect();
        Tensor::from_vec(&self.gpu, &[n, LATENT], &z)
    }

    /// One step, recorded: "(1) update D on real and detached fake, (2) update G". Returns the
    /// figures as tensors, not yet read: [`step`](Self::step) waits for them,
    /// [`step_async`](Self::step_async) awaits them.
    fn record_step(&mut self) -> [Tensor; 4] {
        let points = self.real_points(BATCH);
        let real = Tensor::from_vec(&self.gpu, &[BATCH, 2], &points);
        let z = self.noise(BATCH);
        // (1) D on a real batch and a detached generated one.
        let fake = self.generator.forward(&z, Mode::Train).detach();
        let (d_real, d_fake) =
            (self.discriminator.forward(&real, Mode::Train), self.discriminator.forward(&fake, Mode::Train));
        let d_loss = bce_with_logits(&d_real, &self.ones).add(&bce_with_logits(&d_fake, &self.zeros));
        let params = self.discriminator.parameters();
        let grads = grad(&d_loss, &params.iter().collect::<Vec<_>>());
        self.opt_d.step(&params, &grads);
        // (2) G through the updated D: the non-saturating loss.
        let z = self.noise(BATCH);
        let scores = self.discriminator.forward(&self.generator.forward(&z, Mode::Train), Mode::Train);
        let g_loss = bce_with_logits(&scores, &self.ones);
        let params = self.generator.parameters();
        let grads = grad(&g_loss, &params.iter().collect::<Vec<_>>());
        self.opt_g.step(&params, &grads);
        let _no_graph = no_grad();
        [d_loss, g_loss, d_real.sigmoid().mean_all(), d_fake.sigmoid().mean_all()]
    }

    /// One training step, waiting for its figures.
    pub fn step(&mut self) -> MixtureStep {
        let [a, b, c, d] = self.record_step().map(|t| t.item());
        MixtureStep { d_loss: a, g_loss: b, d_real: c, d_fake: d }
    }

    /// [`step`](Self::step) without blocking (a browser).
    pub async fn step_async(&mut self) -> MixtureStep {
        let reads = self.record_step().map(|t| t.to_vec_later());
        let mut figures = [0.0; 4];
        for (f, read) in figures.iter_mut().zip(reads) {
            *f = read.await[0];
        }
        MixtureStep { d_loss: figures[0], g_loss: figures[1], d_real: figures[2], d_fake: figures[3] }
    }

    /// `n` generated points (x, y pairs), recorded and not yet read.
    pub fn samples(&mut self, n: usize) -> Tensor {
        let _no_graph = no_grad();
        let z = self.noise(n);
        self.generator.forward(&z, Mode::Eval)
    }
}
