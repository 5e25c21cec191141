//! The optional `[eval]` section: how often a run scores its samples against real images with a
//! classifier's features (Fréchet distance, KID, precision and recall), plotted in report.html.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Evaluation during training.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Score the generator every this many steps (and at the end).
    pub every: u64,
    /// The classifier whose features are compared (`shadergan classify train` writes one).
    pub classifier: PathBuf,
    /// The real images compared against: an IDX file or an image folder (default: the config's
    /// `data.test_images`, else `data.images`).
    #[serde(default)]
    pub real: Option<PathBuf>,
    /// Images on each side.
    #[serde(default = "default_n")]
    pub n: usize,
    /// Seed of the evaluation noise (fixed, so every evaluation scores the same codes).
    #[serde(default)]
    pub seed: u64,
}

fn default_n() -> usize {
    2000
}

impl EvalConfig {
    /// Checks the section's values.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = ConfigError::for_key(path);
        if self.every == 0 {
            return Err(bad("eval.every", "0".into(), "must be at least 1 (leave out [eval] to evaluate never)"));
        }
        if !(2..=50_000).contains(&self.n) {
            return Err(bad("eval.n", self.n.to_string(), "must be between 2 and 50000 images"));
        }
        Ok(())
    }
}
