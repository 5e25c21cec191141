//! TOML run configuration. Unknown keys and out-of-range values are errors that name the key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A GAN run: data, model and training settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The training images.
    pub data: DataConfig,
    /// The networks.
    #[serde(default)]
    pub model: ModelConfig,
    /// The training loop's settings.
    #[serde(default)]
    pub train: TrainConfig,
    /// Evaluation every N steps, when wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<EvalConfig>,
}

/// The networks of a GAN run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Length of the noise vector z.
    #[serde(default = "default_latent")]
    pub latent_dim: usize,
    /// Generator width (PyTorch DCGAN's ngf).
    #[serde(default = "default_width")]
    pub g_width: usize,
    /// Discriminator width (ndf).
    #[serde(default = "default_width")]
    pub d_width: usize,
    /// Normalisation in D's hidden layers. WGAN-GP critics must not use batch norm.
    #[serde(default = "default_norm")]
    pub d_norm: Norm,
    /// Spectral normalisation of every convolution and linear layer of D (Miyato et al.).
    #[serde(default)]
    pub spectral_norm: bool,
    /// Normalisation in G's hidden layers: "batch", "virtual_batch" (against a fixed reference
    /// batch), "layer" or "none" (per-sample: data-parallel runs then match one process).
    #[serde(default = "default_norm")]
    pub g_norm: Norm,
    /// Conditional GAN: the class enters G as a one-hot vector beside z and D as one-hot planes
    /// beside the image channels (needs labelled data).
    #[serde(default)]
    pub conditional: bool,
    /// Number of classes for conditional models.
    #[serde(default = "default_classes")]
    pub classes: usize,
    /// What D predicts besides real/fake.
    #[serde(default = "default_kind")]
    pub kind: GanKind,
    /// Minibatch discrimination kernels before D's output (0 = off) and their dimension.
    #[serde(default)]
    pub minibatch_kernels: usize,
    /// Size of each minibatch-discrimination row.
    #[serde(default = "default_minibatch_dims")]
    pub minibatch_dims: usize,
    /// InfoGAN's latent codes: one categorical code with this many values, and this many
    /// continuous codes in [-1, 1].
    #[serde(default = "default_classes")]
    pub info_categorical: usize,
    /// How many continuous InfoGAN codes.
    #[serde(default = "default_info_continuous")]
    pub info_continuous: usize,
}

/// What the discriminator predicts besides real/fake.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GanKind {
    /// D scores real/fake only.
    Gan,
    /// ACGAN: G takes the class; D scores real/fake and predicts the class (both are trained
    /// on the classification loss).
    Acgan,
    /// InfoGAN: G takes categorical and continuous codes beside z; D's Q head recovers them
    /// (the mutual-information term).
    Infogan,
    /// Semi-supervised GAN: D is a K-class classifier whose total mass is "real" (K+1 classes
    /// with fake as the implicit extra one), trained on a few labels plus unlabelled data; G
    /// uses feature matching.
    SemiSupervised,
}

fn default_kind() -> GanKind {
    GanKind::Gan
}
fn default_minibatch_dims() -> usize {
    5
}
fn default_info_continuous() -> usize {
    2
}

/// A normalisation layer.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// Batch norm.
    Batch,
    /// Layer norm.
    Layer,
    /// None.
    None,
    /// Virtual batch norm (generator only).
    VirtualBatch,
}

fn default_norm() -> Norm {
    Norm::Batch
}
fn default_classes() -> usize {
    10
}

/// The optimizer of both networks.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// Adam.
    Adam,
    /// RMSprop (WGAN with clipping).
    Rmsprop,
}

fn default_latent() -> usize {
    100
}
fn default_width() -> usize {
    64
}

impl Default for ModelConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

/// The adversarial loss.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GanLoss {
    /// G minimises log(1 - D(G(z))) (the original minimax game).
    Minimax,
    /// G maximises log D(G(z)) (stronger gradients early on).
    NonSaturating,
    /// WGAN: the critic's raw scores, weights clipped to [-clip, clip] after each critic step.
    Wasserstein,
    /// WGAN-GP: Wasserstein loss plus gp_lambda * E[(||grad C(x_hat)|| - 1)^2] at interpolates.
    WassersteinGp,
    /// Least-squares GAN: D regresses real to 1 and fake to 0; G pushes fakes to 1.
    LeastSquares,
    /// Hinge loss (SAGAN, BigGAN): D minimises E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))],
    /// G minimises -E[D(G(z))].
    Hinge,
    /// Relativistic pairing (RpGAN, R3GAN's loss): D minimises E[softplus(D(G(z)) - D(x))] and G
    /// E[softplus(D(x) - D(G(z)))] over pairs of a real and a generated image.
    Relativistic,
}

/// The distribution of z.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NoiseKind {
    /// N(0, 1).
    Normal,
    /// Uniform in `[-1, 1]`.
    Uniform,
}

/// The training loop's settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Training steps (G updates).
    #[serde(default = "default_steps")]
    pub steps: u64,
    /// Images per step.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// D updates per G update.
    #[serde(default = "one")]
    pub d_steps: usize,
    /// The adversarial loss.
    #[serde(default = "default_loss")]
    pub loss: GanLoss,
    /// The distribution of z.
    #[serde(default = "default_noise")]
    pub noise: NoiseKind,
    /// G's learning rate.
    #[serde(default = "default_lr")]
    pub lr_g: f32,
    /// D's learning rate.
    #[serde(default = "default_lr")]
    pub lr_d: f32,
    /// Adam's first-moment decay.
    #[serde(default = "default_beta1")]
    pub beta1: f32,
    /// Adam's second-moment decay.
    #[serde(default = "default_beta2")]
    pub beta2: f32,
    /// D's optimizer (G uses Adam unless this is rmsprop, which then serves both, as in WGAN).
    #[serde(default = "default_optimizer")]
    pub optimizer: OptimizerKind,
    /// WGAN weight clipping range.
    #[serde(default = "default_clip")]
    pub clip: f32,
    /// WGAN-GP penalty weight.
    #[serde(default = "default_gp_lambda")]
    pub gp_lambda: f32,
    /// Target for real images in D's loss: 1.0, or e.g. 0.9 for one-sided label smoothing.
    #[serde(default = "default_real_label")]
    pub real_label: f32,
    /// G matches the mean of D's last hidden features on real and fake batches instead of
    /// fooling D's output (Salimans et al. 2016).
    #[serde(default)]
    pub feature_matching: bool,
    /// Weight of the historical-averaging penalty ||θ - mean of past θ||² for G and D (0 = off).
    #[serde(default)]
    pub historical_averaging: f32,
    /// DiffAugment: augmentations of every image D sees, real and generated, as a comma list of
    /// "color", "translation", "cutout" ("" = none).
    #[serde(default)]
    pub diffaugment: String,
    /// ADA: the r_t = E[sign(D(x))] the augmentation probability holds D to (0.6 in the paper);
    /// 0 = augment every image (when `diffaugment` names some).
    #[serde(default)]
    pub ada_target: f32,
    /// ADA: images over which the probability may move from 0 to 1 (the paper: 500,000).
    #[serde(default = "default_ada_speed")]
    pub ada_speed_images: f32,
    /// Half-life of the moving average of G's weights, in training images (StyleGAN2: 10,000);
    /// samples, grids and `sample` then use the average. 0 = off.
    #[serde(default)]
    pub ema_half_life_images: f64,
    /// R1 penalty weight γ: D's loss gains γ/2 E[||∇ₓ D(x)||²] on real images (0 = off).
    #[serde(default)]
    pub r1_gamma: f32,
    /// R2 penalty weight γ: the same penalty on generated images (0 = off).
    #[serde(default)]
    pub r2_gamma: f32,
    /// Lazy regularisation: apply R1/R2 every this many D steps, scaled by it (StyleGAN2: 16).
    #[serde(default = "one_usize")]
    pub reg_every: usize,
    /// Data-parallel runs: batch norm's statistics over the global batch (all ranks), forward
    /// and backward, instead of each rank's share (the default, as PyTorch's DDP).
    #[serde(default)]
    pub sync_batch_norm: bool,
    /// Weight of ACGAN's classification loss and InfoGAN's mutual-information term.
    #[serde(default = "one_f32")]
    pub aux_weight: f32,
    /// Semi-supervised GAN: labelled images per class (the rest are used without labels).
    #[serde(default = "default_labelled_per_class")]
    pub labelled_per_class: usize,
    /// Seed of every random choice of the run.
    #[serde(default = "one_u64")]
    pub seed: u64,
    /// Write a fixed-noise sample grid every N steps (0 = only at the end).
    #[serde(default = "default_sample_every")]
    pub sample_every: u64,
    /// Write a checkpoint every N steps (0 = only at the end).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
}

fn default_steps() -> u64 {
    1000
}
fn default_batch() -> usize {
    64
}
fn one() -> usize {
    1
}
fn one_u64() -> u64 {
    1
}
fn default_loss() -> GanLoss {
    GanLoss::NonSaturating
}
fn default_noise() -> NoiseKind {
    NoiseKind::Normal
}
fn default_lr() -> f32 {
    2e-4
}
fn default_beta1() -> f32 {
    0.5
}
fn default_beta2() -> f32 {
    0.999
}
fn one_f32() -> f32 {
    1.0
}
fn default_labelled_per_class() -> usize {
    10
}
fn default_optimizer() -> OptimizerKind {
    OptimizerKind::Adam
}
fn default_clip() -> f32 {
    0.01
}
fn default_ada_speed() -> f32 {
    500_000.0
}
fn one_usize() -> usize {
    1
}
fn default_gp_lambda() -> f32 {
    10.0
}
fn default_real_label() -> f32 {
    1.0
}
fn default_sample_every() -> u64 {
    100
}
fn default_checkpoint_every() -> u64 {
    500
}

impl Default for TrainConfig {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

/// Why a config was refused, naming the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this config (unknown key, wrong type).
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key's value is out of range.
    #[error("config {path}: {key} = {value}: {problem}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// Its value.
        value: String,
        /// What would be accepted.
        problem: String,
    },
}

impl ConfigError {
    /// A maker of [`ConfigError::Value`]s about `path`: `(key, value, what would be accepted)`.
    pub fn for_key(path: &Path) -> impl Fn(&'static str, String, &str) -> ConfigError + '_ {
        move |key, value, problem| ConfigError::Value {
            path: path.to_path_buf(),
            key,
            value,
            problem: problem.to_string(),
        }
    }
}

impl Config {
    /// Reads and validates a GAN config.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::parse(&text, path)
    }

    /// Parses and validates; relative data paths are kept as written (relative to the working
    /// directory, like every CLI path).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        config.validate(path)?;
        Ok(config)
    }

    /// The config as TOML, as saved in the run folder and checkpoints.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("config serialises")
    }

    /// Checks every value (command-line overrides included); errors name the key and the file.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = ConfigError::for_key(path);
        let size = self.data.image_size;
        if !(size >= 16 && size.is_power_of_two() && size <= 256) {
            return Err(bad(
                "data.image_size",
                size.to_string(),
                "must be a power of two from 16 to 256 (DCGAN halves it down to 4x4)",
            ));
        }
        self.data.validate_streaming(path)?;
        if let Some(e) = &self.eval {
            e.validate(path)?;
        }
        if self.data.channels != 1 && self.data.channels != 3 {
            return Err(bad("data.channels", self.data.channels.to_string(), "must be 1 (grayscale) or 3 (RGB)"));
        }
        if self.model.latent_dim == 0 || self.model.latent_dim > 4096 {
            return Err(bad("model.latent_dim", self.model.latent_dim.to_string(), "must be between 1 and 4096"));
        }
        for (key, w) in [("model.g_width", self.model.g_width), ("model.d_width", self.model.d_width)] {
            if w == 0 || w > 1024 {
                return Err(bad(key, w.to_string(), "must be between 1 and 1024"));
            }
        }
        let t = &self.train;
        if t.batch_size < 2 || t.batch_size > 4096 {
            return Err(bad(
                "train.batch_size",
                t.batch_size.to_string(),
                "must be between 2 and 4096 (batch norm needs at least 2)",
            ));
        }
        if t.d_steps == 0 || t.d_steps > 100 {
            return Err(bad("train.d_steps", t.d_steps.to_string(), "must be between 1 and 100"));
        }
        for (key, lr) in [("train.lr_g", t.lr_g), ("train.lr_d", t.lr_d)] {
            if !(lr > 0.0 && lr < 1.0) {
                return Err(bad(key, lr.to_string(), "must be in (0, 1)"));
            }
        }
        for (key, b) in [("train.beta1", t.beta1), ("train.beta2", t.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(bad(key, b.to_string(), "must be in [0, 1)"));
            }
        }
        if t.loss == GanLoss::WassersteinGp && self.model.d_norm == Norm::Batch {
            return Err(bad("model.d_norm", "\"batch\"".into(), "WGAN-GP penalises each sample's gradient on its own, which batch norm couples across the batch: use \"layer\" or \"none\""));
        }
        if !(t.clip > 0.0 && t.clip.is_finite()) {
            return Err(bad("train.clip", t.clip.to_string(), "must be positive"));
        }
        if !(t.gp_lambda >= 0.0 && t.gp_lambda.is_finite()) {
            return Err(bad("train.gp_lambda", t.gp_lambda.to_string(), "must be >= 0"));
        }
        if !(t.real_label > 0.5 && t.real_label <= 1.0) {
            return Err(bad(
                "train.real_label",
                t.real_label.to_string(),
                "must be in (0.5, 1]: one-sided smoothing lowers the real target only",
            ));
        }
        if self.model.d_norm == Norm::VirtualBatch {
            return Err(bad(
                "model.d_norm",
                "\"virtual_batch\"".into(),
                "virtual batch norm is offered for the generator (model.g_norm)",
            ));
        }
        if self.model.conditional && self.model.kind != GanKind::Gan {
            return Err(bad("model.conditional", "true".into(), "applies to kind = \"gan\"; ACGAN conditions G itself, InfoGAN and the semi-supervised GAN do not take classes"));
        }
        for (key, g) in [("train.r1_gamma", t.r1_gamma), ("train.r2_gamma", t.r2_gamma)] {
            if !(g >= 0.0 && g.is_finite()) {
                return Err(bad(key, g.to_string(), "must be a finite weight >= 0"));
            }
        }
        if let Err(e) = crate::train::augment::Policy::parse(&t.diffaugment) {
            return Err(bad("train.diffaugment", format!("{:?}", t.diffaugment), &e));
        }
        if !((0.0..1.0).contains(&t.ada_target) && t.ada_speed_images >= 1.0 && t.ada_speed_images.is_finite()) {
            return Err(bad(
                "train.ada_target",
                t.ada_target.to_string(),
                "must be in [0, 1), with ada_speed_images a finite number >= 1",
            ));
        }
        if t.ada_target > 0.0 && t.diffaugment.trim().is_empty() {
            return Err(bad(
                "train.ada_target",
                t.ada_target.to_string(),
                "adapts the probability of the augmentations train.diffaugment names: name some",
            ));
        }
        if !(t.ema_half_life_images >= 0.0 && t.ema_half_life_images.is_finite()) {
            return Err(bad(
                "train.ema_half_life_images",
                t.ema_half_life_images.to_string(),
                "must be a finite number of images >= 0",
            ));
        }
        if t.reg_every == 0 || t.reg_every > 1000 {
            return Err(bad("train.reg_every", t.reg_every.to_string(), "must be between 1 and 1000"));
        }
        if (t.r1_gamma > 0.0 || t.r2_gamma > 0.0) && self.model.d_norm == Norm::Batch {
            return Err(bad("model.d_norm", "\"batch\"".into(), "R1/R2 penalise each sample's input gradient, which batch norm couples across the batch: use \"layer\" or \"none\""));
        }
        if !(t.aux_weight >= 0.0 && t.aux_weight.is_finite()) {
            return Err(bad("train.aux_weight", t.aux_weight.to_string(), "must be a finite weight >= 0"));
        }
        if !(t.historical_averaging >= 0.0 && t.historical_averaging.is_finite()) {
            return Err(bad("train.historical_averaging", t.historical_averaging.to_string(), "must be >= 0"));
        }
        if self.model.kind == GanKind::Infogan && (self.model.info_categorical < 2 || self.model.info_continuous > 16) {
            return Err(bad(
                "model.info_categorical",
                self.model.info_categorical.to_string(),
                "needs at least 2 values (and at most 16 continuous codes)",
            ));
        }
        if self.model.minibatch_kernels > 1000 || self.model.minibatch_dims == 0 {
            return Err(bad(
                "model.minibatch_kernels",
                self.model.minibatch_kernels.to_string(),
                "kernels must be at most 1000 and dims at least 1",
            ));
        }
        if self.model.kind == GanKind::SemiSupervised && t.labelled_per_class == 0 {
            return Err(bad("train.labelled_per_class", "0".into(), "the semi-supervised GAN needs some labels"));
        }
        if (self.model.conditional || matches!(self.model.kind, GanKind::Acgan | GanKind::SemiSupervised))
            && !(2..=1000).contains(&self.model.classes)
        {
            return Err(bad("model.classes", self.model.classes.to_string(), "must be between 2 and 1000"));
        }
        if t.steps == 0 {
            return Err(bad("train.steps", "0".into(), "must be at least 1"));
        }
        Ok(())
    }
}

mod classifier;
mod cyclegan;
mod data;
mod eval;

pub use classifier::{ClassifierConfig, ClassifierSettings};
pub use cyclegan::{patch_scores_side, CycleConfig, CycleModel, CycleTrain};
pub use data::{DataConfig, DataKind};
pub use eval::EvalConfig;
