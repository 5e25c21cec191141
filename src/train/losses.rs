//! The adversarial losses, written once for every trainer. Scores are D's raw outputs: logits
//! for the BCE losses, critic values for WGAN, regression outputs for least squares.

use crate::config::GanLoss;
use crate::nn::loss::{bce_with_logits, mse};
use crate::tensor::Tensor;
use crate::{grad_with, GradOptions};

/// D's loss on a real and a (detached) fake batch. `real_label` < 1 is one-sided label
/// smoothing: only the real target moves; the fake target stays 0.
pub fn discriminator_loss(kind: GanLoss, real: &Tensor, fake: &Tensor, real_label: f32) -> Tensor {
    let gpu = real.gpu();
    match kind {
        GanLoss::Minimax | GanLoss::NonSaturating => {
            let real_target = Tensor::full(gpu, real.shape(), real_label);
            let fake_target = Tensor::zeros(gpu, fake.shape());
            bce_with_logits(real, &real_target).add(&bce_with_logits(fake, &fake_target))
        }
        GanLoss::LeastSquares => {
            let real_target = Tensor::full(gpu, real.shape(), real_label);
            mse(real, &real_target).add(&mse(fake, &Tensor::zeros(gpu, fake.shape()))).scale(0.5)
        }
        // The critic maximises E[C(x)] - E[C(G(z))].
        GanLoss::Wasserstein | GanLoss::WassersteinGp => fake.mean_all().sub(&real.mean_all()),
        GanLoss::Hinge => real.neg().add_scalar(1.0).relu().mean_all().add(&fake.add_scalar(1.0).relu().mean_all()),
        // RpGAN (R3GAN): each fake's score against its paired real one's.
        GanLoss::Relativistic => fake.sub(real).softplus().mean_all(),
    }
}

/// RpGAN's G loss: E[softplus(D(x) - D(G(z)))] over pairs of real and fake scores.
pub fn relativistic_generator_loss(real: &Tensor, fake: &Tensor) -> Tensor {
    real.sub(fake).softplus().mean_all()
}

/// G's loss on D's scores for its samples.
///
/// # Panics
/// For `GanLoss::Relativistic`, whose G loss needs the paired real scores too: call
/// [`relativistic_generator_loss`].
pub fn generator_loss(kind: GanLoss, fake: &Tensor) -> Tensor {
    let gpu = fake.gpu();
    match kind {
        GanLoss::Minimax => bce_with_logits(fake, &Tensor::zeros(gpu, fake.shape())).neg(),
        GanLoss::NonSaturating => bce_with_logits(fake, &Tensor::ones(gpu, fake.shape())),
        GanLoss::LeastSquares => mse(fake, &Tensor::ones(gpu, fake.shape())).scale(0.5),
        GanLoss::Wasserstein | GanLoss::WassersteinGp | GanLoss::Hinge => fake.mean_all().neg(),
        GanLoss::Relativistic => panic!("RpGAN's G loss pairs fakes with real scores: use relativistic_generator_loss"),
    }
}

/// R1 (on real images) or R2 (on generated ones): E[||∇ₓ D(x)||²] over the batch, one squared
/// norm per sample. The input gradient is taken with `create_graph`, so the penalty's gradient
/// with respect to D's weights is exact (double backward).
pub fn gradient_norm_penalty(critic: impl Fn(&Tensor) -> Tensor, x: &Tensor) -> Tensor {
    let b = x.shape()[0];
    let x = x.detach().requires_grad();
    let g = grad_with(&critic(&x).sum_all(), &[&x], GradOptions::default().create_graph()).remove(0);
    g.reshape(&[b, x.numel() / b]).square().sum(&[1], false).mean_all()
}

/// E[(||∇_x̂ C(x̂)||₂ - 1)²] at x̂ = ε x + (1 - ε) x̃ with one ε per sample. The input gradient
/// is taken with `create_graph`, so the penalty's own gradient with respect to the critic's
/// weights is exact (second-order autodiff), not an approximation.
pub fn gradient_penalty(critic: impl Fn(&Tensor) -> Tensor, real: &Tensor, fake: &Tensor, eps: &[f32]) -> Tensor {
    let b = real.shape()[0];
    assert_eq!(eps.len(), b, "one interpolation weight per sample");
    let mut shape = vec![1; real.rank()];
    shape[0] = b;
    let e = Tensor::from_vec(real.gpu(), &shape, eps);
    let x_hat = real.detach().mul(&e).add(&fake.detach().mul(&e.affine(-1.0, 1.0))).detach().requires_grad();
    let scores = critic(&x_hat);
    let g = grad_with(&scores.sum_all(), &[&x_hat], GradOptions::default().create_graph()).remove(0);
    let norms = g.reshape(&[b, real.numel() / b]).square().sum(&[1], false).add_scalar(1e-12).sqrt();
    norms.add_scalar(-1.0).square().mean_all()
}

/// Feature matching (Salimans et al. 2016): ||E f(x) - E f(G(z))||² over D's hidden features
/// [n, ...], with the real side held fixed.
pub fn feature_matching(real_features: &Tensor, fake_features: &Tensor) -> Tensor {
    let f_real = real_features.detach().flatten_from(1).mean(&[0], false);
    let f_fake = fake_features.flatten_from(1).mean(&[0], false);
    f_real.sub(&f_fake).square().sum_all()
}
