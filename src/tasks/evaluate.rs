//! Judging models with the engine's own classifier: training it from a config, the coverage and
//! confidence of a generator's samples, a conditional model's accuracy per class, a CycleGAN's
//! translations, and a semi-supervised GAN's D against the same network trained on the
//! labelled images alone.

use std::path::Path;

use anyhow::{bail, Result};

use crate::config::{ClassifierConfig, Config, GanKind, NoiseKind};
use crate::data::{self, Dataset};
use crate::eval::{accuracy, conditional_counts, Coverage};
use crate::gpu::Gpu;
use crate::models::classifier::{labelled_subset, Classifier};
use crate::train::noise::Noise;
use crate::train::{codes, generate, load_generator, restore_checkpoint, run, Codes, GanTrainer};

use super::generate::{label_count, MAX_SAMPLES};

/// A classifier can only judge images of the size and channels it was trained on.
pub fn check_classifier_fits(c: &Classifier, channels: usize, size: usize) -> Result<()> {
    if (c.channels, c.image_size) != (channels, size) {
        bail!(
            "the classifier takes {}-channel {}x{} images; the model makes {channels}-channel {size}x{size}",
            c.channels,
            c.image_size,
            c.image_size
        );
    }
    Ok(())
}

/// The held-out images and labels a config names: `data.test_images` with `data.test_labels`
/// (IDX), or `data.test_images` alone as a folder of class sub-folders.
fn test_set(config_path: &Path, d: &crate::config::DataConfig) -> Result<Option<Dataset>> {
    match (&d.test_images, &d.test_labels) {
        (Some(folder), None) if folder.is_dir() => {
            let t = data::load_folder(folder, d.image_size, d.channels)?;
            if t.labels.is_none() {
                bail!(
                    "{}: data.test_images is a folder without class sub-folders, so it has no labels",
                    folder.display()
                );
            }
            Ok(Some(t))
        }
        (Some(ti), Some(tl)) => {
            let mut t = data::load_idx_images(ti, d.image_size)?;
            let labels = data::load_idx_labels(tl)?;
            if labels.len() != t.len {
                bail!("{}: {} labels for {} test images in {}", tl.display(), labels.len(), t.len, ti.display());
            }
            t.labels = Some(labels);
            Ok(Some(t))
        }
        (None, None) => Ok(None),
        _ => bail!(
            "{}: set data.test_images and data.test_labels (IDX files), data.test_images alone (a folder of class \
             sub-folders), or neither",
            config_path.display()
        ),
    }
}

/// A classifier trained from a config, with its accuracies.
pub struct TrainedClassifier {
    /// The network.
    pub classifier: Classifier,
    /// Accuracy on its training images.
    pub train_accuracy: f64,
    /// Accuracy and count of the held-out images, when the config names them.
    pub test: Option<(f64, usize)>,
}

/// Trains the classifier a config describes (`steps` overrides its own); `on_step(step, steps,
/// loss)` reports progress.
pub fn train_classifier(
    gpu: &Gpu,
    config_path: &Path,
    steps: Option<usize>,
    mut on_step: impl FnMut(usize, usize, f32),
) -> Result<(TrainedClassifier, ClassifierConfig)> {
    let cfg = ClassifierConfig::load(config_path)?;
    let d = &cfg.data;
    let train_set = run::load_data(d, cfg.classifier.batch_size)?;
    if train_set.labels.is_none() {
        bail!("{}: the classifier needs labelled data (data.labels, or class sub-folders)", config_path.display());
    }
    let test = test_set(config_path, d)?;
    let classes = train_set.num_classes();
    if classes < 2 {
        bail!("{}: classification needs at least two classes in the labels", config_path.display());
    }
    let s = &cfg.classifier;
    let mut c = Classifier::new(gpu, classes, d.channels, d.image_size, s.width, s.seed);
    let steps = steps.unwrap_or(s.steps);
    c.train(&train_set, steps, s.batch_size, s.lr, s.seed, |step, loss| on_step(step, steps, loss));
    let train_accuracy = c.accuracy(gpu, &train_set);
    let test = test.map(|t| (c.accuracy(gpu, &t), t.len));
    Ok((TrainedClassifier { classifier: c, train_accuracy, test }, cfg))
}

/// How a classifier labels `n` samples of a generator: confidence above 0.9 and class shares.
pub fn sample_coverage(gpu: &Gpu, checkpoint: &Path, classifier: &Path, n: usize, seed: u64) -> Result<Coverage> {
    if n == 0 || n > MAX_SAMPLES {
        bail!("--n must be between 1 and {MAX_SAMPLES}, got {n}");
    }
    let (config, generator) = load_generator(gpu, checkpoint)?;
    let c = Classifier::load(gpu, classifier)?;
    check_classifier_fits(&c, config.data.channels, config.data.image_size)?;
    let z = Noise::new(config.train.noise, seed).sample(n * config.model.latent_dim);
    let k = label_count(&config);
    let labels: Vec<u32> = if codes::takes_labels(&config) { (0..n).map(|i| (i % k) as u32).collect() } else { vec![] };
    let images = generate(gpu, &config, &generator, &Codes { z, labels, continuous: vec![] });
    Ok(Coverage::from_probabilities(&c.probabilities(gpu, &images), c.classes, 0.9))
}

/// For each class (or InfoGAN code value), the classifier's label histogram over `n` samples
/// asked for it; and whether the model is an InfoGAN (scored by its codes' digits).
pub fn conditional_accuracy(
    gpu: &Gpu,
    checkpoint: &Path,
    classifier: &Path,
    n: usize,
    seed: u64,
) -> Result<(Vec<Vec<usize>>, bool)> {
    if n == 0 || n > 5000 {
        bail!("--n (samples per class) must be between 1 and 5000, got {n}");
    }
    let (config, generator) = load_generator(gpu, checkpoint)?;
    let infogan = config.model.kind == GanKind::Infogan;
    if !codes::takes_labels(&config) {
        bail!(
            "{}: the model takes no class or categorical code (conditional GAN, ACGAN or InfoGAN needed)",
            checkpoint.display()
        );
    }
    let c = Classifier::load(gpu, classifier)?;
    check_classifier_fits(&c, config.data.channels, config.data.image_size)?;
    let k = label_count(&config);
    let labels: Vec<u32> = (0..k * n).map(|i| (i / n) as u32).collect();
    let z = Noise::new(config.train.noise, seed).sample(labels.len() * config.model.latent_dim);
    // InfoGAN's continuous codes vary freely (uniform in [-1, 1]) while the category is held.
    let continuous = Noise::new(NoiseKind::Uniform, seed ^ 0x5eed)
        .sample(labels.len() * config.model.info_continuous * infogan as usize);
    let images = generate(gpu, &config, &generator, &Codes { z, labels, continuous });
    Ok((conditional_counts(&c.predict(gpu, &images), k, n, c.classes), infogan))
}

/// A Y-domain classifier on X's labelled images before and after translation.
pub struct TranslatedAccuracy {
    /// Images scored.
    pub images: usize,
    /// Accuracy on the untranslated (resized) images.
    pub before: f64,
    /// Accuracy on their translations G(x).
    pub after: f64,
}

/// Scores a CycleGAN's X -> Y translations with a classifier of domain Y.
pub fn translated_accuracy(gpu: &Gpu, checkpoint: &Path, classifier: &Path) -> Result<TranslatedAccuracy> {
    let (config, g_xy, _) = crate::cyclegan::load_generators(gpu, checkpoint)?;
    let c = Classifier::load(gpu, classifier)?;
    let d = &config.domain_x;
    check_classifier_fits(&c, d.channels, d.image_size)?;
    let mut data_cfg = d.clone();
    data_cfg.limit = 0;
    let x = run::load_data(&data_cfg, 1)?;
    let Some(labels) = &x.labels else {
        bail!("{}: domain_x has no labels to score translations against", checkpoint.display());
    };
    let score = |images: &[f32]| accuracy(&c.predict(gpu, images), labels);
    let translated = crate::cyclegan::translate(gpu, d.channels, d.image_size, &g_xy, &x.pixels);
    Ok(TranslatedAccuracy { images: x.len, before: score(&x.pixels), after: score(&translated) })
}

/// A semi-supervised GAN's D as a classifier against the same network trained on the same
/// labelled images alone.
#[derive(Clone, Debug)]
pub struct SemiSupervisedComparison {
    /// Labelled images both saw.
    pub labelled: usize,
    /// Labelled images per class.
    pub per_class: usize,
    /// Held-out images scored.
    pub test_images: usize,
    /// The GAN's training steps.
    pub gan_steps: u64,
    /// The GAN's D on the held-out images.
    pub gan_accuracy: f64,
    /// The supervised-only baseline on the held-out images.
    pub baseline_accuracy: f64,
}

/// Loads the semi-supervised run in `dir` and trains the baseline for `baseline_steps`.
pub fn semi_supervised_comparison(gpu: &Gpu, dir: &Path, baseline_steps: usize) -> Result<SemiSupervisedComparison> {
    let config = Config::load(&dir.join("config.toml"))?;
    if config.model.kind != GanKind::SemiSupervised {
        bail!("{}: not a semi-supervised run (model.kind = {:?})", dir.display(), config.model.kind);
    }
    let Some(test) = test_set(&dir.join("config.toml"), &config.data)? else {
        bail!("{}: the config needs data.test_images and data.test_labels", dir.display());
    };
    let data = run::load_dataset(&config)?;
    let mut gan = GanTrainer::new(gpu, &config, data.len);
    restore_checkpoint(&mut gan, dir)?;
    let labels = test.labels.as_ref().expect("test_set sets labels");
    let gan_accuracy = accuracy(&gan.classify(&test.pixels), labels);
    // The same network (D's architecture with K outputs) on the same labelled images only.
    let t = &config.train;
    let subset = labelled_subset(&data, t.labelled_per_class, t.seed.wrapping_add(3))?;
    let d = &config.data;
    let mut base = Classifier::new(gpu, config.model.classes, d.channels, d.image_size, config.model.d_width, t.seed);
    base.train(&subset, baseline_steps, t.batch_size.min(subset.len), t.lr_d, t.seed, |_, _| {});
    Ok(SemiSupervisedComparison {
        labelled: subset.len,
        per_class: t.labelled_per_class,
        test_images: test.len,
        gan_steps: gan.step,
        gan_accuracy,
        baseline_accuracy: base.accuracy(gpu, &test),
    })
}
