//! The `[data]` section shared by every config: where the images are and how they are read.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::data::StreamOptions;

/// How the images are stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DataKind {
    /// `images` (and optionally `labels`) are IDX files, gzip'd or not.
    Idx,
    /// `images` is a folder of PNG/JPEG files (sub-folders = classes).
    Folder,
}

/// Where the images are and how they are read.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// IDX files or an image folder.
    pub kind: DataKind,
    /// The IDX image file (gzip'd or not), or the folder.
    pub images: PathBuf,
    /// The IDX label file, if any (folders take labels from class sub-folders).
    #[serde(default)]
    pub labels: Option<PathBuf>,
    /// Side of the square images the networks see (resized if needed).
    #[serde(default = "default_image_size")]
    pub image_size: usize,
    /// 1 (gray) or 3 (RGB).
    #[serde(default = "default_channels")]
    pub channels: usize,
    /// Use only the first N images (0 = all).
    #[serde(default)]
    pub limit: usize,
    /// Folder data: use this many random square crops (seeded) of `crop_size` pixels instead of
    /// the whole images (0 = whole images), e.g. texture domains.
    #[serde(default)]
    pub crops: usize,
    /// Side of the random crops (0 = the image size).
    #[serde(default)]
    pub crop_size: usize,
    /// Held-out images for evaluating classifiers: an IDX file (with `test_labels`) or a
    /// folder of class sub-folders.
    #[serde(default)]
    pub test_images: Option<PathBuf>,
    /// Held-out labels (IDX) for `test_images`.
    #[serde(default)]
    pub test_labels: Option<PathBuf>,
    /// Folder data: decode images from disk as batches need them instead of holding the whole
    /// set in memory (for folders larger than RAM).
    #[serde(default)]
    pub streaming: bool,
    /// Streaming: batches decoded ahead and waiting at most.
    #[serde(default = "default_prefetch")]
    pub prefetch: usize,
    /// Streaming: threads decoding each batch (0 = one per core, at most 8).
    #[serde(default)]
    pub decode_threads: usize,
}

fn default_prefetch() -> usize {
    2
}

fn default_image_size() -> usize {
    32
}
fn default_channels() -> usize {
    1
}

impl DataConfig {
    /// How a streaming folder reads ahead.
    pub fn stream_options(&self) -> StreamOptions {
        let threads = if self.decode_threads == 0 { StreamOptions::default().threads } else { self.decode_threads };
        StreamOptions { prefetch: self.prefetch, threads }
    }

    /// Checks the streaming keys.
    pub fn validate_streaming(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = ConfigError::for_key(path);
        if !(1..=64).contains(&self.prefetch) {
            return Err(bad("data.prefetch", self.prefetch.to_string(), "must be between 1 and 64 batches"));
        }
        if self.decode_threads > 256 {
            return Err(bad(
                "data.decode_threads",
                self.decode_threads.to_string(),
                "must be between 0 (automatic) and 256",
            ));
        }
        if self.streaming && self.kind != DataKind::Folder {
            return Err(bad(
                "data.streaming",
                "true".into(),
                "streams image folders: set data.kind = \"folder\" (IDX files are read whole)",
            ));
        }
        if self.streaming && self.crops > 0 {
            return Err(bad(
                "data.streaming",
                "true".into(),
                "cannot be combined with data.crops (random crops are drawn once, in memory)",
            ));
        }
        Ok(())
    }
}
