//! The GAN training loop of DCGAN (Goodfellow et al.'s algorithm with Radford et al.'s model),
//! and its checkpoint/resume. One iteration: (1) update D `d_steps` times on a real batch and a
//! detached fake one, (2) update G through D.

pub mod losses;
pub mod noise;
pub mod run;

use std::collections::HashMap;
use std::path::Path;

use crate::checkpoint::{self, CheckpointError, HostTensor};
use crate::config::{Config, GanLoss, OptimizerKind};
use crate::data::{BatchSampler, Dataset};
use crate::gpu::Gpu;
use crate::grad;
use crate::models::dcgan;
use crate::nn::{one_hot, Mode, Sequential};
use crate::optim::{clip_weights, Adam, Optimizer, OptimizerState, RmsProp};
use crate::tensor::{no_grad, Tensor};
use noise::Noise;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub const MODEL_FORMAT: &str = "shadergan-model-v1";
pub const STATE_FORMAT: &str = "shadergan-state-v1";
/// Size of the fixed-noise batch whose samples are drawn over training.
pub const FIXED_SAMPLES: usize = 64;

/// What one iteration measured (D's outputs as probabilities).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepStats {
    pub d_loss: f32,
    pub g_loss: f32,
    pub d_real: f32,
    pub d_fake: f32,
}

pub struct GanTrainer {
    pub gpu: Gpu,
    pub config: Config,
    pub g: Sequential,
    pub d: Sequential,
    pub step: u64,
    pub fixed_noise: Vec<f32>,
    /// Class of each fixed-noise sample (conditional models).
    pub fixed_labels: Vec<u32>,
    opt_g: Box<dyn Optimizer>,
    opt_d: Box<dyn Optimizer>,
    noise: Noise,
    sampler: BatchSampler,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl GanTrainer {
    /// Fresh networks and optimizers, all randomness derived from `config.train.seed`.
    pub fn new(gpu: &Gpu, config: &Config, dataset_len: usize) -> GanTrainer {
        let t = &config.train;
        let m = &config.model;
        let mut init_rng = ChaCha8Rng::seed_from_u64(t.seed);
        let (g, d) = build_networks(gpu, config, &mut init_rng);
        let mut noise = Noise::new(t.noise, t.seed.wrapping_add(1));
        let fixed_labels = fixed_labels(config);
        let fixed_noise = noise.sample(fixed_labels.len() * m.latent_dim);
        let optimizer = |lr: f32| -> Box<dyn Optimizer> {
            match t.optimizer {
                OptimizerKind::Adam => Box::new(Adam::new(lr, t.beta1, t.beta2)),
                OptimizerKind::Rmsprop => Box::new(RmsProp::new(lr)),
            }
        };
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
        }
    }

    fn real_batch(&mut self, data: &Dataset) -> (Tensor, Vec<u32>) {
        let b = self.config.train.batch_size;
        let (pixels, labels) = self.sampler.next_batch(data, b);
        (Tensor::from_vec(&self.gpu, &[b, data.channels, data.size, data.size], &pixels), labels)
    }

    /// D's scores for images of the given classes (the labels matter for conditional models).
    pub fn critic(&self, x: &Tensor, labels: &[u32]) -> Tensor {
        self.d.forward(&d_input(&self.config, x, labels), Mode::Train)
    }

    /// One training iteration: (1) `d_steps` updates of D, (2) one update of G.
    pub fn train_step(&mut self, data: &Dataset) -> StepStats {
        let b = self.config.train.batch_size;
        let latent = self.config.model.latent_dim;
        let kind = self.config.train.loss;
        let d_params = self.d.parameters();
        let g_params = self.g.parameters();

        // (1) Update D on a real batch and a detached fake one. Fakes share the real batch's
        // classes in conditional models. The last fake keeps its graph for G's update, as
        // PyTorch's DCGAN example does.
        let d_steps = self.config.train.d_steps;
        let mut last = None;
        for k in 0..d_steps {
            let (real, labels) = self.real_batch(data);
            let z = g_input(&self.gpu, &self.config, &self.noise.sample(b * latent), &labels);
            let fake = if k + 1 == d_steps {
                self.g.forward(&z, Mode::Train)
            } else {
                let _no_graph = no_grad();
                self.g.forward(&z, Mode::Train)
            };
            let real_scores = self.critic(&real, &labels);
            let fake_scores = self.critic(&fake.detach(), &labels);
            let mut loss_d = losses::discriminator_loss(kind, &real_scores, &fake_scores, self.config.train.real_label);
            if kind == GanLoss::WassersteinGp {
                let eps = self.noise.uniform01(b);
                let gp = losses::gradient_penalty(|x| self.critic(x, &labels), &real, &fake, &eps);
                loss_d = loss_d.add(&gp.scale(self.config.train.gp_lambda));
            }
            let grads = grad(&loss_d, &d_params.iter().collect::<Vec<_>>(), None, false);
            self.opt_d.step(&d_params, &grads);
            if kind == GanLoss::Wasserstein {
                clip_weights(&d_params, self.config.train.clip);
            }
            last = Some((fake, labels, loss_d, real_scores, fake_scores));
        }
        let (fake, labels, loss_d, real_scores, fake_scores) = last.expect("d_steps >= 1");

        // (2) Update G through the updated D; only G's gradients are computed.
        let scores = self.critic(&fake, &labels);
        let loss_g = losses::generator_loss(kind, &scores);
        let grads = grad(&loss_g, &g_params.iter().collect::<Vec<_>>(), None, false);
        self.opt_g.step(&g_params, &grads);
        self.step += 1;

        // One readback for all four numbers: D's outputs as probabilities for the BCE losses,
        // raw mean scores otherwise.
        let stats = {
            let _no_graph = no_grad();
            let summary = |s: &Tensor| {
                if matches!(kind, GanLoss::Minimax | GanLoss::NonSaturating) {
                    s.sigmoid().mean_all()
                } else {
                    s.mean_all()
                }
            };
            Tensor::cat(&[&loss_d.detach(), &loss_g.detach(), &summary(&real_scores), &summary(&fake_scores)], 0)
                .to_vec()
        };
        StepStats { d_loss: stats[0], g_loss: stats[1], d_real: stats[2], d_fake: stats[3] }
    }

    /// Images [n, C, H, W] in [-1, 1] from latent vectors (and classes, for conditional models),
    /// with batch norm in eval mode.
    pub fn generate_with(&self, z: &[f32], labels: &[u32]) -> Vec<f32> {
        generate(&self.gpu, &self.config, &self.g, z, labels)
    }

    /// Samples of the fixed noise (and fixed classes): the grids drawn during training.
    pub fn generate_fixed(&self) -> Vec<f32> {
        self.generate_with(&self.fixed_noise, &self.fixed_labels)
    }

    pub fn model_tensors(&self) -> Vec<(String, HostTensor)> {
        let mut t = checkpoint::export(&self.g, "generator");
        t.extend(checkpoint::export(&self.d, "discriminator"));
        t
    }

    /// Writes `model.safetensors` (weights, running statistics, config) and `state.safetensors`
    /// (optimizer moments, step, RNG and sampler position, fixed noise) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), CheckpointError> {
        let mut meta = HashMap::new();
        meta.insert("format".into(), MODEL_FORMAT.into());
        meta.insert("model".into(), "dcgan".into());
        meta.insert("step".into(), self.step.to_string());
        meta.insert("config".into(), self.config.to_toml());
        checkpoint::save(&dir.join("model.safetensors"), &self.model_tensors(), meta)?;

        let mut tensors = Vec::new();
        for (prefix, state) in [("opt_g", self.opt_g.state()), ("opt_d", self.opt_d.state())] {
            for (name, data) in state.tensors {
                tensors.push((format!("{prefix}.{name}"), HostTensor { shape: vec![data.len()], data }));
            }
        }
        tensors.push((
            "fixed_noise".into(),
            HostTensor { shape: vec![self.fixed_noise.len()], data: self.fixed_noise.clone() },
        ));
        let (seed, pos) = self.noise.state();
        let mut meta = HashMap::new();
        meta.insert("format".into(), STATE_FORMAT.into());
        meta.insert("step".into(), self.step.to_string());
        meta.insert("opt_g_step".into(), self.opt_g.state().step.to_string());
        meta.insert("opt_d_step".into(), self.opt_d.state().step.to_string());
        meta.insert("noise_seed".into(), hex(&seed));
        meta.insert("noise_word_pos".into(), pos.to_string());
        meta.insert("sampler_seed".into(), self.sampler.seed.to_string());
        meta.insert("sampler_epoch".into(), self.sampler.epoch.to_string());
        meta.insert("sampler_cursor".into(), self.sampler.cursor.to_string());
        checkpoint::save(&dir.join("state.safetensors"), &tensors, meta)
    }

    /// Continues the run saved in `dir` exactly where it stopped.
    pub fn resume(gpu: &Gpu, config: &Config, dir: &Path, dataset_len: usize) -> Result<GanTrainer, CheckpointError> {
        let mut t = GanTrainer::new(gpu, config, dataset_len);
        let model_path = dir.join("model.safetensors");
        let (tensors, meta) = checkpoint::load(&model_path)?;
        check_format(&meta, MODEL_FORMAT, &model_path)?;
        checkpoint::import(&t.g, "generator", &tensors, &model_path)?;
        checkpoint::import(&t.d, "discriminator", &tensors, &model_path)?;

        let state_path = dir.join("state.safetensors");
        let (state, meta) = checkpoint::load(&state_path)?;
        check_format(&meta, STATE_FORMAT, &state_path)?;
        t.step = checkpoint::meta(&meta, "step", &state_path)?;
        for (prefix, opt, params, step_key) in [
            ("opt_g", &mut t.opt_g, t.g.parameters(), "opt_g_step"),
            ("opt_d", &mut t.opt_d, t.d.parameters(), "opt_d_step"),
        ] {
            let tensors = state
                .iter()
                .filter_map(|(k, v)| k.strip_prefix(&format!("{prefix}.")).map(|n| (n.to_string(), v.data.clone())))
                .collect();
            let os = OptimizerState { step: checkpoint::meta(&meta, step_key, &state_path)?, tensors };
            opt.load_state(&params, &os)
                .map_err(|e| CheckpointError::Invalid { path: state_path.clone(), problem: e })?;
        }
        let fixed = state
            .get("fixed_noise")
            .ok_or_else(|| CheckpointError::Invalid { path: state_path.clone(), problem: "no fixed_noise".into() })?;
        t.fixed_noise = fixed.data.clone();
        let seed_hex: String = checkpoint::meta(&meta, "noise_seed", &state_path)?;
        let seed = unhex(&seed_hex).ok_or_else(|| CheckpointError::Invalid {
            path: state_path.clone(),
            problem: "noise_seed is not 32 hex bytes".into(),
        })?;
        t.noise = Noise::restore(config.train.noise, seed, checkpoint::meta(&meta, "noise_word_pos", &state_path)?);
        t.sampler = BatchSampler::at(
            dataset_len,
            checkpoint::meta(&meta, "sampler_seed", &state_path)?,
            checkpoint::meta(&meta, "sampler_epoch", &state_path)?,
            checkpoint::meta(&meta, "sampler_cursor", &state_path)?,
        );
        Ok(t)
    }
}

fn check_format(meta: &HashMap<String, String>, want: &str, path: &Path) -> Result<(), CheckpointError> {
    match meta.get("format") {
        Some(f) if f == want => Ok(()),
        Some(f) => Err(CheckpointError::Invalid {
            path: path.to_path_buf(),
            problem: format!("format '{f}', expected '{want}'"),
        }),
        None => Err(CheckpointError::Invalid {
            path: path.to_path_buf(),
            problem: format!("not a shadergan file (no format in metadata; expected '{want}')"),
        }),
    }
}

/// The fixed-noise batch's classes: one row of 8 per class for conditional models.
fn fixed_labels(config: &Config) -> Vec<u32> {
    if config.model.conditional {
        (0..config.model.classes * 8).map(|i| (i / 8) as u32).collect()
    } else {
        vec![0; FIXED_SAMPLES]
    }
}

fn build_networks(gpu: &Gpu, config: &Config, rng: &mut ChaCha8Rng) -> (Sequential, Sequential) {
    let m = &config.model;
    let (size, ch) = (config.data.image_size, config.data.channels);
    let extra = if m.conditional { m.classes } else { 0 };
    let g = dcgan::generator(gpu, m.latent_dim + extra, m.g_width, ch, size, rng);
    let d = dcgan::discriminator(gpu, m.d_width, ch + extra, size, m.d_norm, 1, rng);
    (g, d)
}

/// G's input [n, latent (+ classes), 1, 1]: z, with the one-hot class beside it when
/// conditional.
pub fn g_input(gpu: &Gpu, config: &Config, z: &[f32], labels: &[u32]) -> Tensor {
    let latent = config.model.latent_dim;
    let n = z.len() / latent;
    if !config.model.conditional {
        return Tensor::from_vec(gpu, &[n, latent, 1, 1], z);
    }
    let k = config.model.classes;
    assert_eq!(labels.len(), n, "one class per sample");
    let mut data = Vec::with_capacity(n * (latent + k));
    for (i, &l) in labels.iter().enumerate() {
        data.extend_from_slice(&z[i * latent..(i + 1) * latent]);
        data.extend((0..k).map(|c| if c as u32 == l { 1.0 } else { 0.0 }));
    }
    Tensor::from_vec(gpu, &[n, latent + k, 1, 1], &data)
}

/// D's input: the images, with one-hot class planes appended as channels when conditional.
pub fn d_input(config: &Config, x: &Tensor, labels: &[u32]) -> Tensor {
    if !config.model.conditional {
        return x.clone();
    }
    let (n, h, w) = (x.shape()[0], x.shape()[2], x.shape()[3]);
    let k = config.model.classes;
    let planes = one_hot(x.gpu(), labels, k).reshape(&[n, k, 1, 1]).expand(&[n, k, h, w]);
    Tensor::cat(&[x, &planes], 1)
}

/// Runs a generator in eval mode over latent vectors (and classes) in chunks of 64.
pub fn generate(gpu: &Gpu, config: &Config, g: &Sequential, z: &[f32], labels: &[u32]) -> Vec<f32> {
    let _no_graph = no_grad();
    let latent = config.model.latent_dim;
    let n = z.len() / latent;
    let mut out = Vec::new();
    for start in (0..n).step_by(64) {
        let count = (n - start).min(64);
        let l = if config.model.conditional { &labels[start..start + count] } else { &[][..] };
        let zt = g_input(gpu, config, &z[start * latent..(start + count) * latent], l);
        out.extend(g.forward(&zt, Mode::Eval).to_vec());
    }
    out
}

/// A generator rebuilt from a model checkpoint (its config is in the metadata).
pub fn load_generator(gpu: &Gpu, path: &Path) -> Result<(Config, Sequential), CheckpointError> {
    let (tensors, meta) = checkpoint::load(path)?;
    check_format(&meta, MODEL_FORMAT, path)?;
    let text: String = checkpoint::meta(&meta, "config", path)?;
    let config = Config::parse(&text, path)
        .map_err(|e| CheckpointError::Invalid { path: path.to_path_buf(), problem: format!("embedded config: {e}") })?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let g = dcgan::generator(
        gpu,
        config.model.latent_dim,
        config.model.g_width,
        config.data.channels,
        config.data.image_size,
        &mut rng,
    );
    checkpoint::import(&g, "generator", &tensors, path)?;
    Ok((config, g))
}
