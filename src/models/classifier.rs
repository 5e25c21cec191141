//! A small convolutional classifier the engine trains itself: it scores conditional GANs
//! (are samples of class K classified as K?), steers controllable generation, and measures
//! CycleGAN translations.

use std::collections::HashMap;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{self, CheckpointError};
use crate::config::Norm;
use crate::data::{BatchSampler, DataError, Dataset, ImageSource};
use crate::gpu::Gpu;
use crate::grad;
use crate::models::dcgan;
use crate::nn::{loss, one_hot, Mode, Sequential};
use crate::optim::{Adam, Optimizer};
use crate::tensor::{no_grad, Tensor};

/// The `format` metadata of classifier checkpoints.
pub const CLASSIFIER_FORMAT: &str = "shadergan-classifier-v1";

/// The engine's own image classifier (features for evaluation, sample scoring).
pub struct Classifier {
    /// The network.
    pub net: Sequential,
    /// Classes it tells apart.
    pub classes: usize,
    /// Channels of the images it takes.
    pub channels: usize,
    /// Side of the images it takes.
    pub image_size: usize,
}

impl Classifier {
    /// DCGAN's discriminator body with `classes` logits: strided convs, batch norm, leaky ReLU.
    pub fn new(gpu: &Gpu, classes: usize, channels: usize, image_size: usize, width: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let net = dcgan::discriminator(gpu, width, channels, image_size, Norm::Batch, classes, &mut rng);
        Classifier { net, classes, channels, image_size }
    }

    /// Logits [n, classes] for images [n, C, H, W].
    pub fn logits(&self, x: &Tensor, mode: Mode) -> Tensor {
        self.net.forward(x, mode)
    }

    /// Trains with Adam on cross-entropy for `steps` batches; returns the last losses.
    pub fn train(
        &mut self,
        data: &Dataset,
        steps: usize,
        batch: usize,
        lr: f32,
        seed: u64,
        mut progress: impl FnMut(usize, f32),
    ) -> Vec<f32> {
        let labels = data.labels.as_ref().expect("classifier training needs labels");
        assert_eq!(labels.len(), data.len);
        let gpu = self.net.parameters()[0].gpu().clone();
        let params = self.net.parameters();
        let mut opt = Adam::new(lr, 0.9, 0.999);
        let mut sampler = BatchSampler::new(data.len, seed);
        let mut losses = Vec::new();
        for step in 0..steps {
            let (pixels, y) = sampler.next_batch(data, batch);
            let x = Tensor::from_vec(&gpu, &[batch, data.channels, data.size, data.size], &pixels);
            let l = loss::softmax_cross_entropy(&self.logits(&x, Mode::Train), &one_hot(&gpu, &y, self.classes));
            let grads = grad(&l, &params);
            opt.step(&params, &grads);
            if step % 20 == 0 || step + 1 == steps {
                let v = l.item();
                losses.push(v);
                progress(step, v);
            }
        }
        losses
    }

    /// Predicted class of each image [n, C, H, W] (eval mode, in chunks of 256).
    pub fn predict(&self, gpu: &Gpu, images: &[f32]) -> Vec<u32> {
        let _no_graph = no_grad();
        let per = self.channels * self.image_size * self.image_size;
        let n = images.len() / per;
        let mut out = Vec::with_capacity(n);
        for start in (0..n).step_by(256) {
            let count = (n - start).min(256);
            let x = Tensor::from_vec(
                gpu,
                &[count, self.channels, self.image_size, self.image_size],
                &images[start * per..(start + count) * per],
            );
            let logits = self.logits(&x, Mode::Eval).to_vec();
            for row in logits.chunks(self.classes) {
                let best = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i).unwrap_or(0);
                out.push(best as u32);
            }
        }
        out
    }

    /// Class probabilities [n * classes] for images [n, C, H, W] (eval mode).
    pub fn probabilities(&self, gpu: &Gpu, images: &[f32]) -> Vec<f32> {
        let _no_graph = no_grad();
        let per = self.channels * self.image_size * self.image_size;
        let mut out = Vec::with_capacity(images.len() / per * self.classes);
        for chunk in images.chunks(256 * per) {
            let n = chunk.len() / per;
            let x = Tensor::from_vec(gpu, &[n, self.channels, self.image_size, self.image_size], chunk);
            out.extend(loss::log_softmax(&self.logits(&x, Mode::Eval)).exp().to_vec());
        }
        out
    }

    /// The classifier's last hidden features of each image, averaged over positions: rows of
    /// `feature_dims()` values (eval mode, in chunks of 256), the space sample quality is
    /// measured in.
    pub fn features(&self, gpu: &Gpu, images: &[f32]) -> Vec<f64> {
        let _no_graph = no_grad();
        let per = self.channels * self.image_size * self.image_size;
        let layer = dcgan::feature_layer(&self.net);
        let mut out = Vec::with_capacity(images.len() / per * self.feature_dims());
        for chunk in images.chunks(256 * per) {
            let n = chunk.len() / per;
            let x = Tensor::from_vec(gpu, &[n, self.channels, self.image_size, self.image_size], chunk);
            let hidden = self.net.forward_all(&x, Mode::Eval).swap_remove(layer);
            let pooled = if hidden.rank() == 4 { hidden.mean(&[2, 3], false) } else { hidden };
            out.extend(pooled.to_vec().into_iter().map(f64::from));
        }
        out
    }

    /// Values per row of [`features`](Self::features).
    pub fn feature_dims(&self) -> usize {
        let layer = dcgan::feature_layer(&self.net);
        // The channels of the last hidden convolution: its weight is [out, in, k, k].
        self.net.layers[..layer]
            .iter()
            .rev()
            .find_map(|l| match l {
                crate::nn::Layer::Conv2d(c) => Some(c.weight.shape()[0]),
                _ => None,
            })
            .unwrap_or(self.classes)
    }

    /// Fraction of `data` classified as its label.
    pub fn accuracy(&self, gpu: &Gpu, data: &Dataset) -> f64 {
        let labels = data.labels.as_ref().expect("accuracy needs labels");
        let pred = self.predict(gpu, &data.pixels);
        pred.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len().max(1) as f64
    }

    /// Writes the classifier to `path` with its width and held-out accuracy in the metadata.
    pub fn save(&self, path: &Path, width: usize, test_accuracy: Option<f64>) -> Result<(), CheckpointError> {
        let mut meta = HashMap::new();
        meta.insert("format".into(), CLASSIFIER_FORMAT.into());
        meta.insert("classes".into(), self.classes.to_string());
        meta.insert("channels".into(), self.channels.to_string());
        meta.insert("image_size".into(), self.image_size.to_string());
        meta.insert("width".into(), width.to_string());
        if let Some(a) = test_accuracy {
            meta.insert("test_accuracy".into(), format!("{a:.4}"));
        }
        checkpoint::save(path, &checkpoint::export(&self.net, "classifier"), meta)
    }

    /// Reads a classifier saved by `save`.
    pub fn load(gpu: &Gpu, path: &Path) -> Result<Classifier, CheckpointError> {
        let (tensors, meta) = checkpoint::load(path)?;
        if meta.get("format").map(String::as_str) != Some(CLASSIFIER_FORMAT) {
            return Err(CheckpointError::Invalid {
                path: path.to_path_buf(),
                problem: format!("not a classifier checkpoint (format '{CLASSIFIER_FORMAT}' expected)"),
            });
        }
        let c = Classifier::new(
            gpu,
            checkpoint::meta(&meta, "classes", path)?,
            checkpoint::meta(&meta, "channels", path)?,
            checkpoint::meta(&meta, "image_size", path)?,
            checkpoint::meta(&meta, "width", path)?,
            0,
        );
        checkpoint::import(&c.net, "classifier", &tensors, path)?;
        Ok(c)
    }
}

/// A class-balanced subset with `per_class` labelled images of each class (semi-supervised
/// baselines), chosen with a seeded shuffle.
pub fn labelled_subset(data: &dyn ImageSource, per_class: usize, seed: u64) -> Result<Dataset, DataError> {
    let labels = data.labels().expect("labelled subset needs labels");
    let mut idx: Vec<usize> = (0..data.count()).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let classes = labels.iter().max().map_or(0, |&m| m as usize + 1).max(data.class_names().len());
    let mut taken = vec![0; classes];
    let mut pick = Vec::new();
    for i in idx {
        let l = labels[i] as usize;
        if taken[l] < per_class {
            taken[l] += 1;
            pick.push(i);
        }
    }
    let (pixels, picked) = data.gather(&pick)?;
    Ok(Dataset {
        pixels,
        labels: Some(picked),
        class_names: data.class_names().to_vec(),
        len: pick.len(),
        channels: data.channels(),
        size: data.size(),
    })
}
