//! Image datasets as f32 in [-1, 1] (NCHW) with labels when known: held in host memory
//! ([`Dataset`]) or decoded from disk a few batches ahead ([`StreamingFolder`]), both behind
//! [`ImageSource`]; and a seeded shuffling batch sampler whose position can be checkpointed.

mod folder;
mod idx;
mod stream;

pub use folder::{decode_image, list_images, load_folder, load_folder_crops, planes};
pub use idx::{idx_images_from_bytes, load_idx_images, load_idx_labels, parse_idx, read_idx};
pub use stream::{StreamOptions, StreamingFolder};

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Why images or labels could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file or folder is not what was expected.
    #[error("{path}: {problem}")]
    Invalid {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong, and what would be accepted.
        problem: String,
    },
    /// Reading failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

impl DataError {
    /// An `Invalid` error about `path`.
    pub fn invalid(path: &Path, problem: impl Into<String>) -> Self {
        DataError::Invalid { path: path.to_path_buf(), problem: problem.into() }
    }
}

/// Images held in memory with their labels.
#[derive(Clone)]
pub struct Dataset {
    /// [len, channels, size, size], values in [-1, 1].
    pub pixels: Vec<f32>,
    /// One class per image, if known.
    pub labels: Option<Vec<u32>>,
    /// Class names (folder data), by label.
    pub class_names: Vec<String>,
    /// How many images.
    pub len: usize,
    /// Channels per image.
    pub channels: usize,
    /// Side of the square images.
    pub size: usize,
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Dataset({} images of {}x{}x{}, labels: {})",
            self.len,
            self.channels,
            self.size,
            self.size,
            self.labels.is_some()
        )
    }
}

impl Dataset {
    /// The grayscale images repeated in each of `channels` channels (for timing colour
    /// networks on grayscale data); an error for colour data or other channel counts.
    pub fn with_channels(&self, channels: usize) -> Result<Dataset, String> {
        if self.channels != 1 || !(channels == 1 || channels == 3) {
            return Err(format!(
                "can repeat grayscale images into 1 or 3 channels, not {} into {channels}",
                self.channels
            ));
        }
        let plane = self.size * self.size;
        let pixels =
            self.pixels.chunks(plane).flat_map(|p| std::iter::repeat_n(p, channels).flatten()).copied().collect();
        Ok(Dataset { pixels, channels, ..self.clone() })
    }

    /// Values per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    /// Image `i`'s values.
    pub fn image(&self, i: usize) -> &[f32] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// 1 + the largest label (0 without labels).
    pub fn num_classes(&self) -> usize {
        self.labels
            .as_ref()
            .map(|l| l.iter().max().map_or(0, |&m| m as usize + 1))
            .unwrap_or(0)
            .max(self.class_names.len())
    }

    /// The first `n` images (a quick subset for tests).
    pub fn truncated(&self, n: usize) -> Dataset {
        let n = n.min(self.len);
        Dataset {
            pixels: self.pixels[..n * self.image_len()].to_vec(),
            labels: self.labels.as_ref().map(|l| l[..n].to_vec()),
            class_names: self.class_names.clone(),
            len: n,
            channels: self.channels,
            size: self.size,
        }
    }
}

/// Where training images come from: all in memory ([`Dataset`]) or decoded from disk as they
/// are needed ([`StreamingFolder`]). Both give the same batches for the same sampler.
pub trait ImageSource: Send + Sync {
    /// How many images.
    fn count(&self) -> usize;
    /// Channels per image.
    fn channels(&self) -> usize;
    /// Side of the square images.
    fn size(&self) -> usize;
    /// One class per image, if known.
    fn labels(&self) -> Option<&[u32]>;
    /// Class names (folder data), by label.
    fn class_names(&self) -> &[String];
    /// Pixels [indices.len(), C, H, W] and labels (empty without labels) of the given images.
    fn gather(&self, indices: &[usize]) -> Result<(Vec<f32>, Vec<u32>), DataError>;

    /// The sampler's next batch; a source may have it ready, decoded ahead.
    fn next_batch(&self, sampler: &mut BatchSampler, batch: usize) -> Result<(Vec<f32>, Vec<u32>), DataError> {
        self.gather(&sampler.next_indices(batch))
    }

    /// Values per image.
    fn values_per_image(&self) -> usize {
        self.channels() * self.size() * self.size()
    }
}

impl ImageSource for Dataset {
    fn count(&self) -> usize {
        self.len
    }
    fn channels(&self) -> usize {
        self.channels
    }
    fn size(&self) -> usize {
        self.size
    }
    fn labels(&self) -> Option<&[u32]> {
        self.labels.as_deref()
    }
    fn class_names(&self) -> &[String] {
        &self.class_names
    }
    fn gather(&self, indices: &[usize]) -> Result<(Vec<f32>, Vec<u32>), DataError> {
        let mut pixels = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        let labels = self.labels.as_ref().map(|l| indices.iter().map(|&i| l[i]).collect()).unwrap_or_default();
        Ok((pixels, labels))
    }
}

/// Resizes one channel-planar u8 image to `size` x `size` (bilinear, the aspect ratio kept by a
/// centre crop) and maps it to [-1, 1].
pub fn to_unit_range(plane: &image::GrayImage, size: u32) -> Vec<f32> {
    let img = if plane.width() == size && plane.height() == size {
        plane.clone()
    } else {
        let (w, h) = (plane.width(), plane.height());
        let side = w.min(h);
        let cropped = image::imageops::crop_imm(plane, (w - side) / 2, (h - side) / 2, side, side).to_image();
        image::imageops::resize(&cropped, size, size, image::imageops::FilterType::Triangle)
    };
    img.pixels().map(|p| p.0[0] as f32 / 127.5 - 1.0).collect()
}

/// Shuffles the dataset once per epoch with a permutation derived from (seed, epoch), so the
/// sampler's whole state is two numbers.
pub struct BatchSampler {
    /// Seed of the shuffles.
    pub seed: u64,
    /// Passes over the data so far.
    pub epoch: u64,
    /// Position in the current pass.
    pub cursor: usize,
    order: Vec<usize>,
}

impl BatchSampler {
    /// A sampler at the start of the first pass.
    pub fn new(len: usize, seed: u64) -> Self {
        Self::at(len, seed, 0, 0)
    }

    /// A sampler at a saved position.
    pub fn at(len: usize, seed: u64, epoch: u64, cursor: usize) -> Self {
        let mut s = BatchSampler { seed, epoch, cursor, order: (0..len).collect() };
        s.shuffle();
        s
    }

    fn shuffle(&mut self) {
        self.order.sort_unstable();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ self.epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        self.order.shuffle(&mut rng);
    }

    /// Items it draws from.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether it draws from an empty dataset.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The next `batch` indices; an epoch's tail shorter than a batch is skipped.
    pub fn next_indices(&mut self, batch: usize) -> Vec<usize> {
        assert!(batch <= self.order.len(), "batch {batch} larger than the dataset ({})", self.order.len());
        if self.cursor + batch > self.order.len() {
            self.epoch += 1;
            self.cursor = 0;
            self.shuffle();
        }
        let out = self.order[self.cursor..self.cursor + batch].to_vec();
        self.cursor += batch;
        out
    }

    /// Pixels [batch, C, H, W] and labels of the next batch of in-memory images.
    pub fn next_batch(&mut self, data: &Dataset, batch: usize) -> (Vec<f32>, Vec<u32>) {
        data.gather(&self.next_indices(batch)).expect("in-memory images are always at hand")
    }

    /// Where it stands: (seed, epoch, cursor).
    pub fn position(&self) -> (u64, u64, usize) {
        (self.seed, self.epoch, self.cursor)
    }
}
