//! The lecture's 1-D GAN on raw tensors: real data from N(0, 1), a generator x = z + θ that
//! starts at θ = 3, and a logistic discriminator D(x) = sigmoid(w x + b). Each step: (1) update
//! D on a real batch and a detached fake one, (2) update G through D. θ walks to the data and D
//! flattens to 1/2, where it can no longer tell them apart.
//!
//!     cargo run --release --example toy_1d [steps]

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use shadergan::nn::loss::bce_with_logits;
use shadergan::prelude::*;

fn normal(rng: &mut ChaCha8Rng, n: usize, mean: f32) -> Vec<f32> {
    (0..n).map(|_| mean + Distribution::<f32>::sample(&StandardNormal, rng)).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let steps: usize = std::env::args().nth(1).map_or(Ok(300), |s| s.parse())?;
    let gpu = Gpu::default_device()?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let batch = 256;
    let theta = Tensor::from_vec(&gpu, &[1], &[3.0]).requires_grad();
    let (w, b) = (Tensor::from_vec(&gpu, &[1], &[-1.0]).requires_grad(), Tensor::zeros(&gpu, &[1]).requires_grad());
    let (mut opt_d, mut opt_g) = (Sgd::new(0.1, 0.5), Sgd::new(0.02, 0.5));
    let (ones, zeros) = (Tensor::ones(&gpu, &[batch]), Tensor::zeros(&gpu, &[batch]));
    let d_logit = |x: &Tensor| x.mul(&w).add(&b);
    for step in 1..=steps {
        // (1) D on real and detached fake samples.
        let real = Tensor::from_vec(&gpu, &[batch], &normal(&mut rng, batch, 0.0));
        let fake = Tensor::from_vec(&gpu, &[batch], &normal(&mut rng, batch, 0.0)).add(&theta.detach());
        let loss_d = bce_with_logits(&d_logit(&real), &ones).add(&bce_with_logits(&d_logit(&fake), &zeros));
        opt_d.step(&[w.clone(), b.clone()], &grad(&loss_d, &[&w, &b]));
        // (2) G through D (the non-saturating loss).
        let z = Tensor::from_vec(&gpu, &[batch], &normal(&mut rng, batch, 0.0));
        let loss_g = bce_with_logits(&d_logit(&z.add(&theta)), &ones);
        opt_g.step(std::slice::from_ref(&theta), &grad(&loss_g, &[&theta]));
        if step % (steps / 10).max(1) == 0 {
            println!(
                "step {step:4}: theta {:+.3}  D loss {:.3}  G loss {:.3}",
                theta.item(),
                loss_d.item(),
                loss_g.item()
            );
        }
    }
    let real = Tensor::from_vec(&gpu, &[4096], &normal(&mut rng, 4096, 0.0));
    println!(
        "theta = {:.3} (the data's mean is 0); mean D(x) on real data = {:.3}",
        theta.item(),
        d_logit(&real).sigmoid().mean_all().item()
    );
    Ok(())
}
