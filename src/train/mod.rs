//! The GAN training loop (Goodfellow et al.'s algorithm with Radford et al.'s DCGAN model) for
//! every GAN kind and loss of the engine. One iteration: (1) update D `d_steps` times on a real
//! batch and a detached fake one, (2) update G through D.

pub mod augment;
mod checkpoint_unit;
pub mod codes;
pub mod ema;
pub mod engine;
pub mod losses;
pub mod noise;
pub mod parallel;
mod persist;
mod report;
pub mod run;
mod state;

pub use checkpoint_unit::{
    check_same_config, has_checkpoint, load_networks, model_file_async, network_tensors, restore_checkpoint,
    save_checkpoint, MANIFEST, MODEL_FORMAT, STATE_FORMAT,
};
pub use codes::{generate, Codes};
pub use engine::{Chart, Evaluation, Metrics, RunLock, RunSummary, Trainable, Trainer};
pub use parallel::{Collective, Shard};
pub use persist::{check_fits_device, check_holds, generator_from_bytes, load_generator};
pub use report::{read_metrics, sample_grids, write_plots_and_report};
pub use state::TrainState;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{Config, GanKind, GanLoss, OptimizerKind};
use crate::data::{BatchSampler, DataError, Dataset, ImageSource};
use crate::gpu::Gpu;
use crate::grad;
use crate::models::classifier::labelled_subset;
use crate::models::dcgan;
use crate::nn::{loss, one_hot, Layer, Mode, Sequential};
use crate::optim::{clip_weights, Adam, Optimizer, RmsProp};
use crate::tensor::{no_grad, Tensor};
use noise::Noise;

/// Size of the fixed-noise batch whose samples are drawn over training (unconditional models).
pub const FIXED_SAMPLES: usize = 64;

/// What one iteration measured: D's mean output on real and fake samples (probabilities for the
/// BCE losses, raw scores otherwise).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepStats {
    /// D's loss.
    pub d_loss: f32,
    /// G's loss.
    pub g_loss: f32,
    /// D's mean output on real images.
    pub d_real: f32,
    /// D's mean output on generated images.
    pub d_fake: f32,
}

/// The semi-supervised GAN's few labelled images and their own batch order.
struct Labelled {
    data: Dataset,
    sampler: BatchSampler,
}

/// A GAN's training state: both networks, their optimizers, the noise and data positions.
pub struct GanTrainer {
    /// The device.
    pub gpu: Gpu,
    /// The run's config.
    pub config: Config,
    /// The generator.
    pub g: Sequential,
    /// The discriminator (critic).
    pub d: Sequential,
    /// Iterations taken.
    pub step: u64,
    /// The noise of the fixed sample grid.
    pub fixed_noise: Vec<f32>,
    /// Class (or categorical code) of each fixed-noise sample.
    pub fixed_labels: Vec<u32>,
    pub(crate) opt_g: Box<dyn Optimizer>,
    pub(crate) opt_d: Box<dyn Optimizer>,
    pub(crate) noise: Noise,
    pub(crate) sampler: BatchSampler,
    labelled: Option<Labelled>,
    /// A resumed run's position in the labelled batches, applied when they are first built.
    pub(crate) pending_labelled_position: Option<(u64, usize)>,
    /// Running means of past parameters (historical averaging), G's then D's.
    pub(crate) history: Vec<Tensor>,
    /// This process's share of each batch (the whole batch outside a data-parallel job).
    pub(crate) shard: Shard,
    /// D updates so far (lazy regularisation counts them).
    pub(crate) d_updates: u64,
    /// The moving average of G's weights, when `train.ema_half_life_images` > 0.
    pub ema: Option<ema::Ema>,
    /// DiffAugment's augmentations of every image D sees (none by default).
    augment_policy: augment::Policy,
    /// ADA's adaptive probability of those augmentations, when `train.ada_target` > 0.
    pub ada: Option<augment::Adaptive>,
}

fn build_generator(gpu: &Gpu, config: &Config, rng: &mut ChaCha8Rng) -> Sequential {
    let m = &config.model;
    let (size, ch) = (config.data.image_size, config.data.channels);
    dcgan::generator(gpu, m.latent_dim + codes::g_extra(config), m.g_width, ch, size, m.g_norm, rng)
}

fn build_networks(gpu: &Gpu, config: &Config, rng: &mut ChaCha8Rng) -> (Sequential, Sequential) {
    let m = &config.model;
    let (size, ch) = (config.data.image_size, config.data.channels);
    let g = build_generator(gpu, config, rng);
    let d_in = ch + if m.conditional { m.classes } else { 0 };
    let mut d = dcgan::discriminator(gpu, m.d_width, d_in, size, m.d_norm, codes::d_outputs(config), rng);
    if m.minibatch_kernels > 0 {
        dcgan::add_minibatch_discrimination(&mut d, gpu, m.minibatch_kernels, m.minibatch_dims, rng);
    }
    if m.spectral_norm {
        d = Sequential::new(crate::nn::spectral_norm_all(d.layers, rng));
    }
    (g, d)
}

impl GanTrainer {
    /// Fresh networks and optimizers, all randomness derived from `config.train.seed`.
    pub fn new(gpu: &Gpu, config: &Config, dataset_len: usize) -> GanTrainer {
        let t = &config.train;
        let mut init_rng = ChaCha8Rng::seed_from_u64(t.seed);
        let (g, d) = build_networks(gpu, config, &mut init_rng);
        let mut noise = Noise::new(t.noise, t.seed.wrapping_add(1));
        let fixed_labels = codes::fixed_labels(config);
        let fixed_noise = noise.sample(fixed_labels.len() * config.model.latent_dim);
        let optimizer = |lr: f32| -> Box<dyn Optimizer> {
            match t.optimizer {
                OptimizerKind::Adam => Box::new(Adam::new(lr, t.beta1, t.beta2)),
                OptimizerKind::Rmsprop => Box::new(RmsProp::new(lr)),
            }
        };
        let history = if t.historical_averaging > 0.0 {
            g.parameters().iter().chain(d.parameters().iter()).map(|p| p.detach().scale(1.0)).collect()
        } else {
            vec![]
        };
        let ema = (t.ema_half_life_images > 0.0).then(|| {
            let fresh = build_generator(gpu, config, &mut ChaCha8Rng::seed_from_u64(0));
            ema::Ema::new(&g, fresh, t.ema_half_life_images, t.batch_size)
        });
        GanTrainer {
            gpu: gpu.clone(),
            config: config.clone(),
            g,
            d,
            step: 0,
            fixed_noise,
            fixed_labels,
            opt_g: optimizer(t.lr_g),
            opt_d: optimizer(t.lr_d),
            noise,
            sampler: BatchSampler::new(dataset_len, t.seed.wrapping_add(2)),
            labelled: None,
            pending_labelled_position: None,
            history,
            shard: Shard::single(),
            d_updates: 0,
            ema,
            augment_policy: augment::Policy::parse(&t.diffaugment).unwrap_or_default(),
            ada: (t.ada_target > 0.0).then_some(augment::Adaptive {
                p: 0.0,
                target: t.ada_target,
                speed_images: t.ada_speed_images,
                sign_sum: 0.0,
                count: 0.0,
            }),
        }
    }

    /// Trains as one rank of a data-parallel job: this rank's share of every global batch,
    /// gradients averaged over the ranks before each update.
    pub fn distributed(mut self, shard: Shard) -> Result<Self, String> {
        shard.adopt(self.config.train.batch_size, [&mut self.opt_g, &mut self.opt_d])?;
        if self.config.train.sync_batch_norm {
            crate::tensor::collective::synchronize_batch_norm(shard.collective().cloned());
        }
        self.shard = shard;
        Ok(self)
    }

    /// This rank's share of the next global batch of real images.
    fn real_batch(&mut self, data: &dyn ImageSource) -> Result<(Tensor, Vec<u32>), DataError> {
        let (pixels, labels) = data.next_batch(&mut self.sampler, self.config.train.batch_size)?;
        let per_image = data.values_per_image();
        let (pixels, labels) = (self.shard.local(pixels, per_image), self.shard.local(labels, 1));
        let b = pixels.len() / per_image;
        let (c, side) = (data.channels(), data.size());
        Ok((Tensor::from_vec(&self.gpu, &[b, c, side, side], &pixels), labels))
    }

    /// Codes for a batch of fakes: conditional GANs reuse the real batch's classes, ACGAN draws
    /// classes, InfoGAN draws its categorical and continuous codes.
    /// `x` as D sees it: augmented with draws for the global batch (this rank's share).
    fn augmented(&mut self, x: &Tensor) -> Tensor {
        if !self.augment_policy.is_on() {
            return x.clone();
        }
        let global = self.config.train.batch_size;
        let mut draws = augment::Draws::sample(self.noise.rng(), global, x.shape()[2]);
        if let Some(ada) = &self.ada {
            draws = draws.with_probability(ada.p, self.noise.rng());
        }
        let start = self.shard.share(global).start;
        augment::augment(x, self.augment_policy, &draws.slice(start..start + x.shape()[0]))
    }

    /// Every rank draws the global batch's codes (the same on all) and keeps its share.
    fn sample_codes(&mut self, real_labels: &[u32]) -> Codes {
        let b = self.config.train.batch_size;
        let m = &self.config.model;
        let z = self.shard.local(self.noise.sample(b * m.latent_dim), m.latent_dim);
        let labels = match m.kind {
            GanKind::Gan if m.conditional => real_labels.to_vec(),
            GanKind::Acgan => self.shard.local(self.noise.labels(b, m.classes), 1),
            GanKind::Infogan => self.shard.local(self.noise.labels(b, m.info_categorical), 1),
            _ => vec![],
        };
        let continuous = if m.kind == GanKind::Infogan {
            self.shard.local(self.noise.uniform_pm1(b * m.info_continuous), m.info_continuous)
        } else {
            vec![]
        };
        Codes { z, labels, continuous }
    }

    /// D's full output (score and auxiliary head) and its last hidden features.
    pub fn discriminate(&self, x: &Tensor, labels: &[u32]) -> (Tensor, Tensor) {
        let mut outs = match (&self.d.layers[0], self.config.model.conditional) {
            (Layer::Conv2d(first), true) => {
                let h = codes::conditional_first_conv(first, x, labels, self.config.model.classes);
                let mut outs = self.d.forward_all_from(1, &h, Mode::Train);
                outs.insert(0, h);
                outs
            }
            _ => self.d.forward_all(&codes::d_input(&self.config, x, labels), Mode::Train),
        };
        let features = outs[dcgan::feature_layer(&self.d)].clone();
        (outs.pop().expect("D has layers"), features)
    }

    /// D's real/fake score (what WGAN calls the critic).
    pub fn critic(&self, x: &Tensor, labels: &[u32]) -> Tensor {
        codes::adversarial_score(&self.config, &self.discriminate(x, labels).0)
    }

    /// One training iteration.
    pub fn train_step(&mut self, data: &Dataset) -> StepStats {
        self.try_train_step(data).expect("in-memory images are always at hand")
    }

    /// One iteration on images from any source (a streaming folder can fail to decode a file).
    pub fn try_train_step(&mut self, data: &dyn ImageSource) -> Result<StepStats, DataError> {
        let figures = self.record_step(data)?;
        Ok(self.step_stats(figures.to_vec()))
    }

    /// `try_train_step` without blocking (the form a browser needs): the step is recorded and
    /// submitted at once, and its figures are awaited.
    pub async fn train_step_async(&mut self, data: &dyn ImageSource) -> Result<StepStats, DataError> {
        let figures = self.record_step(data)?;
        Ok(self.step_stats(figures.to_vec_async().await))
    }

    /// The figures of a step as read back: the log shows the global batch's on every rank.
    fn step_stats(&self, mut figures: Vec<f32>) -> StepStats {
        self.shard.mean(&mut figures);
        StepStats { d_loss: figures[0], g_loss: figures[1], d_real: figures[2], d_fake: figures[3] }
    }

    /// Records one iteration; its four figures (D's and G's losses, D's mean outputs on real
    /// and generated images) stay on the device until read.
    fn record_step(&mut self, data: &dyn ImageSource) -> Result<Tensor, DataError> {
        let kind = self.config.train.loss;
        let aux_weight = self.config.train.aux_weight;
        let d_params = self.d.parameters();
        let g_params = self.g.parameters();

        // (1) Update D on a real batch and a detached fake one. The last fake keeps its graph
        // for G's update, as PyTorch's DCGAN example does.
        let d_steps = self.config.train.d_steps;
        let mut last = None;
        for k in 0..d_steps {
            let (real, real_labels) = self.real_batch(data)?;
            let codes = self.sample_codes(&real_labels);
            let z = codes::g_input(&self.gpu, &self.config, &codes);
            let fake = if k + 1 == d_steps {
                codes::run_generator(&self.gpu, &self.config, &self.g, &z, Mode::Train)
            } else {
                let _no_graph = no_grad();
                codes::run_generator(&self.gpu, &self.config, &self.g, &z, Mode::Train)
            };
            let (real_seen, fake_seen) = (self.augmented(&real), self.augmented(&fake.detach()));
            let (real_out, real_features) = self.discriminate(&real_seen, &real_labels);
            let (fake_out, _) = self.discriminate(&fake_seen, &codes.labels);
            let real_score = codes::adversarial_score(&self.config, &real_out);
            if let Some(ada) = &mut self.ada {
                // r_t over the global batch: the ranks' tallies averaged keep their ratio.
                let scores = real_score.detach().to_vec();
                let mut tally =
                    [scores.iter().map(|v| v.signum() * (*v != 0.0) as i32 as f32).sum(), scores.len() as f32];
                self.shard.mean(&mut tally);
                ada.observe(tally[0] as f64, tally[1] as f64);
                if (self.d_updates + 1).is_multiple_of(4) {
                    ada.adjust(4 * self.config.train.batch_size);
                }
            }
            let fake_score = codes::adversarial_score(&self.config, &fake_out);
            let mut loss_d = losses::discriminator_loss(kind, &real_score, &fake_score, self.config.train.real_label);
            // Lazy R1/R2 (StyleGAN2): every reg_every-th D step, weighted by reg_every.
            let t = &self.config.train;
            if (t.r1_gamma > 0.0 || t.r2_gamma > 0.0) && self.d_updates.is_multiple_of(t.reg_every as u64) {
                let scale = 0.5 * t.reg_every as f32;
                let (r1, r2) = (t.r1_gamma, t.r2_gamma);
                if r1 > 0.0 {
                    let p = losses::gradient_norm_penalty(|x| self.critic(x, &real_labels), &real);
                    loss_d = loss_d.add(&p.scale(r1 * scale));
                }
                if r2 > 0.0 {
                    let p = losses::gradient_norm_penalty(|x| self.critic(x, &codes.labels), &fake);
                    loss_d = loss_d.add(&p.scale(r2 * scale));
                }
            }
            self.d_updates += 1;
            if kind == GanLoss::WassersteinGp {
                let eps = self.shard.local(self.noise.uniform01(self.config.train.batch_size), 1);
                let gp = losses::gradient_penalty(|x| self.critic(x, &real_labels), &real, &fake, &eps);
                loss_d = loss_d.add(&gp.scale(self.config.train.gp_lambda));
            }
            match self.config.model.kind {
                GanKind::Acgan => {
                    let real_codes = Codes { labels: real_labels.clone(), ..Codes::default() };
                    let on_real = codes::auxiliary_loss(&self.config, &real_out, &real_codes).expect("ACGAN head");
                    let on_fake = codes::auxiliary_loss(&self.config, &fake_out, &codes).expect("ACGAN head");
                    loss_d = loss_d.add(&on_real.add(&on_fake).scale(aux_weight));
                }
                GanKind::Infogan => {
                    let info = codes::auxiliary_loss(&self.config, &fake_out, &codes).expect("Q head");
                    loss_d = loss_d.add(&info.scale(aux_weight));
                }
                GanKind::SemiSupervised => loss_d = loss_d.add(&self.supervised_loss(data)?),
                GanKind::Gan => {}
            }
            let grads = self.with_history(&loss_d, &d_params, self.g_param_count());
            self.opt_d.step(&d_params, &grads);
            if kind == GanLoss::Wasserstein {
                clip_weights(&d_params, self.config.train.clip);
            }
            last = Some((fake, codes, loss_d, real_score, fake_score, real_features, real_seen, real_labels));
        }
        let (fake, codes, loss_d, real_score, fake_score, real_features, real, real_labels) =
            last.expect("d_steps >= 1");

        // (2) Update G through the updated D; only G's gradients are computed.
        let fake_seen = self.augmented(&fake);
        let (out, features) = self.discriminate(&fake_seen, &codes.labels);
        let feature_matching = self.config.train.feature_matching || self.config.model.kind == GanKind::SemiSupervised;
        let mut loss_g = if feature_matching {
            losses::feature_matching(&real_features, &features)
        } else if kind == GanLoss::Relativistic {
            // RpGAN pairs each fake with a real image, scored by the updated D.
            let real_now = self.critic(&real, &real_labels);
            losses::relativistic_generator_loss(&real_now, &codes::adversarial_score(&self.config, &out))
        } else {
            losses::generator_loss(kind, &codes::adversarial_score(&self.config, &out))
        };
        if let Some(aux) = codes::auxiliary_loss(&self.config, &out, &codes) {
            loss_g = loss_g.add(&aux.scale(aux_weight));
        }
        let grads = self.with_history(&loss_g, &g_params, 0);
        self.opt_g.step(&g_params, &grads);
        if let Some(ema) = &self.ema {
            ema.update(&self.g);
        }
        self.update_history();
        self.step += 1;

        let _no_graph = no_grad();
        let summary = |s: &Tensor| {
            if matches!(kind, GanLoss::Minimax | GanLoss::NonSaturating) {
                s.sigmoid().mean_all()
            } else {
                s.mean_all()
            }
        };
        // One tensor, so one readback for all four numbers.
        Ok(Tensor::cat(&[&loss_d.detach(), &loss_g.detach(), &summary(&real_score), &summary(&fake_score)], 0))
    }

    fn g_param_count(&self) -> usize {
        self.g.parameters().len()
    }

    /// Gradients of `loss` for `params`, plus historical averaging's 2λ(θ - θ̄) when enabled
    /// (`offset` locates these parameters' running means in `history`).
    fn with_history(&self, loss: &Tensor, params: &[Tensor], offset: usize) -> Vec<Tensor> {
        let grads = grad(loss, params);
        let lambda = self.config.train.historical_averaging;
        if lambda == 0.0 {
            return grads;
        }
        let _no_graph = no_grad();
        grads
            .iter()
            .zip(params)
            .zip(&self.history[offset..])
            .map(|((g, p), avg)| g.add(&p.sub(avg).scale(2.0 * lambda)))
            .collect()
    }

    /// θ̄ ← θ̄ + (θ - θ̄) / (t + 1): the mean of every parameter value so far.
    fn update_history(&mut self) {
        if self.history.is_empty() {
            return;
        }
        let _no_graph = no_grad();
        let t = (self.step + 2) as f32;
        for (avg, p) in self.history.iter().zip(self.g.parameters().iter().chain(self.d.parameters().iter())) {
            avg.assign_from(&avg.add(&p.sub(avg).scale(1.0 / t)));
        }
    }

    /// The semi-supervised GAN's cross-entropy on a batch of the few labelled images.
    fn supervised_loss(&mut self, data: &dyn ImageSource) -> Result<Tensor, DataError> {
        let k = self.config.model.classes;
        if self.labelled.is_none() {
            let subset =
                labelled_subset(data, self.config.train.labelled_per_class, self.config.train.seed.wrapping_add(3))?;
            let seed = self.config.train.seed.wrapping_add(4);
            let (epoch, cursor) = self.pending_labelled_position.take().unwrap_or((0, 0));
            let sampler = BatchSampler::at(subset.len, seed, epoch, cursor);
            self.labelled = Some(Labelled { data: subset, sampler });
        }
        let l = self.labelled.as_mut().expect("set above");
        let (pixels, labels) = l.sampler.next_batch(&l.data, self.config.train.batch_size.min(l.data.len));
        let (pixels, labels) = (self.shard.local(pixels, l.data.image_len()), self.shard.local(labels, 1));
        let b = labels.len();
        let x = Tensor::from_vec(&self.gpu, &[b, l.data.channels, l.data.size, l.data.size], &pixels);
        let (out, _) = self.discriminate(&x, &[]);
        Ok(loss::softmax_cross_entropy(&out, &one_hot(&self.gpu, &labels, k)))
    }

    /// Historical averaging's running means of G's then D's parameters (empty when off).
    pub fn historical_means(&self) -> &[Tensor] {
        &self.history
    }

    /// (epoch, cursor) of the labelled batches, once they exist.
    pub(crate) fn labelled_position(&self) -> Option<(u64, usize)> {
        self.labelled.as_ref().map(|l| (l.sampler.epoch, l.sampler.cursor)).or(self.pending_labelled_position)
    }

    /// Images [n, C, H, W] in [-1, 1] for these codes, with batch norm in eval mode, from the
    /// averaged generator when there is one.
    pub fn generate_codes(&self, codes: &Codes) -> Vec<f32> {
        generate(&self.gpu, &self.config, self.sampling_generator(), codes)
    }

    /// The generator samples come from: the averaged one when there is one.
    fn sampling_generator(&self) -> &Sequential {
        self.ema.as_ref().map_or(&self.g, |e| &e.net)
    }

    /// Images from latent vectors (and one class or code per sample where the model takes one).
    pub fn generate_with(&self, z: &[f32], labels: &[u32]) -> Vec<f32> {
        self.generate_codes(&Codes { z: z.to_vec(), labels: labels.to_vec(), continuous: vec![] })
    }

    /// Samples of the fixed noise (and fixed classes): the grids drawn during training.
    pub fn generate_fixed(&self) -> Vec<f32> {
        self.generate_codes(&self.fixed_codes())
    }

    /// `generate_fixed` without blocking (a browser).
    pub async fn generate_fixed_async(&self) -> Vec<f32> {
        codes::generate_async(&self.gpu, &self.config, self.sampling_generator(), &self.fixed_codes()).await
    }

    /// The fixed noise and classes as the generator's codes.
    pub fn fixed_codes(&self) -> Codes {
        Codes { z: self.fixed_noise.clone(), labels: self.fixed_labels.clone(), continuous: vec![] }
    }

    /// The semi-supervised D as a classifier: predicted class of each image.
    pub fn classify(&self, images: &[f32]) -> Vec<u32> {
        let _no_graph = no_grad();
        let d = &self.config.data;
        let per = d.channels * d.image_size * d.image_size;
        let k = codes::d_outputs(&self.config);
        let mut out = Vec::new();
        for chunk in images.chunks(256 * per) {
            let n = chunk.len() / per;
            let x = Tensor::from_vec(&self.gpu, &[n, d.channels, d.image_size, d.image_size], chunk);
            let logits = self.d.forward(&x, Mode::Eval).to_vec();
            out.extend(logits.chunks(k).map(|row| {
                row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i as u32).unwrap_or(0)
            }));
        }
        out
    }
}

impl Noise {
    /// Classes drawn uniformly.
    pub fn labels(&mut self, n: usize, classes: usize) -> Vec<u32> {
        (0..n).map(|_| self.rng().random_range(0..classes as u32)).collect()
    }

    /// Values uniform in [-1, 1) (InfoGAN's continuous codes).
    pub fn uniform_pm1(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.rng().random_range(-1.0..1.0)).collect()
    }
}
