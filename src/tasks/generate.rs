//! Images from a trained generator: samples (with the truncation trick and classes), latent
//! walks, classifier-guided steering, and CycleGAN translations of a folder.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::config::{Config, DataKind, GanKind};
use crate::control::{steer, Trajectory};
use crate::gpu::Gpu;
use crate::models::classifier::Classifier;
use crate::nn::Sequential;
use crate::train::noise::Noise;
use crate::train::{codes, generate, load_generator, run, Codes};
use crate::viz;

/// The most samples one call draws (they are held in memory together).
pub const MAX_SAMPLES: usize = 50_000;

/// Generated images [n, C, S, S] in [-1, 1] and the columns of their grid.
pub struct Samples {
    /// The pixels.
    pub images: Vec<f32>,
    /// Columns of the grid they are drawn in (one row per class for conditional models).
    pub columns: usize,
}

/// How many classes (or InfoGAN categorical values) the generator takes.
pub fn label_count(config: &Config) -> usize {
    match config.model.kind {
        GanKind::Infogan => config.model.info_categorical,
        _ => config.model.classes,
    }
}

/// Classes for `n` samples: all `class`, or (conditional, no class) one grid row per class.
/// Returns the labels and the grid's column count.
pub fn sample_labels(config: &Config, n: usize, class: Option<u32>) -> Result<(Vec<u32>, usize)> {
    let square = (n as f64).sqrt().ceil() as usize;
    if !codes::takes_labels(config) {
        if class.is_some() {
            bail!("--class needs a model that takes a class (conditional GAN, ACGAN) or code (InfoGAN); this one does not");
        }
        return Ok((vec![], square));
    }
    let k = label_count(config);
    match class {
        Some(c) if c as usize >= k => bail!("--class {c} out of range: the model has {k} classes (0..{})", k - 1),
        Some(c) => Ok((vec![c; n], square)),
        None => {
            let per_class = n.div_ceil(k);
            Ok(((0..n).map(|i| (i / per_class) as u32).collect(), per_class))
        }
    }
}

/// `n` samples of noise seeded with `seed`; `truncation` redraws entries beyond |T|.
pub fn sample(
    gpu: &Gpu,
    config: &Config,
    g: &Sequential,
    n: usize,
    seed: u64,
    truncation: Option<f32>,
    class: Option<u32>,
) -> Result<Samples> {
    let (codes, columns) = sample_codes(config, n, seed, truncation, class)?;
    Ok(Samples { images: generate(gpu, config, g, &codes), columns })
}

/// The codes [`sample`] draws, and the columns of their grid.
pub fn sample_codes(
    config: &Config,
    n: usize,
    seed: u64,
    truncation: Option<f32>,
    class: Option<u32>,
) -> Result<(Codes, usize)> {
    if n == 0 || n > MAX_SAMPLES {
        bail!("--n must be between 1 and {MAX_SAMPLES}, got {n}");
    }
    let latent = config.model.latent_dim;
    let mut noise = Noise::new(config.train.noise, seed);
    let z = match truncation {
        // Below about 0.05 almost every draw falls outside and redrawing would run for ages.
        Some(t) if t.is_nan() || t < 0.05 => bail!("--truncation must be at least 0.05 (e.g. 0.5 to 2), got {t}"),
        Some(t) => noise.sample_truncated(n * latent, t),
        None => noise.sample(n * latent),
    };
    let (labels, columns) = sample_labels(config, n, class)?;
    Ok((Codes { z, labels, continuous: vec![] }, columns))
}

/// `rows` linear walks between random endpoints, then `rows` spherical ones, `steps` points each.
pub fn interpolate(
    gpu: &Gpu,
    config: &Config,
    g: &Sequential,
    rows: usize,
    steps: usize,
    seed: u64,
) -> Result<Vec<f32>> {
    Ok(generate(gpu, config, g, &interpolation_codes(config, rows, steps, seed)?))
}

/// The codes [`interpolate`] walks through, row by row.
pub fn interpolation_codes(config: &Config, rows: usize, steps: usize, seed: u64) -> Result<Codes> {
    if !(2..=1000).contains(&steps) || !(1..=100).contains(&rows) {
        bail!("--steps must be between 2 and 1000 and --rows between 1 and 100 (got {steps} and {rows})");
    }
    let latent = config.model.latent_dim;
    let z = crate::eval::interpolation_codes(config.train.noise, seed, latent, rows, steps);
    let k = label_count(config);
    let labels: Vec<u32> = (0..z.len() / latent).map(|i| ((i / steps) % k) as u32).collect();
    Ok(Codes { z, labels, continuous: vec![] })
}

/// One PNG per image (`000000.png`, ...) and `grid.png` with `columns` columns, into `dir`.
pub fn write_images(dir: &Path, images: &[f32], channels: usize, size: usize, columns: usize) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let per = channels * size * size;
    for (i, image) in images.chunks(per).enumerate() {
        viz::save_png(&dir.join(format!("{i:06}.png")), &viz::to_image(image, channels, size), 1)?;
    }
    viz::save_png(
        &dir.join("grid.png"),
        &image::DynamicImage::ImageRgb8(viz::grid(images, channels, size, columns)),
        2,
    )?;
    Ok(())
}

/// Trajectory of z steered toward a classifier's class, with their grid (one row each).
pub struct Steered {
    /// Images and the target's probability at the start and end.
    pub trajectories: Trajectory,
    /// One trajectory per row.
    pub grid: image::RgbImage,
}

/// `n` samples whose z follows the gradient of `classifier`'s logit for `target`.
#[allow(clippy::too_many_arguments)]
pub fn steer_toward(
    gpu: &Gpu,
    checkpoint: &Path,
    classifier: &Path,
    target: usize,
    n: usize,
    steps: usize,
    step_size: f32,
    seed: u64,
) -> Result<Steered> {
    if !((1..=256).contains(&n) && (1..=1000).contains(&steps) && step_size > 0.0 && step_size.is_finite()) {
        bail!(
            "--n must be between 1 and 256, --steps between 1 and 1000 and --step-size positive and finite \
             (got {n}, {steps}, {step_size})"
        );
    }
    let (config, generator) = load_generator(gpu, checkpoint)?;
    let c = Classifier::load(gpu, classifier)?;
    super::check_classifier_fits(&c, config.data.channels, config.data.image_size)?;
    if target >= c.classes {
        bail!("--target {target} out of range: the classifier knows {} classes", c.classes);
    }
    let z = Noise::new(config.train.noise, seed).sample(n * config.model.latent_dim);
    let k = label_count(&config);
    let labels: Vec<u32> = (0..n).map(|i| (i % k) as u32).collect();
    let trajectories = steer(gpu, &config, &generator, &c, &z, &labels, target, steps, step_size);
    let grid = viz::grid(&trajectories.images, config.data.channels, config.data.image_size, steps + 1);
    Ok(Steered { trajectories, grid })
}

/// Images of one CycleGAN domain, their translations and reconstructions.
pub struct Translation {
    /// Channels of every image.
    pub channels: usize,
    /// Side of every image.
    pub size: usize,
    /// The inputs.
    pub input: Vec<f32>,
    /// G(x) (or F(y)).
    pub translated: Vec<f32>,
    /// F(G(x)) (or G(F(y))).
    pub reconstructed: Vec<f32>,
}

impl Translation {
    /// The translations as PNGs and `grid.png` with rows input | translation | reconstruction.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let (c, s) = (self.channels, self.size);
        let per = c * s * s;
        write_images(dir, &self.translated, c, s, 8)?;
        let mut tiles = Vec::with_capacity(3 * self.input.len());
        for i in 0..self.input.len() / per {
            for v in [&self.input, &self.translated, &self.reconstructed] {
                tiles.extend_from_slice(&v[i * per..(i + 1) * per]);
            }
        }
        viz::save_png(&dir.join("grid.png"), &image::DynamicImage::ImageRgb8(viz::grid(&tiles, c, s, 3)), 2)?;
        Ok(())
    }
}

/// Translates up to `limit` images of a folder (or IDX file) with a CycleGAN checkpoint:
/// X -> Y when `x_to_y`, else Y -> X.
pub fn translate_images(gpu: &Gpu, checkpoint: &Path, x_to_y: bool, input: &Path, limit: usize) -> Result<Translation> {
    let (config, g_xy, g_yx) = crate::cyclegan::load_generators(gpu, checkpoint)?;
    let (channels, size) = (config.domain_x.channels, config.domain_x.image_size);
    let mut data_cfg = if x_to_y { config.domain_x.clone() } else { config.domain_y.clone() };
    data_cfg.images = input.to_path_buf();
    data_cfg.labels = None;
    data_cfg.limit = limit;
    data_cfg.crops = 0;
    data_cfg.kind = if input.is_dir() { DataKind::Folder } else { DataKind::Idx };
    let data = run::load_data(&data_cfg, 1)?;
    let (there, back) = if x_to_y { (&g_xy, &g_yx) } else { (&g_yx, &g_xy) };
    let translated = crate::cyclegan::translate(gpu, channels, size, there, &data.pixels);
    let reconstructed = crate::cyclegan::translate(gpu, channels, size, back, &translated);
    Ok(Translation { channels, size, input: data.pixels, translated, reconstructed })
}
