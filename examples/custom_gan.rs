//! Your own GAN on the library: a generator and critic written here (with a layer of their own,
//! PixelNorm), trained with WGAN-GP by the library's `Trainer`, which writes grids, metrics, a
//! report and checkpoints. The run stops halfway and a fresh model resumes it bit for bit; then
//! the saved generator alone draws samples.
//!
//!     cargo run --release --example custom_gan -- [run_dir] [steps]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use shadergan::checkpoint::CheckpointError;
use shadergan::data::{load_idx_images, BatchSampler, Dataset};
use shadergan::prelude::*;
use shadergan::train::{load_networks, losses::gradient_penalty};

const Z: usize = 32;
const BATCH: usize = 32;

/// ProGAN's pixelwise normalisation: each pixel's feature vector scaled to unit RMS.
struct PixelNorm;

impl Module for PixelNorm {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Tensor {
        let rms = x.square().mean(&[1], true).add_scalar(1e-8).sqrt();
        x.div(&rms)
    }
}

/// z [n, Z, 1, 1] -> images [n, 1, 16, 16].
fn generator(gpu: &Gpu) -> Sequential {
    Sequential::default()
        .push(ConvTranspose2d::new(gpu, Z, 64, 4).bias(false))
        .then(Layer::Relu)
        .push(PixelNorm)
        .push(ConvTranspose2d::new(gpu, 64, 32, 4).stride(2).padding(1).bias(false))
        .then(Layer::Relu)
        .push(PixelNorm)
        .push(ConvTranspose2d::new(gpu, 32, 1, 4).stride(2).padding(1))
        .then(Layer::Tanh)
}

/// images [n, 1, 16, 16] -> one unbounded score each (no batch norm: the penalty is per sample).
fn critic(gpu: &Gpu) -> Sequential {
    Sequential::default()
        .push(Conv2d::new(gpu, 1, 32, 4).stride(2).padding(1))
        .then(Layer::LeakyRelu(0.2))
        .push(Conv2d::new(gpu, 32, 64, 4).stride(2).padding(1))
        .then(Layer::LeakyRelu(0.2))
        .push(Conv2d::new(gpu, 64, 1, 4))
}

struct WganGp {
    gpu: Gpu,
    g: Sequential,
    d: Sequential,
    opt_g: Adam,
    opt_d: Adam,
    rng: ChaCha8Rng,
    sampler: BatchSampler,
    step: u64,
}

impl WganGp {
    fn new(gpu: &Gpu, data: &Dataset) -> Self {
        manual_seed(1);
        let (g, d) = (generator(gpu), critic(gpu));
        let adam = || Adam::new(1e-4, 0.0, 0.9); // the WGAN-GP paper's settings
        let (rng, sampler) = (ChaCha8Rng::seed_from_u64(2), BatchSampler::new(data.len, 3));
        WganGp { gpu: gpu.clone(), g, d, opt_g: adam(), opt_d: adam(), rng, sampler, step: 0 }
    }
}

/// z ~ N(0, 1) as [n, Z, 1, 1].
fn noise(gpu: &Gpu, n: usize, rng: &mut ChaCha8Rng) -> Tensor {
    let z: Vec<f32> = (0..n * Z).map(|_| rng.sample(StandardNormal)).collect();
    Tensor::from_vec(gpu, &[n, Z, 1, 1], &z)
}

impl Trainable for WganGp {
    type Data = Dataset;
    fn kind(&self) -> &str {
        "custom-wgan-gp"
    }
    fn steps_done(&self) -> u64 {
        self.step
    }

    fn train_step(&mut self, data: &Dataset) -> anyhow::Result<Metrics> {
        // (1) Update the critic on real and detached fake images, with the gradient penalty.
        let real = Tensor::from_vec(&self.gpu, &[BATCH, 1, 16, 16], &self.sampler.next_batch(data, BATCH).0);
        let fake = self.g.forward(&noise(&self.gpu, BATCH, &mut self.rng), Mode::Train);
        let eps: Vec<f32> = (0..BATCH).map(|_| self.rng.random()).collect();
        let critic = |x: &Tensor| self.d.forward(x, Mode::Train);
        let gp = gradient_penalty(critic, &real, &fake.detach(), &eps);
        let loss_d = critic(&fake.detach()).mean_all().sub(&critic(&real).mean_all()).add(&gp.scale(10.0));
        self.opt_d.step(&self.d.parameters(), &grad(&loss_d, &self.d.parameters()));
        // (2) Update G through the critic.
        let loss_g = self.d.forward(&fake, Mode::Train).mean_all().neg();
        self.opt_g.step(&self.g.parameters(), &grad(&loss_g, &self.g.parameters()));
        self.step += 1;
        Ok(vec![("loss_d", loss_d.item()), ("loss_g", loss_g.item())])
    }
    fn networks(&self) -> Vec<(&'static str, &dyn Module)> {
        vec![("generator", &self.g), ("critic", &self.d)]
    }
    fn save_state(&self, state: &mut TrainState) {
        state.put_optimizer("opt_g", &self.opt_g);
        state.put_optimizer("opt_d", &self.opt_d);
        state.put_rng("rng", &self.rng);
        state.put_sampler("sampler", &self.sampler);
    }

    fn load_state(&mut self, state: &TrainState) -> Result<(), CheckpointError> {
        self.step = state.step;
        state.load_optimizer("opt_g", &mut self.opt_g, &self.g.parameters())?;
        state.load_optimizer("opt_d", &mut self.opt_d, &self.d.parameters())?;
        self.rng = state.rng("rng")?;
        self.sampler = state.sampler("sampler", self.sampler.len())?;
        Ok(())
    }
    fn sample_grid(&self, _data: &Dataset) -> image::RgbImage {
        let fixed = noise(&self.gpu, 64, &mut ChaCha8Rng::seed_from_u64(0));
        shadergan::viz::grid(&self.g.forward(&fixed, Mode::Eval).to_vec(), 1, 16, 8)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let out = std::path::PathBuf::from(args.get(1).map_or("runs/custom_gan", String::as_str));
    let steps: u64 = args.get(2).map_or(Ok(400), |s| s.parse())?;
    let gpu = Gpu::default_device()?;
    let mnist = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/mnist-train-images-idx3-ubyte.gz");
    let data = load_idx_images(mnist.as_ref(), 16)?.truncated(4096);

    // Half the steps, then a fresh model continues from the checkpoint as a restarted process would.
    let run = |until: u64| Trainer::new(&out, until).sample_every(50).checkpoint_every(50).progress(true);
    run(steps / 2).fit(&mut WganGp::new(&gpu, &data), &data)?;
    let summary = run(steps).resume(true).fit(&mut WganGp::new(&gpu, &data), &data)?;

    // The generator alone, loaded from the checkpoint, draws 64 new samples.
    let g = generator(&gpu);
    load_networks(&out.join("model.safetensors"), &[("generator", &g)])?;
    let images = g.forward(&noise(&gpu, 64, &mut ChaCha8Rng::seed_from_u64(7)), Mode::Eval).to_vec();
    let picture = image::DynamicImage::ImageRgb8(shadergan::viz::grid(&images, 1, 16, 8));
    shadergan::viz::save_png(&out.join("samples.png"), &picture, 2)?;
    let last: Vec<String> = summary.last.iter().map(|(n, v)| format!("{n} {v:.3}")).collect();
    println!("{} steps, final {}; wrote {}", summary.steps, last.join(", "), out.join("samples.png").display());
    Ok(())
}
