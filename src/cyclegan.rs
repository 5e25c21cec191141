//! CycleGAN training (Zhu et al. 2017): G: X -> Y and F: Y -> X with discriminators D_X, D_Y,
//! least-squares adversarial losses, the cycle loss ||F(G(x)) - x||_1 + ||G(F(y)) - y||_1,
//! the identity loss, a history pool of generated images for D, Adam with linear learning-rate
//! decay over the second half.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::CheckpointError;
use crate::config::CycleConfig;
use crate::data::{BatchSampler, Dataset};
use crate::gpu::Gpu;
use crate::grad;
use crate::models::cyclegan;
use crate::nn::loss::{l1, mse};
use crate::nn::{Mode, Module, Sequential};
use crate::optim::{Adam, Optimizer};
use crate::tensor::{no_grad, Tensor};
use crate::train::{Chart, Metrics, Shard, TrainState, Trainable};

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

    /// Saves the held fakes under `name`.
    pub fn save(&self, name: &str, state: &mut TrainState) {
        state.put_tensors(name, &self.images);
    }

    /// Restores the fakes saved under `name`, each of `shape` ([1, C, H, W]).
    pub fn load(&mut self, name: &str, state: &TrainState, gpu: &Gpu, shape: &[usize]) -> Result<(), CheckpointError> {
        let count: usize = state.get(&format!("{name}.count"))?;
        if count > self.capacity {
            return Err(state.error(format!("'{name}' holds {count} images, more than pool_size {}", self.capacity)));
        }
        self.images = (0..count).map(|_| Tensor::zeros(gpu, shape)).collect();
        state.load_tensors(name, &self.images)
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

/// The two unpaired image sets CycleGAN translates between.
pub struct Domains {
    /// Domain X.
    pub x: Dataset,
    /// Domain Y.
    pub y: Dataset,
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
    opt_g: Box<dyn Optimizer>,
    opt_d: Box<dyn Optimizer>,
    rng: ChaCha8Rng,
    sampler_x: BatchSampler,
    sampler_y: BatchSampler,
    pool_x: ImagePool,
    pool_y: ImagePool,
    shard: Shard,
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
            opt_g: Box::new(Adam::new(t.lr, t.beta1, t.beta2)),
            opt_d: Box::new(Adam::new(t.lr, t.beta1, t.beta2)),
            rng: ChaCha8Rng::seed_from_u64(t.seed.wrapping_add(1)),
            sampler_x: BatchSampler::new(len_x, t.seed.wrapping_add(2)),
            sampler_y: BatchSampler::new(len_y, t.seed.wrapping_add(3)),
            pool_x: ImagePool::new(t.pool_size),
            pool_y: ImagePool::new(t.pool_size),
            shard: Shard::single(),
        }
    }

    /// Trains as one rank of a data-parallel job: this rank's share of each domain's global
    /// batch, gradients averaged over the ranks; each rank keeps its own image pools.
    pub fn distributed(mut self, shard: Shard) -> Result<Self, String> {
        shard.adopt(self.config.train.batch_size, [&mut self.opt_g, &mut self.opt_d])?;
        self.shard = shard;
        Ok(self)
    }

    /// The paper's schedule: constant for the first half, then linearly down to zero.
    pub fn learning_rate(&self) -> f32 {
        let total = self.config.train.steps as f32;
        let half = total / 2.0;
        let decay = ((self.step as f32 - half).max(0.0) / (half + 1.0)).min(1.0);
        self.config.train.lr * (1.0 - decay)
    }

    fn batch(sampler: &mut BatchSampler, data: &Dataset, b: usize, gpu: &Gpu, shard: &Shard) -> Tensor {
        let pixels = shard.local(sampler.next_batch(data, b).0, data.image_len());
        Tensor::from_vec(gpu, &[pixels.len() / data.image_len(), data.channels, data.size, data.size], &pixels)
    }

    /// One iteration: (1) update G and F on the adversarial, cycle and identity losses, (2) update D_X and D_Y on real and pooled fake images.
    pub fn train_step(&mut self, data: &Domains) -> CycleStats {
        let t = self.config.train.clone();
        let b = t.batch_size;
        let lr = self.learning_rate();
        self.opt_g.set_lr(lr);
        self.opt_d.set_lr(lr);
        let x = Self::batch(&mut self.sampler_x, &data.x, b, &self.gpu, &self.shard);
        let y = Self::batch(&mut self.sampler_y, &data.y, b, &self.gpu, &self.shard);
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
        let grads = grad(&loss_g, &g_params);
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
        let grads = grad(&loss_dx.add(&loss_dy), &d_params);
        self.opt_d.step(&d_params, &grads);
        self.step += 1;

        let v = {
            let _no_graph = no_grad();
            Tensor::cat(&[&adv.detach(), &cycle.detach(), &identity.detach(), &loss_dx.detach(), &loss_dy.detach()], 0)
                .to_vec()
        };
        let mut v = v;
        self.shard.mean(&mut v);
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
}

impl CycleStats {
    /// The measurements by name, as metrics.csv records them.
    pub fn metrics(&self) -> Metrics {
        vec![
            ("g_adv", self.g_adv),
            ("cycle", self.cycle),
            ("identity", self.identity),
            ("d_x", self.d_x),
            ("d_y", self.d_y),
        ]
    }
}

impl Trainable for CycleTrainer {
    type Data = Domains;

    fn kind(&self) -> &str {
        "cyclegan"
    }

    fn steps_done(&self) -> u64 {
        self.step
    }

    fn train_step(&mut self, data: &Domains) -> anyhow::Result<Metrics> {
        Ok(CycleTrainer::train_step(self, data).metrics())
    }

    fn networks(&self) -> Vec<(&'static str, &dyn Module)> {
        vec![("g_xy", &self.g_xy), ("g_yx", &self.g_yx), ("d_x", &self.d_x), ("d_y", &self.d_y)]
    }

    fn save_state(&self, state: &mut TrainState) {
        state.put_optimizer("opt_g", self.opt_g.as_ref());
        state.put_optimizer("opt_d", self.opt_d.as_ref());
        state.put_rng("rng", &self.rng);
        state.put_sampler("sampler_x", &self.sampler_x);
        state.put_sampler("sampler_y", &self.sampler_y);
        self.pool_x.save("pool_x", state);
        self.pool_y.save("pool_y", state);
    }

    fn load_state(&mut self, state: &TrainState) -> Result<(), CheckpointError> {
        self.step = state.step;
        let g_params: Vec<Tensor> = self.g_xy.parameters().into_iter().chain(self.g_yx.parameters()).collect();
        let d_params: Vec<Tensor> = self.d_x.parameters().into_iter().chain(self.d_y.parameters()).collect();
        state.load_optimizer("opt_g", self.opt_g.as_mut(), &g_params)?;
        state.load_optimizer("opt_d", self.opt_d.as_mut(), &d_params)?;
        self.rng = state.rng("rng")?;
        self.sampler_x = state.sampler("sampler_x", self.sampler_x.len())?;
        self.sampler_y = state.sampler("sampler_y", self.sampler_y.len())?;
        let d = &self.config.domain_x;
        let shape = [1, d.channels, d.image_size, d.image_size];
        self.pool_x.load("pool_x", state, &self.gpu, &shape)?;
        self.pool_y.load("pool_y", state, &self.gpu, &shape)
    }

    /// Rows x | G(x) | F(G(x)) for the first 8 images of X, then y | F(y) | G(F(y)) for Y.
    fn sample_grid(&self, data: &Domains) -> image::RgbImage {
        let (c, s) = (data.x.channels, data.x.size);
        let per = c * s * s;
        let mut tiles = Vec::new();
        for (set, forward) in [(&data.x, true), (&data.y, false)] {
            let n = set.len.min(8);
            let input = &set.pixels[..n * per];
            let there = self.translate(input, forward);
            let back = self.translate(&there, !forward);
            for i in 0..n {
                for v in [input, &there[..], &back[..]] {
                    tiles.extend_from_slice(&v[i * per..(i + 1) * per]);
                }
            }
        }
        crate::viz::grid(&tiles, c, s, 3)
    }

    fn config_toml(&self) -> String {
        self.config.to_toml()
    }

    fn charts(&self, _metrics: &[&'static str]) -> Vec<Chart> {
        vec![
            Chart { title: "Generator losses", metrics: vec!["cycle", "g_adv", "identity"], range: None },
            Chart { title: "Discriminator losses", metrics: vec!["d_x", "d_y"], range: None },
        ]
    }
}

/// Both generators of a CycleGAN checkpoint, with its config: (config, G: X -> Y, F: Y -> X).
pub fn load_generators(gpu: &Gpu, path: &Path) -> Result<(CycleConfig, Sequential, Sequential), CheckpointError> {
    let (tensors, meta) = crate::checkpoint::load(path)?;
    if meta.get("model").map(String::as_str) != Some("cyclegan") {
        return Err(CheckpointError::Invalid {
            path: path.to_path_buf(),
            problem: "not a CycleGAN checkpoint (its metadata names no 'cyclegan' model)".into(),
        });
    }
    let text: String = crate::checkpoint::meta(&meta, "config", path)?;
    let config = CycleConfig::parse(&text, path)
        .map_err(|e| CheckpointError::Invalid { path: path.to_path_buf(), problem: format!("embedded config: {e}") })?;
    let m = &config.model;
    let needed = cyclegan::generator_weight_count(config.domain_x.channels, m.g_width, m.blocks);
    for name in ["g_xy", "g_yx"] {
        crate::train::check_holds(&tensors, name, needed, path)?;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let ch = config.domain_x.channels;
    let g_xy = cyclegan::generator(gpu, ch, m.g_width, m.blocks, &mut rng);
    let g_yx = cyclegan::generator(gpu, ch, m.g_width, m.blocks, &mut rng);
    for (name, g) in [("g_xy", &g_xy), ("g_yx", &g_yx)] {
        crate::checkpoint::import(g, name, &tensors, path)?;
    }
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
