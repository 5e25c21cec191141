//! Losses, each numerically stable for any logits. The elementwise ones compute their terms and
//! gradient in one pass (`Tensor::loss_terms`), then take the mean.

use crate::tensor::kernels::LossKind;
use crate::tensor::Tensor;

/// mean(softplus(x) - x * t): BCE of sigmoid(x) against t without overflow or log(0).
pub fn bce_with_logits(logits: &Tensor, target: &Tensor) -> Tensor {
    logits.loss_terms(LossKind::BceWithLogits, target).mean_all()
}

/// mean((x - t)^2), the least-squares GAN loss.
pub fn mse(x: &Tensor, target: &Tensor) -> Tensor {
    x.loss_terms(LossKind::SquaredError, target).mean_all()
}

/// mean(|x - t|), CycleGAN's cycle and identity loss.
pub fn l1(x: &Tensor, target: &Tensor) -> Tensor {
    x.loss_terms(LossKind::AbsoluteError, target).mean_all()
}

/// The critic's mean score; WGAN losses are differences of these.
pub fn wasserstein_mean(scores: &Tensor) -> Tensor {
    scores.mean_all()
}

/// log-softmax over the last axis, shifted by a detached row maximum for stability.
pub fn log_softmax(logits: &Tensor) -> Tensor {
    let shift = logits.max(&[-1], true);
    let shifted = logits.sub(&shift);
    shifted.sub(&shifted.exp().sum(&[-1], true).log())
}

/// Mean over rows of -sum(target * log_softmax(logits)); `target` one-hot or soft labels.
pub fn softmax_cross_entropy(logits: &Tensor, target: &Tensor) -> Tensor {
    let rows = logits.numel() / logits.shape()[logits.rank() - 1];
    log_softmax(logits).mul(target).sum_all().scale(-1.0 / rows as f32)
}
