//! Controllable generation: move z along the gradient of a classifier's logit for a target
//! class, with the generator frozen (only z changes), and record the trajectory.

use crate::config::Config;
use crate::gpu::Gpu;
use crate::grad;
use crate::models::classifier::Classifier;
use crate::nn::{loss, Mode, Sequential};
use crate::tensor::{no_grad, Tensor};
use crate::train::codes;

/// How classifier guidance moved z toward a target class.
pub struct Trajectory {
    /// Images [samples * (steps + 1), C, H, W], row-major by sample then step.
    pub images: Vec<f32>,
    /// Classifier probability of the target class per sample, before and after.
    pub start_prob: Vec<f32>,
    /// The target class's probability at the end, per sample.
    pub end_prob: Vec<f32>,
}

/// Probabilities [n] of class `target` for images [n, ...].
fn probability(classifier: &Classifier, images: &Tensor, target: usize) -> Vec<f32> {
    let _no_graph = no_grad();
    loss::log_softmax(&classifier.logits(images, Mode::Eval)).narrow(1, target, 1).exp().to_vec()
}

/// `steps` normalised gradient-ascent steps of size `step_size` on z for the target logit.
/// The generator runs in eval mode; neither network's weights change.
#[allow(clippy::too_many_arguments)]
pub fn steer(
    gpu: &Gpu,
    config: &Config,
    g: &Sequential,
    classifier: &Classifier,
    z0: &[f32],
    labels: &[u32],
    target: usize,
    steps: usize,
    step_size: f32,
) -> Trajectory {
    assert!(target < classifier.classes, "target class {target} out of range ({} classes)", classifier.classes);
    let latent = config.model.latent_dim;
    let n = z0.len() / latent;
    let extra = codes::g_extra(config);
    let extras = if extra > 0 {
        let c = codes::Codes { z: vec![0.0; n * latent], labels: labels.to_vec(), continuous: vec![] };
        let full = codes::g_input(gpu, config, &c);
        Some(full.narrow(1, latent, extra).detach())
    } else {
        None
    };
    let mut z = z0.to_vec();
    let mut frames: Vec<Vec<f32>> = Vec::with_capacity(steps + 1);
    let mut start_prob = vec![];
    let mut end_prob = vec![];
    for s in 0..=steps {
        let zt = Tensor::from_vec(gpu, &[n, latent, 1, 1], &z).requires_grad();
        let input = match &extras {
            Some(e) => Tensor::cat(&[&zt, e], 1),
            None => zt.clone(),
        };
        let img = codes::run_generator(gpu, config, g, &input, Mode::Eval);
        frames.push(img.to_vec());
        if s == 0 {
            start_prob = probability(classifier, &img, target);
        }
        if s == steps {
            end_prob = probability(classifier, &img, target);
            break;
        }
        let logit = classifier.logits(&img, Mode::Eval).narrow(1, target, 1).sum_all();
        let dz = grad(&logit, &[&zt]).remove(0).to_vec();
        // Normalised per sample, so every trajectory moves the same distance per step.
        for i in 0..n {
            let row = &dz[i * latent..(i + 1) * latent];
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            for j in 0..latent {
                z[i * latent + j] += step_size * row[j] / norm;
            }
        }
    }
    let per = frames[0].len() / n;
    let mut images = Vec::with_capacity(n * (steps + 1) * per);
    for i in 0..n {
        for f in &frames {
            images.extend_from_slice(&f[i * per..(i + 1) * per]);
        }
    }
    Trajectory { images, start_prob, end_prob }
}
