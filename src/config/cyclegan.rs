//! CycleGAN's configuration: two unpaired domains and the networks between them.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::*;

/// CycleGAN configuration: two unpaired domains and the networks between them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CycleConfig {
    /// The images of domain X.
    pub domain_x: DataConfig,
    /// The images of domain Y.
    pub domain_y: DataConfig,
    /// The generators and discriminators.
    #[serde(default)]
    pub model: CycleModel,
    /// The training settings.
    #[serde(default)]
    pub train: CycleTrain,
}

/// CycleGAN's networks: ResNet generators and PatchGAN discriminators.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CycleModel {
    /// Generator width (channels after the first 7x7 conv) and residual blocks.
    #[serde(default = "default_cycle_width")]
    pub g_width: usize,
    /// Residual blocks in each generator.
    #[serde(default = "default_cycle_blocks")]
    pub blocks: usize,
    /// PatchGAN width and stride-2 layers (3 = the paper's 70x70 patches).
    #[serde(default = "default_cycle_width")]
    pub d_width: usize,
    /// Stride-2 layers in each PatchGAN discriminator.
    #[serde(default = "default_cycle_d_layers")]
    pub d_layers: usize,
}

fn default_cycle_width() -> usize {
    16
}
fn default_cycle_blocks() -> usize {
    3
}
fn default_cycle_d_layers() -> usize {
    2
}

impl Default for CycleModel {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

/// CycleGAN's training settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CycleTrain {
    /// Training steps.
    #[serde(default = "default_steps")]
    pub steps: u64,
    /// Images per domain per step.
    #[serde(default = "default_cycle_batch")]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[serde(default = "default_lr")]
    pub lr: f32,
    /// Adam's first-moment decay.
    #[serde(default = "default_beta1")]
    pub beta1: f32,
    /// Adam's second-moment decay.
    #[serde(default = "default_beta2")]
    pub beta2: f32,
    /// Weight of the cycle-consistency loss.
    #[serde(default = "default_lambda_cycle")]
    pub lambda_cycle: f32,
    /// Identity loss weight as a fraction of lambda_cycle (0 = off; the paper uses 0.5).
    #[serde(default = "default_identity")]
    pub identity: f32,
    /// Past generated images D also sees (the paper's history pool).
    #[serde(default = "default_pool")]
    pub pool_size: usize,
    /// Seed of every random choice of the run.
    #[serde(default = "one_u64")]
    pub seed: u64,
    /// Steps between sample grids.
    #[serde(default = "default_sample_every")]
    pub sample_every: u64,
    /// Steps between checkpoints.
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
}

fn default_cycle_batch() -> usize {
    8
}
fn default_lambda_cycle() -> f32 {
    10.0
}
fn default_identity() -> f32 {
    0.5
}
fn default_pool() -> usize {
    50
}

impl Default for CycleTrain {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl CycleConfig {
    /// Reads and validates a CycleGAN config.
    pub fn load(path: &Path) -> Result<CycleConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        CycleConfig::parse(&text, path)
    }

    /// Parses and validates a CycleGAN config's text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<CycleConfig, ConfigError> {
        let c: CycleConfig = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        let bad = ConfigError::for_key(path);
        for (key, d) in [("domain_x.image_size", &c.domain_x), ("domain_y.image_size", &c.domain_y)] {
            if d.image_size < 16 || d.image_size % 4 != 0 || d.image_size > 512 {
                return Err(bad(key, d.image_size.to_string(), "must be a multiple of 4 from 16 to 512"));
            }
        }
        if (c.domain_x.image_size, c.domain_x.channels) != (c.domain_y.image_size, c.domain_y.channels) {
            return Err(bad(
                "domain_y.image_size",
                c.domain_y.image_size.to_string(),
                "both domains need the same image size and channels",
            ));
        }
        let t = &c.train;
        if t.batch_size == 0 || t.batch_size > 256 {
            return Err(bad("train.batch_size", t.batch_size.to_string(), "must be between 1 and 256"));
        }
        if t.steps == 0 {
            return Err(bad("train.steps", "0".into(), "must be at least 1"));
        }
        if !(t.lr > 0.0 && t.lr < 1.0) {
            return Err(bad("train.lr", t.lr.to_string(), "must be in (0, 1)"));
        }
        for (key, b) in [("train.beta1", t.beta1), ("train.beta2", t.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(bad(key, b.to_string(), "must be in [0, 1)"));
            }
        }
        for (key, w) in [("train.lambda_cycle", t.lambda_cycle), ("train.identity", t.identity)] {
            if !(w >= 0.0 && w.is_finite()) {
                return Err(bad(key, w.to_string(), "must be a finite weight >= 0"));
            }
        }
        if t.pool_size > 10_000 {
            return Err(bad("train.pool_size", t.pool_size.to_string(), "must be at most 10000 images"));
        }
        for (key, w) in [("model.g_width", c.model.g_width), ("model.d_width", c.model.d_width)] {
            if w == 0 || w > 1024 {
                return Err(bad(key, w.to_string(), "must be between 1 and 1024"));
            }
        }
        if c.model.blocks > 32 || c.model.d_layers == 0 || c.model.d_layers > 5 {
            return Err(bad(
                "model.d_layers",
                c.model.d_layers.to_string(),
                "need 1..=5 PatchGAN layers and at most 32 blocks",
            ));
        }
        let size = c.domain_x.image_size;
        if patch_scores_side(size, c.model.d_layers).is_none() {
            let fits = (1..c.model.d_layers).rev().find(|&l| patch_scores_side(size, l).is_some());
            return Err(bad(
                "model.d_layers",
                c.model.d_layers.to_string(),
                &match fits {
                    Some(l) => format!("leaves no PatchGAN score at {size}x{size} images: at most {l} layers fit"),
                    None => format!("leaves no PatchGAN score at {size}x{size} images: use larger images"),
                },
            ));
        }
        Ok(c)
    }

    /// The config as TOML, as saved in the run folder and checkpoints.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("config serialises")
    }
}

/// The side of the PatchGAN's score map for `image_size` images and `d_layers` layers, or None
/// where a convolution would meet an input smaller than its kernel. Every conv of
/// `models::cyclegan::patch_discriminator` is 4x4 with padding 1: the first with stride 2, then
/// `d_layers` of them (stride 2, the last stride 1), then the score conv (stride 1).
pub fn patch_scores_side(image_size: usize, d_layers: usize) -> Option<usize> {
    let mut strides = std::iter::once(2).chain((1..=d_layers).map(|i| if i < d_layers { 2 } else { 1 })).chain([1]);
    strides.try_fold(image_size, |side, stride| (side + 2 >= 4).then(|| (side + 2 - 4) / stride + 1))
}
