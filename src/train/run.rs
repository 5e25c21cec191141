//! `shadergan train`: a config file's model and data handed to the training engine
//! ([`Trainer::fit`]), the same for the DCGAN family and CycleGAN.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::{GanTrainer, RunSummary, Trainer};
use crate::config::{Config, CycleConfig, DataConfig, DataKind, GanKind};
use crate::cyclegan::{CycleTrainer, Domains};
use crate::data::{self, Dataset, ImageSource};
use crate::gpu::{describe, Gpu};

/// What `shadergan train` was asked for.
pub struct RunOptions {
    /// The config file.
    pub config: PathBuf,
    /// Steps overriding the config's.
    pub steps: Option<u64>,
    /// The run folder.
    pub out: PathBuf,
    /// Continue the run in `out`.
    pub resume: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// This process's rank in a data-parallel job (`Shard::single()` otherwise).
    pub shard: super::Shard,
}

/// A config file: a GAN of the DCGAN family, or a CycleGAN (it names two domains).
pub enum AnyConfig {
    /// A GAN config.
    Gan(Config),
    /// A CycleGAN config.
    Cycle(CycleConfig),
}

impl AnyConfig {
    /// Reads and validates the config at `path`, telling the two kinds apart by `[domain_x]`.
    pub fn load(path: &Path) -> Result<AnyConfig> {
        if is_cycle_config(path) {
            Ok(AnyConfig::Cycle(CycleConfig::load(path)?))
        } else {
            Ok(AnyConfig::Gan(Config::load(path)?))
        }
    }
}

/// CycleGAN configs name two domains instead of one data set.
pub fn is_cycle_config(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key("domain_x"))
}

/// The images (and labels) a GAN config names, held in memory and checked against its model.
pub fn load_dataset(config: &Config) -> Result<Dataset> {
    let set = load_data(&without_streaming(&config.data), config.train.batch_size)?;
    check_labels(config, &set)?;
    Ok(set)
}

/// The images a GAN config names: in memory, or streamed from disk with `data.streaming`.
pub fn load_source(config: &Config) -> Result<Box<dyn ImageSource>> {
    let d = &config.data;
    if !d.streaming {
        return Ok(Box::new(load_dataset(config)?));
    }
    let set = data::StreamingFolder::open(&d.images, d.image_size, d.channels, d.limit, d.stream_options())?;
    if set.count() < config.train.batch_size {
        bail!("{}: {} images, fewer than one batch of {}", d.images.display(), set.count(), config.train.batch_size);
    }
    check_labels(config, &set)?;
    Ok(Box::new(set))
}

fn without_streaming(d: &DataConfig) -> DataConfig {
    DataConfig { streaming: false, ..d.clone() }
}

/// Conditional models need labels below `model.classes`.
fn check_labels(config: &Config, set: &dyn ImageSource) -> Result<()> {
    let (d, m) = (&config.data, &config.model);
    let uses_labels = m.conditional || matches!(m.kind, GanKind::Acgan | GanKind::SemiSupervised);
    if uses_labels {
        let what = if m.conditional { "model.conditional".to_string() } else { format!("model.kind = {:?}", m.kind) };
        let Some(labels) = set.labels() else {
            bail!("{what} needs class labels: set data.labels (IDX) or use class sub-folders");
        };
        if let Some(&bad) = labels.iter().find(|&&l| l as usize >= m.classes) {
            bail!(
                "{}: label {bad} but model.classes = {} (labels must be 0 to {}); raise model.classes or fix the labels",
                d.labels.as_ref().unwrap_or(&d.images).display(),
                m.classes,
                m.classes - 1
            );
        }
    }
    Ok(())
}

/// The images (and labels) of a [data] section, at least `min_len` of them.
pub fn load_data(d: &DataConfig, min_len: usize) -> Result<Dataset> {
    if d.streaming {
        bail!(
            "{}: data.streaming applies to GAN training (`shadergan train`); here the images are read into memory: \
             remove data.streaming",
            d.images.display()
        );
    }
    let mut set = match d.kind {
        DataKind::Idx => {
            let mut set = data::load_idx_images(&d.images, d.image_size)?;
            if d.channels != 1 {
                bail!("data.channels = {}: IDX files hold grayscale images, set channels = 1", d.channels);
            }
            if let Some(labels) = &d.labels {
                let l = data::load_idx_labels(labels)?;
                if l.len() != set.len {
                    bail!("{}: {} labels for {} images in {}", labels.display(), l.len(), set.len, d.images.display());
                }
                set.labels = Some(l);
            }
            set
        }
        DataKind::Folder => {
            let crop = if d.crop_size == 0 { d.image_size } else { d.crop_size };
            data::load_folder_crops(&d.images, d.image_size, d.channels, d.crops, crop, 0)?
        }
    };
    if d.limit > 0 {
        set = set.truncated(d.limit);
    }
    if set.len < min_len {
        bail!("{}: {} images, fewer than one batch of {min_len}", d.images.display(), set.len);
    }
    Ok(set)
}

/// `shadergan train`: builds the config's model and data and runs them on the training engine.
pub fn train(gpu: &Gpu, opts: &RunOptions) -> Result<RunSummary> {
    if opts.steps == Some(0) {
        bail!("--steps must be at least 1");
    }
    let trainer = |steps: u64, sample_every: u64, checkpoint_every: u64| {
        Trainer::new(&opts.out, opts.steps.unwrap_or(steps))
            .sample_every(sample_every)
            .checkpoint_every(checkpoint_every)
            .resume(opts.resume)
            .progress(opts.progress)
            .adapter(describe(gpu.info()))
            .shard(opts.shard.clone())
    };
    match AnyConfig::load(&opts.config)? {
        AnyConfig::Gan(mut config) => {
            let t = &config.train;
            let run = trainer(t.steps, t.sample_every, t.checkpoint_every);
            config.train.steps = run.steps;
            let data = load_source(&config)?;
            let widths = ["model.g_width", "model.d_width", "data.image_size"];
            let model =
                within_limits(config.train.batch_size, &widths, false, || GanTrainer::new(gpu, &config, data.count()))?;
            let mut model = model.distributed(opts.shard.clone()).map_err(anyhow::Error::msg)?;
            // Rank 0 alone evaluates (it writes the run folder).
            let mut probe = match opts.shard.is_leader() {
                true => crate::tasks::probe_for(gpu, &config)?,
                false => None,
            };
            let run = run.evaluate_every(config.eval.as_ref().map_or(0, |e| e.every));
            let probe = probe.as_mut().map(|p| p as &mut dyn super::Evaluation<GanTrainer>);
            within_limits(config.train.batch_size, &widths, true, || {
                run.fit_evaluated(&mut model, data.as_ref(), probe)
            })?
        }
        AnyConfig::Cycle(mut config) => {
            let t = &config.train;
            let run = trainer(t.steps, t.sample_every, t.checkpoint_every);
            config.train.steps = run.steps;
            let b = config.train.batch_size;
            let domains = Domains { x: load_data(&config.domain_x, b)?, y: load_data(&config.domain_y, b)? };
            let widths = ["model.g_width", "model.d_width", "domain_x.image_size"];
            let model =
                within_limits(b, &widths, false, || CycleTrainer::new(gpu, &config, domains.x.len, domains.y.len))?;
            let mut model = model.distributed(opts.shard.clone()).map_err(anyhow::Error::msg)?;
            within_limits(b, &widths, true, || run.fit(&mut model, &domains))?
        }
    }
}

/// Runs `f`, turning a buffer past the adapter's limits into an error that names the keys to
/// lower: while training (`per_batch`) every large buffer grows with the batch, so the largest
/// batch that fits is named; while building the networks only their widths matter.
fn within_limits<T>(batch: usize, widths: &[&str], per_batch: bool, f: impl FnOnce() -> T) -> Result<T> {
    crate::gpu::catch_device_limits(f).map_err(|e| {
        let fits = (batch as u128 * e.limit as u128 / e.bytes.max(1) as u128) as usize;
        if per_batch && fits >= 2 {
            anyhow::anyhow!(
                "train.batch_size = {batch}: a training step needs {e}; train.batch_size = {fits} fits \
                 (or lower {})",
                widths.join(", ")
            )
        } else {
            anyhow::anyhow!("the networks need {e}: lower {}", widths.join(", "))
        }
    })
}
