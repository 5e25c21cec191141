//! `shadergan classify train`'s configuration.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::*;

/// `shadergan classify train` configuration: data plus the classifier's training settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// The labelled images to train on (and held-out ones to test on).
    pub data: DataConfig,
    /// The classifier's training settings.
    #[serde(default)]
    pub classifier: ClassifierSettings,
}

/// How the classifier is built and trained.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierSettings {
    /// Channels of the first convolution (doubled per stage).
    #[serde(default = "default_classifier_width")]
    pub width: usize,
    /// Training steps.
    #[serde(default = "default_classifier_steps")]
    pub steps: usize,
    /// Images per step.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Adam's learning rate.
    #[serde(default = "default_classifier_lr")]
    pub lr: f32,
    /// Seed of the initialisation and the batch order.
    #[serde(default = "one_u64")]
    pub seed: u64,
}

fn default_classifier_width() -> usize {
    32
}
fn default_classifier_steps() -> usize {
    600
}
fn default_classifier_lr() -> f32 {
    1e-3
}

impl Default for ClassifierSettings {
    fn default() -> Self {
        toml::from_str("").expect("defaults parse")
    }
}

impl ClassifierConfig {
    /// Reads and validates a classifier config.
    pub fn load(path: &Path) -> Result<ClassifierConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let c: ClassifierConfig = toml::from_str(&text)
            .map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        let bad = ConfigError::for_key(path);
        let s = &c.classifier;
        if s.steps == 0 {
            return Err(bad("classifier.steps", "0".into(), "must be at least 1"));
        }
        if s.batch_size < 2 || s.batch_size > 4096 {
            return Err(bad("classifier.batch_size", s.batch_size.to_string(), "must be between 2 and 4096"));
        }
        if s.width == 0 || s.width > 1024 {
            return Err(bad("classifier.width", s.width.to_string(), "must be between 1 and 1024"));
        }
        if s.steps > 10_000_000 {
            return Err(bad("classifier.steps", s.steps.to_string(), "must be at most 10000000"));
        }
        if !(s.lr > 0.0 && s.lr < 1.0) {
            return Err(bad("classifier.lr", s.lr.to_string(), "must be in (0, 1)"));
        }
        if !(c.data.image_size >= 16 && c.data.image_size.is_power_of_two() && c.data.image_size <= 256) {
            return Err(bad(
                "data.image_size",
                c.data.image_size.to_string(),
                "must be a power of two from 16 to 256, as the GANs' images it scores",
            ));
        }
        if c.data.labels.is_none() && c.data.kind == DataKind::Idx {
            return Err(bad("data.labels", "(missing)".into(), "a classifier needs labels"));
        }
        Ok(c)
    }
}
