//! How close a generator's samples are to real images in a classifier's feature space: Fréchet
//! distance, KID and k-NN precision/recall, for `shadergan eval` and, every `eval.every` steps,
//! for a training run (as an [`Evaluation`] of the GAN trainer).

use std::path::Path;

use anyhow::{bail, Result};

use super::evaluate::check_classifier_fits;
use super::generate::{label_count, MAX_SAMPLES};
use crate::config::{Config, DataKind};
use crate::gpu::Gpu;
use crate::models::classifier::Classifier;
use crate::train::noise::Noise;
use crate::train::{codes, generate, load_generator, run, Chart, Codes, Evaluation, GanTrainer, Metrics};

/// The scores of one evaluation.
#[derive(Clone, Debug)]
pub struct SampleQuality {
    /// Fréchet distance.
    pub frechet: f64,
    /// KID (unbiased MMD² with a cubic polynomial kernel, mean over subsets).
    pub kid: f64,
    /// Share of samples inside the real images' k-NN manifold (k = 3).
    pub precision: f64,
    /// Share of real images inside the samples' manifold.
    pub recall: f64,
    /// Images on each side.
    pub images: usize,
    /// Feature dimensions.
    pub dims: usize,
}

/// A classifier with the features of `n` real images, ready to score any number of generators.
pub struct QualityProbe {
    gpu: Gpu,
    classifier: Classifier,
    real: Vec<f64>,
    n: usize,
    seed: u64,
}

impl QualityProbe {
    /// Loads the classifier at `classifier` and the first `n` images of `real` (an IDX file or an
    /// image folder), which must match the config's image size and channels.
    pub fn new(
        gpu: &Gpu,
        config: &Config,
        classifier: &Path,
        real: &Path,
        n: usize,
        seed: u64,
    ) -> Result<QualityProbe> {
        if !(2..=MAX_SAMPLES).contains(&n) {
            bail!("the number of images compared must be between 2 and {MAX_SAMPLES}, got {n}");
        }
        let c = Classifier::load(gpu, classifier)?;
        check_classifier_fits(&c, config.data.channels, config.data.image_size)?;
        let mut data_cfg = config.data.clone();
        data_cfg.images = real.to_path_buf();
        (data_cfg.labels, data_cfg.limit, data_cfg.crops, data_cfg.streaming) = (None, n, 0, false);
        data_cfg.kind = if real.is_dir() { DataKind::Folder } else { DataKind::Idx };
        let real_set = run::load_data(&data_cfg, 2)?;
        let n = n.min(real_set.len);
        let features = c.features(gpu, &real_set.pixels[..n * real_set.image_len()]);
        Ok(QualityProbe { gpu: gpu.clone(), classifier: c, real: features, n, seed })
    }

    /// Images on each side.
    pub fn images(&self) -> usize {
        self.n
    }

    /// The codes of the scored samples: the same every time, so scores over a run compare.
    pub fn codes(&self, config: &Config) -> Codes {
        let z = Noise::new(config.train.noise, self.seed).sample(self.n * config.model.latent_dim);
        let k = label_count(config);
        let takes = codes::takes_labels(config);
        let labels: Vec<u32> = if takes { (0..self.n).map(|i| (i % k) as u32).collect() } else { vec![] };
        Codes { z, labels, continuous: vec![] }
    }

    /// Scores generated images [n, C, S, S] against the real ones.
    pub fn score(&self, fake: &[f32]) -> SampleQuality {
        let d = self.classifier.feature_dims();
        let fa = self.classifier.features(&self.gpu, fake);
        let (precision, recall) = crate::eval::precision_recall(&self.real, &fa, d, 3);
        SampleQuality {
            frechet: crate::eval::frechet_distance(&self.real, &fa, d),
            kid: crate::eval::kernel_distance(&self.real, &fa, d, 10, 1000, self.seed),
            precision,
            recall,
            images: self.n,
            dims: d,
        }
    }
}

impl Evaluation<GanTrainer> for QualityProbe {
    fn evaluate(&mut self, gan: &GanTrainer) -> Result<Metrics> {
        let q = self.score(&gan.generate_codes(&self.codes(&gan.config)));
        Ok(vec![
            ("fd", q.frechet as f32),
            ("kid", q.kid as f32),
            ("precision", q.precision as f32),
            ("recall", q.recall as f32),
        ])
    }

    fn charts(&self) -> Vec<Chart> {
        vec![
            Chart {
                title: "Fréchet distance in the classifier's features (lower is better)",
                metrics: vec!["fd"],
                range: None,
            },
            Chart { title: "KID (lower is better)", metrics: vec!["kid"], range: None },
            Chart {
                title: "Precision and recall (k-NN manifolds)",
                metrics: vec!["precision", "recall"],
                range: Some((0.0, 1.0)),
            },
        ]
    }
}

/// Scores `n` samples of a generator checkpoint against `n` real images (an IDX file or an image
/// folder) with a classifier's features.
pub fn sample_quality(
    gpu: &Gpu,
    checkpoint: &Path,
    real: &Path,
    classifier: &Path,
    n: usize,
    seed: u64,
) -> Result<SampleQuality> {
    if !(2..=MAX_SAMPLES).contains(&n) {
        bail!("--n must be between 2 and {MAX_SAMPLES}, got {n}");
    }
    let (config, generator) = load_generator(gpu, checkpoint)?;
    let probe = QualityProbe::new(gpu, &config, classifier, real, n, seed)?;
    Ok(probe.score(&generate(gpu, &config, &generator, &probe.codes(&config))))
}

/// The probe a config's `[eval]` section asks for (None without one); the real images default to
/// `data.test_images`, else `data.images`.
pub fn probe_for(gpu: &Gpu, config: &Config) -> Result<Option<QualityProbe>> {
    let Some(e) = &config.eval else { return Ok(None) };
    let real = e.real.as_ref().or(config.data.test_images.as_ref()).unwrap_or(&config.data.images);
    Ok(Some(QualityProbe::new(gpu, config, &e.classifier, real, e.n, e.seed)?))
}
