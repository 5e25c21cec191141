//! CycleGAN training (Zhu et al. 2017): G: X -> Y and F: Y -> X with discriminators D_X, D_Y,
//! least-squares adversarial losses, the cycle loss ||F(G(x)) - x||_1 + ||G(F(y)) - y||_1,
//! the identity loss, a history pool of generated images for D, Adam with linear learning-rate
//! decay over the second half.

use std::collections::HashMap;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{self, CheckpointError, HostTensor};
use crate::config::CycleConfig;
use crate::data::{BatchSampler, Dataset};
use crate::gpu::Gpu;
use crate::grad;
use crate::models::cyclegan;
use crate::nn::loss::{l1, mse};
use crate::nn::{Mode, Sequential};
use crate::optim::{Adam, Optimizer};
use crate::tensor::{no_grad, Tensor};

/// The `format` metadata of CycleGAN checkpoints.
pub const CYCLE_FORMAT: &str = "shadergan-cyclegan-v1";

/// Up to `capacity` past generated images; half of each query returns older ones, so D does
/// not chase G's latest output only.
pub struct ImagePool {
    capacity: usize,
    images: Vec<Tensor>,
}

impl ImagePool {
    /// A pool of up to `capacity` past fakes (0: no pool).
    pub fn new(capacity: usize) -> Self {
        ImagePool { capacity, images: Vec::new() }
    }

    /// Fakes held.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// The batch D sees for `fresh` [n, ...] (detached).
    pub fn query(&mut self, fresh: &Tensor, rng: &mut impl Rng) -> Tensor {
        let fresh = fresh.detach();
        if self.capacity == 0 {
            return fresh;
        }
        let n = fresh.shape()[0];
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let img = fresh.narrow(0, i, 1);
            if self.images.len() < self.capacity {
                self.images.push(img.clone());
                out.push(img);
            } else if rng.random_bool(0.5) {
                let k = rng.random_range(0..self.images.len());
                out.push(std::mem::replace(&mut self.images[k], img));
            } else {
                out.push(img);
            }
        }
        Tensor::cat(&out.iter().collect::<Vec<_>>(), 0)
    }
}

/// What one CycleGAN iteration measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CycleStats {
    /// The generators' adversarial loss.
    pub g_adv: f32,
    /// The cycle-consistency loss (L1).
    pub cycle: f32,
    /// The identity loss (L1).
    pub identity: f32,
    /// D_X's loss.
    pub d_x: f32,
    /// D_Y's loss.
    pub d_y: f32,
}

/// CycleGAN's training state: two generators, two discriminators, their optimizers.
pub struct CycleTrainer {
    /// The device.
    pub gpu: Gpu,
    /// The run's config.
    pub config: CycleConfig,
    /// G: X -> Y
    pub g_xy: Sequential,
    /// F: Y -> X
    pub g_yx: Sequential,
    /// Discriminator of domain X.
    pub d_x: Sequential,
    /// Discriminator of domain Y.
    pub d_y: Sequential,
    /// Iterations taken.
    pub step: u64,
    opt_g: Adam,
    opt_d: Adam,
    rng: ChaCha8Rng,
    sampler_x: BatchSampler,
    sampler_y: BatchSampler,
    pool_x: ImagePool,
    pool_y: ImagePool,
}

fn networks(gpu: &Gpu, c: &CycleConfig, seed: u64) -> [Sequential; 4] {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ch = c.domain_x.channels;
    let m = &c.model;
    [
        cyclegan::generator(gpu, ch, m.g_width, m.blocks, &mut rng),
        cyclegan::generator(gpu, ch, m.g_width, m.blocks, &mut rng),
        cyclegan::patch_discriminator(gpu, ch, m.d_width, m.d_layers, &mut rng),
        cyclegan::patch_discriminator(gpu, ch, m.d_width, m.d_layers, &mut rng),
    ]
}

const NAMES: [&str; 4] = ["g_xy", "g_yx", "d_x", "d_y"];

impl CycleTrainer {
    /// Fresh networks and optimizers for `config`, seeded from its train.seed.
    pub fn new(gpu: &Gpu, config: &CycleConfig, len_x: usize, len_y: usize) -> Self {
        let t = &config.train;
        let [g_xy, g_yx, d_x, d_y] = networks(gpu, config, t.seed);
        CycleTrainer {
            gpu: gpu.clone(),
            config: config.clone(),
            g_xy,
            g_yx,
            d_x,
            d_y,
            step: 0,
            opt_g: Adam::new(t.lr, t.beta1, t.beta2),
            opt_d: Adam::new(t.lr, t.beta1, t.beta2),
            rng: ChaCha8Rng::seed_from_u64(t.seed.wrapping_add(1)),
            sampler_x: BatchSampler::new(len_x, t.seed.wrapping_add(2)),
            sampler_y: BatchSampler::new(len_y, t.seed.wrapping_add(3)),
            pool_x: ImagePool::new(t.pool_size),
            pool_y: ImagePool::new(t.pool_size),
        }
    }

    fn networks(&self) -> [&Sequential; 4] {
        [&self.g_xy, &self.g_yx, &self.d_x, &self.d_y]
    }

    /// The paper's schedule: constant for the first half, then linearly down to zero.
    pub fn learning_rate(&self) -> f32 {
        let total = self.config.train.steps as f32;
        let half = total / 2.0;
        let decay = ((self.step as f32 - half).max(0.0) / (half + 1.0)).min(1.0);
        self.config.train.lr * (1.0 - decay)
    }

    fn batch(sampler: &mut BatchSampler, data: &Dataset, b: usize, gpu: &Gpu) -> Tensor {
        let (pixels, _) = sampler.next_batch(data, b);
        Tensor::from_vec(gpu, &[b, data.channels, data.size, data.size], &pixels)
    }

    /// One iteration: (1) update G and F on the adversarial, cycle and identity losses, (2) update D_X and D_Y on real and pooled fake images.
    pub fn train_step(&mut self, data_x: &Dataset, data_y: &Dataset) -> CycleStats {
        let t = self.config.train.clone();
        let b = t.batch_size;
        let lr = self.learning_rate();
        self.opt_g.set_lr(lr);
        self.opt_d.set_lr(lr);
        let x = Self::batch(&mut self.sampler_x, data_x, b, &self.gpu);
        let y = Self::batch(&mut self.sampler_y, data_y, b, &self.gpu);
        let ones = |s: &Tensor| Tensor::ones(s.gpu(), s.shape());
        let zeros = |s: &Tensor| Tensor::zeros(s.gpu(), s.shape());

        // (1) Update G and F; D_X and D_Y only judge (their gradients are not computed).
        let fake_y = self.g_xy.forward(&x, Mode::Train);
        let fake_x = self.g_yx.forward(&y, Mode::Train);
        let rec_x = self.g_yx.forward(&fake_y, Mode::Train);
        let rec_y = self.g_xy.forward(&fake_x, Mode::Train);
        let sy = self.d_y.forward(&fake_y, Mode::Train);
        let sx = self.d_x.forward(&fake_x, Mode::Train);
        let adv = mse(&sy, &ones(&sy)).add(&mse(&sx, &ones(&sx)));
        let cycle = l1(&rec_x, &x).add(&l1(&rec_y, &y));
        let mut loss_g = adv.add(&cycle.scale(t.lambda_cycle));
        let identity = if t.identity > 0.0 {
            let idt = l1(&self.g_xy.forward(&y, Mode::Train), &y).add(&l1(&self.g_yx.forward(&x, Mode::Train), &x));
            loss_g = loss_g.add(&idt.scale(t.lambda_cycle * t.identity));
            idt
        } else {
            Tensor::zeros(&self.gpu, &[1])
        };
        let g_params: Vec<Tensor> = self.g_xy.parameters().into_iter().chain(self.g_yx.parameters()).collect();
        let grads = grad(&loss_g, &g_params, None, false);
        self.opt_g.step(&g_params, &grads);

        // (2) Update D_X and D_Y on real images and (pooled, detached) generated ones.
        let pooled_x = self.pool_x.query(&fake_x, &mut self.rng);
        let pooled_y = self.pool_y.query(&fake_y, &mut self.rng);
        let d_loss = |d: &Sequential, real: &Tensor, fake: &Tensor| {
            let r = d.forward(real, Mode::Train);
            let f = d.forward(fake, Mode::Train);
            mse(&r, &ones(&r)).add(&mse(&f, &zeros(&f))).scale(0.5)
        };
        let loss_dx = d_loss(&self.d_x, &x, &pooled_x);
        let loss_dy = d_loss(&self.d_y, &y, &pooled_y);
        let d_params: Vec<Tensor> = self.d_x.parameters().into_iter().chain(self.d_y.parameters()).collect();
        let grads = grad(&loss_dx.add(&loss_dy), &d_params, None, false);
        self.opt_d.step(&d_params, &grads);
        self.step += 1;

        let v = {
            let _no_graph = no_grad();
            Tensor::cat(&[&adv.detach(), &cycle.detach(), &identity.detach(), &loss_dx.detach(), &loss_dy.detach()], 0)
                .to_vec()
        };
        CycleStats { g_adv: v[0], cycle: v[1], identity: v[2], d_x: v[3], d_y: v[4] }
    }

    /// Translations (eval mode): x -> G(x) when `x_to_y`, else y -> F(y); images [n, C, H, W].
    pub fn translate(&self, images: &[f32], x_to_y: bool) -> Vec<f32> {
        translate(
            &self.gpu,
            self.config.domain_x.channels,
            self.config.domain_x.image_size,
            if x_to_y { &self.g_xy } else { &self.g_yx },
            images,
        )
    }

    /// Writes model.safetensors and state.safetensors into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), CheckpointError> {
        let mut tensors = Vec::new();
        for (name, net) in NAMES.iter().zip(self.networks()) {
            tensors.extend(checkpoint::export(net, name));
        }
        let mut meta = HashMap::new();
        meta.insert("format".into(), CYCLE_FORMAT.into());
        meta.insert("step".into(), self.step.to_string());
        meta.insert("config".into(), self.config.to_toml());
        checkpoint::save(&dir.join("model.safetensors"), &tensors, meta)?;
        let mut state = Vec::new();
        for (prefix, opt) in [("opt_g", &self.opt_g), ("opt_d", &self.opt_d)] {
            for (name, data) in opt.state().tensors {
                state.push((format!("{prefix}.{name}"), HostTensor { shape: vec![data.len()], data }));
            }
        }
        let mut meta = HashMap::new();
        meta.insert("format".into(), format!("{CYCLE_FORMAT}-state"));
        meta.insert("step".into(), self.step.to_string());
        meta.insert("opt_step".into(), self.opt_g.state().step.to_string());
        checkpoint::save(&dir.join("state.safetensors"), &state, meta)
    }

    /// Restores weights and optimizer moments. The image pools start empty again and the data
    /// order restarts at the saved step's epoch boundary, so a resumed CycleGAN run continues
    /// the same schedule but is not bit-identical to an uninterrupted one.
    pub fn resume(
        gpu: &Gpu,
        config: &CycleConfig,
        dir: &Path,
        len_x: usize,
        len_y: usize,
    ) -> Result<Self, CheckpointError> {
        let mut t = CycleTrainer::new(gpu, config, len_x, len_y);
        let path = dir.join("model.safetensors");
        let (tensors, meta) = checkpoint::load(&path)?;
        if meta.get("format").map(String::as_str) != Some(CYCLE_FORMAT) {
            return Err(CheckpointError::Invalid {
                path,
                problem: format!("not a CycleGAN checkpoint ('{CYCLE_FORMAT}' expected)"),
            });
        }
        for (name, net) in NAMES.iter().zip(t.networks()) {
            checkpoint::import(net, name, &tensors, &path)?;
        }
        let spath = dir.join("state.safetensors");
        let (state, smeta) = checkpoint::load(&spath)?;
        t.step = checkpoint::meta(&smeta, "step", &spath)?;
        let opt_step: u64 = checkpoint::meta(&smeta, "opt_step", &spath)?;
        let g_params: Vec<Tensor> = t.g_xy.parameters().into_iter().chain(t.g_yx.parameters()).collect();
        let d_params: Vec<Tensor> = t.d_x.parameters().into_iter().chain(t.d_y.parameters()).collect();
        for (prefix, opt, params) in [("opt_g", &mut t.opt_g, &g_params), ("opt_d", &mut t.opt_d, &d_params)] {
            let tensors = state
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(&format!("{prefix}.")).map(|n| (n.to_string(), v.data.clone())))
                .collect();
            opt.load_state(params, &crate::optim::OptimizerState { step: opt_step, tensors })
                .map_err(|e| CheckpointError::Invalid { path: spath.clone(), problem: e })?;
        }
        Ok(t)
    }
}

/// Both generators of a CycleGAN checkpoint, with its config: (config, G: X -> Y, F: Y -> X).
pub fn load_generators(gpu: &Gpu, path: &Path) -> Result<(CycleConfig, Sequential, Sequential), CheckpointError> {
    let (tensors, meta) = checkpoint::load(path)?;
    if meta.get("format").map(String::as_str) != Some(CYCLE_FORMAT) {
        return Err(CheckpointError::Invalid {
            path: path.to_path_buf(),
            problem: format!("not a CycleGAN checkpoint ('{CYCLE_FORMAT}' expected)"),
        });
    }
    let text: String = checkpoint::meta(&meta, "config", path)?;
    let config = CycleConfig::parse(&text, path)
        .map_err(|e| CheckpointError::Invalid { path: path.to_path_buf(), problem: format!("embedded config: {e}") })?;
    let [g_xy, g_yx, _, _] = networks(gpu, &config, 0);
    checkpoint::import(&g_xy, "g_xy", &tensors, path)?;
    checkpoint::import(&g_yx, "g_yx", &tensors, path)?;
    Ok((config, g_xy, g_yx))
}

/// A generator over images [n, C, S, S] in chunks of 64 (instance norm: no train/eval split).
pub fn translate(gpu: &Gpu, channels: usize, size: usize, g: &Sequential, images: &[f32]) -> Vec<f32> {
    let _no_graph = no_grad();
    let per = channels * size * size;
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(64 * per) {
        let n = chunk.len() / per;
        let x = Tensor::from_vec(gpu, &[n, channels, size, size], chunk);
        out.extend(g.forward(&x, Mode::Eval).to_vec());
    }
    out
}
